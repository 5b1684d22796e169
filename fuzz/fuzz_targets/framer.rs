//! The framer against a naive reference splitter: any boundary, any stream, any split into
//! reads, any length limit. The output must be exactly the reference's; an error exactly when
//! some message (or the remainder at the end) is longer than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtnet::framing::Framer;

/// Leftmost, non-overlapping split of the whole stream: the messages and the remainder.
fn reference_split(stream: &[u8], boundary: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut messages = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i + boundary.len() <= stream.len() {
        if &stream[i..i + boundary.len()] == boundary {
            messages.push(stream[start..i].to_vec());
            i += boundary.len();
            start = i;
        } else {
            i += 1;
        }
    }
    (messages, stream[start..].to_vec())
}

fuzz_target!(|input: &[u8]| {
    // Layout: [boundary length 1..=8][max_len][read size][boundary][stream...]
    if input.len() < 3 {
        return;
    }
    let blen = (input[0] % 8) as usize + 1;
    let max_len = input[1] as usize * 4;
    let read = (input[2] as usize % 64) + 1;
    let rest = &input[3..];
    if rest.len() < blen {
        return;
    }
    let (boundary, stream) = rest.split_at(blen);
    let (messages, remainder) = reference_split(stream, boundary);
    let too_long = messages.iter().any(|m| m.len() > max_len) || remainder.len() > max_len;
    let mut framer = Framer::for_boundary(boundary, max_len);
    let mut out = Vec::new();
    let mut result = Ok(());
    for chunk in stream.chunks(read) {
        result = framer.push(chunk, &mut out);
        if result.is_err() {
            break;
        }
        // Memory stays bounded whatever the stream.
        assert!(framer.buffered() <= max_len + blen);
    }
    let last = match result {
        Ok(()) => framer.finish(),
        Err(e) => Err(e),
    };
    match last {
        Ok(tail) => {
            assert!(!too_long, "a message past the limit was not refused");
            let got: Vec<Vec<u8>> = out.iter().map(|b| b.to_vec()).collect();
            assert_eq!(got, messages);
            assert_eq!(tail.map(|b| b.to_vec()).unwrap_or_default(), remainder);
        }
        Err(e) => {
            assert!(too_long, "refused although every message fits");
            assert_eq!(e.limit, max_len);
        }
    }
});
