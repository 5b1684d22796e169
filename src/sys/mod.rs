//! The platform layer: one module per concern (wake fd, interface list and its changes, route,
//! neighbour table, socket options, datagram I/O), each with its Linux and macOS/BSD bodies side
//! by side, and every system-call wrapper that needs `unsafe` outside the C surface, each block
//! with its SAFETY comment. The rest of the crate is safe Rust: `lib.rs` denies `unsafe_code`
//! and allows it only here and in `ffi`.

pub(crate) mod ifaddrs;
pub(crate) mod nameinfo;
pub(crate) mod neighbour;
#[cfg(target_os = "linux")]
mod netlink;
pub(crate) mod read_buf;
pub(crate) mod route;
pub(crate) mod route_watch;
pub(crate) mod signals;
pub(crate) mod socket_options;
pub(crate) mod udp;
pub(crate) mod wake_fd;
