//! What every task and call of one context shares ([`Shared`]), and the count of its live
//! runtime tasks ([`TaskGuard`]) that lets freeing a context wait until each has pushed its
//! final event. The protocols reach their context only through this; the facade that starts
//! and stops them is `context.rs`, above them.

use crate::dispatch::Dispatch;
use crate::error::Error;
use crate::events::{self, Event, Host, LogLevel};
use crate::inline::InlineCalls;
use crate::options::Options;
use crate::peer::{Identify, Peers};
use crate::queue::EventQueue;
use crate::registry::Registry;
use crate::tcp::Backlog;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// What every task and call of one context shares.
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) dispatch: Dispatch,
    pub(crate) queue: EventQueue<Event>,
    pub(crate) host: Arc<dyn Host>,
    pub(crate) options: Mutex<Options>,
    /// The network threads' runtime, once started (by the first listener or connection).
    runtime: OnceLock<tokio::runtime::Handle>,
    pub(crate) registry: Registry,
    pub(crate) backlog: Backlog,
    /// Peer names and MAC addresses.
    pub(crate) peers: Peers,
    /// Accepts that failed on any listener (`XT_STAT_ACCEPT_ERRORS`).
    pub(crate) accept_errors: AtomicU64,
    closing: AtomicBool,
    pub(crate) polling: AtomicBool,
    tasks: TaskCounter,
    /// Inline dispatch: callbacks running now, and the side lane for events that have no
    /// network task to run them (log lines, interface changes, anything raised inside a
    /// callback): those wait in the queue, and one runtime task at a time runs them in order.
    pub(crate) inline: Arc<InlineCalls>,
    /// This, for tasks the context spawns for itself (the inline side lane).
    me: Weak<Shared>,
}

impl Shared {
    pub(crate) fn new(
        id: u64,
        dispatch: Dispatch,
        queue: EventQueue<Event>,
        host: Arc<dyn Host>,
    ) -> Arc<Shared> {
        Arc::new_cyclic(|me| Shared {
            id,
            dispatch,
            queue,
            host,
            options: Mutex::new(Options::default()),
            peers: Peers::new(),
            runtime: OnceLock::new(),
            registry: Registry::default(),
            backlog: Backlog::default(),
            accept_errors: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            tasks: TaskCounter::default(),
            inline: Arc::default(),
            me: me.clone(),
        })
    }

    /// The network runtime. Only called once it runs (everything that needs it is started
    /// after `set_runtime`).
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        self.runtime
            .get()
            .expect("the network runtime is started before anything uses it")
    }

    /// The network runtime started: tasks may be spawned on it from now on.
    pub(crate) fn set_runtime(&self, runtime: tokio::runtime::Handle) {
        self.peers.set_runtime(runtime.clone());
        let _ = self.runtime.set(runtime);
        // Lines logged before the network started.
        if self.dispatch == Dispatch::Inline && !self.queue.is_empty() {
            self.schedule_lane();
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// From now on the context is going away: nothing new starts.
    pub(crate) fn set_closing(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.is_closing() {
            Err(Error::invalid_state("the context is being freed"))
        } else {
            Ok(())
        }
    }

    /// Counts a task as live until the guard drops (even when the task is aborted).
    pub(crate) fn task_guard(self: &Arc<Self>) -> TaskGuard {
        *self.tasks.live.lock() += 1;
        TaskGuard(self.clone())
    }

    /// Waits up to `timeout` for every task to end; true when none is left.
    pub(crate) fn wait_tasks_idle(&self, timeout: Duration) -> bool {
        self.tasks.wait_idle(timeout)
    }

    /// The identity of a new connection's peer, or a wait for it of at most
    /// `XT_OPT_PEER_LOOKUP_MS`.
    pub(crate) fn identify_peer(&self, peer: SocketAddr) -> Identify {
        self.peers
            .identify(peer, || self.options.lock().peer_lookup)
    }

    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        self.emit(Event::log(level, message));
    }

    /// Hands `event` to the host: queued for the dispatcher (thread and poll dispatch), or run
    /// now on this thread (inline dispatch).
    pub(crate) fn emit(&self, event: Event) {
        if self.dispatch == Dispatch::Inline {
            self.run_inline(event);
        } else {
            self.queue.push(event);
        }
    }

    /// Whether an event raised now runs its callbacks on this thread, at once: inline
    /// dispatch, outside any callback. Such data needs no flow-control accounting.
    pub(crate) fn runs_here(&self) -> bool {
        self.dispatch == Dispatch::Inline && crate::dispatch::dispatching_context() == 0
    }

    /// Inline dispatch: runs the callbacks of `event` here, on the network thread that raised
    /// it. The event's own task raised it, so one connection's events stay in order and never
    /// overlap. Events without such a task, or raised from inside a callback (which must not
    /// nest), go to the side lane.
    fn run_inline(&self, event: Event) {
        let side = matches!(event, Event::Log { .. } | Event::InterfaceChanged { .. })
            || !self.runs_here();
        if side {
            self.queue.push(event);
            self.schedule_lane();
            return;
        }
        self.inline.run(|| {
            self.run_here(&mut std::iter::once(event), false);
        });
    }

    /// Runs `events`' callbacks on this thread; `counted`: their data was counted for flow
    /// control when queued. Returns how many host callbacks ran.
    fn run_here(&self, events: &mut dyn Iterator<Item = Event>, counted: bool) -> usize {
        events::run_batch(
            self.id,
            &*self.host,
            &|| self.is_closing(),
            &self.backlog,
            events,
            counted,
        )
    }

    /// Makes sure a task runs the side lane (inline dispatch). Before the network runs, the
    /// events wait for it (or for the context's end).
    fn schedule_lane(&self) {
        let Some(runtime) = self.runtime.get() else {
            return;
        };
        let Some(me) = self.me.upgrade() else { return };
        if !self.inline.claim_lane() {
            return;
        }
        runtime.spawn(async move { me.run_lane() });
    }

    /// Runs what waits in the side lane, in order, then stops (scheduled again by the next).
    fn run_lane(&self) {
        let mut batch = VecDeque::new();
        loop {
            self.inline.run(|| {
                if self.queue.take(Some(Duration::ZERO), false, &mut batch) {
                    self.run_here(&mut batch.drain(..), true);
                }
            });
            self.inline.release_lane();
            // An event queued after the take but before the release found the lane claimed.
            if self.queue.is_empty() || self.inline.is_over() || !self.inline.claim_lane() {
                return;
            }
        }
    }

    /// Inline dispatch, freeing the context: once no callback runs or will run (from the
    /// network threads), runs the side lane's last events on this thread.
    pub(crate) fn end_inline(&self) {
        self.inline.end();
        let mut batch = VecDeque::new();
        while self.queue.take(Some(Duration::ZERO), false, &mut batch) {
            self.run_here(&mut batch.drain(..), true);
        }
    }

    /// Runs one batch of waiting events on this thread (waiting up to `timeout` for one; None:
    /// for ever); returns how many were handled, None when none came.
    pub(crate) fn run_events(
        &self,
        timeout: Option<Duration>,
        batch: &mut VecDeque<Event>,
    ) -> Option<usize> {
        if !self
            .queue
            .take(timeout, self.dispatch == Dispatch::Thread, batch)
        {
            return None;
        }
        Some(self.run_here(&mut batch.drain(..), true))
    }
}

/// Live runtime tasks, so shutting down can wait until each has pushed its final event.
#[derive(Default)]
struct TaskCounter {
    live: Mutex<usize>,
    idle: Condvar,
}

impl TaskCounter {
    fn wait_idle(&self, timeout: Duration) -> bool {
        let mut live = self.live.lock();
        if *live > 0 {
            self.idle.wait_for(&mut live, timeout);
        }
        *live == 0
    }
}

/// Held by a runtime task for its whole life; also its handle on the context.
pub(crate) struct TaskGuard(Arc<Shared>);

impl TaskGuard {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.0
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let mut live = self.0.tasks.live.lock();
        *live -= 1;
        if *live == 0 {
            self.0.tasks.idle.notify_all();
        }
    }
}
