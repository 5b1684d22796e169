//! An open WebSocket connection's reading and writing (RFC 6455 through tungstenite): the same
//! flow control, write queue and close rules as the other pumps, with messages instead of
//! framed bytes.
//!
//! Reading: each whole message (fragments joined by tungstenite, within
//! `XT_OPT_WS_MAX_MESSAGE_BYTES`) is one `data_available` with its kind. Pings are answered by
//! tungstenite; with an idle timeout, a quiet peer is pinged, and one that stays quiet for
//! another timeout is closed.
//!
//! Writing: `Connection::send_message` queues whole messages as records; this task takes them
//! and sends each as one message.
//!
//! Closing: by the host, a close frame (1000) and a short wait for the peer's; by the peer, its
//! close frame is answered and what it sent before is still delivered; a protocol violation is
//! answered with the close code RFC 6455 names (1002, 1007, 1009) before the end.

use super::connection::{CloseReason, Connection, RECORD_HEAD};
use super::flow::Pace;
use super::messages::{lost, queue_of_kind};
use crate::error::{self, Error};
use crate::info::MessageKind;
use crate::shared::Shared;
use bytes::{Buf, Bytes};
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// How long a close waits for the peer's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long `xt_disconnect` waits for queued messages to go out to a peer that does not read.
const LINGER: Duration = Duration::from_secs(30);

/// Bytes tungstenite keeps for reading per connection (allocated up front: small, for hosts
/// with many quiet connections; a larger message grows its own buffer).
const READ_BUFFER: usize = 4096;
/// Most messages already received handed to the host as one event.
const BATCH: usize = 64;

/// tungstenite's limits for a connection: whole messages and single frames both within the
/// message limit, so a peer cannot make it hold more.
pub(crate) fn config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// What one message read means for the pump.
enum Read {
    /// Text or binary, for the host.
    Message(MessageKind, Bytes),
    /// A ping (its pong is queued), a pong or a raw frame: nothing for the host.
    Control {
        ping: bool,
    },
    Close(Option<CloseFrame>),
    Failed(WsError),
    Ended,
}

fn classify(next: Option<Result<Message, WsError>>) -> Read {
    match next {
        Some(Ok(Message::Text(text))) => Read::Message(MessageKind::Text, Bytes::from(text)),
        Some(Ok(Message::Binary(data))) => Read::Message(MessageKind::Binary, data),
        Some(Ok(Message::Ping(_))) => Read::Control { ping: true },
        Some(Ok(Message::Pong(_) | Message::Frame(_))) => Read::Control { ping: false },
        Some(Ok(Message::Close(frame))) => Read::Close(frame),
        Some(Err(e)) => Read::Failed(e),
        None => Read::Ended,
    }
}

/// Hands messages of one kind to the host as one event.
fn queue_run(shared: &Shared, conn: &Arc<Connection>, run: &mut Vec<Bytes>, kind: MessageKind) {
    if !run.is_empty() {
        queue_of_kind(shared, conn, std::mem::take(run), kind);
    }
}

/// Runs an open WebSocket until its end; returns why it ended (the final event's error).
pub(super) async fn run<S>(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    mut ws: WebSocketStream<S>,
) -> Error
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let idle = conn.settings.idle_timeout;
    let mut quiet_since = Instant::now();
    let mut pinged = false;
    // Set once the peer's close frame came: its words, for the final event.
    let mut peer_closed: Option<String> = None;
    loop {
        if let Some(reason) = conn.close_reason() {
            return close(&mut ws, &conn, reason).await;
        }
        let out = conn.take_output();
        if !out.is_empty() {
            if peer_closed.is_some() {
                continue; // nothing can be sent after the peer's close: dropped
            }
            if let Err(e) = send_records(&mut ws, out.freeze()).await {
                return io_end(e);
            }
            conn.touch_write();
            continue;
        }
        match conn.paced(peer_closed.is_some(), &shared.backlog).await {
            Pace::Drained => return lost(peer_closed.as_deref().unwrap_or("closed")),
            // Paused here means output or a close came: seen to at the top.
            Pace::Again | Pace::Paused => continue,
            Pace::Read => {
                let ping_at = idle.map(|d| quiet_since + d);
                tokio::select! {
                    next = ws.next() => {
                        quiet_since = Instant::now();
                        pinged = false;
                        // This message, and those already received behind it (without
                        // waiting), go to the host in runs of one kind: one event per run.
                        let (mut run, mut run_kind) = (Vec::new(), MessageKind::Text);
                        let mut read = Some(classify(next));
                        let (mut flush, mut taken) = (false, 0);
                        while let Some(this) = read.take() {
                            match this {
                                Read::Message(kind, data) => {
                                    if kind != run_kind {
                                        queue_run(&shared, &conn, &mut run, run_kind);
                                        run_kind = kind;
                                    }
                                    run.push(data);
                                }
                                Read::Control { ping } => flush |= ping,
                                Read::Close(frame) => {
                                    queue_run(&shared, &conn, &mut run, run_kind);
                                    // tungstenite queued the answering close frame: send it,
                                    // then the end once what came before is delivered.
                                    let _ = tokio::time::timeout(CLOSE_WAIT, SinkExt::close(&mut ws)).await;
                                    peer_closed = Some(describe_close("closed by the peer", frame.as_ref()));
                                    break;
                                }
                                Read::Failed(e) => {
                                    queue_run(&shared, &conn, &mut run, run_kind);
                                    return violation(&mut ws, e, conn.settings.max_message_len).await;
                                }
                                Read::Ended => {
                                    queue_run(&shared, &conn, &mut run, run_kind);
                                    return lost("the peer closed the connection without a close frame");
                                }
                            }
                            taken += 1;
                            if taken < BATCH {
                                read = ws.next().now_or_never().map(classify);
                            }
                        }
                        queue_run(&shared, &conn, &mut run, run_kind);
                        // A ping's pong was queued by tungstenite: send it now.
                        if flush && peer_closed.is_none() {
                            if let Err(e) = ws.flush().await {
                                return io_end(e);
                            }
                        }
                    }
                    // A WebSocket's framing never changes (epoch 0).
                    _ = conn.woken(0) => {}
                    _ = sleep_until(ping_at) => {
                        if pinged {
                            let waited = idle.unwrap_or_default().as_millis();
                            return Error::new(libc::ETIMEDOUT, format!("idle timeout: no answer to a ping within {waited} ms"));
                        }
                        if let Err(e) = ws.send(Message::Ping(Bytes::new())).await {
                            return io_end(e);
                        }
                        pinged = true;
                        quiet_since = Instant::now();
                    }
                }
            }
        }
    }
}

/// Sends queued records, one message each, then flushes.
async fn send_records<S>(ws: &mut WebSocketStream<S>, mut out: Bytes) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while out.len() >= RECORD_HEAD {
        let kind = out[0];
        let len = u32::from_le_bytes([out[1], out[2], out[3], out[4]]) as usize;
        out.advance(RECORD_HEAD);
        let payload = out.split_to(len.min(out.len()));
        let message = if kind == MessageKind::Text as u8 {
            // Checked when queued; a failure here would be a bug, sent as binary then.
            match Utf8Bytes::try_from(payload.clone()) {
                Ok(text) => Message::Text(text),
                Err(_) => Message::Binary(payload),
            }
        } else {
            Message::Binary(payload)
        };
        ws.feed(message).await?;
    }
    ws.flush().await
}

/// Ends on the host's (or the library's) request: what was queued goes out (for a disconnect),
/// then a close frame, and a short wait for the peer's.
async fn close<S>(ws: &mut WebSocketStream<S>, conn: &Connection, reason: CloseReason) -> Error
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let out = conn.take_output();
    let (code, text) = match reason {
        CloseReason::Disconnect => {
            if !out.is_empty() {
                let _ = tokio::time::timeout(LINGER, send_records(ws, out.freeze())).await;
            }
            (CloseCode::Normal, "")
        }
        CloseReason::ListenerStopped | CloseReason::ContextFreed => (CloseCode::Away, "going away"),
    };
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(text),
    };
    let answered = tokio::time::timeout(CLOSE_WAIT, async {
        ws.close(Some(frame)).await.ok()?;
        // The peer's close frame ends the stream; its messages until then are dropped.
        while let Some(next) = ws.next().await {
            if let Ok(Message::Close(_)) | Err(_) = next {
                break;
            }
        }
        Some(())
    })
    .await;
    match answered {
        Ok(_) => lost(reason.message()),
        Err(_) => Error::new(
            error::TIMEOUT,
            format!(
                "{}; the peer did not answer the close within {} ms",
                reason.message(),
                CLOSE_WAIT.as_millis()
            ),
        ),
    }
}

/// A read that failed: for a protocol violation, the close code RFC 6455 names goes to the
/// peer first.
async fn violation<S>(ws: &mut WebSocketStream<S>, e: WsError, limit: usize) -> Error
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (code, end) = match &e {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => (
            CloseCode::Size,
            Error::new(
                error::OUT_OF_MEMORY,
                format!("a WebSocket message was longer than the maximum of {limit} bytes (closed with 1009)"),
            ),
        ),
        WsError::Utf8(_) => (
            CloseCode::Invalid,
            Error::new(
                error::WEBSOCKET,
                "the peer sent a text message that is not UTF-8 (closed with 1007)",
            ),
        ),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            return lost("the peer closed the connection without a close frame")
        }
        WsError::Protocol(p) => (
            CloseCode::Protocol,
            Error::new(
                error::WEBSOCKET,
                format!("the peer broke the WebSocket protocol: {p} (closed with 1002)"),
            ),
        ),
        _ => return io_end(e),
    };
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(""),
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(Some(frame))).await;
    end
}

/// A write or read that failed below the protocol.
fn io_end(e: WsError) -> Error {
    match e {
        WsError::Io(e) => Error::io("WebSocket I/O failed", &e),
        WsError::ConnectionClosed | WsError::AlreadyClosed => lost("the connection is closed"),
        other => Error::new(error::LOST_CONNECTION, format!("WebSocket: {other}")),
    }
}

/// "closed by the peer (1000 normal): bye" — what the final event says of a close frame.
pub(crate) fn describe_close(who: &str, frame: Option<&CloseFrame>) -> String {
    match frame {
        None => format!("{who} (no close code)"),
        Some(f) => {
            let code = u16::from(f.code);
            if f.reason.is_empty() {
                format!("{who} ({code})")
            } else {
                format!("{who} ({code}): {}", f.reason.as_str())
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frames_are_described_with_code_and_reason() {
        let f = CloseFrame {
            code: CloseCode::Normal,
            reason: Utf8Bytes::from_static("bye"),
        };
        assert_eq!(
            describe_close("closed by the peer", Some(&f)),
            "closed by the peer (1000): bye"
        );
        let f = CloseFrame {
            code: CloseCode::Away,
            reason: Utf8Bytes::from_static(""),
        };
        assert_eq!(describe_close("x", Some(&f)), "x (1001)");
        assert_eq!(describe_close("x", None), "x (no close code)");
    }
}
