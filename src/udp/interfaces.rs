//! The machine's network interfaces, as multicast and broadcast need them: which are up and
//! multicast- or broadcast-capable, their indexes and addresses.
//!
//! Linux and the BSDs/macOS both have getifaddrs(3); it answers for the network namespace of the
//! calling thread.

use crate::error::Error;
use std::collections::BTreeMap;
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
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    for a in crate::sys::ifaddrs::list()? {
        let entry = by_name.entry(a.name.clone()).or_insert_with(|| Interface {
            index: a.index,
            name: a.name,
            up: a.flags & libc::IFF_UP != 0 && a.flags & libc::IFF_RUNNING != 0,
            loopback: a.flags & libc::IFF_LOOPBACK != 0,
            multicast: a.flags & libc::IFF_MULTICAST != 0,
            broadcast: a.flags & libc::IFF_BROADCAST != 0,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
        });
        match a.address {
            Some(IpAddr::V4(v4)) => {
                let broadcast = match a.broadcast {
                    Some(IpAddr::V4(b)) if a.flags & libc::IFF_BROADCAST != 0 => Some(b),
                    _ => None,
                };
                entry.ipv4.push((v4, broadcast));
            }
            Some(IpAddr::V6(v6)) => entry.ipv6.push(v6),
            None => {}
        }
    }
    let mut list: Vec<Interface> = by_name.into_values().filter(|i| i.index != 0).collect();
    list.sort_by_key(|i| i.index);
    Ok(list)
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
