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

/// What a usage-view SBOM holds: the closure's components (with `stella:usedByEntrypoint=true`,
/// the used files and the linkage facts of used native files), the image-level properties that
/// list the entry chains, and its own serial number.
pub(crate) struct UsageView {
    pub(crate) components: Vec<crate::result::Component>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) serial: String,
}

impl UsageView {
    pub(crate) fn new(result: &ScanResult, usage: &crate::usage::Usage) -> UsageView {
        let mut files_of: std::collections::BTreeMap<&str, Vec<&str>> =
            std::collections::BTreeMap::new();
        for file in &usage.files {
            for component in &file.components {
                files_of
                    .entry(component.as_str())
                    .or_default()
                    .push(file.path.as_str());
            }
        }
        let natives: std::collections::BTreeMap<String, &crate::result::Binary> = result
            .binaries
            .iter()
            .map(|b| (format!("/{}", b.path), b))
            .collect();
        let components = result
            .components
            .iter()
            .filter(|c| usage.uses(&c.bom_ref))
            .map(|c| {
                let mut c = c.clone();
                c.properties
                    .insert("stella:usedByEntrypoint".into(), "true".into());
                let files = files_of
                    .get(c.bom_ref.as_str())
                    .cloned()
                    .unwrap_or_default();
                c.properties
                    .insert("stella:usage.files".into(), files.join(","));
                for file in files {
                    if let Some(binary) = natives.get(file) {
                        c.properties.insert(
                            format!("stella:native:{file}"),
                            native_summary(&binary.facts),
                        );
                    }
                }
                c
            })
            .collect();
        let mut properties = vec![("stella:view".to_owned(), "usage".to_owned())];
        for (i, chain) in usage.chains.iter().enumerate() {
            for (j, step) in chain.steps.iter().enumerate() {
                properties.push((
                    format!("stella:entrytrace:{i}:step:{j}"),
                    format!("{} {} {}", step.kind, step.at, step.argv.join(" ")),
                ));
            }
            if let Some(terminal) = &chain.terminal {
                properties.push((format!("stella:entrytrace:{i}:terminal"), terminal.clone()));
            }
            if let Some(launcher) = &chain.launcher {
                properties.push((format!("stella:entrytrace:{i}:launcher"), launcher.clone()));
            }
            for (k, target) in chain.targets.iter().enumerate() {
                properties.push((format!("stella:entrytrace:{i}:target:{k}"), target.clone()));
            }
            for (k, module) in chain.modules.iter().enumerate() {
                properties.push((format!("stella:entrytrace:{i}:module:{k}"), module.clone()));
            }
            if let Some(reason) = &chain.unresolved {
                properties.push((format!("stella:entrytrace:{i}:unresolved"), reason.clone()));
            }
        }
        if usage.truncated {
            properties.push(("stella:entrytrace:truncated".into(), "true".into()));
        }
        for (k, reason) in usage.unresolved.iter().enumerate() {
            properties.push((format!("stella:usage:unresolved:{k}"), reason.clone()));
        }
        UsageView {
            components,
            properties,
            serial: format!(
                "urn:uuid:{}",
                stable_uuid(&format!("usage:{}", result.image.image_id))
            ),
        }
    }
}

/// `format=…;needed=a,b;soname=x;rpath=…;runpath=…;interp=…;min_os=…;product=…` for a native
/// file (`product` = the PE version resource's name and version).
fn native_summary(facts: &crate::analyzer::native::NativeFacts) -> String {
    let mut parts = vec![format!("format={}", facts.format)];
    if !facts.needed.is_empty() {
        parts.push(format!("needed={}", facts.needed.join(",")));
    }
    if let Some(soname) = &facts.soname {
        parts.push(format!("soname={soname}"));
    }
    if !facts.rpath.is_empty() {
        parts.push(format!("rpath={}", facts.rpath.join(":")));
    }
    if !facts.runpath.is_empty() {
        parts.push(format!("runpath={}", facts.runpath.join(":")));
    }
    if let Some(interpreter) = &facts.interpreter {
        parts.push(format!("interp={interpreter}"));
    }
    if let Some(min_os) = &facts.min_os {
        parts.push(format!("min_os={min_os}"));
    }
    if let Some(pe) = &facts.pe_version
        && let Some(name) = pe.component_name()
    {
        let version = pe.component_version().unwrap_or_default();
        parts.push(format!("product={name} {version}").trim_end().to_owned());
    }
    parts.join(";")
}

/// An SBOM format the scanner writes.
pub const FORMATS: &[&str] = &["cdx-json", "cdx-pb", "spdx-json"];

impl ScanResult {
    /// The image SBOM in `format` (`cdx-json`, `cdx-pb`, `spdx-json`): the inventory view when
    /// `usage` is `None`, else the usage view.
    pub fn render_sbom(
        &self,
        format: &str,
        usage: Option<&crate::usage::Usage>,
    ) -> Result<Vec<u8>, crate::ScanError> {
        let Some(usage) = usage else {
            return match format {
                "cdx-json" => self.to_cyclonedx_json(),
                "cdx-pb" => self.to_cyclonedx_protobuf(),
                "spdx-json" => self.to_spdx_json(),
                other => Err(unknown_format(other)),
            };
        };
        match format {
            "cdx-json" => to_json(&cyclonedx::usage_bom(self, usage), "CycloneDX JSON"),
            "cdx-pb" => Ok(cyclonedx_proto::encode(&cyclonedx::usage_bom(self, usage))),
            "spdx-json" => {
                let layers = (0..self.layers.len())
                    .map(|index| self.layer_to_spdx_json(index))
                    .collect::<Result<Vec<_>, _>>()?;
                to_json(&spdx::usage_document(self, usage, &layers), "SPDX JSON")
            }
            other => Err(unknown_format(other)),
        }
    }

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

fn unknown_format(format: &str) -> crate::ScanError {
    crate::ScanError::Sbom {
        format: "SBOM",
        reason: format!("unknown format {format:?}: one of cdx-json, cdx-pb, spdx-json"),
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
