//! The scanner's error type: every variant names the thing (blob, path, file) that failed.

use std::io;

/// Why a scan (or one step of it) failed.
///
/// Problems with a single file inside a layer are *not* errors: they become
/// [`crate::Unknown`]s in the result and the scan goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A digest string was not `sha256:` followed by 64 lower-case hex characters.
    #[error("invalid digest {0:?}: expected sha256:<64 lower-case hex>")]
    InvalidDigest(String),
    /// A blob's content did not hash to the digest that names it.
    #[error("blob {expected}: digest mismatch (content hashes to {actual})")]
    DigestMismatch {
        /// The digest the manifest (or file name) promised.
        expected: String,
        /// What the bytes actually hash to.
        actual: String,
    },
    /// A blob's length differed from its descriptor's size.
    #[error("blob {digest}: size mismatch (descriptor says {expected} bytes, read {actual})")]
    SizeMismatch {
        /// The blob's digest.
        digest: String,
        /// Size from the descriptor.
        expected: u64,
        /// Bytes actually read (or at least this many when the blob is too long).
        actual: u64,
    },
    /// A layer's uncompressed content did not hash to the config's `rootfs.diff_ids` entry.
    #[error(
        "layer {blob}: uncompressed content hashes to {actual}, config diff_id says {expected}"
    )]
    DiffIdMismatch {
        /// The layer blob digest.
        blob: String,
        /// The diff_id from the image config.
        expected: String,
        /// What the uncompressed stream hashes to.
        actual: String,
    },
    /// A blob is referenced but not present in the source.
    #[error("blob {digest} not found in {source_name}")]
    BlobNotFound {
        /// The missing blob's digest or path.
        digest: String,
        /// The image source.
        source_name: String,
    },
    /// The image layout / archive / manifest is malformed.
    #[error("invalid image {what}: {reason}")]
    InvalidImage {
        /// Which document (index.json, manifest sha256:..., manifest.json).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No manifest of the index matches the requested platform.
    #[error("no manifest for platform {wanted} (available: {available})")]
    PlatformNotFound {
        /// The requested platform.
        wanted: String,
        /// Platforms listed in the index.
        available: String,
    },
    /// A platform string was not `os/arch[/variant]`.
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    InvalidPlatform(String),
    /// A tar entry in a layer carries a path that escapes the image root or is absolute.
    #[error("layer {layer}: entry {path:?} rejected: {reason}")]
    UnsafeEntry {
        /// The layer's digest.
        layer: String,
        /// The raw entry path.
        path: String,
        /// Why it was rejected (absolute path, `..` component, ...).
        reason: &'static str,
    },
    /// A layer tar could not be read.
    #[error("layer {layer}: {reason}")]
    LayerRead {
        /// The layer's digest.
        layer: String,
        /// What went wrong.
        reason: String,
    },
    /// A configured limit was exceeded.
    #[error("{what}: limit exceeded ({limit})")]
    LimitExceeded {
        /// What exceeded the limit.
        what: String,
        /// The limit that applies.
        limit: String,
    },
    /// A cached layer fragment could not be decoded.
    #[error("layer cache entry for {layer}: {reason}")]
    CacheCorrupt {
        /// The layer's diff_id.
        layer: String,
        /// What is wrong with the entry.
        reason: String,
    },
    /// The layer cache backend failed.
    #[error("layer cache: {0}")]
    Cache(String),
    /// SBOM serialisation failed.
    #[error("writing {format}: {reason}")]
    Sbom {
        /// Which SBOM format.
        format: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// An I/O error while reading `what`.
    #[error("reading {what}: {source}")]
    Io {
        /// The file, blob or archive that was being read.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ScanError {
    /// Wraps an I/O error, unless it carries a [`ScanError`] raised inside a
    /// verifying reader, which is then returned as is.
    pub(crate) fn from_io(what: impl Into<String>, error: io::Error) -> ScanError {
        if error.get_ref().is_some_and(|inner| inner.is::<ScanError>()) {
            if let Some(inner) = error.into_inner()
                && let Ok(scan_error) = inner.downcast::<ScanError>()
            {
                return *scan_error;
            }
            return ScanError::Io {
                what: what.into(),
                source: io::Error::other("verifying reader error lost"),
            };
        }
        ScanError::Io {
            what: what.into(),
            source: error,
        }
    }
}
