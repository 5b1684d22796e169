//! An HTTP listener as every thread sees it: its limits, its TLS acceptor (HTTPS), the gate its
//! callbacks pass, and the count of its live connections, so a stop can close them and wait until they are gone.

use super::response::DeferredReplies;
use crate::dispatch;
use crate::gate::CallbackGate;
use parking_lot::{Condvar, Mutex};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

/// How long a stop waits for its connections to finish the responses they are writing.
pub(super) const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The limits of one listener, taken from the options when it starts.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_header_bytes: usize,
    pub(super) max_body_bytes: u64,
    pub(super) header_timeout: Duration,
    /// How long a deferred request waits for `xt_http_reply` before it gets 504.
    pub(super) defer_timeout: Duration,
}

pub(crate) struct HttpListener {
    pub(crate) id: u32,
    pub(crate) port: u16,
    pub(super) limits: Limits,
    /// An HTTPS listener's acceptor (its handshakes take at most the request timeout).
    pub(super) tls: Option<TlsAcceptor>,
    /// The fingerprint of the certificate an HTTPS listener presents.
    pub(crate) fingerprint: Option<Arc<CString>>,
    /// Closed by a stop: no `page_request` of this listener after it returns.
    pub(crate) gate: CallbackGate,
    /// Its requests that wait for an answer from `xt_http_reply`.
    pub(crate) deferred: Arc<DeferredReplies>,
    closing: AtomicBool,
    closed: Notify,
    /// Live connections, so a stop can wait for them to close.
    live: Mutex<usize>,
    drained: Condvar,
}

impl HttpListener {
    pub(super) fn new(
        id: u32,
        port: u16,
        ctx_id: u64,
        limits: Limits,
        tls: Option<(Arc<rustls::ServerConfig>, CString)>,
    ) -> HttpListener {
        let (tls, fingerprint) = match tls {
            Some((config, fingerprint)) => {
                (Some(TlsAcceptor::from(config)), Some(Arc::new(fingerprint)))
            }
            None => (None, None),
        };
        HttpListener {
            id,
            port,
            limits,
            tls,
            fingerprint,
            gate: CallbackGate::new(ctx_id),
            deferred: Arc::default(),
            closing: AtomicBool::new(false),
            closed: Notify::new(),
            live: Mutex::new(0),
            drained: Condvar::new(),
        }
    }

    /// Stops its callbacks, then closes its connections: each finishes the response it is
    /// writing, idle ones close at once. Waits (bounded) until they are closed — except when
    /// called from a callback, whose own connection waits for that callback to return.
    pub(crate) fn close(&self) {
        self.gate.close_and_wait();
        // Deferred requests are answered 503 by their connections, which now close.
        self.deferred.clear();
        self.closing.store(true, Ordering::SeqCst);
        self.closed.notify_waiters();
        if dispatch::dispatching_context() == self.gate.ctx_id() {
            return;
        }
        let mut live = self.live.lock();
        if *live > 0 {
            self.drained.wait_for(&mut live, DRAIN_LIMIT);
        }
    }

    /// Resolves once the listener is stopping.
    pub(super) async fn closed(&self) {
        let notified = self.closed.notified();
        if self.closing.load(Ordering::SeqCst) {
            return;
        }
        notified.await
    }

    /// A connection was accepted.
    pub(super) fn connection_opened(&self) {
        *self.live.lock() += 1;
    }

    /// A connection is closed.
    pub(super) fn connection_closed(&self) {
        let mut live = self.live.lock();
        *live -= 1;
        if *live == 0 {
            self.drained.notify_all();
        }
    }
}
