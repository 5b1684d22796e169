//! Per-context options.

use super::context::{context, XtContext};
use super::{code_of, ffi_body, str_arg};
use crate::error;
use std::ffi::c_char;

/// Bytes of one framed message; default 1 MiB. Longer ends the connection with 108.
pub const XT_OPT_MAX_MESSAGE_LEN: u32 = 1;
/// Bytes queued for writing per connection; default 8 MiB. Past it `xt_send_data` gives 108.
pub const XT_OPT_WRITE_QUEUE_LIMIT: u32 = 2;
/// 0/1; default 0 (ports 1..1023 give 107).
pub const XT_OPT_ALLOW_PRIVILEGED_PORTS: u32 = 3;
/// Listen backlog; default 1024 (the system may cap it).
pub const XT_OPT_LISTEN_BACKLOG: u32 = 4;
/// Close TCP connections with no traffic for this long (ETIMEDOUT); 0 = never (default).
pub const XT_OPT_IDLE_TIMEOUT_MS: u32 = 5;
/// Outgoing connects give up after this long (ETIMEDOUT); default 10000; 0 = system limit.
pub const XT_OPT_CONNECT_TIMEOUT_MS: u32 = 6;
/// HTTP request headers larger than this get 431; default 16 KiB.
pub const XT_OPT_HTTP_MAX_HEADER_BYTES: u32 = 7;
/// HTTP request bodies larger than this get 413; default 8 MiB.
pub const XT_OPT_HTTP_MAX_BODY_BYTES: u32 = 8;
/// HTTP request headers must arrive within this (default 10000 ms); a body must then begin
/// within it too and keep at least 1 KiB/s on average afterwards (an 8 MiB upload may take
/// over two hours); otherwise 408 and the connection is closed.
pub const XT_OPT_HTTP_REQUEST_TIMEOUT_MS: u32 = 9;
/// Longest wait for a peer's name/MAC before `new_connection` (or `connected`) of a peer not yet
/// in the cache; 0 = cache only (a lookup still starts, for the next connection); default 250,
/// at most 60000. Other connections and events never wait for it.
pub const XT_OPT_PEER_LOOKUP_MS: u32 = 10;
/// A deferred HTTP request (`xt_http_response_defer`) not answered by `xt_http_reply` within
/// this gets 504; default 30000.
pub const XT_OPT_HTTP_DEFER_TIMEOUT_MS: u32 = 11;
/// Largest WebSocket message accepted, fragments joined (1 to 2^30); a larger one closes the
/// connection with close code 1009 and `socket_error` 108. Default 16 MiB.
pub const XT_OPT_WS_MAX_MESSAGE_BYTES: u32 = 14;
/// Re-send every multicast join this often (a leave and a join: a fresh IGMP/MLD report), for
/// snooping switches with no querier that forget groups nobody re-reported; 0 = off (default).
pub const XT_OPT_MULTICAST_REFRESH_MS: u32 = 12;
/// Threads doing I/O (1 to 256); default: the number of cores minus one, at least 1. Set it
/// before the first listener or connection starts the network (later: 106). Thread dispatch
/// adds its dispatch thread to these and every callback runs there; with inline dispatch
/// these threads run the callbacks too, so they are also how many callbacks may run at once
/// (and a callback that blocks holds one of them); poll dispatch runs callbacks on the host's
/// thread. Reading it tells the count in use (or that will be used).
pub const XT_OPT_NETWORK_THREADS: u32 = 13;

/// Sets an option (`XT_OPT_*`). Applies to listeners and connections started after the call.
///
/// Returns `XT_OK`, or 1001 for NULL ctx, an unknown option or a value out of range (nothing
/// changes then), 106 for `XT_OPT_NETWORK_THREADS` once the network runs. Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_set_option(ctx: *mut XtContext, option: u32, value: i64) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| c.set_option(option, value)))
    })
}

/// The value of an option, or -1 for an unknown option or a NULL ctx. Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_get_option(ctx: *const XtContext, option: u32) -> i64 {
    ffi_body!(-1, {
        // SAFETY: per this function's contract.
        match unsafe { context(ctx) } {
            Ok(c) => c.get_option(option).unwrap_or_else(|| {
                super::record(&crate::Error::invalid_argument(format!(
                    "unknown option {option}"
                )));
                -1
            }),
            Err(e) => {
                super::record(&e);
                -1
            }
        }
    })
}

/// The address listeners bind: an IPv4 or IPv6 address ("127.0.0.1", "::1", "[::1]");
/// NULL or "" for every interface, IPv6 and IPv4 (the default). Copied. Applies to listeners
/// started after the call.
///
/// Returns `XT_OK`, or 1001 for NULL ctx, bad UTF-8 or text that is not an IP address.
///
/// # Safety
/// `ctx` is NULL or a live context; `address` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn xt_set_bind_address(ctx: *mut XtContext, address: *const c_char) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| {
            let text = if address.is_null() {
                ""
            } else {
                // SAFETY: non-NULL, NUL-terminated per the contract.
                unsafe { str_arg(address, "address") }?
            };
            c.set_bind_address(text)
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::id;

    #[test]
    fn c_option_numbers_are_the_core_numbers() {
        let pairs = [
            (XT_OPT_MAX_MESSAGE_LEN, id::MAX_MESSAGE_LEN),
            (XT_OPT_WRITE_QUEUE_LIMIT, id::WRITE_QUEUE_LIMIT),
            (XT_OPT_ALLOW_PRIVILEGED_PORTS, id::ALLOW_PRIVILEGED_PORTS),
            (XT_OPT_LISTEN_BACKLOG, id::LISTEN_BACKLOG),
            (XT_OPT_IDLE_TIMEOUT_MS, id::IDLE_TIMEOUT_MS),
            (XT_OPT_CONNECT_TIMEOUT_MS, id::CONNECT_TIMEOUT_MS),
            (XT_OPT_HTTP_MAX_HEADER_BYTES, id::HTTP_MAX_HEADER_BYTES),
            (XT_OPT_HTTP_MAX_BODY_BYTES, id::HTTP_MAX_BODY_BYTES),
            (XT_OPT_HTTP_REQUEST_TIMEOUT_MS, id::HTTP_REQUEST_TIMEOUT_MS),
            (XT_OPT_PEER_LOOKUP_MS, id::PEER_LOOKUP_MS),
            (XT_OPT_HTTP_DEFER_TIMEOUT_MS, id::HTTP_DEFER_TIMEOUT_MS),
            (XT_OPT_WS_MAX_MESSAGE_BYTES, id::WS_MAX_MESSAGE_BYTES),
            (XT_OPT_MULTICAST_REFRESH_MS, id::MULTICAST_REFRESH_MS),
            (XT_OPT_NETWORK_THREADS, id::NETWORK_THREADS),
        ];
        for (c, core) in pairs {
            assert_eq!(c, core);
        }
    }
}
