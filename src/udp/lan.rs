//! LAN helpers that need no listener: which of our addresses a peer reaches us on (asked of
//! the routing table, nothing sent), and Wake-on-LAN.

use super::interfaces::{self, Interface};
use crate::error::{self, Error};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The address of ours that traffic to `remote` leaves from (and that `remote` reaches us
/// on): what to put in an SSDP LOCATION, a GENA CALLBACK or an mDNS A record. A connected UDP
/// socket asks the routing table; no packet is sent.
pub(crate) fn local_address_for(remote: &str) -> Result<IpAddr, Error> {
    let text = remote.trim();
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let (ip, scope) = match bare.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (bare, None),
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| Error::invalid_argument(format!("not an IP address: {remote:?}")))?;
    let scope_id = match (ip, scope) {
        (IpAddr::V6(_), Some(zone)) => interfaces::find(zone)?.index,
        _ => 0,
    };
    let local = crate::sys::route::source_towards(ip, scope_id)
        .map_err(|e| Error::io(&format!("no route to {ip}"), &e))?;
    Ok(crate::info::canonical_ip(local))
}

/// A MAC address: six hex pairs separated by ':' or '-', or twelve hex digits.
pub(crate) fn parse_mac(text: &str) -> Result<[u8; 6], Error> {
    let digits: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':' && *c != '-')
        .collect();
    let bad = || Error::invalid_argument(format!("not a MAC address: {text:?}"));
    if digits.len() != 12 || !digits.is_ascii() {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, b) in mac.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

/// The magic packet: six 0xFF, then the MAC sixteen times.
pub(crate) fn magic_packet(mac: [u8; 6]) -> [u8; 102] {
    let mut p = [0xffu8; 102];
    for chunk in p[6..].chunks_mut(6) {
        chunk.copy_from_slice(&mac);
    }
    p
}

/// Wakes the machine with `mac`: the magic packet to UDP port 9 as a limited broadcast out of
/// every broadcast-capable interface (or the one named), so it needs no route and reaches each
/// link of a multi-homed host. Returns how many interfaces it went out of.
pub(crate) fn send_wake_on_lan(mac: &str, interface: Option<&str>) -> Result<usize, Error> {
    let packet = magic_packet(parse_mac(mac)?);
    let targets: Vec<Interface> = match interface {
        Some(name) => vec![interfaces::find(name)?],
        None => interfaces::all()
            .map_err(|e| Error::io("listing network interfaces", &e))?
            .into_iter()
            .filter(Interface::carries_broadcast)
            .collect(),
    };
    if targets.is_empty() {
        return Err(Error::invalid_state(
            "no interface can send a broadcast (none is up with an IPv4 address)",
        ));
    }
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .map_err(|e| Error::io("a socket for Wake-on-LAN", &e))?;
    socket
        .set_broadcast(true)
        .map_err(|e| Error::io("SO_BROADCAST", &e))?;
    let to: SocketAddr = (Ipv4Addr::BROADCAST, 9).into();
    let mut sent = 0;
    let mut first_error = None;
    for i in &targets {
        match crate::sys::udp::send_via(&socket, &packet, to, i.index) {
            Ok(()) => sent += 1,
            Err(e) => {
                first_error.get_or_insert_with(|| {
                    Error::io(&format!("Wake-on-LAN out of {}", i.name), &e)
                });
            }
        }
    }
    match (sent, first_error) {
        (0, Some(e)) => Err(e),
        (0, None) => Err(Error::new(error::INVALID_STATE, "sent nowhere")),
        (n, _) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_and_the_magic_packet() {
        let mac = [0x00, 0x11, 0x32, 0xab, 0xcd, 0xef];
        for text in [
            "00:11:32:ab:cd:ef",
            "00-11-32-AB-CD-EF",
            "001132abcdef",
            " 00:11:32:ab:cd:ef ",
        ] {
            assert_eq!(parse_mac(text).unwrap(), mac, "{text}");
        }
        for bad in [
            "",
            "00:11:32:ab:cd",
            "00:11:32:ab:cd:eg",
            "00:11:32:ab:cd:ef:00",
            "ééééééééééé",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
        let p = magic_packet(mac);
        assert_eq!(&p[..6], &[0xff; 6]);
        assert!(p[6..].chunks(6).all(|c| c == mac));
    }

    #[test]
    fn the_local_address_toward_loopback_is_loopback() {
        assert_eq!(
            local_address_for("127.0.0.1").unwrap().to_string(),
            "127.0.0.1"
        );
        assert_eq!(
            local_address_for("127.1.2.3").unwrap().to_string(),
            "127.0.0.1"
        );
        assert!(local_address_for("not an address").is_err());
    }
}
