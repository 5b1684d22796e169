//! A test host: drives xtnet only through its C surface (`xtnet::ffi::*`), the way a C, Swift or
//! Python host does, and records every callback.
#![allow(dead_code)]

pub mod http;
pub mod netns;

use parking_lot::{Condvar, Mutex};
use std::collections::HashSet;
use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};
pub use xtnet::ffi::callbacks::*;
pub use xtnet::ffi::context::*;
pub use xtnet::ffi::http::*;
pub use xtnet::ffi::library::*;
pub use xtnet::ffi::options::*;
pub use xtnet::ffi::tcp::*;
#[allow(unused_imports)]
pub use xtnet::ffi::tls::*;
pub use xtnet::ffi::udp::*;
#[allow(unused_imports)]
pub use xtnet::ffi::websocket::*;

/// `XtConnectionInfo` copied out of a callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub remote_address: String,
    pub remote_port: u16,
    pub peer_port: u16,
    pub name: String,
    pub mac_address: String,
    pub unique_id: String,
    pub server_id: u32,
    pub error_number: i32,
    pub error_message: String,
    pub tls_peer_fingerprint: String,
    pub tls_protocol: String,
    pub message_kind: u32,
}

fn text(p: *const c_char) -> String {
    assert!(!p.is_null(), "xtnet passed a NULL string");
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .expect("UTF-8")
        .to_owned()
}

impl Info {
    fn copy(info: *const XtConnectionInfo) -> Info {
        assert!(!info.is_null());
        let i = unsafe { &*info };
        Info {
            remote_address: text(i.remote_address),
            remote_port: i.remote_port,
            peer_port: i.peer_port,
            name: text(i.name),
            mac_address: text(i.mac_address),
            unique_id: text(i.unique_id),
            server_id: i.server_id,
            error_number: i.error_number,
            error_message: text(i.error_message),
            tls_peer_fingerprint: text(i.tls_peer_fingerprint),
            tls_protocol: text(i.tls_protocol),
            message_kind: i.message_kind,
        }
    }
}

/// `XtDatagramInfo` copied out of a callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DgInfo {
    pub remote_address: String,
    pub remote_port: u16,
    pub local_port: u16,
    pub name: String,
    pub mac_address: String,
    pub local_address: String,
    pub interface_name: String,
    pub interface_index: u32,
    pub kind: u32,
}

/// What a `page_request` callback saw, copied out through the accessors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub form: Vec<(String, String)>,
    /// (field, file name, content type, bytes)
    pub files: Vec<(String, String, String, Vec<u8>)>,
    pub info: Info,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Page(u32, Page),
    Datagram(u32, Vec<u8>, DgInfo),
    New(u64, Info),
    Connected(u64, Info),
    Data(u64, Vec<u8>),
    Error(u64, Info),
    Log(i32, String),
    /// interface_changed: (interface, address, up)
    Interface(String, String, bool),
}

impl Ev {
    pub fn id(&self) -> Option<u64> {
        match self {
            Ev::New(id, _) | Ev::Connected(id, _) | Ev::Data(id, _) | Ev::Error(id, _) => Some(*id),
            Ev::Log(..) | Ev::Datagram(..) | Ev::Page(..) | Ev::Interface(..) => None,
        }
    }
}

// Shared (not boxed) so a callback clones its hook out of the lock before calling it: with
// inline dispatch callbacks of different connections run at once, and one that blocks must not
// hold the others.
type NewHook = Arc<dyn Fn(&Recorder, u64, &Info) -> bool + Send + Sync>;
type IdHook = Arc<dyn Fn(&Recorder, u64, &Info) + Send + Sync>;
type DataHook = Arc<dyn Fn(&Recorder, u64, &[u8]) + Send + Sync>;
type MessageHook = Arc<dyn Fn(&Recorder, u64, &[u8], &Info) + Send + Sync>;
type DatagramHook = Arc<dyn Fn(&Recorder, u32, &[u8], &DgInfo) + Send + Sync>;
type PageHook =
    Arc<dyn Fn(&Recorder, u32, &Page, *const XtHttpRequest, *mut XtHttpResponse) + Send + Sync>;

/// The `user_data` of a test context.
#[derive(Default)]
pub struct Recorder {
    pub ctx: AtomicPtr<XtContext>,
    pub events: Mutex<Vec<Ev>>,
    pub changed: Condvar,
    pub releases: AtomicUsize,
    /// What callbacks are running about now (see `enter`).
    pub inside: Mutex<HashSet<u64>>,
    /// Two callbacks ran at once that must not: any two (thread and poll dispatch), two about
    /// one connection or listener (inline dispatch).
    pub overlapped: AtomicBool,
    /// Inline dispatch: callbacks about different things may run at once.
    pub concurrent: AtomicBool,
    pub threads: Mutex<HashSet<ThreadId>>,
    pub on_new: Mutex<Option<NewHook>>,
    pub on_connected: Mutex<Option<IdHook>>,
    pub on_data: Mutex<Option<DataHook>>,
    /// As `on_data`, with the event's info (a WebSocket message's kind).
    pub on_message: Mutex<Option<MessageHook>>,
    pub on_error: Mutex<Option<IdHook>>,
    pub on_datagram: Mutex<Option<DatagramHook>>,
    pub on_page: Mutex<Option<PageHook>>,
    /// Set to skip recording data events (for tests that move a lot of data).
    pub skip_data: AtomicBool,
    /// When set, the info of every `data_available` is kept in `data_info`.
    pub keep_data_info: AtomicBool,
    pub data_info: Mutex<Vec<(u64, Info)>>,
}

impl Recorder {
    pub fn ctx(&self) -> *mut XtContext {
        self.ctx.load(Ordering::SeqCst)
    }

    /// A callback about `subject` (a connection or listener id, `LANE` for log and
    /// interface lines, None for what may overlap even itself: HTTP requests) starts.
    fn enter(&self, subject: Option<u64>) {
        if let Some(key) = self.key(subject) {
            if !self.inside.lock().insert(key) {
                self.overlapped.store(true, Ordering::SeqCst);
            }
        }
        self.threads.lock().insert(std::thread::current().id());
    }

    fn leave(&self, subject: Option<u64>) {
        if let Some(key) = self.key(subject) {
            self.inside.lock().remove(&key);
        }
    }

    fn key(&self, subject: Option<u64>) -> Option<u64> {
        if self.concurrent.load(Ordering::SeqCst) {
            subject
        } else {
            Some(u64::MAX) // one at a time, whatever it is about
        }
    }

    fn push(&self, ev: Ev) {
        self.events.lock().push(ev);
        self.changed.notify_all();
    }

    pub fn send(&self, id: u64, data: &[u8]) -> i32 {
        unsafe { xt_send_data(self.ctx(), id, data.as_ptr(), data.len()) }
    }
}

fn rec<'a>(user_data: *mut c_void) -> &'a Recorder {
    unsafe { &*(user_data as *const Recorder) }
}

unsafe extern "C" fn cb_release(user_data: *mut c_void) {
    let r = unsafe { Arc::from_raw(user_data as *const Recorder) };
    r.releases.fetch_add(1, Ordering::SeqCst);
    r.changed.notify_all();
}

unsafe extern "C" fn cb_new(
    user_data: *mut c_void,
    id: u64,
    info: *const XtConnectionInfo,
) -> bool {
    let r = rec(user_data);
    r.enter(Some(id));
    let info = Info::copy(info);
    r.push(Ev::New(id, info.clone()));
    let hook = r.on_new.lock().clone();
    let accept = match hook {
        Some(hook) => hook(r, id, &info),
        None => true,
    };
    r.leave(Some(id));
    accept
}

unsafe extern "C" fn cb_connected(user_data: *mut c_void, id: u64, info: *const XtConnectionInfo) {
    let r = rec(user_data);
    r.enter(Some(id));
    let info = Info::copy(info);
    r.push(Ev::Connected(id, info.clone()));
    let hook = r.on_connected.lock().clone();
    if let Some(hook) = hook {
        hook(r, id, &info);
    }
    r.leave(Some(id));
}

unsafe extern "C" fn cb_data(
    user_data: *mut c_void,
    data: *const u8,
    len: usize,
    id: u64,
    info: *const XtConnectionInfo,
) {
    let r = rec(user_data);
    r.enter(Some(id));
    let info = Info::copy(info);
    if r.keep_data_info.load(Ordering::Relaxed) {
        r.data_info.lock().push((id, info.clone()));
    }
    let bytes = if len == 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
    };
    let hook = r.on_data.lock().clone();
    if let Some(hook) = hook {
        hook(r, id, &bytes);
    }
    let hook = r.on_message.lock().clone();
    if let Some(hook) = hook {
        hook(r, id, &bytes, &info);
    }
    if !r.skip_data.load(Ordering::Relaxed) {
        r.push(Ev::Data(id, bytes));
    }
    r.leave(Some(id));
}

unsafe extern "C" fn cb_error(user_data: *mut c_void, id: u64, info: *const XtConnectionInfo) {
    let r = rec(user_data);
    r.enter(Some(id));
    let info = Info::copy(info);
    r.push(Ev::Error(id, info.clone()));
    let hook = r.on_error.lock().clone();
    if let Some(hook) = hook {
        hook(r, id, &info);
    }
    r.leave(Some(id));
}

unsafe extern "C" fn cb_datagram(
    user_data: *mut c_void,
    server_id: u32,
    data: *const u8,
    len: usize,
    info: *const XtDatagramInfo,
) {
    let r = rec(user_data);
    r.enter(Some(server_id as u64));
    assert!(!info.is_null());
    let i = unsafe { &*info };
    let info = DgInfo {
        remote_address: text(i.remote_address),
        remote_port: i.remote_port,
        local_port: i.local_port,
        name: text(i.name),
        mac_address: text(i.mac_address),
        local_address: text(i.local_address),
        interface_name: text(i.interface_name),
        interface_index: i.interface_index,
        kind: i.kind,
    };
    let bytes = if len == 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
    };
    let hook = r.on_datagram.lock().clone();
    if let Some(hook) = hook {
        hook(r, server_id, &bytes, &info);
    }
    if !r.skip_data.load(Ordering::Relaxed) {
        r.push(Ev::Datagram(server_id, bytes, info));
    }
    r.leave(Some(server_id as u64));
}

fn pairs(
    count: usize,
    at: impl Fn(usize, *mut *const c_char, *mut *const c_char) -> bool,
) -> Vec<(String, String)> {
    (0..count)
        .map(|i| {
            let (mut k, mut v) = (std::ptr::null(), std::ptr::null());
            assert!(at(i, &mut k, &mut v));
            (text(k), text(v))
        })
        .collect()
}

/// Reads everything about a request through the C accessors.
pub fn read_page(r: *const XtHttpRequest) -> Page {
    unsafe {
        let mut len = 0usize;
        let body = xt_http_request_body(r, &mut len);
        assert!(!body.is_null());
        let body = if len == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(body, len).to_vec()
        };
        let files = (0..xt_http_request_file_count(r))
            .map(|i| {
                let (mut f, mut n, mut c, mut d, mut l) = (
                    std::ptr::null(),
                    std::ptr::null(),
                    std::ptr::null(),
                    std::ptr::null(),
                    0usize,
                );
                assert!(xt_http_request_file_at(
                    r, i, &mut f, &mut n, &mut c, &mut d, &mut l
                ));
                let data = if l == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(d, l).to_vec()
                };
                (text(f), text(n), text(c), data)
            })
            .collect();
        Page {
            method: text(xt_http_request_method(r)),
            path: text(xt_http_request_path(r)),
            query: text(xt_http_request_query(r)),
            headers: pairs(xt_http_request_header_count(r), |i, k, v| {
                xt_http_request_header_at(r, i, k, v)
            }),
            body,
            form: pairs(xt_http_request_form_count(r), |i, k, v| {
                xt_http_request_form_at(r, i, k, v)
            }),
            files,
            info: Info::copy(xt_http_request_info(r)),
        }
    }
}

unsafe extern "C" fn cb_page(
    user_data: *mut c_void,
    server_id: u32,
    request: *const XtHttpRequest,
    response: *mut XtHttpResponse,
) {
    let r = rec(user_data);
    r.enter(None);
    let page = read_page(request);
    let hook = r.on_page.lock().clone();
    match hook {
        Some(hook) => hook(r, server_id, &page, request, response),
        None => {
            let body = format!("{} {}", page.method, page.path);
            assert_eq!(
                unsafe { xt_http_response_set_body(response, body.as_ptr(), body.len()) },
                XT_OK
            );
        }
    }
    r.push(Ev::Page(server_id, page));
    r.leave(None);
}

unsafe extern "C" fn cb_log(user_data: *mut c_void, level: i32, message: *const c_char) {
    let r = rec(user_data);
    r.enter(Some(LANE));
    r.push(Ev::Log(level, text(message)));
    r.leave(Some(LANE));
}

unsafe extern "C" fn cb_interface(
    user_data: *mut c_void,
    name: *const c_char,
    address: *const c_char,
    up: bool,
) {
    let r = rec(user_data);
    r.enter(Some(LANE));
    r.push(Ev::Interface(text(name), text(address), up));
    r.leave(Some(LANE));
}

/// The subject of log and interface callbacks (they run one at a time, in order).
pub const LANE: u64 = u64::MAX - 1;

/// A context with a recording host. Freed on drop (if the test did not free it).
pub struct Ctx {
    pub ptr: *mut XtContext,
    pub rec: Arc<Recorder>,
    /// Poll dispatch run for the suite: a host thread calling xt_poll until the context goes.
    pump: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

/// The dispatch mode the suites run in: `XTNET_TEST_DISPATCH` = thread (default), inline or
/// poll (`make test` runs the key suites in all three).
pub fn suite_dispatch() -> XtDispatch {
    match std::env::var("XTNET_TEST_DISPATCH").as_deref() {
        Ok("inline") => XtDispatch::XT_DISPATCH_INLINE,
        Ok("poll") => XtDispatch::XT_DISPATCH_POLL,
        Ok("thread") | Err(_) => XtDispatch::XT_DISPATCH_THREAD,
        Ok(other) => panic!("XTNET_TEST_DISPATCH={other}: use thread, inline or poll"),
    }
}

unsafe impl Send for Ctx {}
unsafe impl Sync for Ctx {}

pub fn table(rec: &Arc<Recorder>) -> XtCallbacks {
    XtCallbacks {
        struct_size: std::mem::size_of::<XtCallbacks>() as u32,
        user_data: Arc::into_raw(rec.clone()) as *mut c_void,
        release: Some(cb_release),
        new_connection: Some(cb_new),
        connected: Some(cb_connected),
        data_available: Some(cb_data),
        socket_error: Some(cb_error),
        received_datagram: Some(cb_datagram),
        page_request: Some(cb_page),
        log: Some(cb_log),
        interface_changed: Some(cb_interface),
    }
}

impl Ctx {
    pub fn new(dispatch: XtDispatch) -> Ctx {
        let rec = Arc::new(Recorder::default());
        let t = table(&rec);
        let ptr = unsafe { xt_context_new(&t, dispatch as u32) };
        assert!(
            !ptr.is_null(),
            "xt_context_new failed: {}",
            last_error_text()
        );
        rec.ctx.store(ptr, Ordering::SeqCst);
        rec.concurrent.store(
            matches!(dispatch, XtDispatch::XT_DISPATCH_INLINE),
            Ordering::SeqCst,
        );
        Ctx {
            ptr,
            rec,
            pump: None,
        }
    }

    /// A context in the suite's dispatch mode (see `suite_dispatch`); in poll mode a host
    /// thread runs the callbacks, as a run loop would.
    pub fn for_suite() -> Ctx {
        let dispatch = suite_dispatch();
        let mut ctx = Ctx::new(dispatch);
        if matches!(dispatch, XtDispatch::XT_DISPATCH_POLL) {
            let stop = Arc::new(AtomicBool::new(false));
            let (flag, ptr) = (stop.clone(), ctx.ptr as usize);
            let thread = std::thread::spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    unsafe { xt_poll(ptr as *mut XtContext, 10) };
                }
            });
            ctx.pump = Some((stop, thread));
        }
        ctx
    }

    /// A context the test made itself (with its own table), freed on drop.
    pub fn adopt(ptr: *mut XtContext, rec: Arc<Recorder>) -> Ctx {
        rec.ctx.store(ptr, Ordering::SeqCst);
        Ctx {
            ptr,
            rec,
            pump: None,
        }
    }

    /// Whether a host thread of this harness runs xt_poll (nobody else may then).
    pub fn pumped(&self) -> bool {
        self.pump.is_some()
    }

    pub fn free(&mut self) {
        if let Some((stop, thread)) = self.pump.take() {
            stop.store(true, Ordering::SeqCst);
            thread.join().unwrap();
        }
        if !self.ptr.is_null() {
            unsafe { xt_context_free(self.ptr) };
            self.ptr = std::ptr::null_mut();
        }
    }

    pub fn set(&self, option: u32, value: i64) {
        assert_eq!(unsafe { xt_set_option(self.ptr, option, value) }, XT_OK);
    }

    /// A listener on a free port with `boundary`; returns (id, port).
    pub fn listen(&self, boundary: &[u8]) -> (u32, u16) {
        let id = unsafe { xt_start_tcp_listener(self.ptr, 0, boundary.as_ptr(), boundary.len()) };
        assert_ne!(id, 0, "listener failed: {}", last_error_text());
        let port = unsafe { xt_listener_port(self.ptr, id) };
        assert_ne!(port, 0);
        (id, port)
    }

    pub fn send(&self, id: u64, data: &[u8]) -> i32 {
        self.rec.send(id, data)
    }

    pub fn connect(&self, host: &str, port: u16, boundary: &[u8]) -> u64 {
        let h = CString::new(host).unwrap();
        unsafe {
            xt_open_tcp_connection(
                self.ptr,
                h.as_ptr(),
                port,
                boundary.as_ptr(),
                boundary.len(),
            )
        }
    }

    pub fn events(&self) -> Vec<Ev> {
        self.rec.events.lock().clone()
    }

    /// Events about one connection, in order.
    pub fn events_of(&self, id: u64) -> Vec<Ev> {
        self.events()
            .into_iter()
            .filter(|e| e.id() == Some(id))
            .collect()
    }

    /// Waits until `pred` holds over the events recorded so far (pumping xt_poll in poll mode).
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[Ev]) -> bool,
    ) -> Vec<Ev> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut evs = self.rec.events.lock();
                if pred(&evs) {
                    return evs.clone();
                }
                if Instant::now() >= deadline {
                    panic!("timed out waiting for {what}; events: {:#?}", &*evs);
                }
                if self.pumped() || unsafe { xt_wakeup_fd(self.ptr) } < 0 {
                    self.rec
                        .changed
                        .wait_for(&mut evs, Duration::from_millis(20));
                    continue;
                }
            }
            unsafe { xt_poll(self.ptr, 20) };
        }
    }

    /// Waits for the final event of `id` and returns its info.
    /// Waits for an outgoing connection's first event; its info when it is `connected`
    /// (panics on a `socket_error` instead).
    pub fn wait_connected(&self, id: u64) -> Info {
        let evs = self.wait_until("connected", Duration::from_secs(15), |evs| {
            evs.iter()
                .any(|e| matches!(e, Ev::Connected(i, _) | Ev::Error(i, _) if *i == id))
        });
        match evs.into_iter().find(|e| e.id() == Some(id)).unwrap() {
            Ev::Connected(_, info) => info,
            other => panic!("expected connected, got {other:?}"),
        }
    }

    pub fn wait_closed(&self, id: u64) -> Info {
        let evs = self.wait_until(
            &format!("socket_error of {id}"),
            Duration::from_secs(10),
            |evs| evs.iter().any(|e| matches!(e, Ev::Error(i, _) if *i == id)),
        );
        evs.into_iter()
            .find_map(|e| match e {
                Ev::Error(i, info) if i == id => Some(info),
                _ => None,
            })
            .unwrap()
    }

    /// Waits for the next new connection after `seen` and returns its id and info.
    pub fn wait_new(&self, seen: usize) -> (u64, Info) {
        let evs = self.wait_until("new_connection", Duration::from_secs(10), |evs| {
            evs.iter().filter(|e| matches!(e, Ev::New(..))).count() > seen
        });
        evs.into_iter()
            .filter_map(|e| match e {
                Ev::New(id, info) => Some((id, info)),
                _ => None,
            })
            .nth(seen)
            .unwrap()
    }

    /// Concatenated data received on `id`.
    pub fn data_of(&self, id: u64) -> Vec<Vec<u8>> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Data(i, d) if i == id => Some(d),
                _ => None,
            })
            .collect()
    }

    pub fn on_new(&self, f: impl Fn(&Recorder, u64, &Info) -> bool + Send + Sync + 'static) {
        *self.rec.on_new.lock() = Some(Arc::new(f));
    }
    pub fn on_connected(&self, f: impl Fn(&Recorder, u64, &Info) + Send + Sync + 'static) {
        *self.rec.on_connected.lock() = Some(Arc::new(f));
    }
    pub fn on_message(&self, f: impl Fn(&Recorder, u64, &[u8], &Info) + Send + Sync + 'static) {
        *self.rec.on_message.lock() = Some(Arc::new(f));
    }
    pub fn on_data(&self, f: impl Fn(&Recorder, u64, &[u8]) + Send + Sync + 'static) {
        *self.rec.on_data.lock() = Some(Arc::new(f));
    }
    pub fn on_page(
        &self,
        f: impl Fn(&Recorder, u32, &Page, *const XtHttpRequest, *mut XtHttpResponse)
            + Send
            + Sync
            + 'static,
    ) {
        *self.rec.on_page.lock() = Some(Arc::new(f));
    }

    /// An HTTP listener on a free port; returns (id, port).
    pub fn html(&self) -> (u32, u16) {
        let id = unsafe { xt_start_html_listener(self.ptr, 0) };
        assert_ne!(id, 0, "HTML listener failed: {}", last_error_text());
        (id, unsafe { xt_listener_port(self.ptr, id) })
    }

    /// Requests the callbacks saw, in order.
    pub fn pages(&self) -> Vec<Page> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Page(_, p) => Some(p),
                _ => None,
            })
            .collect()
    }

    pub fn on_datagram(&self, f: impl Fn(&Recorder, u32, &[u8], &DgInfo) + Send + Sync + 'static) {
        *self.rec.on_datagram.lock() = Some(Arc::new(f));
    }

    /// A UDP listener on `port` (0: any); returns (id, port).
    pub fn udp(&self, port: u16) -> (u32, u16) {
        let id = unsafe { xt_start_udp_listener(self.ptr, port) };
        assert_ne!(id, 0, "UDP listener failed: {}", last_error_text());
        let port = unsafe { xt_listener_port(self.ptr, id) };
        assert_ne!(port, 0);
        (id, port)
    }

    pub fn send_to(&self, server_id: u32, address: &str, port: u16, data: &[u8]) -> i32 {
        let a = CString::new(address).unwrap();
        unsafe {
            xt_send_datagram(
                self.ptr,
                server_id,
                a.as_ptr(),
                port,
                data.as_ptr(),
                data.len(),
            )
        }
    }

    /// Datagrams received so far, in order.
    pub fn datagrams(&self) -> Vec<(u32, Vec<u8>, DgInfo)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Datagram(id, d, i) => Some((id, d, i)),
                _ => None,
            })
            .collect()
    }

    /// Waits until `n` datagrams have arrived in all.
    pub fn wait_datagrams(&self, n: usize) -> Vec<(u32, Vec<u8>, DgInfo)> {
        self.wait_until(&format!("{n} datagrams"), Duration::from_secs(10), |evs| {
            evs.iter().filter(|e| matches!(e, Ev::Datagram(..))).count() >= n
        });
        self.datagrams()
    }

    pub fn on_error(&self, f: impl Fn(&Recorder, u64, &Info) + Send + Sync + 'static) {
        *self.rec.on_error.lock() = Some(Arc::new(f));
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.free();
    }
}

pub fn last_error_text() -> String {
    format!("{} {}", xt_last_error(), text(xt_last_error_message()))
}

/// A client socket to a local port with read timeouts.
pub fn client(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads exactly `n` bytes.
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).expect("read_exact");
    buf
}

/// Reads until EOF (or error), returning what came.
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf
}

pub fn write_all(s: &mut TcpStream, data: &[u8]) {
    s.write_all(data).expect("write_all");
}

/// Echoes each message back with `boundary` from inside data_available.
pub fn echo_with(ctx: &Ctx, boundary: &'static [u8]) {
    ctx.on_data(move |r, id, data| {
        let mut reply = data.to_vec();
        reply.extend_from_slice(boundary);
        assert_eq!(r.send(id, &reply), XT_OK);
    });
}
