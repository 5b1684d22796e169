//! Multicast: joining and leaving groups (on one interface or every suitable one), keeping
//! them joined as interfaces come and go (`follow`), re-sending joins for snooping switches
//! (`refresh`), and the options of what a listener sends (interface, TTL, loop).

use super::interfaces::{self, Interface};
use super::listener::{Sockets, Target, UdpListener, Wanted};
use crate::error::Error;
use std::net::{IpAddr, Ipv4Addr};
use tokio::net::UdpSocket;

fn join_on(socket: &UdpSocket, group: IpAddr, index: u32) -> std::io::Result<()> {
    let sock = socket2::SockRef::from(socket);
    match group {
        IpAddr::V4(g) => {
            sock.join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(index))
        }
        IpAddr::V6(g) => sock.join_multicast_v6(&g, index),
    }
}

fn leave_on(socket: &UdpSocket, group: IpAddr, index: u32) -> std::io::Result<()> {
    let sock = socket2::SockRef::from(socket);
    match group {
        IpAddr::V4(g) => {
            sock.leave_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(index))
        }
        IpAddr::V6(g) => sock.leave_multicast_v6(&g, index),
    }
}

/// The memberships `wanted` asks for on the interfaces `all`.
fn desired(wanted: &[Wanted], all: &[Interface]) -> Vec<(IpAddr, u32)> {
    let mut out = Vec::new();
    for w in wanted {
        let family = |i: &Interface| w.group.is_ipv6() || !i.ipv4.is_empty();
        match &w.on {
            Target::Every { except } => {
                for i in multicast_interfaces_in(all, w.group) {
                    if !except.contains(&i.name) {
                        out.push((w.group, i.index));
                    }
                }
            }
            Target::Named(name) => {
                if let Some(i) = all.iter().find(|i| &i.name == name && i.up && family(i)) {
                    out.push((w.group, i.index));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

impl UdpListener {
    /// Joins `group` on `interface`, or on every up, multicast-capable interface.
    pub(crate) fn join(&self, group: IpAddr, interface: Option<Interface>) -> Result<(), Error> {
        let sockets = self.sockets()?;
        let socket = self.group_socket(&sockets, group)?;
        let wanted = Wanted {
            group,
            on: match &interface {
                Some(i) => Target::Named(i.name.clone()),
                None => Target::Every { except: Vec::new() },
            },
        };
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
            match join_on(socket, group, i.index) {
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
        if let (0, Some(e)) = (joined, first_error) {
            return Err(e); // nothing joined: nothing to follow either
        }
        // Joined again on every interface: none is left out any more.
        let every = matches!(wanted.on, Target::Every { .. });
        state
            .wanted
            .retain(|w| !(every && w.group == group && matches!(w.on, Target::Every { .. })));
        if !state.wanted.contains(&wanted) {
            state.wanted.push(wanted);
        }
        Ok(())
    }

    /// Leaves `group` on `interface`, or on every interface it was joined on.
    pub(crate) fn leave(&self, group: IpAddr, interface: Option<Interface>) -> Result<(), Error> {
        let sockets = self.sockets()?;
        let socket = self.group_socket(&sockets, group)?;
        let mut state = self.multicast.lock();
        match &interface {
            None => state.wanted.retain(|w| w.group != group),
            Some(i) => {
                state
                    .wanted
                    .retain(|w| !(w.group == group && w.on == Target::Named(i.name.clone())));
                for w in state.wanted.iter_mut().filter(|w| w.group == group) {
                    if let Target::Every { except } = &mut w.on {
                        if !except.contains(&i.name) {
                            except.push(i.name.clone());
                        }
                    }
                }
            }
        }
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
        for (g, idx) in memberships {
            let _ = leave_on(socket, g, idx);
            state.joined.retain(|m| *m != (g, idx));
        }
        Ok(())
    }

    /// Makes the memberships match what the host asked for on the interfaces there are now
    /// (`all`): joins on interfaces that came up or got an address, leaves those that went.
    /// Returns a line per change, for the log.
    pub(crate) fn follow(&self, all: &[Interface]) -> Vec<String> {
        let Ok(sockets) = self.sockets() else {
            return Vec::new();
        };
        let mut state = self.multicast.lock();
        let want = desired(&state.wanted, all);
        let name = |idx: u32| {
            all.iter()
                .find(|i| i.index == idx)
                .map_or_else(|| format!("interface {idx}"), |i| i.name.clone())
        };
        let mut changes = Vec::new();
        let gone: Vec<(IpAddr, u32)> = state
            .joined
            .iter()
            .filter(|m| !want.contains(m))
            .copied()
            .collect();
        for (g, idx) in gone {
            if let Some(socket) = sockets.for_family(g.is_ipv6()) {
                let _ = leave_on(socket, g, idx); // the interface may be gone already
            }
            state.joined.retain(|m| *m != (g, idx));
            changes.push(format!(
                "UDP listener {}: left {g} on {} (it went down or away)",
                self.id,
                name(idx)
            ));
        }
        for (g, idx) in want {
            if state.joined.contains(&(g, idx)) {
                continue;
            }
            let Some(socket) = sockets.for_family(g.is_ipv6()) else {
                continue;
            };
            match join_on(socket, g, idx) {
                Ok(()) => {
                    state.joined.push((g, idx));
                    changes.push(format!(
                        "UDP listener {}: joined {g} on {}",
                        self.id,
                        name(idx)
                    ));
                }
                Err(e) => changes.push(format!(
                    "UDP listener {}: could not join {g} on {}: {e}",
                    self.id,
                    name(idx)
                )),
            }
        }
        changes
    }

    /// Re-sends every membership (leave and join: a fresh report), for IGMP/MLD-snooping
    /// switches that forget groups nobody re-reported.
    pub(crate) fn refresh(&self) {
        let Ok(sockets) = self.sockets() else { return };
        let state = self.multicast.lock();
        for &(g, idx) in &state.joined {
            if let Some(socket) = sockets.for_family(g.is_ipv6()) {
                let _ = leave_on(socket, g, idx);
                let _ = join_on(socket, g, idx);
            }
        }
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
    let list = multicast_interfaces_in(&all, group);
    if list.is_empty() {
        return Err(Error::new(
            libc::ENODEV,
            "no up network interface to join on (not even loopback)",
        ));
    }
    Ok(list)
}

/// As `multicast_interfaces`, among `all` (empty when there is none).
fn multicast_interfaces_in(all: &[Interface], group: IpAddr) -> Vec<Interface> {
    let family = |i: &Interface| group.is_ipv6() || !i.ipv4.is_empty();
    let mut list: Vec<Interface> = all
        .iter()
        .filter(|i| i.carries_multicast() && family(i))
        .cloned()
        .collect();
    if list.is_empty() {
        list = all
            .iter()
            .filter(|i| i.up && i.loopback && family(i))
            .cloned()
            .collect();
    }
    list
}
