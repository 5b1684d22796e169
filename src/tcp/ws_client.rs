//! Outgoing WebSockets (`ws://`, `wss://`): the URL, the socket (plain or TLS) and the client
//! handshake; then the connection runs the WebSocket pump (`ws_pump.rs`) like an accepted one.

use crate::error::{self, Error};
use crate::tls::TlsInfo;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

/// An outgoing WebSocket's socket: plain (`ws://`) or TLS (`wss://`).
pub(crate) enum ClientIo {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientIo {
    /// What the host is told about its TLS, if any.
    pub(crate) fn tls_info(&self) -> Option<Arc<TlsInfo>> {
        match self {
            ClientIo::Plain(_) => None,
            ClientIo::Tls(s) => Some(Arc::new(crate::tls::info_of(s.get_ref().1))),
        }
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientIo::Plain(s) => Pin::new(s).poll_write(cx, data),
            ClientIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Where a `ws://` or `wss://` URL points.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
}

/// Parses a WebSocket URL (ws:// port 80, wss:// port 443 by default).
pub(crate) fn parse_url(url: &str) -> Result<Target, Error> {
    let bad = |why: &str| Error::invalid_argument(format!("not a WebSocket URL ({why}): {url:?}"));
    let uri: http::Uri = url.parse().map_err(|_| bad("unparsable"))?;
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad("the scheme must be ws or wss")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(Target {
        url: url.to_owned(),
        host: host.to_owned(),
        port,
        tls,
    })
}

/// The client handshake over a connected (and, for wss, TLS) stream.
pub(crate) async fn handshake(
    io: ClientIo,
    target: &Target,
    max_message: usize,
) -> Result<WebSocketStream<ClientIo>, Error> {
    let request =
        target.url.as_str().into_client_request().map_err(|e| {
            Error::invalid_argument(format!("bad WebSocket URL {:?}: {e}", target.url))
        })?;
    let config = super::ws_pump::config(max_message);
    match tokio_tungstenite::client_async_with_config(request, io, Some(config)).await {
        Ok((ws, _response)) => Ok(ws),
        Err(WsError::Http(response)) => Err(Error::new(
            error::WEBSOCKET,
            format!(
                "{} refused the WebSocket upgrade: HTTP {}",
                target.url,
                response.status()
            ),
        )),
        Err(WsError::Io(e)) => Err(Error::io("WebSocket handshake failed", &e)),
        Err(e) => Err(Error::new(
            error::WEBSOCKET,
            format!("WebSocket handshake with {} failed: {e}", target.url),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls() {
        let t = parse_url("ws://127.0.0.1:8080/rpc?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("127.0.0.1", 8080, false));
        let t = parse_url("wss://tv.local/api/v2/channels/samsung.remote.control").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("tv.local", 443, true));
        let t = parse_url("ws://[::1]/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("[::1]", 80));
        for bad in ["http://x/", "ws://", "x", "", "wss://:80/"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
