//! Multicast: joining and leaving groups (on one interface or every suitable one), and the
//! options of what a listener sends (interface, TTL, loop).

use super::interfaces::{self, Interface};
use super::listener::{Sockets, UdpListener};
use crate::error::Error;
use std::net::{IpAddr, Ipv4Addr};
use tokio::net::UdpSocket;

impl UdpListener {
    /// Joins `group` on `interface`, or on every up, multicast-capable interface.
    pub(crate) fn join(&self, group: IpAddr, interface: Option<Interface>) -> Result<(), Error> {
        let sockets = self.sockets()?;
        let socket = self.group_socket(&sockets, group)?;
        let targets = match interface {
            Some(i) => vec![i],
            None => multicast_interfaces(group)?,
        };
        let mut state = self.multicast.lock();
        let mut first_error = None;
        let mut joined = 0;
        for i in &targets {
            if state.joined.contains(&(group, i.index)) {
                joined += 1;
                continue;
            }
            let sock = socket2::SockRef::from(socket);
            let r = match group {
                IpAddr::V4(g) => {
                    sock.join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(i.index))
                }
                IpAddr::V6(g) => sock.join_multicast_v6(&g, i.index),
            };
            match r {
                Ok(()) => {
                    state.joined.push((group, i.index));
                    joined += 1;
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| {
                        Error::io(&format!("joining {group} on {}", i.name), &e)
                    });
                }
            }
        }
        match (joined, first_error) {
            (0, Some(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Leaves `group` on `interface`, or on every interface it was joined on.
    pub(crate) fn leave(&self, group: IpAddr, interface: Option<Interface>) -> Result<(), Error> {
        let sockets = self.sockets()?;
        let socket = self.group_socket(&sockets, group)?;
        let mut state = self.multicast.lock();
        let memberships: Vec<(IpAddr, u32)> = state
            .joined
            .iter()
            .filter(|(g, idx)| *g == group && interface.as_ref().is_none_or(|i| i.index == *idx))
            .copied()
            .collect();
        if memberships.is_empty() {
            return Err(Error::invalid_state(format!(
                "UDP listener {} has not joined {group}{}",
                self.id,
                interface.map_or(String::new(), |i| format!(" on {}", i.name))
            )));
        }
        let sock = socket2::SockRef::from(socket);
        for (g, idx) in memberships {
            let _ = match g {
                IpAddr::V4(g4) => {
                    sock.leave_multicast_v4_n(&g4, &socket2::InterfaceIndexOrAddress::Index(idx))
                }
                IpAddr::V6(g6) => sock.leave_multicast_v6(&g6, idx),
            };
            state.joined.retain(|m| *m != (g, idx));
        }
        Ok(())
    }

    fn group_socket<'a>(
        &self,
        sockets: &'a Sockets,
        group: IpAddr,
    ) -> Result<&'a UdpSocket, Error> {
        if !group.is_multicast() {
            return Err(Error::invalid_argument(format!(
                "{group} is not a multicast group address"
            )));
        }
        sockets.for_family(group.is_ipv6()).ok_or_else(|| {
            Error::invalid_argument(format!(
                "UDP listener {} has no socket for {group}'s family",
                self.id
            ))
        })
    }

    /// The interface multicast goes out of (None: every suitable one).
    pub(crate) fn set_multicast_interface(
        &self,
        interface: Option<Interface>,
    ) -> Result<(), Error> {
        let sockets = self.sockets()?;
        if let Some(i) = &interface {
            if let Some(s) = &sockets.v4 {
                let addr = i
                    .ipv4
                    .first()
                    .map(|(a, _)| *a)
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                socket2::SockRef::from(s)
                    .set_multicast_if_v4(&addr)
                    .map_err(|e| Error::io("setting the multicast interface", &e))?;
            }
            if let Some(s) = &sockets.v6 {
                socket2::SockRef::from(s)
                    .set_multicast_if_v6(i.index)
                    .map_err(|e| Error::io("setting the multicast interface", &e))?;
            }
        }
        self.multicast.lock().out_interface = interface;
        Ok(())
    }

    /// Time to live (hops) of multicast sent from this listener, 0..=255.
    pub(crate) fn set_multicast_ttl(&self, ttl: u32) -> Result<(), Error> {
        if ttl > 255 {
            return Err(Error::invalid_argument(format!(
                "multicast TTL must be 0..=255, got {ttl}"
            )));
        }
        let sockets = self.sockets()?;
        if let Some(s) = &sockets.v4 {
            socket2::SockRef::from(s)
                .set_multicast_ttl_v4(ttl)
                .map_err(|e| Error::io("setting the multicast TTL", &e))?;
        }
        if let Some(s) = &sockets.v6 {
            socket2::SockRef::from(s)
                .set_multicast_hops_v6(ttl)
                .map_err(|e| Error::io("setting the multicast hops", &e))?;
        }
        Ok(())
    }

    /// Whether this host's own listeners receive the multicast it sends (default yes).
    pub(crate) fn set_multicast_loop(&self, on: bool) -> Result<(), Error> {
        let sockets = self.sockets()?;
        if let Some(s) = &sockets.v4 {
            socket2::SockRef::from(s)
                .set_multicast_loop_v4(on)
                .map_err(|e| Error::io("setting multicast loop", &e))?;
        }
        if let Some(s) = &sockets.v6 {
            socket2::SockRef::from(s)
                .set_multicast_loop_v6(on)
                .map_err(|e| Error::io("setting multicast loop", &e))?;
        }
        Ok(())
    }
}

/// The interfaces a group of `group`'s family is joined on or sent out of when the host names
/// none: every up, multicast-capable one (not loopback); on a machine that has none of those,
/// the up loopback interfaces, so discovery between programs of one host still works there.
pub(super) fn multicast_interfaces(group: IpAddr) -> Result<Vec<Interface>, Error> {
    let all = interfaces::all().map_err(|e| Error::io("listing network interfaces", &e))?;
    let family = |i: &Interface| group.is_ipv6() || !i.ipv4.is_empty();
    let mut list: Vec<Interface> = all
        .iter()
        .filter(|i| i.carries_multicast() && family(i))
        .cloned()
        .collect();
    if list.is_empty() {
        list = all
            .into_iter()
            .filter(|i| i.up && i.loopback && family(i))
            .collect();
    }
    if list.is_empty() {
        return Err(Error::new(
            libc::ENODEV,
            "no up network interface to join on (not even loopback)",
        ));
    }
    Ok(list)
}
