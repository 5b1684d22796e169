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
    /// The address's netmask (its prefix: what is on the link).
    pub netmask: Option<IpAddr>,
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
            address: unsafe { sockaddr_ip(ifa.ifa_addr) }.map(without_embedded_scope),
            // SAFETY: as above.
            netmask: unsafe { sockaddr_ip(ifa.ifa_netmask) },
            // SAFETY: as above.
            broadcast: unsafe { sockaddr_ip(brd) },
        });
    }
    // SAFETY: frees the list getifaddrs allocated, once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// A link-local IPv6 address as the host writes it. The BSDs' and macOS's kernels keep the
/// interface index inside a link-local address (bytes 2 and 3, the "KAME" form), and some of
/// their answers (getifaddrs, the neighbour table's dump) show it; Linux never does, so there
/// this changes nothing.
pub(crate) fn without_embedded_scope(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
            let mut octets = v6.octets();
            octets[2] = 0;
            octets[3] = 0;
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        other => other,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_embedded_scope_is_taken_out_of_link_local_addresses_only() {
        let kame: IpAddr = "fe80:4::1".parse().unwrap();
        assert_eq!(
            without_embedded_scope(kame),
            "fe80::1".parse::<IpAddr>().unwrap()
        );
        for plain in ["fe80::1", "2001:db8:4::1", "192.168.1.4", "::1"] {
            let ip: IpAddr = plain.parse().unwrap();
            assert_eq!(without_embedded_scope(ip), ip);
        }
    }

    #[test]
    fn loopback_has_its_netmask() {
        let list = list().unwrap();
        let lo = list
            .iter()
            .find(|a| a.address == Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
            .expect("127.0.0.1 listed");
        assert_eq!(lo.netmask, Some(IpAddr::V4(Ipv4Addr::new(255, 0, 0, 0))));
    }
}
