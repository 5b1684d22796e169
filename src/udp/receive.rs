//! Receiving: one task per listener reads both sockets in batches and queues each batch for
//! the host as one event. UDP cannot push back, so when the host's callbacks fall behind,
//! datagrams past a bound are dropped, counted (with the kernel's own drops, SO_RXQ_OVFL) and
//! logged — never silently.

use super::listener::{Sockets, UdpListener, DATAGRAM_COST};
use super::Datagram;
use crate::error::Error;
use crate::events::{Event, LogLevel};
use crate::info::PeerIdentity;
use crate::registry::ListenerStopped;
use crate::shared::Shared;
use crate::sys::udp::{self as sys_udp, BATCH};
use std::future::pending;
use std::io;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Bytes of datagrams waiting for the host, per listener, past which new ones are dropped.
const UNDELIVERED_LIMIT: usize = 8 << 20;
/// Drops are logged at most this often per listener.
const DROP_LOG_EVERY: Duration = Duration::from_secs(1);

pub(super) async fn read_loop(
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
                    read_contained(shared, listener, sockets.v4.as_ref(), 0);
                }
            }
            r = readable(sockets.v6.as_ref()) => {
                if r.is_ok() {
                    read_contained(shared, listener, sockets.v6.as_ref(), 1);
                }
            }
        }
    }
    // Close the sockets before saying so (the registry's stop waits for `stopped` to drop).
    drop(sockets);
    drop(stopped);
}

/// `read_socket`, with a panic inside (a bug in xtnet) contained to the batch it hit: logged,
/// and the listener goes on receiving.
fn read_contained(
    shared: &Shared,
    listener: &Arc<UdpListener>,
    socket: Option<&UdpSocket>,
    family: usize,
) {
    let read = catch_unwind(AssertUnwindSafe(|| {
        read_socket(shared, listener, socket, family)
    }));
    if let Err(payload) = read {
        shared.log(
            LogLevel::Error,
            &format!(
                "UDP listener {}: internal error while receiving (the batch is lost): {}",
                listener.id,
                crate::panics::message(&*payload)
            ),
        );
    }
}

/// Reads what one socket has (a few batches at most, then lets others run).
fn read_socket(
    shared: &Shared,
    listener: &Arc<UdpListener>,
    socket: Option<&UdpSocket>,
    family: usize,
) {
    let Some(socket) = socket else { return };
    // A full batch means datagrams were waiting: the kernel may have dropped some meanwhile.
    let mut backlogged = false;
    for _ in 0..8 {
        let mut datagrams = Vec::new();
        let received = sys_udp::recv_batch(socket, |from, data, arrival| {
            datagrams.push(Datagram {
                from,
                data,
                arrival,
                identity: None,
            })
        });
        match received {
            Ok(received) => {
                let full = received.count == BATCH;
                backlogged |= full;
                queue_batch(shared, listener, datagrams, received.kernel_drops, family);
                if !full {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                // ICMP errors from earlier sends surface here (e.g. port unreachable): not fatal.
                shared.log(
                    LogLevel::Debug,
                    &format!("UDP listener {}: {}", listener.id, Error::io("receive", &e)),
                );
                break;
            }
        }
    }
    if backlogged {
        if let Some(total) = crate::sys::socket_options::kernel_drops_now(socket) {
            note_kernel_drops(shared, listener, total, family);
        }
    }
}

/// The kernel's drop count of one socket is `total` now: what is new is counted and logged.
fn note_kernel_drops(shared: &Shared, listener: &UdpListener, total: u32, family: usize) {
    let before = listener.kernel_drops[family].fetch_max(total as u64, Ordering::Relaxed);
    if total as u64 > before {
        count_drops(listener, shared, total as u64 - before);
    }
}

/// Queues a received batch for the host, dropping (and counting) what is past the bound.
fn queue_batch(
    shared: &Shared,
    listener: &Arc<UdpListener>,
    datagrams: Vec<Datagram>,
    kernel_drops: Option<u32>,
    family: usize,
) {
    if let Some(total) = kernel_drops {
        note_kernel_drops(shared, listener, total, family);
    }
    let mut keep = Vec::with_capacity(datagrams.len());
    let mut dropped = 0;
    // Senders' identities from the cache (never waiting); one look per run of one sender.
    let mut last: Option<(IpAddr, Option<Arc<PeerIdentity>>)> = None;
    for mut d in datagrams {
        let cost = d.data.len() + DATAGRAM_COST;
        if listener.undelivered.load(Ordering::Relaxed) + cost > UNDELIVERED_LIMIT {
            dropped += 1;
        } else {
            listener.undelivered.fetch_add(cost, Ordering::Relaxed);
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
        count_drops(listener, shared, dropped);
    }
    if !keep.is_empty() {
        shared.emit(Event::Datagrams {
            listener: listener.clone(),
            datagrams: keep,
        });
    }
}

fn count_drops(listener: &UdpListener, shared: &Shared, n: u64) {
    listener.dropped.fetch_add(n, Ordering::Relaxed);
    let mut log = listener.drop_log.lock();
    log.unlogged += n;
    if log.last.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY) {
        let message = format!(
                "UDP listener {} on port {} dropped {} datagram(s): the host's callbacks are behind ({} dropped in all)",
                listener.id,
                listener.port,
                log.unlogged,
                listener.dropped.load(Ordering::Relaxed)
            );
        log.unlogged = 0;
        log.last = Some(Instant::now());
        drop(log);
        shared.log(LogLevel::Warning, &message);
    }
}
