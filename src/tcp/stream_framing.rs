//! How a connection's task frames its stream, and changes that on the host's word
//! (`xt_set_framing`): the framer, the epoch it frames in, and the timeout after which bytes
//! that do not complete a message are delivered as one.
//!
//! A change applies from the next byte not yet delivered to the host: the task stops reading,
//! waits until every event it queued was handled (the dispatcher gives back, unframed, what it
//! did not deliver of them), then frames those bytes and its own unframed ones the new way.

use super::connection::Connection;
use super::messages::too_long_end;
use crate::error::Error;
use crate::framing::Framer;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

pub(super) struct StreamFraming {
    pub(super) framer: Framer,
    /// The framing epoch this framer frames in (`Connection::framing_epoch`).
    pub(super) epoch: u32,
    /// With a timeout only: boxed, so it costs nothing otherwise.
    timeout: Option<Box<PartialTimeout>>,
}

struct PartialTimeout {
    after: Duration,
    timer: Pin<Box<Sleep>>,
    /// Bytes wait in the framer since the last read: the timer counts.
    armed: bool,
}

impl StreamFraming {
    /// The listener's framing at the start (a framing the host set before the connection
    /// opened is applied at the first step, as a change).
    pub(super) fn new(conn: &Connection) -> StreamFraming {
        StreamFraming {
            framer: Framer::new(
                conn.settings.boundary.clone(),
                conn.settings.max_message_len,
            ),
            epoch: 0,
            timeout: None,
        }
    }

    /// The host changed the framing since this one was set.
    pub(super) fn changed(&self, conn: &Connection) -> bool {
        conn.framing_epoch() != self.epoch
    }

    /// Applies the framing the host asked for, once no event of the old one is left: the bytes
    /// given back and those not framed yet, framed the new way, are returned (to be queued).
    /// `eof`: the stream ended; then what is left is a last message.
    pub(super) fn apply(&mut self, conn: &Connection, eof: bool) -> Result<Vec<Bytes>, Error> {
        let epoch = conn.framing_epoch();
        let (spec, returned) = conn.take_reframe();
        let mut input = returned;
        if let Some(rest) = self.framer.take_partial() {
            input.push(rest);
        }
        if let Some(spec) = spec {
            self.framer = Framer::for_mode(&spec.mode, conn.settings.max_message_len);
            conn.set_applied(spec.mode);
            self.timeout = spec.timeout.map(|after| {
                Box::new(PartialTimeout {
                    after,
                    timer: Box::pin(tokio::time::sleep(after)),
                    armed: false,
                })
            });
        }
        self.epoch = epoch;
        let mut messages = Vec::new();
        for chunk in input {
            self.framer
                .push(&chunk, &mut messages)
                .map_err(|t| too_long_end(t.limit))?;
        }
        if eof {
            if let Some(rest) = self.framer.finish().map_err(|t| too_long_end(t.limit))? {
                messages.push(rest);
            }
        }
        self.read_done();
        Ok(messages)
    }

    /// After a read: with a timeout, bytes left unframed start (or restart) their wait.
    pub(super) fn read_done(&mut self) {
        let waiting = self.framer.buffered() > 0;
        if let Some(t) = self.timeout.as_mut() {
            t.armed = waiting;
            if waiting {
                let at = Instant::now() + t.after;
                t.timer.as_mut().reset(at);
            }
        }
    }

    /// Bytes that waited the timeout without completing a message: delivered as one.
    pub(super) fn poll_timeout(&mut self, cx: &mut Context<'_>) -> Poll<Bytes> {
        let Some(t) = self.timeout.as_mut() else {
            return Poll::Pending;
        };
        if !t.armed {
            return Poll::Pending;
        }
        match t.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                t.armed = false;
                match self.framer.take_partial() {
                    Some(bytes) => Poll::Ready(bytes),
                    None => Poll::Pending,
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
