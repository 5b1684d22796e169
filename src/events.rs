//! The event queue between the network (runtime tasks) and the host's callbacks, and the two
//! ways of running those callbacks: on one library thread, or inside the host's `xt_poll`.
//!
//! Tasks push events; one dispatcher at a time takes them in batches and calls the [`Host`]. No
//! lock is held while the host runs. Data a callback sends is written once its batch is done,
//! so replies to many messages leave in one system call.

use crate::context::Backlog;
use crate::http::{HttpListener, HttpRequest, HttpResponse, RequestParts};
use crate::info::ConnectionInfo;
use crate::tcp::Connection;
use crate::udp::{Datagram, DatagramInfo, UdpListener};
use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Severity of a `log` event, as the C surface numbers it (`XT_LOG_*`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = 1,
    Warning = 2,
    Info = 3,
    Debug = 4,
}

/// Where events go: the host application. The C surface implements this over `XtCallbacks`;
/// Rust tests implement it directly. Every method runs on the dispatching thread, one at a time.
pub trait Host: Send + Sync {
    /// Whether `new_connection` should be asked at all (false: every connection is accepted).
    fn wants_new_connection(&self) -> bool {
        true
    }
    /// A connection came in on a listener; true accepts it.
    fn new_connection(&self, _id: u64, _info: &ConnectionInfo) -> bool {
        true
    }
    /// An outgoing connection is established.
    fn connected(&self, _id: u64, _info: &ConnectionInfo) {}
    /// Data arrived: one framed message, or a raw chunk when the connection has no boundary.
    fn data_available(&self, _id: u64, _data: &[u8], _info: &ConnectionInfo) {}
    /// The final event of a connection: it is closed, with why.
    fn socket_error(&self, _id: u64, _info: &ConnectionInfo, _code: i32, _message: &CStr) {}
    /// Whether `page_request` should be called at all (false: every request gets 404).
    fn wants_page_request(&self) -> bool {
        false
    }
    /// An HTTP request arrived on listener `server_id`: fill `response` before returning.
    fn page_request(&self, _server_id: u32, _request: &HttpRequest, response: &mut HttpResponse) {
        *response = HttpResponse::with_status(404);
    }
    /// A datagram arrived on UDP listener `server_id`.
    fn received_datagram(&self, _server_id: u32, _data: &[u8], _info: &DatagramInfo) {}
    /// A message from the library.
    fn log(&self, _level: LogLevel, _message: &CStr) {}
}

/// One thing the host is told about.
pub(crate) enum Event {
    NewConnection {
        conn: Arc<Connection>,
    },
    Connected {
        conn: Arc<Connection>,
    },
    /// Every message one read produced, in order (one event, so one hand-off, per read).
    Data {
        conn: Arc<Connection>,
        messages: Vec<Bytes>,
    },
    SocketError {
        conn: Arc<Connection>,
        code: i32,
        message: CString,
    },
    /// An HTTP request; the host's answer goes back through `reply`.
    PageRequest {
        listener: Arc<HttpListener>,
        request: Box<RequestParts>,
        reply: oneshot::Sender<HttpResponse>,
    },
    /// Every datagram one receive call gave.
    Datagrams {
        listener: Arc<UdpListener>,
        datagrams: Vec<Datagram>,
    },
    Log {
        level: LogLevel,
        message: CString,
    },
}

impl Event {
    pub(crate) fn log(level: LogLevel, message: &str) -> Event {
        Event::Log {
            level,
            message: crate::info::c_text(message),
        }
    }

    fn connection(&self) -> Option<&Arc<Connection>> {
        match self {
            Event::NewConnection { conn }
            | Event::Connected { conn }
            | Event::Data { conn, .. }
            | Event::SocketError { conn, .. } => Some(conn),
            Event::Datagrams { .. } | Event::PageRequest { .. } | Event::Log { .. } => None,
        }
    }

    /// Runs the callbacks of this event; returns how many ran (or were answered for the host).
    fn dispatch(self, host: &dyn Host, closing: bool, credits: &mut Credits) -> usize {
        match self {
            Event::NewConnection { conn } => {
                // A connection whose listener was stopped (or whose context is going away)
                // before the host was asked is refused without asking: it never existed for it.
                let info = conn.info();
                let accept =
                    !closing && !conn.close_requested() && host.new_connection(info.id, info);
                conn.decide(accept);
            }
            Event::Connected { conn } => host.connected(conn.id, conn.info()),
            Event::Data { conn, messages } => {
                let mut bytes = 0;
                for data in &messages {
                    host.data_available(conn.id, data, conn.info());
                    bytes += data.len();
                }
                credits.add(&conn, bytes, messages.len());
                return messages.len();
            }
            Event::SocketError {
                conn,
                code,
                message,
            } => host.socket_error(conn.id, conn.info(), code, &message),
            Event::Datagrams {
                listener,
                datagrams,
            } => return listener.deliver(host, datagrams),
            Event::PageRequest {
                listener,
                request,
                reply,
            } => {
                // Dropping `reply` (a stopped listener) answers 503.
                if let Some(response) = listener.deliver(host, *request) {
                    let _ = reply.send(response);
                }
            }
            Event::Log { level, message } => host.log(level, &message),
        }
        1
    }
}

/// Delivered bytes not yet credited back to their connection: applied once per run of
/// consecutive events of one connection (not per message), at the latest when a batch ends.
struct Credits<'a> {
    backlog: &'a Backlog,
    conn: Option<Arc<Connection>>,
    bytes: usize,
    events: usize,
}

impl Credits<'_> {
    fn add(&mut self, conn: &Arc<Connection>, bytes: usize, messages: usize) {
        if !self.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            self.apply();
            self.conn = Some(conn.clone());
        }
        self.bytes += bytes;
        self.events += messages;
    }

    fn apply(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.flow_consumed(self.bytes, self.events, self.backlog);
        }
        self.bytes = 0;
        self.events = 0;
    }
}

thread_local! {
    /// The context whose callbacks this thread is running now (0: none).
    static DISPATCHING: Cell<u64> = const { Cell::new(0) };
    /// The connection the running callback is about: sends to it skip the registry lookup.
    static CURRENT: RefCell<Option<Arc<Connection>>> = const { RefCell::new(None) };
    /// Connections and listeners written to by callbacks of the current batch, flushed when it
    /// ends.
    static DIRTY: RefCell<Vec<Dirty>> = const { RefCell::new(Vec::new()) };
}

/// The context whose callback is running on this thread, 0 if none.
pub(crate) fn dispatching_context() -> u64 {
    DISPATCHING.with(|d| d.get())
}

/// Runs `f` on connection `id` of context `ctx_id` if it is the one the running callback is
/// about (the common case: answering the message being delivered). None otherwise.
pub(crate) fn with_current<R>(
    ctx_id: u64,
    id: u64,
    f: impl FnOnce(&Arc<Connection>) -> R,
) -> Option<R> {
    if dispatching_context() != ctx_id {
        return None;
    }
    // Borrowed, not cloned: no reference-count traffic on the hot path. `f` (a send) never
    // calls back into the host, so nothing else borrows CURRENT meanwhile.
    CURRENT.with(|c| c.borrow().as_ref().filter(|c| c.id == id).map(f))
}

/// Something callbacks wrote to, to flush when their batch ends.
pub(crate) enum Dirty {
    Tcp(Arc<Connection>),
    Udp(Arc<UdpListener>),
}

/// Remembers a connection or listener to flush when the current batch of callbacks ends.
pub(crate) fn flush_after_batch(dirty: Dirty) {
    DIRTY.with(|d| d.borrow_mut().push(dirty));
}

/// Writes what callbacks queued; reports send failures (which the callbacks could not be told)
/// through the host's log.
fn flush_dirty(host: &dyn Host) {
    let mut dirty = DIRTY.with(|d| std::mem::take(&mut *d.borrow_mut()));
    // A reply or two: write them here, at once. Many: let the connections' own tasks write,
    // so the kernel's send work spreads over the network threads instead of this one.
    let here = dirty.len() <= WRITE_HERE_MAX;
    for item in dirty.drain(..) {
        match item {
            Dirty::Tcp(conn) => conn.flush_from_dispatcher(here),
            Dirty::Udp(listener) => {
                if let Some(failure) = listener.flush_outbox() {
                    host.log(LogLevel::Warning, &crate::info::c_text(&failure));
                }
            }
        }
    }
    // Give the (empty) vector back to reuse its allocation.
    DIRTY.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_empty() {
            *d = dirty;
        }
    });
}

/// Flush after this many dirty connections even inside a batch, so early replies are not held.
const FLUSH_EVERY: usize = 64;
/// Most connections a batch's end writes to from the dispatching thread itself.
const WRITE_HERE_MAX: usize = 2;

/// Runs a batch of events on this thread for context `ctx_id`; returns how many were handled.
pub(crate) fn run_batch(
    ctx_id: u64,
    host: &dyn Host,
    closing: &dyn Fn() -> bool,
    backlog: &Backlog,
    batch: &mut VecDeque<Event>,
) -> usize {
    let outer = DISPATCHING.with(|d| d.replace(ctx_id));
    let mut credits = Credits {
        backlog,
        conn: None,
        bytes: 0,
        events: 0,
    };
    let mut handled = 0;
    while let Some(event) = batch.pop_front() {
        let closing = closing();
        let conn = event.connection().cloned();
        CURRENT.with(|c| *c.borrow_mut() = conn);
        // A panic here is a bug in xtnet (host callbacks are C and cannot unwind): contain it
        // to this one event so the others are still delivered.
        handled += catch_unwind(AssertUnwindSafe(|| {
            event.dispatch(host, closing, &mut credits)
        }))
        .unwrap_or(1);
        if DIRTY.with(|d| d.borrow().len()) >= FLUSH_EVERY {
            flush_dirty(host);
        }
    }
    CURRENT.with(|c| c.borrow_mut().take());
    credits.apply();
    flush_dirty(host);
    DISPATCHING.with(|d| d.set(outer));
    handled
}

/// The queue: FIFO, many producers, one consumer at a time.
pub(crate) struct EventQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
    wake_fd: Option<WakeFd>,
    /// Whether events wait, readable without the lock (for the dispatcher's spin).
    nonempty: AtomicBool,
}

/// How long the thread dispatcher keeps looking for events before it sleeps. A request/response
/// peer usually sends its next message within this, and finding it without a sleep/wake pair
/// saves both threads a system call and a context switch (measured: see BENCHMARKS.md).
const SPIN: Duration = Duration::from_micros(50);

struct QueueState {
    events: VecDeque<Event>,
    /// Dispatchers blocked in `take`.
    sleepers: usize,
    /// Whether the wakeup fd is readable now.
    signaled: bool,
    /// No more waiting: `take` returns what is left, then nothing.
    closed: bool,
}

impl EventQueue {
    /// A queue; with `wake_fd` it keeps a descriptor readable exactly while events wait.
    pub(crate) fn new(with_wake_fd: bool) -> std::io::Result<Self> {
        Ok(EventQueue {
            state: Mutex::new(QueueState {
                events: VecDeque::new(),
                sleepers: 0,
                signaled: false,
                closed: false,
            }),
            ready: Condvar::new(),
            nonempty: AtomicBool::new(false),
            wake_fd: if with_wake_fd {
                Some(WakeFd::new()?)
            } else {
                None
            },
        })
    }

    pub(crate) fn push(&self, event: Event) {
        let mut st = self.state.lock();
        st.events.push_back(event);
        self.nonempty.store(true, Ordering::Release);
        if st.sleepers > 0 {
            self.ready.notify_one();
        }
        if let Some(fd) = &self.wake_fd {
            if !st.signaled {
                fd.signal();
                st.signaled = true;
            }
        }
    }

    /// Moves every waiting event into `batch`, waiting up to `timeout` (None: forever) for one.
    /// With `spin`, looks for events for a short while before sleeping. Returns false when
    /// nothing came (timeout, or the queue was closed and is empty).
    pub(crate) fn take(
        &self,
        timeout: Option<Duration>,
        spin: bool,
        batch: &mut VecDeque<Event>,
    ) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        if spin && !self.nonempty.load(Ordering::Acquire) {
            let until = Instant::now() + SPIN;
            'spin: loop {
                for _ in 0..64 {
                    if self.nonempty.load(Ordering::Acquire) {
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
                if Instant::now() >= until {
                    break;
                }
                // Give the core to the network threads (or the peer) if they have work.
                std::thread::yield_now();
            }
        }
        let mut st = self.state.lock();
        while st.events.is_empty() {
            if st.closed {
                return false;
            }
            st.sleepers += 1;
            let timed_out = match deadline {
                Some(d) => self.ready.wait_until(&mut st, d).timed_out(),
                None => {
                    self.ready.wait(&mut st);
                    false
                }
            };
            st.sleepers -= 1;
            if timed_out && st.events.is_empty() {
                return false;
            }
        }
        std::mem::swap(batch, &mut st.events);
        self.nonempty.store(false, Ordering::Release);
        if st.signaled {
            if let Some(fd) = &self.wake_fd {
                fd.clear();
            }
            st.signaled = false;
        }
        true
    }

    /// Wakes every waiting dispatcher; from now on `take` stops waiting once the queue is empty.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }

    pub(crate) fn wake_fd(&self) -> Option<i32> {
        self.wake_fd.as_ref().map(|w| w.read_fd)
    }
}

/// A descriptor that is readable while it is signaled: an eventfd on Linux, a pipe elsewhere.
struct WakeFd {
    read_fd: i32,
    write_fd: i32,
}

impl WakeFd {
    #[cfg(target_os = "linux")]
    fn new() -> std::io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(WakeFd {
            read_fd: fd,
            write_fd: fd,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn new() -> std::io::Result<Self> {
        let mut fds = [0i32; 2];
        // SAFETY: fds has room for the two descriptors pipe() writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        for fd in fds {
            // SAFETY: fd was just returned by pipe().
            unsafe {
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(WakeFd {
            read_fd: fds[0],
            write_fd: fds[1],
        })
    }

    fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own descriptor. A full pipe or counter
        // already means "readable", so the result does not matter.
        unsafe { libc::write(self.write_fd, (&one as *const u64).cast(), 8) };
    }

    fn clear(&self) {
        let mut sink = [0u8; 64];
        // SAFETY: reads into a live local buffer from our own non-blocking descriptor.
        while unsafe { libc::read(self.read_fd, sink.as_mut_ptr().cast(), sink.len()) } > 0 {
            if self.read_fd != self.write_fd {
                continue;
            }
            break; // an eventfd is reset by one read
        }
    }
}

impl Drop for WakeFd {
    fn drop(&mut self) {
        // SAFETY: closing descriptors this struct owns, once.
        unsafe {
            libc::close(self.read_fd);
            if self.write_fd != self.read_fd {
                libc::close(self.write_fd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: i32) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    #[test]
    fn wake_fd_is_readable_exactly_while_events_wait() {
        let q = EventQueue::new(true).unwrap();
        let fd = q.wake_fd().unwrap();
        assert!(!readable(fd));
        q.push(Event::log(LogLevel::Info, "a"));
        q.push(Event::log(LogLevel::Info, "b"));
        assert!(readable(fd));
        let mut batch = VecDeque::new();
        assert!(q.take(Some(Duration::ZERO), false, &mut batch));
        assert_eq!(batch.len(), 2);
        assert!(!readable(fd));
        assert!(!q.take(Some(Duration::from_millis(10)), true, &mut batch));
        q.close();
        assert!(!q.take(None, false, &mut batch));
    }
}
