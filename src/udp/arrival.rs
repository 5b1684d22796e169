//! Where a datagram arrived, as the host is told: the destination address, the interface's
//! name, and whether it was unicast, broadcast or multicast. Interface names come from a small
//! table refreshed when an unknown index shows up (or it is a few seconds old), so a datagram
//! costs a lookup, not a system call.

use super::interfaces;
use crate::info::c_text;
use crate::sys::udp::Arrival;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `XT_DGRAM_*`: how a datagram was addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum DatagramKind {
    Unknown = 0,
    Unicast = 1,
    Broadcast = 2,
    Multicast = 3,
}

/// An interface as arrival info needs it.
pub(crate) struct Known {
    pub(crate) name: CString,
    /// Its IPv4 broadcast addresses (directed broadcasts arrive to these).
    broadcasts: Vec<Ipv4Addr>,
}

/// How old the table may get before an index is looked up again.
const FRESH: Duration = Duration::from_secs(5);
/// The least time between two refreshes (an unknown index in a flood costs one).
const RETRY: Duration = Duration::from_millis(200);

/// The interfaces by index, and when they were listed.
#[derive(Default)]
struct Table {
    listed: Option<Instant>,
    by_index: HashMap<u32, Arc<Known>>,
}

#[derive(Default)]
pub(crate) struct InterfaceNames {
    table: Mutex<Table>,
}

impl InterfaceNames {
    /// The interface with `index`, if the system has one.
    pub(crate) fn get(&self, index: u32) -> Option<Arc<Known>> {
        if index == 0 {
            return None;
        }
        let mut t = self.table.lock();
        let age = t.listed.map(|at| at.elapsed());
        let stale = age.is_none_or(|a| a > FRESH);
        let missing = !t.by_index.contains_key(&index) && age.is_none_or(|a| a > RETRY);
        if stale || missing {
            if let Ok(list) = interfaces::all() {
                t.by_index = list
                    .into_iter()
                    .map(|i| {
                        let known = Known {
                            name: c_text(&i.name),
                            broadcasts: i.ipv4.iter().filter_map(|(_, b)| *b).collect(),
                        };
                        (i.index, Arc::new(known))
                    })
                    .collect();
            }
            t.listed = Some(Instant::now());
        }
        t.by_index.get(&index).cloned()
    }
}

/// The kind of a datagram sent to `destination` that arrived on `interface`.
pub(crate) fn kind(destination: Option<IpAddr>, interface: Option<&Known>) -> DatagramKind {
    match destination {
        None => DatagramKind::Unknown,
        Some(ip) if ip.is_multicast() => DatagramKind::Multicast,
        Some(IpAddr::V4(v4))
            if v4 == Ipv4Addr::BROADCAST
                || interface.is_some_and(|i| i.broadcasts.contains(&v4)) =>
        {
            DatagramKind::Broadcast
        }
        Some(IpAddr::V6(v6))
            if v6.to_ipv4_mapped().is_some_and(|v4| {
                v4 == Ipv4Addr::BROADCAST || interface.is_some_and(|i| i.broadcasts.contains(&v4))
            }) =>
        {
            DatagramKind::Broadcast
        }
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_multicast()) => {
            DatagramKind::Multicast
        }
        Some(_) => DatagramKind::Unicast,
    }
}

/// The arrival of one datagram, for the info's texts.
pub(crate) fn describe(
    names: &InterfaceNames,
    arrival: &Arrival,
) -> (Option<IpAddr>, Option<Arc<Known>>, DatagramKind) {
    let destination = arrival.destination.map(crate::info::canonical_ip);
    let interface = names.get(arrival.interface_index);
    let kind = kind(destination, interface.as_deref());
    (destination, interface, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_destination() {
        let eth = Known {
            name: c_text("eth0"),
            broadcasts: vec![Ipv4Addr::new(10, 0, 0, 255)],
        };
        let k = |ip: &str| kind(Some(ip.parse().unwrap()), Some(&eth));
        assert_eq!(k("10.0.0.5"), DatagramKind::Unicast);
        assert_eq!(k("10.0.0.255"), DatagramKind::Broadcast);
        assert_eq!(k("255.255.255.255"), DatagramKind::Broadcast);
        assert_eq!(k("239.255.255.250"), DatagramKind::Multicast);
        assert_eq!(k("ff02::fb"), DatagramKind::Multicast);
        assert_eq!(k("fe80::1"), DatagramKind::Unicast);
        assert_eq!(k("::ffff:10.0.0.255"), DatagramKind::Broadcast);
        assert_eq!(kind(None, None), DatagramKind::Unknown);
        // Without the interface, a directed broadcast looks like unicast.
        assert_eq!(
            kind(Some("10.0.0.255".parse().unwrap()), None),
            DatagramKind::Unicast
        );
    }

    #[test]
    fn the_loopback_interface_is_named() {
        let lo = interfaces::all()
            .unwrap()
            .into_iter()
            .find(|i| i.loopback)
            .unwrap();
        let names = InterfaceNames::default();
        assert_eq!(names.get(lo.index).unwrap().name.to_str().unwrap(), lo.name);
        assert!(names.get(0).is_none());
        assert!(names.get(u32::MAX).is_none());
    }
}
