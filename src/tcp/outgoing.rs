//! Outgoing TCP connections: resolve, connect (bounded in time), then the shared connection.

use super::connection::{Connection, Settings, State};
use super::driver::Drivers;
use super::task::{ConnTask, ConnectFailed, Connected, Transport};
use super::ws_client::{self, ClientIo};
use crate::error::{self, Error};
use crate::shared::Shared;
use crate::tls::{self, TlsClient};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Opens a connection to `host` (name or address) and `port`, over TLS when `tls` says how;
/// returns its id at once.
pub(crate) fn open_connection(
    shared: &Arc<Shared>,
    drivers: &Drivers,
    host: &str,
    port: u16,
    boundary: &[u8],
    tls: Option<&TlsClient>,
) -> Result<u64, Error> {
    let settings = Settings::new(&shared.options.lock(), boundary)?;
    open(shared, drivers, host, port, settings, tls, None)
}

/// Opens a WebSocket to `url` (`ws://` or `wss://`; for wss, trusting the server as `tls`
/// says, by default the system's roots); returns its id at once.
pub(crate) fn open_websocket(
    shared: &Arc<Shared>,
    drivers: &Drivers,
    url: &str,
    tls: Option<&TlsClient>,
) -> Result<u64, Error> {
    let target = ws_client::parse_url(url.trim())?;
    let system = TlsClient {
        trust: tls::Trust::System,
        server_name: None,
        client_cert: None,
    };
    let tls = target.tls.then(|| tls.unwrap_or(&system));
    let settings = Settings::websocket(&shared.options.lock());
    let (host, port) = (target.host.clone(), target.port);
    open(shared, drivers, &host, port, settings, tls, Some(target))
}

/// An outgoing connection with `settings`, over TLS with `tls`, a WebSocket to `ws`.
fn open(
    shared: &Arc<Shared>,
    drivers: &Drivers,
    host: &str,
    port: u16,
    settings: Arc<Settings>,
    tls: Option<&TlsClient>,
    ws: Option<ws_client::Target>,
) -> Result<u64, Error> {
    let host = host.trim();
    if host.is_empty() {
        return Err(Error::invalid_argument("empty host name"));
    }
    if port == 0 {
        return Err(Error::new(error::INVALID_PORT, "cannot connect to port 0"));
    }
    let connect_timeout = shared.options.lock().connect_timeout;
    let max_message = settings.max_message_len;
    let id = shared.registry.new_connection_id();
    let conn = Arc::new(Connection::new(
        id,
        0,
        shared.id,
        State::Connecting,
        settings,
    ));
    shared.registry.add_connection(conn.clone());
    // The TLS setup is checked now (a bad CA file or server name fails the call).
    let tls = tls
        .map(|t| {
            let (config, verifier) = tls::client_config(t)?;
            Ok::<_, Error>((config, verifier, tls::server_name(t, host)?))
        })
        .transpose()?;
    let ws = ws.map(|target| (target, max_message));
    let attempt = Box::pin(connect(host.to_owned(), port, connect_timeout, tls, ws));
    let task = ConnTask::outgoing(shared.task_guard(), conn, attempt, host.to_owned(), port);
    drivers.spawn(task);
    Ok(id)
}

/// Names under the special-use domain `invalid` (RFC 6761 §6.4: resolution libraries should
/// answer "no such name" themselves): answered here, without asking any name server.
fn is_invalid_domain(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "invalid" || name.ends_with(".invalid")
}

/// A TLS client's setup for one connection.
type TlsSetup = (
    Arc<rustls::ClientConfig>,
    Arc<tls::Verifier>,
    rustls::pki_types::ServerName<'static>,
);

/// Resolves and connects, trying each address in turn, then (with `tls`) does the TLS
/// handshake and (with `ws`: where, and the message limit) the WebSocket handshake: all within
/// one overall time limit.
async fn connect(
    host: String,
    port: u16,
    limit: Option<Duration>,
    tls: Option<TlsSetup>,
    ws: Option<(ws_client::Target, usize)>,
) -> Result<Connected, ConnectFailed> {
    let host = host.as_str();
    let attempt = async {
        let (stream, addr, local_port) = connect_tcp(host, port).await?;
        let io = secure(stream, host, port, tls).await?;
        let transport = match (io, ws) {
            (io, Some((target, max))) => {
                Transport::WebSocket(Box::new(ws_client::handshake(io, &target, max).await?))
            }
            (ClientIo::Plain(stream), None) => Transport::Plain(stream),
            (ClientIo::Tls(stream), None) => Transport::Tls(stream),
        };
        Ok((transport, addr, local_port))
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
                )
                .into())
            }),
    }
}

/// The TLS handshake over a connected stream, when `tls` says how.
async fn secure(
    stream: TcpStream,
    host: &str,
    port: u16,
    tls: Option<TlsSetup>,
) -> Result<ClientIo, ConnectFailed> {
    {
        let Some((config, verifier, name)) = tls else {
            return Ok(ClientIo::Plain(stream));
        };
        let shown = name.to_str().into_owned();
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| ConnectFailed {
                error: tls::handshake_error(&e, &format!("{host}:{port} ({shown})"), &verifier),
                // What the peer presented, for the final event's info (to pin it).
                tls: verifier.presented().map(|f| {
                    Arc::new(tls::TlsInfo {
                        fingerprint: std::ffi::CString::new(f).unwrap_or_default(),
                        protocol: c"",
                    })
                }),
            })?;
        Ok(ClientIo::Tls(Box::new(stream)))
    }
}

/// Resolves and connects, trying each address in turn.
async fn connect_tcp(host: &str, port: u16) -> Result<(TcpStream, SocketAddr, u16), Error> {
    let attempt = async {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) if is_invalid_domain(bare) => {
                return Err(Error::new(
                    error::NAME_RESOLUTION,
                    format!(
                        "cannot resolve {host:?}: names under .invalid never resolve (RFC 6761)"
                    ),
                ))
            }
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
    attempt.await
}

#[cfg(test)]
mod tests {
    use super::is_invalid_domain;

    #[test]
    fn the_invalid_domain() {
        for name in [
            "invalid",
            "x.invalid",
            "No-Such-Host.INVALID.",
            "a.b.invalid",
        ] {
            assert!(is_invalid_domain(name), "{name}");
        }
        for name in ["invalid.example", "example.com", "invalidx", "x.invalidx"] {
            assert!(!is_invalid_domain(name), "{name}");
        }
    }
}
