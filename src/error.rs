//! Error codes and their texts.
//!
//! Codes are stable integers shared with the C surface: the XTension/Xojo socket numbers where
//! one fits (102..=108), the platform `errno` for other system errors, and library codes from
//! 1000 up. A system errno that would collide with 100..=108 is mapped to the XTension meaning
//! so a plugin author never reads "name resolution error" for what was a reset.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::sync::OnceLock;

/// Success.
pub const OK: i32 = 0;
/// The connection ended, for any reason, either side.
pub const LOST_CONNECTION: i32 = 102;
/// A host name did not resolve.
pub const NAME_RESOLUTION: i32 = 103;
/// The port (and address) is already in use by another socket.
pub const ADDRESS_IN_USE: i32 = 105;
/// Unknown, stopped or closed id; or a call made in the wrong state.
pub const INVALID_STATE: i32 = 106;
/// Port 1..=1023 without permission, or a port that cannot be used.
pub const INVALID_PORT: i32 = 107;
/// A buffer limit was reached.
pub const OUT_OF_MEMORY: i32 = 108;
/// NULL where a value is needed, bad UTF-8, unparsable address, unknown option.
pub const INVALID_ARGUMENT: i32 = 1001;
/// A bug inside xtnet was caught at the C boundary.
pub const PANIC: i32 = 1002;
/// The TLS handshake failed (protocol, version, a peer that does not speak TLS).
pub const TLS_HANDSHAKE: i32 = 1010;
/// The peer's certificate is not trusted; the message carries its fingerprint.
pub const TLS_UNTRUSTED: i32 = 1011;
/// A library deadline passed.
pub const TIMEOUT: i32 = 1012;
/// The WebSocket peer broke RFC 6455, or the server refused the upgrade.
pub const WEBSOCKET: i32 = 1013;

/// An error with its stable code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

impl Error {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(INVALID_ARGUMENT, message)
    }

    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(INVALID_STATE, message)
    }

    /// An I/O error, with `context` (what was being done) in front of the system's text.
    pub fn io(context: &str, err: &io::Error) -> Self {
        let code = code_for_io(err);
        Error::new(code, format!("{context}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (error {})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

/// The code for a platform errno: unchanged unless it would collide with an XTension number.
pub fn code_for_errno(errno: i32) -> i32 {
    // "The connection ended" in every spelling the platforms use.
    if errno == libc::ECONNRESET
        || errno == libc::ECONNABORTED
        || errno == libc::EPIPE
        || errno == libc::ENETRESET
        || errno == libc::ESHUTDOWN
    {
        return LOST_CONNECTION;
    }
    if errno == libc::EADDRINUSE {
        return ADDRESS_IN_USE;
    }
    if !(100..=108).contains(&errno) {
        return errno;
    }
    // Remaining Linux errnos in 100..=108, mapped to the XT meaning closest to theirs.
    match errno {
        e if e == libc::ENOBUFS => OUT_OF_MEMORY,
        e if e == libc::EISCONN || e == libc::ENOTCONN => INVALID_STATE,
        // ENETDOWN / ENETUNREACH: "no route" is what they mean to a host; 100/101 mean nothing here.
        _ => libc::EHOSTUNREACH,
    }
}

/// The code for an I/O error (see [`code_for_errno`]); errors without errno map by kind.
pub fn code_for_io(err: &io::Error) -> i32 {
    if let Some(errno) = err.raw_os_error() {
        return code_for_errno(errno);
    }
    match err.kind() {
        io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        io::ErrorKind::AddrInUse => ADDRESS_IN_USE,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => LOST_CONNECTION,
        io::ErrorKind::OutOfMemory => OUT_OF_MEMORY,
        io::ErrorKind::InvalidInput => INVALID_ARGUMENT,
        io::ErrorKind::PermissionDenied => libc::EACCES,
        _ => libc::EIO,
    }
}

/// Static text for any code: the library's own codes, then the platform's text for errnos.
pub fn text(code: i32) -> &'static CStr {
    match code {
        OK => c"no error",
        100 => c"driver error",
        101 => c"unused error number",
        LOST_CONNECTION => c"the connection was closed or lost",
        NAME_RESOLUTION => c"the host name could not be resolved",
        104 => c"unused error number",
        ADDRESS_IN_USE => c"the address is already in use",
        INVALID_STATE => {
            c"invalid state: unknown, stopped or closed id, or wrong call for the state"
        }
        INVALID_PORT => c"invalid port: 1..1023 needs privileged ports allowed; 1..65535 otherwise",
        OUT_OF_MEMORY => c"a buffer limit was reached (message too long or write queue full)",
        INVALID_ARGUMENT => c"invalid argument: NULL, bad UTF-8, unparsable address or bad option",
        PANIC => c"internal error: a bug inside xtnet was caught at the boundary",
        TLS_HANDSHAKE => c"the TLS handshake failed",
        TLS_UNTRUSTED => c"the peer's TLS certificate is not trusted",
        TIMEOUT => c"a deadline passed",
        WEBSOCKET => c"WebSocket protocol error or upgrade refused",
        c if c > 0 && (c as usize) < ERRNO_TEXTS => errno_text(c),
        _ => c"unknown error code",
    }
}

const ERRNO_TEXTS: usize = 256;

/// Texts of the platform errnos, built once (strerror is not thread-safe for unknown codes).
fn errno_text(code: i32) -> &'static CStr {
    static TABLE: OnceLock<Vec<std::ffi::CString>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..ERRNO_TEXTS as i32)
            .map(|e| {
                let msg = io::Error::from_raw_os_error(e).to_string();
                let msg = msg.split(" (os error").next().unwrap_or("").to_owned();
                std::ffi::CString::new(msg).unwrap_or_default()
            })
            .collect()
    });
    &table[code as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_errnos_take_the_xt_meaning() {
        assert_eq!(code_for_errno(libc::ECONNRESET), LOST_CONNECTION);
        assert_eq!(code_for_errno(libc::EPIPE), LOST_CONNECTION);
        assert_eq!(code_for_errno(libc::EADDRINUSE), ADDRESS_IN_USE);
        assert_eq!(code_for_errno(libc::ECONNREFUSED), libc::ECONNREFUSED);
        assert_eq!(code_for_errno(libc::ETIMEDOUT), libc::ETIMEDOUT);
        for e in 100..=108 {
            let c = code_for_errno(e);
            assert!(
                [
                    LOST_CONNECTION,
                    ADDRESS_IN_USE,
                    INVALID_STATE,
                    OUT_OF_MEMORY,
                    libc::EHOSTUNREACH
                ]
                .contains(&c),
                "errno {e} -> {c}"
            );
        }
    }

    #[test]
    fn every_code_has_a_text() {
        for c in [
            0, 102, 103, 105, 106, 107, 108, 1001, 1002, 1010, 1011, 1012, 1013,
        ] {
            assert!(!text(c).to_bytes().is_empty());
        }
        assert_eq!(
            text(libc::ECONNREFUSED).to_str().unwrap(),
            "Connection refused"
        );
        assert_eq!(text(-5).to_str().unwrap(), "unknown error code");
        assert_eq!(text(99_999).to_str().unwrap(), "unknown error code");
    }
}
