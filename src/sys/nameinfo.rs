//! getnameinfo(3): the system resolver's name for an address (it blocks: callers run it on a
//! thread of its own).

use std::ffi::CStr;
use std::net::SocketAddr;

/// getnameinfo with NI_NAMEREQD: a name or nothing, never the address as text.
pub(crate) fn name_info(address: SocketAddr) -> Option<String> {
    let raw = socket2::SockAddr::from(address);
    let mut host = [0 as libc::c_char; libc::NI_MAXHOST as usize];
    // SAFETY: `raw` is a valid socket address of the length given; `host` is writable for
    // its length and getnameinfo NUL-terminates what it writes there.
    let rc = unsafe {
        libc::getnameinfo(
            raw.as_ptr().cast(),
            raw.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: NUL-terminated by getnameinfo on success.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) }.to_string_lossy();
    let name = name.trim_end_matches('.');
    (!name.is_empty() && !name.chars().any(char::is_control)).then(|| name.to_owned())
}

/// This machine's host name (gethostname), if it has one.
pub(crate) fn host_name() -> Option<String> {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: `buf` is writable for its length; gethostname NUL-terminates on success (the
    // last byte stays 0 either way).
    if unsafe { libc::gethostname(buf.as_mut_ptr(), buf.len() - 1) } != 0 {
        return None;
    }
    // SAFETY: NUL-terminated, see above.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    (!name.is_empty()).then_some(name)
}
