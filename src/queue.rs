//! The event queue between the network (runtime tasks) and whoever runs the host's callbacks:
//! FIFO, many producers, one consumer at a time, taken in whole batches. With a wakeup
//! descriptor (poll dispatch) the descriptor is readable exactly while events wait.
//!
//! Generic over what it carries: it knows nothing of events, connections or protocols.

use crate::sys::wake_fd::WakeFd;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The queue: FIFO, many producers, one consumer at a time.
pub(crate) struct EventQueue<T> {
    state: Mutex<QueueState<T>>,
    ready: Condvar,
    wake_fd: Option<WakeFd>,
    /// Whether events wait, readable without the lock (for the dispatcher's spin).
    nonempty: AtomicBool,
}

/// How long the thread dispatcher keeps looking for events before it sleeps. A request/response
/// peer usually sends its next message within this, and finding it without a sleep/wake pair
/// saves both threads a system call and a context switch (measured: see BENCHMARKS.md).
const SPIN: Duration = Duration::from_micros(50);

struct QueueState<T> {
    events: VecDeque<T>,
    /// Dispatchers blocked in `take`.
    sleepers: usize,
    /// Whether the wakeup fd is readable now.
    signaled: bool,
    /// No more waiting: `take` returns what is left, then nothing.
    closed: bool,
}

impl<T> EventQueue<T> {
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

    pub(crate) fn push(&self, event: T) {
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
        batch: &mut VecDeque<T>,
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

    /// Whether no event waits (a look without the lock).
    pub(crate) fn is_empty(&self) -> bool {
        !self.nonempty.load(Ordering::Acquire)
    }

    pub(crate) fn wake_fd(&self) -> Option<i32> {
        self.wake_fd.as_ref().map(WakeFd::read_fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::wake_fd::readable;
    use std::sync::Arc;

    #[test]
    fn wake_fd_is_readable_exactly_while_events_wait() {
        let q = EventQueue::new(true).unwrap();
        let fd = q.wake_fd().unwrap();
        assert!(!readable(fd));
        q.push("a");
        q.push("b");
        assert!(readable(fd));
        let mut batch = VecDeque::new();
        assert!(q.take(Some(Duration::ZERO), false, &mut batch));
        assert_eq!(batch, ["a", "b"]);
        assert!(!readable(fd));
        batch.clear();
        assert!(!q.take(Some(Duration::from_millis(10)), true, &mut batch));
        q.close();
        assert!(!q.take(None, false, &mut batch));
    }

    #[test]
    fn without_a_wake_fd_there_is_none() {
        let q: EventQueue<u32> = EventQueue::new(false).unwrap();
        assert_eq!(q.wake_fd(), None);
    }

    #[test]
    fn a_batch_is_everything_waiting_in_push_order() {
        let q = EventQueue::new(false).unwrap();
        for i in 0..100 {
            q.push(i);
        }
        let mut batch = VecDeque::new();
        assert!(q.take(None, false, &mut batch));
        assert_eq!(
            batch.iter().copied().collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>()
        );
        batch.clear();
        assert!(!q.take(Some(Duration::ZERO), false, &mut batch));
    }

    #[test]
    fn a_sleeping_consumer_is_woken_by_a_push_and_by_close() {
        let q = Arc::new(EventQueue::new(false).unwrap());
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut batch = VecDeque::new();
                let first = q.take(None, true, &mut batch);
                let got = batch.pop_front();
                // Closed and empty: take stops waiting.
                let second = q.take(None, false, &mut batch);
                (first, got, second)
            })
        };
        std::thread::sleep(Duration::from_millis(30));
        q.push(7);
        std::thread::sleep(Duration::from_millis(30));
        q.close();
        assert_eq!(consumer.join().unwrap(), (true, Some(7), false));
    }

    #[test]
    fn events_left_at_close_are_still_taken() {
        let q = EventQueue::new(false).unwrap();
        q.push(1);
        q.close();
        let mut batch = VecDeque::new();
        assert!(q.take(None, false, &mut batch));
        assert_eq!(batch, [1]);
        batch.clear();
        assert!(!q.take(None, false, &mut batch));
    }
}
