//! UDP across real (virtual) Ethernet links: network namespaces joined by veth pairs, made and
//! removed by the tests. Broadcast, multicast (IPv4 and IPv6), interface selection, membership
//! isolation, TTL and loop, and sharing discovery ports with another program.
//!
//! Topology: namespace L has two links, e1 (10.9.1.1) to S1 (10.9.1.2) and e2 (10.9.2.1) to
//! S2 (10.9.2.2). Needs root (CI runs as root); otherwise each test says it skipped.

mod common;
use common::netns::{available, Lab};
use common::*;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

struct Net {
    lab: Lab,
    l: String,
    s1: String,
    s2: String,
}

/// The three namespaces of the topology.
#[derive(Clone, Copy)]
enum Side {
    L,
    S1,
    S2,
}
use Side::{L, S1, S2};

fn net(test: &str) -> Option<Net> {
    if !available(test) {
        return None;
    }
    let mut lab = Lab::new();
    let l = lab.namespace("l");
    let s1 = lab.namespace("s1");
    let s2 = lab.namespace("s2");
    lab.link(&l, "e1", "10.9.1.1/24", &s1, "e0", "10.9.1.2/24");
    lab.link(&l, "e2", "10.9.2.1/24", &s2, "e0", "10.9.2.2/24");
    Some(Net { lab, l, s1, s2 })
}

impl Net {
    fn name(&self, side: Side) -> String {
        match side {
            L => self.l.clone(),
            S1 => self.s1.clone(),
            S2 => self.s2.clone(),
        }
    }

    /// Runs `f` inside the namespace of `side`.
    fn run<R: Send + 'static>(&mut self, side: Side, f: impl FnOnce() -> R + Send + 'static) -> R {
        let ns = self.name(side);
        self.lab.run(&ns, f)
    }

    /// A context with a UDP listener on `port`, made inside `side`.
    fn udp(&mut self, side: Side, port: u16) -> (Arc<Ctx>, u32) {
        self.run(side, move || {
            let ctx = Arc::new(Ctx::for_suite());
            let (id, _) = ctx.udp(port);
            (ctx, id)
        })
    }

    fn join(&mut self, side: Side, ctx: &Arc<Ctx>, id: u32, group: &str, interface: Option<&str>) {
        let (ctx, group, interface) = (ctx.clone(), group.to_owned(), interface.map(str::to_owned));
        self.run(side, move || {
            let g = std::ffi::CString::new(group).unwrap();
            let i = interface.map(|i| std::ffi::CString::new(i).unwrap());
            let i = i.as_ref().map_or(std::ptr::null(), |i| i.as_ptr());
            let ok = unsafe { xt_join_multicast_group_on(ctx.ptr, id, g.as_ptr(), i) };
            assert!(ok, "join {:?}: {}", g, last_error_text());
        })
    }

    fn send(
        &mut self,
        side: Side,
        ctx: &Arc<Ctx>,
        id: u32,
        to: &str,
        port: u16,
        data: &'static [u8],
    ) {
        let (ctx, to) = (ctx.clone(), to.to_owned());
        self.run(side, move || {
            let rc = ctx.send_to(id, &to, port, data);
            assert_eq!(rc, XT_OK, "send to {to}: {}", last_error_text());
        });
    }
}

/// Nothing more than `n` datagrams arrives within a while.
fn quiet(ctx: &Ctx, n: usize) {
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        ctx.datagrams().len(),
        n,
        "unexpected datagrams: {:?}",
        ctx.datagrams()
    );
}

#[test]
fn broadcast_crosses_the_link_without_any_setting() {
    let Some(mut n) = net("broadcast_crosses_the_link_without_any_setting") else {
        return;
    };
    let (listener, _) = n.udp(L, 5000);
    let (sender, sid) = n.udp(S1, 5001);
    n.send(S1, &sender, sid, XT_BROADCAST_ADDRESS, 5000, b"limited");
    n.send(S1, &sender, sid, "10.9.1.255", 5000, b"subnet");
    let got = listener.wait_datagrams(2);
    let mut payloads: Vec<&[u8]> = got.iter().map(|(_, d, _)| d.as_slice()).collect();
    payloads.sort();
    assert_eq!(payloads, [&b"limited"[..], &b"subnet"[..]]);
    for (_, _, info) in &got {
        assert_eq!(info.remote_address, "10.9.1.2");
        assert_eq!(
            info.remote_port, 5001,
            "sent from the sender's listening port"
        );
        assert_eq!(info.local_port, 5000);
    }
    // From L, with two links, the limited broadcast goes out of both.
    let (r1, _) = n.udp(S1, 5002);
    let (r2, _) = n.udp(S2, 5002);
    let (l_sender, lid) = n.udp(L, 5003);
    n.send(L, &l_sender, lid, XT_BROADCAST_ADDRESS, 5002, b"everyone");
    assert_eq!(r1.wait_datagrams(1)[0].2.remote_address, "10.9.1.1");
    assert_eq!(r2.wait_datagrams(1)[0].2.remote_address, "10.9.2.1");
}

#[test]
fn ipv4_multicast_join_receive_leave() {
    let Some(mut n) = net("ipv4_multicast_join_receive_leave") else {
        return;
    };
    let (listener, id) = n.udp(L, 1900);
    let (s1, s1id) = n.udp(S1, 1901);
    let (s2, s2id) = n.udp(S2, 1901);
    for group in ["239.255.255.250", "224.0.0.251"] {
        n.join(L, &listener, id, group, None);
    }
    n.send(S1, &s1, s1id, "239.255.255.250", 1900, b"ssdp from s1");
    n.send(S2, &s2, s2id, "224.0.0.251", 1900, b"mdns from s2");
    let got = listener.wait_datagrams(2);
    let from: Vec<(&[u8], &str)> = got
        .iter()
        .map(|(_, d, i)| (d.as_slice(), i.remote_address.as_str()))
        .collect();
    assert!(
        from.contains(&(&b"ssdp from s1"[..], "10.9.1.2")),
        "{from:?}"
    );
    assert!(
        from.contains(&(&b"mdns from s2"[..], "10.9.2.2")),
        "joined on every interface: {from:?}"
    );
    // After leaving, the group's datagrams stop; the other group still arrives.
    let (ctx, g) = (
        listener.clone(),
        std::ffi::CString::new("239.255.255.250").unwrap(),
    );
    assert!(n.run(L, move || unsafe {
        xt_leave_multicast_group(ctx.ptr, id, g.as_ptr())
    }));
    n.send(S1, &s1, s1id, "239.255.255.250", 1900, b"after leave");
    n.send(S1, &s1, s1id, "224.0.0.251", 1900, b"other group");
    listener.wait_datagrams(3);
    quiet(&listener, 3);
    assert_eq!(listener.datagrams()[2].1, b"other group");
}

#[test]
fn ipv6_multicast_ff02_fb() {
    let Some(mut n) = net("ipv6_multicast_ff02_fb") else {
        return;
    };
    let (listener, id) = n.udp(L, 5353);
    let (s1, s1id) = n.udp(S1, 5353);
    n.join(L, &listener, id, "ff02::fb", None);
    n.send(S1, &s1, s1id, "ff02::fb", 5353, b"v6 mdns");
    let got = listener.wait_datagrams(1);
    assert_eq!(got[0].1, b"v6 mdns");
    assert!(
        got[0].2.remote_address.starts_with("fe80::"),
        "link-local source: {}",
        got[0].2.remote_address
    );
    assert_eq!(got[0].2.remote_port, 5353);
    // A unicast reply to the link-local sender, scoped by interface name.
    let reply_to = format!("{}%e1", got[0].2.remote_address);
    n.send(L, &listener, id, &reply_to, 5353, b"v6 reply");
    let back = s1.wait_datagrams(1);
    assert_eq!(back[0].1, b"v6 reply");
}

#[test]
fn joining_on_one_interface_by_name_or_address() {
    let Some(mut n) = net("joining_on_one_interface_by_name_or_address") else {
        return;
    };
    let (by_name, a) = n.udp(L, 6000);
    let (by_addr, b) = n.udp(L, 6001);
    n.join(L, &by_name, a, "239.7.7.7", Some("e1"));
    n.join(L, &by_addr, b, "239.7.7.7", Some("10.9.2.1"));
    let (s1, s1id) = n.udp(S1, 6002);
    let (s2, s2id) = n.udp(S2, 6002);
    for port in [6000, 6001] {
        n.send(S1, &s1, s1id, "239.7.7.7", port, b"via e1");
        n.send(S2, &s2, s2id, "239.7.7.7", port, b"via e2");
    }
    assert_eq!(by_name.wait_datagrams(1)[0].1, b"via e1");
    assert_eq!(by_addr.wait_datagrams(1)[0].1, b"via e2");
    quiet(&by_name, 1);
    quiet(&by_addr, 1);
}

#[test]
fn a_listener_receives_only_the_groups_it_joined() {
    let Some(mut n) = net("a_listener_receives_only_the_groups_it_joined") else {
        return;
    };
    let (listener, id) = n.udp(L, 7000);
    n.join(L, &listener, id, "239.1.1.1", None);
    // Another program on the same port (SO_REUSEADDR, like avahi or Python's zeroconf) joins
    // another group.
    let other = n.run(L, || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind(&SocketAddr::from(([0, 0, 0, 0], 7000)).into())
            .unwrap();
        s.join_multicast_v4(&Ipv4Addr::new(239, 1, 1, 2), &Ipv4Addr::new(10, 9, 1, 1))
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        UdpSocket::from(s)
    });
    let (s1, s1id) = n.udp(S1, 7001);
    n.send(S1, &s1, s1id, "239.1.1.2", 7000, b"not yours");
    let mut buf = [0u8; 64];
    let (len, _) = other.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"not yours", "the other program got its group");
    n.send(S1, &s1, s1id, "239.1.1.1", 7000, b"yours");
    assert_eq!(listener.wait_datagrams(1)[0].1, b"yours");
    quiet(&listener, 1);
}

#[test]
fn multicast_goes_out_of_every_interface_or_the_chosen_one() {
    let Some(mut n) = net("multicast_goes_out_of_every_interface_or_the_chosen_one") else {
        return;
    };
    let (r1, r1id) = n.udp(S1, 8000);
    let (r2, r2id) = n.udp(S2, 8000);
    n.join(S1, &r1, r1id, "239.8.8.8", None);
    n.join(S2, &r2, r2id, "239.8.8.8", None);
    let (sender, sid) = n.udp(L, 8001);
    n.send(L, &sender, sid, "239.8.8.8", 8000, b"to all links");
    assert_eq!(r1.wait_datagrams(1)[0].2.remote_address, "10.9.1.1");
    assert_eq!(r2.wait_datagrams(1)[0].2.remote_address, "10.9.2.1");
    let ctx = sender.clone();
    n.run(L, move || {
        let e2 = std::ffi::CString::new("e2").unwrap();
        assert_eq!(
            unsafe { xt_set_multicast_interface(ctx.ptr, sid, e2.as_ptr()) },
            XT_OK
        );
    });
    n.send(L, &sender, sid, "239.8.8.8", 8000, b"e2 only");
    assert_eq!(r2.wait_datagrams(2)[1].1, b"e2 only");
    quiet(&r1, 1);
}

/// Receives one datagram on a plain socket and returns its IP TTL (IP_RECVTTL).
fn recv_ttl(s: &UdpSocket) -> (Vec<u8>, i32) {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    let mut ttl = -1;
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_TTL {
                ttl = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    (buf[..n as usize].to_vec(), ttl)
}

#[test]
fn multicast_ttl_and_loop() {
    let Some(mut n) = net("multicast_ttl_and_loop") else {
        return;
    };
    let receiver = n.run(S1, || {
        let s = UdpSocket::bind("0.0.0.0:9000").unwrap();
        s.join_multicast_v4(&Ipv4Addr::new(239, 9, 9, 9), &Ipv4Addr::new(10, 9, 1, 2))
            .unwrap();
        let on: libc::c_int = 1;
        unsafe {
            use std::os::fd::AsRawFd;
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_RECVTTL,
                (&on as *const libc::c_int).cast(),
                4,
            );
        }
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    });
    let (sender, sid) = n.udp(L, 9001);
    // A listener on the sender's own host, in the group, to see the loop setting.
    let (local, lid) = n.udp(L, 9000);
    n.join(L, &local, lid, "239.9.9.9", None);
    n.send(L, &sender, sid, "239.9.9.9", 9000, b"ttl default");
    assert_eq!(
        recv_ttl(&receiver),
        (b"ttl default".to_vec(), 1),
        "the system's default TTL is 1"
    );
    assert_eq!(
        local.wait_datagrams(1)[0].1,
        b"ttl default",
        "loop is on by default"
    );
    // Sent out of both of L's links, the datagram loops back once per link.
    std::thread::sleep(Duration::from_millis(300));
    let looped = local.datagrams().len();
    let ctx = sender.clone();
    n.run(L, move || unsafe {
        assert_eq!(xt_set_multicast_ttl(ctx.ptr, sid, 7), XT_OK);
        assert_eq!(xt_set_multicast_loop(ctx.ptr, sid, false), XT_OK);
    });
    n.send(L, &sender, sid, "239.9.9.9", 9000, b"ttl seven");
    assert_eq!(recv_ttl(&receiver), (b"ttl seven".to_vec(), 7));
    quiet(&local, looped);
}

#[test]
fn discovery_ports_are_shared_with_another_program() {
    let Some(mut n) = net("discovery_ports_are_shared_with_another_program") else {
        return;
    };
    // Python binds 5353 first, as a resident mDNS/SSDP tool would.
    let script = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 5353))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton("224.0.0.251"), socket.inet_aton("10.9.1.1")))
print("ready", flush=True)
s.settimeout(10)
data, addr = s.recvfrom(100)
print(data.decode(), addr[0], flush=True)
"#;
    let mut py = n
        .lab
        .command(&n.l, "python3")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let (listener, id) = n.udp(L, 5353);
    n.join(L, &listener, id, "224.0.0.251", None);
    let (s1, s1id) = n.udp(S1, 5354);
    n.send(S1, &s1, s1id, "224.0.0.251", 5353, b"shared");
    assert_eq!(listener.wait_datagrams(1)[0].1, b"shared");
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        "shared 10.9.1.2",
        "the other program got it too"
    );
    let _ = py.wait();
}

#[test]
fn sends_refused_after_a_callback_are_counted_and_logged() {
    let Some(mut n) = net("sends_refused_after_a_callback_are_counted_and_logged") else {
        return;
    };
    let (listener, id) = n.udp(L, 9100);
    let codes = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let c2 = codes.clone();
    listener.on_datagram(move |r, server, _, _| {
        // No route from L to 10.99.0.0/16: the system refuses, but only once the batch ends.
        let to = std::ffi::CString::new("10.99.0.1").unwrap();
        let rc = unsafe { xt_send_datagram(r.ctx(), server, to.as_ptr(), 9, b"x".as_ptr(), 1) };
        c2.lock().push(rc);
    });
    let (s1, s1id) = n.udp(S1, 9101);
    n.send(S1, &s1, s1id, "10.9.1.1", 9100, b"trigger");
    listener.wait_until("the refusal logged", Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Log(XT_LOG_WARNING, m) if m.contains("failed")))
    });
    assert_eq!(
        *codes.lock(),
        vec![XT_OK],
        "from a callback the send is queued"
    );
    assert_eq!(unsafe { xt_udp_send_failures(listener.ptr, id) }, 1);
    // Outside a callback the same send fails at once with the system's code.
    let ctx = listener.clone();
    let rc = n
        .lab
        .run(&n.l, move || ctx.send_to(id, "10.99.0.1", 9, b"x"));
    assert_eq!(
        rc,
        libc::EHOSTUNREACH,
        "ENETUNREACH is reported as EHOSTUNREACH (101 is XTension's)"
    );
}

#[test]
fn two_contexts_share_the_ssdp_port_and_both_get_the_group() {
    let Some(mut n) = net("two_contexts_share_the_ssdp_port_and_both_get_the_group") else {
        return;
    };
    let (a, aid) = n.udp(L, 1900);
    let (b, bid) = n.udp(L, 1900);
    n.join(L, &a, aid, "239.255.255.250", None);
    n.join(L, &b, bid, "239.255.255.250", None);
    let (s1, s1id) = n.udp(S1, 1901);
    n.send(S1, &s1, s1id, "239.255.255.250", 1900, b"NOTIFY");
    assert_eq!(a.wait_datagrams(1)[0].1, b"NOTIFY");
    assert_eq!(b.wait_datagrams(1)[0].1, b"NOTIFY");
}

#[test]
fn on_a_host_whose_only_interface_is_loopback_a_join_uses_loopback() {
    if !available("on_a_host_whose_only_interface_is_loopback_a_join_uses_loopback") {
        return;
    }
    let mut lab = Lab::new();
    let solo = lab.namespace("solo"); // loopback only, no LAN at all
    lab.run(&solo, || {
        let ctx = Ctx::for_suite();
        let (id, port) = ctx.udp(0);
        let group = c"239.255.255.250";
        // Fails with ENODEV (19) without the loopback fallback.
        let joined = unsafe { xt_join_multicast_group(ctx.ptr, id, group.as_ptr()) };
        assert!(joined, "join: {}", last_error_text());
        // Multicast to the group goes out of loopback too, and comes back to the member.
        assert_eq!(ctx.send_to(id, "239.255.255.250", port, b"M-SEARCH"), XT_OK);
        let got = ctx.wait_datagrams(1);
        assert_eq!(got[0].1, b"M-SEARCH");
        assert!(unsafe { xt_leave_multicast_group(ctx.ptr, id, group.as_ptr()) });
    });
}

/// The index of `name` inside the namespace `f` runs in.
fn index_of(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).unwrap();
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

#[test]
fn each_datagram_says_where_it_arrived_and_how_it_was_addressed() {
    let Some(mut n) = net("each_datagram_says_where_it_arrived_and_how_it_was_addressed") else {
        return;
    };
    let (listener, id) = n.udp(L, 5100);
    n.join(L, &listener, id, "239.255.255.250", None);
    let (e1, e2) = n.run(L, || (index_of("e1"), index_of("e2")));
    let (s1, s1id) = n.udp(S1, 5101);
    let (s2, s2id) = n.udp(S2, 5101);
    n.send(S1, &s1, s1id, "10.9.1.1", 5100, b"unicast");
    n.send(S1, &s1, s1id, XT_BROADCAST_ADDRESS, 5100, b"limited");
    n.send(S1, &s1, s1id, "10.9.1.255", 5100, b"directed");
    n.send(S1, &s1, s1id, "239.255.255.250", 5100, b"group via e1");
    n.send(S2, &s2, s2id, "239.255.255.250", 5100, b"group via e2");
    n.send(S2, &s2, s2id, "10.9.2.1", 5100, b"unicast via e2");
    let got = listener.wait_datagrams(6);
    let seen: std::collections::HashMap<Vec<u8>, DgInfo> =
        got.into_iter().map(|(_, d, i)| (d, i)).collect();
    let check = |payload: &[u8], local: &str, iface: &str, index: u32, kind: u32| {
        let i = &seen[payload];
        assert_eq!(
            (
                i.local_address.as_str(),
                i.interface_name.as_str(),
                i.interface_index,
                i.kind
            ),
            (local, iface, index, kind),
            "{}",
            String::from_utf8_lossy(payload)
        );
    };
    check(b"unicast", "10.9.1.1", "e1", e1, XT_DGRAM_UNICAST);
    check(b"limited", "255.255.255.255", "e1", e1, XT_DGRAM_BROADCAST);
    check(b"directed", "10.9.1.255", "e1", e1, XT_DGRAM_BROADCAST);
    check(
        b"group via e1",
        "239.255.255.250",
        "e1",
        e1,
        XT_DGRAM_MULTICAST,
    );
    check(
        b"group via e2",
        "239.255.255.250",
        "e2",
        e2,
        XT_DGRAM_MULTICAST,
    );
    check(b"unicast via e2", "10.9.2.1", "e2", e2, XT_DGRAM_UNICAST);
}

#[test]
fn ipv6_multicast_says_its_interface() {
    let Some(mut n) = net("ipv6_multicast_says_its_interface") else {
        return;
    };
    let (listener, id) = n.udp(L, 5353);
    n.join(L, &listener, id, "ff02::fb", None);
    let e2 = n.run(L, || index_of("e2"));
    let (s2, s2id) = n.udp(S2, 5354);
    // A fresh veth's IPv6 link-local address may still be tentative: try a few times.
    let (ctx, g) = (s2.clone(), std::ffi::CString::new("ff02::fb").unwrap());
    n.run(S2, move || {
        for _ in 0..50 {
            let rc =
                unsafe { xt_send_datagram(ctx.ptr, s2id, g.as_ptr(), 5353, b"mdns6".as_ptr(), 5) };
            if rc == XT_OK && !ctx.datagrams().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let got = listener.wait_datagrams(1);
    let info = &got[0].2;
    assert_eq!(info.local_address, "ff02::fb");
    assert_eq!(
        (info.interface_name.as_str(), info.interface_index),
        ("e2", e2)
    );
    assert_eq!(info.kind, XT_DGRAM_MULTICAST);
    assert!(
        info.remote_address.starts_with("fe80::"),
        "{}",
        info.remote_address
    );
}

#[test]
fn a_reply_leaves_from_the_interface_the_query_came_in_on() {
    let Some(mut n) = net("a_reply_leaves_from_the_interface_the_query_came_in_on") else {
        return;
    };
    let (responder, id) = n.udp(L, 1900);
    n.join(L, &responder, id, "239.255.255.250", None);
    // Replies from inside the callback, out of the arrival interface, to the sender.
    responder.on_datagram(move |r, sid, _, info| {
        let (iface, to) = (
            std::ffi::CString::new(info.interface_name.clone()).unwrap(),
            std::ffi::CString::new(info.remote_address.clone()).unwrap(),
        );
        let body = format!(
            "HTTP/1.1 200 OK\r\nLOCATION: via {}\r\n\r\n",
            info.interface_name
        );
        let rc = unsafe {
            xt_send_datagram_on(
                r.ctx(),
                sid,
                iface.as_ptr(),
                to.as_ptr(),
                info.remote_port,
                body.as_ptr(),
                body.len(),
            )
        };
        assert_eq!(rc, XT_OK, "{}", last_error_text());
    });
    let (s1, s1id) = n.udp(S1, 1901);
    let (s2, s2id) = n.udp(S2, 1901);
    n.send(
        S1,
        &s1,
        s1id,
        "239.255.255.250",
        1900,
        b"M-SEARCH * HTTP/1.1\r\n\r\n",
    );
    n.send(
        S2,
        &s2,
        s2id,
        "239.255.255.250",
        1900,
        b"M-SEARCH * HTTP/1.1\r\n\r\n",
    );
    let a = s1.wait_datagrams(1);
    let b = s2.wait_datagrams(1);
    assert!(String::from_utf8_lossy(&a[0].1).contains("LOCATION: via e1"));
    assert_eq!(a[0].2.remote_address, "10.9.1.1");
    assert!(String::from_utf8_lossy(&b[0].1).contains("LOCATION: via e2"));
    assert_eq!(b[0].2.remote_address, "10.9.2.1");
    // Forced out of the wrong interface, a reply never reaches the other link's peer.
    let ctx = responder.clone();
    let rc = n.run(L, move || unsafe {
        xt_send_datagram_on(
            ctx.ptr,
            id,
            c"e1".as_ptr(),
            c"10.9.2.2".as_ptr(),
            1901,
            b"lost".as_ptr(),
            4,
        )
    });
    assert_eq!(rc, XT_OK);
    quiet(&s2, 1);
    // An unknown interface is refused.
    let ctx = responder.clone();
    let rc = n.run(L, move || unsafe {
        xt_send_datagram_on(
            ctx.ptr,
            id,
            c"nosuch0".as_ptr(),
            c"10.9.1.2".as_ptr(),
            1901,
            b"x".as_ptr(),
            1,
        )
    });
    assert_eq!(rc, XT_ERR_INVALID_ARGUMENT);
}

#[test]
fn the_local_address_a_peer_reaches_us_on() {
    let Some(mut n) = net("the_local_address_a_peer_reaches_us_on") else {
        return;
    };
    let (ctx, _) = n.udp(L, 0);
    let answers = n.run(L, move || {
        [
            "10.9.1.2",
            "10.9.2.2",
            "10.9.2.200",
            "127.0.0.1",
            "192.0.2.1",
            "bogus",
        ]
        .iter()
        .map(|r| {
            let remote = std::ffi::CString::new(*r).unwrap();
            let mut out = [0 as std::ffi::c_char; 46];
            let rc = unsafe {
                xt_local_address_for(ctx.ptr, remote.as_ptr(), out.as_mut_ptr(), out.len())
            };
            let text = unsafe { std::ffi::CStr::from_ptr(out.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            let mut small = [0 as std::ffi::c_char; 4];
            let small_rc =
                unsafe { xt_local_address_for(ctx.ptr, remote.as_ptr(), small.as_mut_ptr(), 4) };
            (rc, if rc == XT_OK { text } else { String::new() }, small_rc)
        })
        .collect::<Vec<_>>()
    });
    assert_eq!(answers[0].0, XT_OK);
    assert_eq!(answers[0].1, "10.9.1.1");
    assert_eq!(answers[1].1, "10.9.2.1");
    assert_eq!(answers[2].1, "10.9.2.1", "any address on that link");
    assert_eq!(answers[3].1, "127.0.0.1");
    assert!(
        [libc::ENETUNREACH, libc::EHOSTUNREACH].contains(&answers[4].0),
        "no default route in the namespace: {}",
        answers[4].0
    );
    assert_eq!(answers[5].0, XT_ERR_INVALID_ARGUMENT);
    assert_eq!(answers[0].2, XT_ERR_INVALID_ARGUMENT, "a buffer too small");
}

#[test]
fn wake_on_lan_reaches_every_link_or_the_one_named() {
    let Some(mut n) = net("wake_on_lan_reaches_every_link_or_the_one_named") else {
        return;
    };
    let (ctx, _) = n.udp(L, 0);
    let listen9 = || {
        let s = UdpSocket::bind("0.0.0.0:9").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s
    };
    let a = n.run(S1, listen9);
    let b = n.run(S2, listen9);
    let c2 = ctx.clone();
    let rc = n.run(L, move || unsafe {
        xt_send_wake_on_lan(c2.ptr, c"00:11:32:AB:cd:ef".as_ptr(), std::ptr::null())
    });
    assert_eq!(rc, XT_OK, "{}", last_error_text());
    let mut expected = vec![0xffu8; 6];
    for _ in 0..16 {
        expected.extend_from_slice(&[0x00, 0x11, 0x32, 0xab, 0xcd, 0xef]);
    }
    let mut buf = [0u8; 200];
    for (s, from) in [(&a, "10.9.1.1"), (&b, "10.9.2.1")] {
        let (len, sender) = s.recv_from(&mut buf).expect("the magic packet");
        assert_eq!(&buf[..len], &expected[..]);
        assert_eq!(sender.ip().to_string(), from);
    }
    // Only out of e2 now.
    let c2 = ctx.clone();
    let rc = n.run(L, move || unsafe {
        xt_send_wake_on_lan(c2.ptr, c"001132abcdef".as_ptr(), c"e2".as_ptr())
    });
    assert_eq!(rc, XT_OK);
    assert!(b.recv_from(&mut buf).is_ok());
    a.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(a.recv_from(&mut buf).is_err(), "not out of e1");
    // Bad MACs and interfaces are refused.
    let c2 = ctx.clone();
    let codes = n.run(L, move || unsafe {
        (
            xt_send_wake_on_lan(c2.ptr, c"00:11:22".as_ptr(), std::ptr::null()),
            xt_send_wake_on_lan(c2.ptr, c"00:11:32:ab:cd:ef".as_ptr(), c"nosuch0".as_ptr()),
            xt_send_wake_on_lan(c2.ptr, std::ptr::null(), std::ptr::null()),
        )
    });
    assert_eq!(
        codes,
        (
            XT_ERR_INVALID_ARGUMENT,
            XT_ERR_INVALID_ARGUMENT,
            XT_ERR_INVALID_ARGUMENT
        )
    );
}

/// Waits until `ctx` was told `(interface, address, up)`.
fn told(ctx: &Ctx, interface: &str, address: &str, up: bool) {
    let want = Ev::Interface(interface.into(), address.into(), up);
    ctx.wait_until("interface_changed", Duration::from_secs(10), |evs| {
        evs.contains(&want)
    });
}

/// Sends from `side` to the group until `ctx` got `n` datagrams in all (a join follows an
/// interface change within moments, not at once).
fn send_until(
    n: &mut Net,
    side: Side,
    from: &Arc<Ctx>,
    id: u32,
    ctx: &Ctx,
    total: usize,
    data: &'static [u8],
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ctx.datagrams().len() < total {
        assert!(
            std::time::Instant::now() < deadline,
            "the group never arrived: {:?}",
            ctx.events()
        );
        n.send(side, from, id, "239.1.2.3", 5400, data);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ip_in(n: &Net, ns: &str, args: &[&str]) {
    let out = std::process::Command::new("ip")
        .arg("-n")
        .arg(ns)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = n;
}

#[test]
fn memberships_follow_interfaces_that_come_go_and_come_back() {
    let Some(mut n) = net("memberships_follow_interfaces_that_come_go_and_come_back") else {
        return;
    };
    let (everywhere, id) = n.udp(L, 5400);
    n.join(L, &everywhere, id, "239.1.2.3", None);
    // A third link appears while the group is joined: the host is told, and the group arrives
    // on it with no new call.
    let s3 = n.lab.namespace("s3");
    let l = n.l.clone();
    n.lab
        .link(&l, "e3", "10.9.3.1/24", &s3, "e0", "10.9.3.2/24");
    told(&everywhere, "e3", "10.9.3.1", true);
    let sender = {
        let s3 = s3.clone();
        n.lab.run(&s3, || {
            let ctx = Arc::new(Ctx::for_suite());
            let (sid, _) = ctx.udp(5401);
            (ctx, sid)
        })
    };
    let send3 = |n: &mut Net, data: &'static [u8]| {
        let (ctx, sid) = (sender.0.clone(), sender.1);
        let s3 = s3.clone();
        n.lab.run(&s3, move || {
            assert_eq!(ctx.send_to(sid, "239.1.2.3", 5400, data), XT_OK);
        });
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while everywhere.datagrams().is_empty() {
        assert!(std::time::Instant::now() < deadline, "not joined on e3");
        send3(&mut n, b"via e3");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(everywhere.datagrams()[0].2.interface_name, "e3");
    // Down: told, and left; up again: told, and joined again.
    ip_in(&n, &l, &["link", "set", "e3", "down"]);
    told(&everywhere, "e3", "10.9.3.1", false);
    ip_in(&n, &l, &["link", "set", "e3", "up"]);
    told(&everywhere, "e3", "10.9.3.1", true);
    let before = everywhere.datagrams().len();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while everywhere.datagrams().len() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "not joined again after up"
        );
        send3(&mut n, b"after up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A new address is told; the links that did not change were not told anything.
    ip_in(&n, &l, &["addr", "add", "10.9.3.5/24", "dev", "e3"]);
    told(&everywhere, "e3", "10.9.3.5", true);
    assert!(
        !everywhere
            .events()
            .iter()
            .any(|e| matches!(e, Ev::Interface(i, _, _) if i == "e1" || i == "e2")),
        "{:?}",
        everywhere.events()
    );
    // The other links kept their membership all along.
    let (s1, s1id) = n.udp(S1, 5401);
    let total = everywhere.datagrams().len() + 1;
    send_until(&mut n, S1, &s1, s1id, &everywhere, total, b"via e1");
    let logged = everywhere
        .events()
        .iter()
        .any(|e| matches!(e, Ev::Log(_, t) if t.contains("joined 239.1.2.3 on e3")));
    assert!(logged, "the join is logged");
}

#[test]
fn a_group_joined_on_a_named_interface_is_joined_again_when_it_comes_back() {
    let Some(mut n) = net("a_group_joined_on_a_named_interface_is_joined_again_when_it_comes_back")
    else {
        return;
    };
    let (named, id) = n.udp(L, 5400);
    n.join(L, &named, id, "239.1.2.3", Some("e1"));
    let (s1, s1id) = n.udp(S1, 5401);
    let (s2, s2id) = n.udp(S2, 5401);
    send_until(&mut n, S1, &s1, s1id, &named, 1, b"first");
    // Not on e2: it was joined on e1 only.
    n.send(S2, &s2, s2id, "239.1.2.3", 5400, b"not for e1's listener");
    quiet(&named, 1);
    // e1 goes away completely (the veth pair is deleted) and is made again: a new interface
    // with the same name. The listener is in it again.
    let (l, s1ns) = (n.l.clone(), n.s1.clone());
    ip_in(&n, &l, &["link", "del", "e1"]);
    told(&named, "e1", "10.9.1.1", false);
    n.lab
        .link(&l, "e1", "10.9.1.1/24", &s1ns, "e0", "10.9.1.2/24");
    told(&named, "e1", "10.9.1.1", true);
    let (s1b, s1bid) = n.udp(S1, 5402);
    send_until(&mut n, S1, &s1b, s1bid, &named, 2, b"again");
}

/// Counts IGMP packets that name `group`, arriving in the namespace the closure runs in, for
/// `window`.
fn igmp_reports(group: Ipv4Addr, window: Duration) -> usize {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(libc::IPPROTO_IGMP)),
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // The host only takes in IGMP sent to groups it is in: IGMPv3 reports go to 224.0.0.22,
    // v2 reports to the group itself.
    let me: Ipv4Addr = "10.9.1.2".parse().unwrap();
    s.join_multicast_v4(&"224.0.0.22".parse().unwrap(), &me)
        .unwrap();
    s.join_multicast_v4(&group, &me).unwrap();
    let s: std::net::UdpSocket = s.into(); // only for its recv
    let deadline = std::time::Instant::now() + window;
    let mut count = 0;
    let mut buf = [0u8; 1500];
    while std::time::Instant::now() < deadline {
        if let Ok(n) = s.recv(&mut buf) {
            if buf[..n].windows(4).any(|w| w == group.octets()) {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn the_multicast_refresh_resends_joins_on_the_wire() {
    let Some(mut n) = net("the_multicast_refresh_resends_joins_on_the_wire") else {
        return;
    };
    let (listener, id) = n.udp(L, 5400);
    n.join(L, &listener, id, "239.1.2.3", None);
    let group: Ipv4Addr = "239.1.2.3".parse().unwrap();
    // The join's own reports have gone out by now; without the refresh the link stays quiet.
    std::thread::sleep(Duration::from_secs(2));
    let quiet = n.run(S1, move || igmp_reports(group, Duration::from_millis(1500)));
    listener.set(XT_OPT_MULTICAST_REFRESH_MS, 200);
    let refreshed = n.run(S1, move || igmp_reports(group, Duration::from_millis(1500)));
    // Without the refresh, at most a late repeat of the join's own reports (or the peer's own
    // join seen back); with it, a leave and a join every 200 ms (each a report).
    eprintln!(
        "IGMP reports naming the group in 1.5 s: {quiet} without the refresh, {refreshed} with it"
    );
    assert!(quiet <= 2, "{quiet} reports without the refresh");
    assert!(
        refreshed >= quiet + 4,
        "only {refreshed} reports in 1.5 s with a 200 ms refresh"
    );
    listener.set(XT_OPT_MULTICAST_REFRESH_MS, 0);
}
