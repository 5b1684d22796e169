//! TLS: the options a TLS call takes (`XtTlsOptions`, copied by the call) and outgoing TLS
//! connections.
//!
//! Trust is the device's kind, not only the web's: the web's roots with a name check, a CA
//! file, a pinned key (a device's self-signed certificate, whatever its names say), or trust on
//! first use (accept, and read `info->tls_peer_fingerprint` to pin it next time).

use super::context::{context, XtContext};
use super::{bytes_arg, ffi_body, str_arg, value_or};
use crate::error::Error;
use crate::tls::{parse_pin, TlsClient, TlsServer, Trust};
use std::ffi::c_char;
use std::ptr::null;

/// The roots of the web (Mozilla's set) and a check of the server's name (the default).
pub const XT_TRUST_SYSTEM: u32 = 0;
/// Only certificates chaining to the certificates in `ca_file` (PEM); the name is checked.
pub const XT_TRUST_CA_FILE: u32 = 1;
/// Only a certificate whose SubjectPublicKeyInfo SHA-256 is `pin_sha256`; no name check.
pub const XT_TRUST_PIN: u32 = 2;
/// Any certificate (trust on first use): read `info->tls_peer_fingerprint` and pin it next time.
pub const XT_TRUST_ANY: u32 = 3;

/// How a TLS call trusts its peer (and, for listeners, which certificate it presents).
/// Copied by the call that takes it; files are read during that call. Every pointer may be
/// NULL where the field does not apply.
#[repr(C)]
pub struct XtTlsOptions {
    /// `sizeof(XtTlsOptions)` as the host compiled it: lets the struct grow.
    pub struct_size: u32,
    /// `XT_TRUST_*`.
    pub trust: u32,
    /// PEM file of CA certificates, for `XT_TRUST_CA_FILE`.
    pub ca_file: *const c_char,
    /// 64 hex digits (any case, ':' allowed), for `XT_TRUST_PIN`.
    pub pin_sha256: *const c_char,
    /// The name sent (SNI) and checked; NULL: the host given to the open call (an IP address
    /// is checked against the certificate's IP entries and sends no SNI).
    pub server_name: *const c_char,
    /// PEM certificate chain: a listener's certificate, or a client certificate.
    pub cert_file: *const c_char,
    /// PEM private key for `cert_file`.
    pub key_file: *const c_char,
}

/// The optional text of a field: NULL and "" are none.
///
/// # Safety
/// `p` is NULL or NUL-terminated.
unsafe fn opt_str(p: *const c_char, what: &str) -> Result<Option<String>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: per this function's contract.
    let s = unsafe { str_arg(p, what) }?;
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

/// The host's options, once their `struct_size` says they are complete.
///
/// # Safety
/// `tls` is non-NULL and points to at least `struct_size` readable bytes.
unsafe fn checked<'a>(tls: *const XtTlsOptions) -> Result<&'a XtTlsOptions, Error> {
    // SAFETY: the struct starts with its u32 size; the size is checked before the rest is read.
    let size = unsafe { std::ptr::read_unaligned(tls.cast::<u32>()) } as usize;
    if size < std::mem::size_of::<XtTlsOptions>() {
        return Err(Error::invalid_argument(format!(
            "XtTlsOptions.struct_size is {size}; set it to sizeof(XtTlsOptions)"
        )));
    }
    // SAFETY: the host's struct, at least as large as ours.
    Ok(unsafe { &*tls })
}

/// The client side of `tls` (NULL: the defaults).
///
/// # Safety
/// `tls` is NULL or points to an `XtTlsOptions` at least `struct_size` bytes long whose
/// strings are NULL or NUL-terminated.
pub(super) unsafe fn client_options(tls: *const XtTlsOptions) -> Result<TlsClient, Error> {
    if tls.is_null() {
        return Ok(TlsClient {
            trust: Trust::System,
            server_name: None,
            client_cert: None,
        });
    }
    // SAFETY: per this function's contract.
    let o = unsafe { checked(tls) }?;
    // SAFETY: the fields are NULL or NUL-terminated per this function's contract.
    let (ca_file, pin, server_name, cert, key) = unsafe {
        (
            opt_str(o.ca_file, "ca_file")?,
            opt_str(o.pin_sha256, "pin_sha256")?,
            opt_str(o.server_name, "server_name")?,
            opt_str(o.cert_file, "cert_file")?,
            opt_str(o.key_file, "key_file")?,
        )
    };
    let client_cert = cert_pair(cert, key, "a client certificate")?;
    let trust = match o.trust {
        XT_TRUST_SYSTEM => Trust::System,
        XT_TRUST_CA_FILE => Trust::CaFile(
            ca_file.ok_or_else(|| Error::invalid_argument("XT_TRUST_CA_FILE needs ca_file"))?,
        ),
        XT_TRUST_PIN => {
            Trust::Pin(parse_pin(&pin.ok_or_else(|| {
                Error::invalid_argument("XT_TRUST_PIN needs pin_sha256")
            })?)?)
        }
        XT_TRUST_ANY => Trust::Any,
        other => {
            return Err(Error::invalid_argument(format!(
                "unknown trust mode {other}"
            )))
        }
    };
    Ok(TlsClient {
        trust,
        server_name,
        client_cert,
    })
}

/// A certificate file and its key file, which go together.
fn cert_pair(
    cert: Option<String>,
    key: Option<String>,
    what: &str,
) -> Result<Option<(String, String)>, Error> {
    match (cert, key) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        _ => Err(Error::invalid_argument(format!(
            "{what} needs both cert_file and key_file"
        ))),
    }
}

/// The listener side of `tls`: its certificate and key (NULL `tls`, or both files NULL: a
/// self-signed certificate made for this host).
///
/// # Safety
/// As for `client_options`.
unsafe fn server_options(tls: *const XtTlsOptions) -> Result<TlsServer, Error> {
    if tls.is_null() {
        return Ok(TlsServer::default());
    }
    // SAFETY: per this function's contract.
    let o = unsafe { checked(tls) }?;
    // SAFETY: the fields are NULL or NUL-terminated per this function's contract.
    let (cert, key, ca) = unsafe {
        (
            opt_str(o.cert_file, "cert_file")?,
            opt_str(o.key_file, "key_file")?,
            opt_str(o.ca_file, "ca_file")?,
        )
    };
    Ok(TlsServer {
        cert_and_key: cert_pair(cert, key, "a listener's certificate")?,
        client_ca: ca,
    })
}

/// Starts a framed TCP listener over TLS: as `xt_start_tcp_listener`, presenting the PEM
/// chain `tls->cert_file` with its key `tls->key_file` — or, with neither (or NULL `tls`), a
/// self-signed certificate made now for this host's names and loopback addresses, whose
/// fingerprint `xt_listener_fingerprint` tells (for a device or user to pin). With
/// `tls->ca_file`, every client must present a certificate chaining to it (its fingerprint is
/// then `info->tls_peer_fingerprint`). A client's handshake must finish within
/// `XT_OPT_HTTP_REQUEST_TIMEOUT_MS`; one that fails or is too slow is closed without any event
/// (the host never hears of it); `new_connection` comes after the handshake, with
/// `info->tls_protocol` set.
///
/// Returns the listener id, or 0 with `xt_last_error` set: as `xt_start_tcp_listener`, and
/// 1001 for unreadable or mismatched certificate and key files, an unreadable CA file or a
/// bad `struct_size`. Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context; `boundary` is NULL or points to `boundary_len` bytes;
/// `tls` is NULL or a valid `XtTlsOptions`.
#[no_mangle]
pub unsafe extern "C" fn xt_start_tls_listener(
    ctx: *mut XtContext,
    port: u16,
    boundary: *const u8,
    boundary_len: usize,
    tls: *const XtTlsOptions,
) -> u32 {
    ffi_body!(0, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let boundary = unsafe { bytes_arg(boundary, boundary_len, "boundary") }?;
            // SAFETY: per this function's contract.
            let options = unsafe { server_options(tls) }?;
            c.start_tls_listener(port, boundary, &options)
        });
        value_or(result, 0)
    })
}

/// Starts an HTTPS listener: XTension's HTML listener (`xt_start_html_listener`: the same
/// `page_request`, limits, deferred replies and WebSocket upgrades — then `wss://`) over TLS,
/// presenting `tls->cert_file` with `tls->key_file`, or with neither (or NULL `tls`) a
/// self-signed certificate made for this host (see `xt_listener_fingerprint`). With
/// `tls->ca_file`, every client must present a certificate chaining to it; its fingerprint is
/// then in the request's connection info. A client's handshake must finish within
/// `XT_OPT_HTTP_REQUEST_TIMEOUT_MS`; one that fails or is too slow is closed without any
/// event. Stop it with `xt_stop_html_listener`.
///
/// Returns the listener id, or 0 with `xt_last_error` set: as `xt_start_html_listener`, and
/// 1001 for unreadable or mismatched certificate and key files, an unreadable CA file or a
/// bad `struct_size`. Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context; `tls` is NULL or a valid `XtTlsOptions`.
#[no_mangle]
pub unsafe extern "C" fn xt_start_https_listener(
    ctx: *mut XtContext,
    port: u16,
    tls: *const XtTlsOptions,
) -> u32 {
    ffi_body!(0, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let options = unsafe { server_options(tls) }?;
            c.start_https_listener(port, &options)
        });
        value_or(result, 0)
    })
}

/// The hex SHA-256 of the SubjectPublicKeyInfo of the certificate a TLS or HTTPS listener presents
/// (what a client pins). Borrowed: valid until the listener stops. NULL with `xt_last_error`
/// set: 106 for an unknown id or a listener without TLS, 1001 for NULL ctx. Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn xt_listener_fingerprint(
    ctx: *mut XtContext,
    server_id: u32,
) -> *const c_char {
    ffi_body!(null(), {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| c.listener_fingerprint(server_id));
        // The registry keeps the text as long as the listener runs.
        value_or(result.map(|f| f.as_ptr()), null())
    })
}

/// Opens an outgoing TLS connection to `host` and `port`, framed on `boundary` as for
/// `xt_open_tcp_connection`, trusting the peer as `tls` says (NULL: `XT_TRUST_SYSTEM`).
/// Returns the connection id at once; `connected` follows once the handshake is done (its
/// info carries `tls_peer_fingerprint` and `tls_protocol`), or one final `socket_error`:
/// 1011 when the certificate is not trusted (the info and the message carry its fingerprint),
/// 1010 for other handshake failures (a peer that does not speak TLS, no common version),
/// 103/refused/unreachable as for TCP, ETIMEDOUT when connect and handshake together take
/// longer than `XT_OPT_CONNECT_TIMEOUT_MS`. Then it behaves as a TCP connection. With
/// `tls->cert_file` and `tls->key_file`, it presents that client certificate to a server that
/// asks for one.
///
/// Returns 0 with `xt_last_error` set: 1001 for NULL ctx or host, a bad `struct_size`, trust
/// mode, pin, server name, an unreadable CA file, or a client certificate that is unreadable,
/// half given or does not fit its key; 107 for port 0. Any thread.
///
/// # Safety
/// `ctx` is NULL or a live context; `host` is NULL or NUL-terminated; `boundary` is NULL or
/// points to `boundary_len` bytes; `tls` is NULL or a valid `XtTlsOptions`.
#[no_mangle]
pub unsafe extern "C" fn xt_open_tls_connection(
    ctx: *mut XtContext,
    host: *const c_char,
    port: u16,
    boundary: *const u8,
    boundary_len: usize,
    tls: *const XtTlsOptions,
) -> u64 {
    ffi_body!(0, {
        // SAFETY: per this function's contract.
        let result = unsafe { context(ctx) }.and_then(|c| {
            // SAFETY: per this function's contract.
            let host = unsafe { str_arg(host, "host") }?;
            // SAFETY: per this function's contract.
            let boundary = unsafe { bytes_arg(boundary, boundary_len, "boundary") }?;
            // SAFETY: per this function's contract.
            let options = unsafe { client_options(tls) }?;
            c.open_tls_connection(host, port, boundary, &options)
        });
        value_or(result, 0)
    })
}
