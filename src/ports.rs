//! Ports and listening addresses, the same for TCP, UDP and HTTP listeners.

use crate::error::{self, Error};
use crate::options::Options;
use socket2::{Domain, Protocol, Socket, Type};
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

/// Binds a stream (TCP) listening socket: dual stack unless `bind` picks an address.
fn bind_stream(
    bind: Option<IpAddr>,
    port: u16,
    backlog: i32,
) -> Result<std::net::TcpListener, Error> {
    let mut last = None;
    for addr in listen_addresses(bind, port) {
        let attempt = (|| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            // Rebinding a port with connections in TIME_WAIT is normal on Unix; another live
            // listener on it still fails with EADDRINUSE (no SO_REUSEPORT: TCP stays exclusive).
            socket.set_reuse_address(true)?;
            if addr.is_ipv6() && bind.is_none() {
                socket.set_only_v6(false)?;
            }
            socket.bind(&addr.into())?;
            socket.listen(backlog)?;
            socket.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(std::net::TcpListener::from(socket))
        })();
        match attempt {
            Ok(l) => return Ok(l),
            // No IPv6 on this machine: fall back to IPv4 only.
            Err(e) if bind.is_none() && addr.is_ipv6() && is_no_ipv6(&e) => {
                last = Some(bind_error("TCP", addr, &e))
            }
            Err(e) => return Err(bind_error("TCP", addr, &e)),
        }
    }
    Err(last.unwrap_or_else(|| Error::invalid_argument("no address to listen on")))
}

pub(crate) fn is_no_ipv6(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(c) if c == libc::EAFNOSUPPORT || c == libc::EADDRNOTAVAIL || c == libc::EPROTONOSUPPORT)
}

/// A TCP listening socket for a TCP or HTTP listener, as the options say (privileged ports,
/// bind address, backlog), registered with `runtime`; and its bound port.
pub(crate) fn open_stream_listener(
    options: &Options,
    runtime: &tokio::runtime::Handle,
    port: u16,
) -> Result<(tokio::net::TcpListener, u16), Error> {
    check_port(port, options.allow_privileged_ports)?;
    let std_listener = bind_stream(options.bind_address, port, options.listen_backlog)?;
    let local_port = std_listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", &e))?
        .port();
    let _runtime = runtime.enter();
    let listener = tokio::net::TcpListener::from_std(std_listener)
        .map_err(|e| Error::io("registering the listener", &e))?;
    Ok((listener, local_port))
}
