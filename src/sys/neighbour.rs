//! A peer's link-layer (MAC) address from the kernel's neighbour table (ARP for IPv4, NDP for
//! IPv6), one interface ([`mac_of`]) with a body per system:
//! - Linux: an rtnetlink dump (`RTM_GETNEIGH`), for the network namespace of the calling thread.
//! - macOS: the routing table's link-layer entries, `sysctl(CTL_NET, PF_ROUTE, 0, family,
//!   NET_RT_FLAGS, RTF_LLINFO)`, as `arp -a` and `ndp -a` read them. The system call runs only
//!   on macOS; the reading of its answer ([`parse_dump`], the part that can go wrong) is plain
//!   code tested here on hand-built dumps laid out as macOS lays them out, and the layout
//!   itself is checked against macOS's own structures when the crate is compiled for macOS
//!   (`make check-macos`).
//! - Other systems: no table (None).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[cfg(target_os = "linux")]
pub(crate) use netlink::mac_of;

#[cfg(target_vendor = "apple")]
pub(crate) use sysctl::mac_of;

/// The MAC address of `ip` on interface `ifindex` (0: any); None when the table has no usable
/// entry (never resolved, failed, or a link without MAC addresses).
#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
pub(crate) fn mac_of(_ip: IpAddr, _ifindex: u32) -> std::io::Result<Option<[u8; 6]>> {
    Ok(None)
}

#[cfg(target_os = "linux")]
mod netlink {
    use crate::sys::netlink::{family, request};
    use netlink_packet_route::neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
    };
    use netlink_packet_route::RouteNetlinkMessage;
    use std::io;
    use std::net::IpAddr;

    /// The MAC address of `ip` on interface `ifindex` (0: any); None when the table has no
    /// usable entry (never resolved, failed, or a link without MAC addresses).
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

#[cfg(target_vendor = "apple")]
mod sysctl {
    use super::{parse_dump, DumpLayout};
    use std::io;
    use std::net::IpAddr;

    /// macOS's layout, from its own headers (the build fails if the constants below differ).
    const LAYOUT: DumpLayout = DumpLayout {
        header_len: std::mem::size_of::<libc::rt_msghdr>(),
        addrs_offset: std::mem::offset_of!(libc::rt_msghdr, rtm_addrs),
        align: std::mem::size_of::<u32>(),
        af_inet: libc::AF_INET as u8,
        af_inet6: libc::AF_INET6 as u8,
        af_link: libc::AF_LINK as u8,
    };
    const _: () = assert!(LAYOUT.header_len == super::DARWIN.header_len);
    const _: () = assert!(LAYOUT.addrs_offset == super::DARWIN.addrs_offset);
    const _: () = assert!(LAYOUT.af_inet6 == super::DARWIN.af_inet6);
    const _: () = assert!(LAYOUT.af_link == super::DARWIN.af_link);
    const _: () =
        assert!(libc::RTA_DST == super::RTA_DST && libc::RTA_GATEWAY == super::RTA_GATEWAY);

    /// The MAC address of `ip` on interface `ifindex` (0: any); None when the table has no
    /// usable entry.
    pub(crate) fn mac_of(ip: IpAddr, ifindex: u32) -> io::Result<Option<[u8; 6]>> {
        let family = match ip {
            IpAddr::V4(_) => libc::AF_INET,
            IpAddr::V6(_) => libc::AF_INET6,
        };
        let mut mib = [
            libc::CTL_NET,
            libc::PF_ROUTE,
            0,
            family,
            libc::NET_RT_FLAGS,
            libc::RTF_LLINFO,
        ];
        let mut needed: libc::size_t = 0;
        // SAFETY: a size query: no buffer, `needed` receives the size.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                mib.len() as libc::c_uint,
                std::ptr::null_mut(),
                &mut needed,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // Room for entries added between the two calls.
        let mut buf = vec![0u8; needed + needed / 4 + 1024];
        let mut len: libc::size_t = buf.len();
        // SAFETY: the kernel writes at most `len` bytes into `buf`, a live buffer of that size,
        // and sets `len` to what it wrote.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                mib.len() as libc::c_uint,
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(len);
        Ok(parse_dump(&buf, &LAYOUT)
            .into_iter()
            .find(|e| e.ip == ip && (ifindex == 0 || e.ifindex == ifindex) && e.mac != [0; 6])
            .map(|e| e.mac))
    }
}

/// How one system lays out a routing-message dump: the message header's size and where its
/// address bits are, how the socket addresses after it are padded, the family numbers.
#[cfg_attr(not(target_vendor = "apple"), allow(dead_code))]
pub(crate) struct DumpLayout {
    /// sizeof(struct rt_msghdr).
    pub header_len: usize,
    /// offsetof(struct rt_msghdr, rtm_addrs).
    pub addrs_offset: usize,
    /// Each socket address takes its length rounded up to this.
    pub align: usize,
    pub af_inet: u8,
    pub af_inet6: u8,
    pub af_link: u8,
}

/// macOS's numbers (`<net/route.h>`, `<sys/socket.h>`), written out so the parser is tested on
/// Linux; the macOS build checks them against its headers.
#[cfg_attr(not(any(target_vendor = "apple", test)), allow(dead_code))]
pub(crate) const DARWIN: DumpLayout = DumpLayout {
    header_len: 92,
    addrs_offset: 12,
    align: 4,
    af_inet: 2,
    af_inet6: 30,
    af_link: 18,
};

/// The address bits of the socket addresses that follow a message header.
#[cfg_attr(not(any(target_vendor = "apple", test)), allow(dead_code))]
const RTA_DST: i32 = 0x1;
#[cfg_attr(not(any(target_vendor = "apple", test)), allow(dead_code))]
const RTA_GATEWAY: i32 = 0x2;

/// One entry of the table: an address, the interface it is on, its MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub ip: IpAddr,
    pub ifindex: u32,
    pub mac: [u8; 6],
}

/// The entries of a dump with a six-byte link-layer address; anything short, malformed or of
/// another kind is skipped, never read past.
#[cfg_attr(not(any(target_vendor = "apple", test)), allow(dead_code))]
pub(crate) fn parse_dump(buf: &[u8], layout: &DumpLayout) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut offset = 0;
    while let Some(length) = buf.get(offset..offset + 2) {
        let length = u16::from_ne_bytes([length[0], length[1]]) as usize;
        let Some(message) = (length > 0)
            .then(|| buf.get(offset..offset + length))
            .flatten()
        else {
            break;
        };
        if let Some(entry) = parse_message(message, layout) {
            entries.push(entry);
        }
        offset += length;
    }
    entries
}

fn parse_message(message: &[u8], layout: &DumpLayout) -> Option<Entry> {
    let bits = message.get(layout.addrs_offset..layout.addrs_offset + 4)?;
    let bits = i32::from_ne_bytes(bits.try_into().ok()?);
    if bits & RTA_DST == 0 || bits & RTA_GATEWAY == 0 {
        return None;
    }
    let mut rest = message.get(layout.header_len..)?;
    let mut next = || {
        let length = *rest.first()? as usize;
        let padded = if length == 0 {
            layout.align
        } else {
            1 + ((length - 1) | (layout.align - 1))
        };
        let address = rest.get(..length.max(2))?;
        rest = rest.get(padded.min(rest.len())..)?;
        Some(address)
    };
    let destination = next()?;
    let link = next()?;
    let ip = match destination[1] {
        f if f == layout.af_inet => {
            let a: [u8; 4] = destination.get(4..8)?.try_into().ok()?;
            IpAddr::V4(Ipv4Addr::from(a))
        }
        f if f == layout.af_inet6 => {
            let a: [u8; 16] = destination.get(8..24)?.try_into().ok()?;
            crate::sys::ifaddrs::without_embedded_scope(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => return None,
    };
    // sockaddr_dl: len, family, index (u16), type, nlen, alen, slen, then name and address.
    if link[1] != layout.af_link || link.len() < 8 {
        return None;
    }
    let ifindex = u16::from_ne_bytes([link[2], link[3]]) as u32;
    let (name_len, address_len) = (link[5] as usize, link[6] as usize);
    if address_len != 6 {
        return None;
    }
    let mac: [u8; 6] = link.get(8 + name_len..8 + name_len + 6)?.try_into().ok()?;
    Some(Entry { ip, ifindex, mac })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as macOS writes it: header, destination, link-layer address.
    fn message(destination: &[u8], link: &[u8], bits: i32) -> Vec<u8> {
        let mut m = vec![0u8; DARWIN.header_len];
        m[DARWIN.addrs_offset..DARWIN.addrs_offset + 4].copy_from_slice(&bits.to_ne_bytes());
        for sa in [destination, link] {
            m.extend_from_slice(sa);
            while m.len() % DARWIN.align != 0 {
                m.push(0);
            }
        }
        let length = m.len() as u16;
        m[..2].copy_from_slice(&length.to_ne_bytes());
        m
    }

    fn inet(ip: [u8; 4]) -> Vec<u8> {
        let mut sa = vec![16, DARWIN.af_inet, 0, 0];
        sa.extend_from_slice(&ip);
        sa.resize(16, 0);
        sa
    }

    fn inet6(ip: Ipv6Addr) -> Vec<u8> {
        let mut sa = vec![28, DARWIN.af_inet6, 0, 0, 0, 0, 0, 0];
        sa.extend_from_slice(&ip.octets());
        sa.resize(28, 0);
        sa
    }

    /// sockaddr_dl for interface `index` named `name` with address `mac` (len rounded as the
    /// kernel gives it: at least 20).
    fn link(index: u16, name: &str, mac: &[u8]) -> Vec<u8> {
        let mut sa = vec![0, DARWIN.af_link];
        sa.extend_from_slice(&index.to_ne_bytes());
        sa.extend_from_slice(&[6, name.len() as u8, mac.len() as u8, 0]);
        sa.extend_from_slice(name.as_bytes());
        sa.extend_from_slice(mac);
        sa.resize(sa.len().max(20), 0);
        sa[0] = sa.len() as u8;
        sa
    }

    const MAC: [u8; 6] = [0x3c, 0x22, 0xfb, 0x01, 0x02, 0x03];

    #[test]
    fn reads_ipv4_and_ipv6_entries_with_their_interface() {
        let mut dump = message(&inet([192, 168, 1, 20]), &link(4, "en0", &MAC), 3);
        let kame: Ipv6Addr = "fe80:4::1c2b:3aff:fe00:1".parse().unwrap();
        dump.extend(message(
            &inet6(kame),
            &link(4, "en0", &[9, 8, 7, 6, 5, 4]),
            3,
        ));
        dump.extend(message(
            &inet([10, 0, 0, 1]),
            &link(11, "bridge100", &MAC),
            7,
        ));
        assert_eq!(
            parse_dump(&dump, &DARWIN),
            vec![
                Entry {
                    ip: "192.168.1.20".parse().unwrap(),
                    ifindex: 4,
                    mac: MAC
                },
                Entry {
                    ip: "fe80::1c2b:3aff:fe00:1".parse().unwrap(),
                    ifindex: 4,
                    mac: [9, 8, 7, 6, 5, 4]
                },
                Entry {
                    ip: "10.0.0.1".parse().unwrap(),
                    ifindex: 11,
                    mac: MAC
                },
            ]
        );
    }

    #[test]
    fn skips_unresolved_and_foreign_entries() {
        // An incomplete entry (no link-layer address yet), a missing gateway bit, a destination
        // of another family, a link address of another family: none is an entry.
        let mut dump = message(&inet([192, 168, 1, 21]), &link(4, "en0", &[]), 3);
        dump.extend(message(&inet([192, 168, 1, 22]), &link(4, "en0", &MAC), 1));
        let mut other = inet([192, 168, 1, 23]);
        other[1] = 99;
        dump.extend(message(&other, &link(4, "en0", &MAC), 3));
        let mut not_link = link(4, "en0", &MAC);
        not_link[1] = DARWIN.af_inet;
        dump.extend(message(&inet([192, 168, 1, 24]), &not_link, 3));
        dump.extend(message(&inet([192, 168, 1, 25]), &link(5, "en1", &MAC), 3));
        let entries = parse_dump(&dump, &DARWIN);
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].ip, "192.168.1.25".parse::<IpAddr>().unwrap());
        assert_eq!(entries[0].ifindex, 5);
    }

    #[test]
    fn never_reads_past_a_cut_or_lying_dump() {
        let whole = message(&inet([192, 168, 1, 20]), &link(4, "en0", &MAC), 3);
        for cut in 0..whole.len() {
            assert!(
                parse_dump(&whole[..cut], &DARWIN).is_empty(),
                "cut at {cut}"
            );
        }
        // Lengths larger than the message or the dump, and zero lengths.
        let mut lying = whole.clone();
        lying[DARWIN.header_len] = 200;
        assert!(parse_dump(&lying, &DARWIN).is_empty());
        let mut lying = whole.clone();
        lying[..2].copy_from_slice(&5000u16.to_ne_bytes());
        assert!(parse_dump(&lying, &DARWIN).is_empty());
        let mut zero = whole.clone();
        let link_at = DARWIN.header_len + 16;
        zero[link_at] = 0;
        assert!(parse_dump(&zero, &DARWIN).is_empty());
        assert!(parse_dump(&[0, 0, 0, 0], &DARWIN).is_empty());
    }

    #[test]
    fn loopback_has_no_mac() {
        assert_eq!(mac_of("127.0.0.1".parse().unwrap(), 0).unwrap(), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_bytes_give_at_most_one_entry_per_header(bytes in proptest::collection::vec(any::<u8>(), 0..800)) {
            let entries = parse_dump(&bytes, &DARWIN);
            prop_assert!(entries.len() <= bytes.len() / DARWIN.header_len);
        }
    }
}
