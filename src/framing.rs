//! The framer: splits a byte stream into messages on a boundary string, into messages of a
//! fixed length, or not at all (raw chunks) — XTension's terminator and length parsing.
//!
//! Pure (no I/O) so it can be tested exhaustively and fuzzed. Boundary semantics are those of a
//! plain left-to-right split of the whole stream on the boundary: the leftmost occurrence ends
//! a message, occurrences never overlap, empty messages between two boundaries are kept. Bytes
//! after the last boundary (or short of the length) wait for more data; [`Framer::finish`] hands
//! them out at end of stream, [`Framer::take_partial`] at any time (a timeout, a mode change).
//!
//! Memory is bounded: a message longer than `max_len` is an error as soon as that is certain, so
//! the buffer never holds more than `max_len + boundary_len - 1` unframed bytes plus one read.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem::Finder;
use std::sync::Arc;

/// How a stream splits: a boundary string with its searcher (built once, shared by every
/// connection of a listener), or a fixed length.
pub struct Boundary {
    finder: Option<Finder<'static>>,
    /// Fixed-length messages of this many bytes (the finder is then None).
    length: Option<usize>,
}

impl Boundary {
    /// An empty boundary means no framing.
    pub fn new(boundary: &[u8]) -> Self {
        Boundary {
            finder: (!boundary.is_empty()).then(|| Finder::new(boundary).into_owned()),
            length: None,
        }
    }

    /// Messages of exactly `n` bytes (at least 1).
    pub fn fixed_length(n: usize) -> Self {
        Boundary {
            finder: None,
            length: Some(n.max(1)),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        self.finder.as_ref().map_or(&[], |f| f.needle())
    }

    /// The mode this splits by.
    pub fn mode(self: &Arc<Self>) -> Mode {
        match (self.length, &self.finder) {
            (Some(n), _) => Mode::Length(n),
            (None, Some(_)) => Mode::Boundary(self.clone()),
            (None, None) => Mode::Raw,
        }
    }
}

/// A message exceeded the maximum length before a boundary arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    pub limit: usize,
}

/// How a stream is split, as a host chose it (`XT_FRAME_*`).
#[derive(Clone)]
pub enum Mode {
    /// Whatever arrived, as it arrived.
    Raw,
    /// Split on a boundary (never empty).
    Boundary(Arc<Boundary>),
    /// Messages of exactly this many bytes (at least 1).
    Length(usize),
}

impl Mode {
    /// The stream bytes `messages` (framed this way) came from, in order: what a framer of
    /// another mode must see again.
    pub fn unframe(&self, messages: &[Bytes]) -> Bytes {
        let boundary = match self {
            Mode::Boundary(b) => b.bytes(),
            Mode::Raw | Mode::Length(_) => &[],
        };
        let mut out =
            BytesMut::with_capacity(messages.iter().map(|m| m.len() + boundary.len()).sum());
        for m in messages {
            out.extend_from_slice(m);
            out.extend_from_slice(boundary);
        }
        out.freeze()
    }
}

/// Splits a stream into messages; with an empty boundary it passes chunks through unchanged.
pub struct Framer {
    boundary: Arc<Boundary>,
    max_len: usize,
    /// Unframed bytes (the start of a message whose boundary has not arrived), boxed so a
    /// framer between messages costs one pointer.
    partial: Option<Box<Partial>>,
}

struct Partial {
    buf: BytesMut,
    /// Offset in `buf` before which no boundary can start (already scanned).
    scan_from: usize,
}

impl Framer {
    /// A framer for `boundary` and messages of at most `max_len` bytes.
    pub fn new(boundary: Arc<Boundary>, max_len: usize) -> Self {
        Framer {
            boundary,
            max_len,
            partial: None,
        }
    }

    /// A framer for `mode`.
    pub fn for_mode(mode: &Mode, max_len: usize) -> Self {
        match mode {
            Mode::Raw => Self::for_boundary(b"", max_len),
            Mode::Boundary(b) => Self::new(b.clone(), max_len),
            Mode::Length(n) => Self::new(Arc::new(Boundary::fixed_length(*n)), max_len),
        }
    }

    /// The mode this framer splits by.
    pub fn mode(&self) -> Mode {
        self.boundary.mode()
    }

    /// The bytes held that do not form a message yet, taken out (none left).
    pub fn take_partial(&mut self) -> Option<Bytes> {
        self.partial
            .take()
            .and_then(|p| (!p.buf.is_empty()).then(|| p.buf.freeze()))
    }

    /// A framer with a boundary of its own (empty: no framing).
    pub fn for_boundary(boundary: &[u8], max_len: usize) -> Self {
        Self::new(Arc::new(Boundary::new(boundary)), max_len)
    }

    /// Whether a boundary is set.
    pub fn is_framed(&self) -> bool {
        self.boundary.finder.is_some()
    }

    /// Bytes held that do not yet form a message.
    pub fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.buf.len())
    }

    /// Memory held for unframed bytes.
    pub fn capacity(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.buf.capacity())
    }

    /// Frames `data` (the next bytes of the stream): every message it completes goes to `out`,
    /// in order. Messages are copied once, into allocations of their own size, so a read buffer
    /// can be reused at once and an idle connection holds no buffer.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Bytes>) -> Result<(), TooLong> {
        if let Some(n) = self.boundary.length {
            self.push_fixed(n, data, out);
            return Ok(());
        }
        let Some(finder) = &self.boundary.finder else {
            if !data.is_empty() {
                out.push(Bytes::copy_from_slice(data));
            }
            return Ok(());
        };
        if let Some(partial) = &mut self.partial {
            partial.buf.extend_from_slice(data);
            return self.drain_partial(out);
        }
        // Fast path, nothing buffered: find the messages in `data` itself, copy them all in one
        // allocation and slice it; only the tail after the last boundary is buffered.
        let blen = finder.needle().len();
        let mut ends = Vec::new();
        let mut start = 0;
        for at in finder.find_iter(data) {
            if at - start > self.max_len {
                return Err(TooLong {
                    limit: self.max_len,
                });
            }
            ends.push(at);
            start = at + blen;
        }
        if !ends.is_empty() {
            let framed = Bytes::copy_from_slice(&data[..start]);
            let mut from = 0;
            for at in ends {
                out.push(framed.slice(from..at));
                from = at + blen;
            }
        }
        if start < data.len() {
            self.partial = Some(Box::new(Partial {
                buf: BytesMut::from(&data[start..]),
                scan_from: 0,
            }));
            return self.drain_partial(out);
        }
        Ok(())
    }

    /// Fixed-length mode: whole messages of `n` bytes; the rest waits (at most n - 1 bytes).
    fn push_fixed(&mut self, n: usize, data: &[u8], out: &mut Vec<Bytes>) {
        let mut data = data;
        if let Some(p) = &mut self.partial {
            let need = n - p.buf.len();
            if data.len() < need {
                p.buf.extend_from_slice(data);
                return;
            }
            p.buf.extend_from_slice(&data[..need]);
            out.push(self.partial.take().expect("just used").buf.freeze());
            data = &data[need..];
        }
        let whole = data.len() / n * n;
        if whole > 0 {
            let framed = Bytes::copy_from_slice(&data[..whole]);
            for start in (0..whole).step_by(n) {
                out.push(framed.slice(start..start + n));
            }
        }
        if whole < data.len() {
            self.partial = Some(Box::new(Partial {
                buf: BytesMut::from(&data[whole..]),
                scan_from: 0,
            }));
        }
    }

    /// Moves every complete message out of the partial buffer into `out`, in order.
    fn drain_partial(&mut self, out: &mut Vec<Bytes>) -> Result<(), TooLong> {
        let (Some(finder), Some(p)) = (&self.boundary.finder, &mut self.partial) else {
            return Ok(());
        };
        let blen = finder.needle().len();
        loop {
            match finder.find(&p.buf[p.scan_from..]) {
                Some(i) => {
                    let end = p.scan_from + i;
                    if end > self.max_len {
                        return Err(TooLong {
                            limit: self.max_len,
                        });
                    }
                    out.push(p.buf.split_to(end).freeze());
                    p.buf.advance(blen);
                    p.scan_from = 0;
                }
                None => {
                    // A boundary can only still start in the last blen-1 bytes.
                    p.scan_from = p.buf.len().saturating_sub(blen - 1);
                    if p.scan_from > self.max_len {
                        return Err(TooLong {
                            limit: self.max_len,
                        });
                    }
                    if p.buf.is_empty() {
                        // Give the memory back: idle connections cost no buffer.
                        self.partial = None;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// End of stream: the bytes after the last boundary, if any, as the last message.
    pub fn finish(&mut self) -> Result<Option<Bytes>, TooLong> {
        let Some(mut p) = self.partial.take() else {
            return Ok(None);
        };
        if self.is_framed() && p.buf.len() > self.max_len {
            return Err(TooLong {
                limit: self.max_len,
            });
        }
        Ok((!p.buf.is_empty()).then(|| p.buf.split().freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: a plain leftmost, non-overlapping split of the whole stream.
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

    fn feed(framer: &mut Framer, chunks: &[&[u8]]) -> Result<(Vec<Vec<u8>>, Vec<u8>), TooLong> {
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk, &mut out)?;
        }
        let rest = framer.finish()?.map(|b| b.to_vec()).unwrap_or_default();
        Ok((out.into_iter().map(|b| b.to_vec()).collect(), rest))
    }

    #[test]
    fn simple_lines_and_empty_messages() {
        let mut f = Framer::for_boundary(b"\r\n", 1024);
        let (msgs, rest) = feed(&mut f, &[b"a\r\n\r\nbc\r", b"\nd"]).unwrap();
        assert_eq!(msgs, vec![b"a".to_vec(), b"".to_vec(), b"bc".to_vec()]);
        assert_eq!(rest, b"d");
    }

    #[test]
    fn raw_mode_passes_chunks() {
        let mut f = Framer::for_boundary(b"", 4);
        let mut out = Vec::new();
        f.push(b"hello world", &mut out).unwrap();
        assert_eq!(out, vec![Bytes::from_static(b"hello world")]);
        assert!(!f.is_framed());
    }

    #[test]
    fn too_long_is_detected_exactly_at_the_limit() {
        // A message of exactly max_len is fine, one more byte is not.
        let mut f = Framer::for_boundary(b"\n", 4);
        let (msgs, _) = feed(&mut f, &[b"abcd\n"]).unwrap();
        assert_eq!(msgs, vec![b"abcd".to_vec()]);
        let mut f = Framer::for_boundary(b"\n", 4);
        assert_eq!(feed(&mut f, &[b"abcde"]), Err(TooLong { limit: 4 }));
        // With a 3-byte boundary, 4 + 2 bytes may still be a message plus a partial boundary.
        let mut f = Framer::for_boundary(b"END", 4);
        let mut out = Vec::new();
        assert_eq!(f.push(b"abcdEN", &mut out), Ok(()));
        assert_eq!(f.push(b"D", &mut out), Ok(()));
        assert_eq!(out, vec![Bytes::from_static(b"abcd")]);
        // "EX" is not a boundary start, but that is only certain once a third byte follows.
        assert_eq!(f.push(b"abcdEX", &mut out), Ok(()));
        assert_eq!(f.push(b"Y", &mut out), Err(TooLong { limit: 4 }));
    }

    #[test]
    fn memory_stays_bounded_without_boundary() {
        let mut f = Framer::for_boundary(b"\r\n", 1000);
        let mut out = Vec::new();
        let mut fed = 0;
        let err = loop {
            fed += 97;
            if let Err(e) = f.push(&[b'x'; 97], &mut out) {
                break e;
            }
            assert!(f.buffered() <= 1001);
        };
        assert_eq!(err.limit, 1000);
        assert!(fed <= 1000 + 97 + 1);
    }

    #[test]
    fn buffer_is_released_when_empty() {
        let mut f = Framer::for_boundary(b"\n", 100);
        let mut out = Vec::new();
        f.push(b"abc", &mut out).unwrap();
        assert!(f.capacity() >= 3);
        f.push(b"\nx\n", &mut out).unwrap();
        assert_eq!(
            out,
            vec![Bytes::from_static(b"abc"), Bytes::from_static(b"x")]
        );
        assert_eq!(f.capacity(), 0);
    }

    fn boundary_strategy() -> impl Strategy<Value = Vec<u8>> {
        // Small alphabets make self-overlapping boundaries ("aa", "aba") and near misses common.
        prop_oneof![
            prop::collection::vec(0u8..3, 1..5),
            prop::collection::vec(any::<u8>(), 1..9),
        ]
    }

    fn stream_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
        boundary_strategy().prop_flat_map(|b| {
            let piece = prop_oneof![
                3 => prop::collection::vec(0u8..4, 0..6),
                1 => Just(b.clone()),
                1 => prop::collection::vec(any::<u8>(), 0..12),
            ];
            (
                Just(b),
                prop::collection::vec(piece, 0..24).prop_map(|v| v.concat()),
            )
        })
    }

    #[test]
    fn fixed_length_messages_at_every_split() {
        let stream: Vec<u8> = (0u8..=99).collect();
        for n in [1usize, 3, 7, 10, 100, 150] {
            for cut in 0..=stream.len() {
                let mut f = Framer::for_mode(&Mode::Length(n), 1 << 20);
                let mut out = Vec::new();
                f.push(&stream[..cut], &mut out).unwrap();
                f.push(&stream[cut..], &mut out).unwrap();
                let expect: Vec<&[u8]> = stream.chunks(n).filter(|c| c.len() == n).collect();
                let got: Vec<&[u8]> = out.iter().map(|b| &b[..]).collect();
                assert_eq!(got, expect, "n {n} cut {cut}");
                let rest = stream.len() % n;
                assert_eq!(f.buffered(), rest, "n {n} cut {cut}");
                assert_eq!(
                    f.take_partial().map(|b| b.to_vec()).unwrap_or_default(),
                    stream[stream.len() - rest..]
                );
                assert_eq!(f.buffered(), 0);
            }
        }
    }

    #[test]
    fn unframing_gives_back_the_stream() {
        let b = Mode::Boundary(Arc::new(Boundary::new(b"\r\n")));
        let msgs = [
            Bytes::from_static(b"one"),
            Bytes::from_static(b""),
            Bytes::from_static(b"three"),
        ];
        assert_eq!(&b.unframe(&msgs)[..], b"one\r\n\r\nthree\r\n");
        assert_eq!(&Mode::Length(3).unframe(&msgs)[..], b"onethree");
        assert_eq!(&Mode::Raw.unframe(&msgs)[..], b"onethree");
        // Framed, unframed and framed again: the same messages.
        let mut f = Framer::for_mode(&b, 100);
        let mut out = Vec::new();
        f.push(&b.unframe(&msgs), &mut out).unwrap();
        assert_eq!(out, msgs);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// A switch of mode at any message, with the rest of the stream framed again the new
        /// way (what `xt_set_framing` does), gives what framing the stream in two parts gives.
        #[test]
        fn a_mode_switch_reframes_the_rest_exactly(
            stream in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), Just(b'b')], 0..200),
            cut in 0usize..200,
            switch_after in 0usize..20,
            n in 1usize..9,
        ) {
            let old = Mode::Boundary(Arc::new(Boundary::new(b"\n")));
            let new = Mode::Length(n);
            let cut = cut.min(stream.len());
            // Framed the old way in two reads; after message `switch_after` the rest goes back.
            let mut f = Framer::for_mode(&old, 1 << 20);
            let mut first = Vec::new();
            f.push(&stream[..cut], &mut first).unwrap();
            let mut second = Vec::new();
            f.push(&stream[cut..], &mut second).unwrap();
            let all: Vec<Bytes> = first.into_iter().chain(second).collect();
            let k = switch_after.min(all.len());
            let mut rest = old.unframe(&all[k..]).to_vec();
            rest.extend_from_slice(&f.take_partial().unwrap_or_default());
            let mut g = Framer::for_mode(&new, 1 << 20);
            let mut after = Vec::new();
            g.push(&rest, &mut after).unwrap();
            // The reference: the bytes of the first k messages (with their boundaries) are the
            // old way's, everything after them is split into n-byte messages.
            let consumed: usize = all[..k].iter().map(|m| m.len() + 1).sum();
            let expect: Vec<&[u8]> = stream[consumed..].chunks(n).filter(|c| c.len() == n).collect();
            let got: Vec<&[u8]> = after.iter().map(|b| &b[..]).collect();
            prop_assert_eq!(got, expect);
            prop_assert_eq!(g.buffered(), (stream.len() - consumed) % n);
        }

        /// Every split offset of a stream gives exactly the reference split.
        #[test]
        fn every_two_chunk_split_matches_reference((boundary, stream) in stream_strategy()) {
            let expected = reference_split(&stream, &boundary);
            for k in 0..=stream.len() {
                let mut f = Framer::for_boundary(&boundary, usize::MAX / 2);
                let got = feed(&mut f, &[&stream[..k], &stream[k..]]).unwrap();
                prop_assert_eq!(&got, &expected, "split at {}", k);
            }
            // One byte at a time: the hardest case for boundaries split across reads.
            let mut f = Framer::for_boundary(&boundary, usize::MAX / 2);
            let chunks: Vec<&[u8]> = stream.chunks(1).collect();
            prop_assert_eq!(feed(&mut f, &chunks).unwrap(), expected);
        }

        /// Random multi-chunk splits, and the length limit: an error exactly when some message
        /// (or the trailing remainder) is longer than the limit.
        #[test]
        fn random_splits_and_limits(
            (boundary, stream) in stream_strategy(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            max_len in 0usize..16,
        ) {
            let (messages, rest) = reference_split(&stream, &boundary);
            let mut offsets: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            offsets.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for o in offsets.into_iter().chain([stream.len()]) {
                chunks.push(&stream[prev..o]);
                prev = o;
            }
            let mut f = Framer::for_boundary(&boundary, max_len);
            let too_long = messages.iter().any(|m| m.len() > max_len) || rest.len() > max_len;
            match feed(&mut f, &chunks) {
                Ok(got) => {
                    prop_assert!(!too_long);
                    prop_assert_eq!(got, (messages, rest));
                }
                Err(e) => {
                    prop_assert!(too_long);
                    prop_assert_eq!(e.limit, max_len);
                }
            }
        }
    }
}
