//! One TCP connection, accepted or outgoing: its write queue, its flow control and the task
//! that reads, frames, writes and ends it.
//!
//! Writing: `send` copies into the connection's queue. Outside a callback it writes at once
//! from the calling thread when nothing is queued (no hand-off, no wake-up); inside a callback
//! the write waits for the end of the batch so many replies leave in one system call. Whatever
//! cannot be written now is written by the task when the socket is writable, in call order.
//!
//! Reading: the task reads into a per-thread scratch buffer and frames it; messages are queued
//! for the host. When the host falls behind (too many bytes of this connection, or of the whole
//! context, not yet delivered) the task stops reading, so TCP pushes back on the peer.
//!
//! Memory: an idle connection holds no buffer; its task is kept small (rare paths are boxed).

use crate::context::{Backlog, Shared, TaskGuard};
use crate::error::{self, Error};
use crate::events::{self, Event};
use crate::framing::{Boundary, Framer};
use crate::info::ConnectionInfo;
use atomic_waker::AtomicWaker;
use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Bytes read from a socket in one system call.
const READ_CHUNK: usize = 64 << 10;
/// Most bytes read in one go before the task lets others run.
const READ_BUDGET: usize = 256 << 10;
/// Undelivered bytes of one connection above which reading pauses, and below which it resumes.
const FLOW_HIGH: usize = 256 << 10;
const FLOW_LOW: usize = 64 << 10;
/// First allocation of a write queue (it is freed again once written out).
const OUTBOX_START: usize = 4096;
/// What a queued event costs on top of its bytes (so floods of empty messages count too).
const EVENT_COST: usize = 64;
/// How long `xt_disconnect` waits for queued data to drain into a peer that does not read.
const LINGER: Duration = Duration::from_secs(30);
/// Most unread input discarded before closing (so close sends FIN, not RST, in common cases).
const DRAIN_ON_CLOSE: usize = 1 << 20;

/// What a connection keeps of the options when it is started (shared by a listener's
/// connections).
pub(crate) struct Settings {
    pub boundary: Arc<Boundary>,
    pub max_message_len: usize,
    pub write_queue_limit: usize,
    pub idle_timeout: Option<Duration>,
}

impl Settings {
    pub(crate) fn new(shared: &Shared, boundary: &[u8]) -> Result<Arc<Settings>, Error> {
        if boundary.len() > super::MAX_BOUNDARY_LEN {
            return Err(Error::invalid_argument(format!(
                "boundary of {} bytes is longer than {}",
                boundary.len(),
                super::MAX_BOUNDARY_LEN
            )));
        }
        let o = shared.options.lock();
        Ok(Arc::new(Settings {
            boundary: Arc::new(Boundary::new(boundary)),
            max_message_len: o.max_message_len,
            write_queue_limit: o.write_queue_limit,
            idle_timeout: o.idle_timeout,
        }))
    }
}

/// Why the host or the library asked a connection to close. Higher values win.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum CloseReason {
    Disconnect = 1,
    ListenerStopped = 2,
    ContextFreed = 3,
}

impl CloseReason {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(CloseReason::Disconnect),
            2 => Some(CloseReason::ListenerStopped),
            3 => Some(CloseReason::ContextFreed),
            _ => None,
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            CloseReason::Disconnect => "disconnected by the host",
            CloseReason::ListenerStopped => "the listener was stopped",
            CloseReason::ContextFreed => "the context was freed",
        }
    }
}

/// Lifecycle: outgoing ones start CONNECTING; accepted ones PENDING until the host decides
/// (ACCEPTED or REFUSED), then OPEN, and CLOSED at the end.
pub(crate) const CONNECTING: u8 = 0;
pub(crate) const PENDING: u8 = 1;
const OPEN: u8 = 2;
const CLOSED: u8 = 3;
const ACCEPTED: u8 = 4;
const REFUSED: u8 = 5;

struct Outbox {
    buf: BytesMut,
    /// The socket said "would block": only the task writes until it is writable again.
    blocked: bool,
    /// A write failed; the task ends the connection with it.
    error: Option<Box<Error>>,
}

enum Flush {
    Done,
    Blocked,
    Failed,
}

pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) server_id: u32,
    ctx_id: u64,
    settings: Arc<Settings>,
    state: AtomicU8,
    close: AtomicU8,
    /// Set once before the first event: what the host is told about this connection.
    info: OnceLock<ConnectionInfo>,
    /// Set when the connection is open (accepted: at once; outgoing: once connected).
    stream: OnceLock<TcpStream>,
    out: Mutex<Outbox>,
    /// Wakes the task: output queued, close requested, flow resumed. The task re-checks
    /// every condition when woken, so a wake needs no reason attached.
    waker: AtomicWaker,
    /// Waiting in the context's backlog list (so it is put there once).
    backlog_parked: AtomicBool,
    /// Bytes (plus a cost per event) queued for the host and not yet delivered.
    pending: AtomicUsize,
    /// The task waits for `pending` to fall; the dispatcher must wake it.
    flow_waiting: AtomicBool,
    /// Already in this batch's flush list.
    dirty: AtomicBool,
    /// For the idle timeout: milliseconds since the context's clock start of the last write.
    last_write_ms: AtomicU64,
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        server_id: u32,
        shared: &Shared,
        state: u8,
        settings: Arc<Settings>,
    ) -> Self {
        Connection {
            id,
            server_id,
            ctx_id: shared.id,
            settings,
            state: AtomicU8::new(state),
            close: AtomicU8::new(0),
            info: OnceLock::new(),
            stream: OnceLock::new(),
            out: Mutex::new(Outbox {
                buf: BytesMut::new(),
                blocked: false,
                error: None,
            }),
            waker: AtomicWaker::new(),
            backlog_parked: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            flow_waiting: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            last_write_ms: AtomicU64::new(0),
        }
    }

    /// What the host is told about this connection. Set before its first event.
    pub(crate) fn info(&self) -> &ConnectionInfo {
        self.info
            .get()
            .expect("connection info is set before any event")
    }

    pub(crate) fn set_info(&self, info: ConnectionInfo) {
        let _ = self.info.set(info);
    }

    pub(crate) fn close_requested(&self) -> bool {
        self.close.load(Ordering::Acquire) != 0
    }

    fn close_reason(&self) -> Option<CloseReason> {
        CloseReason::from_u8(self.close.load(Ordering::Acquire))
    }

    /// The host's answer to `new_connection` (given once, by the dispatcher).
    pub(crate) fn decide(&self, accept: bool) {
        let to = if accept { ACCEPTED } else { REFUSED };
        let _ = self
            .state
            .compare_exchange(PENDING, to, Ordering::AcqRel, Ordering::Acquire);
        self.wake();
    }

    /// Wakes the connection's task to look at its state again.
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Asks the task to end the connection; the most severe request wins.
    pub(crate) fn request_close(&self, reason: CloseReason) {
        self.close.fetch_max(reason as u8, Ordering::AcqRel);
        self.wake();
    }

    /// The stream, once the connection is open (writes before that are only queued).
    fn open_stream(&self) -> Option<&TcpStream> {
        match self.state.load(Ordering::Acquire) {
            OPEN => self.stream.get(),
            _ => None,
        }
    }

    /// Queues `data` (copied). Never blocks.
    pub(crate) fn send(self: &Arc<Self>, mut data: &[u8]) -> Result<(), Error> {
        match self.state.load(Ordering::Acquire) {
            CONNECTING => {
                return Err(Error::invalid_state(format!(
                    "connection {} is not connected yet",
                    self.id
                )))
            }
            CLOSED | REFUSED => return Err(self.closed_error()),
            _ if self.close_requested() => return Err(self.closed_error()),
            _ => {}
        }
        let deferred = events::dispatching_context() == self.ctx_id;
        let mut out = self.out.lock();
        if out.buf.len() + data.len() > self.settings.write_queue_limit {
            return Err(Error::new(
                error::OUT_OF_MEMORY,
                format!(
                    "write queue of connection {} is full ({} of {} bytes queued)",
                    self.id,
                    out.buf.len(),
                    self.settings.write_queue_limit
                ),
            ));
        }
        if data.is_empty() {
            return Ok(());
        }
        let was_empty = out.buf.is_empty();
        if was_empty && !deferred && !out.blocked {
            if let Some(stream) = self.open_stream() {
                match stream.try_write(data) {
                    Ok(n) => {
                        self.touch_write();
                        if n == data.len() {
                            return Ok(());
                        }
                        data = &data[n..];
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => out.blocked = true,
                    Err(e) => {
                        let err = Error::io("write failed", &e);
                        out.error = Some(Box::new(err.clone()));
                        drop(out);
                        self.wake();
                        return Err(err);
                    }
                }
            }
        }
        if out.buf.capacity() == 0 {
            // Replies usually come in a few pieces (message, boundary): one allocation for all.
            out.buf.reserve(data.len().max(OUTBOX_START));
        }
        out.buf.extend_from_slice(data);
        drop(out);
        if deferred {
            if !self.dirty.swap(true, Ordering::AcqRel) {
                events::flush_after_batch(self.clone());
            }
        } else if was_empty {
            self.wake();
        }
        Ok(())
    }

    fn closed_error(&self) -> Error {
        Error::invalid_state(format!("connection {} is closed or closing", self.id))
    }

    fn touch_write(&self) {
        if self.settings.idle_timeout.is_some() {
            self.last_write_ms.store(clock_ms(), Ordering::Relaxed);
        }
    }

    /// Writes what is queued until done or the socket would block.
    fn flush(&self) -> Flush {
        let Some(stream) = self.open_stream() else {
            return Flush::Done;
        };
        let mut out = self.out.lock();
        while !out.buf.is_empty() {
            match stream.try_write(&out.buf) {
                Ok(n) => {
                    out.buf.advance(n);
                    self.touch_write();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    out.blocked = true;
                    return Flush::Blocked;
                }
                Err(e) => {
                    out.error = Some(Box::new(Error::io("write failed", &e)));
                    out.buf = BytesMut::new();
                    return Flush::Failed;
                }
            }
        }
        // Give the memory back: an idle connection holds no buffer.
        out.buf = BytesMut::new();
        out.blocked = false;
        Flush::Done
    }

    /// End of a dispatch batch: write what its callbacks queued (`here`, on this thread), or
    /// have the connection's task write it; the task also takes over when the socket is full.
    pub(crate) fn flush_from_dispatcher(&self, here: bool) {
        self.dirty.store(false, Ordering::Release);
        if here && !self.out.lock().blocked && matches!(self.flush(), Flush::Done) {
            return;
        }
        self.wake();
    }

    fn has_output(&self) -> bool {
        !self.out.lock().buf.is_empty()
    }

    fn take_write_error(&self) -> Option<Error> {
        self.out.lock().error.take().map(|e| *e)
    }

    /// The dispatcher delivered `events` data events carrying `bytes` bytes in all.
    pub(crate) fn flow_consumed(&self, bytes: usize, events: usize, backlog: &Backlog) {
        let cost = bytes + events * EVENT_COST;
        backlog.remove(cost);
        let after = self.pending.fetch_sub(cost, Ordering::SeqCst) - cost;
        if after <= FLOW_LOW && self.flow_waiting.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Puts this connection on the context's list of readers waiting for the backlog to drain
    /// (once); the backlog wakes them all when it does.
    fn park_on_backlog(self: &Arc<Self>, backlog: &Backlog) {
        if !self.backlog_parked.swap(true, Ordering::SeqCst) {
            backlog.park(self.clone());
        }
    }

    /// The backlog drained: the connection may read again.
    pub(crate) fn unpark_from_backlog(&self) {
        self.backlog_parked.store(false, Ordering::SeqCst);
        self.wake();
    }

    fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

/// A coarse process clock in milliseconds (for idle timeouts; 0 is "never").
fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

thread_local! {
    /// The read buffer of each runtime thread: connections hold no read buffer of their own.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// How a connection ended: the code and text of its final event.
type End = (i32, String);

fn lost(message: &str) -> End {
    (error::LOST_CONNECTION, message.to_owned())
}

fn io_end(context: &str, e: &io::Error) -> End {
    let e = Error::io(context, e);
    (e.code, e.message)
}

/// What a successful connect gives: the stream, the peer's address and the local port.
pub(crate) type Connected = (TcpStream, SocketAddr, u16);

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
        attempt: Pin<Box<dyn Future<Output = Result<Connected, Error>> + Send>>,
        dial: Box<(String, u16)>,
    },
    /// Accepted: waiting for the host's `new_connection` answer (see `Connection::decide`).
    Asking,
    Open(Pump),
    /// Writing out and closing after a close request.
    Closing(Pin<Box<dyn Future<Output = End> + Send>>),
    Done,
}

impl ConnTask {
    /// An accepted connection (info and stream set); with `ask`, the host was asked about it
    /// and the task waits for the answer, else it is accepted at once.
    pub(crate) fn accepted(guard: TaskGuard, conn: Arc<Connection>, ask: bool) -> Self {
        let phase = match ask {
            true => Phase::Asking,
            false => Phase::Open(Pump::open(guard.shared(), &conn, false)),
        };
        ConnTask { guard, conn, phase }
    }

    /// An outgoing connection to `host`:`port`, being attempted by `attempt`.
    pub(crate) fn outgoing(
        guard: TaskGuard,
        conn: Arc<Connection>,
        attempt: Pin<Box<dyn Future<Output = Result<Connected, Error>> + Send>>,
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let shared = this.guard.shared();
        let conn = &this.conn;
        loop {
            let next = match &mut this.phase {
                Phase::Connecting { attempt, dial } => {
                    conn.waker.register(cx.waker());
                    let result = match conn.close_reason() {
                        Some(reason) => Err(Error::new(error::LOST_CONNECTION, reason.message())),
                        None => match attempt.as_mut().poll(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(result) => result,
                        },
                    };
                    match result {
                        Ok((stream, peer, local_port)) => {
                            conn.set_info(ConnectionInfo::connected(conn.id, 0, peer, local_port));
                            attach(conn, stream);
                            Phase::Open(Pump::open(shared, conn, true))
                        }
                        Err(e) => {
                            conn.set_info(ConnectionInfo::dialing(conn.id, &dial.0, dial.1));
                            finish(shared, conn, (e.code, e.message));
                            Phase::Done
                        }
                    }
                }
                Phase::Asking => {
                    conn.waker.register(cx.waker());
                    match conn.state.load(Ordering::Acquire) {
                        PENDING => return Poll::Pending,
                        ACCEPTED => Phase::Open(Pump::open(shared, conn, false)),
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

/// The final event: the connection is closed and its id dead.
pub(crate) fn finish(shared: &Shared, conn: &Arc<Connection>, end: End) {
    conn.state.store(CLOSED, Ordering::Release);
    conn.out.lock().buf = BytesMut::new();
    if let Some(stream) = conn.stream.get() {
        // The descriptor itself closes when the last event holding the connection is gone.
        let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Both);
    }
    shared.registry.remove_connection(conn.id);
    shared.queue.push(Event::SocketError {
        conn: conn.clone(),
        code: end.0,
        message: crate::info::c_text(&end.1),
    });
}

/// Why the pump stopped.
enum Stop {
    End(End),
    Close(CloseReason),
}

/// The state of an open connection's task between polls. Polled by hand (rather than through
/// `select!` over several futures) so that an idle connection's task holds only this: the
/// socket's own readiness slots and the connection's waker do the waiting.
struct Pump {
    framer: Framer,
    eof: bool,
    /// Only with an idle timeout: boxed, so it costs nothing otherwise.
    idle_timer: Option<Pin<Box<Sleep>>>,
    last_read: u64,
}

impl Pump {
    /// The connection is open from now on (its stream is set).
    fn open(shared: &Shared, conn: &Arc<Connection>, announce_connected: bool) -> Pump {
        conn.state.store(OPEN, Ordering::Release);
        if announce_connected {
            shared.queue.push(Event::Connected { conn: conn.clone() });
        }
        Pump {
            framer: Framer::new(
                conn.settings.boundary.clone(),
                conn.settings.max_message_len,
            ),
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
                return Poll::Ready(Stop::End((err.code, err.message)));
            }
            let want_write = conn.has_output();
            if want_write {
                match stream.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        if let Flush::Done = conn.flush() {
                            continue;
                        }
                        continue; // blocked: readiness was cleared, poll again to wait; failed: taken above
                    }
                    Poll::Ready(Err(e)) => {
                        return Poll::Ready(Stop::End(io_end("write failed", &e)))
                    }
                    Poll::Pending => {}
                }
            }
            let pending = conn.pending();
            if self.eof && !want_write && pending == 0 {
                return Poll::Ready(Stop::End(lost("the peer closed the connection")));
            }
            // Back-pressure: wait for the host when this connection has too much undelivered,
            // and after end of stream until everything read has been delivered.
            let flow_wait = pending > FLOW_HIGH || (self.eof && pending > 0);
            if flow_wait {
                conn.flow_waiting.store(true, Ordering::SeqCst);
                let pending = conn.pending();
                if pending <= FLOW_LOW && !(self.eof && pending > 0) {
                    conn.flow_waiting.store(false, Ordering::SeqCst);
                    continue;
                }
            } else {
                conn.flow_waiting.store(false, Ordering::Relaxed);
            }
            let backlog_wait = !self.eof && !flow_wait && shared.backlog.over() && {
                conn.park_on_backlog(&shared.backlog);
                shared.backlog.over()
            };
            if !self.eof && !flow_wait && !backlog_wait {
                if read_this_poll >= READ_BUDGET {
                    // Let other connections run; come back at once.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                match stream.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        match read(shared, conn, stream, &mut self.framer) {
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
                        return Poll::Ready(Stop::End(io_end("read failed", &e)))
                    }
                    Poll::Pending => {}
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
                        return Poll::Ready(Stop::End((libc::ETIMEDOUT, message)));
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
    framer: &mut Framer,
) -> Result<(bool, usize), End> {
    let mut messages = Vec::new();
    let mut eof = false;
    let mut failure: Option<End> = None;
    let mut total = 0;
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        loop {
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
                    failure = Some(io_end("read failed", &e));
                    break;
                }
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
    deliver(shared, conn, messages);
    match failure {
        Some(end) => Err(end),
        None => Ok((eof, total)),
    }
}

fn deliver(shared: &Shared, conn: &Arc<Connection>, messages: Vec<Bytes>) {
    if messages.is_empty() {
        return;
    }
    let cost: usize = messages.iter().map(|m| m.len() + EVENT_COST).sum();
    conn.pending.fetch_add(cost, Ordering::SeqCst);
    shared.backlog.add(cost);
    shared.queue.push(Event::Data {
        conn: conn.clone(),
        messages,
    });
}

async fn close_on_request(conn: Arc<Connection>, reason: CloseReason) -> End {
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
                    let e = conn
                        .take_write_error()
                        .unwrap_or_else(|| Error::new(error::LOST_CONNECTION, "write failed"));
                    return (e.code, e.message);
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

fn too_long_end(limit: usize) -> End {
    (
        error::OUT_OF_MEMORY,
        format!("a message was longer than the maximum of {limit} bytes"),
    )
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

/// Sets the stream of a connection that is about to open.
pub(crate) fn attach(conn: &Connection, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = conn.stream.set(stream);
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
