//! A gate for the callbacks of one listener: a stop closes it and then waits for the callbacks
//! that are running, so that no callback of that listener runs once the stop has returned.
//!
//! With inline dispatch several callbacks of one listener (an HTTP listener's requests on
//! different connections) may run at once on different threads, so the gate counts them. A
//! stop called from one of the listener's own callbacks does not wait for that one (it
//! finishes after the stop returns; none comes after it), only for the others.

use parking_lot::{Condvar, Mutex};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) struct CallbackGate {
    ctx_id: u64,
    closed: AtomicBool,
    /// Callbacks of this gate running now.
    running: Mutex<usize>,
    finished: Condvar,
}

thread_local! {
    /// The gate whose pass this thread holds (its address; 0: none). Callbacks do not nest, so
    /// a thread holds at most one.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// While held, a callback of the gate's listener may run; dropping it lets a stop go on.
pub(crate) struct Pass<'a>(&'a CallbackGate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        HELD.with(|h| h.set(0));
        *self.0.running.lock() -= 1;
        self.0.finished.notify_all();
    }
}

impl CallbackGate {
    pub(crate) fn new(ctx_id: u64) -> Self {
        CallbackGate {
            ctx_id,
            closed: AtomicBool::new(false),
            running: Mutex::new(0),
            finished: Condvar::new(),
        }
    }

    pub(crate) fn ctx_id(&self) -> u64 {
        self.ctx_id
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn address(&self) -> usize {
        self as *const CallbackGate as usize
    }

    /// Enters for a callback (dispatcher side); None once closed.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        *self.running.lock() += 1;
        // SeqCst with `close_and_wait`: either the stop sees this callback counted, or this
        // sees the gate closed.
        if self.is_closed() {
            *self.running.lock() -= 1;
            self.finished.notify_all();
            return None;
        }
        HELD.with(|h| h.set(self.address()));
        Some(Pass(self))
    }

    /// Closes the gate and waits until no callback of it runs, but the one calling this.
    pub(crate) fn close_and_wait(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mine = usize::from(HELD.with(|h| h.get()) == self.address());
        let mut running = self.running.lock();
        while *running > mine {
            self.finished.wait(&mut running);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_stop_waits_for_callbacks_on_other_threads_but_not_its_own() {
        let gate = Arc::new(CallbackGate::new(1));
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let other = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let _pass = gate.enter().expect("open");
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        };
        entered_rx.recv().unwrap();
        let mine = gate.enter().expect("open");
        let stopper = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                // Holds no pass: waits for both.
                gate.close_and_wait();
            })
        };
        std::thread::sleep(Duration::from_millis(30));
        assert!(gate.is_closed());
        assert!(gate.enter().is_none(), "closed: no new callback");
        assert!(!stopper.is_finished(), "a callback still runs");
        release_tx.send(()).unwrap();
        other.join().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(!stopper.is_finished(), "this thread's callback still runs");
        // From inside this thread's own callback, a stop waits for nobody else now.
        gate.close_and_wait();
        drop(mine);
        stopper.join().unwrap();
    }
}
