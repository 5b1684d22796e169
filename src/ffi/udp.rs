//! UDP: listeners, datagrams (unicast, broadcast, multicast) and group membership.

use super::context::{context, XtContext};
use super::{bytes_arg, code_of, ffi_body, str_arg, value_or};
use crate::error::{self, Error};
use std::ffi::c_char;

/// Pass as `remote_address` of `xt_send_datagram` to broadcast: the datagram goes out of every
/// up, broadcast-capable interface (or use a subnet's broadcast address for one subnet).
pub const XT_BROADCAST_ADDRESS: &str = "255.255.255.255";

/// An optional interface argument: NULL or "" means every suitable interface.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
unsafe fn interface_arg<'a>(ptr: *const c_char) -> Result<Option<&'a str>, crate::Error> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: per this function's contract.
    let text = unsafe { str_arg(ptr, "interface") }?;
    Ok((!text.trim().is_empty()).then_some(text))
}

/// Starts a UDP listener on `port` (0: any free port; see `xt_listener_port`). Datagrams go to
/// the `received_datagram` callback. Binds IPv4 and IPv6 (unless `xt_set_bind_address` picks
/// one) with SO_REUSEADDR/SO_REUSEPORT, so discovery ports such as 1900 (SSDP) and 5353 (mDNS)
/// can be shared with other programs and contexts: multicast and broadcast reach every sharer,
/// a unicast datagram reaches one of them. A socket only receives groups it joined.
///
/// Returns the listener id, or 0 with `xt_last_error` set: 107 for ports 1..1023 (unless
/// allowed), 105 for a port taken by a socket that does not share, 1001 for NULL ctx, 106 while
/// the context is being freed. Any thread, including from a callback.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_start_udp_listener(ctx: *mut XtContext, port: u16) -> u32 {
    ffi_body!(0, {
        // SAFETY: per this function's contract.
        value_or(
            unsafe { context(ctx) }.and_then(|c| c.start_udp_listener(port)),
            0,
        )
    })
}

/// Stops a UDP listener. When it returns its sockets are closed and none of its callbacks runs
/// or will run (called from its own `received_datagram`, that callback finishes first).
///
/// Returns false with `xt_last_error` set: 106 for an unknown, stopped or non-UDP id, 1001 for
/// NULL ctx. Any thread, including from a callback.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_stop_udp_listener(ctx: *mut XtContext, server_id: u32) -> bool {
    ffi_body!(false, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| c.stop_udp_listener(server_id));
        value_or(result.map(|()| true), false)
    })
}

/// Joins the multicast `group` ("239.255.255.250", "224.0.0.251", "ff02::fb"; copied) on every
/// up, multicast-capable interface; on a machine whose only up interface is loopback, on
/// loopback (so programs of one host still find each other). Joining a group already joined is
/// fine.
///
/// Returns false with `xt_last_error` set: 1001 for NULL, unparsable or non-multicast text;
/// 106 for an unknown, stopped or non-UDP id; ENODEV when no interface is up at all; the
/// system's code when no join succeeded. Any thread, including from a callback.
///
/// # Safety
/// `ctx` is NULL or a live context; `group` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn xt_join_multicast_group(
    ctx: *mut XtContext,
    server_id: u32,
    group: *const c_char,
) -> bool {
    // SAFETY: per this function's contract.
    unsafe { xt_join_multicast_group_on(ctx, server_id, group, std::ptr::null()) }
}

/// Leaves the multicast `group` on every interface it was joined on. After it returns no more
/// datagrams sent to the group arrive (other groups and unicast still do).
///
/// Returns false with `xt_last_error` set as for joining, and 106 for a group not joined.
///
/// # Safety
/// `ctx` is NULL or a live context; `group` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn xt_leave_multicast_group(
    ctx: *mut XtContext,
    server_id: u32,
    group: *const c_char,
) -> bool {
    // SAFETY: per this function's contract.
    unsafe { xt_leave_multicast_group_on(ctx, server_id, group, std::ptr::null()) }
}

/// Joins `group` on one interface, named ("eth0", "en0") or by one of its addresses
/// ("192.168.1.10"); NULL or "" means every up, multicast-capable interface. Errors as
/// `xt_join_multicast_group`, plus 1001 for an interface that does not exist.
///
/// # Safety
/// `ctx` is NULL or a live context; `group` and `interface` are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn xt_join_multicast_group_on(
    ctx: *mut XtContext,
    server_id: u32,
    group: *const c_char,
    interface: *const c_char,
) -> bool {
    // SAFETY: per this function's contract.
    unsafe { membership(ctx, server_id, group, interface, true) }
}

/// Leaves `group` on one interface (as for `xt_join_multicast_group_on`), or on every interface
/// it was joined on for NULL or "".
///
/// # Safety
/// `ctx` is NULL or a live context; `group` and `interface` are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn xt_leave_multicast_group_on(
    ctx: *mut XtContext,
    server_id: u32,
    group: *const c_char,
    interface: *const c_char,
) -> bool {
    // SAFETY: per this function's contract.
    unsafe { membership(ctx, server_id, group, interface, false) }
}

/// Joins (`join`) or leaves a group: the body of the four membership calls.
///
/// # Safety
/// As for `xt_join_multicast_group_on`.
unsafe fn membership(
    ctx: *mut XtContext,
    server_id: u32,
    group: *const c_char,
    interface: *const c_char,
    join: bool,
) -> bool {
    ffi_body!(false, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let (group, interface) =
                unsafe { (str_arg(group, "group")?, interface_arg(interface)?) };
            c.multicast_membership(server_id, group, interface, join)
        });
        value_or(result.map(|()| true), false)
    })
}

/// Sends one datagram of `len` bytes (copied) from UDP listener `server_id` — from its port, as
/// SSDP and mDNS peers expect replies — to `remote_address` and `remote_port`.
///
/// `remote_address` is an IPv4 or IPv6 address ("fe80::1%eth0" for link-local), a subnet
/// broadcast address, `XT_BROADCAST_ADDRESS` (out of every broadcast-capable interface) or a
/// multicast group (out of every multicast-capable interface, or the one set with
/// `xt_set_multicast_interface`). Host names are not resolved: sending never blocks.
///
/// Outside a callback the datagram is sent before this returns, and a failure is returned.
/// Unicast sent from inside a callback leaves when the current batch of callbacks ends (many
/// per system call); a failure then cannot be returned and is reported through `log`.
///
/// Returns `XT_OK` or a code: 1001 for NULL or unparsable text or NULL data with a length;
/// 107 for port 0; EMSGSIZE for more than UDP allows (65507 bytes over IPv4, 65527 over IPv6);
/// 106 for an unknown, stopped or non-UDP id; 108 when the socket's send buffer is full; the
/// system's code (e.g. ENETUNREACH) otherwise. Any thread, including from a callback.
///
/// # Safety
/// `ctx` is NULL or a live context; `remote_address` is NULL or NUL-terminated; `data` is NULL
/// or points to `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn xt_send_datagram(
    ctx: *mut XtContext,
    server_id: u32,
    remote_address: *const c_char,
    remote_port: u16,
    data: *const u8,
    len: usize,
) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let (address, data) = unsafe {
                (
                    str_arg(remote_address, "remote address")?,
                    bytes_arg(data, len, "data")?,
                )
            };
            c.send_datagram(server_id, address, remote_port, data)
        }))
    })
}

/// The interface UDP listener `server_id` sends multicast from, by name or address; NULL or ""
/// for every up, multicast-capable interface (the default). The limited broadcast always goes
/// out of every broadcast-capable interface.
///
/// Returns `XT_OK`, 1001 for an unknown interface or bad text, 106 for a bad id.
///
/// # Safety
/// `ctx` is NULL or a live context; `interface` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn xt_set_multicast_interface(
    ctx: *mut XtContext,
    server_id: u32,
    interface: *const c_char,
) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let interface = unsafe { interface_arg(interface) }?;
            c.set_multicast_interface(server_id, interface)
        }))
    })
}

/// Time to live (IPv4) and hop limit (IPv6) of multicast sent from UDP listener `server_id`,
/// 0..=255 (the system's default is 1: the local link only).
///
/// Returns `XT_OK`, 1001 for a value past 255, 106 for a bad id.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_set_multicast_ttl(
    ctx: *mut XtContext,
    server_id: u32,
    ttl: u32,
) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| c.set_multicast_ttl(server_id, ttl)))
    })
}

/// Whether multicast sent from UDP listener `server_id` also reaches listeners on this host
/// (default true).
///
/// Returns `XT_OK` or 106 for a bad id.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_set_multicast_loop(
    ctx: *mut XtContext,
    server_id: u32,
    enabled: bool,
) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| c.set_multicast_loop(server_id, enabled)))
    })
}

/// How many datagrams UDP listener `server_id` has dropped since it started because the host's
/// callbacks were behind (its own queue was full, or the system's receive buffer overflowed).
/// Each drop is also reported through `log` (at most once a second per listener).
///
/// Returns the count, or -1 with `xt_last_error` set (106 for a bad id, 1001 for NULL ctx).
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_udp_dropped(ctx: *const XtContext, server_id: u32) -> i64 {
    ffi_body!(-1, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| c.udp_dropped(server_id));
        value_or(result.map(|n| n.min(i64::MAX as u64) as i64), -1)
    })
}

/// How many datagrams sent from inside callbacks of UDP listener `server_id` the system refused
/// (e.g. a full send buffer or an unreachable network). Such sends returned `XT_OK` (they leave
/// when the batch of callbacks ends), so this counter and the `log` line are where they show.
///
/// Returns the count, or -1 with `xt_last_error` set (106 for a bad id, 1001 for NULL ctx).
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_udp_send_failures(ctx: *const XtContext, server_id: u32) -> i64 {
    ffi_body!(-1, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| c.udp_send_failures(server_id));
        value_or(result.map(|n| n.min(i64::MAX as u64) as i64), -1)
    })
}

/// Sends one datagram (copied) from UDP listener `server_id`, from its port, out of
/// `interface` only — a name ("eth0") or one of its addresses — to `remote_address` and
/// `remote_port`: the reply to a multicast or broadcast query out of the interface it came in
/// on (`XtDatagramInfo.interface_name`). Sent before this returns, also from a callback.
///
/// Returns `XT_OK` or a code: as `xt_send_datagram`, and 1001 for an unknown interface.
///
/// # Safety
/// `ctx` is NULL or a live context; `interface` and `remote_address` are NULL or
/// NUL-terminated; `data` is NULL or points to `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn xt_send_datagram_on(
    ctx: *mut XtContext,
    server_id: u32,
    interface: *const c_char,
    remote_address: *const c_char,
    remote_port: u16,
    data: *const u8,
    len: usize,
) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let (interface, address, data) = unsafe {
                (
                    str_arg(interface, "interface")?,
                    str_arg(remote_address, "remote address")?,
                    bytes_arg(data, len, "data")?,
                )
            };
            c.send_datagram_on(server_id, interface, address, remote_port, data)
        }))
    })
}

/// Writes into `out` (`out_len` bytes, NUL-terminated) the address of this host that
/// `remote_address` reaches it on — the source address the routing table picks toward it;
/// nothing is sent. What an SSDP `LOCATION`, a GENA `CALLBACK` or an mDNS A record should
/// carry on a multi-homed host. IPv6 link-local peers take a zone ("fe80::1%eth0").
///
/// Returns `XT_OK`, or: 1001 for NULL arguments, text that is no IP address, an unknown zone,
/// or an `out` too small (46 bytes always suffice); ENETUNREACH or EHOSTUNREACH when no route
/// leads there.
/// Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context; `remote_address` is NULL or NUL-terminated; `out` is NULL
/// or points to `out_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn xt_local_address_for(
    ctx: *mut XtContext,
    remote_address: *const c_char,
    out: *mut c_char,
    out_len: usize,
) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let remote = unsafe { str_arg(remote_address, "remote address") }?;
            if out.is_null() {
                return Err(Error::invalid_argument("out is NULL"));
            }
            let text = c.local_address_for(remote)?.to_string();
            if text.len() + 1 > out_len {
                return Err(Error::invalid_argument(format!(
                    "out has {out_len} bytes; {text:?} needs {}",
                    text.len() + 1
                )));
            }
            // SAFETY: `out` has `out_len` writable bytes, checked above to hold the text and
            // its NUL.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), out.cast::<u8>(), text.len());
                *out.add(text.len()) = 0;
            }
            Ok(())
        }))
    })
}

/// Wakes a machine: sends the Wake-on-LAN magic packet (6 × 0xFF, then `mac_address` 16
/// times) to UDP port 9 as a limited broadcast out of every up, broadcast-capable interface
/// with an IPv4 address — or only out of `interface` (name or address) — so it needs no route
/// and reaches every link of a multi-homed host. `mac_address`: "aa:bb:cc:dd:ee:ff", with '-'
/// or without separators.
///
/// Returns `XT_OK`, or: 1001 for NULL ctx, a bad MAC or an unknown interface; 106 when no
/// interface can broadcast; the system's code when every send failed. Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context; `mac_address` and `interface` are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn xt_send_wake_on_lan(
    ctx: *mut XtContext,
    mac_address: *const c_char,
    interface: *const c_char,
) -> i32 {
    ffi_body!(error::PANIC, {
        // SAFETY: per this function's contract.
        code_of(unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let mac = unsafe { str_arg(mac_address, "MAC address") }?;
            let interface = if interface.is_null() {
                None
            } else {
                // SAFETY: per this function's contract.
                Some(unsafe { str_arg(interface, "interface") }?)
            };
            c.send_wake_on_lan(mac, interface).map(|_| ())
        }))
    })
}
