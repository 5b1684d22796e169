//! Version and error reporting.

use super::ffi_body;
use crate::error;
use std::ffi::c_char;

/// Success.
pub const XT_OK: i32 = 0;
/// The connection ended, for any reason, either side.
pub const XT_ERR_LOST_CONNECTION: i32 = 102;
/// A host name could not be resolved.
pub const XT_ERR_NAME_RESOLUTION: i32 = 103;
/// The port (and address) is already in use.
pub const XT_ERR_ADDRESS_IN_USE: i32 = 105;
/// Unknown, stopped or closed id; or a call made in the wrong state.
pub const XT_ERR_INVALID_STATE: i32 = 106;
/// Port 1..1023 (unless privileged ports are allowed) or a port that cannot be used.
pub const XT_ERR_INVALID_PORT: i32 = 107;
/// A buffer limit was reached (e.g. no boundary within the maximum message length).
pub const XT_ERR_OUT_OF_MEMORY: i32 = 108;
/// NULL where a value is needed, bad UTF-8, unparsable address, unknown option or bad value.
pub const XT_ERR_INVALID_ARGUMENT: i32 = 1001;
/// A bug inside xtnet was caught at the boundary.
pub const XT_ERR_PANIC: i32 = 1002;
/// The TLS handshake failed (protocol, version, a peer that does not speak TLS).
pub const XT_ERR_TLS_HANDSHAKE: i32 = 1010;
/// The peer's certificate is not trusted; `error_message` carries its fingerprint.
pub const XT_ERR_TLS_UNTRUSTED: i32 = 1011;
/// A library deadline passed (a deferred HTTP reply, a WebSocket close the peer did not answer).
pub const XT_ERR_TIMEOUT: i32 = 1012;
/// A WebSocket peer broke RFC 6455 (unmasked or malformed frames, text that is not UTF-8; the
/// connection was closed with 1002 or 1007), or a server refused the upgrade (its HTTP status
/// is in the message).
pub const XT_ERR_WEBSOCKET: i32 = 1013;

static VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version, "MAJOR.MINOR.PATCH".
///
/// Static storage: never free it. Any thread.
#[no_mangle]
pub extern "C" fn xt_version() -> *const c_char {
    VERSION_C.as_ptr().cast()
}

/// The code of the last failed `xt_` call on this thread (`XT_OK` if none failed yet).
///
/// Successful calls do not reset it. Any thread; each thread has its own.
#[no_mangle]
pub extern "C" fn xt_last_error() -> i32 {
    ffi_body!(error::PANIC, { super::last_error() })
}

/// The text of the last failed `xt_` call on this thread ("" if none failed yet).
///
/// Owned by xtnet, in this thread's storage: valid until the next `xt_` call on this thread.
/// Copy it to keep it. Never NULL.
#[no_mangle]
pub extern "C" fn xt_last_error_message() -> *const c_char {
    ffi_body!(c"".as_ptr(), { super::last_error_message() })
}

/// A static description of any code: `XT_*` codes, platform errno values, anything else
/// ("unknown error code").
///
/// Static storage: never free it, valid forever. Any thread. Never NULL.
#[no_mangle]
pub extern "C" fn xt_error_text(code: i32) -> *const c_char {
    ffi_body!(c"unknown error code".as_ptr(), {
        error::text(code).as_ptr()
    })
}

/// Proves the panic boundary: panics inside xtnet, which the boundary turns into
/// `XT_ERR_PANIC` (returned, and recorded for `xt_last_error`). Never crashes the host.
///
/// For hosts' and xtnet's own tests; has no other effect. Any thread.
#[no_mangle]
pub extern "C" fn xt_debug_trigger_panic() -> i32 {
    ffi_body!(error::PANIC, {
        let trigger: Option<i32> = std::hint::black_box(None);
        trigger.expect("xt_debug_trigger_panic: deliberate panic to test the C boundary")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_codes_are_the_core_codes() {
        assert_eq!(
            [
                XT_OK,
                XT_ERR_LOST_CONNECTION,
                XT_ERR_NAME_RESOLUTION,
                XT_ERR_ADDRESS_IN_USE
            ],
            [
                error::OK,
                error::LOST_CONNECTION,
                error::NAME_RESOLUTION,
                error::ADDRESS_IN_USE
            ]
        );
        assert_eq!(
            [
                XT_ERR_INVALID_STATE,
                XT_ERR_INVALID_PORT,
                XT_ERR_OUT_OF_MEMORY
            ],
            [
                error::INVALID_STATE,
                error::INVALID_PORT,
                error::OUT_OF_MEMORY
            ]
        );
        assert_eq!(
            [XT_ERR_INVALID_ARGUMENT, XT_ERR_PANIC],
            [error::INVALID_ARGUMENT, error::PANIC]
        );
        assert_eq!(
            [
                XT_ERR_TLS_HANDSHAKE,
                XT_ERR_TLS_UNTRUSTED,
                XT_ERR_TIMEOUT,
                XT_ERR_WEBSOCKET
            ],
            [
                error::TLS_HANDSHAKE,
                error::TLS_UNTRUSTED,
                error::TIMEOUT,
                error::WEBSOCKET
            ]
        );
    }
}
