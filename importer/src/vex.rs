//! The normalised VEX claim: one (product, vulnerability) statement from OpenVEX, CSAF or CycloneDX.

use serde::{Deserialize, Serialize};

/// One provider's statement about one product and one vulnerability.
///
/// Conflicting claims are all kept; consensus is decided later by policy (issue "Decide").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VexClaim {
    /// The product: a purl when the document gives one, else a CPE, else the document's product id.
    pub product: String,
    /// Sub-components of the product the claim is about (OpenVEX `subcomponents`), as purls.
    #[serde(default)]
    pub subcomponents: Vec<String>,
    /// Vulnerability id (CVE, GHSA, ...).
    pub vulnerability: String,
    pub status: VexStatus,
    /// OpenVEX justification vocabulary (CycloneDX and CSAF values are mapped to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact_statement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_statement: Option<String>,
    /// Who makes the claim (document author / publisher).
    pub provider: String,
    /// When the claim was made (RFC 3339), statement time first, then document time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub format: VexFormat,
    /// Id of the document the claim came from.
    pub document: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VexFormat {
    Openvex,
    Csaf,
    CyclonedxVex,
}

impl VexClaim {
    /// Invariants the verifier checks for every claim in a kit.
    pub fn validate(&self) -> Result<(), String> {
        if self.product.is_empty() {
            return Err(format!(
                "VEX claim for {} has no product",
                self.vulnerability
            ));
        }
        if self.vulnerability.is_empty() {
            return Err(format!(
                "VEX claim for {} has no vulnerability",
                self.product
            ));
        }
        if self.provider.is_empty() {
            return Err(format!(
                "VEX claim {} / {} has no provider",
                self.product, self.vulnerability
            ));
        }
        Ok(())
    }

    /// The identity of a claim for delta kits: the SHA-256 of its canonical JSON. A document may
    /// hold several claims about one product and vulnerability (an OpenVEX history), so only the
    /// whole claim identifies it; a changed claim travels as removal of the old plus the new one.
    pub fn key(&self) -> String {
        match crate::canonical::to_canonical_json("VEX claim", self) {
            Ok(bytes) => crate::manifest::Sha256Hex::of(&bytes).as_str().to_string(),
            // Serialising plain strings and enums cannot fail; keep a readable fallback anyway.
            Err(_) => format!(
                "{}|{}|{}|{}|{:?}",
                self.provider, self.document, self.product, self.vulnerability, self.status
            ),
        }
    }
}

/// Maps the justifications of CycloneDX (`analysis.justification`) onto the OpenVEX vocabulary.
pub fn justification_from_cyclonedx(value: &str) -> String {
    match value {
        "code_not_present" => "vulnerable_code_not_present",
        "code_not_reachable" => "vulnerable_code_not_in_execute_path",
        "requires_configuration" | "requires_dependency" | "requires_environment" => {
            "vulnerable_code_cannot_be_controlled_by_adversary"
        }
        "protected_by_compiler"
        | "protected_at_runtime"
        | "protected_at_perimeter"
        | "protected_by_mitigating_control" => "inline_mitigations_already_exist",
        other => other,
    }
    .to_string()
}
