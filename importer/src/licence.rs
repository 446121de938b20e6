//! Entitlement documents: the appliance's enrolment request, the vendor-signed licence bound to the
//! installation key, and the vendor-signed revocation list. All signed payloads are canonical JSON.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::canonical::to_canonical_json;
use crate::error::KitError;
use crate::manifest::{Sha256Hex, parse_time};
use crate::signing::{SigningKey, TrustedKeys};

pub const ENROLMENT_FORMAT: &str = "stella-enrolment/1";
pub const LICENCE_FORMAT: &str = "stella-licence/1";
pub const REVOCATIONS_FORMAT: &str = "stella-revocations/1";

/// Algorithm of the installation identity key held in the appliance's HSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// Public key: the 32 raw bytes. Signature: the 64-byte RFC 8032 signature.
    Ed25519,
    /// Public key: DER SubjectPublicKeyInfo or SEC1 point. Signature: raw `r || s` (64 bytes,
    /// what PKCS#11 `CKM_ECDSA` returns) or ASN.1 DER, over SHA-256 of the message.
    EcdsaP256,
}

/// The installation identity key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationKey {
    pub algorithm: KeyAlgorithm,
    /// Standard base64 of the public key bytes (see [`KeyAlgorithm`]).
    pub public_key: String,
}

impl InstallationKey {
    /// SHA-256 of the decoded public key bytes: how licences and the signer refer to the key.
    pub fn fingerprint(&self) -> Result<Sha256Hex, KitError> {
        Ok(Sha256Hex::of(&decode_b64(
            "installation public key",
            &self.public_key,
        )?))
    }

    /// Verifies `signature` (base64) over `message` with this key.
    pub fn verify(&self, message: &[u8], signature_b64: &str) -> Result<(), KitError> {
        let key_bytes = decode_b64("installation public key", &self.public_key)?;
        let signature = decode_b64("enrolment signature", signature_b64)?;
        let bad = |reason: String| KitError::Signature {
            what: "enrolment request".into(),
            reason,
        };
        match self.algorithm {
            KeyAlgorithm::Ed25519 => {
                use ed25519_dalek::Verifier as _;
                let key: [u8; 32] = key_bytes.as_slice().try_into().map_err(|_| {
                    bad(format!(
                        "Ed25519 public key has {} bytes, expected 32",
                        key_bytes.len()
                    ))
                })?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
                    .map_err(|e| bad(e.to_string()))?;
                let signature = ed25519_dalek::Signature::from_slice(&signature)
                    .map_err(|e| bad(e.to_string()))?;
                key.verify(message, &signature)
                    .map_err(|e| bad(e.to_string()))
            }
            KeyAlgorithm::EcdsaP256 => {
                use p256::ecdsa::signature::Verifier as _;
                use p256::pkcs8::DecodePublicKey as _;
                let key = p256::ecdsa::VerifyingKey::from_public_key_der(&key_bytes)
                    .or_else(|_| p256::ecdsa::VerifyingKey::from_sec1_bytes(&key_bytes))
                    .map_err(|_| {
                        bad("P-256 public key is neither SPKI DER nor a SEC1 point".into())
                    })?;
                let signature = if signature.len() == 64 {
                    p256::ecdsa::Signature::from_slice(&signature)
                } else {
                    p256::ecdsa::Signature::from_der(&signature)
                }
                .map_err(|e| bad(format!("ECDSA signature encoding: {e}")))?;
                key.verify(message, &signature)
                    .map_err(|e| bad(e.to_string()))
            }
        }
    }
}

/// The unsigned body of an enrolment request; the signature covers its canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentBody {
    pub format: String,
    pub appliance_id: String,
    pub installation_key: InstallationKey,
    /// RFC 3339.
    pub created: String,
    /// Appliance version that made the request (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `req.json` as written by `stella licence request`: the body plus a base64 self-signature by the
/// installation key over `canonical_json(body)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRequest {
    pub request: EnrolmentBody,
    pub signature: String,
}

impl EnrolmentRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self, KitError> {
        serde_json::from_slice(bytes)
            .map_err(|e| KitError::Manifest(format!("enrolment request: {e}")))
    }

    /// Checks format, fields and the self-signature (proof that the requester holds the key).
    pub fn verify(&self) -> Result<(), KitError> {
        if self.request.format != ENROLMENT_FORMAT {
            return Err(KitError::Manifest(format!(
                "enrolment request format {:?}, expected {ENROLMENT_FORMAT:?}",
                self.request.format
            )));
        }
        if self.request.appliance_id.trim().is_empty() {
            return Err(KitError::Manifest(
                "enrolment request has an empty appliance_id".into(),
            ));
        }
        parse_time(&self.request.created)
            .map_err(|e| KitError::Manifest(format!("enrolment request created: {e}")))?;
        let message = to_canonical_json("enrolment request", &self.request)?;
        self.request
            .installation_key
            .verify(&message, &self.signature)
    }
}

/// The licence (proof of entitlement), bound to one installation key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    pub format: String,
    pub licence_id: String,
    pub customer: String,
    pub plan: String,
    /// Named quotas, e.g. `signatures_per_month`.
    #[serde(default)]
    pub quotas: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_release_year: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    pub issued: String,
    pub expires: String,
    pub appliance_id: String,
    pub installation_key: InstallationKey,
    pub installation_key_sha256: Sha256Hex,
}

/// `licence.json`: the licence and the vendor's minisign signature over its canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedLicence {
    pub licence: Licence,
    /// minisign signature text (vendor key).
    pub signature: String,
}

/// What the vendor decides when issuing.
#[derive(Debug, Clone)]
pub struct LicenceTerms {
    pub customer: String,
    pub plan: String,
    pub quotas: BTreeMap<String, u64>,
    pub valid_release_year: Option<u16>,
    pub max_version: Option<String>,
    pub issued: time::OffsetDateTime,
    pub expires: time::OffsetDateTime,
}

/// Who issues a licence; its id says so. The id prefix is a label for people, not a trust
/// decision: what a licence entitles depends only on whether the appliance trusts its signing
/// key (`[licence] vendor_keys`, or the demo's own ephemeral key inside `stella serve --demo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenceIssuer {
    /// The vendor (`stella-kit licence issue`): ids `lic-…`.
    Vendor,
    /// `stella serve --demo`, for its own installation, signed with its ephemeral demo key:
    /// ids `demo-…`.
    Demo,
}

impl LicenceIssuer {
    fn id_prefix(self) -> &'static str {
        match self {
            LicenceIssuer::Vendor => "lic",
            LicenceIssuer::Demo => "demo",
        }
    }
}

/// Issues a vendor licence for a verified enrolment request. Deterministic: the licence id is
/// derived from the request and terms.
pub fn issue_licence(
    request: &EnrolmentRequest,
    terms: &LicenceTerms,
    vendor_key: &SigningKey,
) -> Result<SignedLicence, KitError> {
    issue_licence_as(LicenceIssuer::Vendor, request, terms, vendor_key)
}

/// [`issue_licence`] by `issuer`, whose prefix the licence id carries.
pub fn issue_licence_as(
    issuer: LicenceIssuer,
    request: &EnrolmentRequest,
    terms: &LicenceTerms,
    vendor_key: &SigningKey,
) -> Result<SignedLicence, KitError> {
    request.verify()?;
    if terms.expires <= terms.issued {
        return Err(KitError::Manifest(
            "licence expires before it is issued".into(),
        ));
    }
    let mut licence = Licence {
        format: LICENCE_FORMAT.into(),
        licence_id: String::new(),
        customer: terms.customer.clone(),
        plan: terms.plan.clone(),
        quotas: terms.quotas.clone(),
        valid_release_year: terms.valid_release_year,
        max_version: terms.max_version.clone(),
        issued: crate::manifest::format_time(terms.issued),
        expires: crate::manifest::format_time(terms.expires),
        appliance_id: request.request.appliance_id.clone(),
        installation_key: request.request.installation_key.clone(),
        installation_key_sha256: request.request.installation_key.fingerprint()?,
    };
    let digest = Sha256Hex::of(&to_canonical_json("licence", &licence)?);
    licence.licence_id = format!("{}-{}", issuer.id_prefix(), &digest.as_str()[..20]);
    let payload = to_canonical_json("licence", &licence)?;
    let signature = vendor_key.sign(
        &payload,
        &format!(
            "stella licence {} for {}",
            licence.licence_id, licence.customer
        ),
    );
    Ok(SignedLicence { licence, signature })
}

impl SignedLicence {
    pub fn parse(bytes: &[u8]) -> Result<Self, KitError> {
        serde_json::from_slice(bytes)
            .map_err(|e| KitError::Manifest(format!("licence document: {e}")))
    }

    /// Verifies the vendor signature and the binding of licence to installation key.
    pub fn verify(&self, vendor_keys: &TrustedKeys) -> Result<(), KitError> {
        self.validate()?;
        let payload = to_canonical_json("licence", &self.licence)?;
        vendor_keys.verify(
            &format!("licence {}", self.licence.licence_id),
            &payload,
            &self.signature,
        )?;
        Ok(())
    }

    /// Structural checks that need no key.
    pub fn validate(&self) -> Result<(), String> {
        let licence = &self.licence;
        if licence.format != LICENCE_FORMAT {
            return Err(format!("licence format {:?}", licence.format));
        }
        if licence.licence_id.is_empty() || licence.customer.is_empty() || licence.plan.is_empty() {
            return Err("licence id, customer and plan are required".into());
        }
        parse_time(&licence.issued)?;
        parse_time(&licence.expires)?;
        let fingerprint = licence
            .installation_key
            .fingerprint()
            .map_err(|e| e.to_string())?;
        if fingerprint != licence.installation_key_sha256 {
            return Err(format!(
                "licence {}: installation key fingerprint mismatch",
                licence.licence_id
            ));
        }
        Ok(())
    }
}

impl From<String> for KitError {
    fn from(reason: String) -> Self {
        KitError::Manifest(reason)
    }
}

/// One revoked licence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub licence_id: String,
    pub revoked_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The vendor's list of revoked licences; a newer `sequence` replaces an older list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationList {
    pub format: String,
    pub sequence: u64,
    pub issued: String,
    pub revoked: Vec<Revocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRevocationList {
    pub list: RevocationList,
    pub signature: String,
}

/// Signs a revocation list (entries sorted and de-duplicated first).
pub fn sign_revocations(
    mut list: RevocationList,
    vendor_key: &SigningKey,
) -> Result<SignedRevocationList, KitError> {
    list.format = REVOCATIONS_FORMAT.into();
    list.revoked.sort();
    list.revoked.dedup_by(|a, b| a.licence_id == b.licence_id);
    parse_time(&list.issued)?;
    let payload = to_canonical_json("revocation list", &list)?;
    let signature = vendor_key.sign(
        &payload,
        &format!("stella revocations sequence {}", list.sequence),
    );
    Ok(SignedRevocationList { list, signature })
}

impl SignedRevocationList {
    pub fn parse(bytes: &[u8]) -> Result<Self, KitError> {
        serde_json::from_slice(bytes)
            .map_err(|e| KitError::Manifest(format!("revocation list: {e}")))
    }

    pub fn verify(&self, vendor_keys: &TrustedKeys) -> Result<(), KitError> {
        self.validate()?;
        let payload = to_canonical_json("revocation list", &self.list)?;
        vendor_keys.verify(
            &format!("revocation list {}", self.list.sequence),
            &payload,
            &self.signature,
        )?;
        Ok(())
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.list.format != REVOCATIONS_FORMAT {
            return Err(format!("revocation list format {:?}", self.list.format));
        }
        parse_time(&self.list.issued)?;
        for entry in &self.list.revoked {
            if entry.licence_id.is_empty() {
                return Err("revocation without licence id".into());
            }
            parse_time(&entry.revoked_at)?;
        }
        Ok(())
    }

    pub fn is_revoked(&self, licence_id: &str) -> bool {
        self.list
            .revoked
            .iter()
            .any(|entry| entry.licence_id == licence_id)
    }
}

fn decode_b64(what: &str, text: &str) -> Result<Vec<u8>, KitError> {
    BASE64
        .decode(text.trim())
        .map_err(|e| KitError::Key(format!("{what} is not base64: {e}")))
}

/// Builds and self-signs an enrolment request with an Ed25519 seed. The appliance does this with
/// its HSM; this helper exists for tests and tooling.
pub fn ed25519_enrolment_request(
    seed: &[u8; 32],
    appliance_id: &str,
    created: &str,
) -> Result<EnrolmentRequest, KitError> {
    use ed25519_dalek::Signer as _;
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    let body = EnrolmentBody {
        format: ENROLMENT_FORMAT.into(),
        appliance_id: appliance_id.into(),
        installation_key: InstallationKey {
            algorithm: KeyAlgorithm::Ed25519,
            public_key: BASE64.encode(key.verifying_key().to_bytes()),
        },
        created: created.into(),
        version: None,
    };
    let message = to_canonical_json("enrolment request", &body)?;
    Ok(EnrolmentRequest {
        request: body,
        signature: BASE64.encode(key.sign(&message).to_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{KeyProtection, generate_key_pair};

    fn terms() -> LicenceTerms {
        LicenceTerms {
            customer: "ACME".into(),
            plan: "enterprise".into(),
            quotas: BTreeMap::from([("signatures_per_month".to_string(), 1000)]),
            valid_release_year: Some(2027),
            max_version: None,
            issued: parse_time("2026-01-01T00:00:00Z").unwrap(),
            expires: parse_time("2027-01-01T00:00:00Z").unwrap(),
        }
    }

    #[test]
    fn ed25519_request_verifies_and_tampering_fails() {
        let mut request =
            ed25519_enrolment_request(&[7; 32], "appliance-1", "2026-01-01T00:00:00Z").unwrap();
        request.verify().unwrap();
        request.request.appliance_id = "appliance-2".into();
        assert!(matches!(request.verify(), Err(KitError::Signature { .. })));
    }

    #[test]
    fn p256_request_with_raw_and_der_signatures_verifies() {
        use p256::ecdsa::signature::Signer as _;
        use p256::pkcs8::EncodePublicKey as _;
        let key = p256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap();
        let spki = key.verifying_key().to_public_key_der().unwrap();
        let body = EnrolmentBody {
            format: ENROLMENT_FORMAT.into(),
            appliance_id: "a".into(),
            installation_key: InstallationKey {
                algorithm: KeyAlgorithm::EcdsaP256,
                public_key: BASE64.encode(spki.as_bytes()),
            },
            created: "2026-01-01T00:00:00Z".into(),
            version: Some("0.1.0".into()),
        };
        let message = to_canonical_json("t", &body).unwrap();
        let signature: p256::ecdsa::Signature = key.sign(&message);
        let raw = EnrolmentRequest {
            request: body.clone(),
            signature: BASE64.encode(signature.to_bytes()),
        };
        raw.verify().unwrap();
        let der = EnrolmentRequest {
            request: body,
            signature: BASE64.encode(signature.to_der().as_bytes()),
        };
        der.verify().unwrap();
    }

    #[test]
    fn licence_round_trip_binding_and_revocation() {
        let vendor = generate_key_pair(KeyProtection::Unencrypted, "vendor").unwrap();
        let vendor_key =
            SigningKey::from_minisign_file_contents(&vendor.secret_key_file, None).unwrap();
        let trusted = TrustedKeys::from_texts([vendor.public_key_file.as_str()]).unwrap();
        let request =
            ed25519_enrolment_request(&[9; 32], "appliance-1", "2026-01-01T00:00:00Z").unwrap();
        let licence = issue_licence(&request, &terms(), &vendor_key).unwrap();
        assert_eq!(
            licence,
            issue_licence(&request, &terms(), &vendor_key).unwrap(),
            "issuing is deterministic"
        );
        licence.verify(&trusted).unwrap();
        let bytes = serde_json::to_vec(&licence).unwrap();
        let mut tampered = SignedLicence::parse(&bytes).unwrap();
        tampered.licence.plan = "free".into();
        assert!(tampered.verify(&trusted).is_err());
        let list = sign_revocations(
            RevocationList {
                format: String::new(),
                sequence: 1,
                issued: "2026-02-01T00:00:00Z".into(),
                revoked: vec![Revocation {
                    licence_id: licence.licence.licence_id.clone(),
                    revoked_at: "2026-02-01T00:00:00Z".into(),
                    reason: None,
                }],
            },
            &vendor_key,
        )
        .unwrap();
        list.verify(&trusted).unwrap();
        assert!(list.is_revoked(&licence.licence.licence_id));
    }

    #[test]
    fn the_licence_id_names_its_issuer_and_only_the_key_decides_trust() {
        let vendor = generate_key_pair(KeyProtection::Unencrypted, "vendor").unwrap();
        let demo = generate_key_pair(KeyProtection::Unencrypted, "demo").unwrap();
        let demo_key =
            SigningKey::from_minisign_file_contents(&demo.secret_key_file, None).unwrap();
        let request =
            ed25519_enrolment_request(&[9; 32], "appliance-1", "2026-01-01T00:00:00Z").unwrap();
        let licence = issue_licence_as(LicenceIssuer::Demo, &request, &terms(), &demo_key).unwrap();
        assert!(
            licence.licence.licence_id.starts_with("demo-"),
            "{}",
            licence.licence.licence_id
        );
        licence.validate().unwrap();
        licence
            .verify(&TrustedKeys::from_texts([demo.public_key_file.as_str()]).unwrap())
            .unwrap();
        let vendor_only = TrustedKeys::from_texts([vendor.public_key_file.as_str()]).unwrap();
        assert!(matches!(
            licence.verify(&vendor_only),
            Err(KitError::UnknownKey { .. })
        ));
    }

    #[test]
    fn forged_request_is_refused_when_issuing() {
        let vendor = generate_key_pair(KeyProtection::Unencrypted, "vendor").unwrap();
        let vendor_key =
            SigningKey::from_minisign_file_contents(&vendor.secret_key_file, None).unwrap();
        let mut request =
            ed25519_enrolment_request(&[1; 32], "appliance-1", "2026-01-01T00:00:00Z").unwrap();
        let other =
            ed25519_enrolment_request(&[2; 32], "appliance-1", "2026-01-01T00:00:00Z").unwrap();
        request.request.installation_key = other.request.installation_key;
        assert!(issue_licence(&request, &terms(), &vendor_key).is_err());
    }
}
