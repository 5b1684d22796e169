//! TCP listeners: bind (dual stack unless a bind address is set), accept, ask the host.

use super::connection::{attach, Connection, Settings, State};
use super::driver::Drivers;
use super::task::ConnTask;
use crate::error::Error;
use crate::events::Callback;
use crate::info::ConnectionInfo;
use crate::lifecycle::{self, AcceptErrors};
use crate::ports::open_stream_listener;
use crate::registry::{ListenerState, ListenerStopped};
use crate::shared::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// Starts a framed TCP listener and returns its id; its connections are driven by `drivers`.
pub(crate) fn start_listener(
    shared: &Arc<Shared>,
    drivers: &Arc<Drivers>,
    port: u16,
    boundary: &[u8],
) -> Result<u32, Error> {
    let (settings, opened) = {
        let o = shared.options.lock();
        (
            Settings::new(&o, boundary)?,
            open_stream_listener(&o, &shared.runtime, port)?,
        )
    };
    let (listener, local_port) = opened;
    let id = shared.registry.new_listener_id()?;
    let drivers = drivers.clone();
    let detail = format!(" (boundary of {} bytes)", boundary.len());
    lifecycle::start(
        shared,
        id,
        local_port,
        ListenerState::Tcp,
        &detail,
        |shared, stopped| async move {
            let accepting = Accepting {
                shared,
                drivers,
                server_id: id,
                local_port,
                settings,
            };
            accepting.run(listener, stopped).await;
        },
    )
}

/// What an accept loop needs for each connection it accepts.
struct Accepting {
    shared: Arc<Shared>,
    drivers: Arc<Drivers>,
    server_id: u32,
    local_port: u16,
    settings: Arc<Settings>,
}

impl Accepting {
    async fn run(self, listener: TcpListener, mut stopped: ListenerStopped) {
        let mut errors = AcceptErrors::new(format!(
            "TCP listener {} on port {}",
            self.server_id, self.local_port
        ));
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped.stop => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => self.spawn(stream, peer),
                    Err(e) => errors.failed(&self.shared, &e).await,
                }
            }
        }
        // Close the socket before saying so: the port is free when stop returns.
        drop(listener);
        drop(stopped);
    }

    fn spawn(&self, stream: TcpStream, peer: SocketAddr) {
        let shared = &self.shared;
        let id = shared.registry.new_connection_id();
        let conn = Arc::new(Connection::new(
            id,
            self.server_id,
            shared.id,
            State::Deciding,
            self.settings.clone(),
        ));
        let info = ConnectionInfo::connected(id, self.server_id, peer, self.local_port);
        attach(&conn, stream);
        shared.registry.add_connection(conn.clone());
        // The dispatcher always answers (refusing without asking when it must skip the question).
        let ask = shared.host.implements(Callback::NewConnection);
        self.drivers.spawn(ConnTask::accepted(
            shared.task_guard(),
            conn,
            info,
            peer,
            ask,
        ));
    }
}
