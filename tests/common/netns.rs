//! Network namespaces joined by veth pairs: real (virtual) Ethernet links with MAC addresses,
//! broadcast and multicast, made and removed by the tests themselves (Debian `iproute2`).
//!
//! A `Lab` owns its namespaces and deletes them on drop, also when a test fails. Code runs
//! "inside" a namespace on a worker thread that joined it with setns(2): sockets, interface
//! lists and the threads a context starts there all belong to it.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

pub struct Lab {
    names: Vec<String>,
    workers: Vec<(String, Worker)>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` (iproute2) runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether namespace tests can run: root and `ip` present. When not, says so loudly and the
/// test skips — unless XTNET_REQUIRE_ALL is set (CI sets it), where skipping is a failure.
pub fn available(test: &str) -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    let has_ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(
        root && has_ip,
        test,
        &format!("network-namespace tests need root and iproute2 (root: {root}, ip: {has_ip})"),
    )
}

/// `ok`, or a loud skip (a failure under XTNET_REQUIRE_ALL) explaining `why`.
pub fn require(ok: bool, test: &str, why: &str) -> bool {
    if !ok {
        assert!(
            std::env::var_os("XTNET_REQUIRE_ALL").is_none(),
            "{test}: {why} (XTNET_REQUIRE_ALL is set: nothing may be skipped)"
        );
        eprintln!("\n*** SKIPPED {test}: {why}. CI runs it (XTNET_REQUIRE_ALL=1). ***\n");
    }
    ok
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Lab {
    pub fn new() -> Lab {
        Lab {
            names: Vec::new(),
            workers: Vec::new(),
        }
    }

    /// A new namespace with loopback up and IPv6 duplicate address detection off (addresses
    /// usable at once). Returns its full name.
    pub fn namespace(&mut self, tag: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("xt{}-{n}-{tag}", std::process::id());
        ip(&["netns", "add", &name]);
        self.names.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        for key in [
            "net.ipv6.conf.all.accept_dad",
            "net.ipv6.conf.default.accept_dad",
        ] {
            let _ = Command::new("ip")
                .args(["netns", "exec", &name, "sysctl", "-qw", &format!("{key}=0")])
                .status();
        }
        name
    }

    /// A veth pair between `a` (interface `a_if`, address `a_addr`, e.g. "10.9.1.1/24") and `b`.
    /// Each end also gets an IPv6 ULA address `fd00:9:<subnet>::<host>/64` and link-local one.
    pub fn link(&mut self, a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) {
        ip(&[
            "link", "add", a_if, "netns", a, "type", "veth", "peer", b_if, "netns", b,
        ]);
        for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                addr,
                "broadcast",
                "+",
                "dev",
                ifname,
            ]);
            let v4: std::net::Ipv4Addr = addr.split('/').next().unwrap().parse().unwrap();
            let o = v4.octets();
            let v6 = format!("fd00:9:{}::{}/64", o[2], o[3]);
            ip(&["-n", ns, "addr", "add", &v6, "dev", ifname, "nodad"]);
            ip(&["-n", ns, "link", "set", ifname, "up"]);
        }
        // Carrier comes up asynchronously (the kernel's link watch): wait for both ends.
        for (ns, ifname) in [(a, a_if), (b, b_if)] {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let out = Command::new("ip")
                    .args(["-n", ns, "-o", "link", "show", ifname])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&out.stdout).contains("state UP") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{ns}/{ifname} never came up"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    /// The MAC address of an interface as `ip link` reports it.
    pub fn mac(&self, ns: &str, ifname: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", ns, "-o", "link", "show", ifname])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no MAC in {text}"))
            .to_owned()
    }

    /// A command run inside `ns` (through `ip netns exec`).
    pub fn command(&self, ns: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]);
        cmd
    }

    /// Runs `f` on a thread that lives inside `ns` (one worker per namespace, reused).
    pub fn run<R: Send + 'static>(
        &mut self,
        ns: &str,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> R {
        if !self.workers.iter().any(|(n, _)| n == ns) {
            let (tx, rx) = mpsc::channel::<Job>();
            let path = format!("/run/netns/{ns}");
            let (ready_tx, ready_rx) = mpsc::channel();
            let thread = std::thread::spawn(move || {
                let file = std::fs::File::open(&path).expect("namespace file");
                // Network namespaces are Linux's; elsewhere (the macOS type check) this fails.
                #[cfg(target_os = "linux")]
                // SAFETY: setns with an open namespace file, on this thread only.
                let rc = unsafe {
                    libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET)
                };
                #[cfg(not(target_os = "linux"))]
                let rc = {
                    drop(file);
                    -1
                };
                ready_tx.send(rc).unwrap();
                if rc != 0 {
                    return;
                }
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
            assert_eq!(ready_rx.recv().unwrap(), 0, "setns into {ns} failed");
            self.workers.push((
                ns.to_owned(),
                Worker {
                    jobs: Some(tx),
                    thread: Some(thread),
                },
            ));
        }
        let worker = &self.workers.iter().find(|(n, _)| n == ns).unwrap().1;
        let (tx, rx) = mpsc::channel();
        worker
            .jobs
            .as_ref()
            .unwrap()
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .unwrap();
        rx.recv().expect("the job in the namespace panicked")
    }
}

impl Lab {
    /// The peer identity tests' topology: namespace L with link e1 (10.8.1.1) to P (e0,
    /// 10.8.1.2) and link e2 (10.8.2.1) to Q (e0, 10.8.2.2). Returns (L, P, Q).
    pub fn l_p_q(&mut self) -> (String, String, String) {
        let l = self.namespace("l");
        let p = self.namespace("p");
        let q = self.namespace("q");
        self.link(&l, "e1", "10.8.1.1/24", &p, "e0", "10.8.1.2/24");
        self.link(&l, "e2", "10.8.2.1/24", &q, "e0", "10.8.2.2/24");
        (l, p, q)
    }

    /// Gives programs run with `command(ns, ..)` their own `/etc/<file>` (`ip netns exec`
    /// bind-mounts `/etc/netns/<ns>/<file>` over it); removed with the lab.
    pub fn etc_file(&self, ns: &str, file: &str, content: &str) {
        let dir = format!("/etc/netns/{ns}");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{file}"), content).unwrap();
    }

    /// A real mDNS responder in `ns`: Debian's avahi-daemon announcing `host_name`.local for
    /// the addresses of `interface`, with D-Bus off and its own /run (so several can run).
    /// Returns once it has registered a record for each of `addresses`. Stopped on drop.
    pub fn mdns_responder(
        &self,
        ns: &str,
        host_name: &str,
        interface: &str,
        addresses: &[&str],
    ) -> Responder {
        let dir = std::env::temp_dir().join(format!("xtnet-avahi-{ns}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("avahi-daemon.conf");
        std::fs::write(
            &config,
            format!(
                "[server]\nhost-name={host_name}\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6=yes\n\
                 enable-dbus=no\nallow-interfaces={interface}\n\
                 [publish]\npublish-addresses=yes\npublish-workstation=no\npublish-hinfo=no\n"
            ),
        )
        .unwrap();
        let script = format!(
            "mount -t tmpfs tmpfs /run && exec avahi-daemon -f {} --no-drop-root --no-chroot --no-rlimits",
            config.display()
        );
        let mut child = self
            .command(ns, "unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("avahi-daemon starts");
        let (tx, rx) = mpsc::channel::<String>();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut pending: Vec<String> = addresses
            .iter()
            .map(|a| format!("Registering new address record for {a} "))
            .chain(["Server startup complete".to_owned()])
            .collect();
        let mut log = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !pending.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    pending.retain(|p| !line.contains(p.as_str()));
                    log.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("avahi-daemon in {ns} never got ready ({pending:?}): {log:#?}");
                }
            }
        }
        Responder { child, dir }
    }
}

/// A running avahi-daemon (see [`Lab::mdns_responder`]).
pub struct Responder {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether Debian's avahi-daemon is installed (the real mDNS responder the identity tests use).
pub fn avahi_installed() -> bool {
    Command::new("avahi-daemon")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, w) in &mut self.workers {
            w.jobs.take();
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{name}"));
        }
    }
}
