//! The decider's own view of an SBOM component: what matching and policy need, nothing more.
//!
//! The scanner's types are converted into this at the edge, so the decider does not depend on
//! the scanner crate.

use serde::{Deserialize, Serialize};

/// One component of an image, as the decider sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// Package URL (`pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64`).
    pub purl: String,
    /// Package name in its ecosystem (binary package name for distro packages; `group:artifact`
    /// for Maven; `@scope/name` for npm).
    pub name: String,
    /// Installed version.
    pub version: String,
    /// OSV ecosystem name: `Debian`, `Alpine`, `PyPI`, `npm`, `crates.io`, `Go`, `Maven`, `NuGet`.
    pub ecosystem: String,
    /// Source package name for distro packages (Debian `Source:`, Alpine origin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// Source package version for distro packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// Distribution release for distro packages: `debian:12`, `alpine:3.20`, `ubuntu:24.04`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
    /// Digest of the layer that introduced the component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<String>,
    /// Whether the component is in the entrypoint's usage closure.
    #[serde(default)]
    pub used_by_entrypoint: bool,
    /// An evidence path inside the image (the package database or the manifest file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Declared licences (SPDX ids or expressions as declared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licences: Vec<String>,
}

/// A distribution family the decider knows how to match with distro advisories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistroFamily {
    Debian,
    Ubuntu,
    Alpine,
}

impl DistroFamily {
    /// The advisory ecosystem name of the family.
    pub fn ecosystem(self) -> &'static str {
        match self {
            DistroFamily::Debian => "Debian",
            DistroFamily::Ubuntu => "Ubuntu",
            DistroFamily::Alpine => "Alpine",
        }
    }
}

/// A component's distribution release, split: `debian:12` -> (Debian, "12").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistroRelease {
    pub family: DistroFamily,
    pub version: String,
    /// Names an advisory may use for this release (computed once: matching asks per entry).
    names: Vec<String>,
}

impl DistroRelease {
    /// Reads `debian:12`, `alpine:3.20`, `ubuntu:24.04`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (family, version) = text.split_once(':')?;
        let family = match family.to_ascii_lowercase().as_str() {
            "debian" => DistroFamily::Debian,
            "ubuntu" => DistroFamily::Ubuntu,
            "alpine" => DistroFamily::Alpine,
            _ => return None,
        };
        let version = version.trim_start_matches('v');
        if version.is_empty() {
            return None;
        }
        let names = match family {
            DistroFamily::Debian => {
                let major = version.split('.').next().unwrap_or(version);
                let mut names = vec![major.to_owned()];
                names.extend(debian_codename(major).map(str::to_owned));
                names
            }
            DistroFamily::Alpine => {
                let major_minor = major_minor(version);
                vec![format!("v{major_minor}"), major_minor]
            }
            DistroFamily::Ubuntu => vec![version.to_owned()],
        };
        Some(Self {
            family,
            version: version.to_owned(),
            names,
        })
    }

    /// The names an advisory may use for this release (`12` and `bookworm`; `v3.20` and `3.20`).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether a release name as an advisory writes it (`bookworm`, `v3.20`, `12`) is this release.
    pub fn is_named(&self, release: &str) -> bool {
        let release = release.trim();
        self.names.iter().any(|name| name == release)
    }

    /// Whether an OSV ecosystem with a release suffix (`Debian:12`, `Alpine:v3.20`,
    /// `Ubuntu:24.04:LTS`) names this release.
    pub fn matches_ecosystem(&self, ecosystem: &str) -> bool {
        let mut parts = ecosystem.split(':');
        let base = parts.next().unwrap_or("");
        let Some(release) = parts.next() else {
            return false;
        };
        base == self.family.ecosystem() && self.is_named(release)
    }
}

fn major_minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Debian release codenames by major version, as the security tracker writes them.
pub fn debian_codename(major: &str) -> Option<&'static str> {
    Some(match major {
        "7" => "wheezy",
        "8" => "jessie",
        "9" => "stretch",
        "10" => "buster",
        "11" => "bullseye",
        "12" => "bookworm",
        "13" => "trixie",
        "14" => "forky",
        "15" => "duke",
        _ => return None,
    })
}

impl Component {
    /// The component's distro release, when it is a distro package.
    pub fn distro_release(&self) -> Option<DistroRelease> {
        self.distro.as_deref().and_then(DistroRelease::parse)
    }

    /// The name advisories use for this package: the source package for distro packages.
    pub fn advisory_package(&self) -> &str {
        self.source_name.as_deref().unwrap_or(&self.name)
    }

    /// The version advisories compare against: the source version for distro packages.
    pub fn advisory_version(&self) -> &str {
        self.source_version.as_deref().unwrap_or(&self.version)
    }
}

/// PEP 503 name normalisation (`Foo_Bar.baz` -> `foo-bar-baz`), used for PyPI lookups.
pub fn normalize_pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_dash {
                out.push('-');
            }
            last_dash = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_dash = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_releases_match_codenames_and_numbers() {
        let release = DistroRelease::parse("debian:12").unwrap();
        assert!(release.is_named("bookworm"));
        assert!(release.is_named("12"));
        assert!(!release.is_named("bullseye"));
        assert!(release.matches_ecosystem("Debian:12"));
        assert!(!release.matches_ecosystem("Debian:11"));
    }

    #[test]
    fn alpine_releases_match_by_major_minor() {
        let release = DistroRelease::parse("alpine:3.11.6").unwrap();
        assert!(release.is_named("v3.11"));
        assert!(!release.is_named("v3.1"));
    }

    #[test]
    fn pypi_names_normalise() {
        assert_eq!(normalize_pypi_name("Foo__Bar.baz"), "foo-bar-baz");
    }
}
