//! TCP: listeners, outgoing connections, the connection both share, its task, and flow control.

mod connection;
mod driver;
mod flow;
mod listener;
mod messages;
mod outgoing;
mod scratch;
mod stream_framing;
mod task;
mod tls_pump;
mod websocket;
mod ws_client;
mod ws_pump;

pub(crate) use connection::{CloseReason, Connection, FramingSpec};
pub(crate) use driver::Drivers;
pub use flow::BACKLOG_LIMIT;
pub(crate) use flow::{Backlog, Credits};
pub(crate) use listener::start_listener;
pub(crate) use outgoing::{open_connection, open_websocket};
pub(crate) use websocket::Upgrading;

/// Longest boundary accepted (longer ones are almost certainly a caller's mistake).
pub const MAX_BOUNDARY_LEN: usize = 4096;
