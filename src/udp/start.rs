//! Starting and stopping a UDP listener (the lifecycle itself is `lifecycle.rs`).

use super::listener::{Sockets, UdpListener};
use super::{receive, socket};
use crate::error::Error;
use crate::lifecycle;
use crate::ports::check_port;
use crate::registry::{ListenerKind, ListenerState};
use crate::shared::Shared;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Starts a UDP listener and returns its id.
pub(crate) fn start_listener(shared: &Arc<Shared>, port: u16) -> Result<u32, Error> {
    let (allow_privileged, bind) = {
        let o = shared.options.lock();
        (o.allow_privileged_ports, o.bind_address)
    };
    check_port(port, allow_privileged)?;
    let bound = socket::bind(bind, port)?;
    let id = shared.registry.new_listener_id()?;
    let sockets = {
        let _runtime = shared.runtime().enter();
        let register = |s: Option<std::net::UdpSocket>| {
            s.map(UdpSocket::from_std)
                .transpose()
                .map_err(|e| Error::io("registering the UDP socket", &e))
        };
        Arc::new(Sockets {
            v4: register(bound.v4)?,
            v6: register(bound.v6)?,
        })
    };
    let listener = Arc::new(UdpListener::new(id, bound.port, shared.id, sockets.clone()));
    let task_listener = listener.clone();
    lifecycle::start(
        shared,
        id,
        bound.port,
        ListenerState::Udp(listener),
        "",
        |shared, stopped| async move {
            receive::read_loop(&shared, &task_listener, sockets, stopped).await;
        },
    )
}

/// Stops a UDP listener: when this returns its sockets are closed and none of its callbacks
/// runs or will run (unless this is called from that callback itself, which then finishes).
pub(crate) fn stop_listener(shared: &Shared, id: u32) -> Result<(), Error> {
    lifecycle::stop(shared, id, ListenerKind::Udp)
}
