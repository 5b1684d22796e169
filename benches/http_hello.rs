//! HTTP benchmark: `wrk` (64 keep-alive connections) against xtnet's C `http_server --hello`
//! (every request goes through the host's `page_request` callback) and a plain hyper hello
//! server, in one run; then the memory of idle keep-alive connections.
//!
//!     cargo bench --bench http_hello             # needs `wrk` (Debian package)
//!     cargo bench --bench http_hello -- --quick

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use support::{median, Server};

fn baseline_server() {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        println!(
            "listening on port {}",
            listener.local_addr().unwrap().port()
        );
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"hello")));
                    r.headers_mut()
                        .insert("content-type", "text/plain".parse().unwrap());
                    Ok::<_, std::convert::Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

fn hyper_server() -> Server {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--baseline-http");
    Server::start("hyper", cmd)
}

fn xtnet_server() -> Server {
    support::xtnet_example("http_server", "xtnet", &["--port", "0", "--hello"])
}

fn xtnet_inline_server() -> Server {
    let args = ["--port", "0", "--hello", "--dispatch", "inline"];
    support::xtnet_example("http_server", "xtnet (inline)", &args)
}

struct Wrk {
    requests_per_sec: f64,
    p99_ms: f64,
}

/// Parses wrk's "Requests/sec" and its --latency "99%" line.
fn wrk(port: u16, secs: u32) -> Wrk {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c64",
            &format!("-d{secs}s"),
            "--latency",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .output()
        .expect("wrk runs (Debian package wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors: {text}");
    let requests_per_sec = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in {text}"));
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no 99% line in {text}"));
    Wrk {
        requests_per_sec,
        p99_ms: to_ms(p99),
    }
}

/// wrk prints "812.00us", "1.23ms" or "1.02s".
fn to_ms(v: &str) -> f64 {
    let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let n: f64 = n.parse().unwrap();
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        other => panic!("unit {other}"),
    }
}

/// Server RSS growth per connection for `n` keep-alive connections, each idle after one request.
fn idle_memory(server: &Server, n: usize) -> f64 {
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = server.rss() as f64;
    let mut conns: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    let mut buf = [0u8; 4096];
    for c in &mut conns {
        c.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
            .unwrap();
    }
    for c in &mut conns {
        let n = c.read(&mut buf).unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = server.rss() as f64;
    drop(conns);
    (after - before) / n as f64
}

/// A row: hyper, xtnet, xtnet (inline) (and the baseline build); xtnet / hyper, inline / hyper
/// (and xtnet / baseline).
fn http_row(label: &str, v: &[f64], decimals: usize) {
    let mut ratios = vec![(1, 0), (2, 0)];
    if v.len() > 3 {
        ratios.push((1, 3));
    }
    support::row_with(label, v, decimals, &ratios);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--baseline-http") {
        return baseline_server();
    }
    support::raise_fd_limit();
    let quick = args.iter().any(|a| a == "--quick");
    let (secs, rounds) = if quick { (3, 1) } else { (5, 3) };
    // `--baseline-lib DIR`: the same http_server on another build of the library, to measure a
    // change against the build before it in one run.
    let baseline = args
        .iter()
        .position(|a| a == "--baseline-lib")
        .and_then(|i| args.get(i + 1))
        .map(|dir| {
            support::xtnet_example_with_lib(
                "http_server",
                "xtnet (baseline lib)",
                &["--port", "0", "--hello"],
                dir,
            )
        });
    let mut servers = vec![hyper_server(), xtnet_server(), xtnet_inline_server()];
    servers.extend(baseline);
    if servers.len() == 4 {
        println!("| scenario | hyper | xtnet | xtnet (inline) | xtnet (baseline lib) | xtnet / hyper | inline / hyper | xtnet / baseline |");
        println!("|---|---|---|---|---|---|---|---|");
    } else {
        println!("| scenario | hyper | xtnet | xtnet (inline) | xtnet / hyper | inline / hyper |");
        println!("|---|---|---|---|---|---|");
    }
    let mut rps = vec![Vec::new(); servers.len()];
    let mut p99 = vec![Vec::new(); servers.len()];
    for _ in 0..rounds {
        for (i, s) in servers.iter().enumerate() {
            let w = wrk(s.port, secs);
            eprintln!(
                "  {}: {:.0} req/s, p99 {:.2} ms",
                s.name, w.requests_per_sec, w.p99_ms
            );
            rps[i].push(w.requests_per_sec);
            p99[i].push(w.p99_ms);
        }
    }
    let medians = |v: &Vec<Vec<f64>>| v.iter().map(|x| median(x.clone())).collect::<Vec<_>>();
    http_row("64 keep-alive connections: requests/s", &medians(&rps), 0);
    http_row("latency p99 (ms)", &medians(&p99), 2);
    let memory: Vec<f64> = servers.iter().map(|s| idle_memory(s, 2000)).collect();
    http_row(
        "RSS per idle keep-alive connection, 2000 conns (bytes)",
        &memory,
        0,
    );
}
