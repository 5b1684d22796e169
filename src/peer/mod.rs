//! Peer identity: what the host is told about a peer beyond its address, its MAC address (from
//! the kernel's neighbour table) and its Bonjour/local name (mDNS, then the system resolver).
//!
//! Found without stalling anything: lookups run as tasks of their own; a new connection waits
//! for one at most `XT_OPT_PEER_LOOKUP_MS`, datagrams and HTTP requests never wait. Results are
//! cached per address: fresh for a while, then still served at once while a refresh runs in
//! the background, so only the first connection from a new address ever waits. Concurrent
//! askers of one address share one lookup. Loopback peers are answered at once ("?", zeros).
//!
//! Bounded: at most [`MAX_ENTRIES`] addresses, [`MAX_LOOKUPS`] lookups at once and
//! [`LOOKUPS_PER_SECOND`] new ones, so a flood of senders cannot flood the link with questions.

mod mdns;
mod resolver;

use crate::info::{c_text, PeerIdentity, UNKNOWN_MAC, UNKNOWN_NAME};
use crate::sys::neighbour;
use crate::sys::route::{self, Route};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a found name (and the MAC with it) is used without asking again.
const FRESH_NAMED: Duration = Duration::from_secs(60);
/// How long "no name" is believed: a responder may start meanwhile.
const FRESH_UNNAMED: Duration = Duration::from_secs(30);
/// How long an old answer is still served (at once, while a refresh runs).
const KEEP: Duration = Duration::from_secs(3600);
/// Most addresses remembered.
pub(crate) const MAX_ENTRIES: usize = 4096;
/// Most lookups running at once.
const MAX_LOOKUPS: usize = 64;
/// New lookups per second (and the burst allowed).
const LOOKUPS_PER_SECOND: f64 = 50.0;
/// Waits between looks at the neighbour table for a peer that is not in it yet.
const NEIGHBOUR_RETRIES: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
];

/// What identifies a peer for lookups: its address and, for IPv6 link-local ones, the
/// interface (the same fe80:: address can be a different machine on another link).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PeerKey {
    ip: IpAddr,
    scope: u32,
}

impl PeerKey {
    /// None for addresses that need no lookup: loopback (this machine), unspecified, multicast.
    pub(crate) fn of(peer: SocketAddr) -> Option<PeerKey> {
        let ip = crate::info::canonical_ip(peer.ip());
        if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
            return None;
        }
        let scope = match (ip, peer) {
            (IpAddr::V6(v6), SocketAddr::V6(p)) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
                p.scope_id()
            }
            _ => 0,
        };
        Some(PeerKey { ip, scope })
    }
}

/// A peer's identity right now, or a wait for it.
pub(crate) enum Identify {
    /// Known (None: nothing to tell, "?" and zeros).
    Now(Option<Arc<PeerIdentity>>),
    /// Being looked up: resolves within the wait asked for, to what is known by then.
    Wait(Pin<Box<dyn Future<Output = Option<Arc<PeerIdentity>>> + Send>>),
}

/// The cache and lookups of one context.
pub(crate) struct Peers {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where lookups run: the context's network runtime, once started.
    runtime: std::sync::OnceLock<tokio::runtime::Handle>,
    map: Mutex<Map>,
    started: AtomicU64,
}

struct Map {
    entries: HashMap<PeerKey, Entry>,
    running: usize,
    tokens: f64,
    refilled: Instant,
}

#[derive(Default)]
struct Entry {
    known: Option<Known>,
    lookup: Option<watch::Receiver<Progress>>,
}

struct Known {
    identity: Option<Arc<PeerIdentity>>,
    fresh_until: Instant,
    keep_until: Instant,
}

/// What a running lookup has found so far.
#[derive(Clone, Default)]
struct Progress {
    mac: Option<[u8; 6]>,
    name: Option<String>,
    identity: Option<Arc<PeerIdentity>>,
    done: bool,
}

/// A MAC address as the host sees it: `aa:bb:cc:dd:ee:ff`.
fn mac_text(mac: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

impl Progress {
    fn update(&mut self) {
        self.identity = (self.mac.is_some() || self.name.is_some()).then(|| {
            Arc::new(PeerIdentity {
                name: self
                    .name
                    .as_deref()
                    .map_or_else(|| UNKNOWN_NAME.to_owned(), c_text),
                mac_address: self
                    .mac
                    .map_or_else(|| UNKNOWN_MAC.to_owned(), |m| c_text(&mac_text(&m))),
            })
        });
    }
}

impl Peers {
    pub(crate) fn new() -> Peers {
        Peers {
            inner: Arc::new(Inner {
                runtime: std::sync::OnceLock::new(),
                map: Mutex::new(Map {
                    entries: HashMap::new(),
                    running: 0,
                    tokens: LOOKUPS_PER_SECOND,
                    refilled: Instant::now(),
                }),
                started: AtomicU64::new(0),
            }),
        }
    }

    /// Lookups run on `runtime` from now on (the network started).
    pub(crate) fn set_runtime(&self, runtime: tokio::runtime::Handle) {
        let _ = self.inner.runtime.set(runtime);
    }

    /// The identity of `peer`, waiting at most `wait()` (zero: what the cache has) when it is
    /// not known yet. A lookup is started (or refreshed in the background) as needed.
    pub(crate) fn identify(&self, peer: SocketAddr, wait: impl FnOnce() -> Duration) -> Identify {
        let Some(key) = PeerKey::of(peer) else {
            return Identify::Now(None);
        };
        let now = Instant::now();
        let mut map = self.inner.map.lock();
        let (known, running) = match map.entries.get(&key) {
            Some(e) => (
                e.known
                    .as_ref()
                    .filter(|k| k.keep_until > now)
                    .map(|k| (k.identity.clone(), k.fresh_until <= now)),
                e.lookup.clone(),
            ),
            None => (None, None),
        };
        if let Some((identity, stale)) = known {
            if stale && running.is_none() {
                self.start(&mut map, key, now);
            }
            return Identify::Now(identity);
        }
        let lookup = match running {
            Some(lookup) => lookup,
            None => match self.start(&mut map, key, now) {
                Some(lookup) => lookup,
                None => return Identify::Now(None),
            },
        };
        drop(map);
        let wait = wait();
        if wait.is_zero() {
            return Identify::Now(lookup.borrow().identity.clone());
        }
        Identify::Wait(Box::pin(async move {
            let mut lookup = lookup;
            let _ = tokio::time::timeout(wait, lookup.wait_for(|p| p.done)).await;
            let identity = lookup.borrow().identity.clone();
            identity
        }))
    }

    /// The cached identity of `peer`, never waiting (a lookup starts when there is none).
    pub(crate) fn cached(&self, peer: SocketAddr) -> Option<Arc<PeerIdentity>> {
        match self.identify(peer, || Duration::ZERO) {
            Identify::Now(identity) => identity,
            Identify::Wait(_) => None,
        }
    }

    /// Addresses in the cache (`XT_STAT_PEER_CACHE_ENTRIES`).
    pub(crate) fn entries(&self) -> usize {
        self.inner.map.lock().entries.len()
    }

    /// Lookups started so far (`XT_STAT_PEER_LOOKUPS`).
    pub(crate) fn lookups_started(&self) -> u64 {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// Starts a lookup of `key` unless the limits say no.
    fn start(
        &self,
        map: &mut Map,
        key: PeerKey,
        now: Instant,
    ) -> Option<watch::Receiver<Progress>> {
        // Lookups run on the network runtime; none is asked for before it runs.
        let runtime = self.inner.runtime.get()?;
        let elapsed = now.saturating_duration_since(map.refilled).as_secs_f64();
        map.tokens = (map.tokens + elapsed * LOOKUPS_PER_SECOND).min(LOOKUPS_PER_SECOND);
        map.refilled = now;
        if map.running >= MAX_LOOKUPS || map.tokens < 1.0 {
            return None;
        }
        if !map.entries.contains_key(&key) && map.entries.len() >= MAX_ENTRIES {
            map.evict(now);
        }
        map.tokens -= 1.0;
        map.running += 1;
        let (tx, rx) = watch::channel(Progress::default());
        map.entries.entry(key).or_default().lookup = Some(rx.clone());
        self.inner.started.fetch_add(1, Ordering::Relaxed);
        let finish = Finish {
            inner: self.inner.clone(),
            key,
            progress: tx,
        };
        runtime.spawn(async move {
            look_up(key, &finish.progress).await;
            drop(finish);
        });
        Some(rx)
    }
}

impl Map {
    /// Makes room: forgets what has expired, then (still full) an eighth of the entries that
    /// are not being looked up.
    fn evict(&mut self, now: Instant) {
        self.entries.retain(|_, e| {
            e.lookup.is_some() || e.known.as_ref().is_some_and(|k| k.keep_until > now)
        });
        if self.entries.len() >= MAX_ENTRIES {
            let mut drop = MAX_ENTRIES / 8;
            self.entries.retain(|_, e| {
                let keep = e.lookup.is_some() || drop == 0;
                if !keep {
                    drop -= 1;
                }
                keep
            });
        }
    }
}

/// Ends a lookup however its task ends (done, or dropped with the runtime): the cache gets
/// what was found and waiters are released.
struct Finish {
    inner: Arc<Inner>,
    key: PeerKey,
    progress: watch::Sender<Progress>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let (identity, named) = {
            let p = self.progress.borrow();
            (p.identity.clone(), p.name.is_some())
        };
        let now = Instant::now();
        {
            let mut map = self.inner.map.lock();
            map.running -= 1;
            let entry = map.entries.entry(self.key).or_default();
            entry.lookup = None;
            entry.known = Some(Known {
                identity,
                fresh_until: now + if named { FRESH_NAMED } else { FRESH_UNNAMED },
                keep_until: now + KEEP,
            });
        }
        self.progress.send_modify(|p| p.done = true);
    }
}

/// Finds what can be found of `key`, publishing each part as it comes: the MAC (fast) first,
/// so a connection that cannot wait for the name still gets it.
async fn look_up(key: PeerKey, progress: &watch::Sender<Progress>) {
    let route = match route::route_to(key.ip, key.scope) {
        Ok(route) if route.local => return,
        Ok(route) => Some(route),
        Err(_) => None,
    };
    let on_link = route.filter(|r| r.on_link);
    let mac = async {
        if let Some(mac) = match &on_link {
            Some(route) => neighbour_mac(key, route).await,
            None => None,
        } {
            progress.send_modify(|p| {
                p.mac = Some(mac);
                p.update();
            });
        }
    };
    let name = async {
        let by_mdns = match &on_link {
            Some(route) => mdns::reverse_lookup(key.ip, route).await,
            None => None,
        };
        let name = match by_mdns {
            Some(name) => Some(name),
            None => resolver::system_name(key.ip, key.scope).await,
        };
        if let Some(name) = name {
            progress.send_modify(|p| {
                p.name = Some(name);
                p.update();
            });
        }
    };
    tokio::join!(mac, name);
}

/// The MAC of an on-link peer. A peer that never had to be resolved (it only sent broadcast or
/// multicast, say) is not in the neighbour table: one empty datagram to its discard port makes
/// the kernel resolve it, and the table is looked at again a few times.
async fn neighbour_mac(key: PeerKey, route: &Route) -> Option<[u8; 6]> {
    if let Some(mac) = neighbour::mac_of(key.ip, route.ifindex).ok()? {
        return Some(mac);
    }
    provoke_resolution(key);
    for wait in NEIGHBOUR_RETRIES {
        tokio::time::sleep(wait).await;
        if let Some(mac) = neighbour::mac_of(key.ip, route.ifindex).ok()? {
            return Some(mac);
        }
    }
    None
}

/// Sends one empty UDP datagram to port 9 (discard) of the peer: the kernel resolves its
/// link-layer address to send it (ARP / neighbour solicitation).
fn provoke_resolution(key: PeerKey) {
    let (bind, to): (SocketAddr, SocketAddr) = match key.ip {
        IpAddr::V4(v4) => ((std::net::Ipv4Addr::UNSPECIFIED, 0).into(), (v4, 9).into()),
        IpAddr::V6(v6) => (
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            std::net::SocketAddrV6::new(v6, 9, 0, key.scope).into(),
        ),
    };
    if let Ok(socket) = std::net::UdpSocket::bind(bind) {
        let _ = socket.set_nonblocking(true);
        let _ = socket.send_to(&[], to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> PeerKey {
        PeerKey {
            ip: IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n)),
            scope: 0,
        }
    }

    #[test]
    fn mac_text_is_lower_case_with_colons() {
        assert_eq!(
            mac_text(&[0x0a, 0xbc, 0, 1, 0xff, 0x10]),
            "0a:bc:00:01:ff:10"
        );
    }

    #[test]
    fn loopback_and_mapped_addresses() {
        assert_eq!(PeerKey::of("127.0.0.1:5".parse().unwrap()), None);
        assert_eq!(PeerKey::of("[::1]:5".parse().unwrap()), None);
        assert_eq!(PeerKey::of("[::ffff:127.0.0.1]:5".parse().unwrap()), None);
        assert_eq!(
            PeerKey::of("[::ffff:10.0.0.1]:5".parse().unwrap()),
            Some(key(1))
        );
        let scoped: SocketAddr = "[fe80::1%7]:5".parse().unwrap();
        assert_eq!(PeerKey::of(scoped).unwrap().scope, 7);
        let global: SocketAddr = "[fd00::1%7]:5".parse().unwrap();
        assert_eq!(
            PeerKey::of(global).unwrap().scope,
            0,
            "scope only for link-local"
        );
    }

    #[test]
    fn eviction_keeps_the_cache_bounded_and_lookups_in_flight() {
        let now = Instant::now();
        let mut map = Map {
            entries: HashMap::new(),
            running: 0,
            tokens: 0.0,
            refilled: now,
        };
        let (_tx, rx) = watch::channel(Progress::default());
        for n in 0..MAX_ENTRIES as u32 {
            let entry = map.entries.entry(key(n)).or_default();
            if n % 100 == 0 {
                entry.lookup = Some(rx.clone());
            } else {
                entry.known = Some(Known {
                    identity: None,
                    fresh_until: now,
                    // Every other one has expired.
                    keep_until: if n % 2 == 0 { now } else { now + KEEP },
                });
            }
        }
        map.evict(now);
        let left = map.entries.len();
        assert!(left < MAX_ENTRIES * 3 / 4, "expired ones went: {left}");
        assert!((0..MAX_ENTRIES as u32)
            .step_by(100)
            .all(|n| map.entries.contains_key(&key(n))));
        // All unexpired: an eighth goes, never one being looked up.
        for n in 0..MAX_ENTRIES as u32 {
            map.entries
                .entry(key(n))
                .or_default()
                .known
                .get_or_insert(Known {
                    identity: None,
                    fresh_until: now,
                    keep_until: now + KEEP,
                });
        }
        map.evict(now);
        assert_eq!(map.entries.len(), MAX_ENTRIES - MAX_ENTRIES / 8);
        assert!((0..MAX_ENTRIES as u32)
            .step_by(100)
            .all(|n| map.entries.contains_key(&key(n))));
    }

    #[test]
    fn identity_text() {
        let mut p = Progress::default();
        p.update();
        assert!(p.identity.is_none(), "nothing known: the static texts");
        p.mac = Some([0x02, 0, 0, 0, 0, 0x0b]);
        p.update();
        let i = p.identity.clone().unwrap();
        assert_eq!(
            (i.name.to_str().unwrap(), i.mac_address.to_str().unwrap()),
            ("?", "02:00:00:00:00:0b")
        );
        p.name = Some("kitchen.local".into());
        p.update();
        assert_eq!(p.identity.unwrap().name.to_str().unwrap(), "kitchen.local");
    }
}
