//! TCP: listeners, outgoing connections, writing and closing by id.

use super::context::{context, XtContext};
use super::{bytes_arg, code_of, ffi_body, str_arg, value_or};
use crate::context::Framing;
use crate::error::{self, Error};
use std::ffi::c_char;
use std::time::Duration;

/// Starts a TCP listener on `port` (0: any free port; see `xt_listener_port`) that splits each
/// connection's stream into messages on `boundary` (`boundary_len` bytes, any bytes, up to
/// 4096; 0 = no framing, raw chunks). The boundary is copied.
///
/// Binds every interface, IPv6 and IPv4, unless `xt_set_bind_address` says otherwise.
/// Returns the listener id, or 0 with `xt_last_error` set: 107 for ports 1..1023 (unless
/// allowed), 105 for a port in use, 1001 for NULL ctx or a NULL boundary with a length,
/// 106 while the context is being freed. Any thread, including from a callback.
///
/// # Safety
/// `ctx` is NULL or a live context; `boundary` is NULL or points to `boundary_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn xt_start_tcp_listener(
    ctx: *mut XtContext,
    port: u16,
    boundary: *const u8,
    boundary_len: usize,
) -> u32 {
    ffi_body!(0, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let boundary = unsafe { bytes_arg(boundary, boundary_len, "boundary") }?;
            c.start_tcp_listener(port, boundary)
        });
        value_or(result, 0)
    })
}

/// Stops a TCP listener. When it returns the port is closed; each of the listener's live
/// connections then gets its final `socket_error` (102). Connections not yet accepted by
/// `new_connection` are dropped without events.
///
/// Returns false with `xt_last_error` set: 106 for an unknown, stopped or non-TCP id, 1001 for
/// NULL ctx. Any thread, including from a callback of this listener.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_stop_tcp_listener(ctx: *mut XtContext, server_id: u32) -> bool {
    ffi_body!(false, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| c.stop_tcp_listener(server_id));
        value_or(result.map(|()| true), false)
    })
}

/// The bound port of a listener of any kind (useful after starting on port 0).
///
/// Returns 0 with `xt_last_error` set: 106 for an unknown or stopped id, 1001 for NULL ctx.
/// Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_listener_port(ctx: *mut XtContext, server_id: u32) -> u16 {
    ffi_body!(0, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| c.listener_port(server_id));
        value_or(result, 0)
    })
}

/// Opens an outgoing TCP connection to `host` (a name, an IPv4 or IPv6 address; copied) and
/// `port`, framed on `boundary` as for listeners. Returns the connection id at once; then
/// either `connected` or one final `socket_error` (103: the name does not resolve; the system
/// code for refused/unreachable; ETIMEDOUT after `XT_OPT_CONNECT_TIMEOUT_MS`).
///
/// Returns 0 with `xt_last_error` set: 1001 for NULL ctx, NULL/empty/non-UTF-8 host or a
/// NULL boundary with a length, 107 for port 0. Any thread, including from a callback.
///
/// # Safety
/// `ctx` is NULL or a live context; `host` is NULL or NUL-terminated; `boundary` is NULL or
/// points to `boundary_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn xt_open_tcp_connection(
    ctx: *mut XtContext,
    host: *const c_char,
    port: u16,
    boundary: *const u8,
    boundary_len: usize,
) -> u64 {
    ffi_body!(0, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let host = unsafe { str_arg(host, "host") }?;
            // SAFETY: per this function's contract.
            let boundary = unsafe { bytes_arg(boundary, boundary_len, "boundary") }?;
            c.open_tcp_connection(host, port, boundary)
        });
        value_or(result, 0)
    })
}

/// Queues `len` bytes for a connection: copied, written in call order, never blocks. The
/// boundary is not added (send it yourself when the peer expects one).
///
/// Returns `XT_OK` or a code: 106 for an unknown, closed or closing id or an outgoing connection
/// not connected yet; 108 when the connection's write queue would pass
/// `XT_OPT_WRITE_QUEUE_LIMIT` (nothing is queued then); 102 when the connection has just been
/// lost; 1001 for NULL ctx or NULL data with a length. Any thread, including from any callback.
///
/// # Safety
/// `ctx` is NULL or a live context; `data` is NULL or points to `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn xt_send_data(
    ctx: *mut XtContext,
    connection_id: u64,
    data: *const u8,
    len: usize,
) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let data = unsafe { bytes_arg(data, len, "data") }?;
            c.send_data(connection_id, data)
        }))
    })
}

/// `xt_set_framing`'s modes (XTension's parsing modes): whatever arrived, as it arrived.
pub const XT_FRAME_RAW: u32 = 0;
/// Split on `boundary` (the listener's default when it has one).
pub const XT_FRAME_BOUNDARY: u32 = 1;
/// Messages of exactly `length` bytes.
pub const XT_FRAME_LENGTH: u32 = 2;

/// Changes how connection `connection_id` (accepted, outgoing or TLS; not a WebSocket) splits
/// its stream into messages: `XT_FRAME_BOUNDARY` on `boundary` (`boundary_len` bytes, copied),
/// `XT_FRAME_LENGTH` into messages of exactly `length` bytes, or `XT_FRAME_RAW` (chunks as they
/// arrive). With `timeout_ms` > 0, bytes that wait that long without completing a message are
/// delivered as one (a device that answers without a terminator); 0: they wait.
///
/// The change applies from the next byte not yet delivered: called inside `data_available`
/// of this connection, the very byte after that message (a header line, then a binary block
/// of known length); from elsewhere, from some byte not yet delivered. What was read ahead is
/// framed again, nothing is lost or duplicated.
///
/// Returns `XT_OK`, or: 106 for an unknown or closed id; 1001 for NULL ctx, an unknown mode, an
/// empty or too long boundary (`XT_FRAME_BOUNDARY`), a length of 0 or past
/// `XT_OPT_MAX_MESSAGE_LEN`, or a WebSocket. Any thread, including from a callback.
///
/// # Safety
/// `ctx` is NULL or a live context; `boundary` is NULL or points to `boundary_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn xt_set_framing(
    ctx: *mut XtContext,
    connection_id: u64,
    mode: u32,
    boundary: *const u8,
    boundary_len: usize,
    length: u32,
    timeout_ms: u32,
) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let boundary = unsafe { bytes_arg(boundary, boundary_len, "boundary") }?;
            let framing = match mode {
                XT_FRAME_RAW => Framing::Raw,
                XT_FRAME_BOUNDARY => Framing::Boundary(boundary),
                XT_FRAME_LENGTH => Framing::Length(length as usize),
                other => {
                    return Err(Error::invalid_argument(format!(
                        "unknown framing mode {other} (XT_FRAME_RAW, _BOUNDARY or _LENGTH)"
                    )))
                }
            };
            let timeout = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
            c.set_framing(connection_id, framing, timeout)
        }))
    })
}

/// Closes a connection after writing out what was queued (for at most 30 s if the peer does
/// not read). Its final `socket_error` (102) follows; further sends give 106.
///
/// Returns `XT_OK`, 106 for an unknown, closed or already closing id, 1001 for NULL ctx.
/// Any thread, including from a callback about this connection.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_disconnect(ctx: *mut XtContext, connection_id: u64) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| c.disconnect(connection_id)))
    })
}

/// For tests of xtnet and of hosts: the network task of `connection_id` panics at its next
/// step, as a bug inside xtnet would. That connection alone ends, with a final `socket_error`
/// whose `error_number` is `XT_ERR_PANIC` (1002); the panic's message goes to the `log`
/// callback; every other connection and listener goes on, and nothing is printed to stderr.
///
/// Returns `XT_OK`, 106 for an unknown or closed id, 1001 for NULL ctx. Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_debug_panic_connection(ctx: *mut XtContext, connection_id: u64) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| c.debug_panic_connection(connection_id)))
    })
}
