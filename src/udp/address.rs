//! Addresses as hosts write them: datagram destinations and multicast groups.

use super::interfaces;
use crate::error::Error;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

/// Where a datagram goes, parsed from the host's text.
pub(crate) struct Destination {
    pub addr: SocketAddr,
}

impl Destination {
    /// An IPv4 or IPv6 address (IPv6 link-local with `%interface` or `%index`), or
    /// XT_BROADCAST_ADDRESS; names are not resolved (sending never blocks).
    pub(crate) fn parse(text: &str, port: u16) -> Result<Destination, Error> {
        let text = text.trim();
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        let (ip_text, scope) = match bare.split_once('%') {
            Some((ip, scope)) => (ip, Some(scope)),
            None => (bare, None),
        };
        let bad = || {
            Error::invalid_argument(format!(
                "not an IP address: {text:?} (names are not resolved)"
            ))
        };
        let ip: IpAddr = ip_text.parse().map_err(|_| bad())?;
        let addr = match (ip, scope) {
            (IpAddr::V6(v6), Some(scope)) => {
                let index = match scope.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => interfaces::find(scope)?.index,
                };
                SocketAddr::V6(SocketAddrV6::new(v6, port, 0, index))
            }
            (_, Some(_)) => return Err(bad()),
            (ip, None) => SocketAddr::new(ip, port),
        };
        Ok(Destination { addr })
    }
}

/// Parses a multicast group address.
pub(crate) fn parse_group(text: &str) -> Result<IpAddr, Error> {
    let ip: IpAddr = text
        .trim()
        .parse()
        .map_err(|_| Error::invalid_argument(format!("not an IP address: {text:?}")))?;
    if !ip.is_multicast() {
        return Err(Error::invalid_argument(format!(
            "{ip} is not a multicast group address"
        )));
    }
    Ok(ip)
}
