//! Every system-call wrapper that needs `unsafe` outside the C surface, each block with its
//! SAFETY comment. The rest of the crate is safe Rust: `lib.rs` denies `unsafe_code` and
//! allows it only here and in `ffi`.

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
