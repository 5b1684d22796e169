//! TCP flow control: why a connection stops reading, and what wakes it.
//!
//! Bytes read but not yet delivered to the host are counted per connection ([`Flow`]) and per
//! context ([`Backlog`]); each queued event also costs [`EVENT_COST`], so floods of empty
//! messages count too. A connection stops reading when
//! - its own undelivered bytes pass [`FLOW_HIGH`] (it reads again below [`FLOW_LOW`]), or
//! - the context's pass [`BACKLOG_LIMIT`] (it is parked on the backlog, which wakes every parked
//!   reader when the total falls below half of that), or
//! - the peer closed: then it waits until everything read was delivered before its final event.
//!
//! TCP then pushes back on the peer; nothing is dropped. The dispatcher credits delivered bytes
//! back through [`Credits`], once per run of one connection's events rather than per message.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Undelivered bytes of one connection above which reading pauses, and below which it resumes.
pub(crate) const FLOW_HIGH: usize = 256 << 10;
pub(crate) const FLOW_LOW: usize = 64 << 10;
/// What a queued event costs on top of its bytes (so floods of empty messages count too).
pub(crate) const EVENT_COST: usize = 64;
/// Undelivered bytes of a whole context above which every reader pauses, and below which the
/// parked ones are woken.
const BACKLOG_HIGH: usize = 64 << 20;
const BACKLOG_LOW: usize = 32 << 20;

/// The most undelivered bytes a context holds before every reader pauses (a connection's own
/// limit is lower; this bounds the sum over many connections).
pub const BACKLOG_LIMIT: usize = BACKLOG_HIGH;

/// A reader flow control may pause and wake: a connection's task, reached through it.
pub(crate) trait Reader: Send + Sync {
    fn flow(&self) -> &Flow;
    /// Wakes the reader's task to look at its state again.
    fn wake_reader(&self);
}

/// One connection's flow counters.
#[derive(Default)]
pub(crate) struct Flow {
    /// Bytes (plus a cost per event) queued for the host and not yet delivered.
    undelivered: AtomicUsize,
    /// The reader paused on `undelivered` and must be woken when it falls.
    waiting: AtomicBool,
    /// On the backlog's list of parked readers (so it is put there once).
    parked: AtomicBool,
}

/// What a reader may do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pace {
    /// Read more.
    Read,
    /// The peer closed and everything read was delivered: the connection may end.
    Drained,
    /// Do not read: a wake comes when that changes (the reader has registered its waker).
    Paused,
    /// The state changed while deciding: decide again.
    Again,
}

impl Flow {
    /// The reader queued `events` events carrying `bytes` bytes for the host.
    pub(crate) fn queued(&self, bytes: usize, events: usize, backlog: &Backlog) {
        let cost = bytes + events * EVENT_COST;
        self.undelivered.fetch_add(cost, Ordering::SeqCst);
        backlog.add(cost);
    }

    /// The dispatcher delivered them; true when the reader must be woken.
    fn delivered(&self, bytes: usize, events: usize, backlog: &Backlog) -> bool {
        let cost = bytes + events * EVENT_COST;
        backlog.remove(cost);
        let after = self.undelivered.fetch_sub(cost, Ordering::SeqCst) - cost;
        // SeqCst with the reader's store to `waiting` and its second look at `undelivered` in
        // `pace`: either the reader sees this decrease, or this sees it waiting.
        after <= FLOW_LOW && self.waiting.load(Ordering::SeqCst)
    }

    /// Bytes (and event costs) queued for the host and not yet delivered.
    pub(crate) fn undelivered(&self) -> usize {
        self.undelivered.load(Ordering::SeqCst)
    }
}

/// Whether `reader` may read now; `eof`: the peer closed (nothing more to read, but the final
/// event waits until everything read was delivered).
pub(crate) fn pace<R: Reader + 'static>(reader: &Arc<R>, eof: bool, backlog: &Backlog) -> Pace {
    let flow = reader.flow();
    // One look decides both "drained" and "paused": with two, a delivery in between would
    // leave a closed connection paused with no wake to come.
    let undelivered = flow.undelivered();
    if eof && undelivered == 0 {
        return Pace::Drained;
    }
    if undelivered > FLOW_HIGH || (eof && undelivered > 0) {
        flow.waiting.store(true, Ordering::SeqCst);
        let undelivered = flow.undelivered();
        if undelivered <= FLOW_LOW && !(eof && undelivered > 0) {
            flow.waiting.store(false, Ordering::SeqCst);
            return Pace::Again;
        }
        return Pace::Paused;
    }
    flow.waiting.store(false, Ordering::Relaxed);
    if backlog.over() {
        if !flow.parked.swap(true, Ordering::SeqCst) {
            backlog.parked.lock().push(reader.clone());
        }
        // Parked first, then looked again: a drain in between is not missed.
        if backlog.over() {
            return Pace::Paused;
        }
    }
    Pace::Read
}

/// Undelivered event bytes of a whole context, and the readers parked until they drain.
#[derive(Default)]
pub(crate) struct Backlog {
    bytes: AtomicUsize,
    parked: Mutex<Vec<Arc<dyn Reader>>>,
}

impl Backlog {
    /// Counts bytes queued for the host (by a connection, or a datagram-like producer).
    pub(crate) fn add(&self, n: usize) {
        self.bytes.fetch_add(n, Ordering::SeqCst);
    }

    /// Counts them delivered; wakes every parked reader when the total falls below the low mark.
    pub(crate) fn remove(&self, n: usize) {
        let before = self.bytes.fetch_sub(n, Ordering::SeqCst);
        if before > BACKLOG_LOW && before - n <= BACKLOG_LOW {
            let parked = std::mem::take(&mut *self.parked.lock());
            for reader in parked {
                reader.flow().parked.store(false, Ordering::SeqCst);
                reader.wake_reader();
            }
        }
    }

    fn over(&self) -> bool {
        self.bytes.load(Ordering::SeqCst) > BACKLOG_HIGH
    }

    /// Bytes read from the network and not yet delivered to the host (plus a small cost per
    /// message).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::SeqCst)
    }
}

/// Delivered bytes not yet credited back to their reader (dispatcher side): applied once per
/// run of consecutive events of one reader, at the latest when the batch ends.
pub(crate) struct Credits<'a, R: Reader> {
    backlog: &'a Backlog,
    reader: Option<Arc<R>>,
    bytes: usize,
    events: usize,
}

impl<'a, R: Reader> Credits<'a, R> {
    pub(crate) fn new(backlog: &'a Backlog) -> Self {
        Credits {
            backlog,
            reader: None,
            bytes: 0,
            events: 0,
        }
    }

    pub(crate) fn add(&mut self, reader: &Arc<R>, bytes: usize, events: usize) {
        if !self.reader.as_ref().is_some_and(|r| Arc::ptr_eq(r, reader)) {
            self.apply();
            self.reader = Some(reader.clone());
        }
        self.bytes += bytes;
        self.events += events;
    }

    pub(crate) fn apply(&mut self) {
        if let Some(reader) = self.reader.take() {
            if reader
                .flow()
                .delivered(self.bytes, self.events, self.backlog)
            {
                reader.wake_reader();
            }
        }
        self.bytes = 0;
        self.events = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Probe {
        flow: Flow,
        wakes: AtomicUsize,
    }

    impl Reader for Probe {
        fn flow(&self) -> &Flow {
            &self.flow
        }
        fn wake_reader(&self) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wakes(p: &Probe) -> usize {
        p.wakes.load(Ordering::SeqCst)
    }

    #[test]
    fn reading_pauses_above_the_high_mark_and_resumes_below_the_low_mark() {
        let backlog = Backlog::default();
        let r = Arc::new(Probe::default());
        r.flow.queued(FLOW_HIGH - EVENT_COST, 1, &backlog);
        assert_eq!(
            pace(&r, false, &backlog),
            Pace::Read,
            "at the mark: still reading"
        );
        r.flow.queued(1, 0, &backlog);
        assert_eq!(pace(&r, false, &backlog), Pace::Paused);
        // Delivering down to just above the low mark wakes nobody.
        let mut credits = Credits::new(&backlog);
        credits.add(&r, FLOW_HIGH + 1 - FLOW_LOW - 1 - EVENT_COST, 1);
        credits.apply();
        assert_eq!(r.flow.undelivered(), FLOW_LOW + 1);
        assert_eq!(wakes(&r), 0);
        // Crossing it wakes the paused reader, once.
        credits.add(&r, 1, 0);
        credits.apply();
        assert_eq!(wakes(&r), 1);
        assert_eq!(pace(&r, false, &backlog), Pace::Read);
        assert_eq!(backlog.bytes(), FLOW_LOW);
    }

    #[test]
    fn a_reader_that_was_not_paused_is_not_woken() {
        let backlog = Backlog::default();
        let r = Arc::new(Probe::default());
        r.flow.queued(100, 1, &backlog);
        assert_eq!(pace(&r, false, &backlog), Pace::Read);
        let mut credits = Credits::new(&backlog);
        credits.add(&r, 100, 1);
        credits.apply();
        assert_eq!(wakes(&r), 0);
        assert_eq!(r.flow.undelivered(), 0);
    }

    #[test]
    fn the_hand_shake_loses_no_wake_in_either_order() {
        let backlog = Backlog::default();
        let r = Arc::new(Probe::default());
        let mut credits = Credits::new(&backlog);
        // The reader pauses first (marks itself waiting), then the dispatcher delivers: the
        // dispatcher sees it waiting and wakes it.
        r.flow.queued(FLOW_HIGH + 1, 0, &backlog);
        assert_eq!(pace(&r, false, &backlog), Pace::Paused);
        credits.add(&r, FLOW_HIGH + 1, 0);
        credits.apply();
        assert_eq!(wakes(&r), 1);
        assert_eq!(
            pace(&r, false, &backlog),
            Pace::Read,
            "woken, it reads again"
        );
        // The dispatcher delivers before the reader looks: no wake is needed, and the reader's
        // look sees the drained count and reads on instead of waiting for a wake.
        r.flow.queued(FLOW_HIGH + 1, 0, &backlog);
        credits.add(&r, FLOW_HIGH + 1, 0);
        credits.apply();
        assert_eq!(wakes(&r), 1);
        assert_eq!(pace(&r, false, &backlog), Pace::Read);
        assert_eq!(backlog.bytes(), 0);
    }

    #[test]
    fn after_end_of_stream_the_reader_waits_until_everything_was_delivered() {
        let backlog = Backlog::default();
        let r = Arc::new(Probe::default());
        r.flow.queued(10, 1, &backlog);
        assert_eq!(pace(&r, true, &backlog), Pace::Paused);
        let mut credits = Credits::new(&backlog);
        credits.add(&r, 10, 1);
        credits.apply();
        assert_eq!(
            wakes(&r),
            1,
            "the last delivery wakes it to end the connection"
        );
        assert_eq!(pace(&r, true, &backlog), Pace::Drained, "may end now");
        assert_eq!(r.flow.undelivered(), 0);
    }

    #[test]
    fn a_delivery_just_before_the_readers_look_after_end_of_stream_is_not_missed() {
        // The reader read the last bytes and the end of the stream; the dispatcher delivers
        // them before the reader looks (the reader was not waiting, so no wake comes). The
        // reader's look must then say "drained", not "paused": found by tests/c/stress_host.c,
        // where such a connection waited for ever for its final event.
        let backlog = Backlog::default();
        let r = Arc::new(Probe::default());
        r.flow.queued(10, 1, &backlog);
        let mut credits = Credits::new(&backlog);
        credits.add(&r, 10, 1);
        credits.apply();
        assert_eq!(wakes(&r), 0, "it was not waiting");
        assert_eq!(pace(&r, true, &backlog), Pace::Drained);
    }

    #[test]
    fn the_context_backlog_parks_readers_once_and_wakes_them_all_when_it_drains() {
        let backlog = Backlog::default();
        let big = Arc::new(Probe::default());
        let others: Vec<Arc<Probe>> = (0..3).map(|_| Arc::default()).collect();
        backlog.add(BACKLOG_HIGH + 1);
        for r in &others {
            assert_eq!(pace(r, false, &backlog), Pace::Paused);
            assert_eq!(pace(r, false, &backlog), Pace::Paused);
        }
        assert_eq!(backlog.parked.lock().len(), 3, "each parked once");
        // Falling below the high mark wakes nobody; below the low mark everybody.
        backlog.remove(BACKLOG_HIGH + 1 - BACKLOG_LOW - 1);
        assert!(others.iter().all(|r| wakes(r) == 0));
        backlog.remove(1);
        assert!(others.iter().all(|r| wakes(r) == 1));
        assert!(backlog.parked.lock().is_empty());
        assert!(others
            .iter()
            .all(|r| pace(r, false, &backlog) == Pace::Read));
        assert_eq!(wakes(&big), 0);
    }

    #[test]
    fn credits_are_applied_once_per_run_of_one_reader() {
        let backlog = Backlog::default();
        let a = Arc::new(Probe::default());
        let b = Arc::new(Probe::default());
        a.flow.queued(30, 3, &backlog);
        b.flow.queued(5, 1, &backlog);
        let mut credits = Credits::new(&backlog);
        credits.add(&a, 10, 1);
        credits.add(&a, 20, 2);
        assert_eq!(a.flow.undelivered(), 30 + 3 * EVENT_COST, "not yet applied");
        credits.add(&b, 5, 1); // another reader: a's run is applied
        assert_eq!(a.flow.undelivered(), 0);
        credits.apply();
        assert_eq!(b.flow.undelivered(), 0);
        assert_eq!(backlog.bytes(), 0);
    }
}
