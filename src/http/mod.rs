//! The embedded HTTP/1.1 server (XTension's "HTML listener"), on hyper and the context's
//! runtime. hyper does the protocol: keep-alive, pipelining, chunked bodies, 100-continue,
//! HEAD, Date and Content-Length, and the automatic 400/414/431 answers.
//!
//! `listener.rs` is the listener as every thread sees it, `serve.rs` starting it and its tasks, `message.rs`
//! the request and response the host sees, `io.rs` the socket as hyper's IO.

mod io;
mod listener;
mod message;
mod serve;

pub(crate) use listener::HttpListener;
pub(crate) use message::RequestParts;
pub use message::{FilePart, HttpRequest, HttpResponse};
pub(crate) use serve::{start_listener, stop_listener};
