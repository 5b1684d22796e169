//! The HTTP server through the C surface, with raw HTTP on real sockets: request details and
//! forms, inline answers, HTTP/1.1 behaviour, limits, misuse, dispatch modes, stopping.
//! (curl, Python and a browser drive the C example in tests/http_clients.rs.)

mod common;
use common::http::{closed, connect, read_response, request};
use common::*;
use std::ffi::CStr;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn set_body(resp: *mut XtHttpResponse, body: &str) {
    assert_eq!(
        unsafe { xt_http_response_set_body(resp, body.as_ptr(), body.len()) },
        XT_OK
    );
}

#[test]
fn get_with_query_sees_decoded_path_raw_query_fields_headers_and_requester() {
    let ctx = Ctx::for_suite();
    let (server, port) = ctx.html();
    let mut s = connect(port);
    let client_port = s.local_addr().unwrap().port();
    s.write_all(b"GET /status%20page/x?room=kitchen&level=50%25&msg=a+b HTTP/1.1\r\nHost: hub\r\nX-Custom: Yes\r\n\r\n").unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 200, "no status set means 200");
    assert_eq!(r.body, b"GET /status page/x");
    assert_eq!(r.header("content-length"), Some("18"));
    assert!(r.header("date").is_some(), "a Date header");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = &ctx.pages()[0];
    assert_eq!(
        page.path, "/status page/x",
        "percent-decoded, without the query"
    );
    assert_eq!(
        page.query, "room=kitchen&level=50%25&msg=a+b",
        "raw, without '?'"
    );
    assert_eq!(
        page.form,
        vec![
            ("room".into(), "kitchen".into()),
            ("level".into(), "50%".into()),
            ("msg".into(), "a b".into())
        ]
    );
    assert!(page.headers.contains(&("x-custom".into(), "Yes".into())));
    assert_eq!(page.info.remote_address, "127.0.0.1");
    assert_eq!(page.info.peer_port, client_port);
    assert_eq!(page.info.remote_port, port);
    assert_eq!(page.info.server_id, server);
}

#[test]
fn header_and_form_lookups() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    ctx.on_page(move |_, _, _, req, _| unsafe {
        let get = |p: *const std::ffi::c_char| {
            if p.is_null() {
                None
            } else {
                Some(std::ffi::CStr::from_ptr(p).to_str().unwrap().to_owned())
            }
        };
        s2.lock()
            .push(get(xt_http_request_header(req, c"USER-AGENT".as_ptr())));
        s2.lock()
            .push(get(xt_http_request_header(req, c"absent".as_ptr())));
        s2.lock()
            .push(get(xt_http_request_form_value(req, c"b".as_ptr())));
        s2.lock()
            .push(get(xt_http_request_form_value(req, c"zz".as_ptr())));
    });
    request(
        port,
        b"GET /?a=1&b=2&b=3 HTTP/1.1\r\nHost: x\r\nUser-Agent: test-agent\r\n\r\n",
    );
    assert_eq!(
        *seen.lock(),
        vec![
            Some("test-agent".to_owned()),
            None,
            Some("2".to_owned()),
            None
        ],
        "headers any case, first form match, NULL when absent"
    );
}

#[test]
fn post_urlencoded_and_multipart_with_a_file() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    let form = b"name=Porch+Light&level=%3E50&empty=";
    let req = format!(
        "POST /save?from=query HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        form.len()
    );
    let mut raw = req.into_bytes();
    raw.extend_from_slice(form);
    assert_eq!(request(port, &raw).status, 200);
    let page = &ctx.pages()[0];
    assert_eq!(page.body, form);
    assert_eq!(
        page.form,
        vec![
            ("from".into(), "query".into()),
            ("name".into(), "Porch Light".into()),
            ("level".into(), ">50".into()),
            ("empty".into(), "".into())
        ]
    );
    let file: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut body = Vec::new();
    body.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nMy Scene\r\n",
    );
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"scene.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n");
    body.extend_from_slice(&file);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let mut raw = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    assert_eq!(request(port, &raw).status, 200);
    let page = &ctx.pages()[1];
    assert_eq!(
        page.form,
        vec![("title".into(), "My Scene".into())],
        "text fields are form fields"
    );
    assert_eq!(page.files.len(), 1);
    let (field, name, ctype, data) = &page.files[0];
    assert_eq!(
        (field.as_str(), name.as_str(), ctype.as_str()),
        ("upload", "scene.bin", "application/octet-stream")
    );
    assert!(*data == file, "the file's bytes exactly");
}

#[test]
fn head_keep_alive_pipelining_chunked_and_expect_continue() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    // HEAD: no body, the Content-Length of the GET.
    let head = request(port, b"HEAD /page HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some("10"),
        "as for GET /page"
    );
    let mut s = connect(port);
    s.write_all(b"HEAD /page HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    read_response(&mut s, true).unwrap();
    assert_eq!(
        read_response(&mut s, false).unwrap().body,
        b"GET /after",
        "no body bytes after HEAD"
    );
    // Keep-alive and pipelining: three requests in one write, answered in order.
    let mut s = connect(port);
    s.write_all(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    for i in 1..=3 {
        assert_eq!(
            read_response(&mut s, false).unwrap().body,
            format!("GET /{i}").as_bytes()
        );
    }
    s.write_all(b"GET /4 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(
        read_response(&mut s, false).unwrap().body,
        b"GET /4",
        "the connection was kept alive"
    );
    // A chunked request body.
    s.write_all(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    assert_eq!(ctx.pages().last().unwrap().body, b"hello world");
    // Expect: 100-continue: the server invites the body first.
    s.write_all(
        b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 100);
    s.write_all(b"body").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    assert_eq!(ctx.pages().last().unwrap().body, b"body");
    // Connection: close is honoured.
    s.write_all(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    assert!(closed(&mut s));
}

#[test]
fn status_headers_and_body_set_inline_and_bad_values_refused() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    let codes = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let c2 = codes.clone();
    ctx.on_page(move |_, _, _, _, resp| unsafe {
        let mut c = c2.lock();
        c.push(xt_http_response_set_status(resp, 99));
        c.push(xt_http_response_set_status(resp, 1000));
        c.push(xt_http_response_add_header(
            resp,
            c"Content-Length".as_ptr(),
            c"5".as_ptr(),
        ));
        c.push(xt_http_response_add_header(
            resp,
            c"bad name".as_ptr(),
            c"x".as_ptr(),
        ));
        c.push(xt_http_response_add_header(
            resp,
            c"X-Ok".as_ptr(),
            c"bad\nvalue".as_ptr(),
        ));
        c.push(xt_http_response_add_header(
            resp,
            std::ptr::null(),
            c"x".as_ptr(),
        ));
        c.push(xt_http_response_set_body(resp, std::ptr::null(), 3));
        c.push(xt_http_response_set_status(resp, 201));
        c.push(xt_http_response_add_header(
            resp,
            c"Set-Cookie".as_ptr(),
            c"a=1".as_ptr(),
        ));
        c.push(xt_http_response_add_header(
            resp,
            c"Set-Cookie".as_ptr(),
            c"b=2".as_ptr(),
        ));
        c.push(xt_http_response_add_header(
            resp,
            c"Content-Type".as_ptr(),
            c"application/json".as_ptr(),
        ));
        set_body(resp, "{\"ok\":true}");
    });
    let r = request(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let e = XT_ERR_INVALID_ARGUMENT;
    assert_eq!(
        *codes.lock(),
        vec![e, e, e, e, e, e, e, XT_OK, XT_OK, XT_OK, XT_OK]
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.body, b"{\"ok\":true}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let cookies: Vec<_> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .collect();
    assert_eq!(cookies.len(), 2, "headers with one name are all kept");
}

#[test]
fn no_page_request_callback_answers_404() {
    let rec = Arc::new(Recorder::default());
    let mut t = table(&rec);
    t.page_request = None;
    let ptr = unsafe { xt_context_new(&t, 0) };
    let ctx = Ctx::adopt(ptr, rec);
    let (_, port) = ctx.html();
    assert_eq!(
        request(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status,
        404
    );
}

#[test]
fn request_and_response_cannot_be_used_after_the_callback() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    let kept = Arc::new(parking_lot::Mutex::new((0usize, 0usize)));
    let k2 = kept.clone();
    ctx.on_page(move |_, _, _, req, resp| {
        *k2.lock() = (req as usize, resp as usize);
    });
    request(port, b"GET /once HTTP/1.1\r\nHost: x\r\n\r\n");
    let (req, resp) = *kept.lock();
    let (req, resp) = (req as *const XtHttpRequest, resp as *mut XtHttpResponse);
    unsafe {
        assert!(xt_http_request_path(req).is_null());
        assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
        assert!(xt_http_request_info(req).is_null());
        assert_eq!(xt_http_request_header_count(req), 0);
        let mut len = 7usize;
        assert!(xt_http_request_body(req, &mut len).is_null());
        assert_eq!(xt_http_response_set_status(resp, 500), XT_ERR_INVALID_STATE);
        assert_eq!(
            xt_http_response_set_body(resp, b"x".as_ptr(), 1),
            XT_ERR_INVALID_STATE
        );
        assert!(xt_http_request_method(std::ptr::null()).is_null());
        assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT);
    }
}

#[test]
fn list_accessors_refuse_bad_indexes_and_null_outputs() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    ctx.on_page(move |_, _, _, req, _| unsafe {
        let (mut k, mut v) = (std::ptr::null(), std::ptr::null());
        let mut out = s2.lock();
        let n = xt_http_request_header_count(req);
        out.push((
            xt_http_request_header_at(req, n, &mut k, &mut v),
            xt_last_error(),
        ));
        out.push((
            xt_http_request_header_at(req, 0, std::ptr::null_mut(), &mut v),
            xt_last_error(),
        ));
        let f = xt_http_request_form_count(req);
        out.push((xt_http_request_form_at(req, f - 1, &mut k, &mut v), 0));
        out.push((
            CStr::from_ptr(k).to_bytes() == b"b" && CStr::from_ptr(v).to_bytes() == b"2 3",
            0,
        ));
        out.push((
            xt_http_request_form_at(req, f, &mut k, &mut v),
            xt_last_error(),
        ));
        out.push((
            xt_http_request_form_at(req, 0, &mut k, std::ptr::null_mut()),
            xt_last_error(),
        ));
    });
    request(port, b"GET /?a=1&b=2+3 HTTP/1.1\r\nHost: x\r\n\r\n");
    let e = XT_ERR_INVALID_ARGUMENT;
    assert_eq!(
        *seen.lock(),
        vec![
            (false, e),
            (false, e),
            (true, 0),
            (true, 0),
            (false, e),
            (false, e)
        ],
        "past the end and NULL outputs fail with 1001; the last field is read"
    );
}

#[test]
fn limits_answer_431_413_408_400_and_the_host_is_not_asked() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_HTTP_MAX_HEADER_BYTES, 2048);
    ctx.set(XT_OPT_HTTP_MAX_BODY_BYTES, 1000);
    ctx.set(XT_OPT_HTTP_REQUEST_TIMEOUT_MS, 500);
    let (_, port) = ctx.html();
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(3000)
    );
    assert_eq!(
        request(port, big_header.as_bytes()).status,
        431,
        "past our limit"
    );
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20000)
    );
    assert_eq!(
        request(port, huge_header.as_bytes()).status,
        431,
        "past hyper's buffer"
    );
    // A declared body past the limit: 413 at once, before the client sends it, no 100.
    let mut s = connect(port);
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 413);
    assert!(closed(&mut s));
    // A chunked body that grows past the limit.
    let mut s = connect(port);
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = format!("400\r\n{}\r\n", "b".repeat(1024));
    let _ = s.write_all(chunk.as_bytes());
    assert_eq!(read_response(&mut s, false).unwrap().status, 413);
    // A head that never completes (slowloris): 408, then closed.
    let start = Instant::now();
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 408);
    assert!(
        r.header("date").is_some() && r.header("content-length") == Some("0"),
        "{r:?}"
    );
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert!(closed(&mut s));
    // An idle keep-alive connection is just closed.
    let mut s = connect(port);
    assert!(closed(&mut s));
    // Garbage: 400 without calling the host.
    assert_eq!(request(port, b"NOT HTTP AT ALL\r\n\r\n").status, 400);
    assert!(
        ctx.pages().is_empty(),
        "the host saw none of these: {:?}",
        ctx.pages()
    );
}

#[test]
fn trickling_connections_do_not_stop_a_normal_client() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    let mut slow: Vec<_> = (0..500).map(|_| connect(port)).collect();
    for (i, s) in slow.iter_mut().enumerate() {
        s.write_all(format!("GET /slow{i} HTTP/1.1\r\nHost: x\r\n").as_bytes())
            .unwrap();
    }
    let start = Instant::now();
    let r = request(port, b"GET /normal HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.body, b"GET /normal");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    drop(slow);
}

#[test]
fn poll_mode_answers_inside_xt_poll() {
    let ctx = Ctx::new(XtDispatch::XT_DISPATCH_POLL);
    let (_, port) = ctx.html();
    let client =
        std::thread::spawn(move || request(port, b"GET /polled HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!client.is_finished(), "nothing answers before xt_poll");
    ctx.wait_until("the page request", Duration::from_secs(10), |evs| {
        evs.iter().any(|e| matches!(e, Ev::Page(..)))
    });
    assert_eq!(client.join().unwrap().body, b"GET /polled");
    assert_eq!(
        *ctx.rec.threads.lock(),
        [std::thread::current().id()].into_iter().collect()
    );
}

#[test]
fn stop_closes_connections_and_no_callback_runs_after() {
    let ctx = Arc::new(Ctx::for_suite());
    let (server, port) = ctx.html();
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    ctx.on_page(move |_, _, page, _, resp| {
        c2.fetch_add(1, Ordering::SeqCst);
        if page.path == "/slow" {
            std::thread::sleep(Duration::from_millis(300));
        }
        set_body(resp, "done");
    });
    let mut idle = connect(port);
    let slow = std::thread::spawn(move || request(port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    // Wait until the slow callback is running (it sleeps 300 ms once it has counted itself).
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the slow request never reached the host"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(unsafe { xt_stop_html_listener(ctx.ptr, server) });
    let after = calls.load(Ordering::SeqCst);
    assert_eq!(after, 1, "stop waited for the running callback");
    assert_eq!(
        slow.join().unwrap().body,
        b"done",
        "the running request was answered"
    );
    assert!(closed(&mut idle), "connections are closed");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is closed"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(calls.load(Ordering::SeqCst), after);
    assert!(!unsafe { xt_stop_html_listener(ctx.ptr, server) });
    assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
}

#[test]
fn stop_from_inside_the_callback() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    ctx.on_page(|r, server, _, _, resp| {
        assert!(unsafe { xt_stop_html_listener(r.ctx(), server) });
        set_body(resp, "last");
    });
    let r = request(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.status == 200 || r.status == 503, "{r:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn wrong_kind_and_bad_ids() {
    let ctx = Ctx::for_suite();
    let (tcp, _) = ctx.listen(b"\n");
    let (http, _) = ctx.html();
    unsafe {
        assert!(!xt_stop_html_listener(ctx.ptr, tcp));
        assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
        assert!(!xt_stop_tcp_listener(ctx.ptr, http));
        assert!(!xt_stop_udp_listener(ctx.ptr, http));
        assert!(!xt_stop_html_listener(ctx.ptr, 0));
        assert!(!xt_stop_html_listener(std::ptr::null_mut(), http));
        assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT);
        assert_eq!(xt_start_html_listener(ctx.ptr, 443), 0);
        assert_eq!(xt_last_error(), XT_ERR_INVALID_PORT);
    }
}

#[test]
fn freeing_the_context_does_not_wait_for_a_client_that_keeps_its_socket() {
    let mut ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    // The answer ends the connection (Connection: close); the server lingers for the client's
    // close, for up to 2 s — but not when the context is freed.
    let mut kept = connect(port);
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut kept, false).unwrap().status, 200);
    let started = Instant::now();
    ctx.free();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "xt_context_free waited {:?} for the lingering connection",
        started.elapsed()
    );
    drop(kept);
}

#[test]
fn a_client_that_half_closes_after_its_request_is_answered() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    ctx.on_page(|_, _, _, _, resp| set_body(resp, "hello"));
    for req in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\na=b&c",
    ] {
        let mut s = connect(port);
        s.write_all(req).unwrap();
        // `printf ... | nc -N`: the request, then end of input.
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let r = read_response(&mut s, false)
            .unwrap_or_else(|| panic!("no answer to {}", String::from_utf8_lossy(req)));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
    }
    let pages = ctx.pages();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(pages[2].body, b"a=b&c");
}

#[test]
fn a_missing_or_repeated_host_header_gets_400_without_asking_the_host() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    // RFC 9112 §3.2: HTTP/1.1 needs exactly one Host; no request may carry two.
    for req in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        let r = request(port, req);
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(req));
        assert_eq!(r.header("connection"), Some("close"));
    }
    assert!(ctx.pages().is_empty(), "{:?}", ctx.pages());
    // One Host, or none in HTTP/1.0: served.
    assert_eq!(
        request(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").status,
        200
    );
    assert_eq!(request(port, b"GET / HTTP/1.0\r\n\r\n").status, 200);
    assert_eq!(ctx.pages().len(), 2);
}

#[test]
fn a_status_without_a_standard_phrase_gets_its_class_name() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    ctx.on_page(|_, _, page, _, resp| unsafe {
        let status: u16 = page.path.trim_start_matches('/').parse().unwrap();
        assert_eq!(xt_http_response_set_status(resp, status), XT_OK);
    });
    for (status, line) in [
        (299, "HTTP/1.1 299 Success\r\n"),
        (450, "HTTP/1.1 450 Client Error\r\n"),
        (599, "HTTP/1.1 599 Server Error\r\n"),
        (399, "HTTP/1.1 399 Redirection\r\n"),
        (404, "HTTP/1.1 404 Not Found\r\n"),
    ] {
        let mut s = connect(port);
        write!(
            s,
            "GET /{status} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut raw);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with(line), "{text:?}");
    }
}

/// The body must come in time too: after the head, the request timeout to begin, then at
/// least 1 KiB/s on average. Stalled and trickling bodies get 408 and are closed; an upload
/// that keeps a (slow) LAN pace is read whole.
#[test]
fn a_body_that_stops_arriving_is_timed_out_with_408() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_HTTP_REQUEST_TIMEOUT_MS, 500);
    let (_, port) = ctx.html();
    ctx.on_page(|_, _, page, _, resp| set_body(resp, &format!("got {}", page.body.len())));
    let timed_out = |s: &mut std::net::TcpStream, started: Instant| {
        let r = read_response(s, false).expect("an answer");
        assert_eq!(r.status, 408);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_secs(4),
            "{took:?}"
        );
        assert!(closed(s));
    };
    // Content-Length 1000, 10 bytes, then silence.
    let started = Instant::now();
    let mut s = connect(port);
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        .unwrap();
    timed_out(&mut s, started);
    // A stalled chunked body.
    let started = Instant::now();
    let mut s = connect(port);
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n",
    )
    .unwrap();
    timed_out(&mut s, started);
    // A body trickling at 20 bytes/s never finishes in time.
    let started = Instant::now();
    let mut s = connect(port);
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    s.set_nonblocking(true).unwrap();
    let mut answer = Vec::new();
    while started.elapsed() < Duration::from_secs(4) {
        let _ = s.write_all(b"x");
        let mut b = [0u8; 512];
        match std::io::Read::read(&mut s, &mut b) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&b[..n]),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // A slow but steady upload (20 KB at ~8 KB/s, past the 0.5 s grace) is read whole.
    let mut s = connect(port);
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20480\r\n\r\n")
        .unwrap();
    for _ in 0..20 {
        s.write_all(&[b'y'; 1024]).unwrap();
        std::thread::sleep(Duration::from_millis(120));
    }
    let r = read_response(&mut s, false).unwrap();
    assert_eq!((r.status, r.body), (200, b"got 20480".to_vec()));
    // The host saw only the complete request.
    assert_eq!(ctx.pages().len(), 1);
}

#[test]
fn a_normal_client_is_served_beside_300_stalled_bodies() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_HTTP_REQUEST_TIMEOUT_MS, 1000);
    let (_, port) = ctx.html();
    let mut stalled: Vec<_> = (0..300)
        .map(|_| {
            let mut s = connect(port);
            s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let r = request(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Every stalled body is answered 408 and closed, so none holds its descriptor for long.
    for s in stalled.iter_mut() {
        let r = read_response(s, false).expect("an answer");
        assert_eq!(r.status, 408);
        assert!(closed(s));
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ctx.pages().len(), 1);
}

/// Deferred replies (XTension's "reply later by unique id"): page_request defers, other
/// threads answer with xt_http_reply; keep-alive and pipelined requests stay in order.
#[test]
fn deferred_requests_are_answered_later_from_other_threads_in_order() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.html();
    let (tx, rx) = std::sync::mpsc::channel::<(u64, String)>();
    let tx = parking_lot::Mutex::new(tx);
    ctx.on_page(move |_, _, page, req, resp| unsafe {
        let noted = xt_http_request_id(req);
        assert_ne!(noted, 0);
        assert_eq!(
            xt_http_response_add_header(resp, c"X-Before".as_ptr(), c"kept".as_ptr()),
            XT_OK
        );
        let id = xt_http_response_defer(resp);
        assert_eq!(id, noted, "the id the request carried");
        assert_eq!(xt_http_response_defer(resp), 0, "once");
        assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
        tx.lock().send((id, page.path.clone())).unwrap();
    });
    // Three worker threads answer whatever comes, in the order it comes.
    let ptr = ctx.ptr as usize;
    let rx = Arc::new(parking_lot::Mutex::new(rx));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                let ctx = ptr as *mut XtContext;
                while let Ok((id, path)) = rx.lock().recv_timeout(Duration::from_secs(1)) {
                    std::thread::sleep(Duration::from_millis(20));
                    let body = format!("answer to {path} from worker {w}");
                    let r = unsafe {
                        xt_http_reply(
                            ctx,
                            id,
                            201,
                            c"text/plain".as_ptr(),
                            body.as_ptr(),
                            body.len(),
                        )
                    };
                    assert_eq!(r, XT_OK);
                    assert_eq!(
                        unsafe {
                            xt_http_reply(ctx, id, 200, std::ptr::null(), std::ptr::null(), 0)
                        },
                        XT_ERR_INVALID_STATE,
                        "a request is answered once"
                    );
                }
            })
        })
        .collect();
    // Three pipelined requests on one keep-alive connection, and two other connections.
    let mut s = connect(port);
    s.write_all(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let others: Vec<_> = ["/a", "/b"]
        .iter()
        .map(|p| {
            let mut c = connect(port);
            write!(c, "GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            (p.to_string(), c)
        })
        .collect();
    for n in 1..=3 {
        let r = read_response(&mut s, false).unwrap();
        assert_eq!(r.status, 201);
        let body = String::from_utf8(r.body.clone()).unwrap();
        assert!(body.starts_with(&format!("answer to /{n} from")), "{body}");
        assert_eq!(r.header("x-before"), Some("kept"));
        assert_eq!(r.header("content-type"), Some("text/plain"));
    }
    for (p, mut c) in others {
        let r = read_response(&mut c, false).unwrap();
        assert!(String::from_utf8(r.body)
            .unwrap()
            .starts_with(&format!("answer to {p}")));
    }
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn a_deferred_request_not_answered_in_time_gets_504_and_a_late_reply_106() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_HTTP_DEFER_TIMEOUT_MS, 300);
    let (_, port) = ctx.html();
    let ids = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = ids.clone();
    ctx.on_page(move |_, _, _, _, resp| unsafe {
        seen.lock().push(xt_http_response_defer(resp));
    });
    let started = Instant::now();
    let r = request(port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 504);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let id = ids.lock()[0];
    let late = unsafe { xt_http_reply(ctx.ptr, id, 200, std::ptr::null(), std::ptr::null(), 0) };
    assert_eq!(late, XT_ERR_INVALID_STATE);
    // Bad arguments leave a waiting request waiting; unknown ids and NULL ctx are refused.
    ctx.set(XT_OPT_HTTP_DEFER_TIMEOUT_MS, 5000);
    let mut s = connect(port);
    s.write_all(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ids.lock().len() < 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let id = ids.lock()[1];
    unsafe {
        assert_eq!(
            xt_http_reply(ctx.ptr, id, 99, std::ptr::null(), std::ptr::null(), 0),
            XT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            xt_http_reply(ctx.ptr, id, 200, c"bad\ntype".as_ptr(), std::ptr::null(), 0),
            XT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            xt_http_reply(ctx.ptr, id, 200, std::ptr::null(), std::ptr::null(), 3),
            XT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            xt_http_reply(
                std::ptr::null_mut(),
                id,
                200,
                std::ptr::null(),
                std::ptr::null(),
                0
            ),
            XT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            xt_http_reply(ctx.ptr, 987654, 200, std::ptr::null(), std::ptr::null(), 0),
            XT_ERR_INVALID_STATE
        );
        assert_eq!(
            xt_http_reply(ctx.ptr, id, 200, std::ptr::null(), b"ok".as_ptr(), 2),
            XT_OK
        );
        // Outside page_request there is nothing to defer.
        assert_eq!(xt_http_response_defer(std::ptr::null_mut()), 0);
        assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT);
    }
    let r = read_response(&mut s, false).unwrap();
    assert_eq!((r.status, r.body.clone()), (200, b"ok".to_vec()));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
}

#[test]
fn a_deferred_request_whose_client_left_or_whose_listener_stopped_is_gone() {
    let ctx = Ctx::for_suite();
    let (server, port) = ctx.html();
    let ids = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = ids.clone();
    ctx.on_page(move |_, _, _, _, resp| unsafe {
        seen.lock().push(xt_http_response_defer(resp));
    });
    let wait_ids = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while ids.lock().len() < n {
            assert!(Instant::now() < deadline, "page_request did not run");
            std::thread::sleep(Duration::from_millis(5));
        }
        ids.lock()[n - 1]
    };
    // The client resets its connection while its request waits.
    let s = connect(port);
    (&s).write_all(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let id = wait_ids(1);
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    // The server notices the reset (its read fails), and the request stops waiting.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        unsafe { xt_http_reply(ctx.ptr, id, 200, std::ptr::null(), std::ptr::null(), 0) },
        XT_ERR_INVALID_STATE,
        "a reply to a client that reset is refused"
    );
    // The listener stops while a request waits: its client gets 503, the reply 106.
    let mut s = connect(port);
    s.write_all(b"GET /stopping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let id = wait_ids(2);
    assert!(unsafe { xt_stop_html_listener(ctx.ptr, server) });
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(
        unsafe { xt_http_reply(ctx.ptr, id, 200, std::ptr::null(), std::ptr::null(), 0) },
        XT_ERR_INVALID_STATE
    );
}
