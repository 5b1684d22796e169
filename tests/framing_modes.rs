//! XTension's parsing modes through the C surface: `xt_set_framing` switching a live
//! connection between boundary, fixed-length and raw framing — from inside `data_available`
//! (the very next byte is framed the new way) and from another thread — with a timeout for
//! replies that never end in a terminator; on accepted, outgoing and TLS connections; at every
//! split of the stream.

mod common;
use common::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The data of connection `id` among `evs` (inside a wait: the recorder is locked then).
fn data_in(evs: &[Ev], id: u64) -> Vec<Vec<u8>> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Data(i, d) if *i == id => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn set_framing(
    ctx: *mut XtContext,
    id: u64,
    mode: u32,
    boundary: &[u8],
    length: u32,
    timeout_ms: u32,
) -> i32 {
    unsafe {
        xt_set_framing(
            ctx,
            id,
            mode,
            boundary.as_ptr(),
            boundary.len(),
            length,
            timeout_ms,
        )
    }
}

/// A host that reads a header line "BIN n", then exactly n bytes of binary (which may hold
/// the boundary), then lines again — switching the framing from inside `data_available`.
fn header_then_block_host(ctx: &Ctx) {
    ctx.on_data(|r, id, data| {
        if let Some(n) = data.strip_prefix(b"BIN ") {
            let n: u32 = std::str::from_utf8(n).unwrap().parse().unwrap();
            assert_eq!(set_framing(r.ctx(), id, XT_FRAME_LENGTH, b"", n, 0), XT_OK);
        } else if data.starts_with(b"\x00") {
            assert_eq!(
                set_framing(r.ctx(), id, XT_FRAME_BOUNDARY, b"\r\n", 0, 0),
                XT_OK
            );
        }
    });
}

const STREAM: &[u8] = b"hello\r\nBIN 7\r\n\x00a\r\nb\r\nline after\r\nBIN 3\r\n\x00\r\nlast\r\n";
const EXPECTED: [&[u8]; 6] = [
    b"hello",
    b"BIN 7",
    b"\x00a\r\nb\r\n",
    b"line after",
    b"BIN 3",
    b"\x00\r\n",
];

fn expected() -> Vec<Vec<u8>> {
    let mut e: Vec<Vec<u8>> = EXPECTED.iter().map(|m| m.to_vec()).collect();
    e.push(b"last".to_vec());
    e
}

#[test]
fn a_header_line_then_a_binary_block_at_every_split_of_the_stream() {
    let ctx = Ctx::for_suite();
    header_then_block_host(&ctx);
    let (_, port) = ctx.listen(b"\r\n");
    for cut in 0..=STREAM.len() {
        let mut c = client(port);
        c.write_all(&STREAM[..cut]).unwrap();
        c.flush().unwrap();
        // Give the first part time to arrive and be delivered on its own.
        std::thread::sleep(Duration::from_millis(3));
        c.write_all(&STREAM[cut..]).unwrap();
        let (id, _) = ctx.wait_new(cut);
        ctx.wait_until("all messages", Duration::from_secs(10), |evs| {
            evs.iter()
                .filter(|e| matches!(e, Ev::Data(i, _) if *i == id))
                .count()
                >= 7
        });
        assert_eq!(ctx.data_of(id), expected(), "cut at {cut}");
    }
}

#[test]
fn raw_and_length_modes_set_from_another_thread_and_a_timeout_for_unterminated_replies() {
    let ctx = Ctx::for_suite();
    let (_, port) = ctx.listen(b"\r\n");
    let mut c = client(port);
    let (id, _) = ctx.wait_new(0);
    // From this thread (not a callback): fixed length 4 before anything arrives.
    assert_eq!(set_framing(ctx.ptr, id, XT_FRAME_LENGTH, b"", 4, 0), XT_OK);
    c.write_all(b"abcdefghij").unwrap();
    ctx.wait_until("two messages", Duration::from_secs(5), |evs| {
        evs.iter()
            .filter(|e| matches!(e, Ev::Data(i, _) if *i == id))
            .count()
            >= 2
    });
    assert_eq!(ctx.data_of(id), [b"abcd".to_vec(), b"efgh".to_vec()]);
    // Raw: the two bytes waiting ("ij") come at once, then chunks as they arrive.
    assert_eq!(set_framing(ctx.ptr, id, XT_FRAME_RAW, b"", 0, 0), XT_OK);
    ctx.wait_until("the rest", Duration::from_secs(5), |evs| {
        evs.iter()
            .filter(|e| matches!(e, Ev::Data(i, _) if *i == id))
            .count()
            >= 3
    });
    assert_eq!(ctx.data_of(id)[2], b"ij");
    c.write_all(b"any\r\nthing").unwrap();
    ctx.wait_until("raw bytes", Duration::from_secs(5), |evs| {
        data_in(evs, id)[3..].concat() == b"any\r\nthing"
    });
    // A boundary with a timeout: a reply without its terminator comes after the timeout.
    assert_eq!(
        set_framing(ctx.ptr, id, XT_FRAME_BOUNDARY, b";", 0, 150),
        XT_OK
    );
    let before = ctx.data_of(id).len();
    let started = Instant::now();
    c.write_all(b"one;two, unterminated").unwrap();
    ctx.wait_until("the timeout", Duration::from_secs(5), |evs| {
        evs.iter()
            .filter(|e| matches!(e, Ev::Data(i, _) if *i == id))
            .count()
            >= before + 2
    });
    let waited = started.elapsed();
    assert_eq!(
        ctx.data_of(id)[before..],
        [b"one".to_vec(), b"two, unterminated".to_vec()]
    );
    assert!(
        waited >= Duration::from_millis(140),
        "delivered after {waited:?}"
    );
    // A terminated message comes at once, and the timer starts again for the next.
    c.write_all(b"three;").unwrap();
    ctx.wait_until("three", Duration::from_secs(5), |evs| {
        data_in(evs, id).last().map(Vec::as_slice) == Some(&b"three"[..])
    });
    drop(c);
    let end = ctx.wait_closed(id);
    assert_eq!(end.error_number, XT_ERR_LOST_CONNECTION);
}

#[test]
fn bad_framing_arguments_are_refused_and_change_nothing() {
    let ctx = Ctx::for_suite();
    echo_with(&ctx, b"\r\n");
    let (_, port) = ctx.listen(b"\r\n");
    let mut c = client(port);
    let (id, _) = ctx.wait_new(0);
    let too_long = vec![b'x'; 5000];
    for (what, rc) in [
        ("unknown mode", set_framing(ctx.ptr, id, 7, b"", 0, 0)),
        (
            "empty boundary",
            set_framing(ctx.ptr, id, XT_FRAME_BOUNDARY, b"", 0, 0),
        ),
        (
            "too long a boundary",
            set_framing(ctx.ptr, id, XT_FRAME_BOUNDARY, &too_long, 0, 0),
        ),
        (
            "length 0",
            set_framing(ctx.ptr, id, XT_FRAME_LENGTH, b"", 0, 0),
        ),
        (
            "length past the maximum",
            set_framing(ctx.ptr, id, XT_FRAME_LENGTH, b"", u32::MAX, 0),
        ),
        ("NULL boundary with a length", unsafe {
            xt_set_framing(ctx.ptr, id, XT_FRAME_BOUNDARY, std::ptr::null(), 2, 0, 0)
        }),
    ] {
        assert_eq!(rc, XT_ERR_INVALID_ARGUMENT, "{what}");
    }
    assert_eq!(
        set_framing(ctx.ptr, 999_999, XT_FRAME_RAW, b"", 0, 0),
        XT_ERR_INVALID_STATE
    );
    assert_eq!(
        unsafe {
            xt_set_framing(
                std::ptr::null_mut(),
                id,
                XT_FRAME_RAW,
                std::ptr::null(),
                0,
                0,
                0,
            )
        },
        XT_ERR_INVALID_ARGUMENT
    );
    // Still framed on "\r\n".
    c.write_all(b"still\r\n").unwrap();
    let mut back = [0u8; 7];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still\r\n");
}

#[test]
fn outgoing_and_tls_connections_switch_framing_too() {
    // Outgoing: the client side reads a header then a block from a plain TCP peer.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let ctx = Ctx::for_suite();
    header_then_block_host(&ctx);
    let id = ctx.connect("127.0.0.1", port, b"\r\n");
    let (mut peer, _) = server.accept().unwrap();
    ctx.wait_until("connected", Duration::from_secs(5), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Connected(i, _) if *i == id))
    });
    peer.write_all(STREAM).unwrap();
    ctx.wait_until("all messages", Duration::from_secs(5), |evs| {
        evs.iter()
            .filter(|e| matches!(e, Ev::Data(i, _) if *i == id))
            .count()
            >= 7
    });
    assert_eq!(ctx.data_of(id), expected());

    // TLS: an accepted TLS connection, the stream sent by an xtnet TLS client in one write.
    let server = Ctx::for_suite();
    header_then_block_host(&server);
    let sid =
        unsafe { xt_start_tls_listener(server.ptr, 0, b"\r\n".as_ptr(), 2, std::ptr::null()) };
    assert_ne!(sid, 0, "{}", last_error_text());
    let tport = unsafe { xt_listener_port(server.ptr, sid) };
    let client = Ctx::for_suite();
    let opts = XtTlsOptions {
        struct_size: std::mem::size_of::<XtTlsOptions>() as u32,
        trust: XT_TRUST_ANY,
        ca_file: std::ptr::null(),
        pin_sha256: std::ptr::null(),
        server_name: std::ptr::null(),
        cert_file: std::ptr::null(),
        key_file: std::ptr::null(),
    };
    let cid = unsafe {
        xt_open_tls_connection(
            client.ptr,
            c"127.0.0.1".as_ptr(),
            tport,
            b"\r\n".as_ptr(),
            2,
            &opts,
        )
    };
    client.wait_until("connected", Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, Ev::Connected(i, _) if *i == cid))
    });
    assert_eq!(client.send(cid, STREAM), XT_OK);
    let (accepted, _) = server.wait_new(0);
    server.wait_until("all messages", Duration::from_secs(10), |evs| {
        evs.iter()
            .filter(|e| matches!(e, Ev::Data(i, _) if *i == accepted))
            .count()
            >= 7
    });
    assert_eq!(server.data_of(accepted), expected());
}
