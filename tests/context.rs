//! Contexts through the C surface: both dispatch modes, freeing, release, calls from callbacks.

mod common;
use common::*;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn readable(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

#[test]
fn thread_dispatch_runs_every_callback_on_one_thread_one_at_a_time() {
    let ctx = Ctx::new(XtDispatch::XT_DISPATCH_THREAD);
    echo_with(&ctx, b"\n");
    let (_, port) = ctx.listen(b"\n");
    let mut clients: Vec<_> = (0..8).map(|_| client(port)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        for j in 0..50 {
            c.write_all(format!("{i}-{j}\n").as_bytes()).unwrap();
        }
    }
    ctx.wait_until("400 messages", Duration::from_secs(10), |evs| {
        evs.iter().filter(|e| matches!(e, Ev::Data(..))).count() == 400
    });
    assert_eq!(
        ctx.rec.threads.lock().len(),
        1,
        "all callbacks on one thread"
    );
    assert!(!ctx
        .rec
        .threads
        .lock()
        .contains(&std::thread::current().id()));
    assert!(
        !ctx.rec.overlapped.load(Ordering::SeqCst),
        "callbacks never overlap"
    );
    assert_eq!(unsafe { xt_wakeup_fd(ctx.ptr) }, -1);
    assert_eq!(unsafe { xt_poll(ctx.ptr, 0) }, -1);
    assert_eq!(xt_last_error(), XT_ERR_INVALID_STATE);
}

#[test]
fn poll_dispatch_runs_callbacks_only_inside_xt_poll_and_the_fd_is_level_triggered() {
    let ctx = Ctx::new(XtDispatch::XT_DISPATCH_POLL);
    let fd = unsafe { xt_wakeup_fd(ctx.ptr) };
    assert!(fd >= 0);
    assert!(!readable(fd));
    assert_eq!(unsafe { xt_poll(ctx.ptr, 0) }, 0, "nothing waits");
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    c.write_all(b"one\ntwo\n").unwrap();
    // Wait with poll(2) on the fd, as a run loop would.
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    assert_eq!(unsafe { libc::poll(&mut p, 1, 10_000) }, 1);
    std::thread::sleep(Duration::from_millis(100));
    assert!(ctx.events().is_empty(), "nothing runs before xt_poll");
    assert!(readable(fd), "still readable: callbacks wait");
    let mut ran = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctx
        .events()
        .iter()
        .filter(|e| matches!(e, Ev::Data(..)))
        .count()
        < 2
        && Instant::now() < deadline
    {
        let n = unsafe { xt_poll(ctx.ptr, 100) };
        assert!(n >= 0);
        ran += n;
    }
    assert!(
        ran >= 3,
        "new_connection + 2 data ran inside xt_poll ({ran})"
    );
    assert!(!readable(fd), "not readable once nothing waits");
    assert_eq!(
        *ctx.rec.threads.lock(),
        [std::thread::current().id()].into_iter().collect()
    );
}

#[test]
fn nested_xt_poll_from_a_callback_is_refused() {
    let ctx = Ctx::new(XtDispatch::XT_DISPATCH_POLL);
    let result = Arc::new(AtomicUsize::new(0));
    let r2 = result.clone();
    ctx.on_new(move |r, _, _| {
        let n = unsafe { xt_poll(r.ctx(), 0) };
        r2.store(
            (n == -1 && xt_last_error() == XT_ERR_INVALID_STATE) as usize + 1,
            Ordering::SeqCst,
        );
        true
    });
    let (_, port) = ctx.listen(b"\n");
    let _c = client(port);
    ctx.wait_new(0);
    assert_eq!(result.load(Ordering::SeqCst), 2);
}

#[test]
fn poll_mode_timeout_waits_and_returns_zero() {
    let ctx = Ctx::new(XtDispatch::XT_DISPATCH_POLL);
    let start = Instant::now();
    assert_eq!(unsafe { xt_poll(ctx.ptr, 150) }, 0);
    assert!(start.elapsed() >= Duration::from_millis(140));
}

fn free_with_live_connections(dispatch: XtDispatch) {
    let mut ctx = Ctx::new(dispatch);
    let (_, port) = ctx.listen(b"\n");
    let mut clients = Vec::new();
    for i in 0..5 {
        let mut c = client(port);
        c.write_all(format!("hi {i}\npartial").as_bytes()).unwrap();
        clients.push(c);
    }
    ctx.wait_until("five connections", Duration::from_secs(10), |evs| {
        evs.iter().filter(|e| matches!(e, Ev::Data(..))).count() == 5
    });
    let rec = ctx.rec.clone();
    ctx.free();
    assert_eq!(
        rec.releases.load(Ordering::SeqCst),
        1,
        "release ran exactly once, before free returned"
    );
    let evs = rec.events.lock().clone();
    let ids: Vec<u64> = evs
        .iter()
        .filter_map(|e| {
            if let Ev::New(id, _) = e {
                Some(*id)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(ids.len(), 5);
    for id in ids {
        let mine: Vec<_> = evs.iter().filter(|e| e.id() == Some(id)).collect();
        let Some(Ev::Error(_, info)) = mine.last() else {
            panic!("no final event for {id}: {mine:?}")
        };
        assert_eq!(info.error_number, XT_ERR_LOST_CONNECTION);
        assert!(
            info.error_message.contains("freed"),
            "{}",
            info.error_message
        );
        assert_eq!(
            mine.iter().filter(|e| matches!(e, Ev::Error(..))).count(),
            1
        );
    }
    // Every socket is closed: the clients see end of stream.
    for mut c in clients {
        assert!(read_to_end(&mut c).is_empty());
    }
    let count = rec.events.lock().len();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        rec.events.lock().len(),
        count,
        "no callback after free returned"
    );
}

#[test]
fn free_ends_every_connection_with_102_and_releases_once_thread_mode() {
    free_with_live_connections(XtDispatch::XT_DISPATCH_THREAD);
}

#[test]
fn free_ends_every_connection_with_102_and_releases_once_poll_mode() {
    free_with_live_connections(XtDispatch::XT_DISPATCH_POLL);
}

#[test]
fn free_while_new_connection_waits_for_a_poll_that_never_comes() {
    let mut ctx = Ctx::new(XtDispatch::XT_DISPATCH_POLL);
    let (_, port) = ctx.listen(b"\n");
    let _c = client(port);
    std::thread::sleep(Duration::from_millis(100)); // accepted, question queued, never polled
    let rec = ctx.rec.clone();
    let start = Instant::now();
    ctx.free();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(rec.releases.load(Ordering::SeqCst), 1);
    assert!(
        rec.events.lock().iter().all(|e| !matches!(e, Ev::New(..))),
        "never offered"
    );
}

#[test]
fn free_from_inside_a_callback_is_refused_and_later_works() {
    let mut ctx = Ctx::for_suite();
    let refused = Arc::new(AtomicBool::new(false));
    let r2 = refused.clone();
    ctx.on_new(move |r, _, _| {
        unsafe { xt_context_free(r.ctx()) };
        r2.store(xt_last_error() == XT_ERR_INVALID_STATE, Ordering::SeqCst);
        true
    });
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    let (id, _) = ctx.wait_new(0);
    // The context still works (and the data arriving means the callback has returned).
    assert_eq!(ctx.send(id, b"alive\n"), XT_OK);
    assert_eq!(read_n(&mut c, 6), b"alive\n");
    assert!(refused.load(Ordering::SeqCst));
    let rec = ctx.rec.clone();
    ctx.free();
    assert_eq!(rec.releases.load(Ordering::SeqCst), 1);
}

#[test]
fn free_with_null_and_callbacks_null_are_fine() {
    unsafe { xt_context_free(std::ptr::null_mut()) };
    let ctx = unsafe { xt_context_new(std::ptr::null(), 0) };
    assert!(!ctx.is_null());
    let id = unsafe { xt_start_tcp_listener(ctx, 0, b"\n".as_ptr(), 1) };
    let port = unsafe { xt_listener_port(ctx, id) };
    let mut c = client(port);
    c.write_all(b"nobody listens to callbacks\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    unsafe { xt_context_free(ctx) };
    assert!(read_to_end(&mut c).is_empty());
}

#[test]
fn an_older_smaller_callback_table_is_honoured() {
    let rec = Arc::new(Recorder::default());
    let mut t = table(&rec);
    // A host compiled when the table ended after `connected`.
    t.struct_size = std::mem::offset_of!(XtCallbacks, data_available) as u32;
    let ptr = unsafe { xt_context_new(&t, 0) };
    assert!(!ptr.is_null());
    let ctx = Ctx::adopt(ptr, rec.clone());
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    c.write_all(b"data nobody asked for\n").unwrap();
    ctx.wait_new(0);
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        ctx.events().iter().all(|e| matches!(e, Ev::New(..))),
        "fields past struct_size are NULL"
    );
    let mut bad = table(&rec);
    bad.struct_size = 4;
    assert!(unsafe { xt_context_new(&bad, 0) }.is_null());
    assert_eq!(xt_last_error(), XT_ERR_INVALID_ARGUMENT);
    // That table's user_data reference was never handed over: give it back.
    unsafe { Arc::from_raw(bad.user_data as *const Recorder) };
}

#[test]
fn every_call_works_from_inside_callbacks() {
    let ctx = Ctx::for_suite();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    ctx.on_data(move |r, id, _| {
        let c = r.ctx();
        unsafe {
            assert_eq!(xt_set_option(c, XT_OPT_MAX_MESSAGE_LEN, 4096), XT_OK);
            assert_eq!(xt_get_option(c, XT_OPT_MAX_MESSAGE_LEN), 4096);
            let l = xt_start_tcp_listener(c, 0, b"\n".as_ptr(), 1);
            assert_ne!(l, 0);
            let port = xt_listener_port(c, l);
            let out = xt_open_tcp_connection(c, c"127.0.0.1".as_ptr(), port, b"\n".as_ptr(), 1);
            assert_ne!(out, 0);
            assert!(xt_stop_tcp_listener(c, l));
            assert_eq!(xt_send_data(c, id, b"ok\n".as_ptr(), 3), XT_OK);
            assert_eq!(xt_disconnect(c, id), XT_OK);
            assert_eq!(xt_set_bind_address(c, std::ptr::null()), XT_OK);
        }
        d2.store(true, Ordering::SeqCst);
    });
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    c.write_all(b"go\n").unwrap();
    assert_eq!(read_to_end(&mut c), b"ok\n");
    // The peer may see the close before the callback's last calls returned.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(done.load(Ordering::SeqCst));
}

#[test]
fn no_library_lock_is_held_while_a_callback_runs() {
    let ctx = Arc::new(Ctx::for_suite());
    if suite_dispatch() == XtDispatch::XT_DISPATCH_INLINE {
        // A blocked inline callback holds its network thread (by design); the calls below need
        // another one to run the listeners' tasks.
        ctx.set(XT_OPT_NETWORK_THREADS, 2);
    }
    let release = Arc::new(AtomicBool::new(false));
    let r2 = release.clone();
    ctx.on_data(move |_, _, _| {
        while !r2.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let (server, port) = ctx.listen(b"\n");
    let mut a = client(port);
    let (ida, _) = ctx.wait_new(0);
    a.write_all(b"block\n").unwrap();
    std::thread::sleep(Duration::from_millis(100)); // the callback is now blocked
                                                    // Every kind of call completes from another thread meanwhile.
    let worker = {
        let ctx = ctx.clone();
        std::thread::spawn(move || unsafe {
            assert_eq!(xt_send_data(ctx.ptr, ida, b"x\n".as_ptr(), 2), XT_OK);
            let l = xt_start_tcp_listener(ctx.ptr, 0, std::ptr::null(), 0);
            assert_ne!(l, 0);
            assert_ne!(xt_listener_port(ctx.ptr, l), 0);
            assert!(xt_stop_tcp_listener(ctx.ptr, l));
            assert_eq!(xt_set_option(ctx.ptr, XT_OPT_IDLE_TIMEOUT_MS, 0), XT_OK);
            let out =
                xt_open_tcp_connection(ctx.ptr, c"127.0.0.1".as_ptr(), 9, std::ptr::null(), 0);
            assert_ne!(out, 0);
            assert!(xt_stop_tcp_listener(ctx.ptr, server));
        })
    };
    let start = Instant::now();
    while !worker.is_finished() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let finished = worker.is_finished();
    release.store(true, Ordering::SeqCst);
    worker.join().unwrap();
    assert!(finished, "calls blocked while a callback ran");
    assert_eq!(read_n(&mut a, 2), b"x\n");
}

#[test]
fn the_panic_boundary_turns_a_panic_into_an_error_code() {
    assert_eq!(xt_debug_trigger_panic(), XT_ERR_PANIC);
    assert_eq!(xt_last_error(), XT_ERR_PANIC);
    let msg = unsafe { std::ffi::CStr::from_ptr(xt_last_error_message()) }
        .to_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("deliberate panic"), "{msg}");
    // The library keeps working afterwards.
    let ctx = Ctx::for_suite();
    ctx.listen(b"\n");
}

#[test]
fn version_and_error_texts() {
    let v = unsafe { std::ffi::CStr::from_ptr(xt_version()) }
        .to_str()
        .unwrap();
    assert_eq!(v.split('.').count(), 3);
    assert!(v.split('.').all(|p| p.parse::<u32>().is_ok()));
    for code in [
        XT_OK,
        102,
        103,
        105,
        106,
        107,
        108,
        1001,
        1002,
        libc::ECONNREFUSED,
        libc::ETIMEDOUT,
        -1,
        77777,
    ] {
        let t = unsafe { std::ffi::CStr::from_ptr(xt_error_text(code)) }
            .to_str()
            .unwrap();
        assert!(!t.is_empty(), "code {code}");
    }
    let refused = unsafe { std::ffi::CStr::from_ptr(xt_error_text(libc::ECONNREFUSED)) };
    assert_eq!(refused.to_str().unwrap(), "Connection refused");
}

#[test]
fn a_second_thread_polling_at_the_same_time_is_refused() {
    let ctx = Ctx::new(XtDispatch::XT_DISPATCH_POLL);
    let outcome = Arc::new(AtomicUsize::new(0));
    let o2 = outcome.clone();
    ctx.on_new(move |r, _, _| {
        // This callback runs inside xt_poll on the test thread; poll from another thread now.
        let ptr = r.ctx() as usize;
        let (n, code) = std::thread::spawn(move || {
            let n = unsafe { xt_poll(ptr as *mut XtContext, 0) };
            (n, xt_last_error())
        })
        .join()
        .unwrap();
        o2.store(
            if n == -1 && code == XT_ERR_INVALID_STATE {
                1
            } else {
                2
            },
            Ordering::SeqCst,
        );
        true
    });
    let (_, port) = ctx.listen(b"\n");
    let _c = client(port);
    ctx.wait_new(0);
    assert_eq!(outcome.load(Ordering::SeqCst), 1);
    // Once the first poll returned, polling works again.
    assert!(unsafe { xt_poll(ctx.ptr, 0) } >= 0);
}

#[test]
fn xt_poll_counts_the_host_callbacks_it_ran_not_internal_events() {
    // Only data_available: the listener's log lines, the new connection (accepted without
    // asking) and the final socket_error have no callback, so they are not counted.
    let rec = Arc::new(Recorder::default());
    let mut t = table(&rec);
    t.new_connection = None;
    t.socket_error = None;
    t.log = None;
    let ptr = unsafe { xt_context_new(&t, XtDispatch::XT_DISPATCH_POLL as u32) };
    let ctx = Ctx::adopt(ptr, rec);
    let (_, port) = ctx.listen(b"\n");
    let mut c = client(port);
    c.write_all(b"a\nb\nc\n").unwrap();
    drop(c); // the peer closes: a socket_error event with no callback
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ran = 0;
    while Instant::now() < deadline {
        let n = unsafe { xt_poll(ctx.ptr, 50) };
        assert!(n >= 0);
        ran += n as usize;
        let open = unsafe { xt_get_stat(ctx.ptr, XT_STAT_CONNECTIONS) };
        if open == 0 && ctx.events().len() == 3 {
            break;
        }
    }
    // Whatever still waits (the final socket_error) runs no callback.
    ran += unsafe { xt_poll(ctx.ptr, 50) } as usize;
    let data = ctx
        .events()
        .iter()
        .filter(|e| matches!(e, Ev::Data(..)))
        .count();
    assert_eq!(data, 3);
    assert_eq!(ran, 3, "exactly the three data_available calls");
}
