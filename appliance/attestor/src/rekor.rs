//! Rekor v2 entries: the `hashedrekord` v0.0.2 request and canonicalized body, and the
//! TransparencyLogEntry a log returns (protobuf-JSON field names, int64 as strings).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AttestorError;

/// Key details of the only signing-certificate key type the appliance logs.
pub const KEY_DETAILS_P256: &str = "PKIX_ECDSA_P256_SHA_256";
/// Bound on an untrusted request body.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A `hashedrekord` v0.0.2 entry: a SHA-256 digest, a signature over it, and the signer's
/// certificate. A DSSE envelope is logged as the digest of its PAE (Rekor v2, 2026).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedRekord {
    /// SHA-256 of the signed bytes (for DSSE: of `PAE(payloadType, payload)`).
    pub digest: [u8; 32],
    /// DER ECDSA signature.
    pub signature: Vec<u8>,
    /// DER X.509 leaf certificate holding the P-256 verification key.
    pub certificate_der: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestWire {
    #[serde(rename = "hashedRekordRequestV002")]
    hashed_rekord_request_v002: RequestInner,
}

#[derive(Deserialize)]
struct RequestInner {
    digest: String,
    signature: SignatureWire,
}

#[derive(Deserialize)]
struct SignatureWire {
    content: String,
    verifier: VerifierWire,
}

#[derive(Deserialize)]
struct VerifierWire {
    #[serde(rename = "x509Certificate")]
    x509_certificate: Option<RawBytes>,
    #[serde(rename = "keyDetails")]
    key_details: String,
}

#[derive(Deserialize)]
struct RawBytes {
    #[serde(rename = "rawBytes")]
    raw_bytes: String,
}

impl HashedRekord {
    /// The entry that logs a DSSE envelope: digest of the PAE, the envelope's only signature.
    pub fn for_dsse(
        envelope: &stella_signer::Envelope,
        certificate_der: &[u8],
    ) -> Result<Self, AttestorError> {
        use sha2::Digest as _;
        if envelope.signatures.len() != 1 {
            return Err(AttestorError::Entry(format!(
                "DSSE envelope has {} signatures; hashedrekord logs exactly one",
                envelope.signatures.len()
            )));
        }
        let payload = envelope.payload_bytes()?;
        let pae = stella_signer::pae(&envelope.payload_type, &payload);
        let signature = STANDARD
            .decode(&envelope.signatures[0].sig)
            .map_err(|_| AttestorError::Entry("DSSE signature is not base64".into()))?;
        Ok(HashedRekord {
            digest: sha2::Sha256::digest(&pae).into(),
            signature,
            certificate_der: certificate_der.to_vec(),
        })
    }

    /// Parses a `POST /api/v2/log/entries` body (`{"hashedRekordRequestV002": …}`).
    pub fn from_request_json(bytes: &[u8]) -> Result<Self, AttestorError> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(AttestorError::Entry(format!(
                "request of {} bytes exceeds {MAX_REQUEST_BYTES}",
                bytes.len()
            )));
        }
        let wire: RequestWire =
            serde_json::from_slice(bytes).map_err(|error| AttestorError::Json {
                what: "hashedRekordRequestV002",
                reason: error.to_string(),
            })?;
        let inner = wire.hashed_rekord_request_v002;
        let decode = |what: &str, text: &str| {
            STANDARD
                .decode(text)
                .map_err(|_| AttestorError::Entry(format!("{what} is not base64")))
        };
        let digest: [u8; 32] = decode("digest", &inner.digest)?
            .try_into()
            .map_err(|_| AttestorError::Entry("digest is not 32 bytes (SHA-256)".into()))?;
        if inner.signature.verifier.key_details != KEY_DETAILS_P256 {
            return Err(AttestorError::Entry(format!(
                "keyDetails {:?} unsupported; only {KEY_DETAILS_P256}",
                inner.signature.verifier.key_details
            )));
        }
        let certificate = inner
            .signature
            .verifier
            .x509_certificate
            .ok_or_else(|| AttestorError::Entry("verifier has no x509Certificate".into()))?;
        Ok(HashedRekord {
            digest,
            signature: decode("signature content", &inner.signature.content)?,
            certificate_der: decode("certificate", &certificate.raw_bytes)?,
        })
    }

    /// Checks that the signature verifies over the digest with the certificate's key, as
    /// Rekor does before logging.
    pub fn check_signature(&self) -> Result<(), AttestorError> {
        let (_, certificate) =
            x509_parser::parse_x509_certificate(&self.certificate_der).map_err(|error| {
                AttestorError::Entry(format!("certificate is not DER X.509: {error}"))
            })?;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
            &certificate.public_key().subject_public_key.data,
        )
        .map_err(|_| AttestorError::Entry("certificate key is not P-256".into()))?;
        let signature = p256::ecdsa::Signature::from_der(&self.signature)
            .map_err(|_| AttestorError::Entry("signature is not DER ECDSA".into()))?;
        key.verify_prehash(&self.digest, &signature)
            .map_err(|_| AttestorError::Entry("signature does not verify over the digest".into()))
    }

    /// The canonicalized body (RFC 8785 JSON) the log stores and hashes.
    pub fn canonical_body(&self) -> Result<Vec<u8>, AttestorError> {
        let body = json!({
            "apiVersion": "0.0.2",
            "kind": "hashedrekord",
            "spec": {
                "hashedRekordV002": {
                    "data": {"algorithm": "SHA2_256", "digest": STANDARD.encode(self.digest)},
                    "signature": {
                        "content": STANDARD.encode(&self.signature),
                        "verifier": {
                            "keyDetails": KEY_DETAILS_P256,
                            "x509Certificate": {"rawBytes": STANDARD.encode(&self.certificate_der)}
                        }
                    }
                }
            }
        });
        serde_json_canonicalizer::to_vec(&body).map_err(|error| AttestorError::Json {
            what: "hashedrekord body",
            reason: error.to_string(),
        })
    }

    /// Parses a canonicalized body back (used by verifiers to compare materials).
    pub fn from_canonical_body(bytes: &[u8]) -> Result<Self, AttestorError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|error| AttestorError::Json {
                what: "hashedrekord body",
                reason: error.to_string(),
            })?;
        if value["apiVersion"] != "0.0.2" || value["kind"] != "hashedrekord" {
            return Err(AttestorError::Entry(
                "body is not hashedrekord 0.0.2".into(),
            ));
        }
        let spec = &value["spec"]["hashedRekordV002"];
        let request = json!({"hashedRekordRequestV002": {
            "digest": spec["data"]["digest"],
            "signature": spec["signature"],
        }});
        if spec["data"]["algorithm"] != "SHA2_256" {
            return Err(AttestorError::Entry("body digest is not SHA2_256".into()));
        }
        let bytes = serde_json::to_vec(&request).map_err(|error| AttestorError::Json {
            what: "hashedrekord body",
            reason: error.to_string(),
        })?;
        let parsed = HashedRekord::from_request_json(&bytes)?;
        if parsed.canonical_body()? != serde_json_canonicalizer::to_vec(&value).unwrap_or_default()
        {
            return Err(AttestorError::Entry("body has unexpected fields".into()));
        }
        Ok(parsed)
    }
}

/// `{"kind": "hashedrekord", "version": "0.0.2"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindVersion {
    /// Entry kind.
    pub kind: String,
    /// Entry version.
    pub version: String,
}

/// `{"keyId": base64}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogId {
    /// Base64 of the 32-byte log id.
    #[serde(rename = "keyId")]
    pub key_id: String,
}

/// `{"envelope": signed note}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointEnvelope {
    /// The signed checkpoint text.
    pub envelope: String,
}

/// An inclusion proof with the checkpoint it leads to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// Leaf index (decimal string).
    #[serde(rename = "logIndex")]
    pub log_index: String,
    /// Base64 root hash.
    #[serde(rename = "rootHash")]
    pub root_hash: String,
    /// Tree size (decimal string).
    #[serde(rename = "treeSize")]
    pub tree_size: String,
    /// Base64 sibling hashes, leaf to root.
    pub hashes: Vec<String>,
    /// The signed checkpoint for `treeSize`.
    pub checkpoint: CheckpointEnvelope,
}

/// What the log returns for an appended entry and what bundles carry in `tlogEntries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransparencyLogEntry {
    /// Leaf index (decimal string).
    #[serde(rename = "logIndex")]
    pub log_index: String,
    /// The log id (the checkpoint key id).
    #[serde(rename = "logId")]
    pub log_id: LogId,
    /// `hashedrekord` / `0.0.2`.
    #[serde(rename = "kindVersion")]
    pub kind_version: KindVersion,
    /// Proof of inclusion in the checkpoint that acknowledged the entry.
    #[serde(rename = "inclusionProof")]
    pub inclusion_proof: InclusionProof,
    /// Base64 of the canonicalized body.
    #[serde(rename = "canonicalizedBody")]
    pub canonicalized_body: String,
}

impl TransparencyLogEntry {
    /// The leaf index as a number.
    pub fn index(&self) -> Result<u64, AttestorError> {
        self.log_index.parse().map_err(|_| {
            AttestorError::Entry(format!("logIndex {:?} is not a decimal", self.log_index))
        })
    }
}
