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

use crate::context::Shared;
use crate::error::{self, Error};
use crate::events::{self, Event};
use crate::framing::{Boundary, Framer};
use crate::info::ConnectionInfo;
use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// Bytes read from a socket in one system call.
const READ_CHUNK: usize = 64 << 10;
/// Most bytes read in one go before the task lets others run.
const READ_BUDGET: usize = 256 << 10;
/// Undelivered bytes of one connection above which reading pauses, and below which it resumes.
const FLOW_HIGH: usize = 256 << 10;
const FLOW_LOW: usize = 64 << 10;
/// What a queued event costs on top of its bytes (so floods of empty messages count too).
const EVENT_COST: usize = 64;
/// How long `xt_disconnect` waits for queued data to drain into a peer that does not read.
const LINGER: Duration = Duration::from_secs(30);
/// Most unread input discarded before closing (so close sends FIN, not RST, in common cases).
const DRAIN_ON_CLOSE: usize = 1 << 20;

/// What a connection started from a listener or an outgoing call keeps of the options.
#[derive(Clone)]
pub(crate) struct Settings {
    pub boundary: Arc<Boundary>,
    pub max_message_len: usize,
    pub write_queue_limit: usize,
    pub idle_timeout: Option<Duration>,
}

impl Settings {
    pub(crate) fn new(shared: &Shared, boundary: &[u8]) -> Result<Settings, Error> {
        if boundary.len() > super::MAX_BOUNDARY_LEN {
            return Err(Error::invalid_argument(format!(
                "boundary of {} bytes is longer than {}",
                boundary.len(),
                super::MAX_BOUNDARY_LEN
            )));
        }
        let o = shared.options.lock();
        Ok(Settings {
            boundary: Arc::new(Boundary::new(boundary)),
            max_message_len: o.max_message_len,
            write_queue_limit: o.write_queue_limit,
            idle_timeout: o.idle_timeout,
        })
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

/// Lifecycle: outgoing ones start CONNECTING, accepted ones PENDING (the host decides).
pub(crate) const CONNECTING: u8 = 0;
pub(crate) const PENDING: u8 = 1;
const OPEN: u8 = 2;
const CLOSED: u8 = 3;

struct Outbox {
    buf: BytesMut,
    /// Set once the connection is open; taken away when it ends.
    stream: Option<Arc<TcpStream>>,
    /// The socket said "would block": only the task writes until it is writable again.
    blocked: bool,
    /// A write failed; the task ends the connection with it.
    error: Option<Error>,
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
    write_limit: usize,
    state: AtomicU8,
    close: AtomicU8,
    out: Mutex<Outbox>,
    /// Wakes the task: output queued, close requested, flow resumed.
    wake: Notify,
    /// Bytes (plus a cost per event) queued for the host and not yet delivered.
    pending: AtomicUsize,
    /// The task waits for `pending` to fall; the dispatcher must wake it.
    flow_waiting: AtomicBool,
    /// Already in this batch's flush list.
    dirty: AtomicBool,
    /// For the idle timeout: milliseconds since `created` of the last write (0: never).
    track_writes: bool,
    created: Instant,
    last_write_ms: AtomicU64,
}

impl Connection {
    pub(crate) fn new(id: u64, server_id: u32, shared: &Shared, state: u8, s: &Settings) -> Self {
        Connection {
            id,
            server_id,
            ctx_id: shared.id,
            write_limit: s.write_queue_limit,
            state: AtomicU8::new(state),
            close: AtomicU8::new(0),
            out: Mutex::new(Outbox {
                buf: BytesMut::new(),
                stream: None,
                blocked: false,
                error: None,
            }),
            wake: Notify::new(),
            pending: AtomicUsize::new(0),
            flow_waiting: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            track_writes: s.idle_timeout.is_some(),
            created: Instant::now(),
            last_write_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn close_requested(&self) -> bool {
        self.close.load(Ordering::Acquire) != 0
    }

    fn close_reason(&self) -> Option<CloseReason> {
        CloseReason::from_u8(self.close.load(Ordering::Acquire))
    }

    /// Resolves when a close is requested, with the reason.
    pub(crate) async fn closed(&self) -> CloseReason {
        loop {
            let notified = self.wake.notified();
            if let Some(reason) = self.close_reason() {
                return reason;
            }
            notified.await;
        }
    }

    /// Asks the task to end the connection; the most severe request wins.
    pub(crate) fn request_close(&self, reason: CloseReason) {
        self.close.fetch_max(reason as u8, Ordering::AcqRel);
        self.wake.notify_one();
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
            CLOSED => return Err(self.closed_error()),
            _ if self.close_requested() => return Err(self.closed_error()),
            _ => {}
        }
        let deferred = events::dispatching_context() == self.ctx_id;
        let mut out = self.out.lock();
        if out.buf.len() + data.len() > self.write_limit {
            return Err(Error::new(
                error::OUT_OF_MEMORY,
                format!(
                    "write queue of connection {} is full ({} of {} bytes queued)",
                    self.id,
                    out.buf.len(),
                    self.write_limit
                ),
            ));
        }
        if data.is_empty() {
            return Ok(());
        }
        let was_empty = out.buf.is_empty();
        if was_empty && !deferred && !out.blocked {
            if let Some(stream) = &out.stream {
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
                        out.error = Some(err.clone());
                        drop(out);
                        self.wake.notify_one();
                        return Err(err);
                    }
                }
            }
        }
        out.buf.extend_from_slice(data);
        drop(out);
        if deferred {
            if !self.dirty.swap(true, Ordering::AcqRel) {
                events::flush_after_batch(self.clone());
            }
        } else if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    fn closed_error(&self) -> Error {
        Error::invalid_state(format!("connection {} is closed or closing", self.id))
    }

    fn touch_write(&self) {
        if self.track_writes {
            let ms = self.created.elapsed().as_millis() as u64;
            self.last_write_ms.store(ms.max(1), Ordering::Relaxed);
        }
    }

    /// Writes what is queued until done or the socket would block.
    fn flush(&self) -> Flush {
        let mut guard = self.out.lock();
        let out = &mut *guard;
        let Some(stream) = &out.stream else {
            return Flush::Done;
        };
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
                    out.error = Some(Error::io("write failed", &e));
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

    /// End of a dispatch batch: write what its callbacks queued; the task takes over on a block.
    pub(crate) fn flush_from_dispatcher(&self) {
        self.dirty.store(false, Ordering::Release);
        if !self.out.lock().blocked && matches!(self.flush(), Flush::Done) {
            return;
        }
        self.wake.notify_one();
    }

    fn has_output(&self) -> bool {
        let out = self.out.lock();
        out.stream.is_some() && !out.buf.is_empty()
    }

    fn take_write_error(&self) -> Option<Error> {
        self.out.lock().error.take()
    }

    /// The dispatcher delivered one data event of `len` bytes.
    pub(crate) fn flow_consumed(&self, len: usize, backlog: &crate::context::Backlog) {
        let cost = len + EVENT_COST;
        backlog.remove(cost);
        let after = self.pending.fetch_sub(cost, Ordering::SeqCst) - cost;
        if after <= FLOW_LOW && self.flow_waiting.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

thread_local! {
    /// The read buffer of each runtime thread: connections hold no read buffer of their own.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// The task side of one open connection.
pub(crate) struct Serve {
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn: Arc<Connection>,
    pub(crate) info: Arc<ConnectionInfo>,
    pub(crate) settings: Settings,
}

/// How a connection ended: the code and text of its final event.
type End = (i32, String);

fn lost(message: &str) -> End {
    (error::LOST_CONNECTION, message.to_owned())
}

impl Serve {
    /// Puts the stream in place, tells the host (for outgoing connections), runs until the end.
    pub(crate) async fn run_open(self, stream: TcpStream, announce_connected: bool) {
        let stream = Arc::new(stream);
        {
            let mut out = self.conn.out.lock();
            out.stream = Some(stream.clone());
        }
        self.conn.state.store(OPEN, Ordering::Release);
        if announce_connected {
            self.shared.queue.push(Event::Connected {
                info: self.info.clone(),
            });
        }
        let end = self.pump(&stream).await;
        self.finish(end, Some(&stream));
    }

    /// The final event: the connection is closed and its id dead.
    pub(crate) fn finish(&self, end: End, stream: Option<&TcpStream>) {
        self.conn.state.store(CLOSED, Ordering::Release);
        {
            let mut out = self.conn.out.lock();
            out.stream = None;
            out.buf = BytesMut::new();
        }
        if let Some(stream) = stream {
            let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Both);
        }
        self.shared.registry.remove_connection(self.conn.id);
        self.shared.queue.push(Event::SocketError {
            info: self.info.clone(),
            code: end.0,
            message: crate::info::c_text(&end.1),
        });
    }

    async fn pump(&self, stream: &TcpStream) -> End {
        let conn = &*self.conn;
        let mut framer = Framer::new(
            self.settings.boundary.clone(),
            self.settings.max_message_len,
        );
        let mut eof = false;
        let idle = self.settings.idle_timeout;
        let mut idle_timer: Option<Pin<Box<Sleep>>> = idle.map(|d| Box::pin(tokio::time::sleep(d)));
        let mut last_read = Instant::now();
        loop {
            if let Some(reason) = conn.close_reason() {
                return self.close_on_request(reason, stream).await;
            }
            if let Some(err) = conn.take_write_error() {
                return (err.code, err.message);
            }
            let want_write = conn.has_output();
            let pending = conn.pending();
            if eof && !want_write && pending == 0 {
                return lost("the peer closed the connection");
            }
            // Back-pressure: wait for the host when this connection has too much undelivered,
            // and after end of stream until everything read has been delivered.
            let flow_wait = pending > FLOW_HIGH || (eof && pending > 0);
            if flow_wait {
                conn.flow_waiting.store(true, Ordering::SeqCst);
                let pending = conn.pending();
                if pending <= FLOW_LOW && !(eof && pending > 0) {
                    conn.flow_waiting.store(false, Ordering::SeqCst);
                    continue;
                }
            }
            let backlog_drained = self.shared.backlog.drained.notified();
            tokio::pin!(backlog_drained);
            let backlog_wait = !eof && self.shared.backlog.over() && {
                backlog_drained.as_mut().enable();
                self.shared.backlog.over()
            };
            let can_read = !eof && !flow_wait && !backlog_wait;
            tokio::select! {
                biased;
                _ = conn.wake.notified() => {}
                r = stream.writable(), if want_write => {
                    if let Err(e) = r {
                        let e = Error::io("write failed", &e);
                        return (e.code, e.message);
                    }
                    if let Flush::Failed = conn.flush() {
                        continue; // the error is taken at the top of the loop
                    }
                }
                r = stream.readable(), if can_read => {
                    if let Err(e) = r {
                        let e = Error::io("read failed", &e);
                        return (e.code, e.message);
                    }
                    match self.read(stream, &mut framer) {
                        Ok(true) => eof = true,
                        Ok(false) => {}
                        Err(end) => return end,
                    }
                    last_read = Instant::now();
                }
                _ = &mut backlog_drained, if backlog_wait => {}
                _ = async { idle_timer.as_mut().unwrap().await }, if idle_timer.is_some() => {
                    let idle = idle.unwrap_or_default();
                    let wrote = conn.last_write_ms.load(Ordering::Relaxed);
                    let last_write = conn.created + Duration::from_millis(wrote);
                    let last = last_read.max(last_write);
                    if last.elapsed() >= idle {
                        return (
                            libc::ETIMEDOUT,
                            format!("idle timeout: no traffic for {} ms", idle.as_millis()),
                        );
                    }
                    if let Some(t) = idle_timer.as_mut() {
                        t.as_mut().reset(last + idle);
                    }
                }
            }
            conn.flow_waiting.store(false, Ordering::SeqCst);
        }
    }

    /// Reads what the socket has, frames it and queues the messages. Ok(true) at end of stream.
    fn read(&self, stream: &TcpStream, framer: &mut Framer) -> Result<bool, End> {
        let mut messages = Vec::new();
        let mut eof = false;
        let mut failure: Option<End> = None;
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut total = 0;
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
                        let e = Error::io("read failed", &e);
                        failure = Some((e.code, e.message));
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
        self.deliver(messages);
        match failure {
            Some(end) => Err(end),
            None => Ok(eof),
        }
    }

    fn deliver(&self, messages: Vec<Bytes>) {
        if messages.is_empty() {
            return;
        }
        let cost: usize = messages.iter().map(|m| m.len() + EVENT_COST).sum();
        self.conn.pending.fetch_add(cost, Ordering::SeqCst);
        self.shared.backlog.add(cost);
        self.shared
            .queue
            .push_all(messages.into_iter().map(|data| Event::Data {
                conn: self.conn.clone(),
                info: self.info.clone(),
                data,
            }));
    }

    async fn close_on_request(&self, reason: CloseReason, stream: &TcpStream) -> End {
        let conn = &*self.conn;
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
                        if CloseReason::from_u8(conn.close.load(Ordering::Acquire))
                            > Some(CloseReason::Disconnect)
                        {
                            break; // the context is going away: stop waiting
                        }
                        tokio::select! {
                            r = tokio::time::timeout_at(deadline, stream.writable()) => {
                                if r.is_err() {
                                    break; // linger time is over
                                }
                            }
                            _ = conn.wake.notified() => {}
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
