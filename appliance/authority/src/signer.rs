//! What signs access tokens. [`TokenSigner`] is the seam: today a [`SoftwareSigner`] whose P-256
//! key is generated at first start and kept in the data directory; when `stella-hsm` lands, an
//! HSM-backed signer implements the same three methods and nothing else changes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};

use crate::{AuthorityError, PublicJwk, SignatureAlg};

/// Something that signs JWS signing input for the Authority.
pub trait TokenSigner: Send + Sync {
    /// The public key, as published on `/jwks`.
    fn public_jwk(&self) -> PublicJwk;

    /// Signs `message` (the JWS signing input), returning the JWS signature bytes (for ES256
    /// the 64-byte `r || s`).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuthorityError>;

    /// The key id published as `kid`; by default the key's RFC 7638 thumbprint.
    fn key_id(&self) -> String {
        self.public_jwk().thumbprint()
    }

    /// The JWS algorithm.
    fn alg(&self) -> SignatureAlg {
        self.public_jwk().alg()
    }
}

/// Converts a DER `Ecdsa-Sig-Value` (what PKCS#11 and YubiHSM signers return, and what
/// `stella-hsm` hands out) into the 64-byte `r || s` form JWS ES256 uses (RFC 7518 §3.4).
/// An HSM-backed [`TokenSigner`] calls this in its `sign`.
pub fn es256_signature_from_der(der: &[u8]) -> Result<Vec<u8>, AuthorityError> {
    p256::ecdsa::Signature::from_der(der)
        .map(|signature| signature.to_bytes().to_vec())
        .map_err(|err| AuthorityError::Crypto(format!("HSM ECDSA signature is not DER: {err}")))
}

/// A P-256 key held in process memory and persisted as PKCS#8 PEM (mode 0600).
pub struct SoftwareSigner {
    key: SigningKey,
    public: PublicJwk,
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("kid", &self.public.thumbprint())
            .finish_non_exhaustive()
    }
}

impl SoftwareSigner {
    /// A fresh random key.
    pub fn generate() -> Result<Self, AuthorityError> {
        // A random 32-byte string is a valid scalar except with negligible probability; retry
        // rather than fail when it is not.
        for _ in 0..8 {
            let bytes = crate::random_bytes::<32>()?;
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return Ok(Self::from_key(key));
            }
        }
        Err(AuthorityError::Crypto(
            "could not draw a valid P-256 scalar".to_owned(),
        ))
    }

    fn from_key(key: SigningKey) -> Self {
        let public = PublicJwk::P256 {
            key: *key.verifying_key(),
        };
        Self { key, public }
    }

    /// Loads the key at `path`, creating it (mode 0600, written to a temporary file and renamed)
    /// when the file does not exist. Returns the signer and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), AuthorityError> {
        let key_err = |reason: String| AuthorityError::Key {
            path: path.to_owned(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                let key = SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|err| key_err(format!("not a PKCS#8 P-256 key: {err}")))?;
                Ok((Self::from_key(key), false))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let signer = Self::generate()?;
                let pem = signer
                    .key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|err| key_err(format!("cannot encode: {err}")))?;
                write_private(path, pem.as_bytes()).map_err(key_err)?;
                Ok((signer, true))
            }
            Err(err) => Err(key_err(format!("cannot read: {err}"))),
        }
    }
}

/// Writes `bytes` to `path` with mode 0600 via a temporary file and a rename.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp: PathBuf = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|err| format!("cannot create {}: {err}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|err| format!("cannot write {}: {err}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|err| format!("cannot rename into place: {err}"))
}

impl TokenSigner for SoftwareSigner {
    fn public_jwk(&self) -> PublicJwk {
        self.public.clone()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuthorityError> {
        let signature: p256::ecdsa::Signature = self
            .key
            .try_sign(message)
            .map_err(|err| AuthorityError::Crypto(format!("ES256 signing: {err}")))?;
        Ok(signature.to_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_0600_then_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-signing.pem");
        let (first, created) = SoftwareSigner::load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, created) = SoftwareSigner::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.key_id(), second.key_id());
        let sig = second.sign(b"hello").unwrap();
        assert!(
            first
                .public_jwk()
                .verify(SignatureAlg::Es256, b"hello", &sig)
        );
        assert!(
            !first
                .public_jwk()
                .verify(SignatureAlg::Es256, b"hellO", &sig)
        );
    }

    /// What an HSM adapter does: sign DER, convert, publish the SEC1 public key.
    #[test]
    fn der_signatures_convert_to_jws_form() {
        let key = SigningKey::from_slice(&[3u8; 32]).unwrap();
        let der: p256::ecdsa::DerSignature = key.sign(b"msg");
        let jws = es256_signature_from_der(der.as_bytes()).unwrap();
        assert_eq!(jws.len(), 64);
        let sec1 = key.verifying_key().to_encoded_point(false);
        let public = PublicJwk::from_p256_sec1(sec1.as_bytes()).unwrap();
        assert!(public.verify(SignatureAlg::Es256, b"msg", &jws));
        assert!(
            es256_signature_from_der(&jws).is_err(),
            "raw r||s is not DER"
        );
        assert!(PublicJwk::from_ed25519_raw(&[0u8; 31]).is_err());
    }

    #[test]
    fn garbage_key_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-signing.pem");
        std::fs::write(&path, "not a key").unwrap();
        let err = SoftwareSigner::load_or_create(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("token-signing.pem"), "{err}");
    }
}
