//! Drives connection tasks: a few long-lived runtime tasks ("shards", one per runtime thread),
//! each polling many connections, like an event loop per thread.
//!
//! Why not one tokio task per connection: tokio allocates each task cache-line aligned (128
//! bytes on x86-64), and the system allocator pays for that alignment with unusable slack, so
//! an idle connection costs noticeably more. A node in a shard's set is a plain allocation of
//! the connection's small state machine (see BENCHMARKS.md for the measured difference).

use super::connection::ConnTask;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

pub(crate) struct Drivers {
    shards: Vec<mpsc::UnboundedSender<ConnTask>>,
    next: AtomicUsize,
}

impl Drivers {
    /// Starts `count` shards on `runtime`.
    pub(crate) fn start(runtime: &tokio::runtime::Handle, count: usize) -> Drivers {
        let shards = (0..count.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                runtime.spawn(shard(rx));
                tx
            })
            .collect();
        Drivers {
            shards,
            next: AtomicUsize::new(0),
        }
    }

    /// Hands a connection to the next shard (round robin).
    pub(crate) fn spawn(&self, task: ConnTask) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        // A send only fails once the runtime is shutting down; the task is dropped then,
        // which is what shutting down does to every task.
        let _ = self.shards[i].send(task);
    }
}

async fn shard(mut incoming: mpsc::UnboundedReceiver<ConnTask>) {
    let mut connections = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            task = incoming.recv() => match task {
                Some(task) => connections.push(task),
                None => break,
            },
            Some(()) = connections.next(), if !connections.is_empty() => {}
        }
    }
    while connections.next().await.is_some() {}
}
