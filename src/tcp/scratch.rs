//! The read buffer of each runtime thread: connections hold no read buffer of their own, so
//! an idle connection costs no buffer memory. Borrowed only by synchronous code (never across
//! an await).

use std::cell::RefCell;

/// Bytes read from a socket (or decrypted) in one call.
pub(super) const READ_CHUNK: usize = 64 << 10;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Runs `f` with this thread's read buffer.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|scratch| f(&mut scratch.borrow_mut()[..]))
}
