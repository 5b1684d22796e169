//! UDP echo benchmark: xtnet's C `echo_server --udp-port` against a plain tokio UDP echo (one
//! task: recv_from, send_to), in one run, on loopback. 64-byte datagrams.
//!
//!     cargo bench --bench udp_echo             # full run
//!     cargo bench --bench udp_echo -- --quick
//!
//! Paced: one client sends 50 000 datagrams/s; every one must come back. Unpaced: two clients
//! send as fast as they can; what comes back per second is the server's echo capacity, and
//! every datagram lost must be accounted for: dropped by xtnet (its counter, which includes the
//! kernel's drops on its sockets), refused on reply, or dropped at the client (its SO_RXQ_OVFL).

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{median, row_with, xtnet_echo_server, Server};

const DATAGRAM: usize = 64;

/// Starts one of the compared servers: the server and its UDP port.
type StartServer = fn() -> (Server, u16);

fn baseline_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
        println!("listening on port {}", socket.local_addr().unwrap().port());
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.unwrap();
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
}

fn xtnet_server_in(name: &'static str, dispatch: &str) -> (Server, u16) {
    let args = [
        "--port",
        "0",
        "--quiet",
        "--udp-port",
        "0",
        "--dispatch",
        dispatch,
    ];
    let mut server = xtnet_echo_server(name, &args);
    let line = server.next_line();
    let port = support::port_in(&line).unwrap_or_else(|| panic!("no UDP port in {line:?}"));
    (server, port)
}

fn xtnet_server() -> (Server, u16) {
    xtnet_server_in("xtnet", "thread")
}

fn xtnet_inline_server() -> (Server, u16) {
    xtnet_server_in("xtnet (inline)", "inline")
}

fn tokio_server() -> (Server, u16) {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.arg("--baseline-udp");
    let server = Server::start("tokio", cmd);
    let port = server.port;
    (server, port)
}

/// A client socket with a big receive buffer and the kernel's drop counter switched on.
fn client_socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fd = s.as_raw_fd();
    let big: libc::c_int = 32 << 20;
    let on: libc::c_int = 1;
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&big as *const libc::c_int).cast(),
            4,
        );
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            (&on as *const libc::c_int).cast(),
            4,
        );
    }
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    s
}

/// Receives one datagram; returns its length and the socket's drop counter if reported.
fn recv_counting(s: &UdpSocket, buf: &mut [u8]) -> Option<(usize, Option<u32>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return None;
    }
    let mut drops = None;
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_RXQ_OVFL {
                drops = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const u32));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Some((n as usize, drops))
}

struct Run {
    sent: u64,
    echoed: u64,
    client_drops: u64,
    secs: f64,
}

/// `clients` sockets each send to `port` for `secs` — `rate` datagrams/s each, or as fast as
/// they can (rate 0) — while a thread per socket counts what comes back (verified).
fn run(port: u16, clients: usize, rate: u64, secs: f64) -> Run {
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    let sockets: Vec<Arc<UdpSocket>> = (0..clients).map(|_| Arc::new(client_socket())).collect();
    let sending = Arc::new(AtomicBool::new(true));
    let echoed = Arc::new(AtomicU64::new(0));
    let client_drops = Arc::new(AtomicU64::new(0));
    let receivers: Vec<_> = sockets
        .iter()
        .map(|s| {
            let (s, sending, echoed, drops) = (
                s.clone(),
                sending.clone(),
                echoed.clone(),
                client_drops.clone(),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let mut last_drops = 0;
                let mut quiet_since = None::<Instant>;
                loop {
                    match recv_counting(&s, &mut buf) {
                        Some((n, d)) => {
                            assert_eq!(n, DATAGRAM, "an echo came back whole");
                            assert_eq!(buf[0], b'x', "an echo came back intact");
                            echoed.fetch_add(1, Ordering::Relaxed);
                            if let Some(d) = d {
                                last_drops = d;
                            }
                            quiet_since = None;
                        }
                        None if !sending.load(Ordering::Relaxed) => {
                            // Stragglers: stop once nothing came for 300 ms after sending ended.
                            let since = quiet_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_millis(300) {
                                break;
                            }
                        }
                        None => {}
                    }
                }
                drops.fetch_add(last_drops as u64, Ordering::Relaxed);
            })
        })
        .collect();
    let start = Instant::now();
    let senders: Vec<_> = sockets
        .iter()
        .map(|s| {
            let s = s.clone();
            std::thread::spawn(move || {
                let payload = [b'x'; DATAGRAM];
                let mut sent = 0u64;
                let begin = Instant::now();
                while begin.elapsed().as_secs_f64() < secs {
                    if rate > 0 {
                        // Pace in 1 ms steps.
                        let due = (begin.elapsed().as_secs_f64() * rate as f64) as u64;
                        if sent >= due {
                            std::thread::sleep(Duration::from_micros(200));
                            continue;
                        }
                    }
                    if s.send_to(&payload, to).is_ok() {
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    let sent: u64 = senders.into_iter().map(|t| t.join().unwrap()).sum();
    let secs = start.elapsed().as_secs_f64();
    sending.store(false, Ordering::Relaxed);
    for r in receivers {
        r.join().unwrap();
    }
    Run {
        sent,
        echoed: echoed.load(Ordering::Relaxed),
        client_drops: client_drops.load(Ordering::Relaxed),
        secs,
    }
}

/// xtnet's own counters, from echo_server's last line: (dropped, replies refused).
fn xtnet_counters(output: &str) -> (u64, u64) {
    let line = output
        .lines()
        .find(|l| l.starts_with("udp: "))
        .unwrap_or_else(|| panic!("no udp line in {output:?}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[1], nums[2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--baseline-udp") {
        return baseline_server();
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (secs, rounds) = if quick { (1.0, 3) } else { (2.0, 5) };
    println!("| scenario | tokio | xtnet | xtnet (inline) | xtnet / tokio | inline / tokio |");
    println!("|---|---|---|---|---|---|");
    let servers: [(&str, StartServer); 3] = [
        ("tokio", tokio_server),
        ("xtnet", xtnet_server),
        ("xtnet (inline)", xtnet_inline_server),
    ];

    // Paced at 50 000/s: everything must come back.
    let mut paced_ok = Vec::new();
    for (name, start) in servers {
        let (server, port) = start();
        let r = run(port, 1, 50_000, secs);
        let out = server.stop();
        let counted = if name != "tokio" {
            format!(
                ", xtnet counted {:?} (dropped, refused)",
                xtnet_counters(&out)
            )
        } else {
            String::new()
        };
        eprintln!(
            "  paced {name}: sent {} echoed {} lost {}{counted}",
            r.sent,
            r.echoed,
            r.sent - r.echoed
        );
        paced_ok.push((r.sent, r.echoed));
    }
    let cells: Vec<String> = paced_ok.iter().map(|(s, e)| format!("{e} / {s}")).collect();
    println!(
        "| paced 50 000/s x {secs} s: echoed / sent | {} | | |",
        cells.join(" | ")
    );

    // Unpaced: rounds alternate servers; medians of echoed/s.
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    let mut accounting = Vec::new();
    for round in 0..rounds {
        for (i, (name, start)) in servers.iter().enumerate() {
            let (server, port) = start();
            let r = run(port, 2, 0, secs);
            let out = server.stop();
            let rate = r.echoed as f64 / r.secs;
            let lost = r.sent - r.echoed;
            if i > 0 {
                let (dropped, refused) = xtnet_counters(&out);
                let counted = dropped + refused + r.client_drops;
                eprintln!(
                    "  round {round} {name}: {rate:.0}/s sent {} echoed {} lost {lost} = xtnet dropped {dropped} + refused {refused} + client dropped {} (uncounted {})",
                    r.sent, r.echoed, r.client_drops, lost as i64 - counted as i64
                );
                accounting.push(lost as i64 - counted as i64);
            } else {
                eprintln!("  round {round} tokio: {rate:.0}/s sent {} echoed {} lost {lost} (client dropped {})", r.sent, r.echoed, r.client_drops);
            }
            rates[i].push(rate);
        }
    }
    let m: Vec<f64> = rates.iter().map(|r| median(r.clone())).collect();
    row_with(
        "unpaced, 2 clients: echoed datagrams/s",
        &m,
        0,
        &[(1, 0), (2, 0)],
    );
    println!(
        "| unpaced: lost datagrams not counted by xtnet or the client (per round, both modes) | | {:?} | | | |",
        accounting
    );
}
