//! TLS and WebSocket benchmarks: xtnet's C `echo_server --tls` / `--websocket` against a plain
//! tokio-rustls line echo and a plain tokio-tungstenite echo, in one run, on loopback. Not a
//! test: it prints figures and the ratios (what to compare on a shared, noisy machine).
//!
//!     cargo bench --bench tls_ws                 # everything
//!     cargo bench --bench tls_ws -- --quick      # shorter runs
//!
//! Scenarios: TLS handshakes per second (8 clients connecting, handshaking, echoing one line,
//! closing, in a loop); framed echo over TLS (50 connections x 16 messages in flight x 64 B,
//! every echo verified); WebSocket echo (the same, as 64 B text messages); server RSS per idle
//! connection (2000 connections after one echo each): TLS, WebSocket, and plain TCP (xtnet's
//! target: an idle TLS connection costs at most twice a plain one).

mod support;

use futures_util::{SinkExt, StreamExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{
    line_echo, message, raise_fd_limit, row_with, source_ip, xtnet_echo_server, Server, MSG_LEN,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

// ---------------------------------------------------------------- the plain peers

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn listen() -> tokio::net::TcpListener {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    println!(
        "listening on port {}",
        listener.local_addr().unwrap().port()
    );
    std::io::stdout().flush().unwrap();
    listener
}

/// tokio-rustls: a self-signed certificate (rcgen), then the line echo.
fn baseline_tls_server() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![made.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    runtime().block_on(async {
        let listener = listen().await;
        loop {
            let (s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    line_echo(tls, 16 << 10).await;
                }
            });
        }
    });
}

/// tokio-tungstenite: accept, then every message back (the crate's own echo: forward).
fn baseline_ws_server() {
    runtime().block_on(async {
        let listener = listen().await;
        loop {
            let (s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(s).await {
                    let (write, read) = ws.split();
                    let _ = read
                        .filter(|m| {
                            std::future::ready(
                                m.as_ref().is_ok_and(|m| m.is_text() || m.is_binary()),
                            )
                        })
                        .forward(write)
                        .await;
                }
            });
        }
    });
}

fn baseline(flag: &str, name: &'static str) -> Server {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg(flag);
    Server::start(name, cmd)
}

// ---------------------------------------------------------------- clients

/// Trusts any certificate: the benchmark measures the work, not the trust decision.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tcp(port: u16, src: IpAddr) -> tokio::net::TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(src, 0)).unwrap();
    let s = sock.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    s.set_nodelay(true).unwrap();
    s
}

async fn tls(
    c: &tokio_rustls::TlsConnector,
    port: u16,
    src: IpAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let name = ServerName::try_from("localhost").unwrap();
    c.connect(name, tcp(port, src).await).await.unwrap()
}

/// One echo of a line on a stream (verified).
async fn echo_line<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, conn: usize, seq: u64) {
    let m = message(conn, seq);
    s.write_all(&m).await.unwrap();
    let mut back = [0u8; MSG_LEN];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(back, m);
}

/// Handshakes per second: `clients` loops of connect, handshake, one echo, close.
fn handshakes(port: u16, clients: usize, secs: f64) -> f64 {
    let rt = runtime();
    let c = connector();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (c, done, stop) = (c.clone(), done.clone(), stop.clone());
            rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let mut s = tls(&c, port, source_ip(10 + i as u8)).await;
                    echo_line(&mut s, i, 0).await;
                    let _ = s.shutdown().await;
                    // RST rather than TIME_WAIT: thousands of connections per run.
                    let _ = socket2::SockRef::from(s.get_ref().0).set_linger(Some(Duration::ZERO));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Pipelined echo over TLS: `conns` connections, `depth` messages in flight; verified.
async fn tls_pipeline(
    c: tokio_rustls::TlsConnector,
    port: u16,
    conn: usize,
    depth: u64,
    stop: Arc<AtomicBool>,
) -> u64 {
    let s = tls(&c, port, source_ip(40)).await;
    support::echo_pipeline(s, conn, depth, stop).await
}

/// Pipelined WebSocket echo: text messages of MSG_LEN bytes; verified.
async fn ws_pipeline(port: u16, conn: usize, depth: u64, stop: Arc<AtomicBool>) -> u64 {
    let s = tcp(port, source_ip(41)).await;
    let url = format!("ws://127.0.0.1:{port}/echo");
    let (ws, _) = tokio_tungstenite::client_async(url.as_str(), s)
        .await
        .unwrap();
    let (mut write, mut read) = ws.split();
    let text = |seq: u64| {
        let m = message(conn, seq);
        Message::text(String::from_utf8(m[..MSG_LEN - 2].to_vec()).unwrap())
    };
    let (mut sent, mut got) = (0u64, 0u64);
    for _ in 0..depth {
        write.feed(text(sent)).await.unwrap();
        sent += 1;
    }
    write.flush().await.unwrap();
    while let Some(m) = read.next().await {
        let m = m.unwrap();
        assert_eq!(m, text(got), "connection {conn}");
        got += 1;
        if !stop.load(Ordering::Relaxed) {
            write.send(text(sent)).await.unwrap();
            sent += 1;
        } else if got == sent {
            return got;
        }
    }
    panic!("server closed connection {conn}")
}

#[derive(Clone, Copy)]
enum Kind {
    Plain,
    Tls,
    WebSocket,
}

/// Server RSS per connection, `n` connections held open after one echo each.
fn idle_memory(server: &Server, kind: Kind, n: usize) -> f64 {
    let rt = runtime();
    let port = server.port;
    std::thread::sleep(Duration::from_millis(300));
    let before = server.rss() as f64;
    let c = connector();
    let held = rt.block_on(async {
        let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        for i in 0..n {
            let src = source_ip(60 + (i / 2000) as u8);
            match kind {
                Kind::Plain => {
                    let mut s = tcp(port, src).await;
                    echo_line(&mut s, i, 1).await;
                    held.push(Box::new(s));
                }
                Kind::Tls => {
                    let mut s = tls(&c, port, src).await;
                    echo_line(&mut s, i, 1).await;
                    held.push(Box::new(s));
                }
                Kind::WebSocket => {
                    let url = format!("ws://127.0.0.1:{port}/");
                    let (mut ws, _) =
                        tokio_tungstenite::client_async(url.as_str(), tcp(port, src).await)
                            .await
                            .unwrap();
                    ws.send(Message::text("hello")).await.unwrap();
                    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
                    held.push(Box::new(ws));
                }
            }
        }
        held
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = server.rss() as f64;
    drop(held);
    (after - before) / n as f64
}

// ---------------------------------------------------------------- main

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--baseline-tls-server") {
        return baseline_tls_server();
    }
    if args.iter().any(|a| a == "--baseline-ws-server") {
        return baseline_ws_server();
    }
    raise_fd_limit();
    let quick = args.iter().any(|a| a == "--quick");
    let secs = if quick { 1.0 } else { 3.0 };
    let idle_n = if quick { 500 } else { 2000 };
    let runs = if quick { 1 } else { 3 };
    println!(
        "TLS and WebSocket on loopback ({} s per scenario, median of {runs} runs)\n",
        secs
    );

    let tokio_tls = baseline("--baseline-tls-server", "tokio-rustls");
    let xtnet_tls = xtnet_echo_server("xtnet TLS", &["--port", "0", "--quiet", "--tls"]);
    let tokio_ws = baseline("--baseline-ws-server", "tokio-tungstenite");
    let xtnet_ws = xtnet_echo_server(
        "xtnet WebSocket",
        &["--port", "0", "--quiet", "--websocket"],
    );
    let xtnet_plain = xtnet_echo_server("xtnet plain", &["--port", "0", "--quiet"]);
    let inline_tls = xtnet_echo_server(
        "xtnet TLS (inline)",
        &["--port", "0", "--quiet", "--tls", "--dispatch", "inline"],
    );
    let inline_ws = xtnet_echo_server(
        "xtnet WebSocket (inline)",
        &[
            "--port",
            "0",
            "--quiet",
            "--websocket",
            "--dispatch",
            "inline",
        ],
    );

    let median_of = |f: &dyn Fn() -> f64| {
        let mut v: Vec<f64> = (0..runs).map(|_| f()).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    println!("| scenario | plain peer | xtnet | xtnet (inline) | xtnet / peer | inline / peer |");
    println!("|---|---|---|---|---|---|");
    // The memory rows have no inline column (the mode does not change what a connection holds).
    let row = |label: &str, v: &[f64], decimals: usize| {
        let ratios: &[(usize, usize)] = if v.len() > 2 {
            &[(1, 0), (2, 0)]
        } else {
            &[(1, 0)]
        };
        row_with(label, v, decimals, ratios)
    };
    let hs: Vec<f64> = [&tokio_tls, &xtnet_tls]
        .iter()
        .map(|s| median_of(&|| handshakes(s.port, 8, secs)))
        .collect();
    row("TLS handshakes/s (8 clients, with one echo)", &hs, 0);
    let echo: Vec<f64> = [&tokio_tls, &xtnet_tls, &inline_tls]
        .iter()
        .map(|s| {
            let port = s.port;
            median_of(&|| {
                let c = connector();
                support::pipelines_per_second(&runtime(), 50, secs, move |i, stop| {
                    tls_pipeline(c.clone(), port, i, 16, stop)
                })
            })
        })
        .collect();
    row("TLS framed echo msgs/s (50 x 16 x 64 B)", &echo, 0);
    let ws: Vec<f64> = [&tokio_ws, &xtnet_ws, &inline_ws]
        .iter()
        .map(|s| {
            let port = s.port;
            median_of(&|| {
                support::pipelines_per_second(&runtime(), 50, secs, move |i, stop| {
                    ws_pipeline(port, i, 16, stop)
                })
            })
        })
        .collect();
    row("WebSocket echo msgs/s (50 x 16 x 64 B text)", &ws, 0);
    let kib = |b: f64| b / 1024.0;
    let tls_mem = [
        kib(idle_memory(&tokio_tls, Kind::Tls, idle_n)),
        kib(idle_memory(&xtnet_tls, Kind::Tls, idle_n)),
    ];
    row(
        &format!("RSS per idle TLS connection, KiB ({idle_n})"),
        &tls_mem,
        1,
    );
    let ws_mem = [
        kib(idle_memory(&tokio_ws, Kind::WebSocket, idle_n)),
        kib(idle_memory(&xtnet_ws, Kind::WebSocket, idle_n)),
    ];
    row(
        &format!("RSS per idle WebSocket connection, KiB ({idle_n})"),
        &ws_mem,
        1,
    );
    let plain = kib(idle_memory(&xtnet_plain, Kind::Plain, idle_n));
    println!(
        "\nxtnet idle connection: plain TCP {plain:.1} KiB, TLS {:.1} KiB ({:.2}x plain), WebSocket {:.1} KiB ({:.2}x plain)",
        tls_mem[1],
        tls_mem[1] / plain,
        ws_mem[1],
        ws_mem[1] / plain
    );
}
