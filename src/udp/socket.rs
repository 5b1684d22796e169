//! UDP sockets for listeners: binding for shared discovery ports, and what a receive gives.
//! The system calls themselves are in `sys::udp`.
//!
//! A listener binds two sockets, IPv4 and IPv6-only, on one port (unless a bind address picks
//! one family): group memberships, broadcast and interface selection are per family anyway, and
//! an IPv4 peer is then plainly IPv4.

use crate::error::{self, Error};
use crate::info::PeerIdentity;
use crate::ports::{bind_error, listen_addresses};
use crate::sys::socket_options;
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
    socket_options::share_udp_port(&socket)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    } else {
        socket.set_broadcast(true)?;
    }
    socket_options::own_groups_only(&socket, addr.is_ipv6());
    socket_options::large_receive_buffer(&socket, RECV_BUFFER);
    socket_options::report_kernel_drops(&socket);
    socket_options::want_packet_info(&socket, addr.is_ipv6());
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket)
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
