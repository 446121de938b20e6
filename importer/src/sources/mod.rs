//! Source parsers: one file per feed format, each taking bytes and returning model records plus
//! the records it had to drop and why. No I/O here; `stella-kit` reads files and URLs.

use std::fmt;
use std::str::FromStr;

use crate::error::RecordError;
use crate::keyupdate::SignedKeyUpdate;
use crate::licence::{SignedLicence, SignedRevocationList};
use crate::model::{Advisory, EpssEntry, KevEntry};
use crate::vex::VexClaim;

pub mod alpine;
pub mod csaf;
pub mod cyclonedx_vex;
pub mod debian_json;
pub mod debian_list;
pub mod epss;
pub mod kev;
pub mod licence;
pub mod nodejs;
pub mod nvd;
pub mod openvex;
pub mod osv;

/// Every source kind `stella-kit build --source KIND=PATH` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    Osv,
    NodejsSecurityWg,
    Nvd,
    DebianDsa,
    DebianDla,
    DebianJson,
    AlpineSecdb,
    Kev,
    Epss,
    Openvex,
    Csaf,
    CyclonedxVex,
    Licence,
    Revocations,
    KeyUpdate,
}

impl SourceKind {
    /// The table of kinds: name on the command line, parser, and which file names it reads in a
    /// directory.
    pub const ALL: [SourceKind; 15] = [
        SourceKind::Osv,
        SourceKind::NodejsSecurityWg,
        SourceKind::Nvd,
        SourceKind::DebianDsa,
        SourceKind::DebianDla,
        SourceKind::DebianJson,
        SourceKind::AlpineSecdb,
        SourceKind::Kev,
        SourceKind::Epss,
        SourceKind::Openvex,
        SourceKind::Csaf,
        SourceKind::CyclonedxVex,
        SourceKind::Licence,
        SourceKind::Revocations,
        SourceKind::KeyUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Osv => "osv",
            SourceKind::NodejsSecurityWg => "nodejs-security-wg",
            SourceKind::Nvd => "nvd",
            SourceKind::DebianDsa => "debian-dsa",
            SourceKind::DebianDla => "debian-dla",
            SourceKind::DebianJson => "debian-json",
            SourceKind::AlpineSecdb => "alpine-secdb",
            SourceKind::Kev => "kev",
            SourceKind::Epss => "epss",
            SourceKind::Openvex => "openvex",
            SourceKind::Csaf => "csaf",
            SourceKind::CyclonedxVex => "cyclonedx-vex",
            SourceKind::Licence => "licence",
            SourceKind::Revocations => "revocations",
            SourceKind::KeyUpdate => "key-update",
        }
    }

    /// Whether a file found while walking a directory source belongs to this kind.
    pub fn wants_file(self, file_name: &str) -> bool {
        let lower = file_name.to_ascii_lowercase();
        let lower = lower.strip_suffix(".gz").unwrap_or(&lower);
        match self {
            SourceKind::Osv => {
                lower.ends_with(".json") || lower.ends_with(".yaml") || lower.ends_with(".yml") || {
                    lower.ends_with(".md")
                        && !lower.starts_with("readme")
                        && !lower.starts_with("license")
                }
            }
            SourceKind::NodejsSecurityWg => lower.ends_with(".json") && lower != "index.json",
            SourceKind::AlpineSecdb => {
                lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
            }
            SourceKind::Epss => lower.ends_with(".csv"),
            SourceKind::DebianDsa | SourceKind::DebianDla => lower == "list",
            SourceKind::Openvex => {
                lower.ends_with(".json") || lower.ends_with(".yaml") || lower.ends_with(".yml")
            }
            _ => lower.ends_with(".json"),
        }
    }

    /// Parses one document of this kind. `origin` names it in errors and provenance.
    pub fn parse(self, origin: &str, bytes: &[u8]) -> Parsed {
        match self {
            SourceKind::Osv => osv::parse(origin, bytes),
            SourceKind::NodejsSecurityWg => nodejs::parse(origin, bytes),
            SourceKind::Nvd => nvd::parse(origin, bytes),
            SourceKind::DebianDsa | SourceKind::DebianDla => {
                debian_list::parse(self.as_str(), origin, bytes)
            }
            SourceKind::DebianJson => debian_json::parse(origin, bytes),
            SourceKind::AlpineSecdb => alpine::parse(origin, bytes),
            SourceKind::Kev => kev::parse(origin, bytes),
            SourceKind::Epss => epss::parse(origin, bytes),
            SourceKind::Openvex => openvex::parse(origin, bytes),
            SourceKind::Csaf => csaf::parse(origin, bytes),
            SourceKind::CyclonedxVex => cyclonedx_vex::parse(origin, bytes),
            SourceKind::Licence => licence::parse_licence(origin, bytes),
            SourceKind::Revocations => licence::parse_revocations(origin, bytes),
            SourceKind::KeyUpdate => licence::parse_key_update(origin, bytes),
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SourceKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = SourceKind::ALL.iter().map(|kind| kind.as_str()).collect();
                format!(
                    "unknown source kind {text:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// What one source document yielded.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub advisories: Vec<Advisory>,
    pub vex_claims: Vec<VexClaim>,
    pub kev: Vec<KevEntry>,
    pub epss: Vec<EpssEntry>,
    pub licences: Vec<SignedLicence>,
    pub revocations: Vec<SignedRevocationList>,
    pub key_updates: Vec<SignedKeyUpdate>,
    /// Records that were dropped, with the reason.
    pub errors: Vec<RecordError>,
}

impl Parsed {
    pub fn records(&self) -> usize {
        self.advisories.len()
            + self.vex_claims.len()
            + self.kev.len()
            + self.epss.len()
            + self.licences.len()
            + self.revocations.len()
            + self.key_updates.len()
    }

    pub fn extend(&mut self, other: Parsed) {
        self.advisories.extend(other.advisories);
        self.vex_claims.extend(other.vex_claims);
        self.kev.extend(other.kev);
        self.epss.extend(other.epss);
        self.licences.extend(other.licences);
        self.revocations.extend(other.revocations);
        self.key_updates.extend(other.key_updates);
        self.errors.extend(other.errors);
    }

    pub(crate) fn error(&mut self, origin: &str, record: Option<&str>, reason: impl Into<String>) {
        self.errors.push(RecordError {
            origin: origin.to_string(),
            record: record.map(str::to_string),
            reason: reason.into(),
        });
    }

    /// Keeps only advisories that pass [`Advisory::validate`]; the others become errors.
    pub(crate) fn keep_valid(mut self, origin: &str) -> Self {
        let advisories = std::mem::take(&mut self.advisories);
        for mut advisory in advisories {
            advisory.normalize();
            match advisory.validate() {
                Ok(()) => self.advisories.push(advisory),
                Err(reason) => self.error(origin, Some(&advisory.id), reason),
            }
        }
        let claims = std::mem::take(&mut self.vex_claims);
        for claim in claims {
            match claim.validate() {
                Ok(()) => self.vex_claims.push(claim),
                Err(reason) => self.error(origin, Some(&claim.vulnerability), reason),
            }
        }
        self
    }
}

/// Parses JSON, or YAML when the text does not start with `{` or `[`.
pub(crate) fn json_or_yaml(bytes: &[u8]) -> Result<serde_json::Value, String> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    if matches!(bytes.get(start), Some(b'{') | Some(b'[')) {
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))
    } else {
        serde_yaml_ng::from_slice(bytes).map_err(|e| format!("invalid YAML: {e}"))
    }
}

/// The string at `pointer` (JSON pointer), if it is a non-empty string.
pub(crate) fn str_at<'a>(value: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub(crate) fn string_list(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Some(serde_json::Value::String(text)) if !text.trim().is_empty() => {
            vec![text.trim().to_string()]
        }
        _ => Vec::new(),
    }
}

/// `CVSS_V3` / `CVSS_V4` / `CVSS_V2` from a vector's prefix.
pub(crate) fn cvss_kind(vector: &str) -> &'static str {
    if vector.starts_with("CVSS:4") {
        "CVSS_V4"
    } else if vector.starts_with("CVSS:3") {
        "CVSS_V3"
    } else {
        "CVSS_V2"
    }
}

/// The version in a simple lower bound `>= X` / `>=X` / `^X`, used as a fixed version.
pub(crate) fn lower_bound_version(requirement: &str) -> Option<String> {
    let text = requirement.trim();
    let rest = text
        .strip_prefix(">=")
        .or_else(|| text.strip_prefix('^'))?
        .trim();
    if rest.is_empty()
        || rest.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '|' | ',' | '='))
    {
        return None;
    }
    Some(rest.to_string())
}

/// File stem of an origin path (`vuln/core/12.json` -> `12`).
pub(crate) fn file_stem(origin: &str) -> &str {
    let name = origin.rsplit(['/', '\\']).next().unwrap_or(origin);
    name.split('.').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_are_unique() {
        let mut names = std::collections::BTreeSet::new();
        for kind in SourceKind::ALL {
            assert!(names.insert(kind.as_str()));
            assert_eq!(kind.as_str().parse::<SourceKind>().unwrap(), kind);
        }
        assert!(
            "osvv"
                .parse::<SourceKind>()
                .unwrap_err()
                .contains("expected one of")
        );
    }

    #[test]
    fn every_parser_survives_hostile_bytes() {
        let inputs: [&[u8]; 7] = [
            b"",
            b"\xff\xfe\x00",
            b"{}",
            b"[]",
            b"null",
            b"```toml\n[advisory]\n",
            b"- a\n- : b",
        ];
        for kind in SourceKind::ALL {
            for input in inputs {
                let parsed = kind.parse("fuzz", input);
                assert_eq!(parsed.records(), 0, "{kind} made records from {input:?}");
            }
        }
    }
}
