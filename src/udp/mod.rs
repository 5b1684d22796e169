//! UDP listeners: datagrams in (batched, whole, with the sender), datagrams out (unicast,
//! broadcast, multicast), group membership, and no silent loss.
//!
//! Receiving: one task per listener reads both sockets in batches and hands each batch to the
//! host as one event. UDP cannot push back, so when the host's callbacks fall behind, datagrams
//! past a bound are dropped, counted (with the kernel's own drops, SO_RXQ_OVFL) and logged.
//!
//! Sending: unicast from outside a callback goes out at once; from inside a callback it waits
//! for the end of the batch, so replies leave many per system call (sendmmsg). Multicast and
//! the limited broadcast go out of every suitable interface (or the one the host chose).

pub mod interfaces;
mod socket;

use crate::context::Shared;
use crate::error::{self, Error};
use crate::events::{self, Event, LogLevel};
use crate::gate::CallbackGate;
use crate::info::{c_text, PeerIdentity};
use crate::ports::check_port;
use crate::registry::{ListenerKind, ListenerState, ListenerStop, ListenerStopped};
use interfaces::Interface;
use parking_lot::{Mutex, RwLock};
use socket::Batch;
pub(crate) use socket::Datagram;
use std::ffi::CString;
use std::future::pending;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

pub(crate) use socket::{MAX_DATAGRAM_V4, MAX_DATAGRAM_V6};

/// Bytes of datagrams waiting for the host, per listener, past which new ones are dropped.
const PENDING_LIMIT: usize = 8 << 20;
/// What a waiting datagram costs on top of its bytes.
const DATAGRAM_COST: usize = 64;
/// Datagrams queued inside one batch of callbacks before they are sent anyway.
const OUTBOX_LIMIT: usize = 1024;
/// Drops are logged at most this often per listener.
const DROP_LOG_EVERY: Duration = Duration::from_secs(1);

/// The listener's sockets, registered with the runtime.
struct Sockets {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
}

impl Sockets {
    fn for_family(&self, v6: bool) -> Option<&UdpSocket> {
        if v6 {
            self.v6.as_ref()
        } else {
            self.v4.as_ref()
        }
    }
}

/// Datagrams queued by callbacks, sent when their batch ends.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    items: Vec<(SocketAddr, std::ops::Range<usize>)>,
}

#[derive(Default)]
struct Multicast {
    /// (group, interface index) memberships this listener holds.
    joined: Vec<(IpAddr, u32)>,
    /// The interface multicast is sent from; None: every suitable interface.
    out_interface: Option<Interface>,
}

struct DropLog {
    last: Option<Instant>,
    unlogged: u64,
}

pub(crate) struct UdpListener {
    pub(crate) id: u32,
    pub(crate) port: u16,
    ctx_id: u64,
    sockets: RwLock<Option<Arc<Sockets>>>,
    /// Closed by a stop: no `received_datagram` of this listener after it returns.
    gate: CallbackGate,
    pending: AtomicUsize,
    dropped: AtomicU64,
    /// Datagrams sent from callbacks that the system refused (reported in the log only).
    send_failures: AtomicU64,
    /// Last SO_RXQ_OVFL value seen per socket (IPv4, IPv6): the kernel's own drops.
    kernel_drops: [AtomicU64; 2],
    drop_log: Mutex<DropLog>,
    outbox: Mutex<Outbox>,
    dirty: AtomicBool,
    multicast: Mutex<Multicast>,
}

/// Sender details of one datagram for the host.
pub struct DatagramInfo<'a> {
    pub remote_address: &'a std::ffi::CStr,
    pub remote_port: u16,
    pub local_port: u16,
    pub name: &'a std::ffi::CStr,
    pub mac_address: &'a std::ffi::CStr,
}

/// Starts a UDP listener and returns its id.
pub(crate) fn start_listener(shared: &Arc<Shared>, port: u16) -> Result<u32, Error> {
    let (allow_privileged, bind) = {
        let o = shared.options.lock();
        (o.allow_privileged_ports, o.bind_address)
    };
    check_port(port, allow_privileged)?;
    let bound = socket::bind(bind, port)?;
    let id = shared.registry.next_listener_id()?;
    let sockets = {
        let _runtime = shared.runtime.enter();
        let register = |s: Option<std::net::UdpSocket>| {
            s.map(UdpSocket::from_std)
                .transpose()
                .map_err(|e| Error::io("registering the UDP socket", &e))
        };
        Arc::new(Sockets {
            v4: register(bound.v4)?,
            v6: register(bound.v6)?,
        })
    };
    let listener = Arc::new(UdpListener {
        id,
        port: bound.port,
        ctx_id: shared.id,
        sockets: RwLock::new(Some(sockets.clone())),
        gate: CallbackGate::new(shared.id),
        pending: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
        send_failures: AtomicU64::new(0),
        kernel_drops: [AtomicU64::new(0), AtomicU64::new(0)],
        drop_log: Mutex::new(DropLog {
            last: None,
            unlogged: 0,
        }),
        outbox: Mutex::new(Outbox::default()),
        dirty: AtomicBool::new(false),
        multicast: Mutex::new(Multicast::default()),
    });
    let (stop, stopped) = ListenerStop::new();
    let guard = shared.task_guard();
    let task_listener = listener.clone();
    shared.runtime.spawn(async move {
        let shared = guard.shared().clone();
        read_loop(&shared, &task_listener, sockets, stopped).await;
        drop(guard);
    });
    shared
        .registry
        .add_listener(id, bound.port, stop, ListenerState::Udp(listener.clone()));
    shared.log(
        LogLevel::Info,
        &format!("UDP listener {id} listening on port {}", bound.port),
    );
    if shared.is_closing() {
        let _ = stop_listener(shared, id);
        return Err(Error::invalid_state("the context is being freed"));
    }
    Ok(id)
}

/// Stops a UDP listener: when this returns its sockets are closed and none of its callbacks
/// runs or will run (unless this is called from that callback itself, which then finishes).
pub(crate) fn stop_listener(shared: &Shared, id: u32) -> Result<(), Error> {
    let listener = shared.registry.udp_listener(id)?;
    shared.registry.stop_listener(id, ListenerKind::Udp)?;
    listener.close();
    shared.log(
        LogLevel::Info,
        &format!("UDP listener {id} on port {} stopped", listener.port),
    );
    Ok(())
}

async fn read_loop(
    shared: &Shared,
    listener: &Arc<UdpListener>,
    sockets: Arc<Sockets>,
    mut stopped: ListenerStopped,
) {
    async fn readable(s: Option<&UdpSocket>) -> io::Result<()> {
        match s {
            Some(s) => s.readable().await,
            None => pending().await,
        }
    }
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped.stop => break,
            r = readable(sockets.v4.as_ref()) => {
                if r.is_ok() {
                    read_socket(shared, listener, sockets.v4.as_ref(), 0);
                }
            }
            r = readable(sockets.v6.as_ref()) => {
                if r.is_ok() {
                    read_socket(shared, listener, sockets.v6.as_ref(), 1);
                }
            }
        }
    }
    // Close the sockets before saying so (the registry's stop waits for `stopped` to drop).
    drop(sockets);
    drop(stopped);
}

/// Reads what one socket has (a few batches at most, then lets others run).
fn read_socket(
    shared: &Shared,
    listener: &Arc<UdpListener>,
    socket: Option<&UdpSocket>,
    family: usize,
) {
    let Some(socket) = socket else { return };
    for _ in 0..8 {
        match socket::recv_batch(socket) {
            Ok(batch) => {
                let full = batch.datagrams.len() == socket::BATCH;
                listener.accept_batch(shared, batch, family);
                if !full {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                // ICMP errors from earlier sends surface here (e.g. port unreachable): not fatal.
                shared.log(
                    LogLevel::Debug,
                    &format!("UDP listener {}: {}", listener.id, Error::io("receive", &e)),
                );
                return;
            }
        }
    }
}

impl UdpListener {
    /// No more callbacks, sends or memberships: drops this side's hold on the sockets (the
    /// reading task drops its own when it stops).
    pub(crate) fn close(&self) {
        self.sockets.write().take();
        *self.outbox.lock() = Outbox::default();
        self.gate.close_and_wait();
    }

    /// Queues a received batch for the host, dropping (and counting) what is past the bound.
    fn accept_batch(self: &Arc<Self>, shared: &Shared, batch: Batch, family: usize) {
        if let Some(total) = batch.kernel_drops {
            let before = self.kernel_drops[family].swap(total as u64, Ordering::Relaxed);
            if total as u64 > before {
                self.count_drops(shared, total as u64 - before);
            }
        }
        let mut keep = Vec::with_capacity(batch.datagrams.len());
        let mut dropped = 0;
        // Senders' identities from the cache (never waiting); one look per run of one sender.
        let mut last: Option<(IpAddr, Option<Arc<PeerIdentity>>)> = None;
        for mut d in batch.datagrams {
            let cost = d.data.len() + DATAGRAM_COST;
            if self.pending.load(Ordering::Relaxed) + cost > PENDING_LIMIT {
                dropped += 1;
            } else {
                self.pending.fetch_add(cost, Ordering::Relaxed);
                let ip = d.from.ip();
                d.identity = match &last {
                    Some((seen, identity)) if *seen == ip => identity.clone(),
                    _ => {
                        let identity = shared.peers.cached(d.from);
                        last = Some((ip, identity.clone()));
                        identity
                    }
                };
                keep.push(d);
            }
        }
        if dropped > 0 {
            self.count_drops(shared, dropped);
        }
        if !keep.is_empty() {
            shared.queue.push(Event::Datagrams {
                listener: self.clone(),
                datagrams: keep,
            });
        }
    }

    fn count_drops(&self, shared: &Shared, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        let mut log = self.drop_log.lock();
        log.unlogged += n;
        if log.last.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY) {
            let message = format!(
                "UDP listener {} on port {} dropped {} datagram(s): the host's callbacks are behind ({} dropped in all)",
                self.id,
                self.port,
                log.unlogged,
                self.dropped.load(Ordering::Relaxed)
            );
            log.unlogged = 0;
            log.last = Some(Instant::now());
            drop(log);
            shared.log(LogLevel::Warning, &message);
        }
    }

    /// Datagrams dropped so far (ours and the kernel's).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Datagrams sent from callbacks that the system refused so far.
    pub(crate) fn send_failures(&self) -> u64 {
        self.send_failures.load(Ordering::Relaxed)
    }

    /// Delivers a batch to the host (dispatcher side). Nothing is delivered once stopped.
    pub(crate) fn deliver(
        &self,
        host: &dyn crate::events::Host,
        datagrams: Vec<Datagram>,
    ) -> usize {
        let cost: usize = datagrams.iter().map(|d| d.data.len() + DATAGRAM_COST).sum();
        let mut ran = 0;
        let mut text: Option<(IpAddr, CString)> = None;
        for d in &datagrams {
            let Some(_pass) = self.gate.enter() else {
                break;
            };
            let ip = crate::info::canonical_ip(d.from.ip());
            if text.as_ref().is_none_or(|(t, _)| *t != ip) {
                text = Some((ip, c_text(&ip.to_string())));
            }
            let info = DatagramInfo {
                remote_address: &text.as_ref().expect("set above").1,
                remote_port: d.from.port(),
                local_port: self.port,
                name: d
                    .identity
                    .as_ref()
                    .map_or(crate::info::UNKNOWN_NAME, |i| &i.name),
                mac_address: d
                    .identity
                    .as_ref()
                    .map_or(crate::info::UNKNOWN_MAC, |i| &i.mac_address),
            };
            host.received_datagram(self.id, &d.data, &info);
            ran += 1;
        }
        self.pending.fetch_sub(cost, Ordering::Relaxed);
        ran
    }

    fn sockets(&self) -> Result<Arc<Sockets>, Error> {
        self.sockets
            .read()
            .clone()
            .ok_or_else(|| Error::invalid_state(format!("UDP listener {} is stopped", self.id)))
    }

    /// Sends a datagram to `to` (see the module comment for where it goes and when).
    pub(crate) fn send(self: &Arc<Self>, to: Destination, data: &[u8]) -> Result<(), Error> {
        let addr = to.addr;
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
        let sockets = self.sockets()?;
        let socket = sockets.for_family(addr.is_ipv6()).ok_or_else(|| {
            Error::invalid_argument(format!(
                "UDP listener {} has no {} socket (see xt_set_bind_address)",
                self.id,
                if addr.is_ipv6() { "IPv6" } else { "IPv4" }
            ))
        })?;
        let ip = addr.ip();
        let limited_broadcast = ip == IpAddr::V4(Ipv4Addr::BROADCAST);
        if ip.is_multicast() || limited_broadcast {
            return self.send_out_of_interfaces(socket, addr, data, limited_broadcast);
        }
        if events::dispatching_context() == self.ctx_id {
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
            } else if !self.dirty.swap(true, Ordering::AcqRel) {
                events::flush_after_batch(events::Dirty::Udp(self.clone()));
            }
            return Ok(());
        }
        socket::send_to(socket, data, addr).map_err(|e| send_error(addr, &e))
    }

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
            _ => interfaces::all()
                .map_err(|e| Error::io("listing network interfaces", &e))?
                .into_iter()
                .filter(|i| {
                    if broadcast {
                        i.carries_broadcast()
                    } else {
                        i.carries_multicast() && (to.is_ipv6() || !i.ipv4.is_empty())
                    }
                })
                .collect(),
        };
        if targets.is_empty() {
            // No suitable interface: let the routing table decide.
            return socket::send_to(socket, data, to).map_err(|e| send_error(to, &e));
        }
        let mut first_error = None;
        let mut sent = 0;
        for i in &targets {
            match socket::send_via(socket, data, to, i.index) {
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
        self.dirty.store(false, Ordering::Release);
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
                match socket::send_batch(socket, &batch[at..]) {
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

fn send_error(to: SocketAddr, e: &io::Error) -> Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        return Error::new(
            error::OUT_OF_MEMORY,
            format!("the send buffer is full (datagram to {to} not sent)"),
        );
    }
    Error::io(&format!("sending to {to}"), e)
}

/// The up, multicast-capable interfaces that can carry `group`'s family.
fn multicast_interfaces(group: IpAddr) -> Result<Vec<Interface>, Error> {
    let list: Vec<Interface> = interfaces::all()
        .map_err(|e| Error::io("listing network interfaces", &e))?
        .into_iter()
        .filter(|i| i.carries_multicast() && (group.is_ipv6() || !i.ipv4.is_empty()))
        .collect();
    if list.is_empty() {
        return Err(Error::new(
            libc::ENODEV,
            "no up, multicast-capable network interface to join on",
        ));
    }
    Ok(list)
}

/// Where a datagram goes, parsed from the host's text.
pub(crate) struct Destination {
    pub addr: SocketAddr,
}

impl Destination {
    /// An IPv4 or IPv6 address (IPv6 link-local with `%interface` or `%index`), or
    /// XT_BROADCAST_ADDRESS; names are not resolved (sending never blocks).
    pub(crate) fn parse(text: &str, port: u16) -> Result<Destination, Error> {
        let text = text.trim();
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        let (ip_text, scope) = match bare.split_once('%') {
            Some((ip, scope)) => (ip, Some(scope)),
            None => (bare, None),
        };
        let bad = || {
            Error::invalid_argument(format!(
                "not an IP address: {text:?} (names are not resolved)"
            ))
        };
        let ip: IpAddr = ip_text.parse().map_err(|_| bad())?;
        let addr = match (ip, scope) {
            (IpAddr::V6(v6), Some(scope)) => {
                let index = match scope.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => interfaces::find(scope)?.index,
                };
                SocketAddr::V6(SocketAddrV6::new(v6, port, 0, index))
            }
            (_, Some(_)) => return Err(bad()),
            (ip, None) => SocketAddr::new(ip, port),
        };
        Ok(Destination { addr })
    }
}

/// Parses a multicast group address.
pub(crate) fn parse_group(text: &str) -> Result<IpAddr, Error> {
    let ip: IpAddr = text
        .trim()
        .parse()
        .map_err(|_| Error::invalid_argument(format!("not an IP address: {text:?}")))?;
    if !ip.is_multicast() {
        return Err(Error::invalid_argument(format!(
            "{ip} is not a multicast group address"
        )));
    }
    Ok(ip)
}
