//! Peer identity across real (virtual) Ethernet links: each peer's MAC address and Bonjour name
//! in the info of connections, datagrams and HTTP requests.
//!
//! Topology (network namespaces made and removed by each test): L runs xtnet; P (10.8.1.2,
//! fd00:9:1::2) is on L's link e1 and runs a real mDNS responder (Debian's avahi-daemon,
//! host name "xtpeer"); Q (10.8.2.2) is on L's link e2 and has no responder. Needs root and
//! avahi-daemon (CI has both); otherwise each test says it skipped.

mod common;
use common::netns::{avahi_installed, available, require, Lab, Responder};
use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ZEROS: &str = "00:00:00:00:00:00";
const PEER_NAME: &str = "xtpeer.local";

struct Net {
    lab: Lab,
    l: String,
    p: String,
    q: String,
    _responder: Option<Responder>,
}

fn net(test: &str, responder: bool) -> Option<Net> {
    if !available(test) {
        return None;
    }
    if responder
        && !require(
            avahi_installed(),
            test,
            "avahi-daemon is not installed (Debian package avahi-daemon)",
        )
    {
        return None;
    }
    let mut lab = Lab::new();
    let (l, p, q) = lab.l_p_q();
    let responder =
        responder.then(|| lab.mdns_responder(&p, "xtpeer", "e0", &["10.8.1.2", "fd00:9:1::2"]));
    Some(Net {
        lab,
        l,
        p,
        q,
        _responder: responder,
    })
}

impl Net {
    /// A context in L (threaded dispatch) with `XT_OPT_PEER_LOOKUP_MS` = `lookup_ms`.
    fn context(&mut self, lookup_ms: i64) -> Arc<Ctx> {
        self.lab.run(&self.l, move || {
            let ctx = Arc::new(Ctx::for_suite());
            ctx.set(XT_OPT_PEER_LOOKUP_MS, lookup_ms);
            ctx
        })
    }

    /// A framed TCP listener ("\n") of `ctx`, bound inside L.
    fn listen(&mut self, ctx: &Arc<Ctx>) -> u16 {
        let ctx = ctx.clone();
        self.lab.run(&self.l, move || ctx.listen(b"\n").1)
    }

    /// A TCP connection from `ns` to `to`, which says "hi\n".
    fn connect_from(&mut self, ns: &str, to: SocketAddr) -> TcpStream {
        self.lab.run(ns, move || {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
            s.write_all(b"hi\n").unwrap();
            s
        })
    }

    fn stat(&self, ctx: &Ctx, stat: u32) -> i64 {
        unsafe { xt_get_stat(ctx.ptr, stat) }
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn a_peer_on_the_link_has_its_mac_and_bonjour_name_in_every_event() {
    let Some(mut n) = net(
        "a_peer_on_the_link_has_its_mac_and_bonjour_name_in_every_event",
        true,
    ) else {
        return;
    };
    let mac = n.lab.mac(&n.p, "e0");
    let ctx = n.context(5000);
    ctx.rec.keep_data_info.store(true, Ordering::SeqCst);
    let port = n.listen(&ctx);
    for (i, (to, from)) in [
        (format!("10.8.1.1:{port}"), "10.8.1.2"),
        (format!("[fd00:9:1::1]:{port}"), "fd00:9:1::2"),
    ]
    .into_iter()
    .enumerate()
    {
        let s = n.connect_from(&n.p.clone(), addr(&to));
        let (id, info) = ctx.wait_new(i);
        assert_eq!(info.remote_address, from);
        assert_eq!(info.mac_address, mac, "the MAC `ip link` shows for P's e0");
        assert_eq!(info.name, PEER_NAME, "the name avahi announces");
        ctx.wait_until("data", Duration::from_secs(5), |evs| {
            evs.iter().any(|e| matches!(e, Ev::Data(d, _) if *d == id))
        });
        drop(s);
        let closed = ctx.wait_closed(id);
        let data = ctx.rec.data_info.lock().clone();
        let (_, data_info) = data.iter().find(|(d, _)| *d == id).unwrap();
        for other in [data_info, &closed] {
            assert_eq!(
                (&other.name, &other.mac_address, &other.remote_address),
                (&info.name, &info.mac_address, &info.remote_address),
                "the same identity in data_available and socket_error"
            );
        }
    }
}

#[test]
fn without_a_responder_the_name_is_a_question_mark_within_the_bound() {
    let Some(mut n) = net(
        "without_a_responder_the_name_is_a_question_mark_within_the_bound",
        false,
    ) else {
        return;
    };
    let mac = n.lab.mac(&n.q, "e0");
    let ctx = n.context(300);
    let port = n.listen(&ctx);
    let started = Instant::now();
    // Ten connections at once from a peer never seen: one lookup serves them all.
    let q = n.q.clone();
    let streams: Vec<_> = (0..10)
        .map(|_| n.connect_from(&q, addr(&format!("10.8.2.1:{port}"))))
        .collect();
    let infos: Vec<_> = (0..10).map(|i| ctx.wait_new(i).1).collect();
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(300 + 1500),
        "new_connection waits at most about XT_OPT_PEER_LOOKUP_MS: {elapsed:?}"
    );
    for info in &infos {
        assert_eq!(info.remote_address, "10.8.2.2");
        assert_eq!(info.name, "?", "nobody answers for Q");
        assert_eq!(
            info.mac_address, mac,
            "the MAC is found even without a name"
        );
    }
    assert_eq!(n.stat(&ctx, XT_STAT_PEER_LOOKUPS), 1, "one shared lookup");
    assert_eq!(n.stat(&ctx, XT_STAT_PEER_CACHE_ENTRIES), 1);
    drop(streams);
}

#[test]
fn a_slow_lookup_delays_no_other_connection() {
    let Some(mut n) = net("a_slow_lookup_delays_no_other_connection", false) else {
        return;
    };
    // Q's name lookup takes the whole mDNS wait (nobody answers); its connection may wait 5 s.
    let ctx = n.context(5000);
    let port = n.listen(&ctx);
    let _from_q = n.connect_from(&n.q.clone(), addr(&format!("10.8.2.1:{port}")));
    // Meanwhile a loopback client inside L connects, talks and is answered.
    let local = n.lab.run(&n.l.clone(), move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"local\n").unwrap();
        s
    });
    let evs = ctx.wait_until("Q's new_connection", Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::New(_, i) if i.remote_address == "10.8.2.2"))
    });
    let position = |pred: &dyn Fn(&Ev) -> bool| evs.iter().position(pred).unwrap();
    let local_new = position(&|e| matches!(e, Ev::New(_, i) if i.remote_address == "127.0.0.1"));
    let local_data = position(&|e| matches!(e, Ev::Data(_, d) if d == b"local"));
    let q_new = position(&|e| matches!(e, Ev::New(_, i) if i.remote_address == "10.8.2.2"));
    assert!(
        local_new < q_new && local_data < q_new,
        "the loopback connection went first: {evs:#?}"
    );
    drop(local);
}

#[test]
fn cache_only_mode_never_waits_and_learns_in_the_background() {
    let Some(mut n) = net(
        "cache_only_mode_never_waits_and_learns_in_the_background",
        true,
    ) else {
        return;
    };
    let mac = n.lab.mac(&n.p, "e0");
    let ctx = n.context(0);
    let port = n.listen(&ctx);
    let p = n.p.clone();
    let first = n.connect_from(&p, addr(&format!("10.8.1.1:{port}")));
    let (_, info) = ctx.wait_new(0);
    assert_eq!(
        (info.name.as_str(), info.mac_address.as_str()),
        ("?", ZEROS),
        "nothing cached yet, and 0 means do not wait"
    );
    drop(first);
    // The lookup started by the first connection fills the cache.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = 1;
    loop {
        let _s = n.connect_from(&p, addr(&format!("10.8.1.1:{port}")));
        let (_, info) = ctx.wait_new(seen);
        seen += 1;
        if info.name == PEER_NAME {
            assert_eq!(info.mac_address, mac);
            break;
        }
        assert!(Instant::now() < deadline, "never learned P's name");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(n.stat(&ctx, XT_STAT_PEER_LOOKUPS), 1);
}

#[test]
fn datagrams_carry_the_cached_identity_and_a_silent_sender_is_resolved() {
    let Some(mut n) = net(
        "datagrams_carry_the_cached_identity_and_a_silent_sender_is_resolved",
        true,
    ) else {
        return;
    };
    let (p_mac, q_mac) = (n.lab.mac(&n.p, "e0"), n.lab.mac(&n.q, "e0"));
    let ctx = n.context(5000);
    let tcp_port = n.listen(&ctx);
    let ctx2 = ctx.clone();
    let (_, udp_port) = n.lab.run(&n.l.clone(), move || ctx2.udp(0));
    // P connects first: its identity is cached, and its datagrams carry it at once.
    let _s = n.connect_from(&n.p.clone(), addr(&format!("10.8.1.1:{tcp_port}")));
    let (_, info) = ctx.wait_new(0);
    assert_eq!(
        (info.name.as_str(), info.mac_address.as_str()),
        (PEER_NAME, p_mac.as_str())
    );
    n.lab.run(&n.p.clone(), move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.send_to(b"from p", ("10.8.1.1", udp_port)).unwrap();
    });
    let got = ctx.wait_datagrams(1);
    assert_eq!(got[0].1, b"from p");
    assert_eq!(
        (got[0].2.name.as_str(), got[0].2.mac_address.as_str()),
        (PEER_NAME, p_mac.as_str())
    );
    // Q only broadcasts, so L never had to resolve it: the first datagram finds nothing in the
    // cache (and never waits); the lookup it starts resolves Q, and later datagrams carry it.
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        n.lab.run(&n.q.clone(), move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_broadcast(true).unwrap();
            s.send_to(b"from q", ("10.8.2.255", udp_port)).unwrap();
        });
        sent += 1;
        let got = ctx.wait_datagrams(1 + sent);
        let last = &got[sent].2;
        assert_eq!(last.remote_address, "10.8.2.2");
        if sent == 1 {
            assert_eq!(last.mac_address, ZEROS, "cache only: nothing known yet");
        }
        if last.mac_address == q_mac {
            assert_eq!(last.name, "?");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Q's MAC never appeared: {got:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn http_requests_carry_the_requesters_identity() {
    let Some(mut n) = net("http_requests_carry_the_requesters_identity", true) else {
        return;
    };
    let mac = n.lab.mac(&n.p, "e0");
    let ctx = n.context(5000);
    let tcp_port = n.listen(&ctx);
    let ctx2 = ctx.clone();
    let (_, http_port) = n.lab.run(&n.l.clone(), move || ctx2.html());
    let _s = n.connect_from(&n.p.clone(), addr(&format!("10.8.1.1:{tcp_port}")));
    ctx.wait_new(0);
    let status = n.lab.run(&n.p.clone(), move || {
        let mut s = TcpStream::connect(("10.8.1.1", http_port)).unwrap();
        s.write_all(b"GET /who HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n")
            .unwrap();
        common::http::read_response(&mut s, false).unwrap().status
    });
    assert_eq!(status, 200);
    let page = &ctx.pages()[0];
    assert_eq!(page.path, "/who");
    assert_eq!(page.info.remote_address, "10.8.1.2");
    assert_eq!(
        (page.info.name.as_str(), page.info.mac_address.as_str()),
        (PEER_NAME, mac.as_str())
    );
}

#[test]
fn loopback_peers_are_answered_at_once_without_lookups() {
    let ctx = Ctx::for_suite();
    ctx.set(XT_OPT_PEER_LOOKUP_MS, 60_000);
    let (_, port) = ctx.listen(b"\n");
    for host in ["127.0.0.1", "::1"] {
        let _s = TcpStream::connect((host, port)).unwrap();
    }
    for i in 0..2 {
        let (_, info) = ctx.wait_new(i);
        assert_eq!(
            (info.name.as_str(), info.mac_address.as_str()),
            ("?", ZEROS)
        );
    }
    unsafe {
        assert_eq!(xt_get_stat(ctx.ptr, XT_STAT_PEER_LOOKUPS), 0);
        assert_eq!(xt_get_stat(ctx.ptr, XT_STAT_PEER_CACHE_ENTRIES), 0);
    }
}

#[test]
fn an_outgoing_connection_identifies_its_peer_too() {
    let Some(mut n) = net("an_outgoing_connection_identifies_its_peer_too", true) else {
        return;
    };
    let mac = n.lab.mac(&n.p, "e0");
    let listener = n.lab.run(&n.p.clone(), || {
        std::net::TcpListener::bind("0.0.0.0:0").unwrap()
    });
    let port = listener.local_addr().unwrap().port();
    let ctx = n.context(5000);
    let ctx2 = ctx.clone();
    let id = n
        .lab
        .run(&n.l.clone(), move || ctx2.connect("10.8.1.2", port, b"\n"));
    let (mut accepted, _) = listener.accept().unwrap();
    accepted.write_all(b"welcome\n").unwrap();
    let evs = ctx.wait_until("data from P", Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Data(d, m) if *d == id && m == b"welcome"))
    });
    let connected = evs
        .iter()
        .find_map(|e| match e {
            Ev::Connected(i, info) if *i == id => Some(info.clone()),
            _ => None,
        })
        .expect("connected");
    assert_eq!(connected.remote_address, "10.8.1.2");
    assert_eq!(
        (connected.name.as_str(), connected.mac_address.as_str()),
        (PEER_NAME, mac.as_str())
    );
    drop(accepted);
    let closed = ctx.wait_closed(id);
    assert_eq!(
        (closed.name, closed.mac_address),
        (connected.name, connected.mac_address)
    );
}

#[test]
fn a_flood_of_new_senders_is_looked_up_at_a_bounded_rate() {
    let Some(mut n) = net(
        "a_flood_of_new_senders_is_looked_up_at_a_bounded_rate",
        false,
    ) else {
        return;
    };
    // 200 addresses on Q's link, each sending one datagram as fast as it can.
    let batch: String = (10..210)
        .map(|h| format!("addr add 10.8.2.{h}/24 dev e0\n"))
        .collect();
    let mut ip = n
        .lab
        .command(&n.q, "ip")
        .args(["-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    ip.stdin
        .take()
        .unwrap()
        .write_all(batch.as_bytes())
        .unwrap();
    assert!(ip.wait().unwrap().success());
    let ctx = n.context(250);
    let ctx2 = ctx.clone();
    let (_, udp_port) = n.lab.run(&n.l.clone(), move || ctx2.udp(0));
    let started = Instant::now();
    n.lab.run(&n.q.clone(), move || {
        for h in 10..210 {
            let s = UdpSocket::bind(("10.8.2.".to_owned() + &h.to_string(), 0)).unwrap();
            s.send_to(b"hello", ("10.8.2.1", udp_port)).unwrap();
        }
    });
    let got = ctx.wait_datagrams(200);
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(
        got.len(),
        200,
        "every datagram is delivered, looked up or not"
    );
    let lookups = n.stat(&ctx, XT_STAT_PEER_LOOKUPS);
    let allowed = 50.0 + 50.0 * elapsed;
    assert!(
        lookups > 0 && (lookups as f64) <= allowed,
        "{lookups} lookups in {elapsed:.2} s (at most {allowed:.0})"
    );
    assert!(n.stat(&ctx, XT_STAT_PEER_CACHE_ENTRIES) <= lookups);
}
