//! Serving one HTTP listener: starting and stopping it, its accept loop, and each connection through hyper — each
//! request read whole (within the limits), queued for the host's `page_request`, and answered
//! with what the callback filled in; plus the answers hyper leaves to us (408, 431, 400) and a
//! close that does not reset the last response.

use super::io::{HttpIo, RawIo, SharedStream};
use super::listener::{HttpListener, Limits, DRAIN_LIMIT};
use super::message::RequestParts;
use super::response::Answer;
use super::upgrade::{self, WebSocketUpgrade};
use crate::error::Error;
use crate::events::{Callback, Event, LogLevel};
use crate::info::ConnectionInfo;
use crate::lifecycle::{self, AcceptErrors};
use crate::ports::open_stream_listener;
use crate::registry::ListenerStopped;
use crate::registry::{ListenerKind, ListenerState};
use crate::shared::Shared;
use crate::tcp::Upgrading;
use crate::tls::TlsServer;
use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// After a connection's last response, how long (and how much) input is read and dropped so
/// the close does not reset the connection under the response.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;
/// How long a close waits for a TLS close_notify to go out.
const CLOSE_NOTIFY: Duration = Duration::from_secs(1);

/// Starts an HTTP listener (HTTPS when `tls` says with what certificate) and returns its id.
pub(crate) fn start_listener(
    shared: &Arc<Shared>,
    port: u16,
    tls: Option<&TlsServer>,
) -> Result<u32, Error> {
    // The certificate before the socket: a bad one fails the call and binds nothing.
    let tls = tls.map(crate::tls::server_config).transpose()?;
    let (limits, opened) = {
        let o = shared.options.lock();
        let limits = Limits {
            max_header_bytes: o.http_max_header_bytes,
            max_body_bytes: o.http_max_body_bytes,
            header_timeout: o.http_request_timeout,
            defer_timeout: o.http_defer_timeout,
        };
        (limits, open_stream_listener(&o, shared.runtime(), port)?)
    };
    let (socket, local_port) = opened;
    let id = shared.registry.new_listener_id()?;
    let detail = if tls.is_some() { " (HTTPS)" } else { "" };
    let listener = Arc::new(HttpListener::new(id, local_port, shared.id, limits, tls));
    let task_listener = listener.clone();
    lifecycle::start(
        shared,
        id,
        local_port,
        ListenerState::Http(listener),
        detail,
        |shared, stopped| accept_loop(shared, task_listener, socket, stopped),
    )
}

/// Stops an HTTP listener: its socket and connections are closed and none of its callbacks
/// runs once this returns (called from its own callback, that one finishes).
pub(crate) fn stop_listener(shared: &Shared, id: u32) -> Result<(), Error> {
    lifecycle::stop(shared, id, ListenerKind::Http)
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: Arc<HttpListener>,
    socket: TcpListener,
    mut stopped: ListenerStopped,
) {
    let mut errors = AcceptErrors::new(format!(
        "HTTP listener {} on port {}",
        listener.id, listener.port
    ));
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped.stop => break,
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    listener.connection_opened();
                    let guard = shared.task_guard();
                    let (shared, listener) = (shared.clone(), listener.clone());
                    tokio::spawn(async move {
                        // A panic (a bug in xtnet) ends this connection only.
                        let served = AssertUnwindSafe(serve(&shared, &listener, stream, peer))
                            .catch_unwind()
                            .await;
                        if let Err(payload) = served {
                            shared.log(LogLevel::Error, &format!(
                                "HTTP listener {}: internal error, a connection was closed: {}",
                                listener.id,
                                crate::panics::message(&*payload)
                            ));
                        }
                        listener.connection_closed();
                        drop(guard);
                    });
                }
                Err(e) => errors.failed(&shared, &e).await,
            }
        }
    }
    drop(socket);
    drop(stopped);
}

/// What each request of a connection needs.
struct Conn {
    shared: Arc<Shared>,
    listener: Arc<HttpListener>,
    info: Arc<ConnectionInfo>,
    stream: Arc<SharedStream>,
    /// Bytes read when the last request was complete: more at a header timeout means a request
    /// head was on its way (answer 408), none means an idle keep-alive connection (just close).
    complete_at: AtomicU64,
}

async fn serve(
    shared: &Arc<Shared>,
    listener: &Arc<HttpListener>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let tcp = Arc::new(stream);
    let limits = listener.limits;
    let id = shared.registry.new_connection_id();
    let mut info = ConnectionInfo {
        // The requester's name and MAC from the cache: a request never waits for them.
        identity: shared.peers.cached(peer),
        ..ConnectionInfo::connected(id, listener.id, peer, listener.port)
    };
    let stream = match &listener.tls {
        None => SharedStream::plain(tcp),
        Some(acceptor) => {
            let handshake = acceptor.accept(RawIo(tcp.clone()));
            match tokio::time::timeout(limits.header_timeout, handshake).await {
                Ok(Ok(session)) => {
                    info.tls = Some(Arc::new(crate::tls::server_info_of(session.get_ref().1)));
                    SharedStream::tls(tcp, session)
                }
                // Closed unheard: the host never hears of a client that did not get through.
                failed => {
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "the handshake took too long".to_owned(),
                    };
                    shared.log(
                        LogLevel::Debug,
                        &format!(
                            "HTTPS listener {}: TLS from {peer} failed: {why}",
                            listener.id
                        ),
                    );
                    return;
                }
            }
        }
    };
    let conn = Arc::new(Conn {
        shared: shared.clone(),
        listener: listener.clone(),
        info: Arc::new(info),
        stream: Arc::new(stream),
        complete_at: AtomicU64::new(0),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Room for a head past the limit, so the limit is checked (exactly) on the whole head;
        // a head past even this ends in a parse error, answered 431 below.
        .max_buf_size((limits.max_header_bytes * 2).max(8192) + 8192)
        // A client that sends its request and then shuts its side (`nc -N`, devices, scripts)
        // still gets its answer.
        .half_close(true);
    let service_conn = conn.clone();
    // Boxed per request: hyper keeps room for its service's future in every connection, idle
    // or not, and a request's (body, host answer, deferred reply) is large.
    let service = hyper::service::service_fn(move |request| {
        let conn = service_conn.clone();
        Box::pin(async move { Ok::<_, Infallible>(handle(&conn, request).await) })
            as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
    });
    let connection = http
        .serve_connection(TokioIo::new(HttpIo(conn.stream.clone())), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if conn.stream.upgraded.load(Ordering::Acquire) {
                return; // a WebSocket now: its task owns the socket
            }
            if let Err(e) = result {
                let partial = conn.stream.read.load(Ordering::Relaxed) > conn.complete_at.load(Ordering::Relaxed);
                // hyper closes without a word in these cases: answer them here.
                let status = if e.is_timeout() && partial {
                    // A request head that did not arrive in time (e.g. slowloris).
                    Some(StatusCode::REQUEST_TIMEOUT)
                } else if e.is_parse_too_large() {
                    Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                } else if e.is_parse() {
                    Some(StatusCode::BAD_REQUEST)
                } else {
                    None
                };
                if let Some(status) = status {
                    let answer = format!(
                        "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: 0\r\ndate: {}\r\n\r\n",
                        httpdate::fmt_http_date(std::time::SystemTime::now())
                    );
                    conn.stream.write_last(answer.as_bytes(), LINGER).await;
                }
            }
        }
        _ = listener.closed() => {
            // The listener stops: finish the response being written, then close.
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_LIMIT, connection).await;
            if !conn.stream.upgraded.load(Ordering::Acquire) {
                conn.stream.close_session(CLOSE_NOTIFY).await;
                let _ = socket2::SockRef::from(&*conn.stream.tcp).shutdown(std::net::Shutdown::Both);
            }
            return;
        }
    }
    // The listener stopping (or the context being freed) cuts the lingering short.
    tokio::select! {
        _ = linger(&conn.stream) => {}
        _ = listener.closed() => {}
    }
}

/// Closes after a last response without losing it: closing with unread input (a request still
/// arriving after a 413 or 431) would send a reset, which can destroy the response in flight.
/// So: close_notify (TLS) and FIN first, then read and drop what still comes, for a short while.
async fn linger(stream: &SharedStream) {
    stream.close_session(CLOSE_NOTIFY).await;
    let tcp = &*stream.tcp;
    let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write);
    let deadline = tokio::time::Instant::now() + LINGER;
    let mut dropped = 0;
    while dropped < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, tcp.readable()).await {
            // The buffer is not kept across the wait: it would be part of every connection's
            // task, idle or not.
            Ok(Ok(())) => match tcp.try_read(&mut [0u8; 4096]) {
                Ok(0) => break,
                Ok(n) => dropped += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => break,
            },
            _ => break,
        }
    }
}

fn error_response(status: StatusCode, close: bool) -> Response<Full<Bytes>> {
    let text = format!("{status}\n");
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if close {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The slowest a request body may arrive, on average, once the grace period (the request
/// timeout) is over: slow enough for any LAN upload, fast enough that a stalled or trickling
/// body cannot hold a connection (and its descriptor) for long.
pub(crate) const MIN_BODY_RATE: u64 = 1024;

/// Reads a request body within the limits: at most `max_body_bytes` (413), and in time (408):
/// `t` after the head, at least `MIN_BODY_RATE × (t − request timeout)` bytes must have come.
async fn read_body(mut body: Incoming, limits: &Limits) -> Result<Bytes, StatusCode> {
    let start = tokio::time::Instant::now();
    let mut parts: Vec<Bytes> = Vec::new();
    let mut received: u64 = 0;
    loop {
        let due = Duration::from_millis((received + 1) * 1000 / MIN_BODY_RATE);
        let deadline = start + limits.header_timeout + due;
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(StatusCode::REQUEST_TIMEOUT),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(StatusCode::BAD_REQUEST),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            received += data.len() as u64;
            if received > limits.max_body_bytes {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
            parts.push(data);
        }
    }
    Ok(match parts.len() {
        0 => Bytes::new(),
        1 => parts.pop().expect("one part"),
        _ => Bytes::from(parts.concat()),
    })
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host header, any request at most one.
fn host_header_ok<B>(request: &Request<B>) -> bool {
    let hosts = request.headers().get_all(http::header::HOST).iter().count();
    hosts == 1 || (hosts == 0 && request.version() < http::Version::HTTP_11)
}

/// The size of a request head as it came on the wire (request line and headers).
fn head_size<B>(request: &Request<B>) -> usize {
    // The request target as sent: origin form (a path and query), or absolute form.
    let uri = request.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len());
    let line = request.method().as_str().len() + target + 12;
    request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + line
        + 2
}

async fn handle(conn: &Conn, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let limits = conn.listener.limits;
    if head_size(&request) > limits.max_header_bytes {
        return error_response(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, true);
    }
    if !host_header_ok(&request) {
        return error_response(StatusCode::BAD_REQUEST, true);
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        // Answered before reading any of it (no 100 Continue is sent either).
        return error_response(StatusCode::PAYLOAD_TOO_LARGE, true);
    }
    // A valid upgrade request: what it offers, and where hyper hands over the socket after a 101.
    let mut request = request;
    let upgrade = upgrade::offer(&request)
        .map(|(key, protocols)| (key, protocols, hyper::upgrade::on(&mut request)));
    let (parts, body) = request.into_parts();
    let body = if hyper::body::Body::is_end_stream(&body) {
        Bytes::new() // no body (a GET): nothing to collect
    } else {
        match read_body(body, &limits).await {
            Ok(body) => body,
            Err(status) => return error_response(status, true),
        }
    };
    conn.complete_at
        .store(conn.stream.read.load(Ordering::Relaxed), Ordering::Relaxed);
    if !conn.shared.host.implements(Callback::PageRequest) {
        return error_response(StatusCode::NOT_FOUND, false);
    }
    let id = conn.shared.registry.new_request_id();
    let mut request = Box::new(RequestParts::new(parts, body, conn.info.clone(), id).await);
    let on_upgrade = upgrade.map(|(key, protocols, on_upgrade)| {
        let pending = Box::new(Upgrading::new(&conn.shared, &conn.info));
        request.upgrade = Some(Box::new(WebSocketUpgrade::new(key, protocols, pending)));
        on_upgrade
    });
    let (reply, answer) = oneshot::channel();
    conn.shared.emit(Event::PageRequest {
        listener: conn.listener.clone(),
        request,
        reply,
    });
    let later = tokio::select! {
        biased;
        answer = answer => match answer {
            Ok(Answer::Now(mut response)) => {
                return match (response.websocket.take(), on_upgrade) {
                    (Some(ws), Some(on_upgrade)) if ws.is_accepted() => switch(conn, *ws, on_upgrade),
                    _ => response.into_hyper(),
                };
            }
            Ok(Answer::Later(later)) => later,
            // The listener stopped before the host saw it.
            Err(_) => return error_response(StatusCode::SERVICE_UNAVAILABLE, true),
        },
        _ = conn.listener.closed() => return error_response(StatusCode::SERVICE_UNAVAILABLE, true),
    };
    // Deferred: the answer comes from xt_http_reply, within the deadline. Whatever ends this
    // wait (the answer, the deadline, the connection or the listener going away), the request
    // stops waiting in the listener's list.
    let _waiting = StopsWaiting(&conn.listener, id);
    tokio::select! {
        biased;
        answer = tokio::time::timeout(limits.defer_timeout, later) => match answer {
            Ok(Ok(response)) => response.into_hyper(),
            Ok(Err(_)) => error_response(StatusCode::SERVICE_UNAVAILABLE, true),
            Err(_) => error_response(StatusCode::GATEWAY_TIMEOUT, false),
        },
        _ = conn.listener.closed() => error_response(StatusCode::SERVICE_UNAVAILABLE, true),
        // The client reset the connection (hyper does not read while it waits for us): the
        // request is gone, and a reply for it gets 106. (A client that only half-closed still
        // waits for its answer.)
        _ = conn.stream.tcp.ready(tokio::io::Interest::ERROR) => {
            error_response(StatusCode::SERVICE_UNAVAILABLE, true)
        }
    }
}

/// Answers an accepted upgrade with 101 and starts the WebSocket on the socket hyper hands
/// over once the 101 is out; this connection's HTTP task then leaves the socket alone.
fn switch(
    conn: &Conn,
    ws: WebSocketUpgrade,
    on_upgrade: hyper::upgrade::OnUpgrade,
) -> Response<Full<Bytes>> {
    let (response, pending) = ws.into_answer();
    conn.stream.upgraded.store(true, Ordering::Release);
    pending.start(Box::pin(async move {
        on_upgrade
            .await
            .map(TokioIo::new)
            .map_err(|e| e.to_string())
    }));
    response
}

/// Takes a deferred request off its listener's waiting list when dropped.
struct StopsWaiting<'a>(&'a HttpListener, u64);

impl Drop for StopsWaiting<'_> {
    fn drop(&mut self) {
        self.0.deferred.forget(self.1);
    }
}
