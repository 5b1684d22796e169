//! One TCP connection, accepted or outgoing, as every thread sees it: its state, its write
//! queue and its flow-control counters. Its task (`task.rs`) does the reading and the ending.
//!
//! Writing: `send` copies into the connection's queue. Outside a callback it writes at once
//! from the calling thread when nothing is queued (no hand-off, no wake-up); inside a callback
//! the write waits for the end of the batch so many replies leave in one system call. Whatever
//! cannot be written now is written by the task when the socket is writable, in call order.
//!
//! Flow: bytes read but not yet delivered to the host are counted in its [`Flow`] (see
//! `flow.rs` for when the task stops reading).

use super::flow::{pace, Backlog, Flow, Pace, Reader};
use crate::dispatch::{self, Writer};
use crate::error::{self, Error};
use crate::framing::Boundary;
use crate::info::{ConnectionInfo, MessageKind};
use crate::options::Options;
use atomic_waker::AtomicWaker;
use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use std::any::Any;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// First allocation of a write queue (it is freed again once written out).
const OUTBOX_START: usize = 4096;

/// What a connection keeps of the options when it is started (shared by a listener's
/// connections).
pub(crate) struct Settings {
    pub boundary: Arc<Boundary>,
    pub max_message_len: usize,
    pub write_queue_limit: usize,
    pub idle_timeout: Option<Duration>,
    /// A WebSocket connection: its write queue holds whole messages (see `send_message`),
    /// `max_message_len` is `XT_OPT_WS_MAX_MESSAGE_BYTES`.
    pub websocket: bool,
}

impl Settings {
    pub(crate) fn new(o: &Options, boundary: &[u8]) -> Result<Arc<Settings>, Error> {
        if boundary.len() > super::MAX_BOUNDARY_LEN {
            return Err(Error::invalid_argument(format!(
                "boundary of {} bytes is longer than {}",
                boundary.len(),
                super::MAX_BOUNDARY_LEN
            )));
        }
        Ok(Arc::new(Settings {
            boundary: Arc::new(Boundary::new(boundary)),
            max_message_len: o.max_message_len,
            write_queue_limit: o.write_queue_limit,
            idle_timeout: o.idle_timeout,
            websocket: false,
        }))
    }

    /// The settings of a WebSocket connection.
    pub(crate) fn websocket(o: &Options) -> Arc<Settings> {
        Arc::new(Settings {
            boundary: Arc::new(Boundary::new(b"")),
            max_message_len: o.ws_max_message_bytes,
            write_queue_limit: o.write_queue_limit,
            idle_timeout: o.idle_timeout,
            websocket: true,
        })
    }
}

/// A WebSocket message in a write queue: its kind (1 byte), its length (4 bytes, LE), then
/// its bytes; the pump (`ws_pump.rs`) takes them apart again.
pub(super) const RECORD_HEAD: usize = 5;

/// Why the host or the library asked a connection to close. Higher values win.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum CloseReason {
    Disconnect = 1,
    ListenerStopped = 2,
    ContextFreed = 3,
}

impl CloseReason {
    pub(super) fn from_u8(v: u8) -> Option<Self> {
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

/// Where a connection is in its life, in order: outgoing ones start `Connecting`; accepted ones
/// are `Deciding` until the host answers `new_connection` (`Accepted` or `Refused`; without that
/// callback they open at once); then `Open`, and `Closed` after the final event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    Connecting = 0,
    Deciding = 1,
    Accepted = 2,
    Refused = 3,
    Open = 4,
    Closed = 5,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            0 => State::Connecting,
            1 => State::Deciding,
            2 => State::Accepted,
            3 => State::Refused,
            4 => State::Open,
            _ => State::Closed,
        }
    }
}

pub(super) struct Outbox {
    pub(super) buf: BytesMut,
    /// The socket said "would block": only the task writes until it is writable again.
    blocked: bool,
    /// A write failed; the task ends the connection with it.
    error: Option<Box<Error>>,
    /// The framing asked for and the bytes given back (`xt_set_framing`); None for a
    /// connection that never changed its framing. Under this lock (rarely taken for it) so an
    /// idle connection pays one pointer.
    reframe: Option<Box<Reframe>>,
}

pub(super) enum Flush {
    Done,
    Blocked,
    Failed,
}

pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) server_id: u32,
    pub(super) ctx_id: u64,
    pub(super) settings: Arc<Settings>,
    state: AtomicU8,
    close: AtomicU8,
    /// Set once before the first event: what the host is told about this connection.
    pub(super) info: OnceLock<ConnectionInfo>,
    /// Set when the connection is open (accepted: at once; outgoing: once connected).
    pub(super) stream: OnceLock<TcpStream>,
    pub(super) out: Mutex<Outbox>,
    /// Wakes the task: output queued, close requested, flow resumed. The task re-checks
    /// every condition when woken, so a wake needs no reason attached.
    pub(super) waker: AtomicWaker,
    /// Undelivered bytes and whether the task paused on them (`flow.rs`).
    pub(super) flow: Flow,
    /// Already on this batch's flush list.
    pub(super) written_in_batch: AtomicBool,
    /// For the idle timeout: milliseconds since the context's clock start of the last write.
    pub(super) last_write_ms: AtomicU64,
    /// Tests only (`xt_debug_panic_connection`): the task panics at its next step.
    debug_panic: AtomicBool,
    /// `xt_set_framing`: +1 per change. Every data event carries the epoch it was framed in;
    /// the dispatcher gives back (unframed) what it has not delivered of an older one.
    framing_epoch: AtomicU32,
}

/// A framing change of one connection (`xt_set_framing`).
#[derive(Default)]
pub(crate) struct Reframe {
    /// The framing asked for last (None: the listener's).
    pub(crate) spec: Option<FramingSpec>,
    /// The mode the task frames by now (None: the listener's), which every data event in
    /// flight was framed by: the task changes it only once none is left.
    pub(crate) applied: Option<crate::framing::Mode>,
    /// Stream bytes the dispatcher gave back, in stream order, to be framed the new way.
    pub(crate) returned: Vec<Bytes>,
}

/// A connection's framing as a host sets it: the mode, and how long bytes may wait without
/// completing a message before they are delivered as one (None: forever).
#[derive(Clone)]
pub(crate) struct FramingSpec {
    pub(crate) mode: crate::framing::Mode,
    pub(crate) timeout: Option<Duration>,
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        server_id: u32,
        ctx_id: u64,
        state: State,
        settings: Arc<Settings>,
    ) -> Self {
        Connection {
            id,
            server_id,
            ctx_id,
            settings,
            state: AtomicU8::new(state as u8),
            close: AtomicU8::new(0),
            info: OnceLock::new(),
            stream: OnceLock::new(),
            out: Mutex::new(Outbox {
                buf: BytesMut::new(),
                blocked: false,
                error: None,
                reframe: None,
            }),
            waker: AtomicWaker::new(),
            flow: Flow::default(),
            written_in_batch: AtomicBool::new(false),
            last_write_ms: AtomicU64::new(0),
            debug_panic: AtomicBool::new(false),
            framing_epoch: AtomicU32::new(0),
        }
    }

    /// The longest message this connection takes (`XT_OPT_MAX_MESSAGE_LEN` when it started).
    pub(crate) fn max_message_len(&self) -> usize {
        self.settings.max_message_len
    }

    /// The framing epoch (see `framing_epoch`).
    pub(crate) fn framing_epoch(&self) -> u32 {
        self.framing_epoch.load(Ordering::Acquire)
    }

    /// Frames this connection's stream the new way from the next byte not yet delivered to the
    /// host (from inside its `data_available`: the byte after that message). Not for a
    /// WebSocket (its messages are the peer's).
    pub(crate) fn set_framing(&self, spec: FramingSpec) -> Result<(), Error> {
        if self.settings.websocket {
            return Err(Error::invalid_argument(format!(
                "connection {} is a WebSocket: its messages are framed by the protocol",
                self.id
            )));
        }
        if matches!(self.state(), State::Closed | State::Refused) {
            return Err(self.closed_error());
        }
        self.out
            .lock()
            .reframe
            .get_or_insert_with(Box::default)
            .spec = Some(spec);
        self.framing_epoch.fetch_add(1, Ordering::AcqRel);
        self.wake();
        Ok(())
    }

    /// The dispatcher gives back stream bytes it did not deliver (framed in an older epoch).
    pub(crate) fn give_back(&self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.out
                .lock()
                .reframe
                .get_or_insert_with(Box::default)
                .returned
                .push(bytes);
        }
    }

    /// The mode data events in flight were framed by (what the dispatcher unframes with).
    pub(crate) fn applied_mode(&self) -> crate::framing::Mode {
        let applied = self
            .out
            .lock()
            .reframe
            .as_ref()
            .and_then(|r| r.applied.clone());
        applied.unwrap_or_else(|| self.settings.boundary.mode())
    }

    /// The task frames by `mode` from now on.
    pub(super) fn set_applied(&self, mode: crate::framing::Mode) {
        self.out
            .lock()
            .reframe
            .get_or_insert_with(Box::default)
            .applied = Some(mode);
    }

    /// The framing asked for, and the bytes given back (taken).
    pub(super) fn take_reframe(&self) -> (Option<FramingSpec>, Vec<Bytes>) {
        match self.out.lock().reframe.as_mut() {
            Some(r) => (r.spec.clone(), std::mem::take(&mut r.returned)),
            None => (None, Vec::new()),
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

    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(super) fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
    }

    pub(crate) fn close_requested(&self) -> bool {
        self.close.load(Ordering::Acquire) != 0
    }

    pub(super) fn close_reason(&self) -> Option<CloseReason> {
        CloseReason::from_u8(self.close.load(Ordering::Acquire))
    }

    /// The host's answer to `new_connection` (given once, by the dispatcher).
    pub(crate) fn decide(&self, accept: bool) {
        let to = if accept {
            State::Accepted
        } else {
            State::Refused
        };
        let _ = self.state.compare_exchange(
            State::Deciding as u8,
            to as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.wake();
    }

    /// Makes the connection's task panic at its next step (to test containment).
    pub(crate) fn debug_panic(&self) {
        self.debug_panic.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub(super) fn take_debug_panic(&self) -> bool {
        // A plain load first: this is asked at every step of every connection.
        self.debug_panic.load(Ordering::Relaxed) && self.debug_panic.swap(false, Ordering::SeqCst)
    }

    /// Resolves when the connection's task is woken (output queued, close requested, flow
    /// resumed, framing changed), or at once when there is output or a close to see to, or the
    /// framing epoch is no longer `epoch` (checked after registering: a wake in between is
    /// not lost).
    pub(super) async fn woken(&self, epoch: u32) {
        let mut registered = false;
        std::future::poll_fn(|cx| {
            if registered {
                return std::task::Poll::Ready(());
            }
            self.waker.register(cx.waker());
            registered = true;
            if self.has_output() || self.close_requested() || self.framing_epoch() != epoch {
                return std::task::Poll::Ready(());
            }
            std::task::Poll::Pending
        })
        .await
    }

    /// What `pace` says (`flow.rs`), waiting while it says Paused unless there is output or a
    /// close to see to. The waker is registered before `pace` looks, so a delivery that wakes
    /// the reader between the look and the wait is not lost (the plain pump does the same by
    /// registering at the top of its poll).
    pub(super) async fn paced(self: &Arc<Self>, eof: bool, backlog: &Backlog) -> Pace {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            match pace(self, eof, backlog) {
                Pace::Paused if !(self.has_output() || self.close_requested()) => {
                    std::task::Poll::Pending
                }
                other => std::task::Poll::Ready(other),
            }
        })
        .await
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
        match self.state() {
            State::Open => self.stream.get(),
            _ => None,
        }
    }

    /// Queues `data` (copied): bytes for the stream, or for a WebSocket one text message
    /// (1001 if it is not UTF-8). Never blocks. `this` gives the connection as a shared writer,
    /// needed only when it is first written to in a batch of callbacks.
    pub(crate) fn send(
        &self,
        data: &[u8],
        this: impl FnOnce() -> Arc<dyn Writer>,
        in_batch: Option<bool>,
    ) -> Result<(), Error> {
        if self.settings.websocket {
            return self.send_message(data, MessageKind::Text, this, in_batch);
        }
        self.queue(&[], data, this, in_batch)
    }

    /// Queues one WebSocket message of `kind` (copied); 1001 for text that is not UTF-8, a
    /// kind that is neither text nor binary, or a connection that is no WebSocket.
    pub(crate) fn send_message(
        &self,
        data: &[u8],
        kind: MessageKind,
        this: impl FnOnce() -> Arc<dyn Writer>,
        in_batch: Option<bool>,
    ) -> Result<(), Error> {
        if !self.settings.websocket {
            return Err(Error::invalid_argument(format!(
                "connection {} is not a WebSocket",
                self.id
            )));
        }
        if kind == MessageKind::Stream {
            return Err(Error::invalid_argument(
                "a WebSocket message is text or binary",
            ));
        }
        if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
            return Err(Error::invalid_argument(
                "a WebSocket text message must be UTF-8 (send it as binary)",
            ));
        }
        let len = u32::try_from(data.len())
            .map_err(|_| Error::invalid_argument("a WebSocket message is at most 4 GiB"))?;
        let mut head = [0u8; RECORD_HEAD];
        head[0] = kind as u8;
        head[1..].copy_from_slice(&len.to_le_bytes());
        self.queue(&head, data, this, in_batch)
    }

    /// Queues `head` and `data` together (a write of the stream has no head). `in_batch`:
    /// whether the caller is a callback of this connection's context (None: find out), whose
    /// batch then writes it when it ends.
    fn queue(
        &self,
        head: &[u8],
        mut data: &[u8],
        this: impl FnOnce() -> Arc<dyn Writer>,
        in_batch: Option<bool>,
    ) -> Result<(), Error> {
        match self.state() {
            State::Connecting => {
                return Err(Error::invalid_state(format!(
                    "connection {} is not connected yet",
                    self.id
                )))
            }
            State::Closed | State::Refused => return Err(self.closed_error()),
            _ if self.close_requested() => return Err(self.closed_error()),
            _ => {}
        }
        let deferred = in_batch.unwrap_or_else(|| dispatch::dispatching_context() == self.ctx_id);
        let mut out = self.out.lock();
        if out.buf.len() + head.len() + data.len() > self.settings.write_queue_limit {
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
        if data.is_empty() && head.is_empty() {
            return Ok(());
        }
        let was_empty = out.buf.is_empty();
        // Only a plain stream (no head) is written from the calling thread.
        if was_empty && !deferred && !out.blocked && head.is_empty() {
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
            out.buf.reserve((head.len() + data.len()).max(OUTBOX_START));
        }
        out.buf.extend_from_slice(head);
        out.buf.extend_from_slice(data);
        drop(out);
        if deferred {
            if !self.written_in_batch.swap(true, Ordering::AcqRel) {
                dispatch::flush_after_batch(this());
            }
        } else if was_empty {
            self.wake();
        }
        Ok(())
    }

    fn closed_error(&self) -> Error {
        Error::invalid_state(format!("connection {} is closed or closing", self.id))
    }

    /// A write went out now (for the idle timeout).
    pub(super) fn touch_write(&self) {
        if self.settings.idle_timeout.is_some() {
            self.last_write_ms.store(clock_ms(), Ordering::Relaxed);
        }
    }

    /// Writes what is queued until done or the socket would block.
    pub(super) fn flush(&self) -> Flush {
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

    /// Everything queued, taken (a TLS connection's task writes it through TLS).
    pub(super) fn take_output(&self) -> BytesMut {
        std::mem::take(&mut self.out.lock().buf)
    }

    pub(super) fn has_output(&self) -> bool {
        !self.out.lock().buf.is_empty()
    }

    pub(super) fn take_write_error(&self) -> Option<Error> {
        self.out.lock().error.take().map(|e| *e)
    }
}

impl Reader for Connection {
    fn flow(&self) -> &Flow {
        &self.flow
    }

    fn wake_reader(&self) {
        self.wake();
    }
}

impl Writer for Connection {
    /// End of a dispatch batch: write what its callbacks queued (`here`, on this thread), or
    /// have the connection's task write it; the task also takes over when the socket is full.
    /// A failed write ends the connection (its task reports it), so there is nothing to log.
    fn flush_batch(&self, here: bool) -> Option<String> {
        self.written_in_batch.store(false, Ordering::Release);
        // Only a plain stream can be written from here; TLS output goes through its task.
        let plain = self.stream.get().is_some();
        if here && plain && !self.out.lock().blocked && matches!(self.flush(), Flush::Done) {
            return None;
        }
        self.wake();
        None
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A coarse process clock in milliseconds (for idle timeouts; 0 is "never").
pub(super) fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Sets the stream of a connection that is about to open.
pub(crate) fn attach(conn: &Connection, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = conn.stream.set(stream);
}
