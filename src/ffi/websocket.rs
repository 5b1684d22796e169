//! WebSocket (RFC 6455): accepting an upgrade in `page_request`, opening one to a URL, and
//! sending text or binary messages. Afterwards a WebSocket's id behaves like a TCP
//! connection's: `data_available` once per whole message (`info->message_kind` says text or
//! binary), `xt_send_data` sends a text message, `xt_disconnect` sends a close frame and waits
//! briefly for the peer's, and exactly one final `socket_error`:
//!
//! | code | when |
//! |------|------|
//! | 102  | an orderly close; the message has the close code and reason ("closed by the peer (1000): bye") |
//! | 108  | a message past `XT_OPT_WS_MAX_MESSAGE_BYTES` (the peer got close 1009) |
//! | 1013 | the peer broke the protocol (it got close 1002, or 1007 for text that is not UTF-8), or refused the upgrade |
//! | 1012 | `xt_disconnect`'s close frame was not answered within 2 s |
//! | ETIMEDOUT | with `XT_OPT_IDLE_TIMEOUT_MS`: a quiet peer was pinged and did not answer within another timeout |
//!
//! Pings are answered by the library.

use super::callbacks::{with_response, XtHttpResponse};
use super::context::{context, XtContext};
use super::tls::{client_options, XtTlsOptions};
use super::{bytes_arg, code_of, ffi_body, str_arg, value_or};
use crate::error::Error;
use crate::info::MessageKind;
use std::ffi::c_char;

/// `xt_send_websocket`'s kind, and `info->message_kind` in `data_available`: a text message
/// (UTF-8).
pub const XT_WS_TEXT: u32 = 1;
/// A binary message.
pub const XT_WS_BINARY: u32 = 2;

/// In `page_request`, on a WebSocket upgrade request (GET with `Upgrade: websocket`,
/// `Connection: Upgrade`, a `Sec-WebSocket-Key` and version 13): the request's connection
/// becomes a WebSocket connection with its own id, returned now and live at once (messages
/// sent before the 101 is out are queued). The 101 goes out when `page_request` returns; the
/// response's status, headers and body are not used. `subprotocol` (NULL: none) must be one the
/// client offered in `Sec-WebSocket-Protocol`. Works on HTML and HTTPS listeners (`ws://`,
/// `wss://`); the connection's info is the request's (`server_id` is the HTML listener's), and
/// stopping the listener closes it (close code 1001).
///
/// Returns 0 with `xt_last_error` set: 106 when the request is no valid upgrade (it then gets
/// 400), outside `page_request`, or after `xt_http_response_defer`; 1001 for NULL `resp`, bad
/// UTF-8 or a subprotocol the client did not offer.
///
/// # Safety
/// `resp` is NULL or the response of a `page_request` callback; `subprotocol` is NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn xt_http_response_accept_websocket(
    resp: *mut XtHttpResponse,
    subprotocol: *const c_char,
) -> u64 {
    ffi_body!(0, {
        let protocol = if subprotocol.is_null() {
            Ok(None)
        } else {
            // SAFETY: per this function's contract.
            unsafe { str_arg(subprotocol, "subprotocol") }.map(Some)
        };
        let mut id = 0;
        let result = protocol.and_then(|protocol| {
            // SAFETY: per this function's contract.
            unsafe {
                with_response(resp, |w| {
                    id = w.accept_websocket(protocol)?;
                    Ok(())
                })
            }
        });
        value_or(result.map(|()| id), 0)
    })
}

/// Opens a WebSocket to `url` (`ws://host[:port]/path` or `wss://…`; ports 80 and 443 by
/// default). For `wss://`, the server is trusted as `tls` says (NULL: `XT_TRUST_SYSTEM`; the
/// trust modes, pins and client certificates of `xt_open_tls_connection`); `tls` is not used
/// for `ws://`. Returns the connection id at once; `connected` follows once TCP, TLS and the
/// upgrade are done (all within `XT_OPT_CONNECT_TIMEOUT_MS`), or one final `socket_error`:
/// 1013 when the server answers the upgrade with another status (in the message), and the
/// codes of `xt_open_tls_connection`. Then the WebSocket events above.
///
/// Returns 0 with `xt_last_error` set: 1001 for NULL ctx or url, a URL that is not ws/wss or
/// has no host, or bad TLS options. Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context; `url` is NULL or NUL-terminated; `tls` is NULL or a valid
/// `XtTlsOptions`.
#[no_mangle]
pub unsafe extern "C" fn xt_open_websocket(
    ctx: *mut XtContext,
    url: *const c_char,
    tls: *const XtTlsOptions,
) -> u64 {
    ffi_body!(0, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let url = unsafe { str_arg(url, "url") }?;
            let options = if tls.is_null() {
                None
            } else {
                // SAFETY: per this function's contract.
                Some(unsafe { client_options(tls) }?)
            };
            c.open_websocket(url, options.as_ref())
        });
        value_or(result, 0)
    })
}

/// Sends one WebSocket message of `kind` (`XT_WS_TEXT`, which must be UTF-8, or
/// `XT_WS_BINARY`): `len` bytes, copied; never blocks. As `xt_send_data` otherwise (queued in
/// call order, written from the connection's task, the same write-queue limit).
///
/// Returns `XT_OK`, or: 106 for an unknown, closed or closing id; 108 when the write queue is
/// full; 1001 for NULL ctx, NULL data with a length, a connection that is no WebSocket, an
/// unknown kind, or text that is not UTF-8. Any thread, including from a callback.
///
/// # Safety
/// `ctx` is NULL or a live context; `data` is NULL or points to `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn xt_send_websocket(
    ctx: *mut XtContext,
    connection_id: u64,
    data: *const u8,
    len: usize,
    kind: u32,
) -> i32 {
    ffi_body!(crate::error::PANIC, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let data = unsafe { bytes_arg(data, len, "data") }?;
            let kind = match kind {
                XT_WS_TEXT => MessageKind::Text,
                XT_WS_BINARY => MessageKind::Binary,
                other => {
                    return Err(Error::invalid_argument(format!(
                        "unknown WebSocket message kind {other} (XT_WS_TEXT or XT_WS_BINARY)"
                    )))
                }
            };
            c.send_websocket(connection_id, data, kind)
        });
        code_of(result)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_core() {
        assert_eq!(XT_WS_TEXT, MessageKind::Text as u32);
        assert_eq!(XT_WS_BINARY, MessageKind::Binary as u32);
    }
}
