//! Outgoing TCP connections: resolve, connect (bounded in time), then the shared connection.

use super::connection::{Connection, Serve, Settings, CONNECTING};
use crate::context::Shared;
use crate::error::{self, Error};
use crate::info::ConnectionInfo;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Opens a connection to `host` (name or address) and `port`; returns its id at once.
pub(crate) fn open_connection(
    shared: &Arc<Shared>,
    host: &str,
    port: u16,
    boundary: &[u8],
) -> Result<u64, Error> {
    let host = host.trim();
    if host.is_empty() {
        return Err(Error::invalid_argument("empty host name"));
    }
    if port == 0 {
        return Err(Error::new(error::INVALID_PORT, "cannot connect to port 0"));
    }
    let settings = Settings::new(shared, boundary)?;
    let connect_timeout = shared.options.lock().connect_timeout;
    let id = shared.registry.next_connection_id();
    let conn = Arc::new(Connection::new(id, 0, shared, CONNECTING, &settings));
    shared.registry.add_connection(conn.clone());
    let host = host.to_owned();
    let guard = shared.task_guard();
    let serve = Serve {
        shared: shared.clone(),
        info: Arc::new(ConnectionInfo::dialing(id, &host, port)),
        conn,
        settings,
    };
    shared.runtime.spawn(async move {
        let _guard = guard;
        let attempt = tokio::select! {
            r = connect(&host, port, connect_timeout) => r,
            reason = serve.conn.closed() => Err(Error::new(error::LOST_CONNECTION, reason.message())),
        };
        match attempt {
            Ok((stream, peer, local_port)) => {
                let _ = stream.set_nodelay(true);
                let serve = Serve {
                    info: Arc::new(ConnectionInfo::connected(id, 0, peer, local_port)),
                    ..serve
                };
                serve.run_open(stream, true).await;
            }
            Err(e) => serve.finish((e.code, e.message), None),
        }
    });
    Ok(id)
}

/// Resolves and connects, trying each address in turn within one overall time limit.
async fn connect(
    host: &str,
    port: u16,
    limit: Option<Duration>,
) -> Result<(TcpStream, SocketAddr, u16), Error> {
    let attempt = async {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| {
                    Error::new(
                        error::NAME_RESOLUTION,
                        format!("cannot resolve {host:?}: {e}"),
                    )
                })?
                .collect(),
        };
        let mut last = Error::new(error::NAME_RESOLUTION, format!("{host:?} has no address"));
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let local_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
                    return Ok((stream, addr, local_port));
                }
                Err(e) => last = Error::io(&format!("cannot connect to {addr}"), &e),
            }
        }
        Err(last)
    };
    match limit {
        None => attempt.await,
        Some(limit) => tokio::time::timeout(limit, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(
                    libc::ETIMEDOUT,
                    format!(
                        "connecting to {host}:{port} timed out after {} ms",
                        limit.as_millis()
                    ),
                ))
            }),
    }
}
