//! The machine's network interfaces, as multicast and broadcast need them: which are up and
//! multicast- or broadcast-capable, their indexes and addresses.
//!
//! Linux and the BSDs/macOS both have getifaddrs(3); it answers for the network namespace of the
//! calling thread.

use crate::error::Error;
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub up: bool,
    pub loopback: bool,
    pub multicast: bool,
    pub broadcast: bool,
    /// IPv4 addresses with their broadcast address, if the interface has one.
    pub ipv4: Vec<(Ipv4Addr, Option<Ipv4Addr>)>,
    pub ipv6: Vec<Ipv6Addr>,
}

impl Interface {
    /// Up, multicast-capable and not loopback: where group memberships and multicast sends go.
    pub fn carries_multicast(&self) -> bool {
        self.up && self.multicast && !self.loopback
    }

    /// Up, broadcast-capable, with an IPv4 address: where a limited broadcast goes.
    pub fn carries_broadcast(&self) -> bool {
        self.up && self.broadcast && !self.loopback && !self.ipv4.is_empty()
    }
}

/// Every interface, in index order.
pub fn all() -> io::Result<Vec<Interface>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
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
        let flags = ifa.ifa_flags as libc::c_int;
        let entry = by_name.entry(name.clone()).or_insert_with(|| Interface {
            // SAFETY: if_nametoindex reads the NUL-terminated name.
            index: unsafe { libc::if_nametoindex(ifa.ifa_name) },
            name,
            up: flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0,
            loopback: flags & libc::IFF_LOOPBACK != 0,
            multicast: flags & libc::IFF_MULTICAST != 0,
            broadcast: flags & libc::IFF_BROADCAST != 0,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
        });
        // SAFETY: the address pointers are NULL or point to sockaddrs of the family they say.
        match unsafe { sockaddr_ip(ifa.ifa_addr) } {
            Some(IpAddr::V4(a)) => {
                #[cfg(target_os = "linux")]
                let brd = ifa.ifa_ifu;
                #[cfg(not(target_os = "linux"))]
                let brd = ifa.ifa_dstaddr;
                let broadcast = if flags & libc::IFF_BROADCAST != 0 {
                    // SAFETY: as above.
                    match unsafe { sockaddr_ip(brd) } {
                        Some(IpAddr::V4(b)) => Some(b),
                        _ => None,
                    }
                } else {
                    None
                };
                entry.ipv4.push((a, broadcast));
            }
            Some(IpAddr::V6(a)) => entry.ipv6.push(a),
            None => {}
        }
    }
    // SAFETY: frees the list getifaddrs allocated, once.
    unsafe { libc::freeifaddrs(head) };
    let mut list: Vec<Interface> = by_name.into_values().filter(|i| i.index != 0).collect();
    list.sort_by_key(|i| i.index);
    Ok(list)
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

/// The interface a host names: by name ("eth0") or by one of its addresses ("192.168.1.10").
pub fn find(name_or_address: &str) -> Result<Interface, Error> {
    let wanted = name_or_address.trim();
    let list = all().map_err(|e| Error::io("listing network interfaces", &e))?;
    let address: Option<IpAddr> = wanted.parse().ok();
    list.into_iter()
        .find(|i| {
            i.name == wanted
                || address.is_some_and(|a| match a {
                    IpAddr::V4(a) => i.ipv4.iter().any(|(x, _)| *x == a),
                    IpAddr::V6(a) => i.ipv6.contains(&a),
                })
        })
        .ok_or_else(|| {
            Error::invalid_argument(format!(
                "no network interface named or addressed {wanted:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_and_found_by_name_and_address() {
        let list = all().unwrap();
        let lo = list
            .iter()
            .find(|i| i.loopback)
            .expect("a loopback interface");
        assert!(lo.index > 0);
        assert!(lo.ipv4.iter().any(|(a, _)| *a == Ipv4Addr::LOCALHOST));
        assert!(!lo.carries_multicast());
        assert_eq!(find(&lo.name).unwrap().index, lo.index);
        assert_eq!(find("127.0.0.1").unwrap().index, lo.index);
        assert_eq!(
            find("no-such-interface0").unwrap_err().code,
            crate::error::INVALID_ARGUMENT
        );
    }
}
