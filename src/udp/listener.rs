//! A UDP listener as every thread sees it: its sockets, its counters (waiting, dropped, failed
//! sends), the datagrams its callbacks queued, and its multicast state. Receiving is
//! `receive.rs`, sending `send.rs`, group membership and multicast options `membership.rs`.

use super::interfaces::Interface;
use crate::dispatch::Writer;
use crate::error::Error;
use crate::gate::CallbackGate;
use parking_lot::{Mutex, RwLock};
use std::any::Any;
use std::ffi::CStr;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;

use super::socket::Datagram;

/// A listener's multicast state.
#[derive(Default)]
pub(super) struct Multicast {
    /// (group, interface index) memberships this listener holds.
    pub(super) joined: Vec<(IpAddr, u32)>,
    /// What the host asked for, so memberships can follow interfaces that come and go.
    pub(super) wanted: Vec<Wanted>,
    /// The interface multicast is sent from; None: every suitable interface.
    pub(super) out_interface: Option<Interface>,
}

/// A group the host asked for: on every suitable interface (but those it left by name), or on
/// one interface, by name (re-joined when that interface comes back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Wanted {
    pub(super) group: IpAddr,
    pub(super) on: Target,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    Every { except: Vec<String> },
    Named(String),
}

/// What a waiting datagram costs on top of its bytes.
pub(super) const DATAGRAM_COST: usize = 64;

/// The listener's sockets, registered with the runtime.
pub(super) struct Sockets {
    pub(super) v4: Option<UdpSocket>,
    pub(super) v6: Option<UdpSocket>,
}

impl Sockets {
    pub(super) fn for_family(&self, v6: bool) -> Option<&UdpSocket> {
        if v6 {
            self.v6.as_ref()
        } else {
            self.v4.as_ref()
        }
    }
}

/// Datagrams queued by callbacks, sent when their batch ends.
#[derive(Default)]
pub(super) struct Outbox {
    pub(super) bytes: Vec<u8>,
    pub(super) items: Vec<(SocketAddr, std::ops::Range<usize>)>,
}

pub(super) struct DropLog {
    pub(super) last: Option<Instant>,
    pub(super) unlogged: u64,
}

pub(crate) struct UdpListener {
    pub(crate) id: u32,
    pub(crate) port: u16,
    pub(super) ctx_id: u64,
    pub(super) sockets: RwLock<Option<Arc<Sockets>>>,
    /// Closed by a stop: no `received_datagram` of this listener after it returns.
    pub(crate) gate: CallbackGate,
    /// Bytes (plus a cost each) of datagrams queued for the host and not yet delivered.
    pub(super) undelivered: AtomicUsize,
    pub(super) dropped: AtomicU64,
    /// Datagrams sent from callbacks that the system refused (reported in the log only).
    pub(super) send_failures: AtomicU64,
    /// Last SO_RXQ_OVFL value seen per socket (IPv4, IPv6): the kernel's own drops.
    pub(super) kernel_drops: [AtomicU64; 2],
    pub(super) drop_log: Mutex<DropLog>,
    pub(super) outbox: Mutex<Outbox>,
    /// Already on this batch's flush list.
    pub(super) written_in_batch: AtomicBool,
    pub(super) multicast: Mutex<Multicast>,
    /// Arrival interfaces' names, for the datagrams' info.
    pub(crate) interface_names: super::InterfaceNames,
}

/// Sender details of one datagram for the host.
pub struct DatagramInfo<'a> {
    pub remote_address: &'a CStr,
    pub remote_port: u16,
    pub local_port: u16,
    pub name: &'a CStr,
    pub mac_address: &'a CStr,
    /// The datagram's destination: our address, the group, or the broadcast address ("" when
    /// unknown).
    pub local_address: &'a CStr,
    /// The arrival interface ("" when unknown) and its index (0).
    pub interface_name: &'a CStr,
    pub interface_index: u32,
    pub kind: super::DatagramKind,
}

impl UdpListener {
    pub(super) fn new(id: u32, port: u16, ctx_id: u64, sockets: Arc<Sockets>) -> UdpListener {
        UdpListener {
            id,
            port,
            ctx_id,
            sockets: RwLock::new(Some(sockets)),
            gate: CallbackGate::new(ctx_id),
            undelivered: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            send_failures: AtomicU64::new(0),
            kernel_drops: [AtomicU64::new(0), AtomicU64::new(0)],
            drop_log: Mutex::new(DropLog {
                last: None,
                unlogged: 0,
            }),
            outbox: Mutex::new(Outbox::default()),
            written_in_batch: AtomicBool::new(false),
            multicast: Mutex::new(Multicast::default()),
            interface_names: Default::default(),
        }
    }

    /// No more callbacks, sends or memberships: drops this side's hold on the sockets (the
    /// reading task drops its own when it stops).
    pub(crate) fn close(&self) {
        self.sockets.write().take();
        *self.outbox.lock() = Outbox::default();
        self.gate.close_and_wait();
    }

    /// Datagrams dropped so far (ours and the kernel's).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Datagrams sent from callbacks that the system refused so far.
    pub(crate) fn send_failures(&self) -> u64 {
        self.send_failures.load(Ordering::Relaxed)
    }

    /// The host has seen these datagrams (dispatcher side).
    pub(crate) fn delivered(&self, datagrams: &[Datagram]) {
        let cost: usize = datagrams.iter().map(|d| d.data.len() + DATAGRAM_COST).sum();
        self.undelivered.fetch_sub(cost, Ordering::Relaxed);
    }

    pub(super) fn sockets(&self) -> Result<Arc<Sockets>, Error> {
        self.sockets
            .read()
            .clone()
            .ok_or_else(|| Error::invalid_state(format!("UDP listener {} is stopped", self.id)))
    }
}

impl Writer for UdpListener {
    fn flush_batch(&self, _here: bool) -> Option<String> {
        self.flush_outbox()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
