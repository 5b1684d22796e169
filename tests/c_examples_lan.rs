//! The discovery C examples on a real (virtual) LAN: network namespaces joined by veth, with
//! peers this project did not write — python-zeroconf announcing a service, and an SSDP device.

#[path = "support/c_build.rs"]
#[allow(dead_code)] // example_command: these run through `ip netns exec` instead
mod c_build;
mod common;

use common::netns::{available, require, Lab};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::OnceLock;

fn examples() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        c_build::build_c_examples(
            &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-examples-lan"),
        )
    })
}

fn pair(lab: &mut Lab) -> (String, String) {
    let l = lab.namespace("l");
    let s = lab.namespace("s");
    lab.link(&l, "e1", "10.9.1.1/24", &s, "e0", "10.9.1.2/24");
    (l, s)
}

/// Starts a Python helper from tests/support in `ns` and waits for its first line.
fn python(lab: &Lab, ns: &str, script: &str, args: &[&str], ready: &str) -> Child {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let mut child = lab
        .command(ns, "python3")
        .arg(path)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), ready, "{script} did not start");
    child
}

/// Runs a built example inside `ns` and returns what it printed.
fn run_example(lab: &Lab, ns: &str, name: &str, args: &[&str]) -> String {
    let out = lab
        .command(ns, examples().join(name).to_str().unwrap())
        .args(args)
        .env("LD_LIBRARY_PATH", c_build::library_dir())
        .output()
        .expect("example runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn zeroconf_installed() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import zeroconf"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs mdns_browse with `args` in one namespace while python-zeroconf announces the test
/// service in the other; None when the test must skip.
fn browse_zeroconf(test: &str, args: &[&str]) -> Option<String> {
    if !available(test)
        || !require(
            zeroconf_installed(),
            test,
            "python3 -m pip install zeroconf",
        )
    {
        return None;
    }
    let mut lab = Lab::new();
    let (l, s) = pair(&mut lab);
    let mut responder = python(
        &lab,
        &s,
        "zc_register.py",
        &["10.9.1.2", "20"],
        "registered",
    );
    let out = run_example(&lab, &l, "mdns_browse", args);
    let _ = responder.kill();
    let _ = responder.wait();
    Some(out)
}

#[test]
fn mdns_browse_finds_a_service_announced_by_python_zeroconf() {
    let test = "mdns_browse_finds_a_service_announced_by_python_zeroconf";
    let Some(out) = browse_zeroconf(
        test,
        &["--service", "_xtnettest._tcp.local", "--seconds", "3"],
    ) else {
        return;
    };
    for expected in [
        "from 10.9.1.2: PTR _xtnettest._tcp.local -> Porch Light._xtnettest._tcp.local",
        "from 10.9.1.2: SRV Porch Light._xtnettest._tcp.local -> porch-light.local port 8123",
        "from 10.9.1.2: TXT Porch Light._xtnettest._tcp.local -> model=xt-1",
        "from 10.9.1.2: A porch-light.local -> 10.9.1.2",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn mdns_one_shot_query_from_any_port_gets_a_unicast_answer() {
    let test = "mdns_one_shot_query_from_any_port_gets_a_unicast_answer";
    let args = [
        "--service",
        "_xtnettest._tcp.local",
        "--seconds",
        "2",
        "--port",
        "0",
    ];
    let Some(out) = browse_zeroconf(test, &args) else {
        return;
    };
    assert!(
        out.contains("PTR _xtnettest._tcp.local -> Porch Light._xtnettest._tcp.local"),
        "{out}"
    );
}

#[test]
fn ssdp_search_finds_a_upnp_device() {
    if !available("ssdp_search_finds_a_upnp_device") {
        return;
    }
    let mut lab = Lab::new();
    let (l, s) = pair(&mut lab);
    let mut device = python(&lab, &s, "ssdp_responder.py", &["10.9.1.2"], "ready");
    let out = run_example(
        &lab,
        &l,
        "ssdp_search",
        &["--target", "upnp:rootdevice", "--seconds", "2"],
    );
    let _ = device.kill();
    let _ = device.wait();
    assert!(out.contains("from 10.9.1.2:1900\n"), "{out}");
    assert!(
        out.contains("  LOCATION: http://10.9.1.2:49152/desc.xml\n"),
        "{out}"
    );
    assert!(
        out.contains("  USN: uuid:xt-test-device::upnp:rootdevice\n"),
        "{out}"
    );
    assert!(!out.contains("\n0 answer(s)"), "{out}");
}

/// who_is_there lists each peer with its name and MAC: P (avahi answers for "xtpeer.local")
/// by mDNS, Q (no responder) by the system resolver, here the hosts file of L's namespace.
#[test]
fn who_is_there_names_peers_by_mdns_and_by_the_system_resolver() {
    let test = "who_is_there_names_peers_by_mdns_and_by_the_system_resolver";
    if !available(test)
        || !require(
            common::netns::avahi_installed(),
            test,
            "avahi-daemon is not installed (Debian package avahi-daemon)",
        )
    {
        return;
    }
    let mut lab = Lab::new();
    let (l, p, q) = lab.l_p_q();
    let _avahi = lab.mdns_responder(&p, "xtpeer", "e0", &["10.8.1.2"]);
    lab.etc_file(
        &l,
        "hosts",
        "127.0.0.1 localhost\n10.8.2.2 q-from-hosts.test\n",
    );
    // Nothing else to ask: no name server in the namespace.
    lab.etc_file(&l, "resolv.conf", "nameserver 127.0.0.1\n");
    let (p_mac, q_mac) = (lab.mac(&p, "e0"), lab.mac(&q, "e0"));

    let mut child = lab
        .command(&l, examples().join("who_is_there").to_str().unwrap())
        .args(["--port", "0", "--lookup-ms", "3000", "--max-seconds", "30"])
        .env("LD_LIBRARY_PATH", c_build::library_dir())
        .stdout(Stdio::piped())
        .spawn()
        .expect("who_is_there runs");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let next_line = |lines: &mut Vec<String>, want: &str| -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    lines.push(line.clone());
                    if line.starts_with(want) {
                        return line;
                    }
                }
                Err(_) => panic!("no line starting {want:?}; got {lines:#?}"),
            }
        }
    };
    let first = next_line(&mut lines, "listening on tcp port ");
    let port: u16 = first
        .trim_start_matches("listening on tcp port ")
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    lab.run(&p, move || {
        std::net::TcpStream::connect(("10.8.1.1", port)).unwrap();
    });
    let line = next_line(&mut lines, "tcp 10.8.1.2 ");
    assert!(
        line.ends_with(&format!(": name xtpeer.local, mac {p_mac}")),
        "{line}"
    );
    lab.run(&p, move || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        s.send_to(b"hello", ("10.8.1.1", port)).unwrap();
    });
    let line = next_line(&mut lines, "udp 10.8.1.2 ");
    assert!(
        line.ends_with(&format!(": name xtpeer.local, mac {p_mac}")),
        "{line}"
    );
    lab.run(&q, move || {
        std::net::TcpStream::connect(("10.8.2.1", port)).unwrap();
    });
    let line = next_line(&mut lines, "tcp 10.8.2.2 ");
    assert!(
        line.ends_with(&format!(": name q-from-hosts.test, mac {q_mac}")),
        "{line}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
