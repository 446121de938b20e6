//! The canonical advisory model carried by kits: one record per vulnerability after alias merging.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One vulnerability as the appliance knows it, merged from every source that describes it.
///
/// Field provenance: every element that came from a source carries that source's reference
/// (`KIND:RECORD-ID`, e.g. `osv:PYSEC-2021-335`), and [`Advisory::provenance`] maps each scalar
/// field to the source that won it under the precedence rules of `docs/offline-kit.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advisory {
    /// Primary id: a CVE id when the merged group has one, else a GHSA id, else the source id.
    pub id: String,
    /// Other ids of the same vulnerability (merge keys): CVE, GHSA, PYSEC, RUSTSEC, GO, NSWG ...
    #[serde(default)]
    pub aliases: BTreeSet<String>,
    /// Ids of advisories that cover this vulnerability among others (DSA/DLA, USN); not merge keys.
    #[serde(default)]
    pub related: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(default)]
    pub affected: Vec<Affected>,
    #[serde(default)]
    pub severities: Vec<Severity>,
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Listed in CISA's Known Exploited Vulnerabilities catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev: Option<KevFlag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epss: Option<EpssScore>,
    /// RFC 3339 timestamps (or dates) as the winning source gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    /// Scalar field name (`summary`, `details`, `published`, `modified`, `withdrawn`, `kev`, `epss`)
    /// -> the source reference that supplied the value; list fields carry `source` per element.
    #[serde(default)]
    pub provenance: BTreeMap<String, String>,
    /// Every source record merged into this advisory (`KIND:RECORD-ID`).
    #[serde(default)]
    pub sources: BTreeSet<String>,
}

/// Packages affected by an advisory in one ecosystem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affected {
    /// OSV ecosystem name: `PyPI`, `Go`, `crates.io`, `npm`, `Debian`, `Alpine`, `Ubuntu:24.04:LTS`,
    /// `Node.js` (the runtime), or `CPE` for NVD configurations.
    pub ecosystem: String,
    /// Package name in that ecosystem (the *source* package for Debian), or a CPE 2.3 string.
    pub package: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// OSV-style event ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Version requirements in the source's native syntax where it does not use events.
    #[serde(default)]
    pub requirements: Vec<Requirement>,
    /// Explicitly enumerated affected versions.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Versions that fix the vulnerability (from `fixed` events, `patched` bounds, distro fixes).
    #[serde(default)]
    pub fixed: Vec<String>,
    /// Distribution status per release (Debian, Alpine).
    #[serde(default)]
    pub distro: Vec<DistroRelease>,
    /// Source reference that contributed this entry.
    pub source: String,
}

/// An OSV range: an ordered list of events of one kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub kind: RangeKind,
    pub events: Vec<RangeEvent>,
    /// Git repository for `GIT` ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RangeKind {
    /// Versions compared with the ecosystem's own ordering.
    Ecosystem,
    /// Semantic versions (Go, npm, crates).
    Semver,
    /// Git commits.
    Git,
    /// NVD CPE version bounds (`versionStartIncluding` ...).
    Cpe,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeEvent {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// A version requirement in a source's native syntax.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub meaning: RequirementMeaning,
    pub syntax: RequirementSyntax,
    pub expression: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequirementMeaning {
    /// Versions matching are vulnerable.
    Vulnerable,
    /// Versions matching contain the fix.
    Patched,
    /// Versions matching were never affected.
    Unaffected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequirementSyntax {
    /// npm `semver` ranges (`<=1.5.1`, `>=2.0.0 <2.3.1 || ^3.0.0`).
    Npm,
    /// Cargo `VersionReq` (`>= 0.9.1`, `^0.8`).
    Cargo,
}

/// The status of a package in one distribution release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistroRelease {
    /// Release name as the distribution writes it: `bullseye`, `v3.11`.
    pub release: String,
    pub status: DistroStatus,
    /// Fixed version when `status` is `fixed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistroStatus {
    Fixed,
    NotAffected,
    Unfixed,
    EndOfLife,
}

/// A severity score with its vector.
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Severity {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, or `TEXT` for qualitative ratings (`high`).
    pub kind: String,
    /// The CVSS vector string, or the qualitative rating for `TEXT`.
    pub vector: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// OSV reference type (`ADVISORY`, `FIX`, `WEB`, ...).
    pub kind: String,
    pub url: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KevFlag {
    pub date_added: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// `Known` or `Unknown`, as CISA writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ransomware: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpssScore {
    pub score: f64,
    pub percentile: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// A KEV catalog entry, kept whole so the appliance can flag CVEs that no advisory covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KevEntry {
    pub cve: String,
    pub date_added: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ransomware: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One EPSS row, kept whole (EPSS scores every published CVE, most of which no advisory covers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpssEntry {
    pub cve: String,
    pub score: f64,
    pub percentile: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// True for ids of the CVE form `CVE-YYYY-N...`.
pub fn is_cve(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CVE-") else {
        return false;
    };
    let mut parts = rest.splitn(2, '-');
    let year = parts.next().unwrap_or("");
    let num = parts.next().unwrap_or("");
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && num.len() >= 4
        && num.bytes().all(|b| b.is_ascii_digit())
}

impl Advisory {
    /// A record with only an id and its source; parsers fill in the rest.
    pub fn new(id: impl Into<String>, source: impl Into<String>) -> Self {
        let source = source.into();
        Advisory {
            id: id.into(),
            aliases: BTreeSet::new(),
            related: BTreeSet::new(),
            summary: None,
            details: None,
            affected: Vec::new(),
            severities: Vec::new(),
            references: Vec::new(),
            kev: None,
            epss: None,
            published: None,
            modified: None,
            withdrawn: None,
            provenance: BTreeMap::new(),
            sources: BTreeSet::from([source]),
        }
    }

    /// Checks the invariants a kit record must hold; the verifier rejects records that fail.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.trim().is_empty() {
            return Err("advisory id is empty".into());
        }
        if self.id.len() > 256 {
            return Err(format!(
                "advisory id {:?}... is longer than 256 bytes",
                self.id.chars().take(32).collect::<String>()
            ));
        }
        if self.aliases.contains(&self.id) {
            return Err(format!("advisory {} lists itself as an alias", self.id));
        }
        if self.sources.is_empty() {
            return Err(format!("advisory {} has no source", self.id));
        }
        for affected in &self.affected {
            if affected.package.is_empty() || affected.ecosystem.is_empty() {
                return Err(format!(
                    "advisory {} has an affected entry without ecosystem or package",
                    self.id
                ));
            }
            for release in &affected.distro {
                if (release.status == DistroStatus::Fixed) != release.fixed_version.is_some() {
                    return Err(format!(
                        "advisory {}: {} {}: a fixed version is required exactly when status is fixed",
                        self.id, affected.package, release.release
                    ));
                }
            }
        }
        for severity in &self.severities {
            if let Some(score) = severity.score
                && !(0.0..=10.0).contains(&score)
            {
                return Err(format!(
                    "advisory {}: CVSS score {score} outside 0..10",
                    self.id
                ));
            }
        }
        if let Some(epss) = &self.epss {
            check_probability(&self.id, epss.score, epss.percentile)?;
        }
        Ok(())
    }

    /// Puts every list in a stable order and removes duplicates, so equal content serialises equally.
    pub fn normalize(&mut self) {
        for affected in &mut self.affected {
            affected.versions.sort();
            affected.versions.dedup();
            affected.fixed.sort();
            affected.fixed.dedup();
            affected.distro.sort();
            affected.distro.dedup();
            affected.requirements.sort();
            affected.requirements.dedup();
        }
        self.affected.sort();
        self.affected.dedup();
        self.severities.sort_by(|a, b| {
            (a.source.as_str(), a.kind.as_str(), a.vector.as_str()).cmp(&(
                b.source.as_str(),
                b.kind.as_str(),
                b.vector.as_str(),
            ))
        });
        self.severities
            .dedup_by(|a, b| a.kind == b.kind && a.vector == b.vector && a.source == b.source);
        self.references.sort();
        self.references.dedup();
        self.aliases.remove(&self.id);
        let aliases = self.aliases.clone();
        self.related
            .retain(|r| r != &self.id && !aliases.contains(r));
    }
}

pub(crate) fn check_probability(what: &str, score: f64, percentile: f64) -> Result<(), String> {
    if !(0.0..=1.0).contains(&score) || !(0.0..=1.0).contains(&percentile) {
        return Err(format!(
            "{what}: EPSS score {score} / percentile {percentile} outside 0..1"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cve_ids_are_recognised_strictly() {
        assert!(is_cve("CVE-2021-44228"));
        assert!(is_cve("CVE-2021-1234567"));
        assert!(!is_cve("CVE-21-44228"));
        assert!(!is_cve("GHSA-xxxx-yyyy-zzzz"));
        assert!(!is_cve("CVE-2021-12a4"));
    }

    #[test]
    fn overlong_multibyte_id_is_an_error_not_a_panic() {
        let advisory = Advisory::new("€".repeat(100), "osv:x");
        assert!(
            advisory
                .validate()
                .unwrap_err()
                .contains("longer than 256 bytes")
        );
    }

    #[test]
    fn validate_rejects_fixed_status_without_version() {
        let mut advisory = Advisory::new("CVE-2023-1393", "debian-dsa:DSA-5380-1");
        advisory.affected.push(Affected {
            ecosystem: "Debian".into(),
            package: "xorg-server".into(),
            purl: None,
            ranges: vec![],
            requirements: vec![],
            versions: vec![],
            fixed: vec![],
            distro: vec![DistroRelease {
                release: "bullseye".into(),
                status: DistroStatus::Fixed,
                fixed_version: None,
            }],
            source: "debian-dsa:DSA-5380-1".into(),
        });
        assert!(
            advisory
                .validate()
                .unwrap_err()
                .contains("fixed version is required")
        );
    }
}
