//! Outgoing TLS through the C surface, against Python's ssl module as the server and with
//! certificates and fingerprints made by the openssl command: every trust mode, its failure and
//! code, the fingerprint a host pins, the protocol version, framing and writes over TLS, and a
//! peer that does not speak TLS.

mod common;
use common::*;
use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Certificates for the tests: a CA, a server certificate from it for localhost/127.0.0.1,
/// and a self-signed one (as devices have).
struct Pki {
    dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req`: a new P-256 key `key`, and a self-signed certificate (`x509`) or a signing
/// request `out` for `subject`, with `extra` arguments.
fn new_key(dir: &Path, x509: bool, key: &str, out: &str, subject: &str, extra: &[&str]) {
    let mut args = vec!["req"];
    if x509 {
        args.extend(["-x509", "-days", "2"]);
    }
    args.extend([
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ]);
    args.extend(["-keyout", key, "-out", out, "-subj", subject]);
    args.extend(extra);
    openssl(dir, &args);
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pki-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.as_path();
        new_key(d, true, "ca.key", "ca.pem", "/CN=xtnet test CA", &[]);
        new_key(d, false, "server.key", "server.csr", "/CN=localhost", &[]);
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        );
        new_key(d, false, "client.key", "client.csr", "/CN=a plugin", &[]);
        std::fs::write(
            dir.join("client.ext"),
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client.pem",
                "-days",
                "2",
                "-extfile",
                "client.ext",
            ],
        );
        let san = ["-addext", "subjectAltName=DNS:bridge.invalid"];
        new_key(d, true, "device.key", "device.pem", "/CN=hue-bridge", &san);
        Pki { dir }
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }

    /// The SHA-256 of a certificate's SubjectPublicKeyInfo, as openssl computes it.
    fn fingerprint(&self, cert: &str) -> String {
        let spki = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r",
                self.path(cert)
            ))
            .output()
            .unwrap();
        String::from_utf8(spki.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }
}

/// Python's ssl echo server with `cert`; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(pki: &Pki, cert: &str, key: &str, extra: &[&str]) -> Server {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_echo.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(pki.path(cert))
            .arg(pki.path(key))
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("port ").unwrap().parse().unwrap();
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// XtTlsOptions with C strings kept alive beside it.
struct Options {
    _texts: Vec<CString>,
    raw: XtTlsOptions,
}

fn options(
    trust: u32,
    ca_file: Option<&str>,
    pin: Option<&str>,
    server_name: Option<&str>,
) -> Options {
    let mut texts = Vec::new();
    let mut keep = |s: Option<&str>| match s {
        Some(s) => {
            let c = CString::new(s).unwrap();
            let p = c.as_ptr();
            texts.push(c);
            p
        }
        None => std::ptr::null(),
    };
    let raw = XtTlsOptions {
        struct_size: std::mem::size_of::<XtTlsOptions>() as u32,
        trust,
        ca_file: keep(ca_file),
        pin_sha256: keep(pin),
        server_name: keep(server_name),
        cert_file: std::ptr::null(),
        key_file: std::ptr::null(),
    };
    Options { _texts: texts, raw }
}

fn open(ctx: &Ctx, host: &str, port: u16, o: Option<&Options>) -> u64 {
    let h = CString::new(host).unwrap();
    let id = unsafe {
        xt_open_tls_connection(
            ctx.ptr,
            h.as_ptr(),
            port,
            b"\n".as_ptr(),
            1,
            o.map_or(std::ptr::null(), |o| &o.raw),
        )
    };
    assert_ne!(id, 0, "xt_open_tls_connection: {}", last_error_text());
    id
}

fn echo_round(ctx: &Ctx, id: u64, line: &str) {
    assert_eq!(ctx.send(id, format!("{line}\n").as_bytes()), XT_OK);
    ctx.wait_until("the echo", Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Data(i, d) if *i == id && d == line.as_bytes()))
    });
}

#[test]
fn a_ca_file_trusts_the_server_and_the_info_carries_its_fingerprint_and_protocol() {
    let pki = Pki::new("ca");
    let server = Server::start(&pki, "server.pem", "server.key", &[]);
    let ctx = Ctx::for_suite();
    let o = options(XT_TRUST_CA_FILE, Some(&pki.path("ca.pem")), None, None);
    // By name (SNI and the name checked) and by IP address (checked against the IP entry).
    for host in ["localhost", "127.0.0.1"] {
        let id = open(&ctx, host, server.port, Some(&o));
        let info = ctx.wait_connected(id);
        assert_eq!(info.tls_protocol, "TLSv1.3");
        assert_eq!(info.tls_peer_fingerprint, pki.fingerprint("server.pem"));
        echo_round(&ctx, id, "hello over TLS");
        // Framing across records: several messages in one write, one message in pieces.
        assert_eq!(ctx.send(id, b"a\nb\nc"), XT_OK);
        assert_eq!(ctx.send(id, b"d\n"), XT_OK);
        ctx.wait_until("framed echoes", Duration::from_secs(10), |evs| {
            evs.iter()
                .any(|e| matches!(e, Ev::Data(i, d) if *i == id && d == b"cd"))
        });
        assert_eq!(
            ctx.data_of(id)[1..],
            [b"a".to_vec(), b"b".to_vec(), b"cd".to_vec()]
        );
        assert_eq!(unsafe { xt_disconnect(ctx.ptr, id) }, XT_OK);
        let end = ctx.wait_closed(id);
        assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
        assert_eq!(end.tls_protocol, "TLSv1.3", "the same info in every event");
    }
    // A large message in both directions (many TLS records).
    let id = open(&ctx, "localhost", server.port, Some(&o));
    ctx.wait_connected(id);
    let big = "x".repeat(300_000);
    echo_round(&ctx, id, &big);
}

#[test]
fn untrusted_certificates_end_with_1011_and_the_fingerprint_to_pin() {
    let pki = Pki::new("untrusted");
    let server = Server::start(&pki, "server.pem", "server.key", &[]);
    let device = Server::start(&pki, "device.pem", "device.key", &[]);
    let ctx = Ctx::for_suite();
    let want = pki.fingerprint("server.pem");
    let cases = [
        // The web's roots do not know this CA.
        (
            "system roots",
            options(XT_TRUST_SYSTEM, None, None, None),
            server.port,
        ),
        // The right CA, the wrong name.
        (
            "wrong name",
            options(
                XT_TRUST_CA_FILE,
                Some(&pki.path("ca.pem")),
                None,
                Some("other.example"),
            ),
            server.port,
        ),
        // A pin of another key.
        (
            "wrong pin",
            options(XT_TRUST_PIN, None, Some(&"00".repeat(32)), None),
            server.port,
        ),
        // A self-signed device certificate is no CA's.
        (
            "self-signed",
            options(XT_TRUST_CA_FILE, Some(&pki.path("ca.pem")), None, None),
            device.port,
        ),
    ];
    for (what, o, port) in &cases {
        let id = open(&ctx, "localhost", *port, Some(o));
        let end = ctx.wait_closed(id);
        assert_eq!(
            end.error_number, XT_ERR_TLS_UNTRUSTED,
            "{what}: {}",
            end.error_message
        );
        let fp = if *port == device.port {
            pki.fingerprint("device.pem")
        } else {
            want.clone()
        };
        assert!(
            end.error_message.contains(&fp),
            "{what}: {}",
            end.error_message
        );
        assert_eq!(
            end.tls_peer_fingerprint, fp,
            "{what}: the info carries what was refused"
        );
        assert!(
            end.error_message.contains("not trusted"),
            "{what}: {}",
            end.error_message
        );
        assert!(
            !ctx.events_of(id)
                .iter()
                .any(|e| matches!(e, Ev::Connected(..))),
            "{what}: no connected event"
        );
    }
    // NULL options are the system's trust.
    let id = open(&ctx, "localhost", server.port, None);
    assert_eq!(ctx.wait_closed(id).error_number, XT_ERR_TLS_UNTRUSTED);
}

#[test]
fn a_pin_trusts_a_device_whatever_its_names_and_any_trusts_on_first_use() {
    let pki = Pki::new("pin");
    let device = Server::start(&pki, "device.pem", "device.key", &[]);
    let ctx = Ctx::for_suite();
    // Trust on first use: accept, read the fingerprint...
    let id = open(
        &ctx,
        "127.0.0.1",
        device.port,
        Some(&options(XT_TRUST_ANY, None, None, None)),
    );
    let first = ctx.wait_connected(id);
    assert_eq!(first.tls_peer_fingerprint, pki.fingerprint("device.pem"));
    echo_round(&ctx, id, "first use");
    // ...and pin it next time: upper case with colons, as users copy them.
    let pretty: Vec<String> = first
        .tls_peer_fingerprint
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8(c.to_vec()).unwrap().to_uppercase())
        .collect();
    let pin = options(XT_TRUST_PIN, None, Some(&pretty.join(":")), None);
    let id = open(&ctx, "127.0.0.1", device.port, Some(&pin));
    let info = ctx.wait_connected(id);
    assert_eq!(info.tls_peer_fingerprint, first.tls_peer_fingerprint);
    echo_round(&ctx, id, "pinned");
}

#[test]
fn tls_1_2_and_a_peer_that_does_not_speak_tls() {
    let pki = Pki::new("versions");
    let server = Server::start(&pki, "server.pem", "server.key", &["--max-version", "1.2"]);
    let ctx = Ctx::for_suite();
    let o = options(XT_TRUST_CA_FILE, Some(&pki.path("ca.pem")), None, None);
    let id = open(&ctx, "localhost", server.port, Some(&o));
    assert_eq!(ctx.wait_connected(id).tls_protocol, "TLSv1.2");
    echo_round(&ctx, id, "twelve");
    // A plain TCP server that answers with text: 1010, not 1011.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = plain.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = plain.accept() {
            use std::io::Write;
            let _ = s.write_all(b"220 hello, this is not TLS\r\n");
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let id = open(&ctx, "localhost", port, Some(&o));
    let end = ctx.wait_closed(id);
    assert_eq!(
        end.error_number, XT_ERR_TLS_HANDSHAKE,
        "{}",
        end.error_message
    );
    // A server that accepts and never speaks: the connect timeout bounds the handshake.
    ctx.set(XT_OPT_CONNECT_TIMEOUT_MS, 300);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let id = open(&ctx, "localhost", port, Some(&o));
    assert_eq!(ctx.wait_closed(id).error_number, libc::ETIMEDOUT);
    drop(silent);
}

#[test]
fn bad_tls_options_are_refused_at_the_call() {
    let pki = Pki::new("badclient");
    let ctx = Ctx::for_suite();
    let host = c"localhost";
    let call = |o: &Options| unsafe {
        xt_open_tls_connection(ctx.ptr, host.as_ptr(), 443, std::ptr::null(), 0, &o.raw)
    };
    for (what, o) in [
        (
            "CA mode without a file",
            options(XT_TRUST_CA_FILE, None, None, None),
        ),
        (
            "a missing CA file",
            options(XT_TRUST_CA_FILE, Some("/no/such/ca.pem"), None, None),
        ),
        (
            "pin mode without a pin",
            options(XT_TRUST_PIN, None, None, None),
        ),
        (
            "a short pin",
            options(XT_TRUST_PIN, None, Some("abcd"), None),
        ),
        ("an unknown mode", options(9, None, None, None)),
        (
            "a client certificate without its key",
            cert_options(Some(&pki.path("client.pem")), None),
        ),
        (
            "a client certificate with another's key",
            cert_options(Some(&pki.path("client.pem")), Some(&pki.path("device.key"))),
        ),
        (
            "a missing client certificate",
            cert_options(Some("/no/such.pem"), Some("/no/such.key")),
        ),
    ] {
        assert_eq!(call(&o), 0, "{what}");
        assert_eq!(
            xt_last_error(),
            XT_ERR_INVALID_ARGUMENT,
            "{what}: {}",
            last_error_text()
        );
    }
    let mut small = options(XT_TRUST_ANY, None, None, None);
    small.raw.struct_size = 4;
    assert_eq!(call(&small), 0);
    assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT);
    assert_eq!(
        unsafe {
            xt_open_tls_connection(
                std::ptr::null_mut(),
                host.as_ptr(),
                1,
                std::ptr::null(),
                0,
                std::ptr::null(),
            )
        },
        0
    );
}

/// Options presenting `cert` with `key` (a listener's certificate, or a client's).
fn cert_options(cert: Option<&str>, key: Option<&str>) -> Options {
    let mut o = options(XT_TRUST_ANY, None, None, None);
    let c = cert.map(|c| CString::new(c).unwrap());
    let k = key.map(|k| CString::new(k).unwrap());
    o.raw.cert_file = c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    o.raw.key_file = k.as_ref().map_or(std::ptr::null(), |k| k.as_ptr());
    o._texts.extend(c);
    o._texts.extend(k);
    o
}

fn tls_listen(ctx: &Ctx, o: Option<&Options>) -> (u32, u16) {
    let id = unsafe {
        xt_start_tls_listener(
            ctx.ptr,
            0,
            b"\n".as_ptr(),
            1,
            o.map_or(std::ptr::null(), |o| &o.raw),
        )
    };
    assert_ne!(id, 0, "xt_start_tls_listener: {}", last_error_text());
    (id, unsafe { xt_listener_port(ctx.ptr, id) })
}

#[test]
fn a_self_signed_listener_is_pinned_by_its_fingerprint() {
    let server = Ctx::for_suite();
    echo_with(&server, b"\n");
    let (id, port) = tls_listen(&server, None);
    let fp = unsafe { std::ffi::CStr::from_ptr(xt_listener_fingerprint(server.ptr, id)) }
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(fp.len(), 64);
    // openssl fetches the certificate and computes the same fingerprint.
    let seen = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r"
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&seen.stdout)
            .split_whitespace()
            .next(),
        Some(fp.as_str())
    );
    // An xtnet client that pins it talks to it; the server's events carry the protocol.
    let client = Ctx::for_suite();
    let id_c = open(
        &client,
        "127.0.0.1",
        port,
        Some(&options(XT_TRUST_PIN, None, Some(&fp), None)),
    );
    let info = client.wait_connected(id_c);
    assert_eq!(info.tls_peer_fingerprint, fp);
    echo_round(&client, id_c, "to a pinned listener");
    let (accepted, ainfo) = server.wait_new(1); // after openssl's
    assert_eq!(ainfo.tls_protocol, "TLSv1.3");
    assert_eq!(
        ainfo.tls_peer_fingerprint, "",
        "no client certificate is asked"
    );
    assert_eq!(server.data_of(accepted), [b"to a pinned listener".to_vec()]);
    // The system's trust refuses it (self-signed), with the same fingerprint.
    let refused = open(&client, "localhost", port, None);
    let end = client.wait_closed(refused);
    assert_eq!(end.error_number, XT_ERR_TLS_UNTRUSTED);
    assert_eq!(end.tls_peer_fingerprint, fp);
    // A plain listener has no fingerprint.
    let (plain, _) = server.listen(b"\n");
    assert!(unsafe { xt_listener_fingerprint(server.ptr, plain) }.is_null());
    assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
}

#[test]
fn a_listener_with_a_pem_certificate_serves_python_ssl_and_ignores_non_tls_clients() {
    let pki = Pki::new("listener");
    let server = Ctx::for_suite();
    server.set(XT_OPT_HTTP_REQUEST_TIMEOUT_MS, 500);
    echo_with(&server, b"\n");
    let o = cert_options(Some(&pki.path("server.pem")), Some(&pki.path("server.key")));
    let (_, port) = tls_listen(&server, Some(&o));
    let script = format!(
        "import socket,ssl\n\
         c=ssl.create_default_context(cafile={ca:?})\n\
         s=c.wrap_socket(socket.create_connection(('127.0.0.1',{port})),server_hostname='localhost')\n\
         s.sendall(b'python says hi\\n')\n\
         f=s.makefile('rb')\n\
         print(f.readline().decode().strip(), s.version())\n",
        ca = pki.path("ca.pem"),
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "python says hi TLSv1.3"
    );
    // A client that does not speak TLS, and one that says nothing: closed, no event at all.
    let before = server.events().len();
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    use std::io::{Read, Write};
    plain.write_all(b"hello in the clear\n").unwrap();
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 256];
    let _ = plain.read(&mut buf); // an alert, then the close
    let started = std::time::Instant::now();
    assert!(
        matches!(silent.read(&mut buf), Ok(0) | Err(_)),
        "closed after the handshake deadline"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    std::thread::sleep(Duration::from_millis(200));
    let new: Vec<_> = server.events()[before..]
        .iter()
        .filter(|e| !matches!(e, Ev::Log(..)))
        .cloned()
        .collect();
    assert!(new.is_empty(), "the host heard of them: {new:?}");
}

#[test]
fn bad_listener_certificates_are_refused_at_the_call() {
    let pki = Pki::new("badlistener");
    let ctx = Ctx::for_suite();
    let call =
        |o: &Options| unsafe { xt_start_tls_listener(ctx.ptr, 0, std::ptr::null(), 0, &o.raw) };
    for (what, o) in [
        (
            "a certificate without its key",
            cert_options(Some(&pki.path("server.pem")), None),
        ),
        (
            "a key that is not the certificate's",
            cert_options(Some(&pki.path("server.pem")), Some(&pki.path("device.key"))),
        ),
        (
            "a missing file",
            cert_options(Some("/no/such.pem"), Some("/no/such.key")),
        ),
        ("a CA file for client certificates that does not exist", {
            let mut o = cert_options(None, None);
            let ca = CString::new("/no/such/ca.pem").unwrap();
            o.raw.ca_file = ca.as_ptr();
            o._texts.push(ca);
            o
        }),
    ] {
        assert_eq!(call(&o), 0, "{what}");
        assert_eq!(
            xt_last_error(),
            XT_ERR_INVALID_ARGUMENT,
            "{what}: {}",
            last_error_text()
        );
    }
}

/// Sets `ca_file` (client certificates asked by a listener) on options.
fn with_ca(mut o: Options, ca: &str) -> Options {
    let c = CString::new(ca).unwrap();
    o.raw.ca_file = c.as_ptr();
    o._texts.push(c);
    o
}

fn https_listen(ctx: &Ctx, o: Option<&Options>) -> (u32, u16) {
    let id = unsafe { xt_start_https_listener(ctx.ptr, 0, o.map_or(std::ptr::null(), |o| &o.raw)) };
    assert_ne!(id, 0, "xt_start_https_listener: {}", last_error_text());
    (id, unsafe { xt_listener_port(ctx.ptr, id) })
}

/// `curl -s` with `args`; returns (exit code, stdout).
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs (Debian package curl)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A page handler that answers "<path> over <protocol>" with the request's TLS info.
fn answer_with_tls_info(ctx: &Ctx) {
    ctx.on_page(|_, _, page, _, resp| unsafe {
        let body = format!(
            "{} over {} from [{}]",
            page.path, page.info.tls_protocol, page.info.tls_peer_fingerprint
        );
        xt_http_response_set_body(resp, body.as_ptr(), body.len());
    });
}

#[test]
fn curl_gets_pages_over_https_with_keep_alive_and_plain_http_is_refused() {
    let pki = Pki::new("https");
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_HTTP_REQUEST_TIMEOUT_MS, 500);
    answer_with_tls_info(&ctx);
    let o = cert_options(Some(&pki.path("server.pem")), Some(&pki.path("server.key")));
    let (id, port) = https_listen(&ctx, Some(&o));
    assert_eq!(
        unsafe { std::ffi::CStr::from_ptr(xt_listener_fingerprint(ctx.ptr, id)) }
            .to_str()
            .unwrap(),
        pki.fingerprint("server.pem")
    );
    let ca = pki.path("ca.pem");
    let a = format!("https://localhost:{port}/a");
    let b = format!("https://localhost:{port}/b");
    // Two requests on one kept-alive TLS connection.
    let (code, out) = curl(&["--cacert", &ca, &a, &b]);
    assert_eq!(code, 0, "curl failed: {out}");
    assert_eq!(out, "/a over TLSv1.3 from []/b over TLSv1.3 from []");
    let peers: std::collections::HashSet<u16> =
        ctx.pages().iter().map(|p| p.info.peer_port).collect();
    assert_eq!(peers.len(), 1, "one connection for both requests");
    // TLS 1.2 too.
    let (code, out) = curl(&["--cacert", &ca, "--tls-max", "1.2", &a]);
    assert_eq!((code, out.as_str()), (0, "/a over TLSv1.2 from []"));
    // curl refuses the certificate without the CA (60: peer certificate cannot be authenticated).
    assert_eq!(curl(&[&a]).0, 60);
    // Plain HTTP to the HTTPS port: no page, closed (curl fails: an alert is no HTTP answer).
    let before = ctx.pages().len();
    let (code, _) = curl(&[&format!("http://localhost:{port}/plain")]);
    assert_ne!(code, 0);
    // A silent client is closed at the handshake deadline.
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = std::time::Instant::now();
    use std::io::Read;
    assert!(matches!(silent.read(&mut [0u8; 64]), Ok(0) | Err(_)));
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(ctx.pages().len(), before, "no page for either");
    // The listener still serves after all that; stopping it frees the port.
    assert_eq!(curl(&["--cacert", &ca, &b]).0, 0);
    assert!(unsafe { xt_stop_html_listener(ctx.ptr, id) });
    assert_ne!(curl(&["--cacert", &ca, &b]).0, 0);
}

#[test]
fn a_self_signed_https_listener_answers_a_408_through_tls_to_a_slow_head() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_HTTP_REQUEST_TIMEOUT_MS, 300);
    answer_with_tls_info(&ctx);
    let (id, port) = https_listen(&ctx, None);
    let fp = unsafe { std::ffi::CStr::from_ptr(xt_listener_fingerprint(ctx.ptr, id)) }
        .to_str()
        .unwrap()
        .to_owned();
    // Python's ssl, trusting nothing but reading the certificate: its fingerprint is the one
    // the listener tells; a request head that stops halfway gets 408 over TLS.
    let script = format!(
        "import socket,ssl,hashlib,time,subprocess\n\
         c=ssl.create_default_context(); c.check_hostname=False; c.verify_mode=ssl.CERT_NONE\n\
         s=c.wrap_socket(socket.create_connection(('127.0.0.1',{port})))\n\
         der=s.getpeercert(binary_form=True)\n\
         pem=ssl.DER_cert_to_PEM_cert(der)\n\
         pub=subprocess.run(['openssl','x509','-pubkey','-noout'],input=pem.encode(),capture_output=True).stdout\n\
         spki=subprocess.run(['openssl','pkey','-pubin','-outform','DER'],input=pub,capture_output=True).stdout\n\
         print(hashlib.sha256(spki).hexdigest())\n\
         s.sendall(b'GET /slow HTTP/1.1\\r\\nHost: x\\r\\n')\n\
         data=b''\n\
         while True:\n\
         \x20   d=s.recv(4096)\n\
         \x20   if not d: break\n\
         \x20   data+=d\n\
         print(data.split(b'\\r\\n')[0].decode())\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(fp.as_str()));
    assert_eq!(lines.next(), Some("HTTP/1.1 408 Request Timeout"));
    assert!(ctx.pages().is_empty());
}

#[test]
fn client_certificates_on_https_and_tls_listeners() {
    let pki = Pki::new("clientcert");
    let ctx = Ctx::for_suite();
    answer_with_tls_info(&ctx);
    let o = with_ca(
        cert_options(Some(&pki.path("server.pem")), Some(&pki.path("server.key"))),
        &pki.path("ca.pem"),
    );
    let (_, port) = https_listen(&ctx, Some(&o));
    let ca = pki.path("ca.pem");
    let url = format!("https://localhost:{port}/who");
    // Without a certificate the handshake fails; with one from the CA the page sees its
    // fingerprint; one that does not chain to the CA (the device's) is refused.
    assert_ne!(curl(&["--cacert", &ca, &url]).0, 0);
    let (code, out) = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &pki.path("client.pem"),
        "--key",
        &pki.path("client.key"),
        &url,
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!("/who over TLSv1.3 from [{}]", pki.fingerprint("client.pem"))
    );
    let (code, _) = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &pki.path("device.pem"),
        "--key",
        &pki.path("device.key"),
        &url,
    ]);
    assert_ne!(code, 0);
    assert_eq!(ctx.pages().len(), 1);

    // An xtnet client presents its certificate to an xtnet TLS listener that asks for one.
    let server = Ctx::for_suite();
    echo_with(&server, b"\n");
    let so = with_ca(cert_options(None, None), &pki.path("ca.pem"));
    let (_, tport) = tls_listen(&server, Some(&so));
    let client = Ctx::for_suite();
    let mut co = options(XT_TRUST_ANY, None, None, None);
    let (c, k) = (
        CString::new(pki.path("client.pem")).unwrap(),
        CString::new(pki.path("client.key")).unwrap(),
    );
    co.raw.cert_file = c.as_ptr();
    co.raw.key_file = k.as_ptr();
    co._texts.extend([c, k]);
    let id = open(&client, "127.0.0.1", tport, Some(&co));
    client.wait_connected(id);
    echo_round(&client, id, "with my certificate");
    let (_, info) = server.wait_new(0);
    assert_eq!(info.tls_peer_fingerprint, pki.fingerprint("client.pem"));
    // Without one: the handshake fails and the server never hears of it.
    let bare = open(
        &client,
        "127.0.0.1",
        tport,
        Some(&options(XT_TRUST_ANY, None, None, None)),
    );
    let end = client.wait_closed(bare);
    assert_ne!(end.error_number, XT_OK);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        server
            .events()
            .iter()
            .filter(|e| matches!(e, Ev::New(..)))
            .count(),
        1
    );
}
