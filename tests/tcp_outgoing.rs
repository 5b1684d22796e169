//! Outgoing TCP connections through the C surface.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[test]
fn outgoing_connection_connects_frames_and_ends_with_102() {
    let ctx = Ctx::for_suite();
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = peer.local_addr().unwrap().port();
    let id = ctx.connect("127.0.0.1", port, b"\r\n");
    assert_ne!(id, 0, "{}", last_error_text());
    assert_eq!(
        ctx.send(id, b"too early"),
        XT_ERR_INVALID_STATE,
        "not connected yet"
    );
    let (mut s, addr) = peer.accept().unwrap();
    let evs = ctx.wait_until("connected", Duration::from_secs(10), |evs| {
        evs.iter().any(|e| matches!(e, Ev::Connected(..)))
    });
    let Ev::Connected(cid, info) = &evs[0] else {
        panic!("first event {:?}", evs[0])
    };
    assert_eq!(*cid, id);
    assert_eq!(info.remote_address, "127.0.0.1");
    assert_eq!(info.peer_port, port);
    assert_eq!(
        info.remote_port,
        addr.port(),
        "remote_port is the local port of the connection"
    );
    assert_eq!(info.server_id, 0);
    assert_eq!(info.unique_id, id.to_string());
    assert_eq!(ctx.send(id, b"GET\r\n"), XT_OK);
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"GET\r\n");
    s.write_all(b"one\r\ntwo\r\npartial").unwrap();
    drop(s);
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
    let kinds: Vec<_> = ctx.events_of(id);
    assert!(matches!(kinds[0], Ev::Connected(..)));
    assert_eq!(
        ctx.data_of(id),
        vec![b"one".to_vec(), b"two".to_vec(), b"partial".to_vec()]
    );
    assert!(matches!(kinds.last(), Some(Ev::Error(..))));
}

#[test]
fn outgoing_to_ipv6_and_by_name() {
    let ctx = Ctx::for_suite();
    if let Ok(peer6) = TcpListener::bind("[::1]:0") {
        let id = ctx.connect("::1", peer6.local_addr().unwrap().port(), b"\n");
        let _s = peer6.accept().unwrap();
        let evs = ctx.wait_until("connected v6", Duration::from_secs(10), |evs| {
            evs.iter()
                .any(|e| matches!(e, Ev::Connected(i, _) if *i == id))
        });
        assert!(evs
            .iter()
            .any(|e| matches!(e, Ev::Connected(_, info) if info.remote_address == "::1")));
    } else {
        eprintln!("NOTE: no IPv6 loopback; IPv6 part skipped");
    }
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let id = ctx.connect("localhost", peer.local_addr().unwrap().port(), b"\n");
    let _s = peer.accept().unwrap();
    ctx.wait_until("connected by name", Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Connected(i, _) if *i == id))
    });
}

#[test]
fn refused_connect_gives_one_socket_error_with_the_system_code() {
    let ctx = Ctx::for_suite();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let id = ctx.connect("127.0.0.1", port, b"\n");
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, libc::ECONNREFUSED);
    assert_eq!(
        ctx.events_of(id).len(),
        1,
        "no connected event: {:?}",
        ctx.events_of(id)
    );
    assert_eq!(end.remote_address, "127.0.0.1");
}

#[test]
fn unresolvable_name_gives_103() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_CONNECT_TIMEOUT_MS, 60_000);
    let id = ctx.connect("no-such-host.invalid", 80, b"\n");
    assert_ne!(id, 0);
    let end = ctx.wait_closed(id);
    assert_eq!(
        end.error_number, XT_ERR_NAME_RESOLUTION,
        "{}",
        end.error_message
    );
    assert_eq!(end.remote_address, "no-such-host.invalid");
    assert_eq!(ctx.events_of(id).len(), 1);
}

/// A local listener that never accepts, with its backlog full: further SYNs go unanswered, so
/// a connect to it hangs (without sending anything off this machine). Keep the value alive.
fn unanswered_listener() -> ((socket2::Socket, Vec<std::net::TcpStream>), u16) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    sock.bind(&addr.into()).unwrap();
    sock.listen(0).unwrap();
    let port = sock.local_addr().unwrap().as_socket().unwrap().port();
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let fillers = (0..4)
        .filter_map(|_| std::net::TcpStream::connect_timeout(&to, Duration::from_millis(200)).ok())
        .collect();
    ((sock, fillers), port)
}

#[test]
fn connect_timeout_gives_etimedout() {
    let (_unanswered, port) = unanswered_listener();
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_CONNECT_TIMEOUT_MS, 300);
    let start = Instant::now();
    let id = ctx.connect("127.0.0.1", port, b"\n");
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, libc::ETIMEDOUT, "{}", end.error_message);
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert_eq!(ctx.events_of(id).len(), 1);
}

#[test]
fn disconnect_while_connecting_ends_it_with_102() {
    let (_unanswered, port) = unanswered_listener();
    let ctx = Ctx::for_suite();
    let id = ctx.connect("127.0.0.1", port, b"\n");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(unsafe { xt_disconnect(ctx.ptr, id) }, XT_OK);
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
    assert_eq!(ctx.events_of(id).len(), 1);
}

#[test]
fn library_to_library_echo_with_both_sides_in_one_context() {
    let ctx = Ctx::for_suite();
    let (server, port) = ctx.listen(b"|");
    ctx.on_data(move |r, id, data| {
        // Only the accepted side echoes; the outgoing side just records.
        if !data.starts_with(b"echo:") {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(data);
            reply.push(b'|');
            assert_eq!(r.send(id, &reply), XT_OK);
        }
    });
    ctx.on_connected(|r, id, _| {
        assert_eq!(r.send(id, b"a|b|"), XT_OK);
    });
    let id = ctx.connect("127.0.0.1", port, b"|");
    ctx.wait_until("two echoes", Duration::from_secs(10), |evs| {
        evs.iter()
            .filter(|e| matches!(e, Ev::Data(i, _) if *i == id))
            .count()
            == 2
    });
    assert_eq!(
        ctx.data_of(id),
        vec![b"echo:a".to_vec(), b"echo:b".to_vec()]
    );
    let _ = server;
}
