//! Memory and undefined-behaviour checks with real peers: the C examples and a stress host
//! (tests/c/stress_host.c) built with `-fsanitize=address,undefined` against the library, and
//! an example and the stress host run under valgrind. Any report fails the test.
//! (A missing valgrind is a loud skip, a failure under XTNET_REQUIRE_ALL as in CI.)

#[path = "support/c_build.rs"]
#[allow(dead_code)]
mod c_build;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SANITIZE: &str =
    "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all";

fn out_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// The C examples built with `cflags` into `out`.
fn build_examples(out: &Path, cflags: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("make")
        .args(["-s", "-B", "-C"])
        .arg(root.join("c-examples"))
        .arg(format!("XTNET_LIB={}", c_build::library_dir().display()))
        .arg(format!("OUT={}", out.display()))
        .arg(format!("CFLAGS={cflags}"))
        .status()
        .expect("make runs");
    assert!(status.success(), "the C examples build with {cflags}");
}

/// tests/c/stress_host.c built with `cflags`.
fn build_stress_host(out: &Path, cflags: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(out).unwrap();
    let exe = out.join("stress_host");
    let status = Command::new("cc")
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-D_DEFAULT_SOURCE",
        ])
        .args(cflags.split_whitespace())
        .arg(root.join("tests/c/stress_host.c"))
        .arg(format!("-I{}", root.join("include").display()))
        .arg(format!("-L{}", c_build::library_dir().display()))
        .args(["-lxtnet", "-lpthread", "-o"])
        .arg(&exe)
        .status()
        .expect("cc runs");
    assert!(status.success(), "stress_host builds with {cflags}");
    exe
}

fn sanitizer_env(cmd: &mut Command) -> &mut Command {
    cmd.env("ASAN_OPTIONS", "detect_leaks=1:exitcode=23").env(
        "UBSAN_OPTIONS",
        "print_stacktrace=1:halt_on_error=1:exitcode=24",
    )
}

fn assert_clean(what: &str, status: std::process::ExitStatus, stderr: &str) {
    let reported = [
        "AddressSanitizer",
        "LeakSanitizer",
        "runtime error:",
        "ERROR SUMMARY: ",
    ]
    .iter()
    .any(|m| stderr.contains(m) && !stderr.contains("ERROR SUMMARY: 0 errors"));
    assert!(
        status.success() && !reported,
        "{what}: {status:?}\n{stderr}"
    );
}

/// Starts an example; returns it and the numbers on its first lines ("listening on port P").
fn start(mut cmd: Command, lines: usize) -> (Child, Vec<u16>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example runs");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut ports = Vec::new();
    for _ in 0..lines {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port = line
            .rsplit("port ")
            .next()
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        ports.push(port);
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = out.read_to_string(&mut sink);
    });
    (child, ports)
}

/// A few seconds of real traffic at an echo_server: TCP clients with many messages (some
/// split across writes), one reset mid-message, and datagrams.
fn exercise_echo_server(tcp: u16, udp: u16) {
    let mut clients: Vec<TcpStream> = (0..8)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.set_nodelay(true).unwrap(); // the halves of a message go out at once
            s
        })
        .collect();
    for round in 0..50 {
        for (i, c) in clients.iter_mut().enumerate() {
            let msg = format!("client {i} round {round} {}\r\n", "x".repeat(round * 7));
            let (a, b) = msg.as_bytes().split_at(msg.len() / 2);
            c.write_all(a).unwrap();
            c.write_all(b).unwrap();
            let mut back = vec![0u8; msg.len()];
            c.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
        }
    }
    // One peer resets in the middle of a message.
    let reset = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    socket2::SockRef::from(&reset)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    (&reset).write_all(b"half a mess").unwrap();
    drop(reset);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for i in 0..100 {
        let d = format!("datagram {i}");
        sock.send_to(d.as_bytes(), ("127.0.0.1", udp)).unwrap();
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], d.as_bytes());
    }
}

fn finish(mut child: Child, what: &str) {
    let status = child.wait().expect("the example ends");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_clean(what, status, &stderr);
}

#[test]
fn c_examples_and_a_stress_host_are_clean_under_address_and_undefined_sanitizers() {
    let out = out_dir("c-examples-asan");
    build_examples(&out, SANITIZE);
    // echo_server: TCP and UDP echo with real clients; it ends by itself (--max-seconds).
    let mut cmd = c_build::example_command(&out.join("echo_server"));
    sanitizer_env(&mut cmd).args([
        "--port",
        "0",
        "--udp-port",
        "0",
        "--quiet",
        "--max-seconds",
        "4",
    ]);
    let (child, ports) = start(cmd, 2);
    exercise_echo_server(ports[0], ports[1]);
    finish(child, "echo_server (ASAN+UBSAN)");
    // http_server: curl is the peer (GET, a form POST, a multipart upload, keep-alive).
    let mut cmd = c_build::example_command(&out.join("http_server"));
    sanitizer_env(&mut cmd).args(["--port", "0", "--max-seconds", "4"]);
    let (child, ports) = start(cmd, 1);
    let base = format!("http://127.0.0.1:{}", ports[0]);
    let form = tempfile_with(b"file contents \x00\xff");
    let upload = format!("attachment=@{}", form.display());
    let curl = |args: &[&str]| -> String {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(args)
            .output()
            .expect("curl runs (Debian package curl)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (root_page, query) = (format!("{base}/"), format!("{base}/?q=1"));
    let codes = [
        curl(&[&root_page, &query]), // two requests on one keep-alive connection
        curl(&["-d", "note=Kitchen&device=Porch+Light", &root_page]),
        curl(&["-F", "note=with a file", "-F", &upload, &root_page]),
    ];
    assert_eq!(codes, ["200200", "200", "200"], "curl's answers");
    finish(child, "http_server (ASAN+UBSAN)");
    // The stress host: every protocol talking to itself, bad calls, contexts freed and made
    // again, for three seconds.
    let exe = build_stress_host(&out, SANITIZE);
    let mut cmd = c_build::example_command(&exe);
    let run = sanitizer_env(&mut cmd).arg("3").output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("stress host: ok"), "{stdout}");
    assert_clean(
        "stress_host (ASAN+UBSAN)",
        run.status,
        &String::from_utf8_lossy(&run.stderr),
    );
}

fn tempfile_with(data: &[u8]) -> PathBuf {
    let p = out_dir("upload.bin");
    std::fs::write(&p, data).unwrap();
    p
}

fn valgrind_available() -> bool {
    let ok = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    common::netns::require(
        ok,
        "valgrind tests",
        "valgrind is not installed (Debian package valgrind)",
    )
}

#[test]
fn an_example_and_the_stress_host_are_clean_under_valgrind() {
    if !valgrind_available() {
        return;
    }
    let out = out_dir("c-examples-valgrind");
    build_examples(&out, "-O1 -g");
    let valgrind = |program: &Path| {
        let mut cmd = Command::new("valgrind");
        cmd.env("LD_LIBRARY_PATH", c_build::library_dir())
            .args(["-q", "--error-exitcode=9", "--track-origins=yes"])
            .arg(program);
        cmd
    };
    let mut cmd = valgrind(&out.join("echo_server"));
    cmd.args([
        "--port",
        "0",
        "--udp-port",
        "0",
        "--quiet",
        "--max-seconds",
        "15",
    ]);
    let (child, ports) = start(cmd, 2);
    exercise_echo_server(ports[0], ports[1]);
    finish(child, "echo_server under valgrind");
    let exe = build_stress_host(&out, "-O1 -g");
    let run = valgrind(&exe).arg("1").output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("stress host: ok"), "{stdout}");
    assert_clean(
        "stress_host under valgrind",
        run.status,
        &String::from_utf8_lossy(&run.stderr),
    );
}
