//! getifaddrs(3): the interfaces and their addresses, as the system lists them (Linux and the
//! BSDs/macOS both have it; it answers for the network namespace of the calling thread).

use std::ffi::CStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One entry of the list: an interface with one of its addresses (or none).
pub(crate) struct IfAddr {
    pub name: String,
    pub index: u32,
    /// IFF_* flags.
    pub flags: libc::c_int,
    pub address: Option<IpAddr>,
    /// The broadcast (or point-to-point destination) address the entry carries.
    pub broadcast: Option<IpAddr>,
}

/// Every entry getifaddrs gives.
pub(crate) fn list() -> io::Result<Vec<IfAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated name owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        #[cfg(target_os = "linux")]
        let brd = ifa.ifa_ifu;
        #[cfg(not(target_os = "linux"))]
        let brd = ifa.ifa_dstaddr;
        out.push(IfAddr {
            // SAFETY: if_nametoindex reads the NUL-terminated name.
            index: unsafe { libc::if_nametoindex(ifa.ifa_name) },
            name,
            flags: ifa.ifa_flags as libc::c_int,
            // SAFETY: the address pointers are NULL or point to sockaddrs of the family they
            // say, owned by the list.
            address: unsafe { sockaddr_ip(ifa.ifa_addr) },
            // SAFETY: as above.
            broadcast: unsafe { sockaddr_ip(brd) },
        });
    }
    // SAFETY: frees the list getifaddrs allocated, once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The IP address in a sockaddr, if it is IPv4 or IPv6.
///
/// # Safety
/// `sa` is NULL or points to a sockaddr whose family field tells its real type.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: per the contract, the family says which struct this is.
    unsafe {
        match (*sa).sa_family as libc::c_int {
            libc::AF_INET => {
                let sin = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))))
            }
            libc::AF_INET6 => {
                let sin6 = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}
