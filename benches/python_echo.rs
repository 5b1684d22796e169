//! Python framed echo benchmark: the same echo written on `xtnet.Context` (thread, poll and
//! inline dispatch; `on_data` answering with `ctx.send`) and on plain asyncio streams
//! (`readuntil`, `write`, `drain`), in one run, on loopback: 50 connections x 16 messages in
//! flight x 64 B, every echoed byte verified. The servers are `benches/python/echo.py`.
//!
//!     cargo bench --bench python_echo
//!     cargo bench --bench python_echo -- --quick

mod support;

use std::process::Command;
use support::{median, row_with, source_ip, Server};

fn python_server(name: &'static str, mode: &str) -> Server {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = Command::new("python3");
    cmd.arg(format!("{root}/benches/python/echo.py"))
        .arg(mode)
        .env("PYTHONPATH", format!("{root}/python"))
        .env("XTNET_LIBRARY", support::library_dir());
    Server::start(name, cmd)
}

/// Echoed messages per second: `conns` connections with `depth` messages in flight each.
fn throughput(port: u16, conns: usize, depth: u64, secs: f64) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    support::pipelines_per_second(&rt, conns, secs, move |c, stop| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((source_ip(20), 0).into()).unwrap();
        let s = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        s.set_nodelay(true).unwrap();
        support::echo_pipeline(s, c, depth, stop).await
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let (secs, rounds) = if quick { (1.5, 3) } else { (3.0, 5) };
    support::raise_fd_limit();
    let servers = [
        python_server("asyncio streams", "asyncio"),
        python_server("xtnet.Context (thread)", "xtnet-thread"),
        python_server("xtnet.Context (poll)", "xtnet-poll"),
        python_server("xtnet.Context (inline)", "xtnet-inline"),
    ];
    let mut rates: Vec<Vec<f64>> = servers.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, s) in servers.iter().enumerate() {
            let r = throughput(s.port, 50, 16, secs);
            eprintln!("  round {round} {:<24} {r:>9.0} msgs/s", s.name);
            rates[i].push(r);
        }
    }
    let m: Vec<f64> = rates.into_iter().map(median).collect();
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    println!(
        "| scenario | {} | thread / asyncio | poll / asyncio | inline / asyncio |",
        names.join(" | ")
    );
    println!("|---|{}", "---|".repeat(names.len() + 3));
    row_with(
        "50 conns x 16 in flight x 64 B: msgs/s",
        &m,
        0,
        &[(1, 0), (2, 0), (3, 0)],
    );
}
