//! HTTPS for the API and console (rustls, ring provider): the operator's certificate, or a
//! self-signed one made at first start in `DATA_DIR/tls/` whose SHA-256 fingerprint the daemon
//! prints. [`TlsListener`] plugs into `axum::serve`; TLS handshakes run in their own tasks with a
//! timeout, so a slow client cannot stall the accept loop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Why TLS could not be set up. Each variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("TLS {what} {path}: {reason}")]
    File {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Only one of `cert_file` and `key_file` is set.
    #[error("[tls] needs both cert_file and key_file, or neither (for a self-signed certificate)")]
    HalfConfigured,
    /// Making the self-signed certificate failed.
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(String),
    /// rustls refused the certificate and key.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A ready TLS configuration.
#[derive(Debug)]
pub struct TlsSetup {
    /// The rustls server configuration.
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate (DER), as colon-separated upper-case hex.
    pub fingerprint: String,
    /// Whether the certificate is self-signed by the appliance.
    pub self_signed: bool,
    /// Whether it was created now (first start).
    pub created: bool,
}

/// SHA-256 of a DER certificate as `AB:CD:...`, the form browsers and `openssl x509
/// -fingerprint -sha256` show.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn file_err(what: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        what,
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The operator's certificate and key when both are given; otherwise the self-signed pair in
/// `data_dir/tls/`, made now (for `localhost`, `127.0.0.1`, `::1` and `names`) if absent.
pub fn load_or_create(
    data_dir: &Path,
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
    names: &[String],
) -> Result<TlsSetup, TlsError> {
    let (cert_path, key_path, self_signed, created) = match (cert_file, key_file) {
        (Some(cert), Some(key)) => (cert.to_owned(), key.to_owned(), false, false),
        (None, None) => {
            let dir = data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            let created = if cert.exists() && key.exists() {
                false
            } else {
                create_self_signed(&dir, &cert, &key, names)?;
                true
            };
            (cert, key, true, created)
        }
        _ => return Err(TlsError::HalfConfigured),
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| file_err("certificate", &cert_path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err("certificate", &cert_path, e))?;
    let leaf = certs
        .first()
        .ok_or_else(|| file_err("certificate", &cert_path, "no certificate in the file"))?;
    let fingerprint = fingerprint(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| file_err("private key", &key_path, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsSetup {
        config: Arc::new(config),
        fingerprint,
        self_signed,
        created,
    })
}

fn create_self_signed(
    dir: &Path,
    cert: &Path,
    key: &Path,
    names: &[String],
) -> Result<(), TlsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).map_err(|e| file_err("directory", dir, e))?;
    let mut alt_names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    alt_names.extend(names.iter().cloned());
    let made = rcgen::generate_simple_self_signed(alt_names)
        .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
    let write = |path: &Path, what: &'static str, text: &str| -> Result<(), TlsError> {
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| file_err(what, &tmp, e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| file_err(what, &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| file_err(what, path, e))
    };
    // Key first: a crash between the two leaves no certificate without its key.
    write(key, "private key", &made.signing_key.serialize_pem())?;
    write(cert, "certificate", &made.cert.pem())
}

/// A TLS listener for `axum::serve`: accepts TCP, handshakes in spawned tasks (10 s limit),
/// hands finished streams to the server.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    /// Wraps a bound TCP listener.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    break;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept task only ends when this receiver is gone; never resolve otherwise.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_made_once_then_reused_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), None, None, &["stella.test".into()]).unwrap();
        assert!(first.created && first.self_signed);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let again = load_or_create(dir.path(), None, None, &[]).unwrap();
        assert!(!again.created);
        assert_eq!(first.fingerprint, again.fingerprint);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn half_configuration_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        assert!(matches!(
            load_or_create(dir.path(), Some(&cert), None, &[]),
            Err(TlsError::HalfConfigured)
        ));
        std::fs::write(&cert, "garbage").unwrap();
        let err = load_or_create(dir.path(), Some(&cert), Some(&cert), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.pem"), "{err}");
    }
}
