//! Framed-TCP echo benchmark: xtnet's C `echo_server` against a plain multi-threaded tokio
//! line echo with the same framing, in one run, on loopback. Not a test: it prints figures
//! (and ratios, which are what to compare on a shared, noisy machine).
//!
//!     cargo bench --bench echo                 # everything
//!     cargo bench --bench echo -- --quick      # shorter runs
//!     cargo bench --bench echo -- --baseline-lib DIR   # also another build's libxtnet.so
//!                                                      # (e.g. a worktree's target/release)
//!
//! Scenarios: 50 connections x 16 messages in flight x 64 B ("\r\n"-framed), throughput with
//! every echoed byte verified; 1 connection with one message in flight, RTT percentiles;
//! server CPU per message; server RSS per idle connection (5000), after one echo each, and
//! 10 000 connections held open at once.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{
    median, message, percentile, raise_fd_limit, row_with, source_ip, xtnet_echo_server,
    xtnet_echo_server_with_lib, Server, MSG_LEN,
};

// ---------------------------------------------------------------- the tokio baseline server

fn baseline_server(workers: Option<usize>) {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let rt = builder.enable_all().build().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        println!(
            "listening on port {}",
            listener.local_addr().unwrap().port()
        );
        std::io::stdout().flush().unwrap();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            tokio::spawn(support::line_echo(s, 64 << 10));
        }
    });
}

fn xtnet_server(dispatch: &str, threads: Option<&str>) -> Server {
    let name = match (dispatch, threads) {
        ("poll", _) => "xtnet (poll)",
        ("inline", None) => "xtnet (inline)",
        ("inline", Some("1")) => "xtnet (inline, 1 thread)",
        ("inline", Some("2")) => "xtnet (inline, 2 threads)",
        ("inline", Some(_)) => "xtnet (inline, 4 threads)",
        ("thread", Some("1")) => "xtnet (1 thread)",
        ("thread", Some("2")) => "xtnet (2 threads)",
        ("thread", Some(_)) => "xtnet (4 threads)",
        _ => "xtnet",
    };
    let mut args = vec!["--port", "0", "--quiet", "--dispatch", dispatch];
    if let Some(threads) = threads {
        args.extend(["--threads", threads]);
    }
    xtnet_echo_server(name, &args)
}

fn tokio_server() -> Server {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--baseline-server");
    Server::start("tokio", cmd)
}

/// The tokio echo with `n` workers.
fn tokio_server_with(n: &str) -> Server {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--baseline-server", "--workers", n]);
    let name = match n {
        "1" => "tokio (1 worker)",
        "2" => "tokio (2 workers)",
        _ => "tokio (4 workers)",
    };
    Server::start(name, cmd)
}

// ---------------------------------------------------------------- messages

// ---------------------------------------------------------------- throughput

async fn pipeline(
    addr: SocketAddr,
    src: IpAddr,
    conn: usize,
    depth: u64,
    stop: Arc<AtomicBool>,
) -> u64 {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(src, 0)).unwrap();
    let s = sock.connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    support::echo_pipeline(s, conn, depth, stop).await
}

struct Throughput {
    msgs_per_sec: f64,
    cpu_us_per_msg: f64,
}

/// Runs `conns` pipelined connections against `port` for `secs`; returns (messages echoed
/// and verified, seconds taken).
fn drive(port: u16, conns: usize, depth: u64, secs: f64, src: u8) -> (u64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|c| rt.spawn(pipeline(addr, source_ip(src), c, depth, stop.clone())))
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let total: u64 = rt.block_on(async {
        let mut t = 0;
        for task in tasks {
            t += task.await.unwrap();
        }
        t
    });
    (total, start.elapsed().as_secs_f64())
}

fn throughput(server: &Server, conns: usize, depth: u64, secs: f64, src: u8) -> Throughput {
    let cpu0 = server.cpu_seconds();
    let (total, elapsed) = drive(server.port, conns, depth, secs, src);
    let cpu = server.cpu_seconds() - cpu0;
    Throughput {
        msgs_per_sec: total as f64 / elapsed,
        cpu_us_per_msg: cpu * 1e6 / total as f64,
    }
}

// ---------------------------------------------------------------- latency

/// One connection to `server` from 127.0.0.<src>, for ping-pong.
fn ping_connection(server: &Server, src: u8) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(source_ip(src), 0).into())
        .unwrap();
    sock.connect(&SocketAddr::from(([127, 0, 0, 1], server.port)).into())
        .unwrap();
    let s: TcpStream = sock.into();
    s.set_nodelay(true).unwrap();
    s
}

/// `rounds` ping-pongs of one 64 B message; the round-trip times in microseconds.
fn pings(s: &mut TcpStream, rounds: usize, rtts: &mut Vec<f64>) {
    let mut buf = [0u8; MSG_LEN];
    for i in 0..rounds {
        let m = message(0, i as u64);
        let t = Instant::now();
        s.write_all(&m).unwrap();
        s.read_exact(&mut buf).unwrap();
        let rtt = t.elapsed();
        assert_eq!(buf, m);
        rtts.push(rtt.as_secs_f64() * 1e6);
    }
}

// ---------------------------------------------------------------- many connections

fn open_many(server: &Server, n: usize, first_src: u8) -> Vec<TcpStream> {
    let addr: SocketAddr = ([127, 0, 0, 1], server.port).into();
    (0..n)
        .map(|i| {
            let sock =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            // 2000 connections per source address keeps far from the ephemeral range's end.
            sock.bind(&SocketAddr::new(source_ip(first_src + (i / 2000) as u8), 0).into())
                .unwrap();
            sock.connect(&addr.into())
                .unwrap_or_else(|e| panic!("{}: connection {i}: {e}", server.name));
            // Close with RST: no TIME_WAIT left behind between scenarios.
            sock.set_linger(Some(Duration::ZERO)).unwrap();
            let s: TcpStream = sock.into();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s
        })
        .collect()
}

fn echo_once(conns: &mut [TcpStream]) {
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(&message(i, 1)).unwrap();
    }
    let mut buf = [0u8; MSG_LEN];
    for (i, s) in conns.iter_mut().enumerate() {
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, message(i, 1), "connection {i}");
    }
}

/// Waits until the server has accepted everything: the last connection echoes.
fn settle(conns: &mut [TcpStream]) {
    let last = conns.len() - 1;
    echo_once(&mut conns[last..]);
    std::thread::sleep(Duration::from_millis(500));
}

struct Memory {
    idle_per_conn: f64,
    echoed_per_conn: f64,
}

fn memory(server: &Server, n: usize, src: u8) -> Memory {
    std::thread::sleep(Duration::from_millis(300));
    let before = server.rss() as f64;
    let mut conns = open_many(server, n, src);
    settle(&mut conns);
    let idle = server.rss() as f64;
    echo_once(&mut conns);
    std::thread::sleep(Duration::from_millis(500));
    let echoed = server.rss() as f64;
    drop(conns);
    Memory {
        idle_per_conn: (idle - before) / n as f64,
        echoed_per_conn: (echoed - before) / n as f64,
    }
}

/// Opens `n` connections at once and echoes one message on each (panics if any fails);
/// returns the server's RSS in MiB meanwhile.
fn held_open(server: &Server, n: usize, src: u8) -> f64 {
    let mut conns = open_many(server, n, src);
    echo_once(&mut conns);
    let rss = server.rss() as f64;
    drop(conns);
    rss / (1 << 20) as f64
}

// ---------------------------------------------------------------- scaling

/// Throughput of the thread and inline modes with 1, 2 and 4 network threads, against tokio
/// with as many workers, rounds interleaved.
fn scaling(secs: f64, rounds: usize) {
    let counts = ["1", "2", "4"];
    let mut servers = Vec::new();
    for n in counts {
        servers.push(tokio_server_with(n));
        servers.push(xtnet_server("thread", Some(n)));
        servers.push(xtnet_server("inline", Some(n)));
    }
    let mut tput: Vec<Vec<f64>> = servers.iter().map(|_| Vec::new()).collect();
    for r in 0..rounds {
        for (i, s) in servers.iter().enumerate() {
            let t = throughput(s, 50, 16, secs, 10 + (r * 9 + i) as u8 % 200);
            eprintln!("  round {r} {:<26} {:>10.0} msgs/s", s.name, t.msgs_per_sec);
            tput[i].push(t.msgs_per_sec);
        }
    }
    println!("| network threads | tokio | xtnet (thread) | xtnet (inline) | thread / tokio | inline / tokio |");
    println!("|---|---|---|---|---|---|");
    for (k, n) in counts.iter().enumerate() {
        let v: Vec<f64> = (0..3).map(|j| median(tput[k * 3 + j].clone())).collect();
        println!(
            "| {n} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
            v[0],
            v[1],
            v[2],
            v[1] / v[0],
            v[2] / v[0]
        );
    }
}

// ---------------------------------------------------------------- main

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--baseline-server") {
        let workers = args
            .iter()
            .position(|a| a == "--workers")
            .map(|i| args[i + 1].parse().expect("--workers N"));
        return baseline_server(workers);
    }
    // `--load PORT SECS`: only drive an already running server (e.g. under a profiler).
    if let Some(i) = args.iter().position(|a| a == "--load") {
        let port: u16 = args[i + 1].parse().expect("--load PORT SECS");
        let secs: f64 = args[i + 2].parse().expect("--load PORT SECS");
        let (total, elapsed) = drive(port, 50, 16, secs, 9);
        println!("{:.0} msgs/s", total as f64 / elapsed);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--only tput,latency,memory,held` runs a subset (all by default).
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_owned).collect());
    let run = |what: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == what));
    raise_fd_limit();
    // Throughput: rounds of `secs` per server, interleaved; latency: blocks of 1000 pings.
    let (secs, rounds, lat_blocks) = if quick { (1.0, 3, 10) } else { (2.0, 7, 40) };

    // `--scaling`: throughput per dispatch mode with 1, 2 and 4 network threads instead.
    if args.iter().any(|a| a == "--scaling") {
        return scaling(secs, rounds);
    }
    let tokio_srv = tokio_server();
    let xt = xtnet_server("thread", None);
    let xt_poll = xtnet_server("poll", None);
    let xt_inline = xtnet_server("inline", None);
    // `--baseline-lib DIR`: the same echo_server on another build of the library, to measure
    // a change against the build before it in one run.
    let baseline = args
        .iter()
        .position(|a| a == "--baseline-lib")
        .and_then(|i| args.get(i + 1))
        .map(|dir| {
            xtnet_echo_server_with_lib("xtnet (baseline lib)", &["--port", "0", "--quiet"], dir)
        });
    let mut servers = vec![&tokio_srv, &xt, &xt_poll, &xt_inline];
    servers.extend(baseline.as_ref());
    // xtnet / tokio, xtnet (inline) / tokio, and xtnet / baseline when there is one.
    let mut ratios = vec![(1, 0), (3, 0)];
    if baseline.is_some() {
        ratios.push((1, 4));
    }
    let row = |label: &str, v: &[f64], decimals: usize| row_with(label, v, decimals, &ratios);
    println!(
        "servers: {}",
        servers
            .iter()
            .map(|s| format!("{} pid {}", s.name, s.pid()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    let extra = if baseline.is_some() {
        " | xtnet / baseline"
    } else {
        ""
    };
    println!(
        "| scenario | {} | xtnet / tokio | inline / tokio{extra} |",
        names.join(" | ")
    );
    println!("|---|{}", "---|".repeat(names.len() + ratios.len()));

    if run("tput") {
        // Throughput, alternating servers each round; medians.
        let mut tput: Vec<Vec<Throughput>> = servers.iter().map(|_| Vec::new()).collect();
        for r in 0..rounds {
            for (i, s) in servers.iter().enumerate() {
                let t = throughput(s, 50, 16, secs, 10 + (r * 3 + i) as u8);
                eprintln!(
                    "  round {r} {:<13} {:>10.0} msgs/s  {:>6.2} us CPU/msg",
                    s.name, t.msgs_per_sec, t.cpu_us_per_msg
                );
                tput[i].push(t);
            }
        }
        let mps: Vec<f64> = tput
            .iter()
            .map(|v| median(v.iter().map(|t| t.msgs_per_sec).collect()))
            .collect();
        let cpu: Vec<f64> = tput
            .iter()
            .map(|v| median(v.iter().map(|t| t.cpu_us_per_msg).collect()))
            .collect();
        row("50 conns x 16 in flight x 64 B: msgs/s", &mps, 0);
        row("server CPU per message (us)", &cpu, 2);
    }

    if run("latency") {
        // Short blocks of pings, servers interleaved, so the machine's drifting load hits all
        // of them alike; percentiles over every sample.
        let mut conns: Vec<TcpStream> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| ping_connection(s, 40 + i as u8))
            .collect();
        let mut samples: Vec<Vec<f64>> = servers.iter().map(|_| Vec::new()).collect();
        for (c, v) in conns.iter_mut().zip(samples.iter_mut()) {
            pings(c, 500, &mut Vec::new()); // warm-up
            v.clear();
        }
        for _ in 0..lat_blocks {
            for (c, v) in conns.iter_mut().zip(samples.iter_mut()) {
                pings(c, 1000, v);
            }
        }
        let pct = |p: f64| -> Vec<f64> {
            samples
                .iter()
                .map(|v| {
                    let mut v = v.clone();
                    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                    percentile(&v, p)
                })
                .collect()
        };
        let (p50, p99) = (pct(0.50), pct(0.99));
        row("1 conn, 1 in flight: RTT p50 (us)", &p50, 1);
        row("1 conn, 1 in flight: RTT p99 (us)", &p99, 1);
    }

    if run("memory") {
        let idle_n = 5000;
        let mem: Vec<Memory> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| memory(s, idle_n, 60 + 3 * i as u8))
            .collect();
        let idle: Vec<f64> = mem.iter().map(|m| m.idle_per_conn).collect();
        let echoed: Vec<f64> = mem.iter().map(|m| m.echoed_per_conn).collect();
        row(
            &format!("RSS per idle connection, {idle_n} conns (bytes)"),
            &idle,
            0,
        );
        row("RSS per connection after one echo each (bytes)", &echoed, 0);
    }

    if run("held") {
        let held: Vec<f64> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| held_open(s, 10_000, 80 + 6 * i as u8))
            .collect();
        row(
            "10 000 connections open at once, one echo each: server RSS (MiB)",
            &held,
            0,
        );
    }
}
