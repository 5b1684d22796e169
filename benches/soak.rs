//! The soak: a long run of real traffic against one context through the C surface, with every
//! byte verified and every final event counted. Not a timed benchmark and not in CI:
//!
//!     make soak                                   # 60 s, 4000 connections
//!     cargo bench --bench soak -- --seconds 300 --connections 8000
//!
//! - Four framed TCP listeners, each with its own random boundary (1..8 bytes, random values).
//! - `--connections` clients at once (replaced as they finish), each sending a random number of
//!   messages of random sizes (0..16 KiB, in random write splits) and checking that exactly
//!   those messages come back, in order, byte for byte; one in ten resets its connection in the
//!   middle of a message instead.
//! - A UDP echo listener fed at a paced rate; at the end delivered + counted drops must equal
//!   what was sent.
//! - At the end: every accepted connection got exactly one final event, none was lost or
//!   corrupted, and the context frees in its usual time. Prints the figures (RELIABILITY.md).

mod support;

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xtnet::ffi::callbacks::{XtCallbacks, XtConnectionInfo, XtDatagramInfo};
use xtnet::ffi::context::{xt_context_free, xt_context_new, xt_get_stat, XtContext};
use xtnet::ffi::library::XT_ERR_PANIC;
use xtnet::ffi::options::{xt_set_option, XT_OPT_MAX_MESSAGE_LEN};
use xtnet::ffi::tcp::{xt_listener_port, xt_send_data, xt_start_tcp_listener};
use xtnet::ffi::udp::{xt_start_udp_listener, xt_udp_dropped};

#[derive(Default)]
struct Server {
    ctx: AtomicUsize,
    boundaries: Mutex<HashMap<u32, Vec<u8>>>,
    accepted: AtomicU64,
    finals: AtomicU64,
    final_codes: Mutex<HashMap<i32, u64>>,
    messages: AtomicU64,
    bytes: AtomicU64,
    datagrams: AtomicU64,
    send_failures: AtomicU64,
}

fn server(ud: *mut c_void) -> &'static Server {
    // SAFETY: user_data is the Server leaked in main for the whole run.
    unsafe { &*(ud as *const Server) }
}

unsafe extern "C" fn on_new(ud: *mut c_void, _id: u64, _info: *const XtConnectionInfo) -> bool {
    server(ud).accepted.fetch_add(1, Ordering::Relaxed);
    true
}

unsafe extern "C" fn on_data(
    ud: *mut c_void,
    data: *const u8,
    len: usize,
    id: u64,
    info: *const XtConnectionInfo,
) {
    let s = server(ud);
    let ctx = s.ctx.load(Ordering::Relaxed) as *mut XtContext;
    let boundary = s.boundaries.lock().unwrap()[&unsafe { (*info).server_id }].clone();
    s.messages.fetch_add(1, Ordering::Relaxed);
    s.bytes.fetch_add(len as u64, Ordering::Relaxed);
    unsafe {
        if xt_send_data(ctx, id, data, len) != 0
            || xt_send_data(ctx, id, boundary.as_ptr(), boundary.len()) != 0
        {
            s.send_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

unsafe extern "C" fn on_error(ud: *mut c_void, _id: u64, info: *const XtConnectionInfo) {
    let s = server(ud);
    s.finals.fetch_add(1, Ordering::Relaxed);
    *s.final_codes
        .lock()
        .unwrap()
        .entry(unsafe { (*info).error_number })
        .or_default() += 1;
}

unsafe extern "C" fn on_datagram(
    ud: *mut c_void,
    _server: u32,
    _data: *const u8,
    _len: usize,
    _info: *const XtDatagramInfo,
) {
    server(ud).datagrams.fetch_add(1, Ordering::Relaxed);
}

/// A small xorshift generator: reproducible runs from `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A message that cannot contain the boundary (bytes drawn from values the boundary lacks).
fn message(rng: &mut Rng, boundary: &[u8], len: usize) -> Vec<u8> {
    let allowed: Vec<u8> = (0..=255u8).filter(|b| !boundary.contains(b)).collect();
    (0..len)
        .map(|_| allowed[rng.below(allowed.len() as u64) as usize])
        .collect()
}

#[derive(Default)]
struct Clients {
    finished: AtomicU64,
    resets: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
    failures: Mutex<Vec<String>>,
}

async fn client(port: u16, boundary: Vec<u8>, seed: u64, stats: Arc<Clients>) {
    let mut rng = Rng(seed | 1);
    let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        stats.failures.lock().unwrap().push("connect failed".into());
        return;
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let reset = rng.below(10) == 0;
    let count = rng.below(20) + 1;
    let msgs: Vec<Vec<u8>> = (0..count)
        .map(|_| {
            let len = [0, 1, 7, 100, 1500, 16384][rng.below(6) as usize];
            let len = rng.below(len + 1) as usize;
            message(&mut rng, &boundary, len)
        })
        .collect();
    let mut wire = Vec::new();
    for m in &msgs {
        wire.extend_from_slice(m);
        wire.extend_from_slice(&boundary);
    }
    if reset {
        // Part of the stream, then a reset (linger 0) in the middle of a message.
        let cut = rng.below(wire.len() as u64) as usize;
        let _ = wr.write_all(&wire[..cut]).await;
        let stream = rd.reunite(wr).expect("halves of one stream");
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        drop(stream);
        stats.resets.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let expected = wire.clone();
    let writer = {
        let mut rng = Rng(seed.rotate_left(7) | 1);
        tokio::spawn(async move {
            let mut at = 0;
            while at < wire.len() {
                let n = (rng.below(4096) as usize + 1).min(wire.len() - at);
                if wr.write_all(&wire[at..at + n]).await.is_err() {
                    return;
                }
                at += n;
            }
            let _ = wr.shutdown().await;
        })
    };
    let mut got = vec![0u8; expected.len()];
    let read = tokio::time::timeout(Duration::from_secs(60), rd.read_exact(&mut got)).await;
    let _ = writer.await;
    match read {
        Ok(Ok(_)) if got == expected => {
            stats.messages.fetch_add(count, Ordering::Relaxed);
            stats
                .bytes
                .fetch_add(expected.len() as u64, Ordering::Relaxed);
            stats.finished.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Ok(_)) => {
            let at = got.iter().zip(&expected).position(|(a, b)| a != b);
            stats
                .failures
                .lock()
                .unwrap()
                .push(format!("corrupted echo (first difference at {at:?})"));
        }
        other => stats
            .failures
            .lock()
            .unwrap()
            .push(format!("echo incomplete: {other:?}")),
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 20);
    let connections = arg(&args, "--connections", 2000) as usize;
    let seed = arg(&args, "--seed", 0x5eed);
    support::raise_fd_limit();

    let srv: &'static Server = Box::leak(Box::default());
    let mut cb: XtCallbacks = unsafe { std::mem::zeroed() };
    cb.struct_size = std::mem::size_of::<XtCallbacks>() as u32;
    cb.user_data = srv as *const Server as *mut c_void;
    cb.new_connection = Some(on_new);
    cb.data_available = Some(on_data);
    cb.socket_error = Some(on_error);
    cb.received_datagram = Some(on_datagram);
    let ctx = unsafe { xt_context_new(&cb, 0) };
    assert!(!ctx.is_null());
    srv.ctx.store(ctx as usize, Ordering::Relaxed);
    unsafe { xt_set_option(ctx, XT_OPT_MAX_MESSAGE_LEN, 1 << 20) };
    let mut rng = Rng(seed);
    let mut ports = Vec::new();
    for _ in 0..4 {
        let blen = rng.below(8) as usize + 1;
        let boundary: Vec<u8> = (0..blen).map(|_| rng.below(256) as u8).collect();
        let id = unsafe { xt_start_tcp_listener(ctx, 0, boundary.as_ptr(), boundary.len()) };
        assert_ne!(id, 0);
        srv.boundaries.lock().unwrap().insert(id, boundary.clone());
        ports.push((unsafe { xt_listener_port(ctx, id) }, boundary));
    }
    let udp = unsafe { xt_start_udp_listener(ctx, 0) };
    let udp_port = unsafe { xt_listener_port(ctx, udp) };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let stats = Arc::new(Clients::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let sent_datagrams = Arc::new(AtomicU64::new(0));
    runtime.block_on(async {
        // Paced UDP: 2000 datagrams a second from one sender.
        let udp_sender = {
            let sent = sent_datagrams.clone();
            tokio::spawn(async move {
                let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let mut tick = tokio::time::interval(Duration::from_micros(500));
                let mut i = 0u64;
                while Instant::now() < deadline {
                    tick.tick().await;
                    let d = format!("datagram {i}");
                    if sock
                        .send_to(d.as_bytes(), ("127.0.0.1", udp_port))
                        .await
                        .is_ok()
                    {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            })
        };
        let mut running = tokio::task::JoinSet::new();
        let mut n = 0u64;
        while Instant::now() < deadline {
            while running.len() < connections && Instant::now() < deadline {
                let (port, boundary) = ports[(n % 4) as usize].clone();
                running.spawn(client(
                    port,
                    boundary,
                    seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    stats.clone(),
                ));
                n += 1;
            }
            let _ = running.join_next().await;
        }
        while running.join_next().await.is_some() {}
        let _ = udp_sender.await;
    });
    let elapsed = started.elapsed();
    // Let the last final events and datagrams arrive, then count.
    let settle = Instant::now() + Duration::from_secs(10);
    while (srv.finals.load(Ordering::Relaxed) < srv.accepted.load(Ordering::Relaxed)
        || unsafe { xt_get_stat(ctx, 1) } > 0)
        && Instant::now() < settle
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let dropped = unsafe { xt_udp_dropped(ctx, udp) }.max(0) as u64;
    let delivered = srv.datagrams.load(Ordering::Relaxed);
    let sent = sent_datagrams.load(Ordering::Relaxed);
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let free_started = Instant::now();
    unsafe { xt_context_free(ctx) };
    let free_took = free_started.elapsed();

    let accepted = srv.accepted.load(Ordering::Relaxed);
    let finals = srv.finals.load(Ordering::Relaxed);
    let failures = stats.failures.lock().unwrap().clone();
    println!(
        "soak: {:.0} s, {} concurrent connections, seed {seed:#x}",
        elapsed.as_secs_f64(),
        connections
    );
    println!(
        "  TCP: {} connections accepted, {} echoed whole and verified ({} messages, {} MiB), {} reset mid-message",
        accepted,
        stats.finished.load(Ordering::Relaxed),
        stats.messages.load(Ordering::Relaxed),
        stats.bytes.load(Ordering::Relaxed) >> 20,
        stats.resets.load(Ordering::Relaxed)
    );
    println!(
        "  final events: {finals} for {accepted} accepted (codes {:?}); server saw {} messages; send failures {}",
        srv.final_codes.lock().unwrap(),
        srv.messages.load(Ordering::Relaxed),
        srv.send_failures.load(Ordering::Relaxed)
    );
    println!(
        "  UDP: sent {sent}, delivered {delivered}, counted drops {dropped}, unaccounted {}",
        sent as i64 - delivered as i64 - dropped as i64
    );
    println!(
        "  peak RSS {} MiB; xt_context_free took {:?}",
        rss_kib >> 10,
        free_took
    );
    println!("  failures: {}", failures.len());
    for f in failures.iter().take(10) {
        println!("    {f}");
    }
    let ok = failures.is_empty()
        && finals == accepted
        && !srv.final_codes.lock().unwrap().contains_key(&XT_ERR_PANIC)
        && sent == delivered + dropped;
    println!("soak: {}", if ok { "PASS" } else { "FAIL" });
    std::process::exit(if ok { 0 } else { 1 });
}
