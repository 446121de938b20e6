//! The error type of the `stella-hsm` crate: every variant names the key, module or file involved.

use std::path::PathBuf;

/// Errors from key sources and signers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// A key label does not satisfy [`crate::KeyLabel`]'s rules.
    #[error("invalid key label {label:?}: {reason}")]
    InvalidLabel { label: String, reason: &'static str },
    /// No key with this label exists in the key source.
    #[error("key {label:?} not found in {source_name}")]
    KeyNotFound { label: String, source_name: String },
    /// Generation was asked for a label that is already taken.
    #[error("key {label:?} already exists in {source_name}")]
    KeyExists { label: String, source_name: String },
    /// A key exists under the label but has another algorithm than required.
    #[error("key {label:?} is {found}, but {expected} is required")]
    AlgorithmMismatch {
        label: String,
        found: String,
        expected: String,
    },
    /// The key has a type this crate does not sign with.
    #[error("key {label:?} has an unsupported key type: {detail}")]
    UnsupportedKey { label: String, detail: String },
    /// A public key could not be decoded or encoded.
    #[error("public key of {label:?} is malformed: {reason}")]
    MalformedPublicKey { label: String, reason: String },
    /// A signature did not verify.
    #[error("signature by {key_id} does not verify: {reason}")]
    BadSignature { key_id: String, reason: String },
    /// A PKCS#11 call failed.
    #[error("PKCS#11 module {module}: {operation} failed: {source}")]
    Pkcs11 {
        module: PathBuf,
        operation: &'static str,
        #[source]
        source: cryptoki::error::Error,
    },
    /// The configured token label was not found among the module's slots.
    #[error("PKCS#11 module {module}: no token labelled {token:?} (tokens present: {present:?})")]
    TokenNotFound {
        module: PathBuf,
        token: String,
        present: Vec<String>,
    },
    /// A YubiHSM 2 command failed.
    #[error("YubiHSM 2: {operation} failed: {source}")]
    YubiHsm {
        operation: &'static str,
        #[source]
        source: yubihsm::client::Error,
    },
    /// The YubiHSM has no free object id left in the range this crate uses.
    #[error("YubiHSM 2: no free object id for key {label:?}")]
    NoFreeObjectId { label: String },
    /// A software key file is unreadable or malformed.
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    /// Reading a file (PIN file, key directory) failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `[hsm]` configuration is inconsistent.
    #[error("[hsm] configuration: {0}")]
    Config(String),
    /// Software keys were requested without `mode = "dev"`.
    #[error(
        "the software key file backend is for development only and needs `mode = \"dev\"` in [hsm]; \
         every attestation it signs is marked dev-signed"
    )]
    DevModeRequired,
    /// The backend was compiled out.
    #[error("{0} support is not compiled into this build")]
    NotCompiledIn(&'static str),
    /// A lock protecting an HSM session was poisoned by a panic in another thread.
    #[error("HSM session lock for {0} was poisoned by a panic in another thread")]
    Poisoned(String),
}
