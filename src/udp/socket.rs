//! UDP sockets for listeners: binding for shared discovery ports, batched receive, and sends
//! out of one chosen interface.
//!
//! A listener binds two sockets, IPv4 and IPv6-only, on one port (unless a bind address picks
//! one family): group memberships, broadcast and interface selection are per family anyway, and
//! an IPv4 peer is then plainly IPv4.

use crate::error::{self, Error};
use crate::info::PeerIdentity;
use crate::ports::{bind_error, listen_addresses};
use bytes::Bytes;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Receive buffer asked for each socket: room for a burst of datagrams while the host is busy.
const RECV_BUFFER: usize = 4 << 20;
/// Datagrams read per system call.
pub(crate) const BATCH: usize = 32;
/// Room for one datagram: the largest UDP payload fits, so nothing is ever truncated.
const SLOT: usize = 65536;
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
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn set_int_option(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> bool {
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
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
    /// The sender's name and MAC from the peer cache (filled when the batch is queued).
    pub identity: Option<Arc<PeerIdentity>>,
}

/// What one receive call gave.
pub(crate) struct Batch {
    pub datagrams: Vec<Datagram>,
    /// The kernel's count of datagrams it dropped on this socket (buffer full), if reported.
    pub kernel_drops: Option<u32>,
}

/// Turns a sockaddr_storage the kernel filled into a socket address.
fn from_storage(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(target_os = "linux")]
struct RecvScratch {
    buffers: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage]>,
    controls: Box<[[u64; 8]]>,
}

#[cfg(target_os = "linux")]
thread_local! {
    /// Receive buffers of each runtime thread (BATCH slots of 64 KiB; only touched pages count).
    static SCRATCH: RefCell<RecvScratch> = RefCell::new(RecvScratch {
        buffers: vec![0u8; BATCH * SLOT].into_boxed_slice(),
        // SAFETY: an all-zero sockaddr_storage is valid (family AF_UNSPEC).
        addrs: vec![unsafe { std::mem::zeroed() }; BATCH].into_boxed_slice(),
        controls: vec![[0u64; 8]; BATCH].into_boxed_slice(),
    });
}

/// Reads up to BATCH datagrams without blocking (recvmmsg); WouldBlock when there are none.
#[cfg(target_os = "linux")]
pub(crate) fn recv_batch(socket: &UdpSocket) -> io::Result<Batch> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let RecvScratch {
            buffers,
            addrs,
            controls,
        } = &mut *scratch;
        let mut iovecs: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: all-zero mmsghdrs are valid; every pointer is set below.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..BATCH {
            iovecs[i].iov_base = buffers[i * SLOT..].as_mut_ptr().cast();
            iovecs[i].iov_len = SLOT;
            let h = &mut headers[i].msg_hdr;
            h.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = controls[i].as_mut_ptr().cast();
            h.msg_controllen = std::mem::size_of_val(&controls[i]) as _;
        }
        let received = socket.try_io(Interest::READABLE, || {
            // SAFETY: BATCH headers, each pointing at live buffers of the sizes given.
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })?;
        let total: usize = headers[..received].iter().map(|h| h.msg_len as usize).sum();
        let mut joined = Vec::with_capacity(total);
        for (i, h) in headers[..received].iter().enumerate() {
            joined.extend_from_slice(&buffers[i * SLOT..i * SLOT + h.msg_len as usize]);
        }
        let joined = Bytes::from(joined);
        let mut datagrams = Vec::with_capacity(received);
        let mut kernel_drops = None;
        let mut offset = 0;
        for (i, h) in headers[..received].iter().enumerate() {
            let len = h.msg_len as usize;
            if let Some(from) = from_storage(&addrs[i]) {
                datagrams.push(Datagram {
                    from,
                    data: joined.slice(offset..offset + len),
                    identity: None,
                });
            }
            offset += len;
            if let Some(d) = rxq_overflow(&h.msg_hdr) {
                kernel_drops = Some(d);
            }
        }
        Ok(Batch {
            datagrams,
            kernel_drops,
        })
    })
}

/// The SO_RXQ_OVFL counter in a received message's control data, if there.
#[cfg(target_os = "linux")]
fn rxq_overflow(header: &libc::msghdr) -> Option<u32> {
    // SAFETY: walking the control buffer the kernel filled, with the libc CMSG macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const u32));
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// Reads up to BATCH datagrams without blocking (one call each); WouldBlock when there are none.
#[cfg(not(target_os = "linux"))]
pub(crate) fn recv_batch(socket: &UdpSocket) -> io::Result<Batch> {
    let mut buf = vec![0u8; SLOT];
    let mut datagrams = Vec::new();
    while datagrams.len() < BATCH {
        match socket.try_recv_from(&mut buf) {
            Ok((n, from)) => datagrams.push(Datagram {
                from,
                data: Bytes::copy_from_slice(&buf[..n]),
                identity: None,
            }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !datagrams.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(Batch {
        datagrams,
        kernel_drops: None,
    })
}

// Sends go straight to the (non-blocking) socket rather than through tokio's readiness
// tracking: nothing ever waits for a UDP socket to become writable (a full send buffer is
// reported to the host), and a socket's write readiness is only known once the reactor polled.

fn result(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sends one datagram now; a full send buffer is reported as WouldBlock.
pub(crate) fn send_to(socket: &UdpSocket, data: &[u8], to: SocketAddr) -> io::Result<()> {
    let dest = SockAddr::from(to);
    // SAFETY: sendto with a live buffer and address of the given lengths.
    let n = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT,
            dest.as_ptr().cast(),
            dest.len(),
        )
    };
    result(n).map(|_| ())
}

/// Sends one datagram out of the interface `ifindex` (multicast and limited broadcast).
pub(crate) fn send_via(
    socket: &UdpSocket,
    data: &[u8],
    to: SocketAddr,
    ifindex: u32,
) -> io::Result<()> {
    let dest = SockAddr::from(to);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = dest.as_ptr() as *mut _;
    msg.msg_namelen = dest.len();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: filling one control message of the right size inside `control`.
    unsafe {
        match to {
            SocketAddr::V4(_) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: ifindex as libc::c_int,
                    ipi_spec_dst: libc::in_addr { s_addr: 0 },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of_val(&info) as u32) as _;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::IPPROTO_IP;
                (*cmsg).cmsg_type = libc::IP_PKTINFO;
                (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(&info) as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::in_pktinfo, info);
            }
            SocketAddr::V6(_) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: [0; 16] },
                    ipi6_ifindex: ifindex as _,
                };
                msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of_val(&info) as u32) as _;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
                (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
                (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(&info) as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::in6_pktinfo, info);
            }
        }
    }
    // SAFETY: `msg` and everything it points to live for the call.
    result(unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_DONTWAIT) }).map(|_| ())
}

/// Sends many datagrams in one call where the system allows (sendmmsg); returns how many went.
/// An error is returned only if the first one fails.
#[cfg(target_os = "linux")]
pub(crate) fn send_batch(
    socket: &UdpSocket,
    datagrams: &[(SocketAddr, &[u8])],
) -> io::Result<usize> {
    let count = datagrams.len().min(1024);
    let dests: Vec<SockAddr> = datagrams[..count]
        .iter()
        .map(|(to, _)| SockAddr::from(*to))
        .collect();
    let mut iovecs: Vec<libc::iovec> = datagrams[..count]
        .iter()
        .map(|(_, d)| libc::iovec {
            iov_base: d.as_ptr() as *mut _,
            iov_len: d.len(),
        })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = (0..count)
        .map(|i| {
            // SAFETY: an all-zero mmsghdr is valid; pointers set below.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = dests[i].as_ptr() as *mut _;
            h.msg_hdr.msg_namelen = dests[i].len();
            h.msg_hdr.msg_iov = &mut iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    socket.try_io(Interest::WRITABLE, || {
        // SAFETY: `count` headers pointing at live addresses and buffers.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn send_batch(
    socket: &UdpSocket,
    datagrams: &[(SocketAddr, &[u8])],
) -> io::Result<usize> {
    for (i, (to, data)) in datagrams.iter().enumerate() {
        if let Err(e) = send_to(socket, data, *to) {
            return if i == 0 { Err(e) } else { Ok(i) };
        }
    }
    Ok(datagrams.len())
}
