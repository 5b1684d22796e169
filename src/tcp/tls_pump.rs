//! An open TLS connection's reading and writing: the same framing, flow control, write queue
//! and close rules as the plain pump in `task.rs`, through rustls (tokio-rustls's stream).
//!
//! The plain pump writes straight to the socket from any thread; a TLS connection cannot (the
//! bytes must be encrypted in order, by one owner), so its `Connection` has no plain stream:
//! `send` only queues, and this task takes the queue and writes it.
//!
//! Reading: the task waits for the socket to be readable, then decrypts what is there into
//! the thread's scratch buffer without waiting (as the plain pump does), so an idle TLS
//! connection holds no read buffer of its own beyond rustls's.

use super::connection::{CloseReason, Connection};
use super::flow::Pace;
use super::messages::{lost, queue_messages, too_long_end};
use super::scratch::with_scratch;
use super::stream_framing::StreamFraming;
use crate::error::Error;
use crate::shared::Shared;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Most bytes decrypted in one go before the task lets others run.
const READ_BUDGET: usize = 256 << 10;

/// A TLS stream (client or server side) over a TCP socket the task can wait on.
pub(super) trait TlsIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    fn tcp(&self) -> &TcpStream;
}

impl TlsIo for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl TlsIo for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// What one read without waiting gave.
enum Decrypted {
    /// Bytes read (and framed); more may follow.
    Some,
    /// The read budget is used up: let other tasks run, then read on.
    Budget,
    /// Nothing now: wait for the socket.
    Nothing,
    Eof,
    Failed(Error),
}
/// How long `xt_disconnect` waits for queued data to drain into a peer that does not read.
const LINGER: Duration = Duration::from_secs(30);
/// How long a close waits for the close_notify to go out otherwise.
const CLOSE_NOTIFY: Duration = Duration::from_secs(1);

/// Runs the open connection until its end; returns why it ended. `tls` is the client or
/// server side of a finished handshake.
pub(super) async fn run<S: TlsIo>(shared: Arc<Shared>, conn: Arc<Connection>, mut tls: S) -> Error {
    let mut framing = StreamFraming::new(&conn);
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
                    tls.write_all(&out).await?;
                }
                tls.shutdown().await
            })
            .await;
            return lost(reason.message());
        }
        let out = conn.take_output();
        if !out.is_empty() {
            if let Err(e) = tls.write_all(&out).await {
                return Error::io("write failed", &e);
            }
            conn.touch_write();
            continue;
        }
        // The host changed the framing: once every event framed the old way was handled, the
        // rest is framed the new way (see `stream_framing.rs`).
        if framing.changed(&conn) {
            // Paused here means output or a close came first: seen to at the top.
            if let Pace::Drained = conn.paced(true, &shared.backlog).await {
                match framing.apply(&conn, eof) {
                    Ok(messages) => queue_messages(&shared, &conn, messages, framing.epoch),
                    Err(end) => return end,
                }
            }
            continue;
        }
        match conn.paced(eof, &shared.backlog).await {
            Pace::Drained => return lost("the peer closed the connection"),
            Pace::Again | Pace::Paused => continue,
            Pace::Read => match read_now(&shared, &conn, &mut tls, &mut framing) {
                Decrypted::Some => {}
                Decrypted::Budget => tokio::task::yield_now().await,
                Decrypted::Eof => {
                    eof = true;
                    match framing.framer.finish() {
                        Ok(Some(rest)) => queue_messages(&shared, &conn, vec![rest], framing.epoch),
                        Ok(None) => {}
                        Err(too_long) => return too_long_end(too_long.limit),
                    }
                }
                // A TLS alert, a reset, a close without close_notify, a message too long.
                Decrypted::Failed(end) => return end,
                Decrypted::Nothing => {
                    tokio::select! {
                        _ = tls.tcp().readable() => {}
                        _ = conn.woken(framing.epoch) => {}
                        // Bytes that waited the framing timeout: one message.
                        partial = std::future::poll_fn(|cx| framing.poll_timeout(cx)) => {
                            queue_messages(&shared, &conn, vec![partial], framing.epoch);
                        }
                    }
                }
            },
        }
    }
}

/// Decrypts what the socket (and rustls) has now, without waiting, into the thread's scratch
/// buffer; frames it and queues the messages. Stops at the read budget (the task then comes
/// back at once: the next call reads on).
fn read_now<S: TlsIo>(
    shared: &Shared,
    conn: &Arc<Connection>,
    tls: &mut S,
    framing: &mut StreamFraming,
) -> Decrypted {
    let framer = &mut framing.framer;
    let mut cx = Context::from_waker(Waker::noop());
    let mut messages = Vec::new();
    let mut total = 0;
    let outcome = with_scratch(|scratch| loop {
        let mut buf = ReadBuf::new(scratch);
        match Pin::new(&mut *tls).poll_read(&mut cx, &mut buf) {
            Poll::Pending => {
                break if total > 0 {
                    Decrypted::Some
                } else {
                    Decrypted::Nothing
                }
            }
            Poll::Ready(Err(e)) => break Decrypted::Failed(Error::io("read failed", &e)),
            Poll::Ready(Ok(())) if buf.filled().is_empty() => break Decrypted::Eof,
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                total += n;
                if let Err(too_long) = framer.push(buf.filled(), &mut messages) {
                    break Decrypted::Failed(too_long_end(too_long.limit));
                }
                if total >= READ_BUDGET {
                    break Decrypted::Budget;
                }
            }
        }
    });
    queue_messages(shared, conn, messages, framing.epoch);
    framing.read_done();
    outcome
}
