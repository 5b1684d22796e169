//! Where a peer is, as the kernel sees it: the route to it (local, on a link, or behind a
//! router) and its link-layer (MAC) address from the neighbour table.
//!
//! Linux answers both over rtnetlink (`RTM_GETROUTE`, `RTM_GETNEIGH`), for the network
//! namespace of the calling thread. The calls are synchronous but cheap: the kernel builds the
//! answer inside the system call, nothing waits on the network.
//!
//! macOS/BSD (not built here): the route would come from a routing socket (`RTM_GET` on
//! `PF_ROUTE`), the neighbour entry from `sysctl(CTL_NET, PF_ROUTE, 0, AF_INET, NET_RT_FLAGS,
//! RTF_LLINFO)` (IPv6: `NET_RT_FLAGS` with `RTF_LLINFO` under `AF_INET6`); both would live in a
//! sibling of the `linux` module below with the same two functions.

use std::net::IpAddr;

/// The kernel's route to a peer.
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

/// A MAC address as the host sees it: `aa:bb:cc:dd:ee:ff`.
pub(crate) fn mac_text(mac: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

#[cfg(target_os = "linux")]
pub(crate) use linux::{mac_of, route_to};

#[cfg(not(target_os = "linux"))]
pub(crate) fn route_to(_ip: IpAddr, _scope: u32) -> std::io::Result<Route> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn mac_of(_ip: IpAddr, _ifindex: u32) -> std::io::Result<Option<[u8; 6]>> {
    Ok(None)
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Route;
    use netlink_packet_core::{
        NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
    };
    use netlink_packet_route::neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
    };
    use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
    use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
    use std::io;
    use std::net::IpAddr;
    use std::time::Duration;

    fn family(ip: IpAddr) -> AddressFamily {
        match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        }
    }

    /// Sends one request and collects the answers (every part of a dump).
    fn request(payload: RouteNetlinkMessage, dump: bool) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // The kernel answers inside the system call; the timeout only guards against surprises.
        socket2::SockRef::from(&socket).set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        let mut message = NetlinkMessage::new(header, NetlinkPayload::from(payload));
        message.finalize();
        let mut out = vec![0; message.header.length as usize];
        message.serialize(&mut out);
        socket.send(&out, 0)?;
        let mut answers = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let size = socket.recv(&mut &mut buf[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..size])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let length = message.header.length as usize;
                match message.payload {
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(e) => {
                        return Err(e.code.map_or_else(
                            || io::Error::other("netlink error"),
                            |c| io::Error::from_raw_os_error(-c.get()),
                        ))
                    }
                    NetlinkPayload::InnerMessage(m) => answers.push(m),
                    _ => {}
                }
                if !dump && !answers.is_empty() {
                    return Ok(answers);
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }

    /// The route the kernel would use to reach `ip` (`scope`: the interface of an IPv6
    /// link-local address, else 0), as `ip route get` shows it.
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

    /// The MAC address of `ip` on interface `ifindex` from the neighbour table; None when the
    /// table has no usable entry (never resolved, failed, or a link without MAC addresses).
    pub(crate) fn mac_of(ip: IpAddr, ifindex: u32) -> io::Result<Option<[u8; 6]>> {
        let mut query = NeighbourMessage::default();
        query.header.family = family(ip);
        let answers = request(RouteNetlinkMessage::GetNeighbour(query), true)?;
        for answer in answers {
            let RouteNetlinkMessage::NewNeighbour(entry) = answer else {
                continue;
            };
            if ifindex != 0 && entry.header.ifindex != ifindex {
                continue;
            }
            if matches!(
                entry.header.state,
                NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::Noarp
            ) {
                continue;
            }
            let mut destination = None;
            let mut mac = None;
            for attribute in &entry.attributes {
                match attribute {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                        destination = Some(IpAddr::from(*a))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                        destination = Some(IpAddr::from(*a))
                    }
                    NeighbourAttribute::LinkLayerAddress(bytes) => {
                        mac = <[u8; 6]>::try_from(bytes.as_slice()).ok()
                    }
                    _ => {}
                }
            }
            if destination == Some(ip) {
                if let Some(mac) = mac.filter(|m| *m != [0; 6]) {
                    return Ok(Some(mac));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_local_and_has_no_mac() {
        let route = route_to("127.0.0.1".parse().unwrap(), 0).unwrap();
        assert!(route.local, "{route:?}");
        assert_eq!(mac_of("127.0.0.1".parse().unwrap(), 0).unwrap(), None);
    }

    #[test]
    fn mac_text_is_lower_case_with_colons() {
        assert_eq!(
            mac_text(&[0x0a, 0xbc, 0, 1, 0xff, 0x10]),
            "0a:bc:00:01:ff:10"
        );
    }
}
