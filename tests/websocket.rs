//! WebSocket through the C surface, with Python's `websockets` package as the real peer (client
//! and server) and hand-made frames for the rules a polite peer never breaks: upgrades accepted
//! in `page_request`, text and binary messages with their kind, fragments joined, large
//! messages, pings, close handshakes both ways with codes and reasons, the message limit (1009),
//! masking and UTF-8 rules (1002, 1007), subprotocols, wss:// on an HTTPS listener, outgoing
//! ws:// and wss://, refused upgrades, and idle pings.

mod common;
use common::*;
use std::ffi::CString;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Skips (or, in CI, fails) when the `websockets` package is missing.
fn have_websockets() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import websockets.sync.client"])
        .status()
        .is_ok_and(|s| s.success());
    common::netns::require(
        ok,
        "WebSocket tests with Python's websockets",
        "python3 -m pip install websockets",
    )
}

/// Runs a Python script; returns its stdout lines (fails the test on a Python error).
fn python(script: &str) -> Vec<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A host whose `page_request` accepts upgrades to /ws (with the subprotocol `protocol`) and
/// echoes every message with its kind; other paths get a page.
fn ws_echo_host(
    ctx: &Ctx,
    protocol: Option<&'static str>,
) -> std::sync::Arc<parking_lot::Mutex<Vec<u64>>> {
    let accepted = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let a = accepted.clone();
    ctx.on_page(move |_, _, page, _, resp| unsafe {
        if page.path == "/ws" {
            let p = protocol.map(|p| CString::new(p).unwrap());
            let id = xt_http_response_accept_websocket(
                resp,
                p.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            );
            assert_ne!(id, 0, "accept: {}", last_error_text());
            a.lock().push(id);
        } else {
            xt_http_response_set_body(resp, b"a page".as_ptr(), 6);
        }
    });
    ctx.on_message(|r, id, data, info| unsafe {
        if info.message_kind != 0 {
            assert_eq!(
                xt_send_websocket(r.ctx(), id, data.as_ptr(), data.len(), info.message_kind),
                XT_OK
            );
        }
    });
    ctx.rec
        .keep_data_info
        .store(true, std::sync::atomic::Ordering::Relaxed);
    accepted
}

fn kinds_of(ctx: &Ctx, id: u64) -> Vec<u32> {
    ctx.rec
        .data_info
        .lock()
        .iter()
        .filter(|(i, _)| *i == id)
        .map(|(_, info)| info.message_kind)
        .collect()
}

#[test]
fn python_client_messages_fragments_pings_and_its_close() {
    if !have_websockets() {
        return;
    }
    let ctx = Ctx::for_suite();
    let accepted = ws_echo_host(&ctx, None);
    let (server_id, port) = ctx.html();
    let out = python(&format!(
        "from websockets.sync.client import connect\n\
         ws=connect('ws://127.0.0.1:{port}/ws', max_size=None)\n\
         ws.send('hello'); print(repr(ws.recv()))\n\
         ws.send(b'\\x00\\x01\\xff'); print(repr(ws.recv()))\n\
         ws.send(['frag', 'mented ', 'text']); print(repr(ws.recv()))\n\
         big=bytes(range(256))*4096\n\
         ws.send(big); print(ws.recv()==big)\n\
         print(ws.ping().wait(5))\n\
         ws.close(1000, 'bye')\n\
         print(ws.close_code, ws.close_reason)\n"
    ));
    assert_eq!(
        out,
        [
            "'hello'",
            "b'\\x00\\x01\\xff'",
            "'fragmented text'",
            "True",
            "True",
            "1000 bye"
        ]
    );
    let id = accepted.lock()[0];
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
    assert!(
        end.error_message.contains("(1000): bye"),
        "{}",
        end.error_message
    );
    assert_eq!(end.server_id, server_id);
    assert_eq!(end.remote_address, "127.0.0.1");
    assert_eq!(
        ctx.data_of(id),
        [
            b"hello".to_vec(),
            b"\x00\x01\xff".to_vec(),
            b"fragmented text".to_vec(),
            [0u8..=255]
                .iter()
                .flat_map(|r| r.clone())
                .collect::<Vec<u8>>()
                .repeat(4096)
        ]
    );
    assert_eq!(
        kinds_of(&ctx, id),
        [XT_WS_TEXT, XT_WS_BINARY, XT_WS_TEXT, XT_WS_BINARY]
    );
    // Exactly one final event; the id is dead.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        ctx.events_of(id)
            .iter()
            .filter(|e| matches!(e, Ev::Error(..)))
            .count(),
        1
    );
    assert_eq!(ctx.send(id, b"late"), XT_ERR_INVALID_STATE);
}

#[test]
fn the_host_closes_sends_text_and_binary_and_chooses_a_subprotocol() {
    if !have_websockets() {
        return;
    }
    let ctx = Ctx::for_suite();
    let accepted = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let a = accepted.clone();
    // Accept, greet from inside page_request (queued until the 101 is out), then close from
    // the first message.
    ctx.on_page(move |r, _, _, _, resp| unsafe {
        let id = xt_http_response_accept_websocket(resp, c"shelly.rpc".as_ptr());
        assert_ne!(id, 0, "accept: {}", last_error_text());
        assert_eq!(xt_send_data(r.ctx(), id, b"welcome".as_ptr(), 7), XT_OK);
        assert_eq!(
            xt_send_websocket(r.ctx(), id, [1u8, 2].as_ptr(), 2, XT_WS_BINARY),
            XT_OK
        );
        // Text must be UTF-8; unknown kinds are refused.
        assert_eq!(
            xt_send_data(r.ctx(), id, [0xffu8].as_ptr(), 1),
            XT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            xt_send_websocket(r.ctx(), id, b"x".as_ptr(), 1, 7),
            XT_ERR_INVALID_ARGUMENT
        );
        a.lock().push(id);
    });
    ctx.on_data(|r, id, _| unsafe {
        assert_eq!(xt_send_data(r.ctx(), id, b"last words".as_ptr(), 10), XT_OK);
        assert_eq!(xt_disconnect(r.ctx(), id), XT_OK);
    });
    let (_, port) = ctx.html();
    let out = python(&format!(
        "from websockets.sync.client import connect\n\
         ws=connect('ws://127.0.0.1:{port}/rpc', subprotocols=['json', 'shelly.rpc'])\n\
         print(ws.subprotocol)\n\
         print(repr(ws.recv())); print(repr(ws.recv()))\n\
         ws.send('bye please')\n\
         print(repr(ws.recv()))\n\
         try:\n\
         \x20   ws.recv()\n\
         except Exception as e:\n\
         \x20   print(type(e).__name__, ws.close_code)\n"
    ));
    assert_eq!(
        out,
        [
            "shelly.rpc",
            "'welcome'",
            "b'\\x01\\x02'",
            "'last words'",
            "ConnectionClosedOK 1000"
        ]
    );
    let id = accepted.lock()[0];
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
    assert!(
        end.error_message.contains("disconnected by the host"),
        "{}",
        end.error_message
    );
    // A subprotocol the client did not offer is refused; so is an upgrade that is none.
    let ctx2 = Ctx::for_suite();
    let codes = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let c = codes.clone();
    ctx2.on_page(move |_, _, page, _, resp| unsafe {
        let id = xt_http_response_accept_websocket(resp, c"mqtt".as_ptr());
        c.lock().push((page.path.clone(), id, xt_last_error()));
        if page.path == "/ws" {
            assert_ne!(xt_http_response_accept_websocket(resp, std::ptr::null()), 0);
        }
    });
    let (_, port2) = ctx2.html();
    let out = python(&format!(
        "from websockets.sync.client import connect\n\
         ws=connect('ws://127.0.0.1:{port2}/ws', subprotocols=['json'])\n\
         print(ws.subprotocol); ws.close()\n\
         import urllib.request, urllib.error\n\
         try:\n\
         \x20   urllib.request.urlopen('http://127.0.0.1:{port2}/plain')\n\
         except urllib.error.HTTPError as e:\n\
         \x20   print(e.code)\n"
    ));
    assert_eq!(out, ["None", "400"]);
    assert_eq!(
        *codes.lock(),
        [
            ("/ws".to_owned(), 0, XT_ERR_INVALID_ARGUMENT),
            ("/plain".to_owned(), 0, XT_ERR_INVALID_STATE)
        ]
    );
}

/// A raw client: the upgrade by hand, then frames as given; returns what the server sent.
fn raw_session(port: u16, frames: &[u8]) -> Vec<u8> {
    let mut s = raw_upgrade(port);
    s.write_all(frames).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    rest
}

/// A raw client's socket after the upgrade (by hand).
fn raw_upgrade(port: u16) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    s
}

/// A masked client frame.
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x11u8, 0x22, 0x33, 0x44];
    let mut f = vec![0x80 | opcode];
    assert!(payload.len() < 126);
    f.push(0x80 | payload.len() as u8);
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// The close code of the first close frame (unmasked, from the server) in `data`.
fn close_code(data: &[u8]) -> Option<u16> {
    let mut i = 0;
    while i + 2 <= data.len() {
        let (op, len) = (data[i] & 0x0f, (data[i + 1] & 0x7f) as usize);
        if op == 8 && len >= 2 {
            return Some(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        }
        i += 2 + len;
    }
    None
}

#[test]
fn protocol_violations_and_the_message_limit_close_with_their_codes() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_WS_MAX_MESSAGE_BYTES, 100);
    let accepted = ws_echo_host(&ctx, None);
    let (_, port) = ctx.html();
    // An unmasked frame from a client: 1002.
    let sent = raw_session(port, &[0x81, 0x02, b'h', b'i']);
    assert_eq!(close_code(&sent), Some(1002));
    // Text that is not UTF-8: 1007.
    let sent = raw_session(port, &masked(0x1, &[0xc3, 0x28]));
    assert_eq!(close_code(&sent), Some(1007));
    // A message past the limit (in two fragments of 60): 1009.
    let mut frames = masked(0x2, &[7; 60]);
    frames[0] &= 0x7f; // not final
    frames.extend(masked(0x0, &[7; 60]));
    let sent = raw_session(port, &frames);
    assert_eq!(close_code(&sent), Some(1009));
    // A message within it (echoed), then a close frame (answered).
    let mut s = raw_upgrade(port);
    s.write_all(&masked(0x1, b"fine")).unwrap();
    let mut echo = [0u8; 6];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"\x81\x04fine");
    s.write_all(&masked(0x8, &[0x03, 0xe8])).unwrap();
    let mut sent = Vec::new();
    let _ = s.read_to_end(&mut sent);
    assert_eq!(close_code(&sent), Some(1000));
    let ids = accepted.lock().clone();
    assert_eq!(ids.len(), 4);
    let ends: Vec<(i32, String)> = ids
        .iter()
        .map(|id| {
            let e = ctx.wait_closed(*id);
            (e.error_number, e.error_message)
        })
        .collect();
    assert_eq!(ends[0].0, XT_ERR_WEBSOCKET, "{}", ends[0].1);
    assert!(ends[0].1.contains("1002"));
    assert_eq!(ends[1].0, XT_ERR_WEBSOCKET, "{}", ends[1].1);
    assert!(ends[1].1.contains("1007"));
    assert_eq!(ends[2].0, XT_ERR_OUT_OF_MEMORY, "{}", ends[2].1);
    assert_eq!(ends[3].0, XT_ERR_LOST_CONNECTION, "{}", ends[3].1);
    assert!(ends[3].1.contains("(1000)"), "{}", ends[3].1);
    assert_eq!(ctx.data_of(ids[3]), [b"fine".to_vec()]);
}

/// Python's websockets echo server (plain, or TLS with `cert`/`key`); killed on drop.
struct PyServer {
    child: Child,
    port: u16,
}

impl PyServer {
    fn start(tls: Option<(&str, &str)>) -> PyServer {
        let ssl = match tls {
            Some((cert, key)) => format!(
                "import ssl\nctx=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\nctx.load_cert_chain({cert:?},{key:?})\n"
            ),
            None => "ctx=None\n".to_owned(),
        };
        let script = format!(
            "{ssl}\
             from websockets.sync.server import serve\n\
             def echo(ws):\n\
             \x20   for m in ws:\n\
             \x20       if m == 'close please':\n\
             \x20           ws.close(4000, 'as you wish'); return\n\
             \x20       ws.send(m)\n\
             s=serve(echo, '127.0.0.1', 0, ssl=ctx)\n\
             print('port', s.socket.getsockname()[1], flush=True)\n\
             s.serve_forever()\n"
        );
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .expect(&line)
            .parse()
            .unwrap();
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn open_ws(ctx: &Ctx, url: &str, tls: Option<&XtTlsOptions>) -> u64 {
    let u = CString::new(url).unwrap();
    let id = unsafe { xt_open_websocket(ctx.ptr, u.as_ptr(), tls.map_or(std::ptr::null(), |t| t)) };
    assert_ne!(id, 0, "xt_open_websocket: {}", last_error_text());
    id
}

#[test]
fn outgoing_websockets_to_python_servers_over_ws_and_wss() {
    if !have_websockets() {
        return;
    }
    let server = PyServer::start(None);
    let ctx = Ctx::for_suite();
    ctx.rec
        .keep_data_info
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let id = open_ws(&ctx, &format!("ws://127.0.0.1:{}/echo", server.port), None);
    let info = ctx.wait_connected(id);
    assert_eq!(info.tls_protocol, "");
    assert_eq!(ctx.send(id, "grüße".as_bytes()), XT_OK);
    let bin = [0u8, 159, 146, 150];
    assert_eq!(
        unsafe { xt_send_websocket(ctx.ptr, id, bin.as_ptr(), 4, XT_WS_BINARY) },
        XT_OK
    );
    ctx.wait_until("two echoes", Duration::from_secs(10), |evs| {
        evs.iter()
            .filter(|e| matches!(e, Ev::Data(i, _) if *i == id))
            .count()
            == 2
    });
    assert_eq!(ctx.data_of(id), ["grüße".as_bytes().to_vec(), bin.to_vec()]);
    assert_eq!(kinds_of(&ctx, id), [XT_WS_TEXT, XT_WS_BINARY]);
    // The server closes with its own code: one final event with it.
    assert_eq!(ctx.send(id, b"close please"), XT_OK);
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
    assert!(
        end.error_message.contains("(4000): as you wish"),
        "{}",
        end.error_message
    );

    // wss:// with the server's CA; the info carries the TLS facts.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ws-pki");
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
        ])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let cert = dir.join("cert.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    let tls_server = PyServer::start(Some((&cert, &key)));
    let ca = CString::new(cert.clone()).unwrap();
    let tls = XtTlsOptions {
        struct_size: std::mem::size_of::<XtTlsOptions>() as u32,
        trust: XT_TRUST_CA_FILE,
        ca_file: ca.as_ptr(),
        pin_sha256: std::ptr::null(),
        server_name: std::ptr::null(),
        cert_file: std::ptr::null(),
        key_file: std::ptr::null(),
    };
    let id = open_ws(
        &ctx,
        &format!("wss://localhost:{}/", tls_server.port),
        Some(&tls),
    );
    let info = ctx.wait_connected(id);
    assert_eq!(info.tls_protocol, "TLSv1.3");
    assert_eq!(info.tls_peer_fingerprint.len(), 64);
    assert_eq!(ctx.send(id, b"secure"), XT_OK);
    ctx.wait_until("the echo", Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Data(i, d) if *i == id && d == b"secure"))
    });
    // The host closes: the server answers the close frame.
    assert_eq!(unsafe { xt_disconnect(ctx.ptr, id) }, XT_OK);
    let end = ctx.wait_closed(id);
    assert_eq!(
        end.error_number, XT_ERR_LOST_CONNECTION,
        "{}",
        end.error_message
    );
    // Without the CA (system trust): 1011 with the fingerprint.
    let id = open_ws(&ctx, &format!("wss://localhost:{}/", tls_server.port), None);
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_TLS_UNTRUSTED);
    assert_eq!(end.tls_peer_fingerprint, info.tls_peer_fingerprint);
}

#[test]
fn wss_on_an_https_listener_and_refused_or_bad_upgrades() {
    if !have_websockets() {
        return;
    }
    let ctx = Ctx::for_suite();
    let accepted = ws_echo_host(&ctx, None);
    let id = unsafe { xt_start_https_listener(ctx.ptr, 0, std::ptr::null()) };
    assert_ne!(id, 0, "{}", last_error_text());
    let port = unsafe { xt_listener_port(ctx.ptr, id) };
    let out = python(&format!(
        "import ssl\n\
         from websockets.sync.client import connect\n\
         c=ssl.create_default_context(); c.check_hostname=False; c.verify_mode=ssl.CERT_NONE\n\
         ws=connect('wss://127.0.0.1:{port}/ws', ssl=c)\n\
         ws.send('over tls'); print(ws.recv()); ws.close()\n"
    ));
    assert_eq!(out, ["over tls"]);
    let ws_id = accepted.lock()[0];
    let end = ctx.wait_closed(ws_id);
    assert_eq!(end.tls_protocol, "TLSv1.3");
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);

    // An xtnet client: wss to the same listener, pinning its fingerprint.
    let client = Ctx::for_suite();
    let fp = unsafe { std::ffi::CStr::from_ptr(xt_listener_fingerprint(ctx.ptr, id)) }.to_owned();
    let tls = XtTlsOptions {
        struct_size: std::mem::size_of::<XtTlsOptions>() as u32,
        trust: XT_TRUST_PIN,
        ca_file: std::ptr::null(),
        pin_sha256: fp.as_ptr(),
        server_name: std::ptr::null(),
        cert_file: std::ptr::null(),
        key_file: std::ptr::null(),
    };
    let cid = open_ws(&client, &format!("wss://127.0.0.1:{port}/ws"), Some(&tls));
    client.wait_connected(cid);
    assert_eq!(client.send(cid, b"xtnet to xtnet"), XT_OK);
    client.wait_until("the echo", Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Data(i, d) if *i == cid && d == b"xtnet to xtnet"))
    });
    // Stopping the listener closes its WebSockets with 1001.
    assert!(unsafe { xt_stop_html_listener(ctx.ptr, id) });
    let end = client.wait_closed(cid);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
    assert!(
        end.error_message.contains("(1001)"),
        "{}",
        end.error_message
    );

    // A path the host does not upgrade: refused with its status (1013).
    let (_, plain_port) = ctx.html();
    let refused = open_ws(&client, &format!("ws://127.0.0.1:{plain_port}/page"), None);
    let end = client.wait_closed(refused);
    assert_eq!(end.error_number, XT_ERR_WEBSOCKET);
    assert!(end.error_message.contains("200"), "{}", end.error_message);
    // Bad URLs are refused at the call.
    for bad in ["http://127.0.0.1/", "ws://", "nonsense"] {
        let u = CString::new(bad).unwrap();
        assert_eq!(
            unsafe { xt_open_websocket(client.ptr, u.as_ptr(), std::ptr::null()) },
            0
        );
        assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT, "{bad}");
    }
    assert_eq!(
        unsafe { xt_open_websocket(client.ptr, std::ptr::null(), std::ptr::null()) },
        0
    );
    // xt_send_websocket on a TCP connection is refused.
    let (_, tport) = client.listen(b"\n");
    let tcp = client.connect("127.0.0.1", tport, b"\n");
    client.wait_until("connected", Duration::from_secs(5), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Connected(i, _) if *i == tcp))
    });
    assert_eq!(
        unsafe { xt_send_websocket(client.ptr, tcp, b"x".as_ptr(), 1, XT_WS_TEXT) },
        XT_ERR_INVALID_ARGUMENT
    );
}

#[test]
fn idle_websockets_are_pinged_and_silent_peers_time_out() {
    if !have_websockets() {
        return;
    }
    // A peer that answers pings (Python's server) stays; one that does the handshake and then
    // never reads again is closed after two idle periods.
    let server = PyServer::start(None);
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_IDLE_TIMEOUT_MS, 300);
    let alive = open_ws(&ctx, &format!("ws://127.0.0.1:{}/", server.port), None);
    ctx.wait_connected(alive);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = silent.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let key = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("Sec-WebSocket-Key: ")
                    .or_else(|| l.strip_prefix("sec-websocket-key: "))
            })
            .unwrap()
            .trim()
            .to_owned();
        let accept = accept_key(&key);
        write!(
            s,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .unwrap();
        std::thread::sleep(Duration::from_secs(3));
    });
    let started = std::time::Instant::now();
    let quiet = open_ws(&ctx, &format!("ws://127.0.0.1:{silent_port}/"), None);
    ctx.wait_connected(quiet);
    let end = ctx.wait_closed(quiet);
    assert_eq!(end.error_number, libc::ETIMEDOUT, "{}", end.error_message);
    assert!(started.elapsed() < Duration::from_millis(2500));
    // The one that answers pings is still open, long past its idle timeout.
    assert_eq!(ctx.send(alive, b"still here"), XT_OK);
    ctx.wait_until("the echo", Duration::from_secs(5), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Data(i, d) if *i == alive && d == b"still here"))
    });
    peer.join().unwrap();
}

/// Sec-WebSocket-Accept for `key` (RFC 6455 §4.2.2), computed by Python's hashlib.
fn accept_key(key: &str) -> String {
    python(&format!(
        "import base64,hashlib\nprint(base64.b64encode(hashlib.sha1(b'{key}'+b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest()).decode())"
    ))
    .remove(0)
}

#[test]
fn an_unanswered_close_ends_with_1012_and_the_write_queue_limit_holds() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_WRITE_QUEUE_LIMIT, 1000);
    let accepted = ws_echo_host(&ctx, None);
    let (_, port) = ctx.html();
    // A peer that upgrades and then never reads nor answers.
    let mut s = raw_upgrade(port);
    let id = {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(id) = accepted.lock().first().copied() {
                break id;
            }
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // A message past the write-queue limit is refused (108); one within it is sent.
    let big = vec![b'x'; 2000];
    assert_eq!(
        unsafe { xt_send_websocket(ctx.ptr, id, big.as_ptr(), big.len(), XT_WS_BINARY) },
        XT_ERR_OUT_OF_MEMORY
    );
    assert_eq!(ctx.send(id, b"small"), XT_OK);
    let mut frame = [0u8; 7];
    s.read_exact(&mut frame).unwrap();
    assert_eq!(&frame, b"\x81\x05small");
    // The host closes; the peer stays silent: after the wait, 1012.
    let started = std::time::Instant::now();
    assert_eq!(unsafe { xt_disconnect(ctx.ptr, id) }, XT_OK);
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_TIMEOUT, "{}", end.error_message);
    assert!(started.elapsed() >= Duration::from_millis(1900));
    // It did send its close frame (1000).
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert_eq!(close_code(&rest), Some(1000));
}
