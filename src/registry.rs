//! Ids and the live objects behind them: listeners and connections of one context.
//!
//! Ids come from one counter, so a listener id is never also a connection id: a host that mixes
//! them up gets 106 rather than another object. Ids are never 0 and never reused.

use crate::error::Error;
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
}

impl ListenerKind {
    fn name(self) -> &'static str {
        match self {
            ListenerKind::Tcp => "TCP listener",
            ListenerKind::Udp => "UDP listener",
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
    fn stop_and_wait(self) {
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

pub(crate) struct Listener {
    pub kind: ListenerKind,
    pub port: u16,
    stop: ListenerStop,
    /// A UDP listener's state, for sending and group membership by id.
    udp: Option<Arc<UdpListener>>,
}

#[derive(Default)]
pub(crate) struct Registry {
    next_id: AtomicU64,
    listeners: Mutex<HashMap<u32, Listener>>,
    connections: RwLock<HashMap<u64, Arc<Connection>>>,
}

impl Registry {
    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn next_listener_id(&self) -> Result<u32, Error> {
        u32::try_from(self.next_connection_id())
            .map_err(|_| Error::invalid_state("no listener ids left in this context"))
    }

    pub(crate) fn add_listener(&self, id: u32, kind: ListenerKind, port: u16, stop: ListenerStop) {
        let udp = None;
        self.listeners.lock().insert(
            id,
            Listener {
                kind,
                port,
                stop,
                udp,
            },
        );
    }

    pub(crate) fn add_udp_listener(
        &self,
        id: u32,
        port: u16,
        stop: ListenerStop,
        udp: Arc<UdpListener>,
    ) {
        self.listeners.lock().insert(
            id,
            Listener {
                kind: ListenerKind::Udp,
                port,
                stop,
                udp: Some(udp),
            },
        );
    }

    /// The UDP listener `id` (106 for an unknown, stopped or other-kind id).
    pub(crate) fn udp_listener(&self, id: u32) -> Result<Arc<UdpListener>, Error> {
        let listeners = self.listeners.lock();
        let l = listeners.get(&id);
        Self::check_kind(id, l, Some(ListenerKind::Udp))?;
        Ok(l.and_then(|l| l.udp.clone())
            .expect("a UDP listener entry holds its state"))
    }

    /// Every UDP listener (the context is going away).
    pub(crate) fn udp_listeners(&self) -> Vec<Arc<UdpListener>> {
        self.listeners
            .lock()
            .values()
            .filter_map(|l| l.udp.clone())
            .collect()
    }

    fn check_kind(
        id: u32,
        listener: Option<&Listener>,
        kind: Option<ListenerKind>,
    ) -> Result<(), Error> {
        match listener {
            None => Err(Error::invalid_state(format!("no listener with id {id}"))),
            Some(l) if kind.is_some_and(|k| k != l.kind) => Err(Error::invalid_state(format!(
                "id {id} is a {}, not a {}",
                l.kind.name(),
                kind.map_or("", |k| k.name())
            ))),
            Some(_) => Ok(()),
        }
    }

    /// The bound port of a listener of any kind.
    pub(crate) fn listener_port(&self, id: u32) -> Result<u16, Error> {
        let listeners = self.listeners.lock();
        let l = listeners.get(&id);
        Self::check_kind(id, l, None)?;
        Ok(l.map_or(0, |l| l.port))
    }

    /// Removes a listener of `kind` and stops it; returns once its socket is closed.
    pub(crate) fn stop_listener(&self, id: u32, kind: ListenerKind) -> Result<(), Error> {
        let listener = {
            let mut listeners = self.listeners.lock();
            Self::check_kind(id, listeners.get(&id), Some(kind))?;
            listeners.remove(&id)
        };
        if let Some(l) = listener {
            l.stop.stop_and_wait();
        }
        Ok(())
    }

    /// Stops every listener (the context is going away).
    pub(crate) fn stop_all_listeners(&self) {
        let all: Vec<Listener> = self.listeners.lock().drain().map(|(_, l)| l).collect();
        for l in all {
            l.stop.stop_and_wait();
        }
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
