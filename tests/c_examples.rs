//! The C examples: compiled with -std=c11 -Wall -Wextra -Wpedantic -Werror against the header
//! and the library of this build, then run against real peers on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[path = "support/c_build.rs"]
mod c_build;

/// Builds the examples once per test run; returns the directory holding them.
fn examples() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        c_build::build_c_examples(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-examples"))
    })
}

struct Running {
    child: Child,
    out: BufReader<ChildStdout>,
    port: u16,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = c_build::example_command(&examples().join(name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("example starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let port = first
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("first line names the port: {first:?}"));
        Running { child, out, port }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l
    }

    /// Sends SIGTERM and returns (exit code, the rest of stdout).
    fn stop(mut self) -> (i32, String) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        (status.code().unwrap_or(-1), rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

fn echo_server_echoes(dispatch: &str) {
    let server = Running::start(
        "echo_server",
        &["--port", "0", "--dispatch", dispatch, "--max-seconds", "60"],
    );
    let mut clients: Vec<TcpStream> = (0..3).map(|_| connect(server.port)).collect();
    for round in 0..20 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(format!("client {i} round {round}\r\n").as_bytes())
                .unwrap();
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let expect = format!("client {i} round {round}\r\n");
            assert_eq!(read_exactly(c, expect.len()), expect.as_bytes());
        }
    }
    // Split boundaries and several messages per write.
    let c = &mut clients[0];
    c.write_all(b"sp").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    c.write_all(b"lit\r").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    c.write_all(b"\nx\r\ny\r\n").unwrap();
    assert_eq!(read_exactly(c, 13), b"split\r\nx\r\ny\r\n");
    drop(clients);
    std::thread::sleep(Duration::from_millis(200));
    let (code, rest) = server.stop();
    assert_eq!(code, 0, "clean exit on SIGTERM; output: {rest}");
    assert!(
        rest.contains("stopped: 3 connections, 63 messages"),
        "{rest}"
    );
    assert_eq!(rest.matches("closed: 102").count(), 3, "{rest}");
}

#[test]
fn echo_server_thread_dispatch() {
    echo_server_echoes("thread");
}

#[test]
fn echo_server_poll_dispatch() {
    echo_server_echoes("poll");
}

#[test]
fn echo_server_binary_boundary_and_max_seconds() {
    let mut server = Running::start(
        "echo_server",
        &[
            "--port",
            "0",
            "--boundary",
            "\\x00END",
            "--max-seconds",
            "1",
        ],
    );
    let mut c = connect(server.port);
    c.write_all(b"a\x00ENDb\r\n\x00END").unwrap();
    assert_eq!(read_exactly(&mut c, 12), b"a\x00ENDb\r\n\x00END");
    let line = server.line();
    assert!(line.starts_with("connection "), "{line}");
    let start = Instant::now();
    let status = server.child.wait().unwrap();
    assert!(status.success());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "--max-seconds stops it"
    );
}

#[test]
fn echo_server_reports_a_busy_port() {
    let busy = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = c_build::example_command(&examples().join("echo_server"))
        .args(["--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error 105"), "{err}");
}

#[test]
fn line_client_talks_to_echo_server() {
    let server = Running::start("echo_server", &["--port", "0", "--max-seconds", "60"]);
    let out = c_build::example_command(&examples().join("line_client"))
        .args([
            "--port",
            &server.port.to_string(),
            "hello",
            "wide world",
            "3",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("connected to 127.0.0.1 port"),
        "{stdout}"
    );
    assert!(
        stdout.contains("reply: hello\nreply: wide world\nreply: 3\n"),
        "{stdout}"
    );
    // Lines from standard input, with another boundary, against the same server on ";".
    let semi = Running::start(
        "echo_server",
        &["--port", "0", "--boundary", ";", "--max-seconds", "60"],
    );
    let mut child = c_build::example_command(&examples().join("line_client"))
        .args(["--port", &semi.port.to_string(), "--boundary", ";"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from\nstdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("reply: from\nreply: stdin\n"));
}

#[test]
fn line_client_reports_a_refused_connection() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = c_build::example_command(&examples().join("line_client"))
        .args(["--port", &port.to_string(), "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("error {}", libc::ECONNREFUSED)),
        "{err}"
    );
}

#[test]
fn poll_host_relays_between_clients_and_stdin() {
    let mut host = Running::start("poll_host", &["--port", "0", "--max-seconds", "60"]);
    let mut a = connect(host.port);
    assert!(host.line().starts_with("joined: 127.0.0.1:"));
    let mut b = connect(host.port);
    assert!(host.line().starts_with("joined: 127.0.0.1:"));
    let a_port = a.local_addr().unwrap().port();
    a.write_all(b"hi there\n").unwrap();
    let expect = format!("127.0.0.1:{a_port}: hi there\n");
    assert_eq!(read_exactly(&mut b, expect.len()), expect.as_bytes());
    let mut stdin = host.child.stdin.take().unwrap();
    stdin.write_all(b"from host\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(read_exactly(&mut a, 16), b"host: from host\n");
    assert_eq!(read_exactly(&mut b, 16), b"host: from host\n");
    drop(a);
    loop {
        let l = host.line();
        if l.starts_with("left:") {
            assert!(l.contains("102"), "{l}");
            break;
        }
    }
}

#[test]
fn the_readme_c_example_compiles_and_echoes() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let code = readme
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("README has a ```c block");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join("readme_host.c"), code).unwrap();
    let lib = c_build::library_dir();
    let status = std::process::Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"])
        .arg(dir.join("readme_host.c"))
        .arg(format!("-I{}/include", env!("CARGO_MANIFEST_DIR")))
        .arg(format!("-L{}", lib.display()))
        .args(["-lxtnet", "-o"])
        .arg(dir.join("readme_host"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the README's C example must compile with -Werror"
    );
    // It listens on the fixed port 9000: run it only if that port is free here.
    if std::net::TcpListener::bind("0.0.0.0:9000").is_err() {
        eprintln!("NOTE: port 9000 is busy; the README example was compiled but not run");
        return;
    }
    let mut host = c_build::example_command(&dir.join("readme_host"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        match TcpStream::connect(("127.0.0.1", 9000)) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("README host did not listen: {e}"),
        }
    };
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"hi\r\n").unwrap();
    c.write_all(b"two\r\nthree\r\n").unwrap();
    assert_eq!(read_exactly(&mut c, 16), b"hi\r\ntwo\r\nthree\r\n");
    let _ = host.kill();
    let _ = host.wait();
}

#[test]
fn echo_server_echoes_datagrams_from_its_udp_port() {
    let mut server = Running::start(
        "echo_server",
        &[
            "--port",
            "0",
            "--udp-port",
            "0",
            "--max-seconds",
            "60",
            "--quiet",
        ],
    );
    let line = server.line();
    let udp_port: u16 = line
        .trim()
        .strip_prefix("udp listening on port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("second line names the UDP port: {line:?}"));
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1500];
    for i in 0..100 {
        let msg = format!("datagram {i}");
        peer.send_to(msg.as_bytes(), ("127.0.0.1", udp_port))
            .unwrap();
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], msg.as_bytes());
        assert_eq!(from.port(), udp_port, "echoed from the listening port");
    }
    let (code, rest) = server.stop();
    assert_eq!(code, 0);
    assert!(
        rest.contains("udp: 100 datagrams, 0 dropped, 0 replies refused"),
        "{rest}"
    );
}

#[test]
fn line_client_over_tls_prints_the_fingerprint_to_pin_and_then_pins_it() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("line-client-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("device.pem"), dir.join("device.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-days", "2", "-subj", "/CN=a device", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_echo.py");
    let mut server = std::process::Command::new("python3")
        .arg(script)
        .arg(&cert)
        .arg(&key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().strip_prefix("port ").unwrap().to_owned();
    let run = |extra: &[&str]| {
        let out = c_build::example_command(&examples().join("line_client"))
            .args(["--port", &port])
            .args(extra)
            .arg("over tls")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // Trust on first use: it connects and prints the fingerprint.
    let (ok, stdout) = run(&["--tls"]);
    assert!(ok, "{stdout}");
    assert!(stdout.contains("reply: over tls\n"), "{stdout}");
    let fp = stdout
        .lines()
        .find_map(|l| l.strip_prefix("TLSv1.3, peer fingerprint "))
        .expect("the fingerprint line")
        .to_owned();
    assert_eq!(fp.len(), 64);
    // Pinned: it connects again; pinned to another key: refused, with what was presented.
    let (ok, stdout) = run(&["--pin", &fp]);
    assert!(ok && stdout.contains("reply: over tls\n"), "{stdout}");
    let (ok, stdout) = run(&["--pin", &"ab".repeat(32)]);
    assert!(!ok);
    assert!(
        stdout.contains(&format!("refused certificate fingerprint {fp}")),
        "{stdout}"
    );
    let _ = server.kill();
    let _ = server.wait();
}
