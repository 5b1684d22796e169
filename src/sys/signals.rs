//! Keeping SIGPIPE away from the host. A write to a connection the peer has reset fails with
//! EPIPE, and the kernel also sends the writing thread SIGPIPE unless the call asked it not to
//! (MSG_NOSIGNAL, Linux; SO_NOSIGPIPE, set on every socket on macOS by socket2 and mio).
//! Vectored writes (writev: hyper's, and rustls' through tokio) cannot ask, and a host that
//! left SIGPIPE at its default (C, Swift, Xojo programs) would be killed: seen with an HTTPS
//! listener whose client reset during a large response. The network threads block the signal,
//! so such a write only returns its error.

/// Blocks SIGPIPE on the calling thread (each network thread, as it starts).
pub(crate) fn block_sigpipe_on_this_thread() {
    // SAFETY: a local, initialised signal set; pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
