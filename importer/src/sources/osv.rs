//! OSV records: JSON or YAML (PyPA, Go, GHSA, Ubuntu), and RustSec's Markdown with a TOML block.

use serde::Deserialize;

use super::{Parsed, cvss_kind, json_or_yaml, lower_bound_version};
use crate::model::{
    Advisory, Affected, Range, RangeEvent, RangeKind, Reference, Requirement, RequirementMeaning,
    RequirementSyntax, Severity, is_cve,
};

#[derive(Debug, Deserialize)]
struct OsvRecord {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    related: Vec<String>,
    #[serde(default)]
    upstream: Vec<String>,
    summary: Option<String>,
    details: Option<String>,
    #[serde(default)]
    affected: Vec<OsvAffected>,
    #[serde(default)]
    severity: Vec<OsvSeverity>,
    #[serde(default)]
    references: Vec<OsvReference>,
    published: Option<String>,
    modified: Option<String>,
    withdrawn: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OsvAffected {
    package: Option<OsvPackage>,
    #[serde(default)]
    ranges: Vec<OsvRange>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    severity: Vec<OsvSeverity>,
}

#[derive(Debug, Deserialize)]
struct OsvPackage {
    ecosystem: String,
    name: String,
    purl: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: String,
    repo: Option<String>,
    #[serde(default)]
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct OsvSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Debug, Deserialize)]
struct OsvReference {
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

/// Parses one OSV document (JSON, YAML or RustSec Markdown).
pub fn parse(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let text_start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    if bytes[text_start..].starts_with(b"```toml") {
        match parse_rustsec(bytes) {
            Ok(advisory) => parsed.advisories.push(advisory),
            Err(reason) => parsed.error(origin, None, reason),
        }
        return parsed.keep_valid(origin);
    }
    let value = match json_or_yaml(bytes) {
        Ok(value) => value,
        Err(reason) => {
            parsed.error(origin, None, reason);
            return parsed;
        }
    };
    let id = value.get("id").and_then(|v| v.as_str()).map(str::to_string);
    match serde_json::from_value::<OsvRecord>(value) {
        Ok(record) => match convert(record) {
            Ok(advisory) => parsed.advisories.push(advisory),
            Err(reason) => parsed.error(origin, id.as_deref(), reason),
        },
        Err(error) => parsed.error(origin, id.as_deref(), format!("not an OSV record: {error}")),
    }
    parsed.keep_valid(origin)
}

fn convert(record: OsvRecord) -> Result<Advisory, String> {
    let source = format!("osv:{}", record.id);
    let mut advisory = Advisory::new(record.id.trim(), &source);
    advisory
        .aliases
        .extend(record.aliases.into_iter().map(|a| a.trim().to_string()));
    advisory.related.extend(record.related);
    // Per-CVE derivative records (UBUNTU-CVE-…) name exactly one upstream id, which is the same
    // vulnerability; bundles (USN-…) name several, which are related, not aliases.
    if record.upstream.len() == 1 && is_cve(&record.upstream[0]) {
        advisory.aliases.extend(record.upstream);
    } else {
        advisory.related.extend(record.upstream);
    }
    advisory.summary = record.summary.filter(|s| !s.trim().is_empty());
    advisory.details = record.details.filter(|s| !s.trim().is_empty());
    advisory.published = record.published;
    advisory.modified = record.modified;
    advisory.withdrawn = record.withdrawn;
    for severity in record.severity {
        advisory.severities.push(Severity {
            kind: severity.kind,
            vector: severity.score,
            score: None,
            source: source.clone(),
        });
    }
    for reference in record.references {
        advisory.references.push(Reference {
            kind: reference.kind,
            url: reference.url,
            source: source.clone(),
        });
    }
    for affected in record.affected {
        // OSV allows an affected entry without a package when it only has GIT ranges (the
        // CVE-derived records); the repository then stands for the package.
        let (ecosystem, name, purl) = match affected.package {
            Some(package) => (package.ecosystem, package.name, package.purl),
            None => {
                let repo = affected
                    .ranges
                    .iter()
                    .find(|range| range.kind == "GIT")
                    .and_then(|range| range.repo.clone())
                    .ok_or_else(|| {
                        "affected entry without package and without a GIT range".to_string()
                    })?;
                ("GIT".to_string(), repo, None)
            }
        };
        let mut entry = Affected {
            ecosystem,
            package: name,
            purl,
            ranges: Vec::new(),
            requirements: Vec::new(),
            versions: affected.versions,
            fixed: Vec::new(),
            distro: Vec::new(),
            source: source.clone(),
        };
        for range in affected.ranges {
            let kind = match range.kind.as_str() {
                "ECOSYSTEM" => RangeKind::Ecosystem,
                "SEMVER" => RangeKind::Semver,
                "GIT" => RangeKind::Git,
                other => return Err(format!("unknown range type {other:?}")),
            };
            let mut events = Vec::new();
            for event in range.events {
                let (name, value) = event
                    .iter()
                    .next()
                    .ok_or_else(|| "empty range event".to_string())?;
                let value = value
                    .as_str()
                    .ok_or_else(|| format!("range event {name} is not a string"))?
                    .to_string();
                events.push(match name.as_str() {
                    "introduced" => RangeEvent::Introduced(value),
                    "fixed" => {
                        if kind != RangeKind::Git {
                            entry.fixed.push(value.clone());
                        }
                        RangeEvent::Fixed(value)
                    }
                    "last_affected" => RangeEvent::LastAffected(value),
                    "limit" => RangeEvent::Limit(value),
                    other => return Err(format!("unknown range event {other:?}")),
                });
            }
            entry.ranges.push(Range {
                kind,
                events,
                repo: range.repo,
            });
        }
        for severity in affected.severity {
            advisory.severities.push(Severity {
                kind: severity.kind,
                vector: severity.score,
                score: None,
                source: source.clone(),
            });
        }
        advisory.affected.push(entry);
    }
    Ok(advisory)
}

fn toml_string(table: &toml::Table, key: &str) -> Option<String> {
    match table.get(key)? {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Datetime(at) => Some(at.to_string()),
        _ => None,
    }
}

fn toml_list(table: Option<&toml::Table>, key: &str) -> Vec<String> {
    table
        .and_then(|t| t.get(key))
        .and_then(toml::Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(toml::Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// RustSec advisory: ```` ```toml ```` front matter, then `# Title` and a Markdown description.
fn parse_rustsec(bytes: &[u8]) -> Result<Advisory, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "RustSec advisory is not UTF-8".to_string())?;
    let body = text
        .trim_start()
        .strip_prefix("```toml")
        .ok_or("missing ```toml fence")?;
    let end = body.find("\n```").ok_or("unterminated ```toml block")?;
    let front: toml::Table = body[..end]
        .parse()
        .map_err(|e| format!("invalid TOML front matter: {e}"))?;
    let markdown = body[end + 4..].trim();
    let advisory_table = front
        .get("advisory")
        .and_then(toml::Value::as_table)
        .ok_or("no [advisory] table")?;
    let id = toml_string(advisory_table, "id").ok_or("[advisory] has no id")?;
    let package = toml_string(advisory_table, "package").ok_or("[advisory] has no package")?;
    let source = format!("osv:{id}");
    let mut advisory = Advisory::new(&id, &source);
    advisory
        .aliases
        .extend(toml_list(Some(advisory_table), "aliases"));
    advisory
        .related
        .extend(toml_list(Some(advisory_table), "related"));
    advisory.published = toml_string(advisory_table, "date");
    advisory.withdrawn = toml_string(advisory_table, "withdrawn");
    if let Some(cvss) = toml_string(advisory_table, "cvss") {
        advisory.severities.push(Severity {
            kind: cvss_kind(&cvss).into(),
            vector: cvss,
            score: None,
            source: source.clone(),
        });
    }
    if let Some(url) = toml_string(advisory_table, "url") {
        advisory.references.push(Reference {
            kind: "REPORT".into(),
            url,
            source: source.clone(),
        });
    }
    for url in toml_list(Some(advisory_table), "references") {
        advisory.references.push(Reference {
            kind: "WEB".into(),
            url,
            source: source.clone(),
        });
    }
    advisory.references.push(Reference {
        kind: "ADVISORY".into(),
        url: format!("https://rustsec.org/advisories/{id}.html"),
        source: source.clone(),
    });
    let (title, description) = match markdown.strip_prefix("# ") {
        Some(rest) => match rest.split_once('\n') {
            Some((title, description)) => (
                Some(title.trim().to_string()),
                description.trim().to_string(),
            ),
            None => (Some(rest.trim().to_string()), String::new()),
        },
        None => (None, markdown.to_string()),
    };
    advisory.summary = title.filter(|t| !t.is_empty());
    advisory.details = Some(description).filter(|d| !d.is_empty());
    let versions = front.get("versions").and_then(toml::Value::as_table);
    let patched = toml_list(versions, "patched");
    let unaffected = toml_list(versions, "unaffected");
    let mut requirements = Vec::new();
    let mut fixed = Vec::new();
    for expression in patched {
        if let Some(version) = lower_bound_version(&expression) {
            fixed.push(version);
        }
        requirements.push(Requirement {
            meaning: RequirementMeaning::Patched,
            syntax: RequirementSyntax::Cargo,
            expression,
        });
    }
    for expression in unaffected {
        requirements.push(Requirement {
            meaning: RequirementMeaning::Unaffected,
            syntax: RequirementSyntax::Cargo,
            expression,
        });
    }
    advisory.affected.push(Affected {
        ecosystem: "crates.io".into(),
        purl: Some(format!("pkg:cargo/{package}")),
        package,
        ranges: Vec::new(),
        requirements,
        versions: Vec::new(),
        fixed,
        distro: Vec::new(),
        source,
    });
    Ok(advisory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustsec_front_matter_and_title() {
        let text = "```toml\n[advisory]\nid = \"RUSTSEC-2020-0105\"\npackage = \"abi_stable\"\naliases = [\"CVE-2020-36212\"]\ncvss = \"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H\"\ndate = \"2020-12-21\"\n\n[versions]\npatched = [\">= 0.9.1\"]\n```\n\n# Update unsound DrainFilter\n\nBody text.\n";
        let parsed = parse("x.md", text.as_bytes());
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let advisory = &parsed.advisories[0];
        assert_eq!(advisory.id, "RUSTSEC-2020-0105");
        assert_eq!(
            advisory.summary.as_deref(),
            Some("Update unsound DrainFilter")
        );
        assert_eq!(advisory.affected[0].fixed, vec!["0.9.1".to_string()]);
        assert_eq!(advisory.severities[0].kind, "CVSS_V3");
    }

    #[test]
    fn malformed_record_is_reported_not_fatal() {
        let parsed = parse("bad.json", br#"{"id": "GO-1", "affected": [{"ranges": [{"type": "WEIRD", "events": []}], "package": {"ecosystem": "Go", "name": "x"}}]}"#);
        assert!(parsed.advisories.is_empty());
        assert_eq!(parsed.errors.len(), 1);
        assert!(parsed.errors[0].reason.contains("WEIRD"));
        assert_eq!(parsed.errors[0].record.as_deref(), Some("GO-1"));
    }
}
