//! The response the host fills in, and the answers that come later: a request deferred in
//! `page_request` waits, by its id, for `xt_http_reply` (from any thread), for its deadline
//! (504) or for its connection to go away.

use super::upgrade::WebSocketUpgrade;
use crate::error::Error;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::Full;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The name of a status code's class (RFC 9110 §15), as its reason phrase.
fn class_reason(status: StatusCode) -> hyper::ext::ReasonPhrase {
    use hyper::ext::ReasonPhrase;
    match status.as_u16() / 100 {
        1 => ReasonPhrase::from_static(b"Informational"),
        2 => ReasonPhrase::from_static(b"Success"),
        3 => ReasonPhrase::from_static(b"Redirection"),
        4 => ReasonPhrase::from_static(b"Client Error"),
        _ => ReasonPhrase::from_static(b"Server Error"),
    }
}

/// What the host answers. Unset status means 200.
#[derive(Debug)]
pub struct HttpResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
    /// During `page_request` only: how to answer this request later instead.
    pub(crate) later: Option<Later>,
    /// Set by `defer`: where the later answer arrives.
    pub(crate) deferred: Option<oneshot::Receiver<HttpResponse>>,
    /// During `page_request` of a valid upgrade request: the WebSocket it may become.
    pub(crate) websocket: Option<Box<WebSocketUpgrade>>,
}

impl Default for HttpResponse {
    fn default() -> Self {
        HttpResponse {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Bytes::new(),
            later: None,
            deferred: None,
            websocket: None,
        }
    }
}

impl HttpResponse {
    pub fn with_status(status: u16) -> HttpResponse {
        HttpResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            ..HttpResponse::default()
        }
    }

    /// A status code from 100 to 999.
    pub fn set_status(&mut self, status: u16) -> Result<(), Error> {
        self.status = StatusCode::from_u16(status).map_err(|_| {
            Error::invalid_argument(format!("{status} is not an HTTP status code (100..=999)"))
        })?;
        Ok(())
    }

    /// Adds a header. Content-Length and Transfer-Encoding are xtnet's to set.
    pub fn add_header(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        let name = HeaderName::from_bytes(name).map_err(|_| {
            Error::invalid_argument(format!(
                "not a valid header name: {:?}",
                String::from_utf8_lossy(name)
            ))
        })?;
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            return Err(Error::invalid_argument(format!(
                "{name} is set by xtnet from the body"
            )));
        }
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| Error::invalid_argument(format!("not a valid value for header {name}")))?;
        self.headers.push((name, value));
        Ok(())
    }

    /// The body (copied).
    pub fn set_body(&mut self, data: &[u8]) {
        self.body = Bytes::copy_from_slice(data);
    }

    /// Answers this request later (`xt_http_reply` with the id returned), keeping the headers
    /// added so far. Only during `page_request`, once.
    pub fn defer(&mut self) -> Result<u64, Error> {
        if self.websocket.as_ref().is_some_and(|w| w.is_accepted()) {
            return Err(Error::invalid_state(
                "this request was accepted as a WebSocket; it cannot be answered later",
            ));
        }
        let later = self.later.take().ok_or_else(|| {
            Error::invalid_state("this request cannot be answered later (already deferred?)")
        })?;
        let (reply, answer) = oneshot::channel();
        later
            .replies
            .wait(later.id, reply, std::mem::take(&mut self.headers));
        self.deferred = Some(answer);
        Ok(later.id)
    }

    /// Turns the request's connection into a WebSocket (the 101 goes out when `page_request`
    /// returns), with `subprotocol` (one the client offered) or none; returns its connection
    /// id. A request that is no valid upgrade gets 400 (106); a deferred one cannot (106).
    pub fn accept_websocket(&mut self, subprotocol: Option<&str>) -> Result<u64, Error> {
        if self.deferred.is_some() {
            return Err(Error::invalid_state(
                "this request was deferred; it cannot become a WebSocket",
            ));
        }
        let Some(upgrade) = self.websocket.as_mut() else {
            self.status = StatusCode::BAD_REQUEST;
            return Err(Error::invalid_state(
                "this request is not a valid WebSocket upgrade (it gets 400)",
            ));
        };
        let id = upgrade.accept(subprotocol)?;
        self.later = None; // a WebSocket is answered now
        Ok(id)
    }

    /// The hyper response; a body without a Content-Type is sent as HTML (an "HTML listener").
    pub(crate) fn into_hyper(self) -> http::Response<Full<Bytes>> {
        let needs_type =
            !self.body.is_empty() && !self.headers.iter().any(|(k, _)| k == CONTENT_TYPE);
        let mut response = http::Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        if self.status.canonical_reason().is_none() {
            // A status without a standard phrase gets its class's name (RFC 9110 §15), not
            // hyper's "<none>".
            response.extensions_mut().insert(class_reason(self.status));
        }
        let headers = response.headers_mut();
        for (k, v) in self.headers {
            headers.append(k, v);
        }
        if needs_type {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
        }
        response
    }
}

/// What a request needs to be answered later: its id and its listener's waiting list.
pub(crate) struct Later {
    pub(crate) id: u64,
    pub(crate) replies: Arc<DeferredReplies>,
}

/// What the dispatcher sends back for a request: the answer, or where it will arrive.
pub(crate) enum Answer {
    Now(HttpResponse),
    Later(oneshot::Receiver<HttpResponse>),
}

impl std::fmt::Debug for Later {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Later({})", self.id)
    }
}

/// A deferred request waiting for its answer.
struct Waiting {
    reply: oneshot::Sender<HttpResponse>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// The deferred requests of one HTTP listener, by request id.
#[derive(Default)]
pub(crate) struct DeferredReplies {
    waiting: Mutex<HashMap<u64, Waiting>>,
}

impl DeferredReplies {
    fn wait(
        &self,
        id: u64,
        reply: oneshot::Sender<HttpResponse>,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) {
        self.waiting.lock().insert(id, Waiting { reply, headers });
    }

    /// Whether request `id` waits here.
    pub(crate) fn has(&self, id: u64) -> bool {
        self.waiting.lock().contains_key(&id)
    }

    /// Answers request `id`: 106 when it is not waiting (answered, timed out, its client left).
    pub(crate) fn reply(
        &self,
        id: u64,
        status: u16,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) -> Result<(), Error> {
        let mut response = HttpResponse::default();
        response.set_status(status)?;
        if let Some(t) = content_type {
            HeaderValue::from_bytes(t)
                .map_err(|_| Error::invalid_argument("not a valid Content-Type value"))?;
        }
        let gone = || {
            Error::invalid_state(format!("HTTP request {id} is not waiting for an answer (answered, timed out, or its client left)"))
        };
        let waiting = self.waiting.lock().remove(&id).ok_or_else(gone)?;
        response.headers = waiting.headers;
        if let Some(t) = content_type {
            response.headers.retain(|(k, _)| k != CONTENT_TYPE);
            response.add_header(b"content-type", t)?;
        }
        response.set_body(body);
        waiting.reply.send(response).map_err(|_| gone())
    }

    /// Request `id` no longer waits (its deadline passed, or its connection is gone).
    pub(crate) fn forget(&self, id: u64) {
        self.waiting.lock().remove(&id);
    }

    /// Every waiting request is dropped (its listener stops).
    pub(crate) fn clear(&self) {
        self.waiting.lock().clear();
    }
}
