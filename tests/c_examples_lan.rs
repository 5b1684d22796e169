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
