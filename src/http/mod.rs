//! The embedded HTTP/1.1 server (XTension's "HTML listener"), on hyper and the context's
//! runtime. hyper does the protocol: keep-alive, pipelining, chunked bodies, 100-continue,
//! HEAD, Date and Content-Length, and the automatic 400/414/431 answers.
//!
//! `listener.rs` is the listener as every thread sees it, `serve.rs` starting it and its tasks, `message.rs`
//! the request the host sees, `response.rs` its response and the answers that come later, `io.rs` the socket as hyper's IO (plain or TLS), `upgrade.rs` the server side of a WebSocket
//! upgrade.

mod io;
mod listener;
mod message;
mod response;
mod serve;
mod upgrade;

pub(crate) use listener::HttpListener;
pub(crate) use message::RequestParts;
pub use message::{FilePart, HttpRequest};
pub use response::HttpResponse;
pub(crate) use response::{Answer, Later};
pub(crate) use serve::{start_listener, stop_listener};
pub(crate) use upgrade::{Handover, WebSocketSide};
