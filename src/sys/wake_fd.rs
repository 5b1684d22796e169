//! A descriptor that is readable while it is signaled: an eventfd on Linux, a pipe elsewhere
//! (or with the `portable` feature, so the pipe runs in the Linux tests too). Poll dispatch
//! hands it to the host's run loop.

pub(crate) struct WakeFd {
    read_fd: i32,
    write_fd: i32,
}

impl WakeFd {
    #[cfg(all(target_os = "linux", not(feature = "portable")))]
    pub(crate) fn new() -> std::io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(WakeFd {
            read_fd: fd,
            write_fd: fd,
        })
    }

    #[cfg(any(not(target_os = "linux"), feature = "portable"))]
    pub(crate) fn new() -> std::io::Result<Self> {
        let mut fds = [0i32; 2];
        // SAFETY: fds has room for the two descriptors pipe() writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        for fd in fds {
            // SAFETY: fd was just returned by pipe().
            unsafe {
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(WakeFd {
            read_fd: fds[0],
            write_fd: fds[1],
        })
    }

    /// The descriptor to watch for readability.
    pub(crate) fn read_fd(&self) -> i32 {
        self.read_fd
    }

    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own descriptor. A full pipe or counter
        // already means "readable", so the result does not matter.
        unsafe { libc::write(self.write_fd, (&one as *const u64).cast(), 8) };
    }

    pub(crate) fn clear(&self) {
        let mut sink = [0u8; 64];
        // SAFETY: reads into a live local buffer from our own non-blocking descriptor.
        while unsafe { libc::read(self.read_fd, sink.as_mut_ptr().cast(), sink.len()) } > 0 {
            if self.read_fd != self.write_fd {
                continue;
            }
            break; // an eventfd is reset by one read
        }
    }
}

impl Drop for WakeFd {
    fn drop(&mut self) {
        // SAFETY: closing descriptors this struct owns, once.
        unsafe {
            libc::close(self.read_fd);
            if self.write_fd != self.read_fd {
                libc::close(self.write_fd);
            }
        }
    }
}

/// Whether `fd` is readable now.
#[cfg(test)]
pub(crate) fn readable(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_exactly_while_signaled() {
        let w = WakeFd::new().unwrap();
        assert!(!readable(w.read_fd()));
        w.signal();
        w.signal();
        assert!(readable(w.read_fd()));
        w.clear();
        assert!(!readable(w.read_fd()));
    }
}
