//! DSSE v1: pre-authentication encoding, the JSON envelope, signing through the HSM, verifying.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use stella_hsm::{PublicKey, Signer};

use crate::SignerError;

/// DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Bounds on untrusted envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of the envelope JSON (default 32 MiB: SBOM predicates of large images).
    pub max_envelope_bytes: usize,
    /// Maximum number of signatures (default 16).
    pub max_signatures: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_envelope_bytes: 32 * 1024 * 1024,
            max_signatures: 16,
        }
    }
}

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            payload.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsseSignature {
    /// Hex SHA-256 of the signer's SPKI DER (see [`PublicKey::key_id`]).
    #[serde(default)]
    pub keyid: String,
    /// Base64 (standard alphabet, padded) of the signature.
    pub sig: String,
}

/// A DSSE envelope in its JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Base64 of the payload.
    pub payload: String,
    /// The payload type.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The signatures.
    pub signatures: Vec<DsseSignature>,
}

impl Envelope {
    /// Signs `payload` with `signer` (in the HSM) over the PAE.
    pub fn sign(
        payload_type: &str,
        payload: &[u8],
        signer: &dyn Signer,
    ) -> Result<Self, SignerError> {
        let signature = signer.sign(&pae(payload_type, payload))?;
        Ok(Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures: vec![DsseSignature {
                keyid: signer.key().public_key.key_id(),
                sig: STANDARD.encode(signature),
            }],
        })
    }

    /// Parses an untrusted envelope.
    pub fn from_json(bytes: &[u8], limits: Limits) -> Result<Self, SignerError> {
        if bytes.len() > limits.max_envelope_bytes {
            return Err(SignerError::Envelope(format!(
                "{} bytes exceed the limit of {}",
                bytes.len(),
                limits.max_envelope_bytes
            )));
        }
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|error| SignerError::Envelope(error.to_string()))?;
        if envelope.signatures.is_empty() || envelope.signatures.len() > limits.max_signatures {
            return Err(SignerError::Envelope(format!(
                "{} signatures; between 1 and {} are accepted",
                envelope.signatures.len(),
                limits.max_signatures
            )));
        }
        envelope.payload_bytes()?;
        Ok(envelope)
    }

    /// The envelope as JSON (field order fixed by the struct, so byte-stable).
    pub fn to_json(&self) -> Result<Vec<u8>, SignerError> {
        serde_json::to_vec(self).map_err(|error| SignerError::Json {
            what: "DSSE envelope",
            reason: error.to_string(),
        })
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, SignerError> {
        STANDARD
            .decode(&self.payload)
            .map_err(|error| SignerError::Envelope(format!("payload is not base64: {error}")))
    }

    /// Verifies that some signature is by `key`, and returns the payload.
    pub fn verify(&self, key: &PublicKey) -> Result<Vec<u8>, SignerError> {
        let payload = self.payload_bytes()?;
        let message = pae(&self.payload_type, &payload);
        let mut last_reason = "no signatures".to_owned();
        for signature in &self.signatures {
            let bytes = match STANDARD.decode(&signature.sig) {
                Ok(bytes) => bytes,
                Err(error) => {
                    last_reason = format!("signature is not base64: {error}");
                    continue;
                }
            };
            match key.verify(&message, &bytes) {
                Ok(()) => return Ok(payload),
                Err(error) => last_reason = error.to_string(),
            }
        }
        Err(SignerError::EnvelopeSignature {
            key_id: key.key_id(),
            reason: last_reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document (secure-systems-lab/dsse, protocol.md).
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn untrusted_envelopes_are_bounded() {
        let limits = Limits {
            max_envelope_bytes: 10,
            max_signatures: 1,
        };
        assert!(Envelope::from_json(&[b' '; 11], limits).is_err());
        let no_signatures = br#"{"payload":"","payloadType":"t","signatures":[]}"#;
        assert!(Envelope::from_json(no_signatures, Limits::default()).is_err());
        let bad_base64 =
            br#"{"payload":"!!","payloadType":"t","signatures":[{"keyid":"","sig":""}]}"#;
        assert!(Envelope::from_json(bad_base64, Limits::default()).is_err());
        assert!(Envelope::from_json(b"{", Limits::default()).is_err());
    }
}
