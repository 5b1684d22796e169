//! The system resolver's name for an address (getnameinfo(3): hosts file, DNS, and whatever
//! else the system is set up with), the fallback when nobody answers by mDNS.
//!
//! getnameinfo blocks and cannot be cancelled, so it runs on a short-lived thread of its own:
//! not on a network thread, and not on the runtime's blocking pool, whose threads freeing a
//! context would wait for. The thread is spawned from the network thread asking, so it shares
//! its network namespace. Few run at once (process-wide), so a flood of unknown peers cannot
//! start a flood of threads.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Most lookups running at once in the process; more are not started (the name stays "?").
const MAX_RUNNING: usize = 8;
/// Longest wait for an answer; a later one is dropped (the thread ends on its own).
const TIMEOUT: Duration = Duration::from_secs(3);

static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Counts a running lookup until dropped.
struct Running;

impl Running {
    fn start() -> Option<Running> {
        RUNNING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_RUNNING).then_some(n + 1)
            })
            .ok()
            .map(|_| Running)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The system's name for `ip` (`scope`: the interface of an IPv6 link-local address), None
/// when it has none, is busy, or takes longer than [`TIMEOUT`].
pub(crate) async fn system_name(ip: IpAddr, scope: u32) -> Option<String> {
    let running = Running::start()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let address = match ip {
        IpAddr::V4(v4) => SocketAddr::from((v4, 0)),
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, scope)),
    };
    std::thread::Builder::new()
        .name("xtnet-resolve".into())
        .spawn(move || {
            let _running = running;
            let _ = tx.send(crate::sys::nameinfo::name_info(address));
        })
        .ok()?;
    tokio::time::timeout(TIMEOUT, rx).await.ok()?.ok()?
}
