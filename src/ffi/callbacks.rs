//! The callback table and the data each event carries.
//!
//! | event              | when                                             | data                                   |
//! |--------------------|--------------------------------------------------|----------------------------------------|
//! | `new_connection`   | a peer connected to a TCP listener               | id, info; return true to accept        |
//! | `connected`        | an outgoing connection is established            | id, info                               |
//! | `data_available`   | a framed message (or raw chunk) arrived          | bytes, id, info                        |
//! | `socket_error`     | the connection ended (always the last event)     | id, info with error_number/message     |
//! | `received_datagram`| a UDP datagram arrived                           | server id, bytes, datagram info        |
//! | `page_request`     | an HTTP request arrived; answer inline           | server id, request, response           |
//! | `log`              | the library has something to say                 | level (`XT_LOG_*`), text               |

use crate::error::Error;
use crate::events::{Callback, Host, LogLevel};
use crate::http::{HttpRequest, HttpResponse};
use crate::info::{decimal_c, ConnectionInfo, MessageKind};
use crate::panics::host_call;
use crate::udp::DatagramInfo;
use parking_lot::Mutex;
use std::ffi::{c_char, c_void, CStr};
use std::ptr::{null, null_mut};

/// Error: something failed.
pub const XT_LOG_ERROR: i32 = 1;
/// Warning: something is wrong but xtnet goes on (e.g. accept failing for lack of descriptors).
pub const XT_LOG_WARNING: i32 = 2;
/// Information: listeners started and stopped and the like.
pub const XT_LOG_INFO: i32 = 3;
/// Debugging detail.
pub const XT_LOG_DEBUG: i32 = 4;

/// What is known about a connection and its peer (XTension's connection info dictionary).
///
/// Passed to callbacks: borrowed for the duration of the callback; do not retain the struct or
/// its strings (copy what you need). Every string is non-NULL and NUL-terminated.
/// Fields may be added at the end, never reordered.
#[repr(C)]
pub struct XtConnectionInfo {
    /// xtKeyRemoteAddress: the peer's IP address as text (IPv4 peers as plain IPv4).
    pub remote_address: *const c_char,
    /// xtKeyRemotePort: as XTension documents it, the LOCAL port of the connection (for an
    /// accepted connection the listening port; for an outgoing one the local ephemeral port,
    /// 0 before it connected).
    pub remote_port: u16,
    /// The peer's own port.
    pub peer_port: u16,
    /// xtKeyName: the peer's Bonjour/local name ("kitchen.local": mDNS reverse lookup on its
    /// link, else the system resolver's name), "?" when unknown or not found within
    /// `XT_OPT_PEER_LOOKUP_MS`. The same in every event of one connection.
    pub name: *const c_char,
    /// xtKeyMacAddress: "aa:bb:cc:dd:ee:ff" from the neighbour table for a peer on a local
    /// link; "00:00:00:00:00:00" for loopback, routed peers, links without MAC addresses, or
    /// when unknown.
    pub mac_address: *const c_char,
    /// xtKeyUniqueId: the connection id as decimal text.
    pub unique_id: *const c_char,
    /// The listener that accepted it; 0 for an outgoing connection.
    pub server_id: u32,
    /// xtKeyErrorNumber: in `socket_error` only, else 0.
    pub error_number: i32,
    /// xtKeyErrorMessage: in `socket_error` only, else "".
    pub error_message: *const c_char,
    /// Hex SHA-256 of the peer's SubjectPublicKeyInfo (what `XtTlsOptions.pin_sha256` takes);
    /// "" without TLS or without a peer certificate. In a `socket_error` 1011 (untrusted), the
    /// fingerprint of the certificate that was refused.
    pub tls_peer_fingerprint: *const c_char,
    /// "TLSv1.3", "TLSv1.2", or "" without TLS.
    pub tls_protocol: *const c_char,
    /// In `data_available` of a WebSocket connection: `XT_WS_TEXT` or `XT_WS_BINARY` (the
    /// message's type); 0 otherwise.
    pub message_kind: u32,
}

/// What is known about the sender of a datagram. Borrowed for the duration of the callback.
#[repr(C)]
pub struct XtDatagramInfo {
    /// The sender's IP address as text.
    pub remote_address: *const c_char,
    /// The sender's port.
    pub remote_port: u16,
    /// The local port the datagram arrived on.
    pub local_port: u16,
    /// The sender's name from the peer cache only (never waits): "?" when unknown.
    pub name: *const c_char,
    /// The sender's MAC address from the peer cache only: zeros when unknown.
    pub mac_address: *const c_char,
    /// The datagram's destination: our address, the group, or the broadcast address (as text;
    /// "" when the system did not say).
    pub local_address: *const c_char,
    /// The interface it arrived on ("eth0", "en0"; "" when unknown) and its index (0).
    pub interface_name: *const c_char,
    pub interface_index: u32,
    /// `XT_DGRAM_UNICAST`, `XT_DGRAM_BROADCAST` or `XT_DGRAM_MULTICAST` (0 when unknown).
    pub kind: u32,
}

/// `XtDatagramInfo.kind`: sent to one of our addresses.
pub const XT_DGRAM_UNICAST: u32 = 1;
/// Sent to a broadcast address (255.255.255.255 or the arrival network's).
pub const XT_DGRAM_BROADCAST: u32 = 2;
/// Sent to a multicast group.
pub const XT_DGRAM_MULTICAST: u32 = 3;

/// An HTTP request, opaque. Valid during `page_request` only.
pub struct XtHttpRequest {
    _private: [u8; 0],
}

/// An HTTP response being filled in, opaque. Valid during `page_request` only.
pub struct XtHttpResponse {
    _private: [u8; 0],
}

/// The host's callbacks. `xt_context_new` copies the table (the first `struct_size` bytes),
/// so it need not outlive the call. Every pointer may be NULL: a NULL callback is not called
/// (a NULL `new_connection` accepts every connection).
///
/// Callbacks run on one thread at a time: the library's dispatch thread (`XT_DISPATCH_THREAD`)
/// or the thread calling `xt_poll` (`XT_DISPATCH_POLL`). With `XT_DISPATCH_INLINE` they run on
/// the network threads, without a hand-off: one connection's (or UDP listener's) callbacks in
/// order and never at the same time, but different connections' (and different HTTP
/// requests') concurrently, so every callback must be thread-safe; `log` and
/// `interface_changed` run one at a time, in order, on a network thread. A callback that
/// blocks holds its network thread: the connections that thread serves wait meanwhile (the
/// others go on; see `XT_OPT_NETWORK_THREADS`). Stopping a UDP or HTTP listener from an
/// inline callback waits for that listener's callbacks running on other threads (not the
/// calling one), so two callbacks must not stop each other's listeners at the same moment.
/// Pointers passed to a callback are borrowed for its duration only. Any `xt_` call may be made from inside a callback except
/// `xt_context_free` of the same context (and a nested `xt_poll`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct XtCallbacks {
    /// `sizeof(XtCallbacks)` as the host compiled it: lets the table grow.
    pub struct_size: u32,
    /// Passed as the first argument of every callback; xtnet never dereferences it.
    pub user_data: *mut c_void,
    /// Called exactly once, after the last callback, when the context is freed: drop what
    /// `user_data` retains here.
    pub release: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
    /// A peer connected to a TCP listener. Return true to accept, false to close it at once
    /// (it then gets no further event). The library waits for the answer before going on with
    /// this connection only.
    pub new_connection: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            connection_id: u64,
            info: *const XtConnectionInfo,
        ) -> bool,
    >,
    /// An outgoing connection (from `xt_open_tcp_connection`) is established.
    pub connected: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            connection_id: u64,
            info: *const XtConnectionInfo,
        ),
    >,
    /// Data arrived: one message without its boundary, or (no boundary) whatever bytes arrived.
    /// `data` is borrowed for the callback only (copy to keep); `len` may be 0 (empty message).
    pub data_available: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            data: *const u8,
            len: usize,
            connection_id: u64,
            info: *const XtConnectionInfo,
        ),
    >,
    /// The connection ended: `info->error_number` says why (102 for every orderly end). Always
    /// the last event of a connection; afterwards its id gives `XT_ERR_INVALID_STATE`.
    pub socket_error: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            connection_id: u64,
            info: *const XtConnectionInfo,
        ),
    >,
    /// A UDP datagram arrived on a UDP listener.
    pub received_datagram: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            server_id: u32,
            data: *const u8,
            len: usize,
            info: *const XtDatagramInfo,
        ),
    >,
    /// An HTTP request arrived on an HTML listener: fill `response` before returning.
    pub page_request: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            server_id: u32,
            request: *const XtHttpRequest,
            response: *mut XtHttpResponse,
        ),
    >,
    /// A message from the library: `level` is an `XT_LOG_*` value, `message` borrowed.
    pub log:
        Option<unsafe extern "C" fn(user_data: *mut c_void, level: i32, message: *const c_char)>,
    /// The machine's network changed: interface `interface_name` came up (`up` true) or went
    /// down, or gained or lost `address` ("" for a link without addresses). Multicast
    /// memberships have already followed (a group joined on every interface is joined on one
    /// that came up, dropped from one that went). Strings borrowed for the call. Appended:
    /// hosts that pass a shorter table (smaller `struct_size`) are not called.
    pub interface_changed: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            interface_name: *const c_char,
            address: *const c_char,
            up: bool,
        ),
    >,
}

impl XtCallbacks {
    /// A table with every callback NULL.
    pub(crate) fn empty() -> Self {
        XtCallbacks {
            struct_size: std::mem::size_of::<XtCallbacks>() as u32,
            user_data: std::ptr::null_mut(),
            release: None,
            new_connection: None,
            connected: None,
            data_available: None,
            socket_error: None,
            received_datagram: None,
            page_request: None,
            log: None,
            interface_changed: None,
        }
    }
}

/// The host's table, as the core's [`Host`].
pub(crate) struct CHost {
    pub(crate) table: XtCallbacks,
    /// Where `page_request` finds its request and response.
    pub(crate) http: HttpSlots,
}

// SAFETY: the table holds C function pointers and an opaque `user_data` that xtnet never
// dereferences. The contract (documented on XtCallbacks) is that callbacks are invoked on one
// thread at a time (thread and poll dispatch) or concurrently from network threads (inline
// dispatch, which a host chooses only when its callbacks are thread-safe), possibly not on the
// thread that created the context; hosts accept this when they register them.
unsafe impl Send for CHost {}
// SAFETY: as above; xtnet only reads the table after creation.
unsafe impl Sync for CHost {}

/// The C view of `info`, borrowing its texts; `id_text` holds the unique-id text.
pub(crate) fn c_info(
    info: &ConnectionInfo,
    id_text: &mut [u8; 21],
    error_number: i32,
    error_message: &CStr,
) -> XtConnectionInfo {
    XtConnectionInfo {
        remote_address: info.remote_address.as_ptr(),
        remote_port: info.remote_port,
        peer_port: info.peer_port,
        name: info.name().as_ptr(),
        mac_address: info.mac_address().as_ptr(),
        unique_id: decimal_c(info.id, id_text).as_ptr(),
        server_id: info.server_id,
        error_number,
        error_message: error_message.as_ptr(),
        tls_peer_fingerprint: info.tls_fingerprint().as_ptr(),
        tls_protocol: info.tls_protocol().as_ptr(),
        message_kind: 0,
    }
}

impl Host for CHost {
    fn implements(&self, callback: Callback) -> bool {
        let t = &self.table;
        match callback {
            Callback::NewConnection => t.new_connection.is_some(),
            Callback::Connected => t.connected.is_some(),
            Callback::DataAvailable => t.data_available.is_some(),
            Callback::SocketError => t.socket_error.is_some(),
            Callback::ReceivedDatagram => t.received_datagram.is_some(),
            Callback::PageRequest => t.page_request.is_some(),
            Callback::Log => t.log.is_some(),
            Callback::InterfaceChanged => t.interface_changed.is_some(),
        }
    }

    fn new_connection(&self, id: u64, info: &ConnectionInfo) -> bool {
        match self.table.new_connection {
            // SAFETY: the host registered this function with this signature; the info and its
            // strings live until the call returns.
            Some(f) => host_call(|| unsafe {
                f(
                    self.table.user_data,
                    id,
                    &c_info(info, &mut [0; 21], 0, c""),
                )
            }),
            None => true,
        }
    }

    fn connected(&self, id: u64, info: &ConnectionInfo) {
        if let Some(f) = self.table.connected {
            // SAFETY: as in new_connection.
            host_call(|| unsafe {
                f(
                    self.table.user_data,
                    id,
                    &c_info(info, &mut [0; 21], 0, c""),
                )
            })
        }
    }

    fn data_available(&self, id: u64, data: &[u8], info: &ConnectionInfo, kind: MessageKind) {
        if let Some(f) = self.table.data_available {
            let info = XtConnectionInfo {
                message_kind: kind as u32,
                ..c_info(info, &mut [0; 21], 0, c"")
            };
            // SAFETY: as in new_connection; `data` is valid for `len` bytes during the call.
            host_call(|| unsafe { f(self.table.user_data, data.as_ptr(), data.len(), id, &info) })
        }
    }

    fn socket_error(&self, id: u64, info: &ConnectionInfo, code: i32, message: &CStr) {
        if let Some(f) = self.table.socket_error {
            // SAFETY: as in new_connection.
            host_call(|| unsafe {
                f(
                    self.table.user_data,
                    id,
                    &c_info(info, &mut [0; 21], code, message),
                )
            })
        }
    }

    fn page_request(&self, server_id: u32, request: &HttpRequest, response: &mut HttpResponse) {
        let Some(f) = self.table.page_request else {
            *response = HttpResponse::with_status(404);
            return;
        };
        self.http.run(request, response, |req, resp| {
            // SAFETY: the host's function with its user_data; the request and response are
            // reachable through the pointers (and the accessors) until it returns.
            host_call(|| unsafe { f(self.table.user_data, server_id, req, resp) })
        });
    }

    fn received_datagram(&self, server_id: u32, data: &[u8], info: &DatagramInfo) {
        if let Some(f) = self.table.received_datagram {
            let c = XtDatagramInfo {
                remote_address: info.remote_address.as_ptr(),
                remote_port: info.remote_port,
                local_port: info.local_port,
                name: info.name.as_ptr(),
                mac_address: info.mac_address.as_ptr(),
                local_address: info.local_address.as_ptr(),
                interface_name: info.interface_name.as_ptr(),
                interface_index: info.interface_index,
                kind: info.kind as u32,
            };
            // SAFETY: as in new_connection; `data` is valid for `len` bytes during the call.
            host_call(|| unsafe {
                f(
                    self.table.user_data,
                    server_id,
                    data.as_ptr(),
                    data.len(),
                    &c,
                )
            })
        }
    }

    fn log(&self, level: LogLevel, message: &CStr) {
        if let Some(f) = self.table.log {
            // SAFETY: as in new_connection; `message` lives until the call returns.
            host_call(|| unsafe { f(self.table.user_data, level as i32, message.as_ptr()) })
        }
    }

    fn interface_changed(&self, name: &CStr, address: &CStr, up: bool) {
        if let Some(f) = self.table.interface_changed {
            // SAFETY: as in new_connection; the strings live until the call returns.
            host_call(|| unsafe { f(self.table.user_data, name.as_ptr(), address.as_ptr(), up) })
        }
    }
}

/// Where a callback's request and response are reachable from C while it runs: one slot per
/// `page_request` running now (several at once with inline dispatch), reused afterwards. The
/// pointers C gets are a slot's address; a slot lives as long as the context, so a pointer kept
/// past its callback never reaches freed memory. It finds an empty slot (an error) unless the
/// slot was taken again: with thread and poll dispatch only by a later request, after the
/// callback returned; with inline dispatch possibly by a request running at the same time on
/// another thread, which the stale pointer would then read or answer. The header forbids
/// keeping the pointers; this bounds what a host that does so can break.
pub(crate) struct HttpSlots {
    // Boxed: a slot's address is what C holds, so it must not move when the vector grows.
    #[allow(clippy::vec_box)]
    free: Mutex<Vec<Box<HttpSlot>>>,
}

pub(crate) struct HttpSlot {
    state: Mutex<SlotState>,
}

struct SlotState {
    request: *const HttpRequest,
    response: *mut HttpResponse,
    info: XtConnectionInfo,
    id_text: [u8; 21],
}

// SAFETY: the raw pointers are set only for the duration of a callback (by the thread running
// it) and read under the mutex; the objects they point to outlive that window.
unsafe impl Send for SlotState {}

/// A slot in use; given back (emptied) when dropped, even if the callback's frame unwinds.
struct InUse<'a> {
    slots: &'a HttpSlots,
    slot: Option<Box<HttpSlot>>,
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            {
                let mut st = slot.state.lock();
                st.request = null();
                st.response = null_mut();
                st.info = c_info_empty();
            }
            self.slots.free.lock().push(slot);
        }
    }
}

impl HttpSlots {
    pub(crate) fn new() -> Self {
        HttpSlots {
            free: Mutex::new(Vec::new()),
        }
    }

    /// Makes `request` and `response` reachable through a slot while `call` runs.
    pub(crate) fn run(
        &self,
        request: &HttpRequest,
        response: &mut HttpResponse,
        call: impl FnOnce(*const XtHttpRequest, *mut XtHttpResponse),
    ) {
        let slot = self.free.lock().pop().unwrap_or_else(|| {
            Box::new(HttpSlot {
                state: Mutex::new(SlotState {
                    request: null(),
                    response: null_mut(),
                    info: c_info_empty(),
                    id_text: [0; 21],
                }),
            })
        });
        {
            let mut st = slot.state.lock();
            let st = &mut *st;
            st.request = request;
            st.response = response;
            st.info = c_info(&request.info, &mut st.id_text, 0, c"");
        }
        let handle = &*slot as *const HttpSlot;
        let _in_use = InUse {
            slots: self,
            slot: Some(slot),
        };
        call(handle.cast(), handle as *mut XtHttpResponse);
    }
}

fn c_info_empty() -> XtConnectionInfo {
    XtConnectionInfo {
        remote_address: c"".as_ptr(),
        remote_port: 0,
        peer_port: 0,
        name: c"".as_ptr(),
        mac_address: c"".as_ptr(),
        unique_id: c"".as_ptr(),
        server_id: 0,
        error_number: 0,
        error_message: c"".as_ptr(),
        tls_peer_fingerprint: c"".as_ptr(),
        tls_protocol: c"".as_ptr(),
        message_kind: 0,
    }
}

fn not_in_callback() -> Error {
    Error::invalid_state("HTTP requests and responses are valid only during page_request")
}

/// Runs `f` on the request behind `r`.
///
/// # Safety
/// `r` is NULL or a request pointer xtnet passed to `page_request` (in a context not freed).
pub(crate) unsafe fn with_request<T>(
    r: *const XtHttpRequest,
    f: impl FnOnce(&HttpRequest, &XtConnectionInfo) -> T,
) -> Result<T, Error> {
    if r.is_null() {
        return Err(Error::invalid_argument("the request is NULL"));
    }
    // SAFETY: request pointers are the address of a live HttpSlot (see HttpSlots::run).
    let slot = unsafe { &*(r as *const HttpSlot) };
    let st = slot.state.lock();
    if st.request.is_null() {
        return Err(not_in_callback());
    }
    // SAFETY: non-NULL only while the callback runs, during which the request lives.
    Ok(f(unsafe { &*st.request }, &st.info))
}

/// Runs `f` on the response behind `r`.
///
/// # Safety
/// `r` is NULL or a response pointer xtnet passed to `page_request` (in a context not freed).
pub(crate) unsafe fn with_response(
    r: *mut XtHttpResponse,
    f: impl FnOnce(&mut HttpResponse) -> Result<(), Error>,
) -> Result<(), Error> {
    if r.is_null() {
        return Err(Error::invalid_argument("the response is NULL"));
    }
    // SAFETY: response pointers are the address of a live HttpSlot (see HttpSlots::run).
    let slot = unsafe { &*(r as *const HttpSlot) };
    let st = slot.state.lock();
    let response = st.response;
    if response.is_null() {
        return Err(not_in_callback());
    }
    // SAFETY: non-NULL only while the callback runs, during which the response lives and only
    // this (locked) path writes it.
    f(unsafe { &mut *response })
}

#[cfg(test)]
mod tests {
    #[test]
    fn datagram_kinds_match_the_core() {
        use crate::udp::DatagramKind;
        assert_eq!(super::XT_DGRAM_UNICAST, DatagramKind::Unicast as u32);
        assert_eq!(super::XT_DGRAM_BROADCAST, DatagramKind::Broadcast as u32);
        assert_eq!(super::XT_DGRAM_MULTICAST, DatagramKind::Multicast as u32);
    }

    use super::*;

    #[test]
    fn c_log_levels_are_the_core_levels() {
        assert_eq!(XT_LOG_ERROR, LogLevel::Error as i32);
        assert_eq!(XT_LOG_WARNING, LogLevel::Warning as i32);
        assert_eq!(XT_LOG_INFO, LogLevel::Info as i32);
        assert_eq!(XT_LOG_DEBUG, LogLevel::Debug as i32);
    }
}
