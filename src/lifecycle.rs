//! The life of a listener, the same for every kind: start its task and register it (and undo
//! that when the context began closing meanwhile), stop it (its socket is closed when the stop
//! returns, then what it owns is ended: a TCP listener's connections, a UDP or HTTP listener's
//! callbacks and connections), and stop them all when the context goes away.

use crate::error::Error;
use crate::events::LogLevel;
use crate::registry::{Listener, ListenerKind, ListenerState, ListenerStop, ListenerStopped};
use crate::shared::Shared;
use crate::tcp::CloseReason;
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a listener logs failed accepts (with how many there were since the last line).
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(1);
/// How long an accept loop backs off when the system is out of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The failed accepts of one listener: counted for the context (`XT_STAT_ACCEPT_ERRORS`) and
/// logged at most once a second, so a listener out of descriptors neither spins nor floods.
pub(crate) struct AcceptErrors {
    what: String,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    /// For the listener `what` ("TCP listener 3 on port 9000").
    pub(crate) fn new(what: String) -> AcceptErrors {
        AcceptErrors {
            what,
            last_log: None,
            unlogged: 0,
        }
    }

    /// An accept failed with `e`: count it, log it (rate-limited), and back off when the
    /// system is out of descriptors or memory.
    pub(crate) async fn failed(&mut self, shared: &Shared, e: &std::io::Error) {
        shared.accept_errors.fetch_add(1, Ordering::Relaxed);
        self.unlogged += 1;
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= ACCEPT_LOG_EVERY)
        {
            let err = Error::io(&format!("{}: accept failed", self.what), e);
            let count = std::mem::take(&mut self.unlogged);
            shared.log(
                LogLevel::Warning,
                &format!("{err}; {count} failed since the last report"),
            );
            self.last_log = Some(Instant::now());
        }
        let exhausted = matches!(e.raw_os_error(), Some(c) if c == libc::EMFILE
            || c == libc::ENFILE || c == libc::ENOBUFS || c == libc::ENOMEM);
        if exhausted {
            tokio::time::sleep(ACCEPT_BACKOFF).await;
        }
    }
}

/// Runs `task` (the listener's accept or read loop, which ends when its [`ListenerStopped`]
/// says so and closes its socket before it drops that) and registers listener `id`; `detail`
/// goes into the log line.
pub(crate) fn start<F>(
    shared: &Arc<Shared>,
    id: u32,
    port: u16,
    state: ListenerState,
    detail: &str,
    task: impl FnOnce(Arc<Shared>, ListenerStopped) -> F,
) -> Result<u32, Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    let kind = state.kind();
    let (stopping, stopped) = ListenerStop::new();
    let guard = shared.task_guard();
    let running = task(shared.clone(), stopped);
    shared.runtime().spawn(async move {
        // A panic (a bug in xtnet) ends this listener's task: its socket closes, the host hears
        // of it in the log, and everything else goes on.
        if let Err(payload) = AssertUnwindSafe(running).catch_unwind().await {
            guard.shared().log(
                LogLevel::Error,
                &format!(
                    "{} listener {id}: internal error, it no longer listens: {}",
                    kind.protocol(),
                    crate::panics::message(&*payload)
                ),
            );
        }
        drop(guard);
    });
    shared.registry.add_listener(id, port, stopping, state);
    shared.log(
        LogLevel::Info,
        &format!(
            "{} listener {id} listening on port {port}{detail}",
            kind.protocol()
        ),
    );
    // Freeing began while this started: it may have missed this listener, so stop it here.
    if shared.is_closing() {
        let _ = stop(shared, id, kind);
        return Err(Error::invalid_state("the context is being freed"));
    }
    Ok(id)
}

/// Stops listener `id` of `kind`: when this returns its socket is closed and what it owns is
/// ended (see [`end`]).
pub(crate) fn stop(shared: &Shared, id: u32, kind: ListenerKind) -> Result<(), Error> {
    let listener = shared.registry.take_listener(id, kind)?;
    let port = listener.port;
    end(shared, id, listener, CloseReason::ListenerStopped);
    shared.log(
        LogLevel::Info,
        &format!("{} listener {id} on port {port} stopped", kind.protocol()),
    );
    Ok(())
}

/// Stops every listener (the context is going away).
pub(crate) fn stop_all(shared: &Shared) {
    for (id, listener) in shared.registry.take_all_listeners() {
        end(shared, id, listener, CloseReason::ContextFreed);
    }
}

/// Closes the socket (waiting for the task to drop it), then ends what the listener owns. For
/// UDP and HTTP that also means: none of its callbacks runs once this returns (unless called
/// from one of them, which then finishes).
fn end(shared: &Shared, id: u32, listener: Listener, why: CloseReason) {
    // From an inline callback this waits on a network thread for a task of the same runtime.
    crate::dispatch::blocking(|| listener.stop.stop_and_wait());
    match listener.state {
        ListenerState::Tcp(_) => {
            for conn in shared.registry.connections(Some(id)) {
                conn.request_close(why);
            }
        }
        ListenerState::Udp(u) => u.close(),
        ListenerState::Http(h) => {
            h.close();
            // Its WebSockets go too.
            for conn in shared.registry.connections(Some(id)) {
                conn.request_close(why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Dispatch;
    use crate::error;
    use crate::events::Host;
    use crate::queue::EventQueue;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    struct NoHost;
    impl Host for NoHost {}

    fn shared(runtime: &tokio::runtime::Runtime) -> Arc<Shared> {
        let shared = Shared::new(
            1,
            Dispatch::Poll,
            EventQueue::new(false).unwrap(),
            Arc::new(NoHost),
        );
        shared.set_runtime(runtime.handle().clone());
        shared
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A listener task that holds a "socket" until told to stop, then drops it after a while,
    /// so a stop that did not wait would see it still open.
    fn fake_task(
        socket_open: Arc<AtomicBool>,
    ) -> impl FnOnce(Arc<Shared>, ListenerStopped) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    {
        move |_shared, mut stopped| {
            socket_open.store(true, Ordering::SeqCst);
            Box::pin(async move {
                let _ = (&mut stopped.stop).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                socket_open.store(false, Ordering::SeqCst);
                drop(stopped);
            })
        }
    }

    fn logs(shared: &Shared) -> Vec<String> {
        let mut batch = std::collections::VecDeque::new();
        shared.queue.take(Some(Duration::ZERO), false, &mut batch);
        batch
            .into_iter()
            .filter_map(|e| match e {
                crate::events::Event::Log { message, .. } => {
                    Some(message.to_string_lossy().into_owned())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn start_registers_and_logs_stop_waits_for_the_socket_then_removes() {
        let rt = runtime();
        let shared = shared(&rt);
        let open = Arc::new(AtomicBool::new(false));
        let id = shared.registry.new_listener_id().unwrap();
        let started = start(
            &shared,
            id,
            4242,
            ListenerState::Tcp(None),
            " (x)",
            fake_task(open.clone()),
        );
        assert_eq!(started.unwrap(), id);
        assert_eq!(shared.registry.listener_port(id).unwrap(), 4242);
        assert!(open.load(Ordering::SeqCst));
        assert_eq!(
            logs(&shared),
            [format!("TCP listener {id} listening on port 4242 (x)")]
        );

        // The wrong kind is refused and changes nothing.
        let wrong = stop(&shared, id, ListenerKind::Udp).unwrap_err();
        assert_eq!(wrong.code, error::INVALID_STATE);
        assert!(wrong.message.contains("TCP listener"), "{}", wrong.message);
        assert!(open.load(Ordering::SeqCst));

        stop(&shared, id, ListenerKind::Tcp).unwrap();
        assert!(
            !open.load(Ordering::SeqCst),
            "the socket is closed when stop returns"
        );
        assert!(shared.registry.listener_port(id).is_err());
        assert_eq!(
            logs(&shared),
            [format!("TCP listener {id} on port 4242 stopped")]
        );
        // Stopping again: the id is gone.
        assert_eq!(
            stop(&shared, id, ListenerKind::Tcp).unwrap_err().code,
            error::INVALID_STATE
        );
        assert!(
            shared.wait_tasks_idle(Duration::from_secs(2)),
            "the task ended"
        );
    }

    #[test]
    fn a_listener_started_while_the_context_closes_is_stopped_again() {
        let rt = runtime();
        let shared = shared(&rt);
        shared.set_closing();
        let open = Arc::new(AtomicBool::new(false));
        let id = shared.registry.new_listener_id().unwrap();
        let err = start(
            &shared,
            id,
            1,
            ListenerState::Tcp(None),
            "",
            fake_task(open.clone()),
        )
        .unwrap_err();
        assert_eq!(err.code, error::INVALID_STATE);
        assert!(!open.load(Ordering::SeqCst), "its socket was closed");
        assert_eq!(shared.registry.listener_count(), 0);
        assert!(shared.wait_tasks_idle(Duration::from_secs(2)));
    }

    #[test]
    fn stop_all_stops_every_listener() {
        let rt = runtime();
        let shared = shared(&rt);
        let sockets: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::default()).collect();
        for (port, open) in sockets.iter().enumerate() {
            let id = shared.registry.new_listener_id().unwrap();
            start(
                &shared,
                id,
                port as u16,
                ListenerState::Tcp(None),
                "",
                fake_task(open.clone()),
            )
            .unwrap();
        }
        assert_eq!(shared.registry.listener_count(), 3);
        stop_all(&shared);
        assert_eq!(shared.registry.listener_count(), 0);
        assert!(sockets.iter().all(|o| !o.load(Ordering::SeqCst)));
        assert!(shared.wait_tasks_idle(Duration::from_secs(2)));
    }
}
