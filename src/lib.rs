//! xtnet: the networking core of the XTension plugin API v2 sockets, behind a C ABI.
//!
//! The C surface lives in [`ffi`]; everything else is safe Rust and usable directly:
//! a [`Context`] owns a runtime, listeners and connections, and delivers events to a [`Host`].
//! `ARCHITECTURE.md` at the repository's root shows the layers, the data walks, the locks and
//! the events.
//!
//! `unsafe` is denied everywhere but in `ffi` (the C surface) and `sys` (system calls).
#![deny(unsafe_code)]

// The core modules are not part of the C header: only `ffi` is.
/// cbindgen:ignore
pub mod context;
/// cbindgen:ignore
mod dispatch;
/// cbindgen:ignore
pub mod error;
/// cbindgen:ignore
pub mod events;
#[allow(unsafe_code)]
pub mod ffi;
/// cbindgen:ignore
pub mod framing;
/// cbindgen:ignore
mod gate;
/// cbindgen:ignore
pub mod http;
/// cbindgen:ignore
pub mod info;
/// cbindgen:ignore
mod inline;
/// cbindgen:ignore
mod lifecycle;
/// cbindgen:ignore
pub mod options;
/// cbindgen:ignore
mod panics;
/// cbindgen:ignore
mod peer;
/// cbindgen:ignore
mod ports;
/// cbindgen:ignore
mod queue;
/// cbindgen:ignore
mod registry;
/// cbindgen:ignore
mod shared;
/// cbindgen:ignore
#[allow(unsafe_code)]
mod sys;
/// cbindgen:ignore
mod tcp;
/// cbindgen:ignore
pub mod tls;
/// cbindgen:ignore
pub mod udp;

pub use context::{Context, Dispatch};
pub use error::Error;
pub use events::{Callback, Host, LogLevel};
pub use info::ConnectionInfo;
/// cbindgen:ignore
pub use tcp::MAX_BOUNDARY_LEN;

/// The library version, "MAJOR.MINOR.PATCH".
/// cbindgen:ignore
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
