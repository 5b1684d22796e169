//! TLS for outgoing connections, on rustls: the trust modes a device needs (the web's roots
//! with a name check, a CA file, a pinned key, or trust on first use), the fingerprint of the
//! key the peer presented (SHA-256 of its SubjectPublicKeyInfo), and errors a user can act on.
//!
//! The verifier is made per connection: it remembers the certificate the peer presented, so a
//! refused one can still be reported with its fingerprint (`XT_ERR_TLS_UNTRUSTED`), and a
//! trusted-on-first-use one can be pinned next time.

use crate::error::{self, Error};
use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::ffi::CString;
use std::sync::{Arc, OnceLock};

/// How the peer's certificate is trusted (`XT_TRUST_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The roots of the web (Mozilla's set, webpki-roots), with a name check.
    System,
    /// Only certificates chaining to the CA certificates in this PEM file, with a name check.
    CaFile(String),
    /// Only a certificate whose SubjectPublicKeyInfo has this SHA-256; no name check.
    Pin([u8; 32]),
    /// Any certificate (trust on first use): the host reads the fingerprint and pins it.
    Any,
}

/// What an outgoing TLS connection is opened with.
#[derive(Clone, Debug)]
pub struct TlsClient {
    pub trust: Trust,
    /// The name sent (SNI) and checked; None: the host given to the open call.
    pub server_name: Option<String>,
    /// A client certificate (PEM chain file, PEM key file) for servers that ask for one.
    pub client_cert: Option<(String, String)>,
}

/// What the host is told about a TLS connection.
#[derive(Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// Hex SHA-256 of the peer's SubjectPublicKeyInfo ("" without a peer certificate).
    pub fingerprint: CString,
    /// "TLSv1.3" or "TLSv1.2".
    pub protocol: &'static std::ffi::CStr,
}

/// Parses a pin: 64 hex digits, any case, ':' (and spaces) allowed between them.
pub fn parse_pin(text: &str) -> Result<[u8; 32], Error> {
    let digits: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bad = || {
        Error::invalid_argument(format!(
            "pin_sha256 must be 64 hex digits (a SHA-256), got {text:?}"
        ))
    };
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut pin = [0u8; 32];
    for (i, byte) in pin.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(pin)
}

/// The SHA-256 of a certificate's SubjectPublicKeyInfo: what a pin names. None when the
/// certificate cannot be parsed.
pub fn spki_sha256(cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    Some(Sha256::digest(spki.as_ref()).into())
}

/// Lower-case hex, as hosts store and compare fingerprints.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn web_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

fn roots_from(ca_file: &str) -> Result<Arc<RootCertStore>, Error> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| Error::invalid_argument(format!("cannot read CA file {ca_file:?}: {e}")))?;
    for cert in certs {
        let cert = cert.map_err(|e| {
            Error::invalid_argument(format!("CA file {ca_file:?} is not PEM certificates: {e}"))
        })?;
        roots.add(cert).map_err(|e| {
            Error::invalid_argument(format!("CA file {ca_file:?} has a bad certificate: {e}"))
        })?;
    }
    if roots.is_empty() {
        return Err(Error::invalid_argument(format!(
            "CA file {ca_file:?} holds no certificate"
        )));
    }
    Ok(Arc::new(roots))
}

/// A verifier for one connection: decides as its trust mode says, and remembers the
/// fingerprint of what the peer presented either way.
#[derive(Debug)]
pub(crate) struct Verifier {
    trust: Trust,
    /// The web-PKI check for the System and CaFile modes.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    presented: Mutex<Option<[u8; 32]>>,
}

impl Verifier {
    /// The fingerprint of the certificate the peer presented, if it presented one.
    pub(crate) fn presented(&self) -> Option<String> {
        self.presented.lock().map(|f| hex(&f))
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = spki_sha256(end_entity);
        *self.presented.lock() = fingerprint;
        match (&self.trust, &self.webpki) {
            (Trust::Any, _) => Ok(ServerCertVerified::assertion()),
            (Trust::Pin(pin), _) => match fingerprint {
                Some(f) if f == *pin => Ok(ServerCertVerified::assertion()),
                _ => Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                )),
            },
            (_, Some(webpki)) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            (_, None) => Err(rustls::Error::General("no verifier".into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Whatever the trust mode, the peer must own the key it presented.
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The client configuration of one connection, and its verifier.
pub(crate) fn client_config(tls: &TlsClient) -> Result<(Arc<ClientConfig>, Arc<Verifier>), Error> {
    let provider = provider();
    let webpki = match &tls.trust {
        Trust::System => Some(web_roots()),
        Trust::CaFile(path) => Some(roots_from(path)?),
        Trust::Pin(_) | Trust::Any => None,
    }
    .map(|roots| {
        WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| Error::invalid_argument(format!("cannot use those roots: {e}")))
    })
    .transpose()?;
    let verifier = Arc::new(Verifier {
        trust: tls.trust.clone(),
        webpki,
        provider: provider.clone(),
        presented: Mutex::new(None),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(error::TLS_HANDSHAKE, format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone());
    let config = match &tls.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            let (chain, key) = read_cert_and_key(cert_file, key_file)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::invalid_argument(format!("client certificate and key do not fit: {e}"))
            })?
        }
    };
    Ok((Arc::new(config), verifier))
}

/// The name sent and checked: the configured one, else the host as given (an IP address is
/// checked against the certificate's IP entries and sends no SNI).
pub(crate) fn server_name(tls: &TlsClient, host: &str) -> Result<ServerName<'static>, Error> {
    let name = tls.server_name.as_deref().unwrap_or(host);
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned())
        .map_err(|_| Error::invalid_argument(format!("not a valid TLS server name: {name:?}")))
}

/// A failed handshake as the host sees it: 1011 (with the presented fingerprint) when the
/// certificate was not trusted, else 1010.
pub(crate) fn handshake_error(e: &std::io::Error, name: &str, verifier: &Verifier) -> Error {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(why)) => {
            let fingerprint = verifier.presented().unwrap_or_default();
            Error::new(
                error::TLS_UNTRUSTED,
                format!(
                    "certificate for {name} not trusted ({why:?}): fingerprint {fingerprint}; pin it (XT_TRUST_PIN) or give its CA (XT_TRUST_CA_FILE) to trust it"
                ),
            )
        }
        Some(other) => Error::new(
            error::TLS_HANDSHAKE,
            format!("TLS handshake with {name} failed: {other}"),
        ),
        None => Error::new(
            error::TLS_HANDSHAKE,
            format!("TLS handshake with {name} failed: {e} (is it a TLS server?)"),
        ),
    }
}

/// The protocol's name as hosts see it.
fn protocol_name(version: Option<rustls::ProtocolVersion>) -> &'static std::ffi::CStr {
    match version {
        Some(rustls::ProtocolVersion::TLSv1_3) => c"TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => c"TLSv1.2",
        _ => c"",
    }
}

/// What the host is told once the handshake is done.
pub(crate) fn info_of(conn: &rustls::ClientConnection) -> TlsInfo {
    TlsInfo {
        fingerprint: CString::new(first_fingerprint(conn.peer_certificates())).unwrap_or_default(),
        protocol: protocol_name(conn.protocol_version()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_in_any_case_with_colons() {
        let hex64 = "AB".repeat(32);
        assert_eq!(parse_pin(&hex64).unwrap(), [0xab; 32]);
        let colons: Vec<String> = (0..32).map(|_| "ab".to_owned()).collect();
        assert_eq!(parse_pin(&colons.join(":")).unwrap(), [0xab; 32]);
        for bad in ["", "ab", &"zz".repeat(32), &"a".repeat(65)] {
            assert_eq!(
                parse_pin(bad).unwrap_err().code,
                error::INVALID_ARGUMENT,
                "{bad}"
            );
        }
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}

/// What a TLS listener presents: its own certificate chain and key, or (None) a self-signed
/// certificate made for this host's names and loopback addresses; and, with `client_ca`, the
/// CA file a client's certificate must chain to (then every client must present one).
#[derive(Clone, Debug, Default)]
pub struct TlsServer {
    pub cert_and_key: Option<(String, String)>,
    pub client_ca: Option<String>,
}

/// A PEM certificate chain and its private key, read from their files.
fn read_cert_and_key(
    cert_file: &str,
    key_file: &str,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    Error,
> {
    use rustls::pki_types::PrivateKeyDer;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| Error::invalid_argument(format!("cannot read {cert_file:?}: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| Error::invalid_argument(format!("{cert_file:?} is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(Error::invalid_argument(format!(
            "{cert_file:?} holds no certificate"
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        Error::invalid_argument(format!("cannot read a private key from {key_file:?}: {e}"))
    })?;
    Ok((chain, key))
}

/// A listener's server configuration and the fingerprint of the certificate it presents.
pub(crate) fn server_config(
    tls: &TlsServer,
) -> Result<(Arc<rustls::ServerConfig>, CString), Error> {
    use rustls::pki_types::PrivateKeyDer;
    // Read first: a bad CA file fails the call before a certificate is made.
    let client_roots = tls.client_ca.as_deref().map(roots_from).transpose()?;
    let (chain, key) = match &tls.cert_and_key {
        Some((cert_file, key_file)) => read_cert_and_key(cert_file, key_file)?,
        None => {
            let mut names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            if let Some(host) = crate::sys::nameinfo::host_name() {
                names.push(host.clone());
                if !host.contains('.') {
                    names.push(format!("{host}.local"));
                }
            }
            let made = rcgen::generate_simple_self_signed(names)
                .map_err(|e| Error::invalid_argument(format!("cannot make a certificate: {e}")))?;
            let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
            (vec![made.cert.der().clone()], key)
        }
    };
    let fingerprint = spki_sha256(&chain[0])
        .map(|f| hex(&f))
        .ok_or_else(|| Error::invalid_argument("the listener's certificate cannot be parsed"))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(error::TLS_HANDSHAKE, format!("TLS setup: {e}")))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let roots = client_roots.clone().expect("read above");
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| {
                        Error::invalid_argument(format!("cannot use CA file {ca_file:?}: {e}"))
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| Error::invalid_argument(format!("certificate and key do not fit: {e}")))?;
    Ok((
        Arc::new(config),
        CString::new(fingerprint).unwrap_or_default(),
    ))
}

/// What the host is told about an accepted TLS connection: the client certificate's
/// fingerprint when the listener asks for one.
pub(crate) fn server_info_of(conn: &rustls::ServerConnection) -> TlsInfo {
    TlsInfo {
        fingerprint: CString::new(first_fingerprint(conn.peer_certificates())).unwrap_or_default(),
        protocol: protocol_name(conn.protocol_version()),
    }
}

/// The hex fingerprint of the first certificate of a chain, "" without one.
fn first_fingerprint(chain: Option<&[CertificateDer<'_>]>) -> String {
    chain
        .and_then(|chain| chain.first())
        .and_then(spki_sha256)
        .map(|f| hex(&f))
        .unwrap_or_default()
}
