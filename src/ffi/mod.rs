//! The C surface. Nothing here does networking: arguments are checked (NULL, UTF-8, ranges),
//! ids are looked up, errors are recorded for `xt_last_error`, and every body runs inside a
//! panic boundary so a bug in xtnet never unwinds into the host (and prints nothing to its
//! stderr: see `panics.rs`).

use crate::error::{self, Error};
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

pub mod callbacks;
pub mod context;
pub mod http;
pub mod library;
pub mod options;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod websocket;

/// Runs an `extern "C"` body; a panic inside becomes `$default` with `XT_ERR_PANIC` recorded.
/// A macro around the body (not the signature) so cbindgen sees plain functions.
macro_rules! ffi_body {
    ($default:expr, $body:block) => {{
        $crate::panics::install_hook();
        let _call = $crate::panics::LibraryCall::enter();
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(value) => value,
            Err(payload) => {
                $crate::ffi::record_panic(payload);
                $default
            }
        }
    }};
}
pub(crate) use ffi_body;

thread_local! {
    static LAST_ERROR: RefCell<(i32, CString)> = RefCell::new((0, CString::default()));
}

/// Records `err` as this thread's last error.
pub(crate) fn record(err: &Error) {
    let text = crate::info::c_text(&err.message);
    LAST_ERROR.with(|l| *l.borrow_mut() = (err.code, text));
}

pub(crate) fn record_panic(payload: Box<dyn std::any::Any + Send>) {
    let what = crate::panics::message(&*payload);
    record(&Error::new(
        error::PANIC,
        format!("internal error caught at the C boundary: {what}"),
    ));
}

pub(crate) fn last_error() -> i32 {
    LAST_ERROR.with(|l| l.borrow().0)
}

/// Pointer to the last error's text; lives in this thread's storage until the next error.
pub(crate) fn last_error_message() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().1.as_ptr())
}

/// Records and returns the code (for calls returning `int32_t`).
pub(crate) fn code_of(result: Result<(), Error>) -> i32 {
    match result {
        Ok(()) => error::OK,
        Err(e) => {
            record(&e);
            e.code
        }
    }
}

/// Records a failure and gives `default` (for calls returning an id, a bool or a port).
pub(crate) fn value_or<T>(result: Result<T, Error>, default: T) -> T {
    result.unwrap_or_else(|e| {
        record(&e);
        default
    })
}

/// The string behind a C pointer: NULL and bad UTF-8 are `XT_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::invalid_argument(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| Error::invalid_argument(format!("{what} is not valid UTF-8")))
}

/// The bytes behind `(ptr, len)`: NULL is fine only with `len == 0`.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that stay valid for `'a`.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::invalid_argument(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid_argument(format!(
            "{what} length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, `len` readable bytes per the caller's contract, len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}
