//! Sending: unicast from outside a callback goes out at once; from inside a callback it waits
//! for the end of the batch, so replies leave many per system call (sendmmsg). Multicast and
//! the limited broadcast go out of every suitable interface (or the one the host chose).

use super::address::Destination;
use super::interfaces::{self, Interface};
use super::listener::UdpListener;
use super::membership::multicast_interfaces;
use super::{MAX_DATAGRAM_V4, MAX_DATAGRAM_V6};
use crate::dispatch;
use crate::error::{self, Error};
use crate::sys::udp as sys_udp;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Datagrams queued inside one batch of callbacks before they are sent anyway.
const OUTBOX_LIMIT: usize = 1024;

impl UdpListener {
    /// Sends a datagram to `to` (see the module comment for where it goes and when).
    pub(crate) fn send(self: &Arc<Self>, to: Destination, data: &[u8]) -> Result<(), Error> {
        let addr = to.addr;
        check(addr, data)?;
        let sockets = self.sockets()?;
        let socket = self.socket_for(&sockets, addr)?;
        let ip = addr.ip();
        let limited_broadcast = ip == IpAddr::V4(Ipv4Addr::BROADCAST);
        if ip.is_multicast() || limited_broadcast {
            return self.send_out_of_interfaces(socket, addr, data, limited_broadcast);
        }
        if dispatch::dispatching_context() == self.ctx_id {
            let mut out = self.outbox.lock();
            let start = out.bytes.len();
            out.bytes.extend_from_slice(data);
            out.items.push((addr, start..start + data.len()));
            let full = out.items.len() >= OUTBOX_LIMIT;
            drop(out);
            if full {
                if let Some(failure) = self.flush_outbox() {
                    return Err(Error::new(libc::EIO, failure));
                }
            } else if !self.written_in_batch.swap(true, Ordering::AcqRel) {
                dispatch::flush_after_batch(self.clone());
            }
            return Ok(());
        }
        sys_udp::send_to(socket, data, addr).map_err(|e| send_error(addr, &e))
    }

    /// Sends a datagram to `to` out of `interface` only (by name or address), from the
    /// listening port: a reply from the interface a query came in on. At once, also from a
    /// callback.
    pub(crate) fn send_on(
        &self,
        interface: &str,
        to: Destination,
        data: &[u8],
    ) -> Result<(), Error> {
        let addr = to.addr;
        check(addr, data)?;
        let interface = interfaces::find(interface)?;
        let sockets = self.sockets()?;
        let socket = self.socket_for(&sockets, addr)?;
        sys_udp::send_via(socket, data, addr, interface.index).map_err(|e| send_error(addr, &e))
    }

    fn socket_for<'a>(
        &self,
        sockets: &'a super::listener::Sockets,
        addr: SocketAddr,
    ) -> Result<&'a UdpSocket, Error> {
        sockets.for_family(addr.is_ipv6()).ok_or_else(|| {
            Error::invalid_argument(format!(
                "UDP listener {} has no {} socket (see xt_set_bind_address)",
                self.id,
                if addr.is_ipv6() { "IPv6" } else { "IPv4" }
            ))
        })
    }
}

/// The size and port rules of every send.
fn check(addr: SocketAddr, data: &[u8]) -> Result<(), Error> {
    let max = if addr.is_ipv6() {
        MAX_DATAGRAM_V6
    } else {
        MAX_DATAGRAM_V4
    };
    if data.len() > max {
        return Err(Error::new(
            libc::EMSGSIZE,
            format!(
                "a datagram of {} bytes is larger than UDP allows ({max})",
                data.len()
            ),
        ));
    }
    if addr.port() == 0 {
        return Err(Error::new(error::INVALID_PORT, "cannot send to port 0"));
    }
    Ok(())
}

impl UdpListener {
    /// Multicast and limited broadcast: out of the chosen interface, or every suitable one.
    fn send_out_of_interfaces(
        &self,
        socket: &UdpSocket,
        to: SocketAddr,
        data: &[u8],
        broadcast: bool,
    ) -> Result<(), Error> {
        let chosen = self.multicast.lock().out_interface.clone();
        let targets: Vec<Interface> = match chosen {
            Some(i) if !broadcast => vec![i],
            _ if broadcast => interfaces::all()
                .map_err(|e| Error::io("listing network interfaces", &e))?
                .into_iter()
                .filter(Interface::carries_broadcast)
                .collect(),
            _ => multicast_interfaces(to.ip()).unwrap_or_default(),
        };
        if targets.is_empty() {
            // No suitable interface: let the routing table decide.
            return sys_udp::send_to(socket, data, to).map_err(|e| send_error(to, &e));
        }
        let mut first_error = None;
        let mut sent = 0;
        for i in &targets {
            match sys_udp::send_via(socket, data, to, i.index) {
                Ok(()) => sent += 1,
                Err(e) => {
                    first_error.get_or_insert_with(|| send_error(to, &e));
                }
            }
        }
        match (sent, first_error) {
            (0, Some(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Sends what callbacks queued (end of their batch). Failures cannot be returned to the
    /// callbacks that sent: they come back as a line for the log.
    pub(crate) fn flush_outbox(&self) -> Option<String> {
        self.written_in_batch.store(false, Ordering::Release);
        let out = std::mem::take(&mut *self.outbox.lock());
        if out.items.is_empty() {
            return None;
        }
        let Ok(sockets) = self.sockets() else {
            return None; // stopped meanwhile: nothing to send from
        };
        let mut failed = 0u64;
        let mut first_error = None;
        for v6 in [false, true] {
            let Some(socket) = sockets.for_family(v6) else {
                continue;
            };
            let batch: Vec<(SocketAddr, &[u8])> = out
                .items
                .iter()
                .filter(|(to, _)| to.is_ipv6() == v6)
                .map(|(to, r)| (*to, &out.bytes[r.clone()]))
                .collect();
            let mut at = 0;
            while at < batch.len() {
                match sys_udp::send_batch(socket, &batch[at..]) {
                    Ok(n) => at += n.max(1),
                    Err(e) => {
                        // Skip the one that failed and go on with the rest.
                        failed += 1;
                        first_error.get_or_insert_with(|| send_error(batch[at].0, &e));
                        at += 1;
                    }
                }
            }
        }
        self.send_failures.fetch_add(failed, Ordering::Relaxed);
        // Keep the allocation for the next batch when it is small.
        let mut reuse = out;
        if reuse.bytes.capacity() <= 1 << 20 {
            reuse.bytes.clear();
            reuse.items.clear();
            let mut current = self.outbox.lock();
            if current.items.is_empty() {
                *current = reuse;
            }
        }
        first_error.map(|e| {
            format!(
                "UDP listener {}: {failed} datagram(s) sent from callbacks failed: {e}",
                self.id
            )
        })
    }
}

fn send_error(to: SocketAddr, e: &io::Error) -> Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        return Error::new(
            error::OUT_OF_MEMORY,
            format!("the send buffer is full (datagram to {to} not sent)"),
        );
    }
    Error::io(&format!("sending to {to}"), e)
}
