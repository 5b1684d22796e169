//! What the host is told about a connection: `XtConnectionInfo` in Rust form.
//!
//! Built once per connection and lent to every event of it. Texts are C strings so they can be
//! lent to the host without copying; the "unknown" texts are static and a known identity is
//! shared, so an idle connection carries little.

use crate::tls::TlsInfo;
use std::ffi::{CStr, CString};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Text shown for a name that is not known.
pub const UNKNOWN_NAME: &CStr = c"?";
/// Text shown for a MAC address that is not known or does not exist on the link.
pub const UNKNOWN_MAC: &CStr = c"00:00:00:00:00:00";

/// What is known of a peer beyond its address: shared by every connection from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The peer's Bonjour/local name.
    pub name: CString,
    /// The peer's MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac_address: CString,
}

/// What one `data_available` message is: a framed (or raw) piece of a TCP stream, or a whole
/// WebSocket message of either type (`XT_WS_TEXT`, `XT_WS_BINARY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MessageKind {
    Stream = 0,
    Text = 1,
    Binary = 2,
}

/// The identity of one connection and its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The connection id (never 0); its decimal text is XTension's `xtKeyUniqueId`.
    pub id: u64,
    /// The peer's IP address as text; IPv4 peers of dual-stack sockets appear as plain IPv4.
    pub remote_address: CString,
    /// The local port of the connection: for accepted ones the listening port, as XTension's
    /// `xtKeyRemotePort` documents.
    pub remote_port: u16,
    /// The peer's own port.
    pub peer_port: u16,
    /// The peer's name and MAC address when known (see [`ConnectionInfo::name`]).
    pub identity: Option<Arc<PeerIdentity>>,
    /// The listener that accepted it; 0 for an outgoing connection.
    pub server_id: u32,
    /// For a TLS connection: the peer's fingerprint and the protocol.
    pub tls: Option<Arc<TlsInfo>>,
}

/// Text for the host: NUL bytes cannot appear in a C string, so they are dropped.
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
    /// The peer's Bonjour/local name, `"?"` when unknown.
    pub fn name(&self) -> &CStr {
        self.identity.as_ref().map_or(UNKNOWN_NAME, |i| &i.name)
    }

    /// The peer's MAC address, zeros when unknown.
    pub fn mac_address(&self) -> &CStr {
        self.identity
            .as_ref()
            .map_or(UNKNOWN_MAC, |i| &i.mac_address)
    }

    /// Info for a connected socket.
    pub fn connected(id: u64, server_id: u32, peer: SocketAddr, local_port: u16) -> Self {
        ConnectionInfo {
            id,
            remote_address: c_text(&canonical_ip(peer.ip()).to_string()),
            remote_port: local_port,
            peer_port: peer.port(),
            identity: None,
            server_id,
            tls: None,
        }
    }

    /// The peer's TLS fingerprint, "" without TLS.
    pub fn tls_fingerprint(&self) -> &CStr {
        self.tls.as_ref().map_or(c"", |t| &t.fingerprint)
    }

    /// "TLSv1.3" / "TLSv1.2", "" without TLS.
    pub fn tls_protocol(&self) -> &CStr {
        self.tls.as_ref().map_or(c"", |t| t.protocol)
    }

    /// Info for an outgoing connection that never connected: the host as the caller gave it.
    pub fn dialing(id: u64, host: &str, port: u16) -> Self {
        ConnectionInfo {
            id,
            remote_address: c_text(host),
            remote_port: 0,
            peer_port: port,
            identity: None,
            server_id: 0,
            tls: None,
        }
    }
}

/// Writes `n` in decimal into `buf` as a NUL-terminated C string and returns it (no allocation:
/// the unique-id text of every event is made this way, on the stack).
pub fn decimal_c(n: u64, buf: &mut [u8; 21]) -> &CStr {
    let mut i = buf.len() - 1;
    buf[i] = 0;
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    CStr::from_bytes_with_nul(&buf[i..]).expect("digits then one NUL")
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
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        assert_eq!(canonical_ip(v6.ip()).to_string(), "::1");
    }

    #[test]
    fn decimal_text() {
        let mut buf = [0u8; 21];
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            assert_eq!(decimal_c(n, &mut buf).to_str().unwrap(), n.to_string());
        }
    }
}
