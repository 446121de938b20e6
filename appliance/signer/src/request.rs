//! The body of `POST /sign/dsse`: what an internal caller asks the signer to sign.

use serde::Deserialize;

use crate::{
    Predicate, Sha256Digest, SignerError, Statement, StatementBuilder, statement::PolicyReport,
};

/// Bounds on an untrusted signing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Maximum request size (default 32 MiB: SBOM predicates of large images).
    pub max_request_bytes: usize,
    /// Maximum number of extra subjects (default 64).
    pub max_subjects: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_request_bytes: 32 * 1024 * 1024,
            max_subjects: 64,
        }
    }
}

/// Which predicate the request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PredicateKind {
    /// A CycloneDX JSON SBOM.
    Cyclonedx,
    /// An SPDX JSON SBOM.
    Spdx,
    /// A policy report (seed §8 fields).
    PolicyReport,
}

/// An extra subject (an SBOM file, a report file) with its digest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSubject {
    /// File name.
    pub name: String,
    /// `sha256:` digest.
    pub digest: Sha256Digest,
}

/// `POST /sign/dsse` body, JSON:
/// `{"imageName", "imageDigest", "subjects": [{"name", "digest"}], "predicateKind", "predicate"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignRequest {
    /// Image reference (the first subject's name).
    pub image_name: String,
    /// Image manifest digest.
    pub image_digest: Sha256Digest,
    /// SBOM or report files, each with its digest.
    #[serde(default)]
    pub subjects: Vec<RequestSubject>,
    /// Which predicate follows.
    pub predicate_kind: PredicateKind,
    /// The predicate document.
    pub predicate: serde_json::Value,
}

impl SignRequest {
    /// Parses an untrusted request.
    pub fn from_json(bytes: &[u8], limits: RequestLimits) -> Result<Self, SignerError> {
        if bytes.len() > limits.max_request_bytes {
            return Err(SignerError::Statement(format!(
                "sign request of {} bytes exceeds the limit of {}",
                bytes.len(),
                limits.max_request_bytes
            )));
        }
        let request: SignRequest = serde_json::from_slice(bytes)
            .map_err(|error| SignerError::Statement(format!("sign request: {error}")))?;
        if request.subjects.len() > limits.max_subjects {
            return Err(SignerError::Statement(format!(
                "sign request has {} subjects; at most {} are accepted",
                request.subjects.len(),
                limits.max_subjects
            )));
        }
        Ok(request)
    }

    /// Builds the in-toto statement, checking the predicate against its kind.
    pub fn into_statement(self) -> Result<Statement, SignerError> {
        let mut builder = StatementBuilder::new(&self.image_name, self.image_digest);
        for subject in &self.subjects {
            builder = builder.subject(&subject.name, subject.digest);
        }
        let predicate = match self.predicate_kind {
            PredicateKind::Cyclonedx => Predicate::CycloneDx(self.predicate),
            PredicateKind::Spdx => Predicate::Spdx(self.predicate),
            PredicateKind::PolicyReport => {
                let report: PolicyReport =
                    serde_json::from_value(self.predicate).map_err(|error| {
                        SignerError::Statement(format!("policy report predicate: {error}"))
                    })?;
                if report.image_digest != self.image_digest {
                    return Err(SignerError::Statement(format!(
                        "policy report is about {}, but the request signs {}",
                        report.image_digest, self.image_digest
                    )));
                }
                Predicate::PolicyReport(Box::new(report))
            }
        };
        builder.build(predicate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(text: &[u8]) -> String {
        Sha256Digest::of(text).to_string()
    }

    #[test]
    fn a_policy_report_request_becomes_a_statement() {
        let body = serde_json::json!({
            "imageName": "registry.example/app",
            "imageDigest": digest(b"image"),
            "subjects": [{"name": "report.json", "digest": digest(b"report")}],
            "predicateKind": "policy-report",
            "predicate": {
                "image_digest": digest(b"image"), "stellaops_version": "2.3.1 (2026.11)",
                "license_id": "lic-1", "customer_id": "CUST-ACME", "plan": "pro",
                "policy_digest": digest(b"policy"), "views": ["inventory"], "created": "2026-11-29T06:00:00Z"
            }
        });
        let request = SignRequest::from_json(
            &serde_json::to_vec(&body).unwrap(),
            RequestLimits::default(),
        )
        .unwrap();
        let statement = request.into_statement().unwrap();
        assert_eq!(statement.subject.len(), 2);
        assert_eq!(
            statement.predicate_type,
            crate::POLICY_REPORT_PREDICATE_TYPE
        );
    }

    #[test]
    fn bad_requests_are_named_errors() {
        let limits = RequestLimits::default();
        assert!(SignRequest::from_json(b"{}", limits).is_err());
        assert!(
            SignRequest::from_json(
                &[b' '; 5],
                RequestLimits {
                    max_request_bytes: 4,
                    max_subjects: 1
                }
            )
            .is_err()
        );
        let unknown = serde_json::json!({
            "imageName": "a", "imageDigest": digest(b"i"), "predicateKind": "spdx", "predicate": {}, "extra": 1
        });
        let error =
            SignRequest::from_json(&serde_json::to_vec(&unknown).unwrap(), limits).unwrap_err();
        assert!(error.to_string().contains("extra"), "{error}");
        let mismatch = serde_json::json!({
            "imageName": "a", "imageDigest": digest(b"i"), "predicateKind": "policy-report",
            "predicate": {
                "image_digest": digest(b"other"), "stellaops_version": "v", "license_id": "l",
                "customer_id": "c", "plan": "p", "policy_digest": digest(b"p"), "views": [], "created": "x"
            }
        });
        let request =
            SignRequest::from_json(&serde_json::to_vec(&mismatch).unwrap(), limits).unwrap();
        assert!(
            request
                .into_statement()
                .unwrap_err()
                .to_string()
                .contains("is about")
        );
    }
}
