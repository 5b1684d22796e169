//! The Python package (python/xtnet, ctypes over this build's library): its pytest suite, run
//! against real sockets. Needs pytest (`python3 -m pip install pytest`); without it the test
//! says loudly that it skipped, and under XTNET_REQUIRE_ALL (CI) that is a failure.

#[path = "support/c_build.rs"]
#[allow(dead_code)]
mod c_build;
mod common;

use common::netns::require;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let has_pytest = Command::new("python3")
        .args(["-m", "pytest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !require(
        has_pytest,
        "the_python_package_passes_its_pytest_suite",
        "pytest is not installed (python3 -m pip install pytest)",
    ) {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("timeout")
        .args([
            "300",
            "python3",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
        ])
        .arg(root.join("python/tests"))
        .env("XTNET_LIBRARY", c_build::library_dir().join("libxtnet.so"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&root)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pytest failed:\n{text}");
    assert!(text.contains(" passed"), "{text}");
    assert!(!text.contains("skipped"), "nothing may be skipped:\n{text}");
}

/// The Python layers hear of a LAN that changes: a plugin (the XTension names) running in a
/// namespace is told of a link that appears (`XTInterfaceChanged`), and its group, joined
/// before the link existed, arrives on it (with the arrival keys in the info).
#[test]
fn a_python_plugin_hears_of_a_new_link_and_its_group_follows() {
    let test = "a_python_plugin_hears_of_a_new_link_and_its_group_follows";
    if !common::netns::available(test) {
        return;
    }
    let mut lab = common::netns::Lab::new();
    let l = lab.namespace("l");
    let s = lab.namespace("s");
    let script = r#"
import sys, time
from xtnet.xtension import Plugin
events = []
h = {
    "XTInterfaceChanged": lambda name, address, up: events.append(("if", name, address, up)),
    "XTReceivedDatagram": lambda data, sid, info: events.append(("dg", data, info["xtKeyInterface"], info["xtKeyDatagramKind"], info["xtKeyLocalAddress"])),
}
p = Plugin(h)
g = p.names()
sid = g["XTStartUDPListener"](5600)
assert g["XTJoinMulticastGroup"](sid, "239.7.7.7")
print("ready", flush=True)
deadline = time.time() + 20
while time.time() < deadline and not any(e[0] == "dg" for e in events):
    p.poll(50)
for e in events:
    print(*e, flush=True)
p.close()
"#;
    let mut child = lab
        .command(&l, "python3")
        .arg("-c")
        .arg(script)
        .env(
            "PYTHONPATH",
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python"),
        )
        .env("XTNET_LIBRARY", c_build::library_dir().join("libxtnet.so"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // The link comes after the join.
    lab.link(&l, "e1", "10.9.1.1/24", &s, "e0", "10.9.1.2/24");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        lab.run(&s, || {
            let u = std::net::UdpSocket::bind("10.9.1.2:0").unwrap();
            let _ = u.send_to(b"to the group", "239.7.7.7:5600");
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = child.wait();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    assert!(rest.contains("if e1 10.9.1.1 True"), "{rest}");
    assert!(
        rest.contains("dg to the group e1 multicast 239.7.7.7"),
        "{rest}"
    );
}
