//! The enrolment request `stella licence request` exports: the installation identity key's
//! public half and the appliance id, self-signed by that key in the HSM.
//!
//! The wire format is the kit importer's `stella-enrolment/1` (branch `kit`,
//! `importer/src/licence.rs`): `{"request": BODY, "signature": base64}`, where the signature
//! covers the RFC 8785 canonical JSON of BODY; a P-256 key travels as base64 SPKI DER and
//! signs SHA-256 of the message (DER signature). The licence binds to SHA-256 of the decoded
//! public key bytes, which for SPKI DER equals [`stella_hsm::PublicKey::key_id`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use stella_hsm::{KeyAlgorithm, Signer};
use time::OffsetDateTime;

use crate::{PolicyReport, SignerError};

/// Format tag of an enrolment request body.
pub const ENROLMENT_FORMAT: &str = "stella-enrolment/1";

#[derive(Serialize)]
struct InstallationKey {
    algorithm: &'static str,
    public_key: String,
}

#[derive(Serialize)]
struct EnrolmentBody<'a> {
    format: &'static str,
    appliance_id: &'a str,
    installation_key: InstallationKey,
    created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
}

#[derive(Serialize)]
struct EnrolmentRequest<'a> {
    request: EnrolmentBody<'a>,
    signature: String,
}

/// Builds and signs `req.json` with the installation identity key.
pub fn enrolment_request(
    identity: &dyn Signer,
    appliance_id: &str,
    created: OffsetDateTime,
    version: Option<&str>,
) -> Result<Vec<u8>, SignerError> {
    if appliance_id.trim().is_empty() {
        return Err(SignerError::Statement(
            "enrolment request needs a non-empty appliance id".to_owned(),
        ));
    }
    let public_key = &identity.key().public_key;
    let (algorithm, key_bytes) = match public_key.algorithm() {
        KeyAlgorithm::EcdsaP256 => ("ecdsa-p256", public_key.spki_der()),
        KeyAlgorithm::Ed25519 => ("ed25519", public_key.raw_public_key()),
    };
    let body = EnrolmentBody {
        format: ENROLMENT_FORMAT,
        appliance_id,
        installation_key: InstallationKey {
            algorithm,
            public_key: STANDARD.encode(key_bytes),
        },
        created: PolicyReport::format_created(created)?,
        version,
    };
    let message = serde_json_canonicalizer::to_vec(&body).map_err(|error| SignerError::Json {
        what: "enrolment request",
        reason: error.to_string(),
    })?;
    // The importer reads a 64-byte P-256 signature as raw r||s and anything else as DER; a
    // DER signature of exactly 64 bytes (short r and s, rare) would be misread, so sign again.
    let mut signature = identity.sign(&message)?;
    for _ in 0..8 {
        if public_key.algorithm() != KeyAlgorithm::EcdsaP256 || signature.len() != 64 {
            break;
        }
        signature = identity.sign(&message)?;
    }
    let signature = STANDARD.encode(signature);
    serde_json::to_vec_pretty(&EnrolmentRequest {
        request: body,
        signature,
    })
    .map_err(|error| SignerError::Json {
        what: "enrolment request",
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stella_hsm::{FileKeySource, KeyLabel, KeySource, PublicKey, SigningMode};

    #[test]
    fn request_is_self_signed_over_the_canonical_body() {
        let dir = tempfile::tempdir().unwrap();
        let source = FileKeySource::open(dir.path(), SigningMode::Dev).unwrap();
        let label = KeyLabel::new("identity").unwrap();
        source
            .generate_key(&label, KeyAlgorithm::EcdsaP256)
            .unwrap();
        let signer = source.signer(&label).unwrap();
        let created = time::macros::datetime!(2026-11-29 06:00:00.5 UTC);
        let bytes =
            enrolment_request(signer.as_ref(), "appliance-1", created, Some("2.3.1")).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["request"]["created"], "2026-11-29T06:00:00Z");
        let key_der = STANDARD
            .decode(
                value["request"]["installation_key"]["public_key"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let key = PublicKey::from_spki_der(&key_der).unwrap();
        assert_eq!(key.key_id(), signer.key().public_key.key_id());
        let message = serde_json_canonicalizer::to_vec(&value["request"]).unwrap();
        let signature = STANDARD
            .decode(value["signature"].as_str().unwrap())
            .unwrap();
        key.verify(&message, &signature).unwrap();
        assert!(key.verify(b"other", &signature).is_err());
        assert!(enrolment_request(signer.as_ref(), " ", created, None).is_err());
    }
}
