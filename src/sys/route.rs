//! The route to a peer: whether it is us, on one of our links, or behind a router, which
//! interface traffic to it leaves by and from which of our addresses.
//!
//! Two bodies, one interface ([`route_to`]):
//! - Linux: the kernel's own answer over rtnetlink (`RTM_GETROUTE`, as `ip route get` shows).
//! - Everywhere else (the macOS path), and on Linux with the `portable` feature: a connected
//!   UDP socket gives the source address the routing table picks (nothing is sent), and the
//!   interface list (getifaddrs, with netmasks) says which interface holds that address and
//!   whether the peer lies inside one of its prefixes. A unit test compares the two bodies on
//!   this machine's own addresses, and the peer identity tests run with each.

use std::io;
use std::net::IpAddr;

/// The route to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// The address is one of this machine's own: the peer is us.
    pub local: bool,
    /// No gateway: the peer is on the link of `ifindex`, so it has a neighbour entry.
    pub on_link: bool,
    /// The interface the route leaves by.
    pub ifindex: u32,
    /// The source address the kernel would use towards the peer.
    pub source: Option<IpAddr>,
}

pub(crate) use by_interfaces::source_towards;

/// The route to `ip` (`scope`: the interface of an IPv6 link-local address, else 0).
pub(crate) fn route_to(ip: IpAddr, scope: u32) -> io::Result<Route> {
    #[cfg(all(target_os = "linux", not(feature = "portable")))]
    return netlink::route_to(ip, scope);
    #[cfg(any(not(target_os = "linux"), feature = "portable"))]
    return by_interfaces::route_to(ip, scope);
}

#[cfg(target_os = "linux")]
mod netlink {
    use super::Route;
    use crate::sys::netlink::{family, request};
    use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
    use netlink_packet_route::RouteNetlinkMessage;
    use std::io;
    use std::net::IpAddr;

    #[cfg_attr(feature = "portable", allow(dead_code))]
    pub(crate) fn route_to(ip: IpAddr, scope: u32) -> io::Result<Route> {
        let mut query = RouteMessage::default();
        query.header.address_family = family(ip);
        query.header.destination_prefix_length = if ip.is_ipv4() { 32 } else { 128 };
        query
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::from(ip)));
        if scope != 0 {
            query.attributes.push(RouteAttribute::Oif(scope));
        }
        let answers = request(RouteNetlinkMessage::GetRoute(query), false)?;
        let Some(RouteNetlinkMessage::NewRoute(route)) = answers.into_iter().next() else {
            return Err(io::Error::other("no route in the kernel's answer"));
        };
        let mut found = Route {
            local: route.header.kind == RouteType::Local,
            on_link: true,
            ifindex: scope,
            source: None,
        };
        for attribute in &route.attributes {
            match attribute {
                RouteAttribute::Gateway(_) | RouteAttribute::Via(_) => found.on_link = false,
                RouteAttribute::Oif(index) => found.ifindex = *index,
                RouteAttribute::PrefSource(RouteAddress::Inet(a)) => {
                    found.source = Some((*a).into())
                }
                RouteAttribute::PrefSource(RouteAddress::Inet6(a)) => {
                    found.source = Some((*a).into())
                }
                _ => {}
            }
        }
        if route.header.kind != RouteType::Unicast {
            found.on_link = false;
        }
        Ok(found)
    }
}

#[cfg_attr(
    all(target_os = "linux", not(feature = "portable"), not(test)),
    allow(dead_code)
)]
mod by_interfaces {
    use super::Route;
    use crate::sys::ifaddrs::{self, IfAddr};
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};

    pub(crate) fn route_to(ip: IpAddr, scope: u32) -> io::Result<Route> {
        let entries = ifaddrs::list()?;
        let on = |e: &&IfAddr| scope == 0 || e.index == scope;
        if let Some(own) = entries.iter().filter(on).find(|e| e.address == Some(ip)) {
            return Ok(local(own.index, ip));
        }
        if ip.is_loopback() {
            let lo = entries
                .iter()
                .find(|e| e.flags & libc::IFF_LOOPBACK != 0)
                .map_or(0, |e| e.index);
            return Ok(local(lo, ip));
        }
        let source = source_towards(ip, scope)?;
        let ifindex = if scope != 0 {
            scope
        } else {
            entries
                .iter()
                .find(|e| e.address == Some(source))
                .map_or(0, |e| e.index)
        };
        let on_link = is_unicast(ip, &entries)
            && (is_link_local(ip)
                || entries
                    .iter()
                    .filter(|e| e.index == ifindex)
                    .any(|e| inside_prefix(ip, e)));
        Ok(Route {
            local: false,
            on_link,
            ifindex,
            source: Some(source),
        })
    }

    fn local(ifindex: u32, ip: IpAddr) -> Route {
        Route {
            local: true,
            on_link: false,
            ifindex,
            source: Some(ip),
        }
    }

    /// The address the routing table picks as the source towards `ip`: a connected UDP socket
    /// asks it (connect sends nothing).
    pub(crate) fn source_towards(ip: IpAddr, scope: u32) -> io::Result<IpAddr> {
        let (any, to): (SocketAddr, SocketAddr) = match ip {
            IpAddr::V4(v4) => ((Ipv4Addr::UNSPECIFIED, 0).into(), (v4, 9).into()),
            IpAddr::V6(v6) => (
                (Ipv6Addr::UNSPECIFIED, 0).into(),
                SocketAddrV6::new(v6, 9, 0, scope).into(),
            ),
        };
        let socket = UdpSocket::bind(any)?;
        socket.connect(to)?;
        Ok(crate::sys::ifaddrs::without_embedded_scope(
            socket.local_addr()?.ip(),
        ))
    }

    fn is_link_local(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
        }
    }

    /// Not a group and not a broadcast address of ours: a single peer with a neighbour entry.
    fn is_unicast(ip: IpAddr, entries: &[IfAddr]) -> bool {
        !ip.is_multicast()
            && !ip.is_unspecified()
            && ip != IpAddr::V4(Ipv4Addr::BROADCAST)
            && !entries.iter().any(|e| e.broadcast == Some(ip))
    }

    /// `ip` lies in the prefix of the entry's address.
    pub(super) fn inside_prefix(ip: IpAddr, entry: &IfAddr) -> bool {
        match (ip, entry.address, entry.netmask) {
            (IpAddr::V4(ip), Some(IpAddr::V4(own)), Some(IpAddr::V4(mask))) => {
                let mask = u32::from(mask);
                mask != 0 && u32::from(ip) & mask == u32::from(own) & mask
            }
            (IpAddr::V6(ip), Some(IpAddr::V6(own)), Some(IpAddr::V6(mask))) => {
                let mask = u128::from(mask);
                mask != 0 && u128::from(ip) & mask == u128::from(own) & mask
            }
            _ => false,
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::sys::ifaddrs;
    use std::net::Ipv4Addr;

    /// Addresses to ask both bodies about: loopback, each of our own addresses, a neighbour
    /// inside each IPv4 prefix, an address no prefix holds. Nothing is sent to any of them.
    fn addresses() -> Vec<(IpAddr, u32)> {
        let mut out: Vec<(IpAddr, u32)> = vec![
            ("127.0.0.1".parse().unwrap(), 0),
            ("127.3.4.5".parse().unwrap(), 0),
            ("::1".parse().unwrap(), 0),
            ("192.0.2.77".parse().unwrap(), 0),
            ("198.51.100.7".parse().unwrap(), 0),
            ("2001:db8::7".parse().unwrap(), 0),
        ];
        for e in ifaddrs::list().unwrap() {
            match e.address {
                Some(IpAddr::V4(v4)) => {
                    out.push((v4.into(), 0));
                    if let Some(IpAddr::V4(mask)) = e.netmask {
                        let host_bits = !u32::from(mask);
                        // A /30 or wider: .1 and .2 of the prefix are both hosts.
                        if host_bits >= 3 && !v4.is_loopback() {
                            let net = u32::from(v4) & !host_bits;
                            let other = if u32::from(v4) & host_bits == 1 { 2 } else { 1 };
                            out.push((Ipv4Addr::from(net | other).into(), 0));
                        }
                    }
                }
                Some(IpAddr::V6(v6)) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
                    out.push((v6.into(), e.index));
                    let mut other = v6.octets();
                    other[15] ^= 1;
                    out.push((std::net::Ipv6Addr::from(other).into(), e.index));
                }
                Some(IpAddr::V6(v6)) => {
                    out.push((v6.into(), 0));
                    if !v6.is_loopback() {
                        let mut other = v6.octets();
                        other[15] ^= 1;
                        out.push((std::net::Ipv6Addr::from(other).into(), 0));
                    }
                }
                None => {}
            }
        }
        out
    }

    #[test]
    fn the_portable_body_agrees_with_the_kernel() {
        for (ip, scope) in addresses() {
            let kernel = netlink::route_to(ip, scope);
            let portable = by_interfaces::route_to(ip, scope);
            match (&kernel, &portable) {
                (Ok(k), Ok(p)) => {
                    assert_eq!(k.local, p.local, "{ip}%{scope}: {k:?} / {p:?}");
                    if !k.local {
                        assert_eq!(
                            (k.on_link, k.ifindex, k.source),
                            (p.on_link, p.ifindex, p.source),
                            "{ip}%{scope}"
                        );
                    }
                }
                (Err(_), Err(_)) => {}
                _ => panic!("{ip}%{scope}: kernel {kernel:?}, portable {portable:?}"),
            }
        }
    }

    #[test]
    fn loopback_is_local() {
        for ip in ["127.0.0.1", "::1"] {
            assert!(route_to(ip.parse().unwrap(), 0).unwrap().local, "{ip}");
        }
    }

    #[test]
    fn prefixes_hold_what_their_mask_says() {
        let entry = |address: &str, netmask: &str| ifaddrs::IfAddr {
            name: "test0".into(),
            index: 7,
            flags: 0,
            address: Some(address.parse().unwrap()),
            netmask: Some(netmask.parse().unwrap()),
            broadcast: None,
        };
        let lan = entry("192.168.1.10", "255.255.255.0");
        let inside = |ip: &str, e| by_interfaces::inside_prefix(ip.parse().unwrap(), e);
        assert!(inside("192.168.1.200", &lan));
        assert!(!inside("192.168.2.1", &lan));
        assert!(!inside("fe80::1", &lan));
        let v6 = entry("2001:db8:1::5", "ffff:ffff:ffff:ffff::");
        assert!(inside("2001:db8:1::99", &v6));
        assert!(!inside("2001:db8:2::99", &v6));
        assert!(!inside("10.0.0.1", &entry("10.0.0.2", "0.0.0.0")));
    }
}
