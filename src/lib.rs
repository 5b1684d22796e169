//! xtnet: the networking core of the XTension plugin API v2 sockets, behind a C ABI.
//!
//! The C surface lives in [`ffi`]; everything else is safe Rust and usable directly:
//! a [`Context`] owns a runtime, listeners and connections, and delivers events to a [`Host`].
//! See `DESIGN.md` beside the repository (`../shared/DESIGN.md`) for the layers and the contract.

// The core modules are not part of the C header: only `ffi` is.
/// cbindgen:ignore
pub mod context;
/// cbindgen:ignore
pub mod error;
/// cbindgen:ignore
pub mod events;
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
pub mod options;
/// cbindgen:ignore
mod peer;
/// cbindgen:ignore
mod ports;
/// cbindgen:ignore
mod registry;
/// cbindgen:ignore
mod tcp;
/// cbindgen:ignore
pub mod udp;

pub use context::{Context, Dispatch};
pub use error::Error;
pub use events::{Host, LogLevel};
pub use info::ConnectionInfo;
/// cbindgen:ignore
pub use tcp::MAX_BOUNDARY_LEN;

/// The library version, "MAJOR.MINOR.PATCH".
/// cbindgen:ignore
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
