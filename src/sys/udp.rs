//! UDP system calls: receiving with each datagram's arrival (destination and interface from the
//! packet-info control message, and Linux's drop counter), and sends straight to the socket
//! (sendto, sendmsg with a packet-info control message choosing the interface).
//!
//! Linux reads and writes up to [`BATCH`] datagrams per system call (recvmmsg, sendmmsg).
//! Elsewhere (the macOS path), and on Linux with the `portable` feature, one recvmsg or sendto
//! per datagram, with the same control messages read the same way.

use bytes::Bytes;
use socket2::SockAddr;
use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams read per system call.
pub(crate) const BATCH: usize = 32;
/// Room for one datagram: the largest UDP payload fits, so nothing is ever truncated.
const SLOT: usize = 65536;

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

#[cfg(all(target_os = "linux", not(feature = "portable")))]
struct RecvScratch {
    buffers: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage]>,
    controls: Box<[[u64; 16]]>,
}

#[cfg(all(target_os = "linux", not(feature = "portable")))]
thread_local! {
    /// Receive buffers of each runtime thread (BATCH slots of 64 KiB; only touched pages count).
    static SCRATCH: RefCell<RecvScratch> = RefCell::new(RecvScratch {
        buffers: vec![0u8; BATCH * SLOT].into_boxed_slice(),
        // SAFETY: an all-zero sockaddr_storage is valid (family AF_UNSPEC).
        addrs: vec![unsafe { std::mem::zeroed() }; BATCH].into_boxed_slice(),
        controls: vec![[0u64; 16]; BATCH].into_boxed_slice(),
    });
}

/// Where a datagram arrived: its destination address (ours, a group, or a broadcast address)
/// and the interface's index, from the packet-info control message (unknown: None / 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Arrival {
    pub destination: Option<std::net::IpAddr>,
    pub interface_index: u32,
}

/// What one receive call gave, besides the datagrams themselves.
pub(crate) struct Received {
    /// Datagrams read (BATCH: more may be waiting).
    pub count: usize,
    /// The kernel's count of datagrams it dropped on this socket (buffer full), if reported.
    pub kernel_drops: Option<u32>,
}

/// The packet info in a received message's control data.
fn arrival(header: &libc::msghdr) -> Arrival {
    // SAFETY: walking the control buffer the kernel filled, with the libc CMSG macros; each
    // payload read is the type its level and type say.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            let (level, kind) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            if level == libc::IPPROTO_IP && kind == libc::IP_PKTINFO {
                let info: libc::in_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Arrival {
                    destination: Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)).into()),
                    interface_index: info.ipi_ifindex as u32,
                };
            }
            if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_PKTINFO {
                let info: libc::in6_pktinfo =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Arrival {
                    destination: Some(Ipv6Addr::from(info.ipi6_addr.s6_addr).into()),
                    interface_index: info.ipi6_ifindex,
                };
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    Arrival::default()
}

/// Reads up to BATCH datagrams without blocking (recvmmsg), handing each to `push` with its
/// sender and where it arrived; WouldBlock when there are none.
#[cfg(all(target_os = "linux", not(feature = "portable")))]
pub(crate) fn recv_batch(
    socket: &UdpSocket,
    mut push: impl FnMut(SocketAddr, Bytes, Arrival),
) -> io::Result<Received> {
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
        let mut kernel_drops = None;
        let mut offset = 0;
        for (i, h) in headers[..received].iter().enumerate() {
            let len = h.msg_len as usize;
            if let Some(from) = from_storage(&addrs[i]) {
                push(
                    from,
                    joined.slice(offset..offset + len),
                    arrival(&h.msg_hdr),
                );
            }
            offset += len;
            if let Some(d) = rxq_overflow(&h.msg_hdr) {
                kernel_drops = Some(d);
            }
        }
        Ok(Received {
            count: received,
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

/// Elsewhere the kernel's drop counter is not reported.
#[cfg(not(target_os = "linux"))]
fn rxq_overflow(_header: &libc::msghdr) -> Option<u32> {
    None
}

#[cfg(any(not(target_os = "linux"), feature = "portable"))]
thread_local! {
    /// The receive buffer of each runtime thread (one datagram of any size) and its control
    /// data.
    static ONE: RefCell<(Box<[u8]>, [u64; 16])> =
        RefCell::new((vec![0u8; SLOT].into_boxed_slice(), [0u64; 16]));
}

/// Reads up to BATCH datagrams without blocking, one recvmsg each, handing each to `push` with
/// its sender and where it arrived; WouldBlock when there are none.
#[cfg(any(not(target_os = "linux"), feature = "portable"))]
pub(crate) fn recv_batch(
    socket: &UdpSocket,
    mut push: impl FnMut(SocketAddr, Bytes, Arrival),
) -> io::Result<Received> {
    ONE.with(|one| {
        let mut one = one.borrow_mut();
        let (buffer, control) = &mut *one;
        let mut received = Received {
            count: 0,
            kernel_drops: None,
        };
        while received.count < BATCH {
            // SAFETY: an all-zero sockaddr_storage is valid (family AF_UNSPEC).
            let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut iov = libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: buffer.len(),
            };
            // SAFETY: a zeroed msghdr is valid; every pointer is set below.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            header.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = std::mem::size_of_val(&from) as libc::socklen_t;
            header.msg_iov = &mut iov;
            header.msg_iovlen = 1;
            header.msg_control = control.as_mut_ptr().cast();
            header.msg_controllen = std::mem::size_of_val(control) as _;
            let got = socket.try_io(Interest::READABLE, || {
                // SAFETY: the header points at live buffers of the sizes it gives.
                let n =
                    unsafe { libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_DONTWAIT) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            let len = match got {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && received.count > 0 => break,
                Err(e) => return Err(e),
            };
            received.count += 1;
            if let Some(d) = rxq_overflow(&header) {
                received.kernel_drops = Some(d);
            }
            if let Some(from) = from_storage(&from) {
                push(
                    from,
                    Bytes::copy_from_slice(&buffer[..len]),
                    arrival(&header),
                );
            }
        }
        Ok(received)
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

/// Sends one datagram out of the interface `ifindex` (multicast, broadcast, or a reply from a
/// chosen interface).
pub(crate) fn send_via(
    socket: &impl AsRawFd,
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
                    ipi_ifindex: ifindex as _,
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
#[cfg(all(target_os = "linux", not(feature = "portable")))]
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

#[cfg(any(not(target_os = "linux"), feature = "portable"))]
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
