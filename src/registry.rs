//! Ids and the live objects behind them: listeners and connections of one context.
//!
//! Ids come from one counter, so a listener id is never also a connection id: a host that mixes
//! them up gets 106 rather than another object. Ids are never 0 and never reused.

use crate::error::Error;
use crate::http::HttpListener;
use crate::tcp::Connection;
use crate::udp::UdpListener;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What kind of listener an id names; calls for one kind reject the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    Tcp,
    Udp,
    Http,
}

impl ListenerKind {
    /// The protocol's short name, for the log.
    pub(crate) fn protocol(self) -> &'static str {
        match self {
            ListenerKind::Tcp => "TCP",
            ListenerKind::Udp => "UDP",
            ListenerKind::Http => "HTTP",
        }
    }

    fn name(self) -> &'static str {
        match self {
            ListenerKind::Tcp => "TCP listener",
            ListenerKind::Udp => "UDP listener",
            ListenerKind::Http => "HTML (HTTP) listener",
        }
    }
}

/// A listener's state that calls by id need (a TCP listener's connections are registered on
/// their own).
pub(crate) enum ListenerState {
    /// A TCP listener; over TLS, the fingerprint of the certificate it presents.
    Tcp(Option<Arc<std::ffi::CString>>),
    Udp(Arc<UdpListener>),
    Http(Arc<HttpListener>),
}

impl ListenerState {
    pub(crate) fn kind(&self) -> ListenerKind {
        match self {
            ListenerState::Tcp(_) => ListenerKind::Tcp,
            ListenerState::Udp(_) => ListenerKind::Udp,
            ListenerState::Http(_) => ListenerKind::Http,
        }
    }
}

/// Stops a listener's task and waits until its socket is closed.
pub(crate) struct ListenerStop {
    stop: tokio::sync::oneshot::Sender<()>,
    done: std::sync::mpsc::Receiver<()>,
}

impl ListenerStop {
    /// The pair: this end for the registry, the other for the listener's task.
    pub(crate) fn new() -> (Self, ListenerStopped) {
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done) = std::sync::mpsc::channel();
        (
            ListenerStop { stop, done },
            ListenerStopped {
                stop: stop_rx,
                done: done_tx,
            },
        )
    }

    /// Asks the task to stop and waits (bounded) until it has dropped its socket, so the port is
    /// free again when the caller's stop call returns. Never called on a runtime thread.
    pub(crate) fn stop_and_wait(self) {
        let _ = self.stop.send(());
        let _ = self.done.recv_timeout(Duration::from_secs(5));
    }
}

/// The listener task's end: resolves when it must stop; dropping it says "socket closed".
pub(crate) struct ListenerStopped {
    pub(crate) stop: tokio::sync::oneshot::Receiver<()>,
    #[allow(dead_code)] // dropped to signal: the task's socket is closed
    done: std::sync::mpsc::Sender<()>,
}

/// A running listener as the registry keeps it.
pub(crate) struct Listener {
    pub(crate) port: u16,
    pub(crate) stop: ListenerStop,
    pub(crate) state: ListenerState,
}

#[derive(Default)]
pub(crate) struct Registry {
    next_id: AtomicU64,
    listeners: Mutex<HashMap<u32, Listener>>,
    connections: RwLock<HashMap<u64, Arc<Connection>>>,
}

impl Registry {
    /// A new id from the one counter of the context.
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn new_connection_id(&self) -> u64 {
        self.next_id()
    }

    /// An HTTP request's id (for answering it later): from the same counter, so it is never
    /// also a connection's or a listener's.
    pub(crate) fn new_request_id(&self) -> u64 {
        self.next_id()
    }

    pub(crate) fn new_listener_id(&self) -> Result<u32, Error> {
        u32::try_from(self.next_id())
            .map_err(|_| Error::invalid_state("no listener ids left in this context"))
    }

    pub(crate) fn add_listener(
        &self,
        id: u32,
        port: u16,
        stop: ListenerStop,
        state: ListenerState,
    ) {
        self.listeners
            .lock()
            .insert(id, Listener { port, stop, state });
    }

    /// The UDP listener `id` (106 for an unknown, stopped or other-kind id).
    pub(crate) fn udp_listener(&self, id: u32) -> Result<Arc<UdpListener>, Error> {
        let listeners = self.listeners.lock();
        match listeners.get(&id).map(|l| &l.state) {
            Some(ListenerState::Udp(u)) => Ok(u.clone()),
            other => Err(Self::kind_error(id, other, ListenerKind::Udp)),
        }
    }

    fn kind_error(id: u32, found: Option<&ListenerState>, wanted: ListenerKind) -> Error {
        match found {
            None => Error::invalid_state(format!("no listener with id {id}")),
            Some(state) => Error::invalid_state(format!(
                "id {id} is a {}, not a {}",
                state.kind().name(),
                wanted.name()
            )),
        }
    }

    /// The bound port of a listener of any kind.
    pub(crate) fn listener_port(&self, id: u32) -> Result<u16, Error> {
        self.listeners
            .lock()
            .get(&id)
            .map(|l| l.port)
            .ok_or_else(|| Error::invalid_state(format!("no listener with id {id}")))
    }

    /// The fingerprint of the certificate a TLS listener presents (106 for an unknown id or a
    /// listener without TLS).
    pub(crate) fn listener_fingerprint(&self, id: u32) -> Result<Arc<std::ffi::CString>, Error> {
        match self.listeners.lock().get(&id).map(|l| &l.state) {
            Some(ListenerState::Tcp(Some(f))) => Ok(f.clone()),
            Some(ListenerState::Http(h)) if h.fingerprint.is_some() => {
                Ok(h.fingerprint.clone().expect("checked"))
            }
            Some(_) => Err(Error::invalid_state(format!(
                "listener {id} does not use TLS"
            ))),
            None => Err(Error::invalid_state(format!("no listener with id {id}"))),
        }
    }

    /// Every UDP listener.
    pub(crate) fn udp_listeners(&self) -> Vec<Arc<UdpListener>> {
        self.listeners
            .lock()
            .values()
            .filter_map(|l| match &l.state {
                ListenerState::Udp(u) => Some(u.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every HTTP listener.
    pub(crate) fn http_listeners(&self) -> Vec<Arc<HttpListener>> {
        self.listeners
            .lock()
            .values()
            .filter_map(|l| match &l.state {
                ListenerState::Http(h) => Some(h.clone()),
                _ => None,
            })
            .collect()
    }

    /// Removes listener `id` of `kind` (106 for an unknown, stopped or other-kind id).
    pub(crate) fn take_listener(&self, id: u32, kind: ListenerKind) -> Result<Listener, Error> {
        let mut listeners = self.listeners.lock();
        let state = listeners.get(&id).map(|l| &l.state);
        if state.is_none_or(|s| s.kind() != kind) {
            return Err(Self::kind_error(id, state, kind));
        }
        Ok(listeners.remove(&id).expect("checked above"))
    }

    /// Removes every listener (the context is going away).
    pub(crate) fn take_all_listeners(&self) -> Vec<(u32, Listener)> {
        self.listeners.lock().drain().collect()
    }

    pub(crate) fn add_connection(&self, conn: Arc<Connection>) {
        self.connections.write().insert(conn.id, conn);
    }

    pub(crate) fn remove_connection(&self, id: u64) {
        self.connections.write().remove(&id);
    }

    pub(crate) fn connection(&self, id: u64) -> Result<Arc<Connection>, Error> {
        self.connections
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::invalid_state(format!("no open connection with id {id}")))
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.connections.read().len()
    }

    pub(crate) fn listener_count(&self) -> usize {
        self.listeners.lock().len()
    }

    /// Every live connection (accepted by `server_id` only, when given).
    pub(crate) fn connections(&self, server_id: Option<u32>) -> Vec<Arc<Connection>> {
        self.connections
            .read()
            .values()
            .filter(|c| server_id.is_none_or(|s| c.server_id == s))
            .cloned()
            .collect()
    }
}
