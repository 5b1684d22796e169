//! Panics inside xtnet: caught where they happen (the C boundary, the dispatcher, each
//! connection's task, each listener's task), reported through the host's `log` callback and
//! error codes, and never printed to the host's stderr.
//!
//! Rust prints a panic from its panic hook, before any `catch_unwind` sees it. So xtnet installs
//! a hook (once, chaining to the one it found) that stays quiet on xtnet's own threads and
//! inside xtnet's C calls, and keeps the message (with its location) for the catcher to report.
//! Panics elsewhere in the process, and inside the host's own callbacks, go to the previous
//! hook as before.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::sync::Once;

thread_local! {
    /// Inside an xtnet C call (nested calls count up).
    static IN_LIBRARY: Cell<u32> = const { Cell::new(0) };
    /// Inside a host callback (called from xtnet): the host's panics are the host's.
    static IN_HOST: Cell<u32> = const { Cell::new(0) };
    /// The last quiet panic's message, for whoever catches it.
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Threads xtnet starts are named so (runtime, dispatcher, resolver).
const THREAD_PREFIX: &str = "xtnet-";

fn quiet_here() -> bool {
    IN_HOST.with(Cell::get) == 0
        && (IN_LIBRARY.with(Cell::get) > 0
            || std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(THREAD_PREFIX)))
}

/// Installs the hook (once per process).
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if quiet_here() {
                let what = payload_text(info.payload());
                let text = match info.location() {
                    Some(l) => format!("{what} (at {}:{})", l.file(), l.line()),
                    None => what,
                };
                LAST.with(|l| *l.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// Marks the current thread as inside an xtnet C call while the guard lives.
pub(crate) struct LibraryCall;

impl LibraryCall {
    pub(crate) fn enter() -> LibraryCall {
        IN_LIBRARY.with(|d| d.set(d.get() + 1));
        LibraryCall
    }
}

impl Drop for LibraryCall {
    fn drop(&mut self) {
        IN_LIBRARY.with(|d| d.set(d.get() - 1));
    }
}

/// Runs a host callback: a panic inside it is the host's (printed as the host's hook says).
pub(crate) fn host_call<R>(f: impl FnOnce() -> R) -> R {
    struct Out;
    impl Drop for Out {
        fn drop(&mut self) {
            IN_HOST.with(|d| d.set(d.get() - 1));
        }
    }
    IN_HOST.with(|d| d.set(d.get() + 1));
    let _out = Out;
    f()
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// What a caught panic said: the hook's text with its location, else the payload's.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    LAST.with(|l| l.borrow_mut().take())
        .unwrap_or_else(|| payload_text(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::catch_unwind;

    #[test]
    fn a_quiet_panic_keeps_its_message_and_location_for_the_catcher() {
        install_hook();
        let _call = LibraryCall::enter();
        let payload = catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        let text = message(&*payload);
        assert!(text.starts_with("boom 7 (at src/panics.rs:"), "{text}");
        // Taken once.
        assert_eq!(message(&*payload), "boom 7");
    }

    #[test]
    fn library_calls_nest_and_host_calls_are_not_quiet() {
        let outer = LibraryCall::enter();
        assert!(quiet_here());
        {
            let _inner = LibraryCall::enter();
            assert!(quiet_here());
            host_call(|| assert!(!quiet_here(), "the host's own panic is not ours"));
            assert!(quiet_here());
        }
        drop(outer);
        let named_test_thread_is_quiet = quiet_here();
        assert!(!named_test_thread_is_quiet);
        let xtnet_thread = std::thread::Builder::new()
            .name("xtnet-io".into())
            .spawn(quiet_here)
            .unwrap()
            .join()
            .unwrap();
        assert!(xtnet_thread);
    }
}
