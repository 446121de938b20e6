//! Reading the decider's components out of a CycloneDX JSON SBOM as the scanner writes it
//! (`docs/scanner.md`): the purl, the `stella:*` properties (ecosystem, layer, source package,
//! usage), licences and the first evidence path. Both `stella report` and `POST /api/reports`
//! go through this one reader, so the CLI and the API judge exactly the same components.

use std::str::FromStr;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::component::Component;

/// Why an SBOM could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SbomError {
    #[error("SBOM is not JSON: {0}")]
    Json(String),
    #[error("SBOM is not CycloneDX: {0}")]
    NotCycloneDx(String),
    #[error("SBOM component {index}: {reason}")]
    Component { index: usize, reason: String },
}

/// What a report needs from one SBOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomInput {
    /// `sha256:` of the SBOM bytes as given.
    pub sbom_digest: String,
    /// The image id (`metadata.component`'s `stella:imageId`, else its version), when present.
    pub image_digest: Option<String>,
    /// The image's distribution (`stella:distro`, e.g. `debian-12`), when present.
    pub distro: Option<String>,
    /// Components, in SBOM order.
    pub components: Vec<Component>,
}

/// Limits on an SBOM read from outside (documented defaults).
#[derive(Debug, Clone, Copy)]
pub struct SbomLimits {
    /// Largest SBOM accepted, in bytes (default 256 MiB).
    pub max_bytes: usize,
    /// Most components accepted (default 1,000,000).
    pub max_components: usize,
}

impl Default for SbomLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            max_components: 1_000_000,
        }
    }
}

/// The OSV ecosystem of a scanner ecosystem / purl type, for language packages.
fn language_ecosystem(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "pypi" => "PyPI",
        "npm" => "npm",
        "maven" => "Maven",
        "golang" => "Go",
        "nuget" => "NuGet",
        "cargo" => "crates.io",
        "gem" => "RubyGems",
        "composer" => "Packagist",
        "hex" => "Hex",
        "pub" => "Pub",
        _ => return None,
    })
}

/// `debian-12` -> `debian:12` (the decider's release form); the split is at the last `-`.
fn release_form(distro: &str) -> String {
    match distro.rsplit_once('-') {
        Some((id, version)) if !id.is_empty() && !version.is_empty() => format!("{id}:{version}"),
        _ => distro.to_owned(),
    }
}

fn property<'a>(component: &'a Value, name: &str) -> Option<&'a str> {
    component["properties"]
        .as_array()?
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["value"].as_str())
}

fn licences(component: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for entry in component["licenses"].as_array().into_iter().flatten() {
        if let Some(expression) = entry["expression"].as_str() {
            out.push(expression.to_owned());
        } else if let Some(id) = entry["license"]["id"].as_str() {
            out.push(id.to_owned());
        } else if let Some(name) = entry["license"]["name"].as_str() {
            out.push(name.to_owned());
        }
    }
    out
}

/// Reads `bytes` as the scanner's CycloneDX 1.6 JSON. Components without a purl (unidentified
/// binaries) are kept with their bom-ref as purl and no ecosystem, so no advisory matches them
/// but they are counted. `stella:usedByEntrypoint` = `true` marks the usage closure.
pub fn components_from_cyclonedx(
    bytes: &[u8],
    limits: &SbomLimits,
) -> Result<SbomInput, SbomError> {
    if bytes.len() > limits.max_bytes {
        return Err(SbomError::NotCycloneDx(format!(
            "{} bytes is over the limit of {}",
            bytes.len(),
            limits.max_bytes
        )));
    }
    let document: Value =
        serde_json::from_slice(bytes).map_err(|e| SbomError::Json(e.to_string()))?;
    if document["bomFormat"].as_str() != Some("CycloneDX") {
        return Err(SbomError::NotCycloneDx(
            "bomFormat is not \"CycloneDX\"".into(),
        ));
    }
    let metadata = &document["metadata"]["component"];
    let image_digest = property(metadata, "stella:imageId")
        .or_else(|| {
            metadata["version"]
                .as_str()
                .filter(|v| v.starts_with("sha256:"))
        })
        .map(str::to_owned);
    let image_distro = property(metadata, "stella:distro").map(str::to_owned);
    let empty = Vec::new();
    let list = match &document["components"] {
        Value::Null => &empty,
        Value::Array(list) => list,
        _ => {
            return Err(SbomError::NotCycloneDx("components is not an array".into()));
        }
    };
    if list.len() > limits.max_components {
        return Err(SbomError::NotCycloneDx(format!(
            "{} components is over the limit of {}",
            list.len(),
            limits.max_components
        )));
    }
    let mut components = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let bad = |reason: String| SbomError::Component { index, reason };
        let name = entry["name"]
            .as_str()
            .ok_or_else(|| bad("no name".into()))?
            .to_owned();
        let sbom_version = entry["version"].as_str().unwrap_or("").to_owned();
        let kind = property(entry, "stella:ecosystem").unwrap_or("");
        let parsed = match entry["purl"].as_str() {
            Some(text) => Some((
                text.to_owned(),
                packageurl::PackageUrl::from_str(text)
                    .map_err(|e| bad(format!("purl {text:?}: {e}")))?,
            )),
            None => None,
        };
        let mut component = Component {
            purl: String::new(),
            name,
            version: sbom_version.clone(),
            ecosystem: String::new(),
            source_name: property(entry, "stella:sourcePackage").map(str::to_owned),
            source_version: property(entry, "stella:sourceVersion").map(str::to_owned),
            distro: None,
            layer_digest: property(entry, "stella:layerDigest").map(str::to_owned),
            used_by_entrypoint: property(entry, "stella:usedByEntrypoint") == Some("true"),
            path: entry["evidence"]["occurrences"][0]["location"]
                .as_str()
                .map(str::to_owned),
            licences: licences(entry),
        };
        let Some((purl_text, purl)) = parsed else {
            component.purl = entry["bom-ref"].as_str().unwrap_or("").to_owned();
            components.push(component);
            continue;
        };
        component.purl = purl_text;
        // The purl's version is the ecosystem's own spelling (Go's stdlib `1.19.8`, not the
        // toolchain's `go1.19.8`).
        if let Some(version) = purl.version() {
            component.version = version.to_owned();
        }
        let purl_type = purl.ty();
        match purl_type {
            "deb" | "apk" | "rpm" => {
                let distro = purl
                    .qualifiers()
                    .iter()
                    .find(|(k, _)| k.as_ref() == "distro")
                    .map(|(_, v)| v.to_string())
                    .or_else(|| image_distro.clone());
                component.ecosystem = match (purl_type, purl.namespace()) {
                    ("deb", Some("ubuntu")) => "Ubuntu".into(),
                    ("deb", _) => "Debian".into(),
                    ("apk", _) => "Alpine".into(),
                    (_, namespace) => namespace.unwrap_or("rpm").to_owned(),
                };
                component.distro = distro.as_deref().map(release_form);
                if component.source_name.is_some() && component.source_version.is_none() {
                    component.source_version = Some(component.version.clone());
                }
            }
            other => {
                component.ecosystem = language_ecosystem(other)
                    .or_else(|| language_ecosystem(kind))
                    .unwrap_or("")
                    .to_owned();
            }
        }
        components.push(component);
    }
    Ok(SbomInput {
        sbom_digest: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
        image_digest,
        distro: image_distro,
        components,
    })
}

impl SbomInput {
    /// Marks `usedByEntrypoint` on every component for which `used(purl)` holds (the purl, or
    /// the bom-ref for components without one): the join with the BOM-Index's
    /// `usedByEntrypoint` bitmap. Returns how many components were marked.
    pub fn mark_used_where(&mut self, used: impl Fn(&str) -> bool) -> usize {
        let mut marked = 0;
        for component in &mut self.components {
            if used(&component.purl) {
                component.used_by_entrypoint = true;
                marked += 1;
            }
        }
        marked
    }

    /// Marks `usedByEntrypoint` on every component that the usage-view SBOM of the same image
    /// lists (the scanner writes the usage closure as a separate CycloneDX view holding only the
    /// closure's components). Components are matched by purl (by bom-ref for those without
    /// one). Returns how many components were marked. An SBOM of another image is refused.
    pub fn mark_used_from_cyclonedx(
        &mut self,
        usage_view: &[u8],
        limits: &SbomLimits,
    ) -> Result<usize, SbomError> {
        let usage = components_from_cyclonedx(usage_view, limits)?;
        if usage.image_digest.is_some()
            && self.image_digest.is_some()
            && usage.image_digest != self.image_digest
        {
            return Err(SbomError::NotCycloneDx(format!(
                "the usage view is of image {}, the inventory of {}",
                usage.image_digest.as_deref().unwrap_or(""),
                self.image_digest.as_deref().unwrap_or("")
            )));
        }
        let used: std::collections::HashSet<&str> =
            usage.components.iter().map(|c| c.purl.as_str()).collect();
        let mut marked = 0;
        for component in &mut self.components {
            if used.contains(component.purl.as_str()) {
                component.used_by_entrypoint = true;
                marked += 1;
            }
        }
        Ok(marked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distro_names_become_release_form() {
        assert_eq!(release_form("debian-12"), "debian:12");
        assert_eq!(release_form("alpine-3.20.1"), "alpine:3.20.1");
        assert_eq!(release_form("opensuse-leap-15.5"), "opensuse-leap:15.5");
    }

    #[test]
    fn not_cyclonedx_is_refused() {
        let err =
            components_from_cyclonedx(b"{\"spdxVersion\":\"SPDX-2.3\"}", &SbomLimits::default())
                .unwrap_err();
        assert!(err.to_string().contains("bomFormat"), "{err}");
    }
}
