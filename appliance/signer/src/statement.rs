//! in-toto Statement v1 with the image (and SBOM) digests as subjects, and the three predicates
//! the appliance signs: CycloneDX SBOM, SPDX SBOM and the policy report (seed §8 fields).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::SignerError;

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Predicate type of a CycloneDX SBOM (the in-toto attestation predicate registry's value).
pub const CYCLONEDX_PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";
/// Predicate type of an SPDX SBOM (the in-toto attestation predicate registry's value).
pub const SPDX_PREDICATE_TYPE: &str = "https://spdx.dev/Document";
/// Predicate type of the appliance's policy report, following seed §8's naming.
pub const POLICY_REPORT_PREDICATE_TYPE: &str =
    "https://stella-ops.org/attestations/policy-report/1";

/// A SHA-256 digest: always 64 lower-case hex characters (displayed with the `sha256:` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// Parses `sha256:<64 lower-case hex>`.
    pub fn parse(value: &str) -> Result<Self, SignerError> {
        let invalid = |reason| SignerError::InvalidDigest {
            value: value.to_owned(),
            reason,
        };
        let hex_part = value
            .strip_prefix("sha256:")
            .ok_or_else(|| invalid("must start with sha256:"))?;
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid("needs 64 lower-case hex characters after sha256:"));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| invalid("not hex"))?;
        Ok(Sha256Digest(bytes))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Sha256Digest(Sha256::digest(bytes).into())
    }

    /// The 64 hex characters without prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Sha256Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An in-toto ResourceDescriptor used as a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The subject's name (image reference, SBOM file name).
    pub name: String,
    /// Algorithm → hex digest; always holds `sha256`.
    pub digest: BTreeMap<String, String>,
    /// Annotations; the signer sets `stella-ops.org/dev-signed` when signing with a dev key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, serde_json::Value>,
}

impl Subject {
    /// A subject with a SHA-256 digest.
    pub fn new(name: &str, digest: Sha256Digest) -> Self {
        Subject {
            name: name.to_owned(),
            digest: BTreeMap::from([("sha256".to_owned(), digest.hex())]),
            annotations: BTreeMap::new(),
        }
    }
}

/// The in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// The predicate's type URI.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: serde_json::Value,
}

impl Statement {
    /// RFC 8785 canonical JSON: the exact bytes that go into the DSSE payload.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, SignerError> {
        serde_json_canonicalizer::to_vec(self).map_err(|error| SignerError::Json {
            what: "in-toto statement",
            reason: error.to_string(),
        })
    }
}

/// The policy report predicate (seed §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReport {
    /// Image digest the report is about.
    pub image_digest: Sha256Digest,
    /// Running appliance version, e.g. `2.3.1 (2027.04)`.
    pub stellaops_version: String,
    /// Licence id of the entitlement that allowed the signing.
    pub license_id: String,
    /// Customer id of the licence.
    pub customer_id: String,
    /// Plan of the licence.
    pub plan: String,
    /// Digest of the policy the report was evaluated with.
    pub policy_digest: Sha256Digest,
    /// SBOM views the report covers (`inventory`, `usage`).
    pub views: Vec<String>,
    /// When the report was created, RFC 3339 UTC with seconds.
    pub created: String,
    /// The report body (verdicts, findings), as produced by the policy engine.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub report: serde_json::Value,
}

impl PolicyReport {
    /// Formats `created` from a timestamp, truncated to whole seconds in UTC.
    pub fn format_created(created: OffsetDateTime) -> Result<String, SignerError> {
        let created = created
            .to_offset(time::UtcOffset::UTC)
            .replace_nanosecond(0)
            .map_err(|error| SignerError::Statement(error.to_string()))?;
        created
            .format(&Rfc3339)
            .map_err(|error| SignerError::Statement(error.to_string()))
    }
}

/// The predicates the appliance signs.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// A CycloneDX JSON document, embedded as the predicate.
    CycloneDx(serde_json::Value),
    /// An SPDX JSON document, embedded as the predicate.
    Spdx(serde_json::Value),
    /// The policy report.
    PolicyReport(Box<PolicyReport>),
}

impl Predicate {
    /// The predicate type URI.
    pub fn predicate_type(&self) -> &'static str {
        match self {
            Predicate::CycloneDx(_) => CYCLONEDX_PREDICATE_TYPE,
            Predicate::Spdx(_) => SPDX_PREDICATE_TYPE,
            Predicate::PolicyReport(_) => POLICY_REPORT_PREDICATE_TYPE,
        }
    }

    fn check_and_into_value(self) -> Result<serde_json::Value, SignerError> {
        match self {
            Predicate::CycloneDx(document) => {
                if document.get("bomFormat").and_then(|v| v.as_str()) != Some("CycloneDX") {
                    return Err(SignerError::Statement(
                        "CycloneDX predicate lacks bomFormat \"CycloneDX\"".to_owned(),
                    ));
                }
                Ok(document)
            }
            Predicate::Spdx(document) => {
                let version = document
                    .get("spdxVersion")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                if !version.starts_with("SPDX-") {
                    return Err(SignerError::Statement(
                        "SPDX predicate lacks spdxVersion \"SPDX-…\"".to_owned(),
                    ));
                }
                Ok(document)
            }
            Predicate::PolicyReport(report) => {
                serde_json::to_value(*report).map_err(|error| SignerError::Json {
                    what: "policy report",
                    reason: error.to_string(),
                })
            }
        }
    }
}

/// Builds a [`Statement`]: the image is always the first subject; SBOMs follow.
#[derive(Debug, Clone)]
pub struct StatementBuilder {
    subjects: Vec<Subject>,
}

impl StatementBuilder {
    /// Starts with the image (`name` is the reference, e.g. `registry/app`) and its digest.
    pub fn new(image_name: &str, image_digest: Sha256Digest) -> Self {
        StatementBuilder {
            subjects: vec![Subject::new(image_name, image_digest)],
        }
    }

    /// Adds an SBOM artefact as a subject, digesting its exact bytes.
    pub fn sbom_subject(mut self, name: &str, sbom_bytes: &[u8]) -> Self {
        self.subjects
            .push(Subject::new(name, Sha256Digest::of(sbom_bytes)));
        self
    }

    /// Adds any subject with a known digest.
    pub fn subject(mut self, name: &str, digest: Sha256Digest) -> Self {
        self.subjects.push(Subject::new(name, digest));
        self
    }

    /// Finishes with `predicate`.
    pub fn build(self, predicate: Predicate) -> Result<Statement, SignerError> {
        if self.subjects.iter().any(|subject| subject.name.is_empty()) {
            return Err(SignerError::Statement(
                "a subject has an empty name".to_owned(),
            ));
        }
        let predicate_type = predicate.predicate_type().to_owned();
        Ok(Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject: self.subjects,
            predicate_type,
            predicate: predicate.check_and_into_value()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_only_the_canonical_form() {
        let text = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(Sha256Digest::parse(&text).unwrap().to_string(), text);
        assert!(Sha256Digest::parse(&"ab".repeat(32)).is_err());
        assert!(Sha256Digest::parse(&format!("sha256:{}", "AB".repeat(32))).is_err());
        assert!(Sha256Digest::parse("sha256:abc").is_err());
    }

    #[test]
    fn sbom_predicates_are_checked() {
        let digest = Sha256Digest::of(b"image");
        let wrong = StatementBuilder::new("img", digest)
            .build(Predicate::CycloneDx(serde_json::json!({"x": 1})));
        assert!(wrong.is_err());
        let wrong = StatementBuilder::new("img", digest).build(Predicate::Spdx(
            serde_json::json!({"bomFormat": "CycloneDX"}),
        ));
        assert!(wrong.is_err());
    }
}
