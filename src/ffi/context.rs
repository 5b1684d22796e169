//! Creating, running and freeing a context.

use super::callbacks::{CHost, HttpSlots, XtCallbacks};
use super::{ffi_body, record, value_or};
use crate::context::{Context, Dispatch};
use crate::error::{self, Error};
use std::sync::Arc;
use std::time::Duration;

/// A context: one runtime with its listeners, connections and event queue. Opaque.
///
/// Created by `xt_context_new`, freed by `xt_context_free`. Every `xt_` call taking a context
/// may be made from any thread, concurrently, until `xt_context_free` is called.
pub struct XtContext {
    pub(crate) inner: Context,
    table: XtCallbacks,
}

/// How callbacks are run. Taken as `uint32_t` at the boundary.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XtDispatch {
    /// Callbacks run on one library thread, one at a time.
    XT_DISPATCH_THREAD = 0,
    /// Callbacks run inside `xt_poll()` on the host's own thread.
    XT_DISPATCH_POLL = 1,
    /// Callbacks run on the network thread that did the I/O, without a hand-off: one
    /// connection's (or listener's) in order and never overlapping, different connections'
    /// concurrently from different network threads, so the host must be thread-safe. Writes
    /// from a callback leave when its batch ends. `xt_poll` and `xt_wakeup_fd` are not used.
    /// Network threads block SIGPIPE (so a write to a reset peer only fails, whatever the
    /// host's SIGPIPE handling), and callbacks run with it blocked.
    XT_DISPATCH_INLINE = 2,
}

/// The context behind a pointer, or `XT_ERR_INVALID_ARGUMENT` for NULL.
///
/// # Safety
/// `ctx` is NULL or a pointer returned by `xt_context_new` and not yet freed.
pub(crate) unsafe fn context<'a>(ctx: *const XtContext) -> Result<&'a Context, Error> {
    if ctx.is_null() {
        return Err(Error::invalid_argument("the context is NULL"));
    }
    // SAFETY: per the caller's contract the pointer is live.
    Ok(unsafe { &(*ctx).inner })
}

/// Copies the host's table: the first `struct_size` bytes, the rest NULL.
///
/// # Safety
/// `callbacks` is NULL or points to at least `struct_size` readable bytes starting with it.
unsafe fn copy_table(callbacks: *const XtCallbacks) -> Result<XtCallbacks, Error> {
    let mut table = XtCallbacks::empty();
    if callbacks.is_null() {
        return Ok(table);
    }
    // SAFETY: the table starts with its u32 size, readable per the caller's contract.
    let size = unsafe { std::ptr::read_unaligned(callbacks.cast::<u32>()) } as usize;
    let ours = std::mem::size_of::<XtCallbacks>();
    let min = std::mem::offset_of!(XtCallbacks, user_data) + std::mem::size_of::<*mut ()>();
    if size < min {
        return Err(Error::invalid_argument(format!(
            "XtCallbacks.struct_size is {size}; set it to sizeof(XtCallbacks)"
        )));
    }
    // SAFETY: copies min(size, ours) bytes from the host's table into ours. Any bytes form a
    // valid XtCallbacks prefix as far as the ABI goes (NULL-able pointers); fields the host did
    // not provide stay NULL.
    unsafe {
        std::ptr::copy_nonoverlapping(
            callbacks.cast::<u8>(),
            (&mut table as *mut XtCallbacks).cast::<u8>(),
            size.min(ours),
        );
    }
    table.struct_size = ours as u32;
    Ok(table)
}

/// Creates a context. `callbacks` is copied (it may be NULL: no callbacks); `dispatch` is an
/// `XtDispatch` value.
///
/// Returns the context, or NULL with `xt_last_error` set (1001 for a bad `dispatch` or
/// `struct_size`). Any thread. Free it with `xt_context_free`.
///
/// # Safety
/// `callbacks` is NULL or points to an `XtCallbacks` at least `struct_size` bytes long.
#[no_mangle]
pub unsafe extern "C" fn xt_context_new(
    callbacks: *const XtCallbacks,
    dispatch: u32,
) -> *mut XtContext {
    ffi_body!(std::ptr::null_mut(), {
        let result = (|| {
            let dispatch = match dispatch {
                0 => Dispatch::Thread,
                1 => Dispatch::Poll,
                2 => Dispatch::Inline,
                other => {
                    return Err(Error::invalid_argument(format!(
                        "unknown dispatch mode {other}"
                    )))
                }
            };
            // SAFETY: per this function's contract.
            let table = unsafe { copy_table(callbacks) }?;
            let host = Arc::new(CHost {
                table,
                http: HttpSlots::new(),
            });
            let inner = Context::new(host, dispatch)?;
            Ok(Box::into_raw(Box::new(XtContext { inner, table })))
        })();
        value_or(result, std::ptr::null_mut())
    })
}

/// Frees a context: stops every listener, ends every connection (each gets its final
/// `socket_error`, 102), runs the callbacks still waiting, stops the library's threads, then
/// calls `release(user_data)` exactly once. When it returns no callback runs or will run and
/// every socket is closed. NULL: no-op.
///
/// Not from inside a callback of the same context: there it does nothing and records
/// `XT_ERR_INVALID_STATE` (free it after the callback returns). From any other thread, once;
/// no other call may use `ctx` during or after it.
///
/// # Safety
/// `ctx` is NULL or a live pointer from `xt_context_new`, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn xt_context_free(ctx: *mut XtContext) {
    ffi_body!((), {
        if ctx.is_null() {
            return;
        }
        // SAFETY: live per the contract; checked before taking ownership.
        if unsafe { &(*ctx).inner }.in_callback() {
            record(&Error::invalid_state(
                "xt_context_free cannot be called from inside a callback of that context",
            ));
            return;
        }
        // SAFETY: the pointer came from Box::into_raw in xt_context_new and is freed once.
        let mut boxed = unsafe { Box::from_raw(ctx) };
        if let Err(e) = boxed.inner.shutdown() {
            record(&e);
        }
        let table = boxed.table;
        drop(boxed);
        if let Some(release) = table.release {
            // SAFETY: the host's release function with its own user_data, called once, after
            // the last callback (shutdown returned).
            unsafe { release(table.user_data) };
        }
    })
}

/// Poll dispatch: runs the callbacks waiting now on the calling thread, first waiting up to
/// `timeout_ms` for one (0: do not wait; negative: wait forever).
///
/// Returns how many host callbacks it ran (0 on timeout; events whose callback is NULL, such as
/// a `socket_error` the host does not take, are not counted), or -1 with `xt_last_error` set: NULL
/// ctx (1001), a context in thread or inline dispatch, a nested call from a callback or a concurrent call
/// from another thread (106). One thread at a time.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_poll(ctx: *mut XtContext, timeout_ms: i32) -> i32 {
    ffi_body!(-1, {
        let timeout = (timeout_ms >= 0).then(|| Duration::from_millis(timeout_ms as u64));
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| c.poll(timeout));
        value_or(result.map(|n| n.min(i32::MAX as usize) as i32), -1)
    })
}

/// Poll dispatch: a descriptor that is readable exactly while callbacks wait (level-triggered),
/// for select/poll/kqueue, CFRunLoop or GLib. Owned by the context: do not read or close it.
///
/// Returns -1 (and records 106) for a thread- or inline-dispatch context, or 1001 for NULL.
/// Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_wakeup_fd(ctx: *const XtContext) -> i32 {
    ffi_body!(-1, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| {
            c.wakeup_fd().ok_or_else(|| {
                Error::new(
                    error::INVALID_STATE,
                    "xt_wakeup_fd is for XT_DISPATCH_POLL contexts",
                )
            })
        });
        value_or(result, -1)
    })
}

/// Live connections of the context (accepted, awaiting `new_connection`, outgoing).
pub const XT_STAT_CONNECTIONS: u32 = 1;
/// Listeners running in the context.
pub const XT_STAT_LISTENERS: u32 = 2;
/// Bytes read from the network and not yet delivered to callbacks: what back-pressure bounds
/// (reading pauses per connection, and for the whole context at 64 MiB).
pub const XT_STAT_BACKLOG_BYTES: u32 = 3;
/// Peer addresses whose name and MAC address are cached (at most 4096).
pub const XT_STAT_PEER_CACHE_ENTRIES: u32 = 4;
/// Peer lookups (neighbour table, mDNS, system resolver) started since the context was made;
/// concurrent askers of one address share one.
pub const XT_STAT_PEER_LOOKUPS: u32 = 5;
/// Accepts that failed on any listener since the context was made (e.g. out of descriptors:
/// EMFILE); each listener logs them at most once a second, with a count.
pub const XT_STAT_ACCEPT_ERRORS: u32 = 6;

/// A counter of the context (`XT_STAT_*`), or -1 for an unknown counter or a NULL ctx (1001).
/// Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_get_stat(ctx: *const XtContext, stat: u32) -> i64 {
    ffi_body!(-1, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| {
            c.stat(stat)
                .ok_or_else(|| Error::invalid_argument(format!("unknown counter {stat}")))
        });
        value_or(result, -1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::stats;

    #[test]
    fn c_counter_numbers_are_the_core_numbers() {
        assert_eq!(XT_STAT_CONNECTIONS, stats::CONNECTIONS);
        assert_eq!(XT_STAT_LISTENERS, stats::LISTENERS);
        assert_eq!(XT_STAT_BACKLOG_BYTES, stats::BACKLOG_BYTES);
        assert_eq!(XT_STAT_PEER_CACHE_ENTRIES, stats::PEER_CACHE_ENTRIES);
        assert_eq!(XT_STAT_PEER_LOOKUPS, stats::PEER_LOOKUPS);
        assert_eq!(XT_STAT_ACCEPT_ERRORS, stats::ACCEPT_ERRORS);
    }
}
