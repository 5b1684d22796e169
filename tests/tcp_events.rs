//! TCP through the C surface: event order, connection info, accept/refuse, ends.

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn echo_and_event_order_for_an_accepted_connection() {
    let ctx = Ctx::for_suite();
    echo_with(&ctx, b"\r\n");
    let (server, port) = ctx.listen(b"\r\n");
    let mut c = client(port);
    write_all(&mut c, b"hello\r\nworld\r\n");
    assert_eq!(read_n(&mut c, 14), b"hello\r\nworld\r\n");
    let (id, info) = ctx.wait_new(0);
    drop(c); // the peer closes
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
    assert!(!end.error_message.is_empty());
    assert_eq!(
        ctx.events_of(id),
        vec![
            Ev::New(id, info.clone()),
            Ev::Data(id, b"hello".to_vec()),
            Ev::Data(id, b"world".to_vec()),
            Ev::Error(id, end),
        ]
    );
    assert_eq!(info.server_id, server);
    // The id is dead now.
    assert_eq!(ctx.send(id, b"x"), XT_ERR_INVALID_STATE);
    assert_eq!(unsafe { xt_disconnect(ctx.ptr, id) }, XT_ERR_INVALID_STATE);
}

#[test]
fn connection_info_is_filled_as_the_contract_says() {
    let ctx = Ctx::for_suite();
    let (server, port) = ctx.listen(b"\n");
    let c = client(port);
    let peer_port = c.local_addr().unwrap().port();
    let (id, info) = ctx.wait_new(0);
    assert_eq!(
        info.remote_address, "127.0.0.1",
        "IPv4 peers of a dual-stack socket are plain IPv4"
    );
    assert_eq!(
        info.remote_port, port,
        "remote_port is the local port the connection came in on"
    );
    assert_eq!(info.peer_port, peer_port);
    assert_eq!(info.name, "?");
    assert_eq!(info.mac_address, "00:00:00:00:00:00");
    assert_eq!(info.unique_id, id.to_string());
    assert_eq!(info.server_id, server);
    assert_eq!((info.error_number, info.error_message.as_str()), (0, ""));
    drop(c);
    let end = ctx.wait_closed(id);
    assert_eq!(end.unique_id, info.unique_id);
    assert_eq!(end.remote_address, info.remote_address);
}

#[test]
fn listeners_are_dual_stack_and_ipv6_peers_show_as_ipv6() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.listen(b"\n");
    let Ok(c6) = TcpStream::connect(("::1", port)) else {
        eprintln!("NOTE: no IPv6 loopback on this machine; dual-stack test skipped");
        return;
    };
    let (_, info6) = ctx.wait_new(0);
    assert_eq!(info6.remote_address, "::1");
    let _c4 = client(port);
    let (_, info4) = ctx.wait_new(1);
    assert_eq!(info4.remote_address, "127.0.0.1");
    drop(c6);
}

#[test]
fn refused_connections_close_at_once_and_get_no_more_events() {
    let ctx = Ctx::for_suite();
    ctx.on_new(|_, _, _| false);
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    let _ = c.write_all(b"ignored\n");
    assert!(
        read_to_end(&mut c).is_empty(),
        "a refused peer sees the connection closed"
    );
    let (id, _) = ctx.wait_new(0);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        ctx.events_of(id).len(),
        1,
        "only new_connection: {:?}",
        ctx.events_of(id)
    );
    assert_eq!(ctx.send(id, b"x"), XT_ERR_INVALID_STATE);
}

#[test]
fn no_new_connection_callback_accepts_everything() {
    let rec = std::sync::Arc::new(Recorder::default());
    let mut t = table(&rec);
    t.new_connection = None;
    let ptr = unsafe { xt_context_new(&t, 0) };
    assert!(!ptr.is_null());
    let mut ctx = Ctx::adopt(ptr, rec);
    echo_with(&ctx, b"\n");
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    write_all(&mut c, b"ping\n");
    assert_eq!(read_n(&mut c, 5), b"ping\n");
    ctx.free();
}

#[test]
fn host_disconnect_flushes_then_ends_with_102() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    let (id, _) = ctx.wait_new(0);
    let block: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    assert_eq!(ctx.send(id, &block), XT_OK);
    assert_eq!(unsafe { xt_disconnect(ctx.ptr, id) }, XT_OK);
    assert_eq!(
        ctx.send(id, b"late"),
        XT_ERR_INVALID_STATE,
        "no sends after disconnect"
    );
    assert_eq!(unsafe { xt_disconnect(ctx.ptr, id) }, XT_ERR_INVALID_STATE);
    let got = read_to_end(&mut c);
    assert_eq!(
        got.len(),
        block.len(),
        "everything queued is written before the close"
    );
    assert!(got == block);
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
}

#[test]
fn disconnect_from_inside_the_data_callback() {
    let ctx = Ctx::for_suite();
    ctx.on_data(|r, id, data| {
        assert_eq!(r.send(id, b"bye "), XT_OK);
        assert_eq!(r.send(id, data), XT_OK);
        assert_eq!(unsafe { xt_disconnect(r.ctx(), id) }, XT_OK);
    });
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    write_all(&mut c, b"now\n");
    assert_eq!(read_to_end(&mut c), b"bye now");
    let (id, _) = ctx.wait_new(0);
    assert_eq!(ctx.wait_closed(id).error_number, XT_ERR_LOST_CONNECTION);
}

#[test]
fn stopping_a_listener_ends_its_connections_and_frees_the_port() {
    let ctx = Ctx::for_suite();
    let (server, port) = ctx.listen(b"\n");
    let (other, other_port) = ctx.listen(b"\n");
    let mut a = client(port);
    let (ida, _) = ctx.wait_new(0);
    let b = client(other_port);
    let (idb, _) = ctx.wait_new(1);
    assert!(unsafe { xt_stop_tcp_listener(ctx.ptr, server) });
    // The port is closed when stop returns.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    let end = ctx.wait_closed(ida);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
    assert!(
        end.error_message.contains("listener"),
        "{}",
        end.error_message
    );
    assert!(read_to_end(&mut a).is_empty());
    // The other listener's connection lives on.
    assert_eq!(ctx.send(idb, b"still here\n"), XT_OK);
    assert!(
        !unsafe { xt_stop_tcp_listener(ctx.ptr, server) },
        "stopping twice fails"
    );
    assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
    assert_eq!(unsafe { xt_listener_port(ctx.ptr, server) }, 0);
    // The port can be listened on again at once.
    let again = unsafe { xt_start_tcp_listener(ctx.ptr, port, std::ptr::null(), 0) };
    assert_ne!(again, 0, "{}", last_error_text());
    drop(b);
    let _ = other;
}

#[test]
fn stopping_the_listener_from_its_own_new_connection_callback() {
    let ctx = Ctx::for_suite();
    let (server, port) = ctx.listen(b"\n");
    ctx.on_new(move |r, _, info| {
        assert!(unsafe { xt_stop_tcp_listener(r.ctx(), info.server_id) });
        true
    });
    let _c = client(port);
    let (id, _) = ctx.wait_new(0);
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
    assert_eq!(ctx.events_of(id).len(), 2);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(unsafe { xt_listener_port(ctx.ptr, server) }, 0);
}

#[test]
fn connections_pending_when_the_listener_stops_are_dropped_silently() {
    let ctx = Ctx::for_suite();
    let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
    let (server, port) = ctx.listen(b"\n");
    let g = gate.clone();
    // The first new_connection blocks until the listener was stopped behind its back.
    ctx.on_new(move |_, _, _| {
        g.wait();
        g.wait();
        true
    });
    let _a = client(port);
    let _b = client(port);
    gate.wait(); // first callback is running; the second connection waits in the queue
    std::thread::sleep(Duration::from_millis(100));
    assert!(unsafe { xt_stop_tcp_listener(ctx.ptr, server) });
    gate.wait();
    let (first, _) = ctx.wait_new(0);
    assert_eq!(ctx.wait_closed(first).error_number, XT_ERR_LOST_CONNECTION);
    std::thread::sleep(Duration::from_millis(200));
    let news = ctx
        .events()
        .iter()
        .filter(|e| matches!(e, Ev::New(..)))
        .count();
    assert_eq!(
        news,
        1,
        "the second connection was never offered: {:?}",
        ctx.events()
    );
}

#[test]
fn listeners_starting_and_stopping_are_logged() {
    let ctx = Ctx::for_suite();
    let (server, port) = ctx.listen(b"\r\n");
    assert!(unsafe { xt_stop_tcp_listener(ctx.ptr, server) });
    let evs = ctx.wait_until("two log lines", Duration::from_secs(5), |evs| {
        evs.iter().filter(|e| matches!(e, Ev::Log(..))).count() >= 2
    });
    let logs: Vec<(i32, String)> = evs
        .into_iter()
        .filter_map(|e| {
            if let Ev::Log(l, m) = e {
                Some((l, m))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(logs[0].0, XT_LOG_INFO);
    assert!(
        logs[0].1.contains(&format!("listening on port {port}")),
        "{logs:?}"
    );
    assert!(logs[1].1.contains("stopped"), "{logs:?}");
}

#[test]
fn a_greeting_sent_from_new_connection_arrives_once_accepted() {
    let ctx = Ctx::for_suite();
    ctx.on_new(|r, id, _| {
        assert_eq!(r.send(id, b"welcome\n"), XT_OK);
        true
    });
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    assert_eq!(read_n(&mut c, 8), b"welcome\n");
}

#[test]
fn a_greeting_to_a_refused_connection_is_never_sent() {
    let ctx = Ctx::for_suite();
    ctx.on_new(|r, id, _| {
        assert_eq!(r.send(id, b"you will not see this\n"), XT_OK);
        false
    });
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    assert!(read_to_end(&mut c).is_empty());
}

#[test]
fn a_peer_that_half_closes_still_gets_its_replies() {
    // Like `printf 'a\nb\n' | nc -N host port`: the peer sends, shuts its side, then reads.
    let ctx = Ctx::for_suite();
    echo_with(&ctx, b"\n");
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    c.write_all(b"a\nb\nlast").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut c), b"a\nb\nlast\n");
    let (id, _) = ctx.wait_new(0);
    assert_eq!(ctx.wait_closed(id).error_number, XT_ERR_LOST_CONNECTION);
}
