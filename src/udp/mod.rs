//! UDP listeners: datagrams in (batched, whole, with the sender), datagrams out (unicast,
//! broadcast, multicast), group membership, and no silent loss.
//!
//! | file            | what                                                          |
//! |-----------------|---------------------------------------------------------------|
//! | `listener.rs`   | the listener: sockets, counters, callbacks' outbox             |
//! | `receive.rs`    | the read task: batches in, drops counted and logged            |
//! | `send.rs`       | unicast, broadcast and multicast out; the after-batch flush    |
//! | `membership.rs` | joining and leaving groups; multicast interface, TTL, loop     |
//! | `start.rs`      | starting and stopping a listener                               |
//! | `address.rs`    | destinations and groups parsed from the host's text            |
//! | `socket.rs`     | binding for shared discovery ports                              |
//! | `interfaces.rs` | the machine's interfaces                                       |
//! | `arrival.rs`    | where a datagram arrived: destination, interface, kind         |
//! | `lan.rs`        | our address toward a peer (routing table), Wake-on-LAN          |
//! | `watch.rs`      | interfaces that change: told, memberships follow, refresh       |

mod address;
mod arrival;
pub mod interfaces;
mod lan;
mod listener;
mod membership;
mod receive;
mod send;
mod socket;
mod start;
mod watch;

pub(crate) use address::{parse_group, Destination};
pub use arrival::DatagramKind;
pub(crate) use arrival::{describe, InterfaceNames};
pub(crate) use lan::{local_address_for, send_wake_on_lan};
pub use listener::DatagramInfo;
pub(crate) use listener::UdpListener;
pub(crate) use socket::Datagram;
pub(crate) use socket::{MAX_DATAGRAM_V4, MAX_DATAGRAM_V6};
pub(crate) use start::{start_listener, stop_listener};
pub(crate) use watch::watch;
