//! The task of one TCP connection: from accept (or connect) through reading, framing and
//! writing to its final event.
//!
//! Reading: the task reads into a per-thread scratch buffer and frames it; the messages of one
//! read go to the host as one event. When the host falls behind (too many bytes of this
//! connection, or of the whole context, not yet delivered) the task stops reading, so TCP
//! pushes back on the peer.
//!
//! Memory: an idle connection holds no buffer, and its task is a small hand-written state
//! machine (rare phases boxed) polled by a shard (`driver.rs`), not a tokio task of its own.

use super::connection::{attach, clock_ms, CloseReason, Connection, Flush, State};
use super::flow::{pace, Pace};
use super::messages::{lost, queue_messages, too_long_end};
use super::scratch::with_scratch;
use super::stream_framing::StreamFraming;
use super::ws_client::ClientIo;
use crate::error::{self, Error};
use crate::events::{Event, LogLevel};
use crate::info::{ConnectionInfo, PeerIdentity};
use crate::peer::Identify;
use crate::shared::{Shared, TaskGuard};
use bytes::BytesMut;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::client::TlsStream;
use tokio_rustls::server::TlsStream as ServerTlsStream;
use tokio_tungstenite::WebSocketStream;

/// Most bytes read in one go before the task lets others run.
const READ_BUDGET: usize = 256 << 10;
/// How long `xt_disconnect` waits for queued data to drain into a peer that does not read.
const LINGER: Duration = Duration::from_secs(30);
/// Most unread input discarded before closing (so close sends FIN, not RST, in common cases).
const DRAIN_ON_CLOSE: usize = 1 << 20;

/// What a successful connect gives: the transport, the peer's address and the local port.
pub(crate) type Connected = (Transport, SocketAddr, u16);

/// Why a connect failed, and (for TLS) the certificate the peer presented.
pub(crate) struct ConnectFailed {
    pub(crate) error: Error,
    pub(crate) tls: Option<Arc<crate::tls::TlsInfo>>,
}

impl From<Error> for ConnectFailed {
    fn from(error: Error) -> Self {
        ConnectFailed { error, tls: None }
    }
}

/// A connected socket: plain, with a finished TLS handshake, or a WebSocket (plain or TLS)
/// with its handshake done.
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    WebSocket(Box<WebSocketStream<ClientIo>>),
}

/// The task of one connection, from accept (or connect) to its final event.
///
/// Written as a plain state machine rather than an `async` block so that what an idle
/// connection keeps alive is just this struct (one phase at a time; rare phases boxed).
pub(crate) struct ConnTask {
    guard: TaskGuard,
    conn: Arc<Connection>,
    phase: Phase,
}

enum Phase {
    /// Outgoing: resolving and connecting to `dial` (host text, port).
    Connecting {
        attempt: Pin<Box<dyn Future<Output = Result<Connected, ConnectFailed>> + Send>>,
        dial: Box<(String, u16)>,
    },
    /// Connected (accepted or outgoing), waiting a bounded time for the peer's name and MAC
    /// before the first event; the info is set when it ends.
    Identifying(Box<Identifying>),
    /// Accepted over TLS: the handshake, bounded in time, before anything else.
    Handshaking(Box<Handshaking>),
    /// Accepted: waiting for the host's `new_connection` answer (see `Connection::decide`);
    /// a TLS connection's pump waits here too.
    Asking(Option<PumpFuture>),
    Open(Pump),
    /// Open over TLS or as a WebSocket: its pump (`tls_pump.rs`, `ws_pump.rs`) until the end.
    Pumped(PumpFuture),
    /// Writing out and closing after a close request; the final event's error.
    Closing(Pin<Box<dyn Future<Output = Error> + Send>>),
    Done,
}

/// A TLS or WebSocket connection's pump, made once the handshake is done and run once the
/// host said yes.
type PumpFuture = Pin<Box<dyn Future<Output = Error> + Send>>;

/// An accepted TLS connection's handshake, and what the connection will be told.
struct Handshaking {
    handshake: Pin<Box<dyn Future<Output = Result<ServerTlsStream<TcpStream>, Error>> + Send>>,
    info: ConnectionInfo,
    peer: SocketAddr,
    ask: bool,
}

/// A connection waiting for its peer's identity, and what comes next.
struct Identifying {
    wait: Pin<Box<dyn Future<Output = Option<Arc<PeerIdentity>>> + Send>>,
    info: ConnectionInfo,
    /// None: outgoing (announce `connected`); Some(ask): accepted, ask the host or not.
    ask: Option<bool>,
    /// A TLS or WebSocket connection's pump (a plain connection's stream is attached to it
    /// instead).
    pump: Option<PumpFuture>,
}

impl ConnTask {
    /// An accepted connection (stream set) with the info it will have once its peer is
    /// identified; with `ask`, the host is asked about it and the task waits for the answer,
    /// else it is accepted at once.
    pub(crate) fn accepted(
        guard: TaskGuard,
        conn: Arc<Connection>,
        info: ConnectionInfo,
        peer: SocketAddr,
        ask: bool,
    ) -> Self {
        let phase = identify(guard.shared(), &conn, info, peer, Some(ask), None);
        ConnTask { guard, conn, phase }
    }

    /// An accepted TLS connection whose handshake `handshake` does (within its deadline);
    /// then as `accepted`. A failed handshake ends it without any event.
    pub(crate) fn accepted_tls(
        guard: TaskGuard,
        conn: Arc<Connection>,
        info: ConnectionInfo,
        peer: SocketAddr,
        ask: bool,
        handshake: Pin<Box<dyn Future<Output = Result<ServerTlsStream<TcpStream>, Error>> + Send>>,
    ) -> Self {
        let phase = Phase::Handshaking(Box::new(Handshaking {
            handshake,
            info,
            peer,
            ask,
        }));
        ConnTask { guard, conn, phase }
    }

    /// An outgoing connection to `host`:`port`, being attempted by `attempt`.
    pub(crate) fn outgoing(
        guard: TaskGuard,
        conn: Arc<Connection>,
        attempt: Pin<Box<dyn Future<Output = Result<Connected, ConnectFailed>> + Send>>,
        host: String,
        port: u16,
    ) -> Self {
        let dial = Box::new((host, port));
        ConnTask {
            guard,
            conn,
            phase: Phase::Connecting { attempt, dial },
        }
    }
}

impl Future for ConnTask {
    type Output = ();

    /// One step of the connection; a panic inside ends this connection only (see `contain`).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match catch_unwind(AssertUnwindSafe(|| this.step(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                this.contain(&*payload);
                Poll::Ready(())
            }
        }
    }
}

impl ConnTask {
    /// After a panic in this connection's task (a bug in xtnet): the connection ends with
    /// `XT_ERR_PANIC` — if the host had heard of it — and the message goes to the log. The
    /// shard and every other connection go on; the task's guard drops with it.
    fn contain(&mut self, payload: &(dyn std::any::Any + Send)) {
        let message = crate::panics::message(payload);
        let shared = self.guard.shared();
        let conn = &self.conn;
        shared.log(
            LogLevel::Error,
            &format!(
                "connection {}: internal error, the connection is closed: {message}",
                conn.id
            ),
        );
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        let announced = match phase {
            // An accepted connection the host was never asked about: gone without an event.
            Phase::Identifying(i) if i.ask.is_some() => false,
            Phase::Done => return,
            _ => conn.state() != State::Closed,
        };
        if !announced {
            conn.set_state(State::Closed);
            shared.registry.remove_connection(conn.id);
            return;
        }
        if conn.info.get().is_none() {
            conn.set_info(ConnectionInfo::dialing(conn.id, "", 0));
        }
        finish(
            shared,
            conn,
            Error::new(error::PANIC, format!("internal error in xtnet: {message}")),
        );
    }

    fn step(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let this = self;
        let shared = this.guard.shared();
        let conn = &this.conn;
        if conn.take_debug_panic() {
            panic!("xt_debug_panic_connection({}): deliberate panic", conn.id);
        }
        loop {
            let next = match &mut this.phase {
                Phase::Connecting { attempt, dial } => {
                    conn.waker.register(cx.waker());
                    let result = match conn.close_reason() {
                        Some(reason) => {
                            Err(Error::new(error::LOST_CONNECTION, reason.message()).into())
                        }
                        None => match attempt.as_mut().poll(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(result) => result,
                        },
                    };
                    match result {
                        Ok((transport, peer, local_port)) => {
                            let mut info = ConnectionInfo::connected(conn.id, 0, peer, local_port);
                            let pump = match transport {
                                Transport::Plain(stream) => {
                                    attach(conn, stream);
                                    None
                                }
                                Transport::Tls(stream) => {
                                    info.tls =
                                        Some(Arc::new(crate::tls::info_of(stream.get_ref().1)));
                                    Some(pump_for(shared, conn, *stream))
                                }
                                Transport::WebSocket(ws) => {
                                    info.tls = ws.get_ref().tls_info();
                                    let pump =
                                        super::ws_pump::run(shared.clone(), conn.clone(), *ws);
                                    Some(Box::pin(pump) as PumpFuture)
                                }
                            };
                            identify(shared, conn, info, peer, None, pump)
                        }
                        Err(failed) => {
                            let mut info = ConnectionInfo::dialing(conn.id, &dial.0, dial.1);
                            info.tls = failed.tls;
                            conn.set_info(info);
                            finish(shared, conn, failed.error);
                            Phase::Done
                        }
                    }
                }
                Phase::Identifying(identifying) => {
                    conn.waker.register(cx.waker());
                    let identity = match conn.close_reason() {
                        Some(reason) => Err(reason),
                        None => match identifying.wait.as_mut().poll(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(identity) => Ok(identity),
                        },
                    };
                    let Phase::Identifying(identifying) =
                        std::mem::replace(&mut this.phase, Phase::Done)
                    else {
                        unreachable!("matched above")
                    };
                    let Identifying {
                        mut info,
                        ask,
                        pump,
                        ..
                    } = *identifying;
                    match (identity, ask) {
                        (Ok(identity), _) => {
                            info.identity = identity;
                            proceed(shared, conn, info, ask, pump)
                        }
                        // Accepted and closed before the host heard of it: gone without an
                        // event.
                        (Err(_), Some(_)) => {
                            shared.registry.remove_connection(conn.id);
                            Phase::Done
                        }
                        (Err(reason), None) => {
                            conn.set_info(info);
                            finish(shared, conn, lost(reason.message()));
                            Phase::Done
                        }
                    }
                }
                Phase::Handshaking(h) => {
                    conn.waker.register(cx.waker());
                    let done = match conn.close_reason() {
                        Some(reason) => Err(lost(reason.message())),
                        None => match h.handshake.as_mut().poll(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(done) => done,
                        },
                    };
                    let Phase::Handshaking(h) = std::mem::replace(&mut this.phase, Phase::Done)
                    else {
                        unreachable!("matched above")
                    };
                    let Handshaking {
                        mut info,
                        peer,
                        ask,
                        ..
                    } = *h;
                    match done {
                        Ok(stream) => {
                            info.tls =
                                Some(Arc::new(crate::tls::server_info_of(stream.get_ref().1)));
                            let pump = pump_for(shared, conn, stream);
                            identify(shared, conn, info, peer, Some(ask), Some(pump))
                        }
                        // The host never heard of it: gone without an event.
                        Err(e) => {
                            shared.log(
                                LogLevel::Debug,
                                &format!("TLS connection {} from {peer}: {}", conn.id, e.message),
                            );
                            conn.set_state(State::Closed);
                            shared.registry.remove_connection(conn.id);
                            Phase::Done
                        }
                    }
                }
                Phase::Asking(pump) => {
                    conn.waker.register(cx.waker());
                    match conn.state() {
                        State::Deciding => return Poll::Pending,
                        State::Accepted => match pump.take() {
                            Some(pump) => {
                                conn.set_state(State::Open);
                                Phase::Pumped(pump)
                            }
                            None => Phase::Open(Pump::open(shared, conn, false)),
                        },
                        // Refused: closed at once with the last reference, no further event.
                        _ => {
                            shared.registry.remove_connection(conn.id);
                            Phase::Done
                        }
                    }
                }
                Phase::Open(pump) => match pump.poll(cx, shared, conn) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Stop::End(end)) => {
                        finish(shared, conn, end);
                        Phase::Done
                    }
                    Poll::Ready(Stop::Close(reason)) => {
                        Phase::Closing(Box::pin(close_on_request(conn.clone(), reason)))
                    }
                },
                Phase::Pumped(pump) => match pump.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(end) => {
                        finish(shared, conn, end);
                        Phase::Done
                    }
                },
                Phase::Closing(closing) => match closing.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(end) => {
                        finish(shared, conn, end);
                        Phase::Done
                    }
                },
                Phase::Done => return Poll::Ready(()),
            };
            this.phase = next;
        }
    }
}

/// The phase after connecting: identifying the peer, or straight on when it is known.
fn identify(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    mut info: ConnectionInfo,
    peer: SocketAddr,
    ask: Option<bool>,
    pump: Option<PumpFuture>,
) -> Phase {
    match shared.identify_peer(peer) {
        Identify::Now(identity) => {
            info.identity = identity;
            proceed(shared, conn, info, ask, pump)
        }
        Identify::Wait(wait) => Phase::Identifying(Box::new(Identifying {
            wait,
            info,
            ask,
            pump,
        })),
    }
}

/// The first event of a connection, its info now complete: `new_connection` (accepted, when
/// the host has that callback) or `connected` (outgoing).
fn proceed(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    info: ConnectionInfo,
    ask: Option<bool>,
    pump: Option<PumpFuture>,
) -> Phase {
    conn.set_info(info);
    if let Some(pump) = pump {
        return match ask {
            Some(true) => {
                shared.emit(Event::NewConnection { conn: conn.clone() });
                Phase::Asking(Some(pump))
            }
            Some(false) => {
                conn.set_state(State::Open);
                Phase::Pumped(pump)
            }
            None => {
                conn.set_state(State::Open);
                shared.emit(Event::Connected { conn: conn.clone() });
                Phase::Pumped(pump)
            }
        };
    }
    match ask {
        Some(true) => {
            shared.emit(Event::NewConnection { conn: conn.clone() });
            Phase::Asking(None)
        }
        Some(false) => Phase::Open(Pump::open(shared, conn, false)),
        None => Phase::Open(Pump::open(shared, conn, true)),
    }
}

/// The pump of a TLS connection, ready to run.
fn pump_for<S: super::tls_pump::TlsIo>(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    stream: S,
) -> PumpFuture {
    Box::pin(super::tls_pump::run(shared.clone(), conn.clone(), stream))
}

/// The final event: the connection is closed and its id dead; `end` says why.
pub(crate) fn finish(shared: &Shared, conn: &Arc<Connection>, end: Error) {
    conn.set_state(State::Closed);
    conn.out.lock().buf = BytesMut::new();
    if let Some(stream) = conn.stream.get() {
        // The descriptor itself closes when the last event holding the connection is gone.
        let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Both);
    }
    shared.registry.remove_connection(conn.id);
    shared.emit(Event::SocketError {
        conn: conn.clone(),
        code: end.code,
        message: crate::info::c_text(&end.message),
    });
}

/// Why the pump stopped.
enum Stop {
    End(Error),
    Close(CloseReason),
}

/// The state of an open connection's task between polls. Polled by hand (rather than through
/// `select!` over several futures) so that an idle connection's task holds only this: the
/// socket's own readiness slots and the connection's waker do the waiting.
struct Pump {
    framing: StreamFraming,
    eof: bool,
    /// Only with an idle timeout: boxed, so it costs nothing otherwise.
    idle_timer: Option<Pin<Box<Sleep>>>,
    last_read: u64,
}

impl Pump {
    /// The connection is open from now on (its stream is set).
    fn open(shared: &Shared, conn: &Arc<Connection>, announce_connected: bool) -> Pump {
        conn.set_state(State::Open);
        if announce_connected {
            shared.emit(Event::Connected { conn: conn.clone() });
        }
        Pump {
            framing: StreamFraming::new(conn),
            eof: false,
            idle_timer: conn
                .settings
                .idle_timeout
                .map(|d| Box::pin(tokio::time::sleep(d))),
            last_read: clock_ms(),
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Shared,
        conn: &Arc<Connection>,
    ) -> Poll<Stop> {
        let stream = conn
            .stream
            .get()
            .expect("an open connection has its stream");
        conn.waker.register(cx.waker());
        let mut read_this_poll = 0usize;
        loop {
            if let Some(reason) = conn.close_reason() {
                return Poll::Ready(Stop::Close(reason));
            }
            if let Some(err) = conn.take_write_error() {
                return Poll::Ready(Stop::End(err));
            }
            // The host changed the framing: once every event framed the old way was handled,
            // what it did not deliver and what is not framed yet are framed the new way.
            if self.framing.changed(conn) {
                match pace(conn, true, &shared.backlog) {
                    Pace::Drained => match self.framing.apply(conn, self.eof) {
                        Ok(messages) => {
                            queue_messages(shared, conn, messages, self.framing.epoch);
                            continue;
                        }
                        Err(end) => return Poll::Ready(Stop::End(end)),
                    },
                    Pace::Again => continue,
                    Pace::Read | Pace::Paused => {}
                }
                // Writes go on meanwhile; reading waits for the change.
                if conn.has_output() {
                    if let Poll::Ready(Ok(())) = stream.poll_write_ready(cx) {
                        let _ = conn.flush();
                        continue;
                    }
                }
                return Poll::Pending;
            }
            if let Poll::Ready(partial) = self.framing.poll_timeout(cx) {
                queue_messages(shared, conn, vec![partial], self.framing.epoch);
                continue;
            }
            let want_write = conn.has_output();
            if want_write {
                match stream.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        // Done, or blocked (readiness cleared: the next poll waits), or failed
                        // (the error is taken at the top): look again in every case.
                        let _ = conn.flush();
                        continue;
                    }
                    Poll::Ready(Err(e)) => {
                        return Poll::Ready(Stop::End(Error::io("write failed", &e)))
                    }
                    Poll::Pending => {}
                }
            }
            // Back-pressure (flow.rs): no reading while the host is behind; after the peer
            // closed, the end once everything read was delivered (and written out).
            match pace(conn, self.eof, &shared.backlog) {
                Pace::Drained if !want_write => {
                    return Poll::Ready(Stop::End(lost("the peer closed the connection")))
                }
                Pace::Drained | Pace::Paused => {}
                Pace::Again => continue,
                Pace::Read => {
                    if read_this_poll >= READ_BUDGET {
                        // Let other connections run; come back at once.
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    match stream.poll_read_ready(cx) {
                        Poll::Ready(Ok(())) => {
                            match read(shared, conn, stream, &mut self.framing) {
                                Ok((eof, n)) => {
                                    self.eof = eof;
                                    read_this_poll += n.max(1);
                                }
                                Err(end) => return Poll::Ready(Stop::End(end)),
                            }
                            self.last_read = clock_ms();
                            continue;
                        }
                        Poll::Ready(Err(e)) => {
                            return Poll::Ready(Stop::End(Error::io("read failed", &e)))
                        }
                        Poll::Pending => {}
                    }
                }
            }
            if let Some(timer) = self.idle_timer.as_mut() {
                if timer.as_mut().poll(cx).is_ready() {
                    let idle = conn.settings.idle_timeout.unwrap_or_default();
                    let last = self
                        .last_read
                        .max(conn.last_write_ms.load(Ordering::Relaxed));
                    let quiet = Duration::from_millis(clock_ms().saturating_sub(last));
                    if quiet >= idle {
                        let message =
                            format!("idle timeout: no traffic for {} ms", idle.as_millis());
                        return Poll::Ready(Stop::End(Error::new(libc::ETIMEDOUT, message)));
                    }
                    timer.as_mut().reset(Instant::now() + (idle - quiet));
                    continue;
                }
            }
            return Poll::Pending;
        }
    }
}

/// Reads what the socket has, frames it and queues the messages. Returns whether the stream
/// ended and how many bytes were read.
fn read(
    shared: &Shared,
    conn: &Arc<Connection>,
    stream: &TcpStream,
    framing: &mut StreamFraming,
) -> Result<(bool, usize), Error> {
    let framer = &mut framing.framer;
    let mut messages = Vec::new();
    let mut eof = false;
    let mut failure: Option<Error> = None;
    let mut total = 0;
    with_scratch(|scratch| loop {
        match stream.try_read(&mut scratch[..]) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => {
                total += n;
                if let Err(too_long) = framer.push(&scratch[..n], &mut messages) {
                    failure = Some(too_long_end(too_long.limit));
                    break;
                }
                if n < scratch.len() || total >= READ_BUDGET {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                failure = Some(Error::io("read failed", &e));
                break;
            }
        }
    });
    if eof && failure.is_none() {
        match framer.finish() {
            Ok(Some(rest)) => messages.push(rest),
            Ok(None) => {}
            Err(too_long) => failure = Some(too_long_end(too_long.limit)),
        }
    }
    queue_messages(shared, conn, messages, framing.epoch);
    framing.read_done();
    match failure {
        Some(end) => Err(end),
        None => Ok((eof, total)),
    }
}

async fn close_on_request(conn: Arc<Connection>, reason: CloseReason) -> Error {
    let stream = conn
        .stream
        .get()
        .expect("an open connection has its stream");
    if reason == CloseReason::Disconnect {
        // Write out everything queued (bounded in time), then send FIN.
        let deadline = Instant::now() + LINGER;
        loop {
            match conn.flush() {
                Flush::Done => break,
                Flush::Failed => {
                    return conn
                        .take_write_error()
                        .unwrap_or_else(|| Error::new(error::LOST_CONNECTION, "write failed"));
                }
                Flush::Blocked => {
                    if conn.close_reason() > Some(CloseReason::Disconnect) {
                        break; // the listener or the context is going away: stop waiting
                    }
                    let woke = tokio::time::timeout_at(
                        deadline,
                        poll_fn(|cx| {
                            conn.waker.register(cx.waker());
                            if conn.close_reason() > Some(CloseReason::Disconnect) {
                                return Poll::Ready(());
                            }
                            stream.poll_write_ready(cx).map(|_| ())
                        }),
                    )
                    .await;
                    if woke.is_err() {
                        break; // linger time is over
                    }
                }
            }
        }
    } else {
        let _ = conn.flush(); // one attempt, never waits
    }
    let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write);
    discard_input(stream);
    lost(reason.message())
}

/// Reads and drops input already received, so closing does not answer it with a reset.
fn discard_input(stream: &TcpStream) {
    let mut sink = [0u8; 4096];
    let mut total = 0;
    while total < DRAIN_ON_CLOSE {
        match stream.try_read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection costs its task, its `Connection` and tokio's registration (see
    /// BENCHMARKS.md for the measured RSS). Guard the two that are ours against growth.
    #[test]
    fn idle_connection_structures_stay_small() {
        let task = std::mem::size_of::<ConnTask>();
        let conn = std::mem::size_of::<Connection>();
        eprintln!("ConnTask {task} bytes, Connection {conn} bytes");
        assert!(task <= 96, "ConnTask grew to {task} bytes");
        assert!(conn <= 256, "Connection grew to {conn} bytes");
    }
}
