//! An accepted WebSocket as a connection: made for an HTTP upgrade request, live once the host
//! accepts it, run over the socket hyper hands over after the 101 (`ws_pump.rs`), and ended
//! with one final event like any connection.

use super::connection::{Connection, Settings, State};
use super::messages::lost;
use super::task::finish;
use crate::error::{self, Error};
use crate::events::LogLevel;
use crate::http::{Handover, WebSocketSide};
use crate::info::ConnectionInfo;
use crate::shared::Shared;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// The connection an HTTP upgrade request would become, from the request's arrival until its
/// WebSocket runs. Registered (its id live, writes queued) once the host accepts it; dropped
/// after that without being started (the 101 never went out), it ends with its final event.
pub(crate) struct Upgrading {
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    registered: bool,
}

impl Upgrading {
    /// A connection for an upgrade request that came in on HTTP listener `server_id`, with the
    /// request's connection info (and an id of its own).
    pub(crate) fn new(shared: &Arc<Shared>, info: &ConnectionInfo) -> Upgrading {
        let settings = Settings::websocket(&shared.options.lock());
        let id = shared.registry.new_connection_id();
        let conn = Arc::new(Connection::new(
            id,
            info.server_id,
            shared.id,
            State::Accepted,
            settings,
        ));
        conn.set_info(ConnectionInfo { id, ..info.clone() });
        Upgrading {
            shared: shared.clone(),
            conn,
            registered: false,
        }
    }
}

impl WebSocketSide for Upgrading {
    /// The host accepted it: its id is live from now on (sends are queued until it runs).
    fn register(&mut self) -> u64 {
        if !self.registered {
            self.shared.registry.add_connection(self.conn.clone());
            self.registered = true;
        }
        self.conn.id
    }

    fn is_registered(&self) -> bool {
        self.registered
    }

    /// Runs the WebSocket over the stream `upgrade` gives (once hyper has sent the 101).
    fn start(mut self: Box<Self>, upgrade: Handover) {
        self.registered = false; // the task owns the end from here
        let (shared, conn) = (self.shared.clone(), self.conn.clone());
        let guard = shared.task_guard();
        let max = conn.settings.max_message_len;
        shared.runtime().clone().spawn(async move {
            let run = async {
                match upgrade.await {
                    Ok(io) => {
                        let config = super::ws_pump::config(max);
                        let ws =
                            WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                        conn.set_state(State::Open);
                        super::ws_pump::run(shared.clone(), conn.clone(), ws).await
                    }
                    Err(why) => lost(&format!("the WebSocket upgrade failed: {why}")),
                }
            };
            let end = match AssertUnwindSafe(run).catch_unwind().await {
                Ok(end) => end,
                Err(payload) => {
                    let message = crate::panics::message(&*payload);
                    shared.log(
                        LogLevel::Error,
                        &format!(
                            "connection {}: internal error, the connection is closed: {message}",
                            conn.id
                        ),
                    );
                    Error::new(error::PANIC, format!("internal error in xtnet: {message}"))
                }
            };
            finish(&shared, &conn, end);
            drop(guard);
        });
    }
}

impl Drop for Upgrading {
    fn drop(&mut self) {
        if self.registered {
            // Accepted, but the upgrade never happened (the listener stopped, the client left).
            finish(
                &self.shared,
                &self.conn,
                lost("the connection closed before the WebSocket upgrade"),
            );
        }
    }
}
