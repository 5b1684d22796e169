//! TCP: listeners, outgoing connections, and the connection both share.

mod connection;
mod driver;
mod listener;
mod outgoing;
mod task;

pub(crate) use connection::{CloseReason, Connection};
pub(crate) use driver::Drivers;
pub(crate) use listener::start_listener;
pub(crate) use outgoing::open_connection;

/// Longest boundary accepted (longer ones are almost certainly a caller's mistake).
pub const MAX_BOUNDARY_LEN: usize = 4096;
