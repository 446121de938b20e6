//! Alpine secdb (`v3.x/main.yaml`, or the same structure as JSON): per package, fixed version ->
//! list of ids. Each id becomes a record; version `0` means the release was never affected.

use std::collections::BTreeMap;

use super::{Parsed, json_or_yaml};
use crate::model::{Advisory, Affected, DistroRelease, DistroStatus};

pub fn parse(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let value = match json_or_yaml(bytes) {
        Ok(value) => value,
        Err(reason) => {
            parsed.error(origin, None, reason);
            return parsed;
        }
    };
    let Some(release) = value
        .get("distroversion")
        .and_then(serde_json::Value::as_str)
    else {
        parsed.error(
            origin,
            None,
            "no `distroversion` (expected an Alpine secdb document)",
        );
        return parsed;
    };
    let Some(packages) = value.get("packages").and_then(serde_json::Value::as_array) else {
        parsed.error(origin, None, "no `packages` list");
        return parsed;
    };
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    for (index, package) in packages.iter().enumerate() {
        let Some(name) = package
            .pointer("/pkg/name")
            .and_then(serde_json::Value::as_str)
        else {
            parsed.error(
                &format!("{origin}#{index}"),
                None,
                "package without pkg.name",
            );
            continue;
        };
        let Some(secfixes) = package
            .pointer("/pkg/secfixes")
            .and_then(serde_json::Value::as_object)
        else {
            continue;
        };
        for (version, ids) in secfixes {
            let Some(ids) = ids.as_array() else {
                if !ids.is_null() {
                    parsed.error(
                        &format!("{origin}#{name}"),
                        Some(version),
                        "secfixes entry is not a list",
                    );
                }
                continue;
            };
            for id_line in ids {
                let Some(id_line) = id_line.as_str() else {
                    parsed.error(
                        &format!("{origin}#{name}"),
                        Some(version),
                        format!("id {id_line} is not a string"),
                    );
                    continue;
                };
                // "CVE-2017-2887 TALOS-2017-0394": the first id is the record, the rest aliases.
                let mut ids = id_line.split_whitespace();
                let Some(id) = ids.next() else { continue };
                let source = format!("alpine-secdb:{id}");
                let advisory = by_id
                    .entry(id.to_string())
                    .or_insert_with(|| Advisory::new(id, &source));
                advisory.aliases.extend(ids.map(str::to_string));
                let (status, fixed_version) = if version == "0" {
                    (DistroStatus::NotAffected, None)
                } else {
                    (DistroStatus::Fixed, Some(version.clone()))
                };
                advisory.affected.push(Affected {
                    ecosystem: "Alpine".into(),
                    package: name.into(),
                    purl: Some(format!("pkg:apk/alpine/{name}")),
                    ranges: Vec::new(),
                    requirements: Vec::new(),
                    versions: Vec::new(),
                    fixed: fixed_version.iter().cloned().collect(),
                    distro: vec![DistroRelease {
                        release: release.into(),
                        status,
                        fixed_version,
                    }],
                    source,
                });
            }
        }
    }
    parsed.advisories.extend(by_id.into_values());
    parsed.keep_valid(origin)
}
