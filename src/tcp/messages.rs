//! What the pumps (plain and TLS) hand the host: the messages of a read, queued as one event
//! and counted for flow control, and the ends they report.

use super::connection::Connection;
use crate::error::{self, Error};
use crate::events::Event;
use crate::info::MessageKind;
use crate::shared::Shared;
use bytes::Bytes;
use std::sync::Arc;

/// Queues the messages of one read for the host, as one event; `epoch`: the framing epoch
/// they were framed in (see `Connection::set_framing`).
pub(super) fn queue_messages(
    shared: &Shared,
    conn: &Arc<Connection>,
    messages: Vec<Bytes>,
    epoch: u32,
) {
    queue_event(shared, conn, messages, MessageKind::Stream, epoch);
}

/// Queues WebSocket messages of one kind as one event.
pub(super) fn queue_of_kind(
    shared: &Shared,
    conn: &Arc<Connection>,
    messages: Vec<Bytes>,
    kind: MessageKind,
) {
    queue_event(shared, conn, messages, kind, 0);
}

fn queue_event(
    shared: &Shared,
    conn: &Arc<Connection>,
    messages: Vec<Bytes>,
    kind: MessageKind,
    epoch: u32,
) {
    if messages.is_empty() {
        return;
    }
    // Run here and now (inline dispatch) they are never waiting: nothing to count.
    if !shared.runs_here() {
        let bytes: usize = messages.iter().map(Bytes::len).sum();
        conn.flow.queued(bytes, messages.len(), &shared.backlog);
    }
    shared.emit(Event::Data {
        conn: conn.clone(),
        messages,
        kind,
        epoch,
    });
}

/// An orderly end (102).
pub(super) fn lost(message: &str) -> Error {
    Error::new(error::LOST_CONNECTION, message)
}

/// A message past the connection's maximum (108).
pub(super) fn too_long_end(limit: usize) -> Error {
    Error::new(
        error::OUT_OF_MEMORY,
        format!("a message was longer than the maximum of {limit} bytes"),
    )
}
