//! What the benchmarks share: server processes under test and table output.
#![allow(dead_code)] // each bench uses its own part

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, ChildStdout, Command, Stdio};

#[path = "../../tests/support/c_build.rs"]
mod c_build;

/// The folder of this build's libxtnet.so.
pub fn library_dir() -> std::path::PathBuf {
    c_build::library_dir()
}

/// A server process under test; `port` is the one its first line names.
pub struct Server {
    pub name: &'static str,
    child: Child,
    out: BufReader<ChildStdout>,
    pub port: u16,
}

/// The number after the word "port" in a line.
pub fn port_in(line: &str) -> Option<u16> {
    line.split_whitespace()
        .skip_while(|w| *w != "port")
        .nth(1)
        .and_then(|p| p.parse().ok())
}

impl Server {
    pub fn start(name: &'static str, mut cmd: Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let port = port_in(&first).unwrap_or_else(|| panic!("{name}: no port in {first:?}"));
        Server {
            name,
            child,
            out,
            port,
        }
    }

    /// The next line the server printed.
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        line
    }

    /// Stops the server (SIGTERM) and returns the rest of what it printed.
    pub fn stop(mut self) -> String {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut rest = String::new();
        let _ = self.out.read_to_string(&mut rest);
        let _ = self.child.wait();
        rest
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in bytes.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kb: u64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb * 1024
    }

    /// User + system CPU seconds used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after_comm.split_whitespace().collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A C example (built against this build's library) with `args`, as a server under test.
pub fn xtnet_example(example: &str, name: &'static str, args: &[&str]) -> Server {
    let out = c_build::build_c_examples(&c_build::library_dir().join("bench-c-examples"));
    let mut cmd = c_build::example_command(&out.join(example));
    cmd.args(args).args(["--max-seconds", "3600"]);
    Server::start(name, cmd)
}

/// `c-examples/echo_server` with `args`, run against the xtnet library in `lib_dir` (another
/// build, to compare with) instead of this build's.
pub fn xtnet_echo_server_with_lib(name: &'static str, args: &[&str], lib_dir: &str) -> Server {
    xtnet_example_with_lib("echo_server", name, args, lib_dir)
}

/// A C example with `args`, run against the xtnet library in `lib_dir` (another build).
pub fn xtnet_example_with_lib(
    example: &str,
    name: &'static str,
    args: &[&str],
    lib_dir: &str,
) -> Server {
    // Without the library there, the loader would quietly fall back to this build's (the
    // examples' run path): a comparison of a build with itself.
    assert!(
        std::path::Path::new(lib_dir).join("libxtnet.so").exists(),
        "no libxtnet.so in {lib_dir} (build the baseline with `cargo build --release`)"
    );
    let out = c_build::build_c_examples(&c_build::library_dir().join("bench-c-examples"));
    let mut cmd = c_build::example_command(&out.join(example));
    cmd.env("LD_LIBRARY_PATH", lib_dir)
        .args(args)
        .args(["--max-seconds", "3600"]);
    Server::start(name, cmd)
}

/// `c-examples/echo_server` with `args`.
pub fn xtnet_echo_server(name: &'static str, args: &[&str]) -> Server {
    xtnet_example("echo_server", name, args)
}

/// Source addresses 127.0.0.<n> so scenarios never run out of ephemeral ports.
pub fn source_ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// One table row: the servers' values and the ratio of the second to the first (and, with a
/// baseline build of xtnet as the last of three or four servers, the ratio of the second to
/// that).
pub fn row(label: &str, v: &[f64], decimals: usize) {
    let mut ratios = vec![(1, 0)];
    if v.len() > 3 {
        ratios.push((1, 3));
    }
    row_with(label, v, decimals, &ratios);
}

/// A table row: every cell, then the ratio `v[a] / v[b]` for each `(a, b)` in `ratios`.
pub fn row_with(label: &str, v: &[f64], decimals: usize, ratios: &[(usize, usize)]) {
    let cells: Vec<String> = v.iter().map(|x| format!("{x:.decimals$}")).collect();
    let ratios: Vec<String> = ratios
        .iter()
        .map(|&(a, b)| format!("{:.2}", v[a] / v[b]))
        .collect();
    println!(
        "| {label} | {} | {} |",
        cells.join(" | "),
        ratios.join(" | ")
    );
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// The plain peers' line echo ("\r\n"-framed) over any stream, holding no buffer while idle
/// (as xtnet's connections); `reserve`: bytes read at most per call.
pub async fn line_echo<S>(mut s: S, reserve: usize)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use bytes::{Buf, BytesMut};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BOUNDARY: &[u8] = b"\r\n";
    let finder = memchr::memmem::Finder::new(BOUNDARY);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    loop {
        buf.reserve(reserve);
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while let Some(pos) = finder.find(&buf) {
            out.extend_from_slice(&buf[..pos + BOUNDARY.len()]);
            buf.advance(pos + BOUNDARY.len());
        }
        if !out.is_empty() {
            if s.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if buf.is_empty() {
            buf = BytesMut::new();
            out = Vec::new();
        }
    }
}

/// Bytes of one framed benchmark message on the wire, "\r\n" included.
pub const MSG_LEN: usize = 64;

/// The `seq`-th message of connection `conn`: 62 bytes of text, then "\r\n".
pub fn message(conn: usize, seq: u64) -> [u8; MSG_LEN] {
    let mut m = [b'.'; MSG_LEN];
    let head = format!("c{conn:05}s{seq:012}:");
    m[..head.len()].copy_from_slice(head.as_bytes());
    for (i, b) in m.iter_mut().enumerate().take(MSG_LEN - 2).skip(head.len()) {
        *b = b'a' + ((seq as usize + i) % 26) as u8;
    }
    m[MSG_LEN - 2..].copy_from_slice(b"\r\n");
    m
}

/// Keeps `depth` messages of connection `conn` in flight over `s`, verifying every echo,
/// until `stop`; returns how many came back.
pub async fn echo_pipeline<S>(
    mut s: S,
    conn: usize,
    depth: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u64
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use bytes::{Buf, BytesMut};
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut sent, mut got) = (0u64, 0u64);
    let mut out = Vec::with_capacity(depth as usize * MSG_LEN);
    for _ in 0..depth {
        out.extend_from_slice(&message(conn, sent));
        sent += 1;
    }
    s.write_all(&out).await.unwrap();
    let mut buf = BytesMut::with_capacity(64 << 10);
    loop {
        buf.reserve(64 << 10);
        let n = s.read_buf(&mut buf).await.unwrap();
        assert!(n > 0, "server closed connection {conn}");
        out.clear();
        while buf.len() >= MSG_LEN {
            let expect = message(conn, got);
            assert_eq!(
                &buf[..MSG_LEN],
                &expect[..],
                "connection {conn}: echo {got} differs"
            );
            buf.advance(MSG_LEN);
            got += 1;
            if !stop.load(Ordering::Relaxed) {
                out.extend_from_slice(&message(conn, sent));
                sent += 1;
            }
        }
        if !out.is_empty() {
            s.write_all(&out).await.unwrap();
        }
        if got == sent && stop.load(Ordering::Relaxed) {
            return got;
        }
    }
}

/// Messages per second over `conns` connections for `secs`, on `rt`: `start_one(i, stop)` is
/// connection i's pipeline, returning how many messages came back before `stop`.
pub fn pipelines_per_second<F, Fut>(
    rt: &tokio::runtime::Runtime,
    conns: usize,
    secs: f64,
    start_one: F,
) -> f64
where
    F: Fn(usize, std::sync::Arc<std::sync::atomic::AtomicBool>) -> Fut,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|c| rt.spawn(start_one(c, stop.clone())))
        .collect();
    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let total: u64 = rt.block_on(async {
        let mut t = 0;
        for task in tasks {
            t += task.await.unwrap();
        }
        t
    });
    total as f64 / start.elapsed().as_secs_f64()
}
