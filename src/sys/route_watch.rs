//! Being told that the machine's interfaces or addresses changed (the notification only wakes
//! the watcher; it then lists the interfaces again):
//! - Linux: an rtnetlink socket subscribed to link and address notifications.
//! - macOS: a routing socket (`PF_ROUTE`), which carries every routing message; only interface
//!   and address messages count ([`interface_change_in`], tested here on hand-built messages),
//!   not the route and neighbour-entry messages a busy LAN makes all the time. Never run here.
//! - Where neither can be opened, and on Linux with the `portable` feature (where the tests run
//!   it): a look every 2 s.

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

/// Without rtnetlink: macOS's routing socket, else a look every [`LOOK_EVERY`].
#[cfg(any(not(target_os = "linux"), feature = "portable"))]
pub(crate) struct RouteWatch {
    /// When the next look is due. Kept here, not in the future `changed` returns: the watcher
    /// drops that future whenever another of its timers fires first, and a sleep that started
    /// over each time would never end (so no change was ever seen).
    next: parking_lot::Mutex<tokio::time::Instant>,
    #[cfg(target_vendor = "apple")]
    routing: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

#[cfg(any(not(target_os = "linux"), feature = "portable"))]
const LOOK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(any(not(target_os = "linux"), feature = "portable"))]
impl RouteWatch {
    /// Opens the routing socket where there is one; must be called inside the runtime.
    pub(crate) fn new() -> io::Result<RouteWatch> {
        Ok(RouteWatch {
            next: parking_lot::Mutex::new(tokio::time::Instant::now() + LOOK_EVERY),
            #[cfg(target_vendor = "apple")]
            routing: routing_socket().ok(),
        })
    }

    /// Resolves once something changed, or when the next look is due.
    pub(crate) async fn changed(&self) -> io::Result<()> {
        #[cfg(target_vendor = "apple")]
        if let Some(socket) = &self.routing {
            return routing_change(socket).await;
        }
        let due = *self.next.lock();
        tokio::time::sleep_until(due).await;
        *self.next.lock() = tokio::time::Instant::now() + LOOK_EVERY;
        Ok(())
    }
}

/// A non-blocking routing socket for every address family.
#[cfg(target_vendor = "apple")]
fn routing_socket() -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe { libc::socket(libc::PF_ROUTE, libc::SOCK_RAW, libc::AF_UNSPEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket() and nothing else owns it.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: fcntl on the descriptor owned above.
    unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::F_SETFL,
            libc::O_NONBLOCK,
        );
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::F_SETFD,
            libc::FD_CLOEXEC,
        );
    }
    // SAFETY: the descriptor is owned by `fd`, which moves into the AsyncFd and stays open and
    // unchanged until it is dropped.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

/// Waits for routing messages until one is about an interface or an address.
#[cfg(target_vendor = "apple")]
async fn routing_change(socket: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>) -> io::Result<()> {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let mut guard = socket.readable().await?;
        let mut changed = false;
        loop {
            // SAFETY: read into a live buffer of the length given.
            let n = unsafe {
                libc::read(
                    std::os::fd::AsRawFd::as_raw_fd(guard.get_inner()),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n >= 0 {
                changed |= interface_change_in(&buf[..n as usize]);
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => {
                    guard.clear_ready();
                    break;
                }
                // Messages were lost; something may have changed.
                Some(libc::ENOBUFS) => changed = true,
                _ => return Err(e),
            }
        }
        if changed {
            return Ok(());
        }
    }
}

/// macOS's routing message types about interfaces and their addresses (`<net/route.h>`):
/// RTM_NEWADDR, RTM_DELADDR, RTM_IFINFO, RTM_IFINFO2. Route and neighbour-entry messages
/// (RTM_ADD, RTM_DELETE, RTM_CHANGE...) do not count.
#[cfg_attr(not(any(target_vendor = "apple", test)), allow(dead_code))]
const INTERFACE_MESSAGES: [u8; 4] = [0xc, 0xd, 0xe, 0x12];

/// Whether a read from a routing socket holds a message about an interface or an address.
/// Every routing message starts with its length (u16) and, at byte 3, its type.
#[cfg_attr(not(any(target_vendor = "apple", test)), allow(dead_code))]
pub(crate) fn interface_change_in(read: &[u8]) -> bool {
    let mut offset = 0;
    while let Some(head) = read.get(offset..offset + 4) {
        if INTERFACE_MESSAGES.contains(&head[3]) {
            return true;
        }
        let length = u16::from_ne_bytes([head[0], head[1]]) as usize;
        if length < 4 {
            break;
        }
        offset += length;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, length: u16) -> Vec<u8> {
        let mut m = vec![0u8; length as usize];
        m[..2].copy_from_slice(&length.to_ne_bytes());
        m[2] = 5; // RTM_VERSION
        m[3] = kind;
        m
    }

    #[test]
    fn only_interface_and_address_messages_count() {
        // RTM_ADD, RTM_DELETE, RTM_CHANGE, RTM_RESOLVE: routes and neighbour entries.
        let mut routes = Vec::new();
        for kind in [0x1, 0x2, 0x3, 0x6] {
            routes.extend(message(kind, 92));
        }
        assert!(!interface_change_in(&routes));
        for kind in INTERFACE_MESSAGES {
            let mut read = routes.clone();
            read.extend(message(kind, 20));
            assert!(interface_change_in(&read), "type {kind:#x}");
        }
        // A cut read and a message claiming no length end the walk without reading past it.
        assert!(!interface_change_in(&routes[..100]));
        assert!(!interface_change_in(&message(0xc, 20)[..3]));
        let mut zero = message(0x1, 92);
        zero[..2].copy_from_slice(&0u16.to_ne_bytes());
        zero.extend(message(0xc, 20));
        assert!(!interface_change_in(&zero));
    }
}
