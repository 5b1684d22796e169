//! A LAN that changes under a running host: one task per context watches the interfaces
//! (`sys/route_watch.rs`), tells the host what changed (`interface_changed`, and the log),
//! makes every UDP listener's memberships follow (`UdpListener::follow`), and, with
//! `XT_OPT_MULTICAST_REFRESH_MS`, re-sends the joins for snooping switches.

use super::interfaces::{self, Interface};
use crate::events::{Event, LogLevel};
use crate::info::c_text;
use crate::shared::Shared;
use crate::sys::route_watch::RouteWatch;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Changes come in bursts (the link, then each address): wait this long before looking.
const SETTLE: Duration = Duration::from_millis(50);
/// How often the refresh option is looked at again while nothing else happens.
const OPTION_LOOK: Duration = Duration::from_secs(1);

/// Each interface by name: whether it is up, and its addresses.
pub(crate) type Snapshot = BTreeMap<String, (bool, BTreeSet<IpAddr>)>;

pub(crate) fn snapshot(all: &[Interface]) -> Snapshot {
    all.iter()
        .map(|i| {
            let addresses = i
                .ipv4
                .iter()
                .map(|(a, _)| IpAddr::V4(*a))
                .chain(i.ipv6.iter().map(|a| IpAddr::V6(*a)))
                .collect();
            (i.name.clone(), (i.up, addresses))
        })
        .collect()
}

/// What changed between two looks, as the host is told: (interface, address, usable now).
/// A link that comes up or goes down is told once per address ("" when it has none); while it
/// is up, each address that comes or goes is told; changes on a link that is down are not.
pub(crate) fn diff(old: &Snapshot, new: &Snapshot) -> Vec<(String, String, bool)> {
    let empty = (false, BTreeSet::new());
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    let each = |name: &str, addrs: &BTreeSet<IpAddr>, up: bool, out: &mut Vec<_>| {
        if addrs.is_empty() {
            out.push((name.to_owned(), String::new(), up));
        }
        for a in addrs {
            out.push((name.to_owned(), a.to_string(), up));
        }
    };
    for name in names {
        let (was_up, was) = old.get(name).unwrap_or(&empty);
        let (is_up, is) = new.get(name).unwrap_or(&empty);
        match (was_up, is_up) {
            (false, true) => each(name, is, true, &mut out),
            (true, false) => each(name, was, false, &mut out),
            (true, true) => {
                for a in is.difference(was) {
                    out.push((name.clone(), a.to_string(), true));
                }
                for a in was.difference(is) {
                    out.push((name.clone(), a.to_string(), false));
                }
            }
            (false, false) => {}
        }
    }
    out
}

/// The context's interface watcher; ends with the runtime.
pub(crate) async fn watch(shared: Arc<Shared>) {
    let watcher = match RouteWatch::new() {
        Ok(w) => w,
        Err(e) => {
            shared.log(
                LogLevel::Warning,
                &format!("interfaces are not watched (memberships will not follow them): {e}"),
            );
            return;
        }
    };
    let mut known = snapshot(&interfaces::all().unwrap_or_default());
    let mut refresh_at: Option<Instant> = None;
    loop {
        let every = shared.options.lock().multicast_refresh;
        refresh_at = match (every, refresh_at) {
            (None, _) => None,
            (Some(d), None) => Some(Instant::now() + d),
            (Some(_), at) => at,
        };
        let wake = refresh_at.unwrap_or_else(|| Instant::now() + OPTION_LOOK);
        tokio::select! {
            changed = watcher.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(OPTION_LOOK).await;
                    continue;
                }
                tokio::time::sleep(SETTLE).await;
                let Ok(all) = interfaces::all() else { continue };
                let now = snapshot(&all);
                let changes = diff(&known, &now);
                known = now;
                if shared.is_closing() {
                    continue;
                }
                for (name, address, up) in changes {
                    let shown = if address.is_empty() { String::new() } else { format!(" {address}") };
                    shared.log(
                        LogLevel::Info,
                        &format!("interface {name}{shown} {}", if up { "is up" } else { "went down" }),
                    );
                    shared.emit(Event::InterfaceChanged {
                        name: c_text(&name),
                        address: c_text(&address),
                        up,
                    });
                }
                for listener in shared.registry.udp_listeners() {
                    for line in listener.follow(&all) {
                        shared.log(LogLevel::Info, &line);
                    }
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if refresh_at.is_some_and(|at| at <= Instant::now()) {
                    for listener in shared.registry.udp_listeners() {
                        listener.refresh();
                    }
                    refresh_at = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(entries: &[(&str, bool, &[&str])]) -> Snapshot {
        entries
            .iter()
            .map(|(n, up, a)| {
                (
                    n.to_string(),
                    (*up, a.iter().map(|x| x.parse().unwrap()).collect()),
                )
            })
            .collect()
    }

    #[test]
    fn what_changed_between_two_looks() {
        let before = snap(&[
            ("lo", true, &["127.0.0.1"]),
            ("eth0", true, &["10.0.0.2"]),
            ("wlan0", false, &[]),
        ]);
        // Nothing changed: nothing told.
        assert!(diff(&before, &before).is_empty());
        // A new link with an address, a renumbered one, one going down.
        let after = snap(&[
            ("lo", true, &["127.0.0.1"]),
            ("eth0", true, &["10.0.0.3"]),
            ("wlan0", true, &[]),
            ("veth1", true, &["10.9.3.1"]),
        ]);
        assert_eq!(
            diff(&before, &after),
            [
                ("eth0".into(), "10.0.0.3".into(), true),
                ("eth0".into(), "10.0.0.2".into(), false),
                ("veth1".into(), "10.9.3.1".into(), true),
                ("wlan0".into(), String::new(), true),
            ]
        );
        let down = snap(&[("lo", true, &["127.0.0.1"]), ("eth0", false, &["10.0.0.3"])]);
        assert_eq!(
            diff(&after, &down),
            [
                ("eth0".into(), "10.0.0.3".into(), false),
                ("veth1".into(), "10.9.3.1".into(), false),
                ("wlan0".into(), String::new(), false),
            ]
        );
        // Changes on a link that stays down are not told.
        let still_down = snap(&[("lo", true, &["127.0.0.1"]), ("eth0", false, &["10.0.0.9"])]);
        assert!(diff(&down, &still_down).is_empty());
    }
}
