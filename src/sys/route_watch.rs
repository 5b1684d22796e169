//! Being told that the machine's interfaces or addresses changed: on Linux an rtnetlink socket
//! subscribed to link and address notifications (the notification only wakes the watcher; it
//! then lists the interfaces again), elsewhere a periodic look (the macOS path; the `portable`
//! feature selects it on Linux, where the tests run it).

use std::io;

/// Link and address changes, IPv4 and IPv6 (RTMGRP_LINK | RTMGRP_IPV4_IFADDR |
/// RTMGRP_IPV6_IFADDR).
#[cfg(all(target_os = "linux", not(feature = "portable")))]
const GROUPS: u32 = 0x1 | 0x10 | 0x100;

#[cfg(all(target_os = "linux", not(feature = "portable")))]
pub(crate) struct RouteWatch {
    socket: tokio::io::unix::AsyncFd<netlink_sys::Socket>,
}

#[cfg(all(target_os = "linux", not(feature = "portable")))]
impl RouteWatch {
    /// Subscribes; must be called inside the runtime.
    pub(crate) fn new() -> io::Result<RouteWatch> {
        let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
        socket.bind(&netlink_sys::SocketAddr::new(0, GROUPS))?;
        socket.set_non_blocking(true)?;
        // SAFETY: the netlink socket owns its descriptor and moves into the AsyncFd, which
        // keeps it open and unchanged until it is dropped (as_raw_fd always returns it).
        let socket = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE)
        };
        Ok(RouteWatch {
            socket: socket.map_err(io::Error::from)?,
        })
    }

    /// Resolves once something changed (every notification waiting is consumed).
    pub(crate) async fn changed(&self) -> io::Result<()> {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            let mut guard = self.socket.readable().await?;
            let mut got = false;
            loop {
                match guard
                    .get_inner()
                    .recv(&mut &mut buf[..], libc::MSG_DONTWAIT)
                {
                    Ok(_) => got = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        break;
                    }
                    // ENOBUFS: notifications were lost; something changed all the same.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => got = true,
                    Err(e) => return Err(e),
                }
            }
            if got {
                return Ok(());
            }
        }
    }
}

/// Without a notification socket: a look every [`LOOK_EVERY`].
#[cfg(any(not(target_os = "linux"), feature = "portable"))]
pub(crate) struct RouteWatch {
    /// When the next look is due. Kept here, not in the future `changed` returns: the watcher
    /// drops that future whenever another of its timers fires first, and a sleep that started
    /// over each time would never end (so no change was ever seen).
    next: parking_lot::Mutex<tokio::time::Instant>,
}

#[cfg(any(not(target_os = "linux"), feature = "portable"))]
const LOOK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(any(not(target_os = "linux"), feature = "portable"))]
impl RouteWatch {
    pub(crate) fn new() -> io::Result<RouteWatch> {
        Ok(RouteWatch {
            next: parking_lot::Mutex::new(tokio::time::Instant::now() + LOOK_EVERY),
        })
    }

    /// Resolves when the next look is due.
    pub(crate) async fn changed(&self) -> io::Result<()> {
        let due = *self.next.lock();
        tokio::time::sleep_until(due).await;
        *self.next.lock() = tokio::time::Instant::now() + LOOK_EVERY;
        Ok(())
    }
}
