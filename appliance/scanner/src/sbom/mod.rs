//! SBOM writers: CycloneDX 1.6 JSON and SPDX 2.3 JSON, both deterministic.
//!
//! Identities and times come from the scan, never from the clock: serial
//! numbers and namespaces are UUIDv5 of the image id (or layer diff_id) and
//! the analyzer set; the timestamp is the result's (SOURCE_DATE_EPOCH or the
//! image config's `created`). JSON maps are emitted with sorted keys and
//! arrays in the result's sorted order.

pub mod cyclonedx;
#[allow(clippy::all, clippy::pedantic, missing_docs, deprecated)]
pub mod cyclonedx_pb;
pub mod cyclonedx_proto;
pub mod spdx;

use sha2::{Digest as _, Sha256};

use crate::ScanResult;
use crate::analyzer::analyzer_key;

/// The tool name written into SBOMs.
pub const TOOL_NAME: &str = "stella-scanner";
/// The tool version written into SBOMs.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Namespace for the scanner's UUIDv5 identities.
const UUID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5a0b_6f0e_7d1c_4e59_9c4e_51e1_1a0f_5c4e);

/// A stable UUID for `what` (an image id or layer diff_id) under the current
/// analyzer set and tool version.
pub(crate) fn stable_uuid(what: &str) -> uuid::Uuid {
    let analyzers = analyzer_key(&crate::analyzer::registry());
    uuid::Uuid::new_v5(
        &UUID_NAMESPACE,
        format!("{what}|{analyzers}|{TOOL_NAME}@{TOOL_VERSION}").as_bytes(),
    )
}

/// The serial number (`urn:uuid:...`) of the image BOM.
pub fn image_serial(result: &ScanResult) -> String {
    format!("urn:uuid:{}", stable_uuid(result.image.image_id.as_str()))
}

/// The serial number of layer `index`'s fragment BOM.
pub fn layer_serial(result: &ScanResult, index: usize) -> String {
    let diff_id = result
        .layers
        .get(index)
        .map(|l| l.diff_id.to_string())
        .unwrap_or_default();
    format!("urn:uuid:{}", stable_uuid(&format!("layer:{diff_id}")))
}

/// A short stable id derived from `text` (for SPDX element ids).
pub(crate) fn short_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
        .chars()
        .take(16)
        .collect()
}

/// How a declared licence string maps to SPDX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LicenseForm {
    /// A single SPDX licence id (canonical spelling).
    Id(String),
    /// A valid SPDX expression.
    Expression(String),
    /// Anything else, kept verbatim.
    Name(String),
}

pub(crate) fn classify_license(text: &str) -> LicenseForm {
    let trimmed = text.trim();
    if let Some(id) = ::spdx::license_id(trimmed)
        && id.name == trimmed
        && !id.is_deprecated()
    {
        return LicenseForm::Id(trimmed.to_owned());
    }
    match ::spdx::Expression::parse(trimmed) {
        Ok(_) => LicenseForm::Expression(trimmed.to_owned()),
        Err(_) => LicenseForm::Name(trimmed.to_owned()),
    }
}

fn to_json(value: &serde_json::Value, format: &'static str) -> Result<Vec<u8>, crate::ScanError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| crate::ScanError::Sbom {
        format,
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

impl ScanResult {
    /// The image SBOM as CycloneDX 1.6 JSON.
    pub fn to_cyclonedx_json(&self) -> Result<Vec<u8>, crate::ScanError> {
        to_json(&cyclonedx::image_bom(self), "CycloneDX JSON")
    }

    /// The image SBOM as CycloneDX 1.6 Protobuf (`bom-1.6.proto`, message
    /// `cyclonedx.v1_6.Bom`), carrying the same facts as the JSON.
    pub fn to_cyclonedx_protobuf(&self) -> Result<Vec<u8>, crate::ScanError> {
        Ok(cyclonedx_proto::encode(&cyclonedx::image_bom(self)))
    }

    /// Layer `index`'s fragment SBOM as CycloneDX 1.6 JSON (what the image
    /// SBOM's BOM-Links point at).
    pub fn layer_to_cyclonedx_json(&self, index: usize) -> Result<Vec<u8>, crate::ScanError> {
        to_json(&cyclonedx::layer_bom(self, index), "CycloneDX JSON")
    }

    /// The image SBOM as SPDX 2.3 JSON.
    pub fn to_spdx_json(&self) -> Result<Vec<u8>, crate::ScanError> {
        let layers = (0..self.layers.len())
            .map(|index| self.layer_to_spdx_json(index))
            .collect::<Result<Vec<_>, _>>()?;
        to_json(&spdx::image_document(self, &layers), "SPDX JSON")
    }

    /// Layer `index`'s fragment SBOM as SPDX 2.3 JSON (what the image
    /// document's ExternalDocumentRefs point at, with its SHA-1).
    pub fn layer_to_spdx_json(&self, index: usize) -> Result<Vec<u8>, crate::ScanError> {
        to_json(&spdx::layer_document(self, index), "SPDX JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licence_forms() {
        assert_eq!(classify_license("MIT"), LicenseForm::Id("MIT".into()));
        assert_eq!(
            classify_license("MIT OR Apache-2.0"),
            LicenseForm::Expression("MIT OR Apache-2.0".into())
        );
        assert_eq!(
            classify_license("BSD-like"),
            LicenseForm::Name("BSD-like".into())
        );
    }
}
