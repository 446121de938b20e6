//! The error type of the `stella-attestor` crate: every variant names the file, entry or check.

use std::path::PathBuf;

/// Errors from the log, the timestamp authority and bundle export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestorError {
    /// The HSM (or key source) failed.
    #[error(transparent)]
    Hsm(#[from] stella_hsm::HsmError),
    /// The signer failed (certificates, DSSE).
    #[error(transparent)]
    Signer(#[from] stella_signer::SignerError),
    /// A file of the log could not be read or written.
    #[error("{path}: {operation}: {source}")]
    Io {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The stored log is not what its checkpoint says (corruption or tampering).
    #[error("log at {dir}: {reason}")]
    Corrupt { dir: PathBuf, reason: String },
    /// A Merkle proof or tree computation was asked something impossible or did not verify.
    #[error("Merkle proof: {0}")]
    Proof(String),
    /// A checkpoint (signed note) is malformed or its signature does not verify.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A tile or entry-bundle path is not one this log serves.
    #[error("tile path {path:?}: {reason}")]
    TilePath { path: String, reason: String },
    /// A log entry is malformed.
    #[error("log entry: {0}")]
    Entry(String),
    /// A key has the wrong algorithm for the job.
    #[error("key {label:?} is {found}; {purpose} needs {expected}")]
    WrongKeyAlgorithm {
        label: String,
        found: String,
        expected: String,
        purpose: &'static str,
    },
    /// Building or parsing DER (timestamps, certificates) failed.
    #[error("{what}: {reason}")]
    Der { what: &'static str, reason: String },
    /// JSON encoding or decoding failed.
    #[error("JSON of {what}: {reason}")]
    Json { what: &'static str, reason: String },
    /// An append failed inside a batch another caller committed.
    #[error("append batch failed: {0}")]
    Batch(String),
}

impl AttestorError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        operation: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| AttestorError::Io {
            path,
            operation,
            source,
        }
    }
}
