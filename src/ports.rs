//! Ports and listening addresses, the same for TCP, UDP and HTTP listeners.

use crate::error::{self, Error};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Checks a listening port against the privileged-port rule.
pub(crate) fn check_port(port: u16, allow_privileged: bool) -> Result<(), Error> {
    if (1..1024).contains(&port) && !allow_privileged {
        return Err(Error::new(
            error::INVALID_PORT,
            format!(
                "port {port} is privileged (below 1024); pick a higher port or allow privileged ports"
            ),
        ));
    }
    Ok(())
}

/// The addresses to bind: the bind address, or `[::]` dual stack falling back to `0.0.0.0`.
pub(crate) fn listen_addresses(bind: Option<IpAddr>, port: u16) -> Vec<SocketAddr> {
    match bind {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ],
    }
}

/// A failed bind: EACCES (a privileged port without the privilege) is XTension's 107.
pub(crate) fn bind_error(protocol: &str, addr: SocketAddr, e: &std::io::Error) -> Error {
    let mut err = Error::io(&format!("cannot bind {protocol} {addr}"), e);
    if e.raw_os_error() == Some(libc::EACCES) {
        err.code = error::INVALID_PORT;
    }
    err
}
