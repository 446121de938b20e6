//! The Debian security tracker's JSON export (`/tracker/data/json`):
//! `{ "<source package>": { "<CVE or TEMP id>": { "description", "releases": { "<release>": {
//! "status": "resolved"|"open"|"undetermined", "fixed_version", "urgency" } } } } }`.

use std::collections::BTreeMap;

use super::{Parsed, str_at};
use crate::model::{Advisory, Affected, DistroRelease, DistroStatus, Reference};

pub fn parse(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            parsed.error(origin, None, format!("invalid JSON: {e}"));
            return parsed;
        }
    };
    let Some(packages) = value.as_object() else {
        parsed.error(
            origin,
            None,
            "top level is not an object of source packages",
        );
        return parsed;
    };
    // One record per vulnerability id, with one affected entry per source package.
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    for (package, vulnerabilities) in packages {
        let Some(vulnerabilities) = vulnerabilities.as_object() else {
            parsed.error(origin, Some(package), "package entry is not an object");
            continue;
        };
        for (id, entry) in vulnerabilities {
            match convert(package, id, entry) {
                Ok((affected, description)) => {
                    let source = format!("debian-json:{id}");
                    let advisory = by_id.entry(id.clone()).or_insert_with(|| {
                        let mut advisory = Advisory::new(id, &source);
                        advisory.references.push(Reference {
                            kind: "ADVISORY".into(),
                            url: format!("https://security-tracker.debian.org/tracker/{id}"),
                            source: source.clone(),
                        });
                        advisory
                    });
                    if advisory.details.is_none() {
                        advisory.details = description;
                    }
                    advisory.affected.push(affected);
                }
                Err(reason) => parsed.error(&format!("{origin}#{package}"), Some(id), reason),
            }
        }
    }
    parsed.advisories.extend(by_id.into_values());
    parsed.keep_valid(origin)
}

fn convert(
    package: &str,
    id: &str,
    entry: &serde_json::Value,
) -> Result<(Affected, Option<String>), String> {
    let releases = entry
        .get("releases")
        .and_then(serde_json::Value::as_object)
        .ok_or("no `releases` object")?;
    let source = format!("debian-json:{id}");
    let mut affected = Affected {
        ecosystem: "Debian".into(),
        package: package.into(),
        purl: Some(format!("pkg:deb/debian/{package}?arch=source")),
        ranges: Vec::new(),
        requirements: Vec::new(),
        versions: Vec::new(),
        fixed: Vec::new(),
        distro: Vec::new(),
        source,
    };
    for (release, state) in releases {
        let status =
            str_at(state, "/status").ok_or_else(|| format!("release {release} without status"))?;
        let fixed_version = str_at(state, "/fixed_version");
        let (status, fixed_version) = match (status, fixed_version) {
            ("resolved", Some("0")) => (DistroStatus::NotAffected, None),
            ("resolved", Some(version)) => (DistroStatus::Fixed, Some(version.to_string())),
            ("resolved", None) => (DistroStatus::NotAffected, None),
            ("open" | "undetermined", _) => (DistroStatus::Unfixed, None),
            (other, _) => return Err(format!("release {release}: unknown status {other:?}")),
        };
        if let Some(version) = &fixed_version {
            affected.fixed.push(version.clone());
        }
        affected.distro.push(DistroRelease {
            release: release.clone(),
            status,
            fixed_version,
        });
    }
    Ok((affected, str_at(entry, "/description").map(str::to_string)))
}
