//! What every task and call of one context shares ([`Shared`]), and the count of its live
//! runtime tasks ([`TaskGuard`]) that lets freeing a context wait until each has pushed its
//! final event. The protocols reach their context only through this; the facade that starts
//! and stops them is `context.rs`, above them.

use crate::dispatch::Dispatch;
use crate::error::Error;
use crate::events::{self, Event, Host, LogLevel};
use crate::options::Options;
use crate::peer::{Identify, Peers};
use crate::queue::EventQueue;
use crate::registry::Registry;
use crate::tcp::Backlog;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What every task and call of one context shares.
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) dispatch: Dispatch,
    pub(crate) queue: EventQueue<Event>,
    pub(crate) host: Arc<dyn Host>,
    pub(crate) options: Mutex<Options>,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) registry: Registry,
    pub(crate) backlog: Backlog,
    /// Peer names and MAC addresses.
    pub(crate) peers: Peers,
    /// Accepts that failed on any listener (`XT_STAT_ACCEPT_ERRORS`).
    pub(crate) accept_errors: AtomicU64,
    closing: AtomicBool,
    pub(crate) polling: AtomicBool,
    tasks: TaskCounter,
}

impl Shared {
    pub(crate) fn new(
        id: u64,
        dispatch: Dispatch,
        queue: EventQueue<Event>,
        host: Arc<dyn Host>,
        runtime: tokio::runtime::Handle,
    ) -> Shared {
        Shared {
            id,
            dispatch,
            queue,
            host,
            options: Mutex::new(Options::default()),
            peers: Peers::new(runtime.clone()),
            runtime,
            registry: Registry::default(),
            backlog: Backlog::default(),
            accept_errors: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            tasks: TaskCounter::default(),
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
        self.queue.push(Event::log(level, message));
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
        Some(events::run_batch(
            self.id,
            &*self.host,
            &|| self.is_closing(),
            &self.backlog,
            batch,
        ))
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
