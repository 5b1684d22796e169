//! The dispatching thread's state: whether this thread is running callbacks of a context now,
//! which connection (or listener) the running callback is about, and what the callbacks of
//! the current batch wrote to, so it is flushed when the batch ends. In inline dispatch every
//! network thread is a dispatching thread in turn; the state is per thread either way.
//!
//! Write coalescing: data a callback sends is not written at once but when its batch ends, so
//! replies to many messages leave in one system call per connection. Whatever is written to
//! says so with [`flush_after_batch`]; this module knows it only as a [`Writer`].

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// How callbacks are run (`XtDispatch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// On one library thread, one at a time.
    Thread,
    /// Inside `poll`, on the host's thread.
    Poll,
    /// On the network thread that did the I/O: one connection's (or listener's) callbacks in
    /// order, different connections' at the same time on different threads.
    Inline,
}

/// Something callbacks write to (a connection, a UDP listener): flushed when their batch ends.
pub(crate) trait Writer: Send + Sync + 'static {
    /// Writes what the batch's callbacks queued: on this thread when `here` (the batch wrote to
    /// few writers), else by handing it to the writer's own task. Returns a line for the host's
    /// log when a send failed that no callback could be told about.
    fn flush_batch(&self, here: bool) -> Option<String>;
    /// The writer itself, to recognise its concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// Flush after this many writers even inside a batch, so early replies are not held back.
const FLUSH_EVERY: usize = 64;
/// Most writers a batch's end writes to from the dispatching thread itself; past this the
/// writers' own tasks write, so the kernel's send work spreads over the network threads.
const WRITE_HERE_MAX: usize = 2;

/// This thread's dispatch state, in one thread-local: in a shared library every thread-local
/// access is a call (`__tls_get_addr`), and a send from a callback needs most of these.
struct ThreadState {
    /// The context whose callbacks this thread is running now (0: none).
    dispatching: Cell<u64>,
    /// What the running callback is about: sends to it skip the registry lookup.
    current: RefCell<Option<Arc<dyn Writer>>>,
    /// Writers written to by callbacks of the current batch.
    written: RefCell<Vec<Arc<dyn Writer>>>,
    /// This thread is one of a context's network threads (a runtime worker).
    network_thread: Cell<bool>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState {
            dispatching: Cell::new(0),
            current: RefCell::new(None),
            written: RefCell::new(Vec::new()),
            network_thread: Cell::new(false),
        }
    };
}

/// Marks this thread as a network thread (called as each runtime worker starts).
pub(crate) fn mark_network_thread() {
    STATE.with(|s| s.network_thread.set(true));
}

/// Runs `wait`, which blocks until some runtime task has done something. On a network thread
/// (an inline callback stopping a listener) the thread's other tasks are handed to another
/// thread meanwhile, so the task waited for can run even with one network thread.
pub(crate) fn blocking<R>(wait: impl FnOnce() -> R) -> R {
    if STATE.with(|s| s.network_thread.get()) {
        tokio::task::block_in_place(wait)
    } else {
        wait()
    }
}

/// The context whose callback is running on this thread, 0 if none.
pub(crate) fn dispatching_context() -> u64 {
    STATE.with(|s| s.dispatching.get())
}

/// A batch of callbacks of one context running on this thread. Ending it flushes what they
/// wrote and gives the thread back to the batch it interrupted, if any.
pub(crate) struct BatchScope {
    outer: u64,
}

impl BatchScope {
    pub(crate) fn begin(ctx_id: u64) -> BatchScope {
        BatchScope {
            outer: STATE.with(|s| s.dispatching.replace(ctx_id)),
        }
    }

    /// Between two callbacks: flushes early when many writers wait.
    pub(crate) fn between(&self, log: &mut dyn FnMut(String)) {
        if STATE.with(|s| s.written.borrow().len()) >= FLUSH_EVERY {
            flush(log);
        }
    }

    /// The batch is over: flushes what its callbacks wrote.
    pub(crate) fn end(self, log: &mut dyn FnMut(String)) {
        set_current(None);
        flush(log);
        STATE.with(|s| s.dispatching.set(self.outer));
    }
}

/// Sets what the next callback is about (None: nothing in particular).
pub(crate) fn set_current(current: Option<Arc<dyn Writer>>) {
    STATE.with(|s| *s.current.borrow_mut() = current);
}

/// Runs `f` on what the running callback of context `ctx_id` is about, if it is a `T`; `f`
/// also gets it as a shared [`Writer`] (to hand to [`flush_after_batch`]). None otherwise.
pub(crate) fn with_current<T: 'static, R>(
    ctx_id: u64,
    f: impl FnOnce(&T, &Arc<dyn Writer>) -> Option<R>,
) -> Option<R> {
    // Borrowed, not cloned: no reference-count traffic on the hot path. `f` (a send) never
    // calls back into the host, so nothing else borrows `current` meanwhile.
    STATE.with(|s| {
        if s.dispatching.get() != ctx_id {
            return None;
        }
        let current = s.current.borrow();
        let writer = current.as_ref()?;
        f(writer.as_any().downcast_ref::<T>()?, writer)
    })
}

/// Remembers `writer` to flush when the current batch of callbacks ends (the writer keeps its
/// own flag so it is remembered once per batch).
pub(crate) fn flush_after_batch(writer: Arc<dyn Writer>) {
    STATE.with(|s| s.written.borrow_mut().push(writer));
}

fn flush(log: &mut dyn FnMut(String)) {
    let mut written = STATE.with(|s| std::mem::take(&mut *s.written.borrow_mut()));
    let here = written.len() <= WRITE_HERE_MAX;
    for writer in written.drain(..) {
        if let Some(line) = writer.flush_batch(here) {
            log(line);
        }
    }
    // Give the (empty) vector back to reuse its allocation.
    STATE.with(|s| {
        let mut w = s.written.borrow_mut();
        if w.is_empty() {
            *w = written;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// Records its flushes.
    #[derive(Default)]
    struct Probe {
        flushes: Mutex<Vec<bool>>,
        fail: bool,
    }

    impl Writer for Probe {
        fn flush_batch(&self, here: bool) -> Option<String> {
            self.flushes.lock().push(here);
            self.fail.then(|| "send failed".to_owned())
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[test]
    fn a_batch_marks_the_thread_and_nested_batches_restore_it() {
        assert_eq!(dispatching_context(), 0);
        let outer = BatchScope::begin(7);
        assert_eq!(dispatching_context(), 7);
        let inner = BatchScope::begin(9);
        assert_eq!(dispatching_context(), 9);
        inner.end(&mut |_| {});
        assert_eq!(dispatching_context(), 7);
        outer.end(&mut |_| {});
        assert_eq!(dispatching_context(), 0);
    }

    #[test]
    fn writers_are_flushed_once_when_the_batch_ends_here_when_few() {
        let scope = BatchScope::begin(1);
        let a = Arc::new(Probe::default());
        flush_after_batch(a.clone());
        assert!(
            a.flushes.lock().is_empty(),
            "nothing is written inside the batch"
        );
        scope.end(&mut |_| {});
        assert_eq!(*a.flushes.lock(), [true]);
    }

    #[test]
    fn many_writers_are_handed_to_their_tasks_and_flushed_early() {
        let scope = BatchScope::begin(1);
        let probes: Vec<Arc<Probe>> = (0..FLUSH_EVERY).map(|_| Arc::default()).collect();
        for p in &probes {
            flush_after_batch(p.clone());
        }
        scope.between(&mut |_| {});
        for p in &probes {
            assert_eq!(*p.flushes.lock(), [false], "flushed early, by its own task");
        }
        let few = Arc::new(Probe::default());
        flush_after_batch(few.clone());
        scope.between(&mut |_| {});
        assert!(
            few.flushes.lock().is_empty(),
            "one waiting writer is not flushed early"
        );
        scope.end(&mut |_| {});
        assert_eq!(*few.flushes.lock(), [true]);
    }

    #[test]
    fn failures_come_back_as_log_lines() {
        let scope = BatchScope::begin(1);
        flush_after_batch(Arc::new(Probe {
            fail: true,
            ..Probe::default()
        }));
        let mut lines = Vec::new();
        scope.end(&mut |l| lines.push(l));
        assert_eq!(lines, ["send failed"]);
    }

    #[test]
    fn the_current_subject_is_found_only_by_its_context_and_type() {
        let scope = BatchScope::begin(3);
        set_current(Some(Arc::new(Probe::default())));
        assert_eq!(with_current(3, |_: &Probe, _| Some(1)), Some(1));
        assert_eq!(
            with_current(4, |_: &Probe, _| Some(1)),
            None,
            "other context"
        );
        assert_eq!(with_current(3, |_: &String, _| Some(1)), None, "other type");
        scope.end(&mut |_| {});
        assert_eq!(with_current(3, |_: &Probe, _| Some(1)), None, "batch over");
    }
}
