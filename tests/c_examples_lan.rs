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
    assert!(out.contains("from 10.9.1.2:1900 on e1\n"), "{out}");
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
        line.contains(&format!(
            ": name xtpeer.local, mac {p_mac} (unicast to 10.8.1.1 on "
        )),
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

/// The C SSDP device (`c-examples/ssdp_device.c`) on L, found from S by two control points this
/// project did not write: Home Assistant's async-upnp-client (`upnp-client search`, then its
/// description fetched from the LOCATION) and GUPnP's `gssdp-discover`. L has two links; the
/// LOCATION must carry L's address on the searcher's link.
#[test]
fn ssdp_device_is_found_by_async_upnp_client_and_gssdp_discover() {
    let test = "ssdp_device_is_found_by_async_upnp_client_and_gssdp_discover";
    if !available(test) {
        return;
    }
    let have_upnp = std::process::Command::new("upnp-client")
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    let have_gssdp = std::process::Command::new("gssdp-discover")
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    if !require(have_upnp, test, "python3 -m pip install async-upnp-client")
        || !require(have_gssdp, test, "apt-get install gupnp-tools")
    {
        return;
    }
    let mut lab = Lab::new();
    let l = lab.namespace("l");
    let s = lab.namespace("s");
    let t = lab.namespace("t");
    lab.link(&l, "e1", "10.9.1.1/24", &s, "e0", "10.9.1.2/24");
    lab.link(&l, "e2", "10.9.2.1/24", &t, "e0", "10.9.2.2/24");
    let mut device = lab
        .command(&l, examples().join("ssdp_device").to_str().unwrap())
        .args(["--max-seconds", "60"])
        .env("LD_LIBRARY_PATH", c_build::library_dir())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ssdp_device runs");
    let mut first = String::new();
    let mut out = BufReader::new(device.stdout.take().unwrap());
    out.read_line(&mut first).unwrap();
    let http_port: u16 = first
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{first}"));
    // async-upnp-client from S: the answer, with the LOCATION on L's e1 address.
    let search = lab
        .command(&s, "upnp-client")
        .args([
            "--timeout",
            "3",
            "search",
            "--bind",
            "10.9.1.2",
            "--search_target",
            "upnp:rootdevice",
        ])
        .output()
        .unwrap();
    let found = String::from_utf8_lossy(&search.stdout).into_owned();
    let location = format!("http://10.9.1.1:{http_port}/desc.xml");
    assert!(
        found.contains(&location),
        "upnp-client search: {found}{}",
        String::from_utf8_lossy(&search.stderr)
    );
    assert!(
        found.contains("uuid:2f402f80-da50-11e1-9b23-00178801c0de::upnp:rootdevice"),
        "{found}"
    );
    // ... and the description it points at, fetched by async-upnp-client's own factory.
    let script = format!(
        "import asyncio\n\
         from async_upnp_client.aiohttp import AiohttpRequester\n\
         from async_upnp_client.client_factory import UpnpFactory\n\
         async def main():\n\
         \x20   d = await UpnpFactory(AiohttpRequester()).async_create_device({location:?})\n\
         \x20   print(d.friendly_name, d.device_type, d.udn)\n\
         asyncio.run(main())\n"
    );
    let desc = lab
        .command(&s, "python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&desc.stdout).trim(),
        "xtnet demo device urn:schemas-upnp-org:device:Basic:1 uuid:2f402f80-da50-11e1-9b23-00178801c0de",
        "{}",
        String::from_utf8_lossy(&desc.stderr)
    );
    // gssdp-discover from T, on the other link: LOCATION on L's e2 address.
    let discover = lab
        .command(&t, "gssdp-discover")
        .args(["-i", "e0", "--timeout=3", "--target=upnp:rootdevice"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&discover.stdout).into_owned();
    assert!(
        text.contains(&format!("http://10.9.2.1:{http_port}/desc.xml")),
        "gssdp-discover: {text}{}",
        String::from_utf8_lossy(&discover.stderr)
    );
    let _ = device.kill();
    let _ = device.wait();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    assert!(
        rest.contains("answered upnp:rootdevice from 10.9.1.2:") && rest.contains(" on e1 "),
        "{rest}"
    );
    assert!(rest.contains(" on e2 "), "{rest}");
}
