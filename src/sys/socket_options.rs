//! The socket options whose names or meaning differ between systems, one function per purpose
//! (what the caller wants, not the option's name). The Linux and macOS/BSD bodies sit side by
//! side; `make check-macos` compiles the macOS ones.

use socket2::Socket;
use std::io;
use std::os::fd::AsRawFd;

/// Sets an integer socket option; true when the system took it.
pub(crate) fn set_int_option(
    socket: &impl AsRawFd,
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

/// Lets other sockets (other programs, other contexts) bind the same UDP port and all receive
/// its multicast: discovery ports (1900 SSDP, 5353 mDNS) are shared.
///
/// On Linux SO_REUSEADDR alone does it, and SO_REUSEPORT must stay off: sockets that all set it
/// form a load-balancing group, and Linux then hands a group's multicast to any one member,
/// also to one that never joined that group (measured; see tests/udp_lan.rs). The BSDs and
/// macOS need SO_REUSEPORT to share multicast at all.
pub(crate) fn share_udp_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_address(true)?;
    #[cfg(not(target_os = "linux"))]
    socket.set_reuse_port(true)?;
    Ok(())
}

/// Only the groups this socket joined reach it, not every group any socket on the machine
/// joined on that port. Linux needs IP_MULTICAST_ALL off for that; the BSDs and macOS deliver
/// a group only to sockets that joined it.
pub(crate) fn own_groups_only(socket: &Socket, ipv6: bool) {
    #[cfg(target_os = "linux")]
    let _ = if ipv6 {
        socket.set_multicast_all_v6(false)
    } else {
        socket.set_multicast_all_v4(false)
    };
    #[cfg(not(target_os = "linux"))]
    let _ = (socket, ipv6);
}

/// A receive buffer of `bytes`: past the system's cap when privileged (Linux's SO_RCVBUFFORCE),
/// else as large as the cap allows.
pub(crate) fn large_receive_buffer(socket: &Socket, bytes: usize) {
    #[cfg(target_os = "linux")]
    if set_int_option(
        socket,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        bytes as libc::c_int,
    ) {
        return;
    }
    let _ = socket.set_recv_buffer_size(bytes);
}

/// Asks for the kernel's count of datagrams it dropped on this socket with each datagram
/// (Linux's SO_RXQ_OVFL; macOS keeps no such count per socket).
pub(crate) fn report_kernel_drops(socket: &Socket) {
    #[cfg(target_os = "linux")]
    set_int_option(socket, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1);
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// Asks for each datagram's destination address and arrival interface: IP_PKTINFO (macOS
/// names the same option IP_RECVPKTINFO too) and, on an IPv6 socket, IPV6_RECVPKTINFO.
pub(crate) fn want_packet_info(socket: &impl AsRawFd, ipv6: bool) {
    if ipv6 {
        set_int_option(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1);
    } else {
        set_int_option(socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1);
    }
}

/// The kernel's count of datagrams it dropped on `socket` (its receive buffer was full), read
/// now (Linux's SO_MEMINFO). The count a received datagram carries (SO_RXQ_OVFL) is the one
/// from when it was queued, so drops after the last datagram that got in show only here.
#[cfg(target_os = "linux")]
pub(crate) fn kernel_drops_now(socket: &impl AsRawFd) -> Option<u32> {
    // SK_MEMINFO_VARS (9) counters; SK_MEMINFO_DROPS is the last (linux/sock_diag.h).
    const DROPS: usize = 8;
    let mut info = [0u32; 9];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, a live local array, and sets
    // `len` to what it wrote.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize > DROPS * 4).then_some(info[DROPS])
}

/// Elsewhere no count is kept.
#[cfg(not(target_os = "linux"))]
pub(crate) fn kernel_drops_now(_socket: &impl AsRawFd) -> Option<u32> {
    None
}
