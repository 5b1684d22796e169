//! TCP listeners: bind (dual stack unless a bind address is set), accept, ask the host.

use super::connection::{attach, Connection, Settings, PENDING};
use super::task::ConnTask;
use crate::context::Shared;
use crate::error::Error;
use crate::events::LogLevel;
use crate::info::ConnectionInfo;
use crate::ports::open_stream_listener;
use crate::registry::{ListenerKind, ListenerState, ListenerStop, ListenerStopped};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Starts a framed TCP listener and returns its id.
pub(crate) fn start_listener(
    shared: &Arc<Shared>,
    port: u16,
    boundary: &[u8],
) -> Result<u32, Error> {
    let settings = Settings::new(shared, boundary)?;
    let (listener, local_port) = open_stream_listener(shared, port)?;
    let id = shared.registry.next_listener_id()?;
    let (stop, stopped) = ListenerStop::new();
    let guard = shared.task_guard();
    let task_shared = shared.clone();
    shared.runtime.spawn(async move {
        let _guard = guard;
        accept_loop(task_shared, id, listener, local_port, settings, stopped).await;
    });
    shared
        .registry
        .add_listener(id, local_port, stop, ListenerState::Tcp);
    shared.log(
        LogLevel::Info,
        &format!(
            "TCP listener {id} listening on port {local_port} (boundary of {} bytes)",
            boundary.len()
        ),
    );
    if shared.is_closing() {
        let _ = shared.registry.stop_listener(id, ListenerKind::Tcp);
        return Err(Error::invalid_state("the context is being freed"));
    }
    Ok(id)
}

async fn accept_loop(
    shared: Arc<Shared>,
    server_id: u32,
    listener: TcpListener,
    local_port: u16,
    settings: Arc<Settings>,
    mut stopped: ListenerStopped,
) {
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped.stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => spawn_accepted(&shared, server_id, stream, peer, local_port, &settings),
                Err(e) => {
                    // Out of descriptors or memory: say so and back off instead of spinning.
                    let err = Error::io(&format!("accept on port {local_port} failed"), &e);
                    shared.log(LogLevel::Warning, &err.to_string());
                    if matches!(e.raw_os_error(), Some(c) if c == libc::EMFILE || c == libc::ENFILE || c == libc::ENOBUFS || c == libc::ENOMEM) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }
    // Close the socket before saying so: the port is free when stop returns.
    drop(listener);
    drop(stopped);
}

fn spawn_accepted(
    shared: &Arc<Shared>,
    server_id: u32,
    stream: TcpStream,
    peer: SocketAddr,
    local_port: u16,
    settings: &Arc<Settings>,
) {
    let id = shared.registry.next_connection_id();
    let conn = Arc::new(Connection::new(
        id,
        server_id,
        shared,
        PENDING,
        settings.clone(),
    ));
    let info = ConnectionInfo::connected(id, server_id, peer, local_port);
    attach(&conn, stream);
    shared.registry.add_connection(conn.clone());
    // The dispatcher always answers (refusing without asking when it must skip the question).
    let ask = shared.host.wants_new_connection();
    shared.drivers.spawn(ConnTask::accepted(
        shared.task_guard(),
        conn,
        info,
        peer,
        ask,
    ));
}
