//! The error type of the `stella-signer` crate.

/// Errors from building, signing, certifying and parsing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The HSM (or key source) failed.
    #[error(transparent)]
    Hsm(#[from] stella_hsm::HsmError),
    /// A digest is not `sha256:` plus 64 lower-case hex characters.
    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest { value: String, reason: &'static str },
    /// A statement could not be built.
    #[error("in-toto statement: {0}")]
    Statement(String),
    /// A DSSE envelope is malformed or too large.
    #[error("DSSE envelope: {0}")]
    Envelope(String),
    /// A DSSE signature does not verify.
    #[error("DSSE signature by key {key_id} does not verify: {reason}")]
    EnvelopeSignature { key_id: String, reason: String },
    /// Building or signing a certificate failed.
    #[error("certificate for {subject}: {reason}")]
    Certificate { subject: String, reason: String },
    /// A key has the wrong algorithm for the job.
    #[error("key {label:?} is {found}; {purpose} needs {expected}")]
    WrongKeyAlgorithm {
        label: String,
        found: String,
        expected: String,
        purpose: &'static str,
    },
    /// The running binary's release signature did not verify (the signer must not sign).
    #[error("release integrity: {0}")]
    ReleaseIntegrity(String),
    /// JSON encoding failed.
    #[error("JSON encoding of {what}: {reason}")]
    Json { what: &'static str, reason: String },
}
