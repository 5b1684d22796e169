//! XT_DISPATCH_INLINE through the C surface: callbacks on the network threads, one connection's
//! in order and never overlapping, different connections' at the same time; what a blocking
//! callback holds; calls from inside callbacks that wait for the network (stopping a listener)
//! with a single network thread; freeing while callbacks run; XT_OPT_NETWORK_THREADS.
//! (The suites also run whole in this mode: `XTNET_TEST_DISPATCH=inline`, see the Makefile.)

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn inline() -> Ctx {
    Ctx::new(XtDispatch::XT_DISPATCH_INLINE)
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

#[test]
fn callbacks_run_on_network_threads_in_order_per_connection_without_a_dispatch_thread() {
    let ctx = inline();
    ctx.set(XT_OPT_NETWORK_THREADS, 2);
    let names = Arc::new(parking_lot::Mutex::new(std::collections::HashSet::new()));
    let n2 = names.clone();
    ctx.on_data(move |r, id, data| {
        n2.lock().insert(thread_name());
        let mut reply = data.to_vec();
        reply.push(b'\n');
        assert_eq!(r.send(id, &reply), XT_OK);
    });
    let (_, port) = ctx.listen(b"\n");
    let mut clients: Vec<_> = (0..8).map(|_| client(port)).collect();
    for round in 0..50 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(format!("{i}:{round}\n").as_bytes()).unwrap();
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let want = format!("{i}:{round}\n");
            assert_eq!(read_n(c, want.len()), want.as_bytes());
        }
    }
    // Every message in order, per connection.
    let evs = ctx.events();
    let ids: Vec<u64> = evs
        .iter()
        .filter_map(|e| match e {
            Ev::New(id, _) => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 8);
    for id in ids {
        let data = ctx.data_of(id);
        assert_eq!(data.len(), 50, "connection {id}");
        let rounds: Vec<usize> = data
            .iter()
            .map(|d| {
                String::from_utf8_lossy(d)
                    .split(':')
                    .nth(1)
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(rounds, (0..50).collect::<Vec<_>>(), "in order");
    }
    assert_eq!(*names.lock(), ["xtnet-io".to_owned()].into_iter().collect());
    assert!(
        !ctx.rec.overlapped.load(Ordering::SeqCst),
        "one connection's callbacks overlapped"
    );
    // Poll dispatch's calls are refused here.
    assert_eq!(unsafe { xt_wakeup_fd(ctx.ptr) }, -1);
    assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
    assert_eq!(unsafe { xt_poll(ctx.ptr, 0) }, -1);
    assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
}

#[test]
fn different_connections_are_called_at_the_same_time_and_a_blocked_one_holds_only_its_own() {
    let ctx = inline();
    ctx.set(XT_OPT_NETWORK_THREADS, 2);
    // Both connections' callbacks must be inside at once to pass the barrier: only possible if
    // they run concurrently on two threads.
    let barrier = Arc::new(Barrier::new(2));
    let together = Arc::new(AtomicUsize::new(0));
    let (b, t) = (barrier.clone(), together.clone());
    ctx.on_data(move |r, id, data| {
        if data == b"meet" {
            b.wait();
            t.fetch_add(1, Ordering::SeqCst);
        }
        assert_eq!(r.send(id, b"ok\n"), XT_OK);
    });
    let (_, port) = ctx.listen(b"\n");
    // Shards take connections in turn: two in a row land on different network threads.
    let mut a = client(port);
    ctx.wait_new(0);
    let mut b2 = client(port);
    ctx.wait_new(1);
    a.write_all(b"meet\n").unwrap();
    b2.write_all(b"meet\n").unwrap();
    assert_eq!(read_n(&mut a, 3), b"ok\n");
    assert_eq!(read_n(&mut b2, 3), b"ok\n");
    assert_eq!(together.load(Ordering::SeqCst), 2);

    // A callback that blocks: its own connection waits, the other one goes on.
    let release = Arc::new(AtomicBool::new(false));
    let r2 = release.clone();
    ctx.on_data(move |r, id, data| {
        if data == b"block" {
            while !r2.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let mut reply = data.to_vec();
        reply.push(b'\n');
        assert_eq!(r.send(id, &reply), XT_OK);
    });
    a.write_all(b"block\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    for i in 0..20 {
        let line = format!("free {i}\n");
        b2.write_all(line.as_bytes()).unwrap();
        assert_eq!(read_n(&mut b2, line.len()), line.as_bytes());
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the other connection waited for the blocked callback"
    );
    release.store(true, Ordering::SeqCst);
    assert_eq!(read_n(&mut a, 6), b"block\n");
    assert!(!ctx.rec.overlapped.load(Ordering::SeqCst));
}

#[test]
fn a_callback_stops_its_listener_and_writes_to_another_connection_with_one_network_thread() {
    let ctx = inline();
    ctx.set(XT_OPT_NETWORK_THREADS, 1);
    assert_eq!(unsafe { xt_get_option(ctx.ptr, XT_OPT_NETWORK_THREADS) }, 1);
    let (server, port) = ctx.listen(b"\n");
    let mut a = client(port);
    let (ida, _) = ctx.wait_new(0);
    let mut b = client(port);
    let (idb, _) = ctx.wait_new(1);
    let stopped = Arc::new(AtomicBool::new(false));
    let s2 = stopped.clone();
    ctx.on_data(move |r, id, data| {
        if data == b"stop" {
            // Waits for the listener's task on the same (only) network thread: must not hang.
            assert!(unsafe { xt_stop_tcp_listener(r.ctx(), server) });
            s2.store(true, Ordering::SeqCst);
        }
        // To the other connection (another task), from inside this one's callback.
        let other = if id == ida { idb } else { ida };
        let mut line = data.to_vec();
        line.push(b'\n');
        r.send(other, &line);
    });
    a.write_all(b"hello\n").unwrap();
    assert_eq!(read_n(&mut b, 6), b"hello\n");
    let start = Instant::now();
    a.write_all(b"stop\n").unwrap();
    let closed = ctx.wait_closed(idb);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "the stop waited for its timeout"
    );
    assert!(stopped.load(Ordering::SeqCst));
    assert_eq!(closed.error_number, 102);
    // The socket was closed when the stop returned: the port is free again.
    TcpListener::bind(("0.0.0.0", port)).expect("the stopped listener's port is free");
    ctx.wait_closed(ida);
}

#[test]
fn page_requests_of_one_listener_run_at_the_same_time_each_with_its_own_request() {
    let ctx = inline();
    ctx.set(XT_OPT_NETWORK_THREADS, 2);
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    ctx.on_page(move |_, _, page, request, response| {
        // Both requests are inside at once; each still reads its own request and fills its
        // own response.
        b.wait();
        let again = read_page(request);
        assert_eq!(again.path, page.path);
        let body = format!("answer to {}", page.path);
        assert_eq!(
            unsafe { xt_http_response_set_body(response, body.as_ptr(), body.len()) },
            XT_OK
        );
    });
    let (_, port) = ctx.html();
    let fetch = move |path: &'static str| {
        std::thread::spawn(move || {
            let mut s = client(port);
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
    };
    // Two connections in a row: on different network threads.
    let one = fetch("/one");
    let two = fetch("/two");
    let (one, two) = (one.join().unwrap(), two.join().unwrap());
    assert!(one.ends_with("answer to /one"), "{one}");
    assert!(two.ends_with("answer to /two"), "{two}");
}

#[test]
fn one_udp_listener_is_called_in_order_and_answers_from_its_callback() {
    let ctx = inline();
    ctx.on_datagram(|r, server, data, info| {
        let c = std::ffi::CString::new(info.remote_address.clone()).unwrap();
        unsafe {
            xt_send_datagram(
                r.ctx(),
                server,
                c.as_ptr(),
                info.remote_port,
                data.as_ptr(),
                data.len(),
            )
        };
    });
    let (_, port) = ctx.udp(0);
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..200u32 {
        peer.send_to(&i.to_be_bytes(), ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], i.to_be_bytes());
    }
    let got: Vec<u32> = ctx
        .datagrams()
        .iter()
        .map(|(_, d, _)| u32::from_be_bytes(d[..4].try_into().unwrap()))
        .collect();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    assert!(!ctx.rec.overlapped.load(Ordering::SeqCst));
}

#[test]
fn free_returns_only_once_no_callback_runs_and_every_connection_got_its_final_event() {
    let mut ctx = inline();
    ctx.set(XT_OPT_NETWORK_THREADS, 2);
    let inside = Arc::new(AtomicUsize::new(0));
    let after_free = Arc::new(AtomicBool::new(false));
    let freed = Arc::new(AtomicBool::new(false));
    let (i2, a2, f2) = (inside.clone(), after_free.clone(), freed.clone());
    ctx.on_data(move |r, id, data| {
        i2.fetch_add(1, Ordering::SeqCst);
        if f2.load(Ordering::SeqCst) {
            a2.store(true, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(20)); // still running while free starts
        r.send(id, data);
        i2.fetch_sub(1, Ordering::SeqCst);
    });
    let (_, port) = ctx.listen(b"\n");
    let mut clients: Vec<_> = (0..6).map(|_| client(port)).collect();
    ctx.wait_until("all accepted", Duration::from_secs(10), |evs| {
        evs.iter().filter(|e| matches!(e, Ev::New(..))).count() == 6
    });
    // Keep data coming while freeing.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = clients
        .drain(..)
        .map(|mut c| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if c.write_all(b"x\n").is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let rec = ctx.rec.clone();
    ctx.free();
    freed.store(true, Ordering::SeqCst);
    assert_eq!(
        inside.load(Ordering::SeqCst),
        0,
        "a callback still ran after free returned"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !after_free.load(Ordering::SeqCst),
        "a callback started after free returned"
    );
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let evs = rec.events.lock().clone();
    let news = evs.iter().filter(|e| matches!(e, Ev::New(..))).count();
    let finals: Vec<&Info> = evs
        .iter()
        .filter_map(|e| match e {
            Ev::Error(_, info) => Some(info),
            _ => None,
        })
        .collect();
    assert_eq!(finals.len(), news, "exactly one final event per connection");
    assert!(finals.iter().all(|i| i.error_number == 102));
    assert_eq!(rec.releases.load(Ordering::SeqCst), 1);
}

#[test]
fn network_threads_are_set_before_the_network_starts_and_checked() {
    let ctx = inline();
    let default = unsafe { xt_get_option(ctx.ptr, XT_OPT_NETWORK_THREADS) };
    let cores = std::thread::available_parallelism().unwrap().get() as i64;
    assert_eq!(default, (cores - 1).max(1));
    for bad in [0, -1, 257] {
        assert_eq!(
            unsafe { xt_set_option(ctx.ptr, XT_OPT_NETWORK_THREADS, bad) },
            XT_ERR_INVALID_ARGUMENT
        );
    }
    ctx.set(XT_OPT_NETWORK_THREADS, 3);
    assert_eq!(unsafe { xt_get_option(ctx.ptr, XT_OPT_NETWORK_THREADS) }, 3);
    // Three callbacks blocked at once need three threads.
    let barrier = Arc::new(Barrier::new(3));
    let b = barrier.clone();
    ctx.on_data(move |r, id, _| {
        b.wait();
        assert_eq!(r.send(id, b"ok\n"), XT_OK);
    });
    let (_, port) = ctx.listen(b"\n");
    let mut clients: Vec<_> = (0..3)
        .map(|i| {
            let c = client(port);
            ctx.wait_new(i);
            c
        })
        .collect();
    for c in &mut clients {
        c.write_all(b"go\n").unwrap();
    }
    for c in &mut clients {
        assert_eq!(read_n(c, 3), b"ok\n");
    }
    // The network runs now: the count is fixed.
    assert_eq!(
        unsafe { xt_set_option(ctx.ptr, XT_OPT_NETWORK_THREADS, 2) },
        XT_ERR_INVALID_STATE
    );
    assert_eq!(unsafe { xt_get_option(ctx.ptr, XT_OPT_NETWORK_THREADS) }, 3);
}

#[test]
fn log_lines_arrive_in_order_one_at_a_time() {
    let ctx = inline();
    // Listeners started and stopped from the host's thread log from that thread's calls.
    for _ in 0..20 {
        let (id, _) = ctx.listen(b"\n");
        assert!(unsafe { xt_stop_tcp_listener(ctx.ptr, id) });
    }
    let evs = ctx.wait_until("40 log lines", Duration::from_secs(5), |evs| {
        evs.iter().filter(|e| matches!(e, Ev::Log(..))).count() >= 40
    });
    let lines: Vec<&String> = evs
        .iter()
        .filter_map(|e| match e {
            Ev::Log(_, m) => Some(m),
            _ => None,
        })
        .collect();
    for pair in lines.chunks(2) {
        assert!(pair[0].contains("listening"), "{pair:?}");
        assert!(pair[1].contains("stopped"), "{pair:?}");
    }
    assert!(!ctx.rec.overlapped.load(Ordering::SeqCst));
}
