//! UDP sockets for listeners: binding for shared discovery ports, and what a receive gives.
//! The system calls themselves are in `sys::udp`.
//!
//! A listener binds two sockets, IPv4 and IPv6-only, on one port (unless a bind address picks
//! one family): group memberships, broadcast and interface selection are per family anyway, and
//! an IPv4 peer is then plainly IPv4.

use crate::error::{self, Error};
use crate::info::PeerIdentity;
use crate::ports::{bind_error, listen_addresses};
use crate::sys::udp::set_int_option;
use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Receive buffer asked for each socket: room for a burst of datagrams while the host is busy.
const RECV_BUFFER: usize = 4 << 20;
/// The largest payload of one datagram: IPv4 65535 - 20 (IP) - 8 (UDP); IPv6 65535 - 8.
pub(crate) const MAX_DATAGRAM_V4: usize = 65507;
pub(crate) const MAX_DATAGRAM_V6: usize = 65527;

/// The bound sockets of one listener.
pub(crate) struct Bound {
    pub v4: Option<std::net::UdpSocket>,
    pub v6: Option<std::net::UdpSocket>,
    pub port: u16,
}

fn setup(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Discovery ports (1900 SSDP, 5353 mDNS) are shared with other programs and contexts.
    // On Linux SO_REUSEADDR alone shares a UDP port, and SO_REUSEPORT must stay off: sockets
    // that all set it form a load-balancing group, and Linux then hands a group's multicast to
    // any one member, also to one that never joined that group (measured; see
    // tests/udp_lan.rs). The BSDs and macOS need SO_REUSEPORT to share multicast at all.
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(target_os = "linux")))]
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
        // Only the groups this socket joined, not every group any socket on the host joined.
        #[cfg(target_os = "linux")]
        let _ = socket.set_multicast_all_v6(false);
    } else {
        socket.set_broadcast(true)?;
        #[cfg(target_os = "linux")]
        let _ = socket.set_multicast_all_v4(false);
    }
    size_receive_buffer(&socket);
    #[cfg(target_os = "linux")]
    set_int_option(&socket, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1);
    crate::sys::udp::want_packet_info(&socket, addr.is_ipv6());
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// As large as allowed: past the system's cap when privileged (SO_RCVBUFFORCE), else up to it.
fn size_receive_buffer(socket: &Socket) {
    #[cfg(target_os = "linux")]
    if set_int_option(
        socket,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        RECV_BUFFER as libc::c_int,
    ) {
        return;
    }
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
}

/// Binds a listener's sockets on `port` (0: a free port, the same for both families).
pub(crate) fn bind(bind: Option<IpAddr>, port: u16) -> Result<Bound, Error> {
    if let Some(ip) = bind {
        let addr = SocketAddr::new(ip, port);
        let socket = setup(addr).map_err(|e| bind_error("UDP", addr, &e))?;
        let port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(port, |a| a.port());
        let socket = std::net::UdpSocket::from(socket);
        return Ok(match ip {
            IpAddr::V4(_) => Bound {
                v4: Some(socket),
                v6: None,
                port,
            },
            IpAddr::V6(_) => Bound {
                v4: None,
                v6: Some(socket),
                port,
            },
        });
    }
    let addrs = listen_addresses(None, port);
    let (any6, any4) = (addrs[0], addrs[1]);
    // With port 0 the IPv4 socket picks the port; the IPv6 one may find it taken: try again.
    for _ in 0..16 {
        let v4 = setup(any4).map_err(|e| bind_error("UDP", any4, &e))?;
        let port = v4
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(port, |a| a.port());
        let six = SocketAddr::new(any6.ip(), port);
        match setup(six) {
            Ok(v6) => {
                return Ok(Bound {
                    v4: Some(v4.into()),
                    v6: Some(v6.into()),
                    port,
                })
            }
            Err(e) if matches!(e.raw_os_error(), Some(c) if c == libc::EAFNOSUPPORT || c == libc::EADDRNOTAVAIL || c == libc::EPROTONOSUPPORT) =>
            {
                // No IPv6 here: IPv4 alone.
                return Ok(Bound {
                    v4: Some(v4.into()),
                    v6: None,
                    port,
                });
            }
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) && any4.port() == 0 => continue,
            Err(e) => return Err(bind_error("UDP", six, &e)),
        }
    }
    Err(Error::new(
        error::ADDRESS_IN_USE,
        "no UDP port free for both IPv4 and IPv6",
    ))
}

/// A received datagram.
pub(crate) struct Datagram {
    pub from: SocketAddr,
    pub data: Bytes,
    /// Where it arrived (destination address, interface).
    pub arrival: crate::sys::udp::Arrival,
    /// The sender's name and MAC from the peer cache (filled when the batch is queued).
    pub identity: Option<Arc<PeerIdentity>>,
}
