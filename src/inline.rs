//! Inline dispatch's bookkeeping, which knows no protocol: how many callbacks run now on the
//! network threads (so freeing the context can wait until none does), whether they may still
//! run, the flag that keeps one task at a time on the side lane, and the watch that keeps the
//! runtime listening while a callback blocks.
//!
//! Why the watch: tokio's workers are built for tasks that return quickly. One worker at a time
//! waits on the I/O driver, and only while idle; a worker that leaves it to run a task wakes a
//! sibling only when it found more than one task. So when a callback blocks its worker and the
//! other workers sleep, nobody reads the sockets, and connections on other threads stall too.
//! The watch notices (callbacks are running and none started or ended for a tick) and spawns an
//! empty task, which wakes a sleeping worker; that one runs it, takes the driver and steals
//! what waits in the blocked worker's queue. (A task in the blocked worker's LIFO slot cannot
//! be stolen: tokio-rs/tokio#4941.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long callbacks may run with none starting or ending before a sleeping worker is woken.
const WATCH_TICK: Duration = Duration::from_millis(10);

/// One started callback batch in `InlineCalls::calls` (the high half counts starts).
const STARTED: u64 = 1 << 32;
const RUNNING_MASK: u64 = STARTED - 1;

#[derive(Default)]
pub(crate) struct InlineCalls {
    /// Low 32 bits: batches running now; high 32 bits: batches started (wrapping).
    calls: AtomicU64,
    /// The context is freed: no callback runs from now on.
    over: AtomicBool,
    /// A task to run the side lane is scheduled.
    lane_scheduled: AtomicBool,
}

impl InlineCalls {
    /// Runs `callbacks` unless the context is freed, counted so freeing can wait for it.
    pub(crate) fn run(&self, callbacks: impl FnOnce()) {
        self.calls.fetch_add(STARTED + 1, Ordering::SeqCst);
        // SeqCst with `end`: either it sees this batch counted, or this sees the context over
        // (and the callbacks are dropped: nobody may be called any more).
        if !self.over.load(Ordering::SeqCst) {
            callbacks();
        }
        self.calls.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn is_over(&self) -> bool {
        self.over.load(Ordering::SeqCst)
    }

    /// From now on no callback starts; returns once none runs.
    pub(crate) fn end(&self) {
        self.over.store(true, Ordering::SeqCst);
        while self.calls.load(Ordering::SeqCst) & RUNNING_MASK > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Claims the side lane; false when a task already runs it (or will).
    pub(crate) fn claim_lane(&self) -> bool {
        !self.lane_scheduled.swap(true, Ordering::AcqRel)
    }

    /// The lane's task stops.
    pub(crate) fn release_lane(&self) {
        self.lane_scheduled.store(false, Ordering::SeqCst);
    }

    /// Starts the watch (see the module's text) for `runtime`; it ends with the context.
    pub(crate) fn watch(
        self: &Arc<Self>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let calls = self.clone();
        std::thread::Builder::new()
            .name("xtnet-watch".into())
            .spawn(move || {
                let mut last = 0;
                while !calls.is_over() {
                    std::thread::sleep(WATCH_TICK);
                    let now = calls.calls.load(Ordering::SeqCst);
                    if now & RUNNING_MASK > 0 && now == last {
                        runtime.spawn(async {});
                    }
                    last = now;
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_waits_for_running_callbacks_and_none_start_after_it() {
        let calls = Arc::new(InlineCalls::default());
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let running = {
            let calls = calls.clone();
            std::thread::spawn(move || {
                calls.run(|| {
                    entered_tx.send(()).unwrap();
                    std::thread::sleep(Duration::from_millis(50));
                })
            })
        };
        entered_rx.recv().unwrap();
        let started = std::time::Instant::now();
        calls.end();
        assert!(started.elapsed() >= Duration::from_millis(30), "end waited");
        running.join().unwrap();
        let mut ran = false;
        calls.run(|| ran = true);
        assert!(!ran, "nothing runs once over");
    }

    #[test]
    fn the_lane_is_claimed_once_until_released() {
        let calls = InlineCalls::default();
        assert!(calls.claim_lane());
        assert!(!calls.claim_lane());
        calls.release_lane();
        assert!(calls.claim_lane());
    }
}
