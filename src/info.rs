//! What the host is told about a connection: `XtConnectionInfo` in Rust form.
//!
//! Built once per connection (texts kept as C strings so every event can lend them to the host
//! without allocating) and shared by every event of that connection.

use std::ffi::CString;
use std::net::{IpAddr, SocketAddr};

/// Text shown for a name that is not known.
pub const UNKNOWN_NAME: &str = "?";
/// Text shown for a MAC address that is not known or does not exist on the link.
pub const UNKNOWN_MAC: &str = "00:00:00:00:00:00";

/// The identity of one connection and its peer.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The connection id (never 0).
    pub id: u64,
    /// The peer's IP address as text; IPv4 peers of dual-stack sockets appear as plain IPv4.
    pub remote_address: CString,
    /// The local port of the connection: for accepted ones the listening port, as XTension's
    /// `xtKeyRemotePort` documents.
    pub remote_port: u16,
    /// The peer's own port.
    pub peer_port: u16,
    /// The peer's Bonjour/local name, `"?"` when unknown.
    pub name: CString,
    /// The peer's MAC address, zeros when unknown.
    pub mac_address: CString,
    /// The id as decimal text (`xtKeyUniqueId`).
    pub unique_id: CString,
    /// The listener that accepted it; 0 for an outgoing connection.
    pub server_id: u32,
}

/// Text for the host: NUL bytes cannot appear in the C string, so they are dropped.
pub(crate) fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

/// `::ffff:a.b.c.d` becomes `a.b.c.d`: plugins compare and log these strings.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl ConnectionInfo {
    /// Info for a connected socket.
    pub fn connected(id: u64, server_id: u32, peer: SocketAddr, local_port: u16) -> Self {
        ConnectionInfo {
            id,
            remote_address: c_text(&canonical_ip(peer.ip()).to_string()),
            remote_port: local_port,
            peer_port: peer.port(),
            name: c_text(UNKNOWN_NAME),
            mac_address: c_text(UNKNOWN_MAC),
            unique_id: c_text(&id.to_string()),
            server_id,
        }
    }

    /// Info for an outgoing connection that is not connected (yet): the host as the caller gave it.
    pub fn dialing(id: u64, host: &str, port: u16) -> Self {
        ConnectionInfo {
            id,
            remote_address: c_text(host),
            remote_port: 0,
            peer_port: port,
            name: c_text(UNKNOWN_NAME),
            mac_address: c_text(UNKNOWN_MAC),
            unique_id: c_text(&id.to_string()),
            server_id: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_is_shown_plain() {
        let peer: SocketAddr = "[::ffff:192.168.1.20]:5000".parse().unwrap();
        let info = ConnectionInfo::connected(7, 3, peer, 9000);
        assert_eq!(info.remote_address.to_str().unwrap(), "192.168.1.20");
        assert_eq!((info.remote_port, info.peer_port), (9000, 5000));
        assert_eq!(info.unique_id.to_str().unwrap(), "7");
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        assert_eq!(canonical_ip(v6.ip()).to_string(), "::1");
    }
}
