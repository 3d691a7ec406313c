//! The system's trusted CA certificates, read once per process: where an
//! operator installs a private CA, and what curl trusts too. One loader for
//! Alertmanager over https and the built-in https check, so that both
//! trust the same certificates.

use std::sync::OnceLock;

use rustls::pki_types::CertificateDer;

/// What the system's trust store holds.
pub(crate) struct SystemCerts {
    /// Every certificate found, in DER.
    pub(crate) certs: Vec<CertificateDer<'static>>,
    /// Why some could not be read (a file or directory named but unreadable).
    pub(crate) errors: Vec<String>,
}

/// The certificates of `SSL_CERT_FILE` and `SSL_CERT_DIR` when set, else
/// of the distribution's bundle (`/etc/ssl/certs` on Debian and NixOS).
pub(crate) fn system() -> &'static SystemCerts {
    static FOUND: OnceLock<SystemCerts> = OnceLock::new();
    FOUND.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        SystemCerts {
            certs: found.certs,
            errors: found.errors.iter().map(|e| e.to_string()).collect(),
        }
    })
}
