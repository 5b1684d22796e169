//! A panic inside xtnet's network tasks (a bug) is contained to the one connection it hit: that
//! connection ends with socket_error XT_ERR_PANIC (1002), the message goes to the log callback,
//! every other connection and listener goes on, and xt_context_free returns in its usual time.
//! `xt_debug_panic_connection` makes it happen. Nothing reaches stderr: tests/c_examples.rs runs
//! a C host doing this with RUST_BACKTRACE=1 and checks its stderr is empty.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn logs(ctx: &Ctx) -> Vec<String> {
    ctx.events()
        .into_iter()
        .filter_map(|e| match e {
            Ev::Log(_, text) => Some(text),
            _ => None,
        })
        .collect()
}

fn echo_round(ctx: &Ctx, c: &mut std::net::TcpStream, line: &[u8]) {
    let _ = ctx;
    write_all(c, line);
    assert_eq!(read_n(c, line.len()), line);
}

/// In poll dispatch, a thread of the test plays the host's run loop.
struct Pump {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pump {
    fn start(ctx: &Ctx) -> Pump {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, ptr) = (stop.clone(), ctx.ptr as usize);
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                unsafe { xt_poll(ptr as *mut XtContext, 20) };
            }
        });
        Pump {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn panic_one_of_many(dispatch: XtDispatch) {
    let poll = matches!(dispatch, XtDispatch::XT_DISPATCH_POLL);
    let mut ctx = Ctx::new(dispatch);
    let mut pump = poll.then(|| Pump::start(&ctx));
    echo_with(&ctx, b"\n");
    let (_, port) = ctx.listen(b"\n");
    // Enough connections that several share each network thread's shard.
    let mut clients: Vec<_> = (0..12).map(|_| client(port)).collect();
    let mut ids = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        ids.push(ctx.wait_new(i).0);
        write_all(c, b"hello\n");
    }
    let victim = ids[5];
    ctx.wait_until("first echoes", Duration::from_secs(10), |evs| {
        evs.iter().filter(|e| matches!(e, Ev::Data(..))).count() == 12
    });
    for c in clients.iter_mut() {
        assert_eq!(read_n(c, 6), b"hello\n");
    }
    assert_eq!(unsafe { xt_debug_panic_connection(ctx.ptr, victim) }, XT_OK);
    let info = ctx.wait_closed(victim);
    assert_eq!(info.error_number, XT_ERR_PANIC);
    assert!(
        info.error_message.contains("internal error") && info.error_message.contains("deliberate"),
        "{}",
        info.error_message
    );
    assert_eq!(
        ctx.events_of(victim)
            .iter()
            .filter(|e| matches!(e, Ev::Error(..)))
            .count(),
        1,
        "exactly one final event"
    );
    ctx.wait_until("the panic in the log", Duration::from_secs(10), |evs| {
        evs.iter().any(|e| {
            matches!(e, Ev::Log(l, t) if *l == XT_LOG_ERROR
            && t.contains(&format!("connection {victim}")) && t.contains("deliberate"))
        })
    });
    // The victim's socket is closed; its id is dead.
    assert!(read_to_end(&mut clients[5]).is_empty());
    assert_eq!(ctx.send(victim, b"x"), XT_ERR_INVALID_STATE);
    // Every other connection still works, on every shard.
    for (i, c) in clients.iter_mut().enumerate() {
        if i != 5 {
            echo_round(&ctx, c, b"still here\n");
        }
    }
    // New connections are still accepted and served (none handed to a dead shard).
    for _ in 0..8 {
        let mut c = client(port);
        echo_round(&ctx, &mut c, b"new\n");
    }
    // A second panic, after the first, is contained too.
    assert_eq!(unsafe { xt_debug_panic_connection(ctx.ptr, ids[0]) }, XT_OK);
    assert_eq!(ctx.wait_closed(ids[0]).error_number, XT_ERR_PANIC);
    echo_round(&ctx, &mut clients[1], b"and on\n");
    // Freeing is not held up by the panicked tasks.
    if let Some(p) = pump.as_mut() {
        p.stop();
    }
    let started = Instant::now();
    ctx.free();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let finals: Vec<i32> = ctx
        .events()
        .iter()
        .filter_map(|e| match e {
            Ev::Error(_, info) => Some(info.error_number),
            _ => None,
        })
        .collect();
    assert_eq!(
        finals.len(),
        12 + 8,
        "every connection got exactly one final event"
    );
    assert_eq!(finals.iter().filter(|c| **c == XT_ERR_PANIC).count(), 2);
}

#[test]
fn a_panic_in_one_connection_ends_only_that_one_thread_dispatch() {
    panic_one_of_many(XtDispatch::XT_DISPATCH_THREAD);
}

#[test]
fn a_panic_in_one_connection_ends_only_that_one_poll_dispatch() {
    panic_one_of_many(XtDispatch::XT_DISPATCH_POLL);
}

#[test]
fn a_panic_in_an_outgoing_connection_is_contained_too() {
    let server = Ctx::for_suite();
    echo_with(&server, b"\n");
    let (_, port) = server.listen(b"\n");
    let ctx = Ctx::for_suite();
    let a = ctx.connect("127.0.0.1", port, b"\n");
    let b = ctx.connect("127.0.0.1", port, b"\n");
    ctx.wait_until("both connected", Duration::from_secs(10), |evs| {
        evs.iter()
            .filter(|e| matches!(e, Ev::Connected(..)))
            .count()
            == 2
    });
    assert_eq!(unsafe { xt_debug_panic_connection(ctx.ptr, a) }, XT_OK);
    assert_eq!(ctx.wait_closed(a).error_number, XT_ERR_PANIC);
    assert_eq!(ctx.send(b, b"ping\n"), XT_OK);
    ctx.wait_until("b's echo", Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Data(i, d) if *i == b && d == b"ping"))
    });
    assert!(logs(&ctx).iter().any(|l| l.contains("deliberate")));
}

#[test]
fn bad_ids_for_the_debug_call() {
    let ctx = Ctx::for_suite();
    let (server, _) = ctx.listen(b"\n");
    assert_eq!(
        unsafe { xt_debug_panic_connection(std::ptr::null_mut(), 1) },
        XT_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { xt_debug_panic_connection(ctx.ptr, 0) },
        XT_ERR_INVALID_STATE
    );
    assert_eq!(
        unsafe { xt_debug_panic_connection(ctx.ptr, u64::from(server)) },
        XT_ERR_INVALID_STATE,
        "a listener id is no connection"
    );
}

#[path = "support/c_build.rs"]
#[allow(dead_code)]
mod c_build;

/// A C host (tests/c/quiet_panic.c) makes xtnet panic at the boundary and in a connection's
/// task, with RUST_BACKTRACE=1 set: its stderr stays empty, and what happened reaches it
/// through return codes, the final event and the log callback.
#[test]
fn panics_print_nothing_to_the_hosts_stderr() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = c_build::library_dir();
    let exe = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("quiet_panic");
    let status = std::process::Command::new("cc")
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-D_DEFAULT_SOURCE",
        ])
        .arg(root.join("tests/c/quiet_panic.c"))
        .arg(format!("-I{}", root.join("include").display()))
        .arg(format!("-L{}", lib.display()))
        .args(["-lxtnet", "-lpthread", "-o"])
        .arg(&exe)
        .status()
        .expect("cc runs");
    assert!(status.success(), "tests/c/quiet_panic.c compiles");
    let out = c_build::example_command(&exe)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the host runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert_eq!(stderr, "", "xtnet printed to the host's stderr");
    assert!(stdout.contains("trigger 1002"), "{stdout}");
    assert!(
        stdout.contains(
            "last_error 1002 internal error caught at the C boundary: xt_debug_trigger_panic"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("debug_panic 0"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("socket_error ") && l.contains(" 1002 internal error in xtnet")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("log 1 connection ") && l.contains("deliberate panic")),
        "{stdout}"
    );
    assert!(stdout.ends_with("done\n"), "{stdout}");
}
