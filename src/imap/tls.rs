//! The TLS certificate and key, read from their PEM files and read again when they change
//! (cert-manager and certbot replace them every few weeks): a watcher thread looks at the
//! files' times and sizes every [`CHECK_EVERY`] and swaps a new pair in; the next handshake
//! uses it, sessions already up keep theirs. A new pair that does not load (half written, a
//! key that does not fit) is logged and the old one kept.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// How often the watcher looks at the files.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Why the TLS certificate or key cannot be used.
#[derive(Debug)]
pub enum TlsSetupError {
    Cert {
        path: String,
        err: rustls::pki_types::pem::Error,
    },
    NoCert {
        path: String,
    },
    Key {
        path: String,
        err: rustls::pki_types::pem::Error,
    },
    Rustls(rustls::Error),
}

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsSetupError::Cert { path, err } => write!(f, "--tls-cert {path}: {err}"),
            TlsSetupError::NoCert { path } => {
                write!(f, "--tls-cert {path}: no certificate in the file")
            }
            TlsSetupError::Key { path, err } => write!(f, "--tls-key {path}: {err}"),
            TlsSetupError::Rustls(e) => {
                write!(f, "the TLS certificate and key do not fit together: {e}")
            }
        }
    }
}

impl std::error::Error for TlsSetupError {}

/// What identifies a version of the two files.
type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.modified().ok(), m.len()))
            .unwrap_or((None, 0))
    };
    [one(cert), one(key)]
}

/// The certificate and key files and the pair now served.
#[derive(Debug)]
pub struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<(Stamp, Arc<CertifiedKey>)>,
}

fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsSetupError> {
    let name = |p: &Path| p.display().to_string();
    let bad_cert = |err| TlsSetupError::Cert {
        path: name(cert),
        err,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(bad_cert)?
        .collect::<Result<_, _>>()
        .map_err(bad_cert)?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCert { path: name(cert) });
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|err| TlsSetupError::Key {
        path: name(key),
        err,
    })?;
    let ck = CertifiedKey::from_der(certs, der, provider).map_err(TlsSetupError::Rustls)?;
    // A key that is not the certificate's (a half-done renewal) is refused here, not at
    // the next handshake.
    ck.keys_match().map_err(TlsSetupError::Rustls)?;
    Ok(Arc::new(ck))
}

impl CertFiles {
    /// Reads the pair (an error now is a configuration error: the server does not start).
    pub fn load(cert: &str, key: &str) -> Result<Arc<CertFiles>, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert, key) = (PathBuf::from(cert), PathBuf::from(key));
        let st = stamp(&cert, &key);
        let pair = load_pair(&cert, &key, &provider)?;
        Ok(Arc::new(CertFiles {
            cert,
            key,
            provider,
            current: Mutex::new((st, pair)),
        }))
    }

    /// Looks at the files once: a changed pair that loads replaces the served one (true).
    pub fn check(&self) -> bool {
        let st = stamp(&self.cert, &self.key);
        let old = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        if st == old {
            return false;
        }
        match load_pair(&self.cert, &self.key, &self.provider) {
            Ok(pair) => {
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) = (st, pair);
                crate::info!("tls", "{}: new certificate loaded", self.cert.display());
                true
            }
            Err(e) => {
                // Keep serving the old pair; look again when the files change again.
                self.current
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .0 = st;
                crate::warn!("tls", "{e}; the previous certificate stays in use");
                false
            }
        }
    }

    /// Starts the watcher thread (file system work stays off the executor).
    pub fn watch(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("tls-watch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(CHECK_EVERY);
                    me.check();
                }
            });
        if let Err(e) = spawned {
            crate::warn!("tls", "cannot watch the certificate files: {e}");
        }
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .1,
        ))
    }
}

/// The rustls configuration serving `files`' current pair.
pub fn server_config(files: Arc<CertFiles>) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let provider = Arc::clone(&files.provider);
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Rustls)?
        .with_no_client_auth()
        .with_cert_resolver(files);
    Ok(Arc::new(cfg))
}
