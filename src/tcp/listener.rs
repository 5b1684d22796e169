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
use crate::tls::TlsServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Starts a framed TCP listener (over TLS when `tls` says with what) and returns its id; its
/// connections are driven by `drivers`.
pub(crate) fn start_listener(
    shared: &Arc<Shared>,
    drivers: &Arc<Drivers>,
    port: u16,
    boundary: &[u8],
    tls: Option<&TlsServer>,
) -> Result<u32, Error> {
    let (settings, handshake_timeout) = {
        let o = shared.options.lock();
        (Settings::new(&o, boundary)?, o.http_request_timeout)
    };
    // The certificate before the socket: a bad one fails the call and binds nothing.
    let tls = tls.map(crate::tls::server_config).transpose()?;
    let opened = open_stream_listener(&shared.options.lock(), shared.runtime(), port)?;
    let (listener, local_port) = opened;
    let id = shared.registry.new_listener_id()?;
    let drivers = drivers.clone();
    let detail = format!(
        " (boundary of {} bytes{})",
        boundary.len(),
        if tls.is_some() { ", TLS" } else { "" }
    );
    let fingerprint = tls.as_ref().map(|(_, f)| Arc::new(f.clone()));
    let acceptor = tls.map(|(config, _)| TlsAcceptor::from(config));
    lifecycle::start(
        shared,
        id,
        local_port,
        ListenerState::Tcp(fingerprint),
        &detail,
        |shared, stopped| async move {
            let accepting = Accepting {
                shared,
                drivers,
                server_id: id,
                local_port,
                settings,
                tls: acceptor,
                handshake_timeout,
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
    /// A TLS listener's acceptor, and how long its handshakes may take.
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
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
        shared.registry.add_connection(conn.clone());
        // The dispatcher always answers (refusing without asking when it must skip the question).
        let ask = shared.host.implements(Callback::NewConnection);
        let task = match &self.tls {
            None => {
                attach(&conn, stream);
                ConnTask::accepted(shared.task_guard(), conn, info, peer, ask)
            }
            Some(acceptor) => {
                let _ = stream.set_nodelay(true);
                let (accept, limit) = (acceptor.accept(stream), self.handshake_timeout);
                let handshake = Box::pin(async move {
                    match tokio::time::timeout(limit, accept).await {
                        Ok(Ok(stream)) => Ok(stream),
                        Ok(Err(e)) => Err(Error::io("TLS handshake failed", &e)),
                        Err(_) => Err(Error::new(
                            crate::error::TIMEOUT,
                            format!("no TLS handshake within {} ms", limit.as_millis()),
                        )),
                    }
                });
                ConnTask::accepted_tls(shared.task_guard(), conn, info, peer, ask, handshake)
            }
        };
        self.drivers.spawn(task);
    }
}
