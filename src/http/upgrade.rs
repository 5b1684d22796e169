//! The server side of a WebSocket upgrade (RFC 6455 §4.2): whether a request is a valid
//! upgrade, what the host's `xt_http_response_accept_websocket` decides, and the 101 that
//! goes out when `page_request` returns. The connection itself is made and run by the TCP
//! side (`tcp::websocket`), through [`WebSocketSide`], so this module needs nothing of it.

use crate::error::Error;
use bytes::Bytes;
use http::header::{
    CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use std::future::Future;
use std::pin::Pin;

/// Where hyper hands over the socket once the 101 is out.
pub(crate) type UpgradedIo = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;
pub(crate) type Handover = Pin<Box<dyn Future<Output = Result<UpgradedIo, String>> + Send>>;

/// The connection an upgrade request would become: live once registered (the host accepted),
/// run once started (the 101 is out); one registered and dropped unstarted ends with its final
/// event.
pub(crate) trait WebSocketSide: Send {
    /// The host accepted: its connection id, live from now on.
    fn register(&mut self) -> u64;
    fn is_registered(&self) -> bool;
    /// Runs the WebSocket over the socket `handover` gives.
    fn start(self: Box<Self>, handover: Handover);
}

/// A valid upgrade request's offer, and the connection it becomes if the host accepts it.
pub(crate) struct WebSocketUpgrade {
    key: String,
    /// The subprotocols the client offered, in its order.
    protocols: Vec<String>,
    pending: Box<dyn WebSocketSide>,
    /// Set by the host's accept: the subprotocol chosen (None: none).
    chosen: Option<Option<String>>,
}

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebSocketUpgrade(accepted: {})", self.chosen.is_some())
    }
}

/// Whether a header's comma-separated tokens include `token` (any case).
fn has_token<B>(request: &Request<B>, name: http::HeaderName, token: &str) -> bool {
    request.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// A Sec-WebSocket-Key: base64 of 16 bytes (24 characters, two of them padding).
fn is_key(key: &str) -> bool {
    key.len() == 24
        && key.ends_with("==")
        && key[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The request's key and offered subprotocols, when it is a valid WebSocket upgrade: GET,
/// HTTP/1.1, `Upgrade: websocket`, `Connection: upgrade`, a key, version 13.
pub(crate) fn offer<B>(request: &Request<B>) -> Option<(String, Vec<String>)> {
    let headers = request.headers();
    let key = headers
        .get(SEC_WEBSOCKET_KEY)?
        .to_str()
        .ok()?
        .trim()
        .to_owned();
    let valid = request.method() == http::Method::GET
        && request.version() == http::Version::HTTP_11
        && has_token(request, UPGRADE, "websocket")
        && has_token(request, CONNECTION, "upgrade")
        && headers
            .get(SEC_WEBSOCKET_VERSION)
            .and_then(|v| v.to_str().ok())
            == Some("13")
        && is_key(&key);
    if !valid {
        return None;
    }
    let protocols = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    Some((key, protocols))
}

impl WebSocketUpgrade {
    pub(crate) fn new(
        key: String,
        protocols: Vec<String>,
        pending: Box<dyn WebSocketSide>,
    ) -> Self {
        WebSocketUpgrade {
            key,
            protocols,
            pending,
            chosen: None,
        }
    }

    /// The host accepts, with `subprotocol` (one the client offered) or none; returns the
    /// WebSocket's connection id, live from now on.
    pub(crate) fn accept(&mut self, subprotocol: Option<&str>) -> Result<u64, Error> {
        if let Some(p) = subprotocol {
            if !self.protocols.iter().any(|o| o == p) {
                return Err(Error::invalid_argument(format!(
                    "the client did not offer the subprotocol {p:?} (it offered {:?})",
                    self.protocols
                )));
            }
        }
        self.chosen = Some(subprotocol.map(str::to_owned));
        Ok(self.pending.register())
    }

    pub(crate) fn is_accepted(&self) -> bool {
        self.chosen.is_some() && self.pending.is_registered()
    }

    /// The 101 answer, and the connection to start once it is out.
    pub(crate) fn into_answer(self) -> (Response<Full<Bytes>>, Box<dyn WebSocketSide>) {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        let accept =
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        if let Ok(v) = HeaderValue::from_str(&accept) {
            headers.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
        }
        if let Some(Some(p)) = &self.chosen {
            if let Ok(v) = HeaderValue::from_str(p) {
                headers.insert(SEC_WEBSOCKET_PROTOCOL, v);
            }
        }
        (response, self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get("/ws");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    const GOOD: [(&str, &str); 5] = [
        ("host", "x"),
        ("upgrade", "WebSocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];

    #[test]
    fn valid_upgrades_and_their_subprotocols() {
        let (key, protocols) = offer(&request(&GOOD)).unwrap();
        assert_eq!(key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert!(protocols.is_empty());
        let mut h = GOOD.to_vec();
        h.push(("sec-websocket-protocol", "shelly.rpc, json"));
        assert_eq!(offer(&request(&h)).unwrap().1, ["shelly.rpc", "json"]);
        // RFC 6455 §1.3's example.
        assert_eq!(
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(
                b"dGhlIHNhbXBsZSBub25jZQ=="
            ),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn invalid_upgrades() {
        for (drop, replace) in [
            ("upgrade", None),
            ("connection", Some(("connection", "keep-alive"))),
            ("sec-websocket-key", Some(("sec-websocket-key", "short"))),
            (
                "sec-websocket-version",
                Some(("sec-websocket-version", "8")),
            ),
        ] {
            let mut h: Vec<_> = GOOD.iter().copied().filter(|(k, _)| *k != drop).collect();
            h.extend(replace);
            assert!(offer(&request(&h)).is_none(), "without a good {drop}");
        }
        let mut post = request(&GOOD);
        *post.method_mut() = http::Method::POST;
        assert!(offer(&post).is_none());
    }
}
