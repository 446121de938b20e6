//! Key vocabulary: labels, algorithms, public keys (SPKI DER/PEM) and their verification.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use p256::pkcs8::LineEnding;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::HsmError;

/// Signature algorithms a key source can generate and sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA over NIST P-256; the signer hashes the message with SHA-256 and returns a DER
    /// `Ecdsa-Sig-Value` (RFC 5480), the form X.509, Sigstore and DSSE verifiers expect.
    EcdsaP256,
    /// Pure Ed25519 (RFC 8032); the signer returns the 64-byte signature.
    Ed25519,
}

impl KeyAlgorithm {
    /// A stable name used in configuration, JSON and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key label: 1 to 40 bytes of `[a-z0-9._-]`, starting with a letter or digit.
///
/// 40 bytes is the YubiHSM 2 object-label size, so every label fits every backend, and the
/// character set keeps labels usable as file names for the development backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyLabel(String);

impl KeyLabel {
    /// Checks `label` against the rules above.
    pub fn new(label: &str) -> Result<Self, HsmError> {
        let invalid = |reason| HsmError::InvalidLabel {
            label: label.to_owned(),
            reason,
        };
        if label.is_empty() {
            return Err(invalid("empty"));
        }
        if label.len() > 40 {
            return Err(invalid("longer than 40 bytes"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(invalid("only a-z, 0-9, '.', '_' and '-' are allowed"));
        }
        if !label.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(invalid("must start with a letter or digit"));
        }
        Ok(KeyLabel(label.to_owned()))
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyLabel {
    type Error = HsmError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        KeyLabel::new(&value)
    }
}

impl From<KeyLabel> for String {
    fn from(value: KeyLabel) -> Self {
        value.0
    }
}

impl fmt::Display for KeyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A public key as an X.509 SubjectPublicKeyInfo, checked to be a valid point of its algorithm.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: KeyAlgorithm,
    spki_der: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id())
            .finish()
    }
}

impl PublicKey {
    /// Builds a P-256 key from a SEC1 point (uncompressed `04 || x || y` or compressed).
    pub fn from_p256_sec1(label: &str, point: &[u8]) -> Result<Self, HsmError> {
        let key = p256::PublicKey::from_sec1_bytes(point).map_err(|error| {
            HsmError::MalformedPublicKey {
                label: label.to_owned(),
                reason: format!("not a P-256 point: {error}"),
            }
        })?;
        let der = key
            .to_public_key_der()
            .map_err(|error| HsmError::MalformedPublicKey {
                label: label.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(PublicKey {
            algorithm: KeyAlgorithm::EcdsaP256,
            spki_der: der.as_bytes().to_vec(),
        })
    }

    /// Builds an Ed25519 key from its 32-byte encoding.
    pub fn from_ed25519_bytes(label: &str, bytes: &[u8]) -> Result<Self, HsmError> {
        let malformed = |reason: String| HsmError::MalformedPublicKey {
            label: label.to_owned(),
            reason,
        };
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| malformed(format!("Ed25519 key is {} bytes, expected 32", bytes.len())))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&array)
            .map_err(|error| malformed(format!("not an Ed25519 point: {error}")))?;
        let der = key
            .to_public_key_der()
            .map_err(|error| malformed(error.to_string()))?;
        Ok(PublicKey {
            algorithm: KeyAlgorithm::Ed25519,
            spki_der: der.as_bytes().to_vec(),
        })
    }

    /// Parses a DER SubjectPublicKeyInfo holding a P-256 or Ed25519 key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, HsmError> {
        if let Ok(key) = p256::PublicKey::from_public_key_der(der) {
            let der = key
                .to_public_key_der()
                .map_err(|error| HsmError::MalformedPublicKey {
                    label: "(spki)".to_owned(),
                    reason: error.to_string(),
                })?;
            return Ok(PublicKey {
                algorithm: KeyAlgorithm::EcdsaP256,
                spki_der: der.as_bytes().to_vec(),
            });
        }
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            return PublicKey::from_ed25519_bytes("(spki)", key.as_bytes());
        }
        Err(HsmError::MalformedPublicKey {
            label: "(spki)".to_owned(),
            reason: "not a DER SubjectPublicKeyInfo of a P-256 or Ed25519 key".to_owned(),
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The raw public key as carried in the SPKI BIT STRING: the uncompressed SEC1 point for
    /// P-256 (65 bytes), the 32-byte key for Ed25519.
    pub fn raw_public_key(&self) -> &[u8] {
        let length = match self.algorithm {
            KeyAlgorithm::EcdsaP256 => 65,
            KeyAlgorithm::Ed25519 => 32,
        };
        // The SPKI ends with the BIT STRING contents, which are exactly the raw key; the
        // constructors above only ever store canonical encodings of these two key types.
        &self.spki_der[self.spki_der.len().saturating_sub(length)..]
    }

    /// PEM `PUBLIC KEY` (SPKI), LF line endings.
    pub fn to_pem(&self) -> String {
        p256::pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &self.spki_der)
            .unwrap_or_default()
    }

    /// Lower-case hex SHA-256 of the SPKI DER: the key id used in DSSE envelopes and logs.
    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(&self.spki_der))
    }

    /// Verifies `signature` over `message` in the format [`KeyAlgorithm`] documents.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), HsmError> {
        let bad = |reason: String| HsmError::BadSignature {
            key_id: self.key_id(),
            reason,
        };
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => {
                use p256::ecdsa::signature::Verifier as _;
                let key = p256::ecdsa::VerifyingKey::from_public_key_der(&self.spki_der)
                    .map_err(|error| bad(error.to_string()))?;
                let signature = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|error| bad(format!("not a DER ECDSA signature: {error}")))?;
                key.verify(message, &signature)
                    .map_err(|error| bad(error.to_string()))
            }
            KeyAlgorithm::Ed25519 => {
                let key = ed25519_dalek::VerifyingKey::from_public_key_der(&self.spki_der)
                    .map_err(|error| bad(error.to_string()))?;
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|error| bad(format!("not a 64-byte Ed25519 signature: {error}")))?;
                key.verify_strict(message, &signature)
                    .map_err(|error| bad(error.to_string()))
            }
        }
    }
}

/// A key a source holds: its label, algorithm and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The label the key was generated under.
    pub label: KeyLabel,
    /// The public half.
    pub public_key: PublicKey,
}

impl KeyInfo {
    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.public_key.algorithm()
    }
}

/// Converts a raw `r || s` P-256 signature (PKCS#11 `CKM_ECDSA` output) to DER.
pub(crate) fn p256_raw_to_der(label: &str, raw: &[u8]) -> Result<Vec<u8>, HsmError> {
    let signature =
        p256::ecdsa::Signature::from_slice(raw).map_err(|error| HsmError::UnsupportedKey {
            label: label.to_owned(),
            detail: format!(
                "HSM returned a {}-byte ECDSA signature, not r||s: {error}",
                raw.len()
            ),
        })?;
    Ok(signature.to_der().as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_reject_bad_characters_and_lengths() {
        assert!(KeyLabel::new("stella-ca").is_ok());
        assert!(KeyLabel::new("").is_err());
        assert!(KeyLabel::new("Upper").is_err());
        assert!(KeyLabel::new("../etc").is_err());
        assert!(KeyLabel::new("-lead").is_err());
        assert!(KeyLabel::new(&"a".repeat(41)).is_err());
        assert!(KeyLabel::new(&"a".repeat(40)).is_ok());
    }

    #[test]
    fn spki_round_trips_and_rejects_garbage() {
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let point = secret.public_key().to_sec1_bytes();
        let key = PublicKey::from_p256_sec1("t", &point).unwrap();
        assert_eq!(PublicKey::from_spki_der(key.spki_der()).unwrap(), key);
        assert_eq!(key.raw_public_key(), &point[..]);
        assert!(key.to_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(PublicKey::from_spki_der(b"garbage").is_err());
        assert!(PublicKey::from_ed25519_bytes("t", &[1u8; 31]).is_err());
    }
}
