//! The HTTP request path, the way a client reaches it: the input is written to a real HTML
//! listener on loopback (one context for the whole run), the write side closed, and the answer
//! read. Whatever the bytes, the server answers with an HTTP/1.1 status line or closes, the host
//! callback sees only complete requests, and the process neither crashes nor grows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::CStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;
use xtnet::ffi::callbacks::{XtCallbacks, XtHttpRequest, XtHttpResponse};
use xtnet::ffi::context::{xt_context_new, XtContext};
use xtnet::ffi::http::*;
use xtnet::ffi::options::*;
use xtnet::ffi::tcp::xt_listener_port;

unsafe extern "C" fn page(
    _ud: *mut std::ffi::c_void,
    _server: u32,
    req: *const XtHttpRequest,
    resp: *mut XtHttpResponse,
) {
    // Touch everything a host might read.
    unsafe {
        let path = CStr::from_ptr(xt_http_request_path(req));
        let mut len = 0;
        let body = xt_http_request_body(req, &mut len);
        assert!(len == 0 || !body.is_null());
        for i in 0..xt_http_request_form_count(req) {
            let (mut k, mut v) = (std::ptr::null(), std::ptr::null());
            assert!(xt_http_request_form_at(req, i, &mut k, &mut v));
        }
        for i in 0..xt_http_request_header_count(req) {
            let (mut k, mut v) = (std::ptr::null(), std::ptr::null());
            assert!(xt_http_request_header_at(req, i, &mut k, &mut v));
        }
        let text = path.to_bytes();
        xt_http_response_set_body(resp, text.as_ptr(), text.len());
    }
}

/// The context (alive for the whole run) and its listener's port.
struct Server(#[allow(dead_code)] *mut XtContext, u16);
unsafe impl Send for Server {}
unsafe impl Sync for Server {}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| unsafe {
        let mut cb: XtCallbacks = std::mem::zeroed();
        cb.struct_size = std::mem::size_of::<XtCallbacks>() as u32;
        cb.page_request = Some(page);
        let ctx = xt_context_new(&cb, 0);
        xt_set_option(ctx, XT_OPT_HTTP_REQUEST_TIMEOUT_MS, 200);
        xt_set_option(ctx, XT_OPT_HTTP_MAX_BODY_BYTES, 64 << 10);
        let id = xtnet::ffi::http::xt_start_html_listener(ctx, 0);
        Server(ctx, xt_listener_port(ctx, id))
    })
}

fuzz_target!(|input: &[u8]| {
    let s = server();
    let mut c = TcpStream::connect(("127.0.0.1", s.1)).expect("the listener is up");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(input);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "not an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(80)])
    );
});
