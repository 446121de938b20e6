//! Offline verification of a Sigstore bundle made by the appliance: DSSE signature →
//! certificate chain to the appliance root → SCT → log entry matches the envelope →
//! inclusion proof → checkpoint signature → RFC 3161 timestamp inside the certificate's
//! validity → (optionally) the artefact is a subject. Unlike sigstore-rs's offline verifier
//! (sigstore-rs #285), the Merkle inclusion proof is always checked.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use stella_hsm::PublicKey;
use stella_signer::{Envelope, Limits, OIDC_ISSUER_OID, SCT_LIST_OID};
use time::OffsetDateTime;

use crate::der::{self, SEQUENCE, cons, oid, tlv};
use crate::merkle::{self, Hash};
use crate::note::{note_key_id, verify_checkpoint};
use crate::rekor::{HashedRekord, TransparencyLogEntry};
use crate::tsa::verify_timestamp;
use crate::{BUNDLE_MEDIA_TYPE, TrustMaterial};

/// Bound on an untrusted bundle.
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024 * 1024;

/// Why a bundle does not verify; one kind per check, so each tampering names itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The bundle or trusted root is not well-formed.
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// The DSSE signature does not verify with the leaf certificate's key.
    #[error("DSSE signature: {0}")]
    DsseSignature(String),
    /// The leaf certificate does not chain to the appliance root.
    #[error("certificate chain: {0}")]
    CertificateChain(String),
    /// The embedded SCT is missing or does not verify with the CT log key.
    #[error("SCT: {0}")]
    Sct(String),
    /// The log entry's body is not the hashedrekord of this envelope and certificate.
    #[error("log entry does not match the bundle: {0}")]
    LogEntryMismatch(String),
    /// The inclusion proof does not lead to the stated root.
    #[error("inclusion proof: {0}")]
    InclusionProof(String),
    /// The checkpoint is not signed by the log key or does not match the proof.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The RFC 3161 timestamp does not verify.
    #[error("timestamp: {0}")]
    Timestamp(String),
    /// The timestamp lies outside the leaf certificate's validity.
    #[error("timestamp outside the certificate's validity: {0}")]
    TimeOutsideValidity(String),
    /// The artefact is not a subject of the statement.
    #[error("artefact: {0}")]
    ArtifactMismatch(String),
}

/// What a verified bundle says.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The leaf certificate's SAN (URI or e-mail).
    pub identity: String,
    /// The OIDC issuer extension.
    pub oidc_issuer: String,
    /// Log index of the entry.
    pub log_index: u64,
    /// The verified RFC 3161 time.
    pub signed_at: OffsetDateTime,
    /// The statement's predicate type.
    pub predicate_type: String,
    /// `(name, sha256 hex)` of every subject.
    pub subjects: Vec<(String, String)>,
    /// Predicate claims, when present: `licence_id`, `policy_digest`, `version`, … (flat strings).
    pub claims: std::collections::BTreeMap<String, String>,
    /// The full in-toto statement.
    pub statement: Value,
}

fn malformed(reason: impl Into<String>) -> VerifyError {
    VerifyError::Malformed(reason.into())
}

fn b64(value: &Value, what: &str) -> Result<Vec<u8>, VerifyError> {
    value
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or_else(|| malformed(format!("{what} is missing or not base64")))
}

/// The TBSCertificate without the SCT list extension (the RFC 6962 precertificate TBS).
fn precertificate_tbs(tbs: &[u8]) -> Result<Vec<u8>, VerifyError> {
    let (outer, _) = der::expect(tbs, SEQUENCE, "TBSCertificate")
        .map_err(|e| VerifyError::Sct(e.to_string()))?;
    let fields = der::children(outer.content, "TBSCertificate")
        .map_err(|e| VerifyError::Sct(e.to_string()))?;
    let sct_oid = oid(SCT_LIST_OID);
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(fields.len());
    for field in fields {
        if field.tag != 0xa3 {
            parts.push(field.raw.to_vec());
            continue;
        }
        let (list, _) = der::expect(field.content, SEQUENCE, "extensions")
            .map_err(|e| VerifyError::Sct(e.to_string()))?;
        let kept: Vec<Vec<u8>> = der::children(list.content, "extensions")
            .map_err(|e| VerifyError::Sct(e.to_string()))?
            .into_iter()
            .filter(|ext| !ext.content.starts_with(&sct_oid))
            .map(|ext| ext.raw.to_vec())
            .collect();
        parts.push(tlv(0xa3, &tlv(SEQUENCE, &kept.concat())));
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Ok(cons(SEQUENCE, &refs))
}

fn verify_sct(
    leaf: &x509_parser::certificate::X509Certificate<'_>,
    issuer_spki: &[u8],
    ct_log_spki: &[u8],
) -> Result<(), VerifyError> {
    let sct_oid = x509_parser::der_parser::oid::Oid::from(SCT_LIST_OID)
        .map_err(|_| VerifyError::Sct("bad OID".into()))?;
    let extension = leaf
        .extensions()
        .iter()
        .find(|ext| ext.oid == sct_oid)
        .ok_or_else(|| VerifyError::Sct("leaf certificate has no embedded SCT".into()))?;
    let (octets, _) = der::expect(extension.value, der::OCTET_STRING, "SCT list")
        .map_err(|e| VerifyError::Sct(e.to_string()))?;
    let list = octets.content;
    let short = || VerifyError::Sct("SCT list truncated".into());
    let take = |bytes: &[u8], at: usize, n: usize| {
        bytes.get(at..at + n).map(<[u8]>::to_vec).ok_or_else(short)
    };
    let sct_len = u16::from_be_bytes(take(list, 2, 2)?.try_into().map_err(|_| short())?) as usize;
    let sct = take(list, 4, sct_len)?;
    if sct.first() != Some(&0) {
        return Err(VerifyError::Sct("SCT version is not v1".into()));
    }
    let log_id = take(&sct, 1, 32)?;
    if log_id != Sha256::digest(ct_log_spki).to_vec() {
        return Err(VerifyError::Sct(
            "SCT is from a log not in the trusted root".into(),
        ));
    }
    let timestamp = take(&sct, 33, 8)?;
    let ext_len = u16::from_be_bytes(take(&sct, 41, 2)?.try_into().map_err(|_| short())?) as usize;
    let extensions = take(&sct, 43, ext_len)?;
    let at = 43 + ext_len;
    let signature_len =
        u16::from_be_bytes(take(&sct, at + 2, 2)?.try_into().map_err(|_| short())?) as usize;
    let signature = take(&sct, at + 4, signature_len)?;
    let tbs = precertificate_tbs(leaf.tbs_certificate.as_ref())?;
    let tbs_len = u32::try_from(tbs.len()).map_err(|_| short())?.to_be_bytes();
    let mut signed = vec![0u8, 0u8];
    signed.extend_from_slice(&timestamp);
    signed.extend_from_slice(&1u16.to_be_bytes());
    signed.extend_from_slice(&Sha256::digest(issuer_spki));
    signed.extend_from_slice(&tbs_len[1..]);
    signed.extend_from_slice(&tbs);
    signed.extend_from_slice(&(ext_len as u16).to_be_bytes());
    signed.extend_from_slice(&extensions);
    let key = PublicKey::from_spki_der(ct_log_spki).map_err(|e| VerifyError::Sct(e.to_string()))?;
    key.verify(&signed, &signature)
        .map_err(|_| VerifyError::Sct("SCT signature does not verify with the CT log key".into()))
}

/// Verifies a bundle fully offline against the appliance's trust material.
pub fn verify_bundle(
    bundle_json: &[u8],
    artifact: Option<&[u8]>,
    trust: &TrustMaterial,
) -> Result<Verified, VerifyError> {
    if bundle_json.len() > MAX_BUNDLE_BYTES {
        return Err(malformed(format!(
            "{} bytes exceed {MAX_BUNDLE_BYTES}",
            bundle_json.len()
        )));
    }
    let bundle: Value =
        serde_json::from_slice(bundle_json).map_err(|e| malformed(e.to_string()))?;
    if bundle["mediaType"] != BUNDLE_MEDIA_TYPE {
        return Err(malformed("mediaType is not a Sigstore bundle v0.3"));
    }
    let material = &bundle["verificationMaterial"];
    let certificate_der = b64(&material["certificate"]["rawBytes"], "certificate")?;
    let envelope_json =
        serde_json::to_vec(&bundle["dsseEnvelope"]).map_err(|e| malformed(e.to_string()))?;
    let envelope = Envelope::from_json(&envelope_json, Limits::default())
        .map_err(|e| malformed(e.to_string()))?;
    let entries = material["tlogEntries"]
        .as_array()
        .ok_or_else(|| malformed("no tlogEntries"))?;
    let [entry] = entries.as_slice() else {
        return Err(malformed("expected exactly one tlog entry"));
    };
    let entry: TransparencyLogEntry =
        serde_json::from_value(entry.clone()).map_err(|e| malformed(e.to_string()))?;
    let timestamps = material["timestampVerificationData"]["rfc3161Timestamps"]
        .as_array()
        .ok_or_else(|| malformed("no RFC 3161 timestamp (Rekor v2 has no integrated time)"))?;
    let [timestamp] = timestamps.as_slice() else {
        return Err(malformed("expected exactly one RFC 3161 timestamp"));
    };
    let timestamp = b64(&timestamp["signedTimestamp"], "signedTimestamp")?;

    // 1. DSSE signature with the leaf's key.
    let (_, leaf) = x509_parser::parse_x509_certificate(&certificate_der)
        .map_err(|e| VerifyError::CertificateChain(format!("leaf is not DER X.509: {e}")))?;
    let leaf_key = PublicKey::from_spki_der(leaf.public_key().raw)
        .map_err(|e| VerifyError::DsseSignature(e.to_string()))?;
    let payload = envelope
        .verify(&leaf_key)
        .map_err(|e| VerifyError::DsseSignature(e.to_string()))?;

    // 2. Certificate chain to the appliance root.
    let (_, root) = x509_parser::parse_x509_certificate(&trust.ca_root_der)
        .map_err(|e| malformed(format!("trusted root CA: {e}")))?;
    let root_key = PublicKey::from_spki_der(root.public_key().raw)
        .map_err(|e| malformed(format!("trusted root CA key: {e}")))?;
    root_key
        .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
        .map_err(|_| {
            VerifyError::CertificateChain("leaf is not signed by the appliance root".into())
        })?;
    if leaf.issuer() != root.subject() {
        return Err(VerifyError::CertificateChain(
            "leaf issuer is not the root's subject".into(),
        ));
    }

    // 3. SCT from the appliance CT log key over the precertificate.
    verify_sct(&leaf, root.public_key().raw, &trust.ct_log_spki)?;

    // 4. The log entry is the hashedrekord of this envelope and certificate.
    let body = STANDARD
        .decode(&entry.canonicalized_body)
        .map_err(|_| malformed("canonicalizedBody is not base64"))?;
    let expected = HashedRekord::for_dsse(&envelope, &certificate_der)
        .and_then(|r| r.canonical_body())
        .map_err(|e| VerifyError::LogEntryMismatch(e.to_string()))?;
    if body != expected
        || entry.kind_version.kind != "hashedrekord"
        || entry.kind_version.version != "0.0.2"
    {
        return Err(VerifyError::LogEntryMismatch(
            "body is not hashedrekord 0.0.2 over this envelope's PAE, signature and certificate"
                .into(),
        ));
    }

    // 5. Inclusion proof.
    let proof = &entry.inclusion_proof;
    let number = |text: &str, what: &str| {
        text.parse::<u64>()
            .map_err(|_| malformed(format!("{what} is not a decimal")))
    };
    let index = number(&proof.log_index, "inclusionProof.logIndex")?;
    if number(&entry.log_index, "logIndex")? != index {
        return Err(VerifyError::InclusionProof(
            "entry and proof log indexes differ".into(),
        ));
    }
    let size = number(&proof.tree_size, "treeSize")?;
    let root_hash: Hash = STANDARD
        .decode(&proof.root_hash)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| VerifyError::InclusionProof("rootHash is not 32 bytes of base64".into()))?;
    let path = proof
        .hashes
        .iter()
        .map(|h| {
            STANDARD
                .decode(h)
                .ok()
                .and_then(|b| <Hash>::try_from(b).ok())
        })
        .collect::<Option<Vec<Hash>>>()
        .ok_or_else(|| {
            VerifyError::InclusionProof("a proof hash is not 32 bytes of base64".into())
        })?;
    merkle::verify_inclusion(index, size, &merkle::leaf_hash(&body), &path, &root_hash)
        .map_err(|e| VerifyError::InclusionProof(e.to_string()))?;

    // 6. Checkpoint signed by the log key named by the trusted root's log id.
    let log_id = STANDARD.decode(&entry.log_id.key_id).unwrap_or_default();
    if log_id != trust.log_id {
        return Err(VerifyError::Checkpoint(
            "entry's log id is not the trusted log".into(),
        ));
    }
    let note = &proof.checkpoint.envelope;
    let origin = note.split('\n').next().unwrap_or_default();
    let log_key = trust
        .log_spki
        .get(trust.log_spki.len().saturating_sub(32)..)
        .unwrap_or_default();
    if note_key_id(origin, log_key) != trust.log_id {
        return Err(VerifyError::Checkpoint(format!(
            "origin {origin:?} is not the trusted log's name"
        )));
    }
    let checkpoint = verify_checkpoint(note, origin, log_key)
        .map_err(|e| VerifyError::Checkpoint(e.to_string()))?;
    if checkpoint.size != size || checkpoint.root != root_hash {
        return Err(VerifyError::Checkpoint(
            "checkpoint size or root differs from the proof".into(),
        ));
    }

    // 7. RFC 3161 timestamp over the signature, inside the leaf's validity.
    let signature = STANDARD
        .decode(&envelope.signatures[0].sig)
        .map_err(|_| malformed("DSSE signature is not base64"))?;
    let verified_time = verify_timestamp(&timestamp, &signature, &trust.tsa_chain)
        .map_err(|e| VerifyError::Timestamp(e.to_string()))?;
    let validity = leaf.validity();
    let at = verified_time.time.unix_timestamp();
    if at < validity.not_before.timestamp() || at > validity.not_after.timestamp() {
        return Err(VerifyError::TimeOutsideValidity(format!(
            "timestamp {at} not in {}..{}",
            validity.not_before.timestamp(),
            validity.not_after.timestamp()
        )));
    }

    // 8. Statement, subjects, artefact, claims.
    let statement: Value =
        serde_json::from_slice(&payload).map_err(|e| malformed(format!("statement: {e}")))?;
    let subjects: Vec<(String, String)> = statement["subject"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or_default().to_owned(),
                        s["digest"]["sha256"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(artifact) = artifact {
        let digest = hex::encode(Sha256::digest(artifact));
        if !subjects.iter().any(|(_, d)| *d == digest) {
            return Err(VerifyError::ArtifactMismatch(format!(
                "no subject has sha256 {digest}"
            )));
        }
    }
    let mut claims = std::collections::BTreeMap::new();
    if let Some(predicate) = statement["predicate"].as_object() {
        for (key, value) in predicate {
            if let Some(text) = value.as_str() {
                claims.insert(key.clone(), text.to_owned());
            }
        }
    }
    let identity = leaf
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                x509_parser::extensions::GeneralName::URI(uri) => Some((*uri).to_owned()),
                x509_parser::extensions::GeneralName::RFC822Name(mail) => Some((*mail).to_owned()),
                _ => None,
            })
        })
        .unwrap_or_default();
    let issuer_oid = x509_parser::der_parser::oid::Oid::from(OIDC_ISSUER_OID).ok();
    let oidc_issuer = leaf
        .extensions()
        .iter()
        .find(|ext| Some(&ext.oid) == issuer_oid.as_ref())
        .and_then(|ext| der::expect(ext.value, 0x0c, "issuer").ok())
        .and_then(|(value, _)| std::str::from_utf8(value.content).ok().map(str::to_owned))
        .unwrap_or_default();
    Ok(Verified {
        identity,
        oidc_issuer,
        log_index: index,
        signed_at: verified_time.time,
        predicate_type: statement["predicateType"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        subjects,
        claims,
        statement,
    })
}
