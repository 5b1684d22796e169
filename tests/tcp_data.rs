//! TCP data through the C surface: framing on real sockets, limits, write order, back-pressure.

mod common;
use common::*;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Writes `data` in pieces of `piece` bytes with a pause, so they arrive as separate reads.
fn trickle(c: &mut std::net::TcpStream, data: &[u8], piece: usize) {
    for chunk in data.chunks(piece) {
        c.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn binary_boundary_split_across_reads_with_empty_messages_and_a_remainder() {
    let ctx = Ctx::for_suite();
    let boundary: &[u8] = &[0x00, 0xff, 0x00];
    let (_, port) = ctx.listen(boundary);
    let mut c = client(port);
    // Messages: "a\0b", "" (two boundaries in a row), "\xff\xff", then a remainder "tail\0".
    let mut stream = Vec::new();
    for m in [&b"a\0b"[..], b"", b"\xff\xff"] {
        stream.extend_from_slice(m);
        stream.extend_from_slice(boundary);
    }
    stream.extend_from_slice(b"tail\0");
    trickle(&mut c, &stream, 1);
    let (id, _) = ctx.wait_new(0);
    drop(c);
    ctx.wait_closed(id);
    assert_eq!(
        ctx.data_of(id),
        vec![
            b"a\0b".to_vec(),
            b"".to_vec(),
            b"\xff\xff".to_vec(),
            b"tail\0".to_vec()
        ],
        "the remainder is delivered as the last message before the final event"
    );
}

#[test]
fn many_messages_in_one_read_and_one_message_over_many_reads() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.listen(b"\r\n");
    let mut c = client(port);
    let mut burst = Vec::new();
    for i in 0..1000 {
        burst.extend_from_slice(format!("message {i}\r\n").as_bytes());
    }
    let big: Vec<u8> = (0..300_000).map(|i| b'a' + (i % 26) as u8).collect();
    burst.extend_from_slice(&big);
    burst.extend_from_slice(b"\r\n");
    c.write_all(&burst).unwrap();
    let (id, _) = ctx.wait_new(0);
    ctx.wait_until("1001 messages", Duration::from_secs(10), |evs| {
        evs.iter().filter(|e| matches!(e, Ev::Data(..))).count() >= 1001
    });
    let got = ctx.data_of(id);
    assert_eq!(got.len(), 1001);
    for (i, m) in got.iter().take(1000).enumerate() {
        assert_eq!(m, format!("message {i}").as_bytes());
    }
    assert!(got[1000] == big);
}

#[test]
fn no_boundary_delivers_raw_chunks_that_add_up() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.listen(b"");
    let mut c = client(port);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    trickle(&mut c, &data, 50_000);
    drop(c);
    let (id, _) = ctx.wait_new(0);
    ctx.wait_closed(id);
    let chunks = ctx.data_of(id);
    assert!(chunks.iter().all(|c| !c.is_empty()));
    assert!(chunks.concat() == data);
}

#[test]
fn a_message_longer_than_the_maximum_ends_the_connection_with_108() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_MAX_MESSAGE_LEN, 1000);
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    let mut ok = vec![b'x'; 1000];
    ok.push(b'\n');
    c.write_all(&ok).unwrap();
    let (id, _) = ctx.wait_new(0);
    // Then a flood with no boundary: the library must stop it, not buffer it.
    let flood = vec![b'y'; 64 << 10];
    let start = Instant::now();
    let mut sent = 0usize;
    while start.elapsed() < Duration::from_secs(10) {
        match c.write(&flood) {
            Ok(n) => sent += n,
            Err(_) => break, // reset by the library: good
        }
        if ctx.events_of(id).iter().any(|e| matches!(e, Ev::Error(..))) {
            break;
        }
    }
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_OUT_OF_MEMORY);
    assert!(end.error_message.contains("1000"), "{}", end.error_message);
    assert_eq!(
        ctx.data_of(id),
        vec![vec![b'x'; 1000]],
        "the message at the limit was delivered"
    );
    assert!(
        sent < 64 << 20,
        "the connection was cut early, not after {sent} bytes"
    );
}

#[test]
fn sends_keep_call_order_from_many_threads_and_callbacks() {
    let ctx = Arc::new(Ctx::for_suite());
    let (_, port) = ctx.listen(b"\n");
    // Each incoming message is answered from inside the callback too.
    ctx.on_data(|r, id, data| {
        let mut reply = b"cb:".to_vec();
        reply.extend_from_slice(data);
        reply.push(b'\n');
        assert_eq!(r.send(id, &reply), XT_OK);
    });
    let mut c = client(port);
    let (id, _) = ctx.wait_new(0);
    let mut threads = Vec::new();
    for t in 0..4 {
        let ctx = ctx.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..2000 {
                assert_eq!(ctx.send(id, format!("t{t}:{i}\n").as_bytes()), XT_OK);
            }
        }));
    }
    for i in 0..500 {
        c.write_all(format!("{i}\n").as_bytes()).unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    // Read every line and check each sender's sequence is in order and complete.
    let mut reader = std::io::BufReader::new(c.try_clone().unwrap());
    let mut next = [0usize; 4];
    let mut next_cb = 0usize;
    let mut line = String::new();
    while next.iter().sum::<usize>() < 8000 || next_cb < 500 {
        line.clear();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        let l = line.trim_end();
        if let Some(rest) = l.strip_prefix("cb:") {
            assert_eq!(rest, next_cb.to_string());
            next_cb += 1;
        } else {
            let (t, i) = l[1..].split_once(':').unwrap();
            let t: usize = t.parse().unwrap();
            assert_eq!(i, next[t].to_string(), "thread {t} out of order");
            next[t] += 1;
        }
    }
}

#[test]
fn the_write_queue_limit_refuses_whole_sends_and_loses_nothing() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_WRITE_QUEUE_LIMIT, 256 << 10);
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    let (id, _) = ctx.wait_new(0);
    // The peer does not read: kernel buffers fill, then our queue, then sends fail with 108.
    let piece: Vec<u8> = (0..10_000).map(|i| (i % 256) as u8).collect();
    let mut accepted = 0usize;
    let mut refused = 0;
    for _ in 0..100_000 {
        match ctx.send(id, &piece) {
            XT_OK => accepted += 1,
            XT_ERR_OUT_OF_MEMORY => {
                refused += 1;
                if refused > 5 {
                    break;
                }
            }
            other => panic!("unexpected code {other}"),
        }
    }
    assert!(refused > 0, "the queue limit was never reached");
    assert_eq!(xt_last_error(), XT_ERR_OUT_OF_MEMORY);
    // Now read everything: exactly the accepted sends, nothing of the refused ones.
    assert_eq!(unsafe { xt_disconnect(ctx.ptr, id) }, XT_OK);
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), accepted * piece.len());
    assert!(got.chunks(piece.len()).all(|p| p == piece.as_slice()));
}

#[test]
fn slow_host_pauses_reading_and_no_message_is_lost() {
    let ctx = Ctx::for_suite();
    let gate = Arc::new(AtomicBool::new(false));
    let g = gate.clone();
    ctx.on_data(move |_, _, _| {
        while !g.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let (_, port) = ctx.listen(b"\n");
    let c = client(port);
    c.set_nonblocking(true).unwrap();
    let (id, _) = ctx.wait_new(0);
    // Write lines until the kernel pushes back: the library must have stopped reading.
    let line: Vec<u8> = {
        let mut l = vec![b'z'; 1023];
        l.push(b'\n');
        l
    };
    let mut written = 0usize;
    let mut stalled_for = Duration::ZERO;
    let mut c = c;
    let start = Instant::now();
    let mut partial = 0usize;
    while stalled_for < Duration::from_millis(500) && start.elapsed() < Duration::from_secs(20) {
        match c.write(&line[partial..]) {
            Ok(n) => {
                written += n;
                partial = (partial + n) % line.len();
                stalled_for = Duration::ZERO;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                stalled_for += Duration::from_millis(10);
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    // Let the host go before asserting (a stalled callback would keep the context alive).
    gate.store(true, Ordering::SeqCst);
    assert!(
        stalled_for >= Duration::from_millis(500),
        "the peer was never pushed back"
    );
    assert!(
        written < 64 << 20,
        "{written} bytes accepted: reading did not pause"
    );
    // Finish the current line.
    c.set_nonblocking(false).unwrap();
    if partial != 0 {
        c.write_all(&line[partial..]).unwrap();
        written += line.len() - partial;
    }
    let lines = written / line.len();
    ctx.wait_until("every line", Duration::from_secs(30), |evs| {
        evs.iter().filter(|e| matches!(e, Ev::Data(..))).count() >= lines
    });
    let got = ctx.data_of(id);
    assert_eq!(got.len(), lines);
    assert!(got.iter().all(|m| m.len() == 1023));
}

#[test]
fn idle_connections_time_out_and_active_ones_do_not() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_IDLE_TIMEOUT_MS, 300);
    let (_, port) = ctx.listen(b"\n");
    let _idle = client(port);
    let (idle_id, _) = ctx.wait_new(0);
    let mut busy = client(port);
    let (busy_id, _) = ctx.wait_new(1);
    let start = Instant::now();
    for _ in 0..12 {
        busy.write_all(b"tick\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let end = ctx.wait_closed(idle_id);
    assert_eq!(end.error_number, libc::ETIMEDOUT);
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert!(
        !ctx.events_of(busy_id)
            .iter()
            .any(|e| matches!(e, Ev::Error(..))),
        "traffic keeps a connection alive"
    );
}

#[test]
fn the_whole_context_stops_reading_at_its_backlog_limit_and_loses_nothing() {
    // 320 connections x 320 KiB with the host stalled: each connection's own limit (256 KiB)
    // would let more than 80 MiB pile up; the context's limit (64 MiB) stops it before.
    const CONNS: usize = 320;
    const LINE: usize = 1024;
    const LINES: usize = 320;
    if suite_dispatch() == XtDispatch::XT_DISPATCH_INLINE {
        // Nothing piles up inline: a stalled callback holds the thread that reads (see
        // tests/inline_dispatch.rs for what that means).
        return;
    }
    let ctx = Ctx::for_suite();
    ctx.rec.skip_data.store(true, Ordering::SeqCst);
    let gate = Arc::new(AtomicBool::new(false));
    let (g, lines, bad) = (
        gate.clone(),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (l2, b2) = (lines.clone(), bad.clone());
    ctx.on_data(move |_, _, data| {
        while !g.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        l2.fetch_add(1, Ordering::SeqCst);
        if data.len() != LINE - 1 || data.iter().any(|&b| b != b'q') {
            b2.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (_, port) = ctx.listen(b"\n");
    let mut clients: Vec<_> = (0..CONNS).map(|_| client(port)).collect();
    ctx.wait_until(
        "every connection accepted",
        Duration::from_secs(20),
        |evs| evs.iter().filter(|e| matches!(e, Ev::New(..))).count() == CONNS,
    );
    assert_eq!(
        unsafe { xt_get_stat(ctx.ptr, XT_STAT_CONNECTIONS) },
        CONNS as i64
    );
    assert_eq!(unsafe { xt_get_stat(ctx.ptr, XT_STAT_LISTENERS) }, 1);
    let mut line = vec![b'q'; LINE - 1];
    line.push(b'\n');
    let data: Vec<u8> = line.repeat(LINES);
    for c in &clients {
        c.set_nonblocking(true).unwrap();
    }
    // Write round robin until nobody makes progress for a while.
    let mut sent = vec![0usize; CONNS];
    let mut idle_since = Instant::now();
    let start = Instant::now();
    while idle_since.elapsed() < Duration::from_millis(700)
        && start.elapsed() < Duration::from_secs(60)
    {
        let mut progress = false;
        for (c, s) in clients.iter_mut().zip(sent.iter_mut()) {
            if *s < data.len() {
                if let Ok(n) = c.write(&data[*s..(*s + 65536).min(data.len())]) {
                    *s += n;
                    progress = true;
                }
            }
        }
        if progress {
            idle_since = Instant::now();
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let backlog = unsafe { xt_get_stat(ctx.ptr, XT_STAT_BACKLOG_BYTES) } as usize;
    // Let the host go before asserting (a stalled callback would keep the context alive).
    gate.store(true, Ordering::SeqCst);
    let limit = xtnet::context::BACKLOG_LIMIT;
    assert!(
        backlog <= limit + (4 << 20),
        "backlog {backlog} went past the context's limit {limit}"
    );
    assert!(
        backlog >= limit - (8 << 20),
        "backlog {backlog}: the limit was never reached"
    );
    // Per-connection limits alone (256 KiB each) would have let more than 80 MiB in.
    assert!(
        backlog < CONNS * (256 << 10),
        "backlog {backlog}: the context's limit did not engage"
    );
    // Everything sent arrives, exactly once.
    for (c, s) in clients.iter_mut().zip(sent.iter_mut()) {
        c.set_nonblocking(false).unwrap();
        c.write_all(&data[*s..]).unwrap();
        *s = data.len();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines.load(Ordering::SeqCst) < CONNS * LINES && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(lines.load(Ordering::SeqCst), CONNS * LINES);
    assert_eq!(bad.load(Ordering::SeqCst), 0);
    std::thread::sleep(Duration::from_millis(50)); // credits are returned when a batch ends
    assert_eq!(unsafe { xt_get_stat(ctx.ptr, XT_STAT_BACKLOG_BYTES) }, 0);
}
