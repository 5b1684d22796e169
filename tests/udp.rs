//! UDP through the C surface on loopback: datagrams in and out, replies from the listening
//! port, limits, bad input, shared ports, stopping, and counted drops.
//! (Broadcast and multicast across a real link are in tests/udp_lan.rs.)

mod common;
use common::*;
use std::ffi::CString;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn peer(addr: &str) -> UdpSocket {
    let s = UdpSocket::bind(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[test]
fn datagrams_arrive_whole_with_sender_and_local_port() {
    let ctx = Ctx::for_suite();
    let (id, port) = ctx.udp(0);
    let p = peer("127.0.0.1:0");
    let big = vec![0xabu8; 65507];
    p.send_to(b"hello", ("127.0.0.1", port)).unwrap();
    p.send_to(b"", ("127.0.0.1", port)).unwrap();
    p.send_to(&big, ("127.0.0.1", port)).unwrap();
    let got = ctx.wait_datagrams(3);
    let sender = p.local_addr().unwrap().port();
    assert_eq!(got[0].0, id);
    assert_eq!(got[0].1, b"hello");
    assert_eq!(got[1].1, b"", "empty datagrams are datagrams too");
    assert!(got[2].1 == big, "the largest IPv4 datagram arrives whole");
    for (_, _, info) in &got {
        assert_eq!(info.remote_address, "127.0.0.1");
        assert_eq!(info.remote_port, sender);
        assert_eq!(info.local_port, port);
        assert_eq!(info.name, "?");
        assert_eq!(info.mac_address, "00:00:00:00:00:00");
    }
}

#[test]
fn ipv6_datagrams_and_replies() {
    let ctx = Ctx::for_suite();
    let (id, port) = ctx.udp(0);
    let Ok(p) = UdpSocket::bind("[::1]:0") else {
        eprintln!("NOTE: no IPv6 loopback; skipped");
        return;
    };
    p.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    p.send_to(b"six", ("::1", port)).unwrap();
    let got = ctx.wait_datagrams(1);
    assert_eq!(got[0].2.remote_address, "::1");
    let sender = p.local_addr().unwrap().port();
    assert_eq!(ctx.send_to(id, "::1", sender, b"back"), XT_OK);
    let mut buf = [0u8; 16];
    let (n, from) = p.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"back");
    assert_eq!(from.port(), port, "replies come from the listening port");
}

#[test]
fn replies_come_from_the_listening_port_inside_and_outside_callbacks() {
    let ctx = Ctx::for_suite();
    let (id, port) = ctx.udp(0);
    ctx.on_datagram(|r, server, data, info| {
        let mut reply = b"echo:".to_vec();
        reply.extend_from_slice(data);
        let a = CString::new(info.remote_address.clone()).unwrap();
        let rc = unsafe {
            xt_send_datagram(
                r.ctx(),
                server,
                a.as_ptr(),
                info.remote_port,
                reply.as_ptr(),
                reply.len(),
            )
        };
        assert_eq!(rc, XT_OK);
    });
    let p = peer("127.0.0.1:0");
    for i in 0..200 {
        p.send_to(format!("{i}").as_bytes(), ("127.0.0.1", port))
            .unwrap();
    }
    let mut buf = [0u8; 64];
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let (n, from) = p.recv_from(&mut buf).unwrap();
        assert_eq!(from.port(), port);
        seen.insert(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    assert_eq!(
        seen.len(),
        200,
        "every datagram echoed from inside the callback"
    );
    // And from outside a callback.
    assert_eq!(
        ctx.send_to(id, "127.0.0.1", p.local_addr().unwrap().port(), b"direct"),
        XT_OK
    );
    let (n, from) = p.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from.port()), (&b"direct"[..], port));
}

#[test]
fn bad_input_gives_documented_codes_and_the_listener_keeps_working() {
    let ctx = Ctx::for_suite();
    let (id, port) = ctx.udp(0);
    let (tcp, _) = ctx.listen(b"\n");
    let g = |s: &str| CString::new(s).unwrap();
    unsafe {
        assert!(!xt_join_multicast_group(
            ctx.ptr,
            id,
            g("10.0.0.1").as_ptr()
        ));
        assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT);
        assert!(!xt_join_multicast_group(
            ctx.ptr,
            id,
            g("not an address").as_ptr()
        ));
        assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT);
        assert!(!xt_join_multicast_group(ctx.ptr, id, std::ptr::null()));
        assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT);
        assert!(
            !xt_join_multicast_group(ctx.ptr, tcp, g("239.255.255.250").as_ptr()),
            "a TCP listener's id"
        );
        assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
        assert!(!xt_join_multicast_group(
            ctx.ptr,
            999,
            g("239.255.255.250").as_ptr()
        ));
        assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
        assert!(
            !xt_leave_multicast_group(ctx.ptr, id, g("239.255.255.250").as_ptr()),
            "not joined"
        );
        assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
        assert!(!xt_join_multicast_group_on(
            ctx.ptr,
            id,
            g("239.255.255.250").as_ptr(),
            g("no-such-if9").as_ptr()
        ));
        assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT);
        assert!(
            !xt_stop_tcp_listener(ctx.ptr, id),
            "a UDP listener is not a TCP listener"
        );
        assert!(!xt_stop_udp_listener(ctx.ptr, tcp));
        assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
        assert_eq!(
            xt_set_multicast_ttl(ctx.ptr, id, 256),
            XT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(xt_set_multicast_ttl(ctx.ptr, id, 4), XT_OK);
        assert_eq!(xt_set_multicast_loop(ctx.ptr, id, false), XT_OK);
        assert_eq!(
            xt_set_multicast_interface(ctx.ptr, id, g("no-such-if9").as_ptr()),
            XT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            xt_set_multicast_interface(ctx.ptr, id, std::ptr::null()),
            XT_OK
        );
        assert_eq!(xt_udp_dropped(ctx.ptr, tcp), -1);
        assert_eq!(xt_start_udp_listener(ctx.ptr, 80), 0);
        assert_eq!(xt_last_error(), XT_ERR_INVALID_PORT);
        assert_eq!(xt_start_udp_listener(std::ptr::null_mut(), 0), 0);
        assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT);
    }
    assert_eq!(
        ctx.send_to(id, "not-an-ip", 9, b"x"),
        XT_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        ctx.send_to(id, "localhost", 9, b"x"),
        XT_ERR_INVALID_ARGUMENT,
        "names are not resolved"
    );
    assert_eq!(ctx.send_to(id, "127.0.0.1", 0, b"x"), XT_ERR_INVALID_PORT);
    assert_eq!(
        ctx.send_to(id, "127.0.0.1", 9, &vec![0u8; 65508]),
        libc::EMSGSIZE
    );
    assert_eq!(ctx.send_to(tcp, "127.0.0.1", 9, b"x"), XT_ERR_INVALID_STATE);
    assert_eq!(ctx.send_to(0, "127.0.0.1", 9, b"x"), XT_ERR_INVALID_STATE);
    assert_eq!(
        unsafe { xt_send_datagram(ctx.ptr, id, std::ptr::null(), 9, b"x".as_ptr(), 1) },
        XT_ERR_INVALID_ARGUMENT
    );
    let a = CString::new("127.0.0.1").unwrap();
    assert_eq!(
        unsafe { xt_send_datagram(ctx.ptr, id, a.as_ptr(), 9, std::ptr::null(), 5) },
        XT_ERR_INVALID_ARGUMENT
    );
    // Still working.
    let p = peer("127.0.0.1:0");
    p.send_to(b"still here", ("127.0.0.1", port)).unwrap();
    assert_eq!(ctx.wait_datagrams(1)[0].1, b"still here");
}

#[test]
fn udp_ports_are_shared_and_tcp_ports_are_not() {
    let a = Ctx::for_suite();
    let b = Ctx::for_suite();
    let (_, port) = a.udp(0);
    let (_, same) = b.udp(port);
    assert_eq!(same, port, "two contexts share a UDP port");
    // Another program's socket (SO_REUSEADDR, as Python's and most discovery tools') too.
    let other = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    other.set_reuse_address(true).unwrap();
    other
        .bind(&std::net::SocketAddr::from(([0, 0, 0, 0], port)).into())
        .unwrap();
    let (_, tcp_port) = a.listen(b"\n");
    assert_eq!(
        unsafe { xt_start_tcp_listener(b.ptr, tcp_port, std::ptr::null(), 0) },
        0
    );
    assert_eq!(xt_last_error(), XT_ERR_ADDRESS_IN_USE);
}

#[test]
fn no_callback_after_stop_returns_and_the_port_is_free() {
    let ctx = Arc::new(Ctx::for_suite());
    let (id, port) = ctx.udp(0);
    let flooding = Arc::new(AtomicBool::new(true));
    let f2 = flooding.clone();
    let flood = std::thread::spawn(move || {
        let p = UdpSocket::bind("127.0.0.1:0").unwrap();
        while f2.load(Ordering::SeqCst) {
            let _ = p.send_to(b"flood", ("127.0.0.1", port));
        }
    });
    let slow = Arc::new(AtomicUsize::new(0));
    let s2 = slow.clone();
    ctx.on_datagram(move |_, _, _, _| {
        s2.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_micros(200));
    });
    ctx.wait_datagrams(20);
    assert!(unsafe { xt_stop_udp_listener(ctx.ptr, id) });
    let at_stop = slow.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        slow.load(Ordering::SeqCst),
        at_stop,
        "a callback ran after stop returned"
    );
    flooding.store(false, Ordering::SeqCst);
    flood.join().unwrap();
    assert_eq!(
        ctx.send_to(id, "127.0.0.1", 9, b"x"),
        XT_ERR_INVALID_STATE,
        "stopped id"
    );
    // The port is free again (a socket without reuse can bind it).
    assert!(UdpSocket::bind(("0.0.0.0", port)).is_ok());
}

#[test]
fn stopping_from_its_own_callback() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.udp(0);
    ctx.on_datagram(|r, server, _, _| {
        assert!(unsafe { xt_stop_udp_listener(r.ctx(), server) });
    });
    let p = peer("127.0.0.1:0");
    for _ in 0..50 {
        p.send_to(b"x", ("127.0.0.1", port)).unwrap();
    }
    ctx.wait_datagrams(1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        ctx.datagrams().len(),
        1,
        "nothing after the callback that stopped it"
    );
}

#[test]
fn a_stalled_host_drops_datagrams_and_counts_every_one() {
    let ctx = Ctx::for_suite();
    ctx.rec.skip_data.store(true, Ordering::SeqCst);
    let (id, port) = ctx.udp(0);
    let gate = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicUsize::new(0));
    let (g, d) = (gate.clone(), delivered.clone());
    ctx.on_datagram(move |_, _, _, _| {
        while !g.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        d.fetch_add(1, Ordering::SeqCst);
    });
    let p = peer("127.0.0.1:0");
    let payload = vec![7u8; 1000];
    let sent = 60_000; // ~60 MB: far past what the listener and the kernel hold
    for _ in 0..sent {
        p.send_to(&payload, ("127.0.0.1", port)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    gate.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    let total = || delivered.load(Ordering::SeqCst) as i64 + unsafe { xt_udp_dropped(ctx.ptr, id) };
    while total() < sent as i64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let dropped = unsafe { xt_udp_dropped(ctx.ptr, id) };
    assert!(dropped > 0, "some datagrams had to be dropped");
    assert_eq!(
        delivered.load(Ordering::SeqCst) as i64 + dropped,
        sent as i64,
        "every datagram was either delivered or counted as dropped"
    );
    let logs = ctx.events();
    assert!(
        logs.iter()
            .any(|e| matches!(e, Ev::Log(XT_LOG_WARNING, m) if m.contains("dropped"))),
        "drops were logged"
    );
}

#[test]
fn no_callback_after_the_context_is_freed() {
    let mut ctx = Ctx::for_suite();
    let (_, port) = ctx.udp(0);
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    ctx.on_datagram(move |_, _, _, _| {
        c2.fetch_add(1, Ordering::SeqCst);
    });
    let flooding = Arc::new(AtomicBool::new(true));
    let f2 = flooding.clone();
    let flood = std::thread::spawn(move || {
        let p = UdpSocket::bind("127.0.0.1:0").unwrap();
        while f2.load(Ordering::SeqCst) {
            let _ = p.send_to(b"flood", ("127.0.0.1", port));
        }
    });
    ctx.wait_datagrams(10);
    let rec = ctx.rec.clone();
    ctx.free();
    let at_free = count.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    flooding.store(false, Ordering::SeqCst);
    flood.join().unwrap();
    assert_eq!(
        count.load(Ordering::SeqCst),
        at_free,
        "a callback ran after free returned"
    );
    assert_eq!(rec.releases.load(Ordering::SeqCst), 1);
    assert!(
        UdpSocket::bind(("0.0.0.0", port)).is_ok(),
        "the socket is closed"
    );
}
