//! A listener that runs out of descriptors (EMFILE) neither spins nor floods the log: failed
//! accepts are counted (XT_STAT_ACCEPT_ERRORS) and logged at most once a second with a count,
//! and accepting resumes when descriptors are free again.
//!
//! Its own test binary: it lowers this process's descriptor limit.

mod common;
use common::*;
use std::time::Duration;

/// The highest descriptor number open now.
fn highest_descriptor() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap()
}

fn set_nofile(n: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let before = lim.rlim_cur;
    lim.rlim_cur = n;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    before
}

fn accept_lines(ctx: &Ctx) -> Vec<String> {
    ctx.events()
        .into_iter()
        .filter_map(|e| match e {
            Ev::Log(XT_LOG_WARNING, t) if t.contains("accept failed") => Some(t),
            _ => None,
        })
        .collect()
}

#[test]
fn out_of_descriptors_is_counted_logged_once_a_second_and_recovers() {
    let ctx = Ctx::for_suite();
    echo_with(&ctx, b"\n");
    let (server, port) = ctx.listen(b"\n");
    std::thread::sleep(Duration::from_millis(100));
    // The clients' sockets first (connecting needs no new descriptor), then no descriptor left
    // below the limit: every one is in use, holes filled with /dev/null.
    let clients_n = 20;
    let sockets: Vec<socket2::Socket> = (0..clients_n)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    let saved = set_nofile(highest_descriptor() + 1);
    let mut fillers = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        fillers.push(f);
    }
    let target: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut clients: Vec<std::net::TcpStream> = sockets
        .into_iter()
        .map(|s| {
            s.connect(&target.into()).expect("connect");
            s.into()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2600));
    let errors = unsafe { xt_get_stat(ctx.ptr, XT_STAT_ACCEPT_ERRORS) };
    let lines = accept_lines(&ctx);
    drop(fillers);
    set_nofile(saved);
    // Backing off 100 ms between attempts: about 26 in 2.6 s, not thousands.
    assert!((10..=60).contains(&errors), "{errors} failed accepts");
    // One line at once, then at most one a second (3 or 4 in 2.6 s), with counts that add up.
    assert!((2..=4).contains(&lines.len()), "{lines:#?}");
    assert!(lines[0].contains(&format!("TCP listener {server} on port {port}")));
    assert!(lines[0].contains("Too many open files"), "{}", lines[0]);
    let counted: i64 = lines
        .iter()
        .map(|l| {
            let n = l.rsplit_once("; ").unwrap().1;
            n.split_whitespace().next().unwrap().parse::<i64>().unwrap()
        })
        .sum();
    assert!(
        counted <= errors && counted >= errors - 12,
        "{counted} of {errors}: {lines:#?}"
    );
    // Descriptors back: the waiting connections are accepted and served.
    for c in clients.iter_mut() {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write_all(c, b"hi\n");
        assert_eq!(read_n(c, 3), b"hi\n");
    }
}
