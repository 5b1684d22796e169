//! An open TLS connection's reading and writing: the same framing, flow control, write queue
//! and close rules as the plain pump in `task.rs`, through rustls (tokio-rustls's stream).
//!
//! The plain pump writes straight to the socket from any thread; a TLS connection cannot (the
//! bytes must be encrypted in order, by one owner), so its `Connection` has no plain stream:
//! `send` only queues, and this task takes the queue and writes it.

use super::connection::{CloseReason, Connection};
use super::flow::{pace, Pace};
use super::messages::{lost, queue_messages, too_long_end};
use crate::error::Error;
use crate::framing::Framer;
use crate::shared::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes decrypted per read.
const READ_CHUNK: usize = 16 << 10;
/// How long `xt_disconnect` waits for queued data to drain into a peer that does not read.
const LINGER: Duration = Duration::from_secs(30);
/// How long a close waits for the close_notify to go out otherwise.
const CLOSE_NOTIFY: Duration = Duration::from_secs(1);

/// Runs the open connection until its end; returns why it ended. `tls` is the client or
/// server side of a finished handshake.
pub(super) async fn run<S>(shared: Arc<Shared>, conn: Arc<Connection>, tls: S) -> Error
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(tls);
    let mut framer = Framer::new(
        conn.settings.boundary.clone(),
        conn.settings.max_message_len,
    );
    let mut buf = vec![0u8; READ_CHUNK];
    let mut eof = false;
    loop {
        if let Some(reason) = conn.close_reason() {
            let out = conn.take_output();
            let limit = if reason == CloseReason::Disconnect {
                LINGER
            } else {
                CLOSE_NOTIFY
            };
            // Write out what was queued (a disconnect), then close_notify, bounded in time.
            let _ = tokio::time::timeout(limit, async {
                if reason == CloseReason::Disconnect && !out.is_empty() {
                    wr.write_all(&out).await?;
                }
                wr.shutdown().await
            })
            .await;
            return lost(reason.message());
        }
        let out = conn.take_output();
        if !out.is_empty() {
            if let Err(e) = wr.write_all(&out).await {
                return Error::io("write failed", &e);
            }
            conn.touch_write();
            continue;
        }
        match pace(&conn, eof, &shared.backlog) {
            Pace::Drained => return lost("the peer closed the connection"),
            Pace::Again => continue,
            Pace::Paused => conn.woken().await,
            Pace::Read => {
                tokio::select! {
                    read = rd.read(&mut buf) => match read {
                        Ok(0) => {
                            eof = true;
                            match framer.finish() {
                                Ok(Some(rest)) => queue_messages(&shared, &conn, vec![rest]),
                                Ok(None) => {}
                                Err(too_long) => return too_long_end(too_long.limit),
                            }
                        }
                        Ok(n) => {
                            let mut messages = Vec::new();
                            let pushed = framer.push(&buf[..n], &mut messages);
                            queue_messages(&shared, &conn, messages);
                            if let Err(too_long) = pushed {
                                return too_long_end(too_long.limit);
                            }
                        }
                        // A TLS alert, a reset, a close without close_notify: the end.
                        Err(e) => return Error::io("read failed", &e),
                    },
                    _ = conn.woken() => {}
                }
            }
        }
    }
}
