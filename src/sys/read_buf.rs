//! Reading from a socket straight into a caller's uninitialised buffer (tokio's `ReadBuf`), so
//! the spare room need not be zeroed first: zeroing hyper's whole read buffer on every read was
//! measured to cost a memset per request.

use std::io;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

/// One non-blocking read into `buf`'s unfilled part; returns the bytes read (WouldBlock when
/// there are none).
pub(crate) fn try_read_into(stream: &TcpStream, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
    // SAFETY: the read system call only writes into the buffer (as tokio's own AsyncRead for
    // TcpStream relies on), never reads it, so its uninitialised bytes are never observed.
    let unfilled =
        unsafe { &mut *(buf.unfilled_mut() as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]) };
    let n = stream.try_read(unfilled)?;
    // SAFETY: the kernel wrote these `n` bytes.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Ok(n)
}
