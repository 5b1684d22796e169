//! A gate for the callbacks of one listener: a stop closes it and then waits for a callback
//! that is running, so that no callback of that listener runs once the stop has returned.
//!
//! The wait is skipped on the thread that is dispatching (a stop called from the listener's
//! own callback lets that callback finish; none comes after it).

use crate::dispatch;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) struct CallbackGate {
    ctx_id: u64,
    closed: AtomicBool,
    running: Mutex<bool>,
    finished: Condvar,
}

/// While held, a callback of the gate's listener may run; dropping it lets a stop go on.
pub(crate) struct Pass<'a>(&'a CallbackGate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        *self.0.running.lock() = false;
        self.0.finished.notify_all();
    }
}

impl CallbackGate {
    pub(crate) fn new(ctx_id: u64) -> Self {
        CallbackGate {
            ctx_id,
            closed: AtomicBool::new(false),
            running: Mutex::new(false),
            finished: Condvar::new(),
        }
    }

    pub(crate) fn ctx_id(&self) -> u64 {
        self.ctx_id
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Enters for a callback (dispatcher side); None once closed.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        *self.running.lock() = true;
        if self.is_closed() {
            *self.running.lock() = false;
            self.finished.notify_all();
            return None;
        }
        Some(Pass(self))
    }

    /// Closes the gate and waits until no callback of it runs (unless called from one).
    pub(crate) fn close_and_wait(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if dispatch::dispatching_context() == self.ctx_id {
            return;
        }
        let mut running = self.running.lock();
        while *running {
            self.finished.wait(&mut running);
        }
    }
}
