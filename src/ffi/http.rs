//! HTTP ("HTML listener"): starting and stopping, and the request and response objects a
//! `page_request` callback gets.
//!
//! The request and response are valid during that callback only. Both pointers name a slot of
//! the context that lives as long as it: outside the callback every accessor and setter finds
//! the slot empty and fails with `XT_ERR_INVALID_STATE` (NULL / false / 106) instead of
//! touching freed memory. Strings and bytes an accessor returns are borrowed from the request:
//! copy them to keep them past the callback.

use super::callbacks::{
    with_request, with_response, XtConnectionInfo, XtHttpRequest, XtHttpResponse,
};
use super::context::{context, XtContext};
use super::{bytes_arg, code_of, ffi_body, record, str_arg, value_or};
use crate::error::{self, Error};
use crate::http::HttpRequest;
use std::ffi::{c_char, CString};
use std::ptr::null;

/// Starts an HTTP/1.1 server (XTension's "HTML listener") on `port` (0: any free port). Each
/// request, read whole, goes to the `page_request` callback, which answers inline; without
/// that callback every request gets 404. Limits come from the `XT_OPT_HTTP_*` options.
///
/// Returns the listener id, or 0 with `xt_last_error` set: 107 for ports 1..1023 (unless
/// allowed), 105 for a busy port, 1001 for NULL ctx, 106 while the context is being freed.
/// Any thread, including from a callback.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_start_html_listener(ctx: *mut XtContext, port: u16) -> u32 {
    ffi_body!(0, {
        // SAFETY: per this function's contract.
        value_or(
            unsafe { context(ctx) }.and_then(|c| c.start_html_listener(port)),
            0,
        )
    })
}

/// Stops an HTTP listener: when it returns its port and connections are closed and none of
/// its `page_request` callbacks runs or will run (requests not yet answered get 503; called
/// from its own callback, that callback finishes first).
///
/// Returns false with `xt_last_error` set: 106 for an unknown, stopped or non-HTTP id, 1001
/// for NULL ctx. Any thread, including from a callback.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_stop_html_listener(ctx: *mut XtContext, server_id: u32) -> bool {
    ffi_body!(false, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| c.stop_html_listener(server_id));
        value_or(result.map(|()| true), false)
    })
}

/// Records an error and gives NULL (for accessors returning pointers).
fn or_null<T>(result: Result<*const T, Error>) -> *const T {
    value_or(result, null())
}

/// The request method ("GET", "POST", ...). Borrowed; valid during the callback.
/// NULL with `xt_last_error` 106 outside `page_request`, 1001 for NULL.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_method(r: *const XtHttpRequest) -> *const c_char {
    // SAFETY: per this function's contract.
    ffi_body!(null(), {
        or_null(unsafe { with_request(r, |q, _| q.method().as_ptr()) })
    })
}

/// The path, percent-decoded, without the query ("/a b" for "/a%20b?x=1"). Borrowed.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_path(r: *const XtHttpRequest) -> *const c_char {
    // SAFETY: per this function's contract.
    ffi_body!(null(), {
        or_null(unsafe { with_request(r, |q, _| q.path().as_ptr()) })
    })
}

/// The raw query, without '?' ("x=1&y=a%20b"); "" if none. Borrowed.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_query(r: *const XtHttpRequest) -> *const c_char {
    // SAFETY: per this function's contract.
    ffi_body!(null(), {
        or_null(unsafe { with_request(r, |q, _| q.query().as_ptr()) })
    })
}

/// The value of the first header called `name` (any case); NULL if there is none (then
/// `xt_last_error` is not changed) or on error (NULL arguments: 1001; outside the callback:
/// 106). Borrowed.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback; `name` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_header(
    r: *const XtHttpRequest,
    name: *const c_char,
) -> *const c_char {
    ffi_body!(null(), {
        // SAFETY: per this function's contract.
        let result = unsafe { str_arg(name, "header name") }.and_then(|name| {
            // SAFETY: per this function's contract.
            unsafe { with_request(r, |q, _| q.header(name).map_or(null(), |v| v.as_ptr())) }
        });
        or_null(result)
    })
}

/// Entry `i` of a name/value list of the request (headers or form fields) into `*name` and
/// `*value`; the body of `xt_http_request_header_at` and `xt_http_request_form_at`.
///
/// # Safety
/// As `xt_http_request_header_at`.
unsafe fn pair_at(
    r: *const XtHttpRequest,
    i: usize,
    name: *mut *const c_char,
    value: *mut *const c_char,
    list: impl FnOnce(&HttpRequest) -> &[(CString, CString)],
    what: &str,
) -> bool {
    if name.is_null() || value.is_null() {
        record(&Error::invalid_argument("name and value must not be NULL"));
        return false;
    }
    // SAFETY: per this function's contract.
    let entry = unsafe {
        with_request(r, |q, _| {
            list(q).get(i).map(|(k, v)| (k.as_ptr(), v.as_ptr()))
        })
    }
    .and_then(|e| e.ok_or_else(|| Error::invalid_argument(format!("no {what} {i}"))));
    match entry {
        Ok((k, v)) => {
            // SAFETY: checked non-NULL above; writable per the contract.
            unsafe {
                *name = k;
                *value = v;
            }
            true
        }
        Err(e) => {
            record(&e);
            false
        }
    }
}

/// How many headers the request has (0 with `xt_last_error` set on error).
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_header_count(r: *const XtHttpRequest) -> usize {
    // SAFETY: per this function's contract.
    ffi_body!(0, {
        value_or(unsafe { with_request(r, |q, _| q.headers().len()) }, 0)
    })
}

/// Header `i` (0-based, in the order received; names in lower case) into `*name` and `*value`.
/// Borrowed. False with `xt_last_error` set for an index past the end (1001) or other errors.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback; `name` and `value` are NULL or
/// point to writable pointers.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_header_at(
    r: *const XtHttpRequest,
    i: usize,
    name: *mut *const c_char,
    value: *mut *const c_char,
) -> bool {
    // SAFETY: per this function's contract.
    ffi_body!(false, {
        unsafe { pair_at(r, i, name, value, |q| q.headers(), "header") }
    })
}

/// The body, as received (after de-chunking), and its length in `*len`. Borrowed. Never NULL
/// for a valid request (an empty body has length 0); NULL with `xt_last_error` set on error
/// (1001 when `len` is NULL).
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_body(
    r: *const XtHttpRequest,
    len: *mut usize,
) -> *const u8 {
    ffi_body!(null(), {
        if len.is_null() {
            record(&Error::invalid_argument("len must not be NULL"));
            return null();
        }
        // SAFETY: per this function's contract.
        match unsafe { with_request(r, |q, _| (q.body.as_ptr(), q.body.len())) } {
            Ok((p, n)) => {
                // SAFETY: checked non-NULL; writable per the contract.
                unsafe { *len = n };
                p
            }
            Err(e) => {
                record(&e);
                null()
            }
        }
    })
}

/// How many form fields the request has: the query's, then those of an
/// `application/x-www-form-urlencoded` body or the text fields of a `multipart/form-data` one.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_form_count(r: *const XtHttpRequest) -> usize {
    // SAFETY: per this function's contract.
    ffi_body!(0, {
        value_or(unsafe { with_request(r, |q, _| q.form().len()) }, 0)
    })
}

/// Form field `i` (decoded: '+' and %xx) into `*name` and `*value`. Borrowed. False with
/// `xt_last_error` set past the end (1001) or on other errors.
///
/// # Safety
/// As `xt_http_request_header_at`.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_form_at(
    r: *const XtHttpRequest,
    i: usize,
    name: *mut *const c_char,
    value: *mut *const c_char,
) -> bool {
    // SAFETY: per this function's contract.
    ffi_body!(false, {
        unsafe { pair_at(r, i, name, value, |q| q.form(), "form field") }
    })
}

/// The value of the first form field called `name` (exact match); NULL if absent (then
/// `xt_last_error` is not changed) or on error. Borrowed.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback; `name` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_form_value(
    r: *const XtHttpRequest,
    name: *const c_char,
) -> *const c_char {
    ffi_body!(null(), {
        // SAFETY: per this function's contract.
        let result = unsafe { str_arg(name, "field name") }.and_then(|name| {
            // SAFETY: per this function's contract.
            unsafe { with_request(r, |q, _| q.form_value(name).map_or(null(), |v| v.as_ptr())) }
        });
        or_null(result)
    })
}

/// How many files a `multipart/form-data` request carries.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_file_count(r: *const XtHttpRequest) -> usize {
    // SAFETY: per this function's contract.
    ffi_body!(0, {
        value_or(unsafe { with_request(r, |q, _| q.files.len()) }, 0)
    })
}

/// File `i` of a multipart form: its field name, file name ("" if none), content type ("" if
/// none) and bytes. Any out pointer may be NULL when not wanted. Borrowed. False with
/// `xt_last_error` set past the end (1001) or on other errors.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback; each out pointer is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_file_at(
    r: *const XtHttpRequest,
    i: usize,
    field: *mut *const c_char,
    filename: *mut *const c_char,
    content_type: *mut *const c_char,
    data: *mut *const u8,
    len: *mut usize,
) -> bool {
    ffi_body!(false, {
        // SAFETY: per this function's contract.
        let result = unsafe {
            with_request(r, |q, _| {
                q.files.get(i).map(|f| {
                    (
                        f.field.as_ptr(),
                        f.filename.as_ptr(),
                        f.content_type.as_ptr(),
                        f.data.as_ptr(),
                        f.data.len(),
                    )
                })
            })
        }
        .and_then(|f| f.ok_or_else(|| Error::invalid_argument(format!("no file {i}"))));
        match result {
            Ok((fi, fname, ct, d, n)) => {
                // SAFETY: each pointer is written only when non-NULL; writable per the contract.
                unsafe {
                    if !field.is_null() {
                        *field = fi;
                    }
                    if !filename.is_null() {
                        *filename = fname;
                    }
                    if !content_type.is_null() {
                        *content_type = ct;
                    }
                    if !data.is_null() {
                        *data = d;
                    }
                    if !len.is_null() {
                        *len = n;
                    }
                }
                true
            }
            Err(e) => {
                record(&e);
                false
            }
        }
    })
}

/// The requester, as for a TCP connection (its `unique_id` is the HTTP connection's id, which
/// is not a TCP connection id: `xt_send_data` does not take it). Borrowed; valid during the
/// callback.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_info(r: *const XtHttpRequest) -> *const XtConnectionInfo {
    // SAFETY: per this function's contract.
    ffi_body!(null(), {
        or_null(unsafe { with_request(r, |_, info| info as *const XtConnectionInfo) })
    })
}

/// The response status, 100..=999 (default 200).
///
/// Returns `XT_OK`, 1001 for a status outside that range or NULL, 106 outside `page_request`.
///
/// # Safety
/// `resp` is NULL or the response of a `page_request` callback.
#[no_mangle]
pub unsafe extern "C" fn xt_http_response_set_status(
    resp: *mut XtHttpResponse,
    status: u16,
) -> i32 {
    // SAFETY: per this function's contract.
    ffi_body!(error::PANIC, {
        code_of(unsafe { with_response(resp, |w| w.set_status(status)) })
    })
}

/// Adds a response header (copied; added as given, several with one name are kept). xtnet sets
/// Content-Length (and never chunks), Date, and Content-Type "text/html; charset=utf-8" for a
/// body without one.
///
/// Returns `XT_OK`, 1001 for NULL, an invalid name or value, or Content-Length /
/// Transfer-Encoding; 106 outside `page_request`.
///
/// # Safety
/// `resp` is NULL or the response of a `page_request` callback; `name` and `value` are NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn xt_http_response_add_header(
    resp: *mut XtHttpResponse,
    name: *const c_char,
    value: *const c_char,
) -> i32 {
    ffi_body!(error::PANIC, {
        let result = (|| {
            if name.is_null() || value.is_null() {
                return Err(Error::invalid_argument(
                    "header name and value must not be NULL",
                ));
            }
            // SAFETY: non-NULL and NUL-terminated per the contract.
            let (n, v) = unsafe {
                (
                    std::ffi::CStr::from_ptr(name),
                    std::ffi::CStr::from_ptr(value),
                )
            };
            // SAFETY: per this function's contract.
            unsafe { with_response(resp, |w| w.add_header(n.to_bytes(), v.to_bytes())) }
        })();
        code_of(result)
    })
}

/// The response body: `len` bytes, copied (a later call replaces it).
///
/// Returns `XT_OK`, 1001 for NULL with a length, 106 outside `page_request`.
///
/// # Safety
/// `resp` is NULL or the response of a `page_request` callback; `data` is NULL or points to
/// `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn xt_http_response_set_body(
    resp: *mut XtHttpResponse,
    data: *const u8,
    len: usize,
) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        let result = unsafe { bytes_arg(data, len, "body") }.and_then(|body| {
            // SAFETY: per this function's contract.
            unsafe {
                with_response(resp, |w| {
                    w.set_body(body);
                    Ok(())
                })
            }
        });
        code_of(result)
    })
}

/// The request's id: the same number `xt_http_response_defer` returns for it (so a host can
/// note it before deciding). 0 with `xt_last_error` 106 outside `page_request`, 1001 for NULL.
///
/// # Safety
/// `r` is NULL or the request of a `page_request` callback.
#[no_mangle]
pub unsafe extern "C" fn xt_http_request_id(r: *const XtHttpRequest) -> u64 {
    ffi_body!(0, {
        // SAFETY: per this function's contract.
        value_or(unsafe { with_request(r, |q, _| q.id) }, 0)
    })
}

/// In `page_request`: answer this request later, with `xt_http_reply`. The connection waits
/// (other connections do not); headers added before this call are kept for the answer. Without
/// an answer within `XT_OPT_HTTP_DEFER_TIMEOUT_MS` (30 s) the client gets 504. Keep-alive and
/// pipelined requests on the connection stay in order (the next waits for this answer).
///
/// Returns the request id (never 0), or 0 with `xt_last_error` set: 106 outside
/// `page_request` or when already deferred, 1001 for NULL.
///
/// # Safety
/// `resp` is NULL or the response of a `page_request` callback.
#[no_mangle]
pub unsafe extern "C" fn xt_http_response_defer(resp: *mut XtHttpResponse) -> u64 {
    ffi_body!(0, {
        let mut id = 0;
        // SAFETY: per this function's contract.
        let result = unsafe {
            with_response(resp, |w| {
                id = w.defer()?;
                Ok(())
            })
        };
        value_or(result.map(|()| id), 0)
    })
}

/// Answers request `request_id`, deferred with `xt_http_response_defer`: `status` (100..=999),
/// `content_type` (NULL: the headers set before deferring, else text/html for a body) and the
/// body (`len` bytes, copied). Any thread (also from inside another callback), once.
///
/// Returns `XT_OK`; 106 when the request is not waiting (already answered, timed out with 504,
/// its client left or its listener stopped); 1001 for NULL ctx, a bad status or content type,
/// or NULL body with a length (the request still waits then).
///
/// # Safety
/// `ctx` is NULL or a live context; `content_type` is NULL or NUL-terminated; `body` is NULL
/// or points to `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn xt_http_reply(
    ctx: *mut XtContext,
    request_id: u64,
    status: u16,
    content_type: *const c_char,
    body: *const u8,
    len: usize,
) -> i32 {
    ffi_body!(error::PANIC, {
        let result = (|| {
            // SAFETY: per this function's contract.
            let c = unsafe { context(ctx) }?;
            // SAFETY: per this function's contract.
            let body = unsafe { bytes_arg(body, len, "body") }?;
            let content_type = if content_type.is_null() {
                None
            } else {
                // SAFETY: non-NULL and NUL-terminated per this function's contract.
                Some(unsafe { str_arg(content_type, "content_type") }?.as_bytes())
            };
            c.http_reply(request_id, status, content_type, body)
        })();
        code_of(result)
    })
}
