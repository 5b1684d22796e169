//! The socket of an HTTP connection as hyper's IO — plain or TLS — shared with the connection's
//! task, so that the task can still answer 408 on it after hyper gave up on a slow request
//! head, close it without a reset, and notice a client that went away.
//!
//! hyper and the task never use the stream at the same time (the task writes only once hyper's
//! connection future is done), so the TLS session's lock is never contended; it exists so both
//! can own the stream.

use parking_lot::Mutex;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The raw socket as tokio IO, read and written through its readiness (so it can be shared).
pub(crate) struct RawIo(pub(crate) Arc<TcpStream>);

fn poll_read_socket(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_read_ready(cx))?;
        match crate::sys::read_buf::try_read_into(stream, buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return Poll::Ready(other),
        }
    }
}

fn poll_write_socket(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        match stream.try_write(data) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return Poll::Ready(other),
        }
    }
}

fn poll_write_socket_vectored(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        match stream.try_write_vectored(bufs) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return Poll::Ready(other),
        }
    }
}

impl AsyncRead for RawIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_socket(&self.0, cx, buf).map_ok(|_| ())
    }
}

impl AsyncWrite for RawIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_socket(&self.0, cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_write_socket_vectored(&self.0, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write);
        Poll::Ready(Ok(()))
    }
}

/// A server-side TLS session over the shared socket.
pub(crate) type TlsSession = TlsStream<RawIo>;

pub(crate) struct SharedStream {
    pub(crate) tcp: Arc<TcpStream>,
    /// Boxed: a TLS session is large, and a plain connection should not carry its room.
    tls: Option<Box<Mutex<TlsSession>>>,
    /// Bytes read from the peer so far (after decryption).
    pub(crate) read: AtomicU64,
    /// The connection became a WebSocket: its new owner closes the socket, not the HTTP task.
    pub(crate) upgraded: AtomicBool,
}

impl SharedStream {
    pub(crate) fn plain(tcp: Arc<TcpStream>) -> Self {
        SharedStream {
            tcp,
            tls: None,
            read: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
        }
    }

    pub(crate) fn tls(tcp: Arc<TcpStream>, session: TlsSession) -> Self {
        SharedStream {
            tls: Some(Box::new(Mutex::new(session))),
            ..SharedStream::plain(tcp)
        }
    }

    /// Writes a short last answer (bounded in time: the peer may not read).
    pub(crate) async fn write_last(&self, data: &[u8], limit: Duration) {
        let mut io = HttpIo(self);
        let _ = tokio::time::timeout(limit, async {
            tokio::io::AsyncWriteExt::write_all(&mut io, data).await?;
            tokio::io::AsyncWriteExt::flush(&mut io).await
        })
        .await;
    }

    /// Ends the TLS session with close_notify (bounded in time); nothing for a plain stream.
    pub(crate) async fn close_session(&self, limit: Duration) {
        if let Some(tls) = &self.tls {
            let _ = tokio::time::timeout(
                limit,
                poll_fn(|cx| Pin::new(&mut *tls.lock()).poll_shutdown(cx)),
            )
            .await;
        }
    }
}

/// hyper's handle on the stream: borrowed (`HttpIo(&SharedStream)`) by the task's own last
/// writes, owned (`HttpIo(Arc<SharedStream>)`) by hyper.
pub(crate) struct HttpIo<S>(pub(crate) S);

impl<S: std::ops::Deref<Target = SharedStream> + Unpin> AsyncRead for HttpIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let s = &*self.0;
        let before = buf.filled().len();
        match &s.tls {
            None => {
                ready!(poll_read_socket(&s.tcp, cx, buf))?;
            }
            Some(tls) => ready!(Pin::new(&mut *tls.lock()).poll_read(cx, buf))?,
        }
        let n = buf.filled().len() - before;
        s.read.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl<S: std::ops::Deref<Target = SharedStream> + Unpin> AsyncWrite for HttpIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &self.0.tls {
            None => poll_write_socket(&self.0.tcp, cx, data),
            Some(tls) => Pin::new(&mut *tls.lock()).poll_write(cx, data),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &self.0.tls {
            None => poll_write_socket_vectored(&self.0.tcp, cx, bufs),
            Some(tls) => Pin::new(&mut *tls.lock()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &self.0.tls {
            None => Poll::Ready(Ok(())),
            Some(tls) => Pin::new(&mut *tls.lock()).poll_flush(cx),
        }
    }

    /// The connection's task closes the socket (after a possible last answer of its own and a
    /// lingering read), so hyper's shutdown does nothing here; a WebSocket's shutdown (after
    /// its close handshake) ends the TLS session and sends FIN.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.0.upgraded.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        if let Some(tls) = &self.0.tls {
            ready!(Pin::new(&mut *tls.lock()).poll_shutdown(cx))?;
        }
        let _ = socket2::SockRef::from(&*self.0.tcp).shutdown(std::net::Shutdown::Write);
        Poll::Ready(Ok(()))
    }
}
