//! Error types of the kit contract: one enum per operation family, each naming the thing that failed.

use thiserror::Error;

/// Why a kit was rejected or could not be built. Every variant names the file, key or field involved.
///
/// The enum is `#[non_exhaustive]` so new rejection reasons can be added without breaking callers;
/// [`KitError::reason`] gives a stable short code for audit logs and exit codes.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KitError {
    #[error("kit I/O error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("kit is not a valid zstd stream or is truncated: {0}")]
    Compression(String),
    #[error("kit tar structure is invalid: {0}")]
    Tar(String),
    #[error("unsafe path in kit: {path:?}: {reason}")]
    UnsafePath { path: String, reason: String },
    #[error("kit entry {path:?} has forbidden type {entry_type}")]
    ForbiddenEntryType { path: String, entry_type: String },
    #[error("kit entry {path:?} appears more than once")]
    DuplicateEntry { path: String },
    #[error("kit entry {path:?} is not listed in the manifest")]
    UnlistedFile { path: String },
    #[error("file {path:?} listed in the manifest is missing from the kit")]
    MissingFile { path: String },
    #[error("kit layout: {0}")]
    Layout(String),
    #[error("size mismatch for {path:?}: manifest says {expected} bytes, kit holds {actual}")]
    SizeMismatch {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("sha256 mismatch for {path:?}: manifest says {expected}, kit holds {actual}")]
    HashMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    #[error("manifest is invalid: {0}")]
    Manifest(String),
    #[error("signature on {what} is invalid: {reason}")]
    Signature { what: String, reason: String },
    #[error("{what} is signed by key {key_id}, which is not trusted")]
    UnknownKey { what: String, key_id: String },
    #[error("kit {kit_id} expired at {expires} (now {now})")]
    Expired {
        kit_id: String,
        expires: String,
        now: String,
    },
    #[error(
        "kit sequence {sequence} on channel {channel:?} is not newer than the last imported {last}"
    )]
    Rollback {
        channel: String,
        sequence: u64,
        last: u64,
    },
    #[error("delta kit base mismatch: {0}")]
    BaseMismatch(String),
    #[error("record {index} of {path:?} is invalid: {reason}")]
    InvalidRecord {
        path: String,
        index: usize,
        reason: String,
    },
    #[error("key error: {0}")]
    Key(String),
    #[error("canonical JSON encoding failed for {what}: {reason}")]
    Encoding { what: String, reason: String },
}

impl KitError {
    /// A short, stable reason code (`signature`, `hash`, `rollback`, ...) for audit records and exit codes.
    pub fn reason(&self) -> &'static str {
        match self {
            KitError::Io { .. } => "io",
            KitError::Compression(_) => "compression",
            KitError::Tar(_) | KitError::Layout(_) => "layout",
            KitError::UnsafePath { .. } => "unsafe-path",
            KitError::ForbiddenEntryType { .. } => "forbidden-entry-type",
            KitError::DuplicateEntry { .. } => "duplicate-entry",
            KitError::UnlistedFile { .. } => "unlisted-file",
            KitError::MissingFile { .. } => "missing-file",
            KitError::SizeMismatch { .. } => "size",
            KitError::HashMismatch { .. } => "hash",
            KitError::LimitExceeded(_) => "limit",
            KitError::Manifest(_) => "manifest",
            KitError::Signature { .. } => "signature",
            KitError::UnknownKey { .. } => "unknown-key",
            KitError::Expired { .. } => "expired",
            KitError::Rollback { .. } => "rollback",
            KitError::BaseMismatch(_) => "base-mismatch",
            KitError::InvalidRecord { .. } => "validation",
            KitError::Key(_) => "key",
            KitError::Encoding { .. } => "encoding",
        }
    }

    /// Process exit code for `stella import` and similar commands, one per class of failure:
    /// 3 signature/key, 4 hash/size/layout/unsafe content, 5 rollback/base mismatch, 6 expired,
    /// 7 validation (manifest or record), 8 limits, 1 anything else (I/O). 0 is success and 2 is
    /// left for "not found / usage" to the caller.
    pub fn exit_code(&self) -> u8 {
        match self {
            KitError::Signature { .. } | KitError::UnknownKey { .. } | KitError::Key(_) => 3,
            KitError::HashMismatch { .. }
            | KitError::SizeMismatch { .. }
            | KitError::UnlistedFile { .. }
            | KitError::MissingFile { .. }
            | KitError::DuplicateEntry { .. }
            | KitError::UnsafePath { .. }
            | KitError::ForbiddenEntryType { .. }
            | KitError::Layout(_)
            | KitError::Tar(_)
            | KitError::Compression(_) => 4,
            KitError::Rollback { .. } | KitError::BaseMismatch(_) => 5,
            KitError::Expired { .. } => 6,
            KitError::Manifest(_) | KitError::InvalidRecord { .. } | KitError::Encoding { .. } => 7,
            KitError::LimitExceeded(_) => 8,
            KitError::Io { .. } => 1,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        KitError::Io {
            context: context.into(),
            source,
        }
    }
}

/// One source record that could not be turned into a model record; the build reports it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordError {
    /// Where the record came from (file name, plus line or index when known).
    pub origin: String,
    /// The record's own id when it could be read.
    pub record: Option<String>,
    /// Why it was dropped.
    pub reason: String,
}

/// Error of a whole source document that could not be read at all (not JSON, wrong top-level shape).
#[derive(Debug, Error)]
#[error("source {origin}: {reason}")]
pub struct SourceError {
    pub origin: String,
    pub reason: String,
}

impl SourceError {
    pub fn new(origin: impl Into<String>, reason: impl Into<String>) -> Self {
        SourceError {
            origin: origin.into(),
            reason: reason.into(),
        }
    }
}
