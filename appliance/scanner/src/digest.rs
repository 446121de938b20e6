//! Content digests (`sha256:<hex>`) and a reader that verifies digest and size while streaming.

use std::fmt;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::ScanError;

/// A SHA-256 content digest, always `sha256:` plus 64 lower-case hex characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lower-case hex>`; any other algorithm or form is rejected.
    pub fn parse(text: &str) -> Result<Digest, ScanError> {
        let hex_part = text
            .strip_prefix("sha256:")
            .ok_or_else(|| ScanError::InvalidDigest(text.to_owned()))?;
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ScanError::InvalidDigest(text.to_owned()));
        }
        Ok(Digest(text.to_owned()))
    }

    /// The digest of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::digest(bytes).as_slice())
    }

    fn from_hasher(raw: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(raw)))
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        self.0.get(7..).unwrap_or_default()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = ScanError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Digest::parse(&value)
    }
}

impl From<Digest> for String {
    fn from(value: Digest) -> Self {
        value.0
    }
}

/// Wraps a reader of one blob and checks, as bytes flow through, that it is
/// no longer than `expected_size`; at end of stream it checks the exact size
/// and the digest. A failure surfaces as an `io::Error` carrying the
/// [`ScanError`] that names the blob (see [`ScanError::from_io`]).
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    expected: Digest,
    expected_size: Option<u64>,
    read_so_far: u64,
    kind: VerifyKind,
    verified: bool,
}

/// Which kind of digest is being checked, for the error message.
#[derive(Clone, Debug)]
pub enum VerifyKind {
    /// A blob named by its digest.
    Blob,
    /// The uncompressed stream of layer blob `blob`, checked against a config diff_id.
    DiffId {
        /// The layer blob this stream was decompressed from.
        blob: String,
    },
}

impl<R: Read> VerifyingReader<R> {
    /// Verifies `inner` against `expected` (and `expected_size` when known).
    pub fn new(
        inner: R,
        expected: Digest,
        expected_size: Option<u64>,
        kind: VerifyKind,
    ) -> VerifyingReader<R> {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            expected,
            expected_size,
            read_so_far: 0,
            kind,
            verified: false,
        }
    }

    /// Reads whatever is left and performs the final checks. Call this after
    /// the consumer is done so that trailing bytes are hashed too.
    pub fn finish(mut self) -> Result<u64, ScanError> {
        let what = self.expected.to_string();
        io::copy(&mut self, &mut io::sink()).map_err(|e| ScanError::from_io(what, e))?;
        Ok(self.read_so_far)
    }

    fn check_end(&mut self) -> Result<(), ScanError> {
        if let Some(size) = self.expected_size
            && size != self.read_so_far
        {
            return Err(ScanError::SizeMismatch {
                digest: self.expected.to_string(),
                expected: size,
                actual: self.read_so_far,
            });
        }
        let actual = Digest::from_hasher(self.hasher.clone().finalize().as_slice());
        if actual != self.expected {
            return Err(match &self.kind {
                VerifyKind::Blob => ScanError::DigestMismatch {
                    expected: self.expected.to_string(),
                    actual: actual.to_string(),
                },
                VerifyKind::DiffId { blob } => ScanError::DiffIdMismatch {
                    blob: blob.clone(),
                    expected: self.expected.to_string(),
                    actual: actual.to_string(),
                },
            });
        }
        self.verified = true;
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            if !self.verified {
                self.check_end().map_err(io::Error::other)?;
            }
            return Ok(0);
        }
        self.read_so_far += n as u64;
        if let Some(size) = self.expected_size
            && self.read_so_far > size
        {
            return Err(io::Error::other(ScanError::SizeMismatch {
                digest: self.expected.to_string(),
                expected: size,
                actual: self.read_so_far,
            }));
        }
        let chunk = buf.get(..n).unwrap_or_default();
        self.hasher.update(chunk);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_bad_forms() {
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(63))).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(64))).is_ok());
    }

    #[test]
    fn verifying_reader_detects_mismatch_and_names_blob() {
        let good = Digest::of_bytes(b"hello");
        let mut reader =
            VerifyingReader::new(&b"hellO"[..], good.clone(), Some(5), VerifyKind::Blob);
        let err = io::copy(&mut reader, &mut io::sink()).unwrap_err();
        let err = ScanError::from_io("x", err);
        assert!(matches!(err, ScanError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains(good.as_str()));

        let reader = VerifyingReader::new(&b"hello!"[..], good.clone(), Some(5), VerifyKind::Blob);
        assert!(matches!(
            reader.finish(),
            Err(ScanError::SizeMismatch { .. })
        ));

        let reader = VerifyingReader::new(&b"hello"[..], good, Some(5), VerifyKind::Blob);
        assert_eq!(reader.finish().unwrap(), 5);
    }
}
