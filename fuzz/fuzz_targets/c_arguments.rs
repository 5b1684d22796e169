//! The C surface's argument checks with arbitrary values: option numbers and values, texts
//! (NUL-terminated, any bytes), lengths, and ids that are stale, of the wrong kind or unknown.
//! Every call returns one of its documented results and the process never crashes. Only calls
//! that stay on this machine are made (no outgoing connections or datagrams: the fuzzer picks
//! the addresses).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::CString;
use xtnet::ffi::context::{xt_context_free, xt_context_new, xt_poll};
use xtnet::ffi::library::*;
use xtnet::ffi::options::*;
use xtnet::ffi::tcp::*;
use xtnet::ffi::udp::*;

const CODES: &[i32] = &[0, 102, 105, 106, 107, 108, 1001, 1002, 13, 98, 99];

fuzz_target!(|input: &[u8]| {
    if input.len() < 12 {
        return;
    }
    let word = |i: usize| u32::from_le_bytes(input[i..i + 4].try_into().unwrap());
    let (a, b, c) = (word(0), word(4), word(8));
    let text = CString::new(
        input[12..]
            .iter()
            .copied()
            .filter(|&x| x != 0)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    unsafe {
        let ctx = xt_context_new(std::ptr::null(), a % 3);
        if ctx.is_null() {
            assert_eq!(xt_last_error(), 1001);
            return;
        }
        let set = xt_set_option(ctx, b % 20, i64::from(c as i32));
        assert!(set == 0 || set == 1001, "{set}");
        let _ = xt_get_option(ctx, b % 20);
        let bind = xt_set_bind_address(ctx, text.as_ptr());
        assert!(bind == 0 || bind == 1001, "{bind}");
        let _ = xt_set_bind_address(ctx, std::ptr::null());
        let port = (c % 70000) as u16;
        let boundary_len = ((b as usize) % 64).min(input.len());
        let tcp = xt_start_tcp_listener(ctx, port, input.as_ptr(), boundary_len);
        if tcp == 0 {
            assert!(CODES.contains(&xt_last_error()), "{}", xt_last_error());
        }
        let udp = xt_start_udp_listener(ctx, 0);
        // Groups are parsed, never joined: the text is not a multicast address we allow here.
        if !text.as_bytes().starts_with(b"2") && !text.as_bytes().starts_with(b"f") {
            let joined = xt_join_multicast_group(ctx, udp, text.as_ptr());
            assert!(!joined);
        }
        for id in [u64::from(a), u64::from(tcp), u64::from(udp), 0, u64::MAX] {
            let sent = xt_send_data(ctx, id, input.as_ptr(), input.len());
            assert!(sent == 106 || sent == 1001 || sent == 0, "{sent}");
            let _ = xt_disconnect(ctx, id);
            let _ = xt_listener_port(ctx, id as u32);
            let _ = xt_stop_udp_listener(ctx, id as u32);
        }
        let _ = xt_send_data(ctx, 1, std::ptr::null(), (c as usize) % 8);
        let _ = xt_error_text(a as i32);
        let _ = xt_poll(ctx, 0);
        let _ = xt_stop_tcp_listener(ctx, tcp);
        xt_context_free(ctx);
    }
});
