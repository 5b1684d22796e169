//! Drives connection tasks: a few long-lived runtime tasks ("shards", one per runtime thread),
//! each polling many connections, like an event loop per thread.
//!
//! Why not one tokio task per connection: tokio allocates each task cache-line aligned (128
//! bytes on x86-64), and the system allocator pays for that alignment with unusable slack, so
//! an idle connection costs noticeably more. A node in a shard's set is a plain allocation of
//! the connection's small state machine (see BENCHMARKS.md for the measured difference).
//! Handing a connection to a shard allocates nothing either (the inbox vector is reused), so a
//! burst of connections leaves no trail of freed blocks between the long-lived ones.

use super::task::ConnTask;
use atomic_waker::AtomicWaker;
use futures_util::stream::{FuturesUnordered, StreamExt};
use parking_lot::Mutex;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

#[derive(Default)]
struct Inbox {
    tasks: Mutex<Vec<ConnTask>>,
    waker: AtomicWaker,
}

pub(crate) struct Drivers {
    shards: Vec<Arc<Inbox>>,
    next: AtomicUsize,
}

impl Drivers {
    /// Starts `count` shards on `runtime`. They live as long as the runtime.
    pub(crate) fn start(runtime: &tokio::runtime::Handle, count: usize) -> Drivers {
        let shards = (0..count.max(1))
            .map(|_| {
                let inbox = Arc::new(Inbox::default());
                runtime.spawn(shard(inbox.clone()));
                inbox
            })
            .collect();
        Drivers {
            shards,
            next: AtomicUsize::new(0),
        }
    }

    /// Hands a connection to the next shard (round robin).
    pub(crate) fn spawn(&self, task: ConnTask) {
        let inbox = &self.shards[self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len()];
        inbox.tasks.lock().push(task);
        inbox.waker.wake();
    }
}

async fn shard(inbox: Arc<Inbox>) {
    let mut connections = FuturesUnordered::new();
    let mut arrived = Vec::new();
    poll_fn(|cx| {
        inbox.waker.register(cx.waker());
        std::mem::swap(&mut arrived, &mut *inbox.tasks.lock());
        for task in arrived.drain(..) {
            connections.push(task);
        }
        // Ready(None) once no connection is left; Pending when none can progress now.
        while let Poll::Ready(Some(())) = connections.poll_next_unpin(cx) {}
        Poll::<()>::Pending
    })
    .await
}
