//! Alpine secdb (`v3.x/main.yaml`, or the same structure as JSON): per package, fixed version ->
//! list of ids. Each id becomes a record; version `0` means the release was never affected.

use std::collections::BTreeMap;

use super::{Parsed, json_or_yaml};
use crate::model::{Advisory, Affected, DistroRelease, DistroStatus, is_cve};

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
    let packages = match value.get("packages") {
        Some(serde_json::Value::Array(packages)) => packages.clone(),
        // `packages:` with nothing under it: a repository without security fixes.
        Some(serde_json::Value::Null) => Vec::new(),
        _ => {
            parsed.error(origin, None, "no `packages` list");
            return parsed;
        }
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
                // "CVE-2017-2887 TALOS-2017-0394": one CVE and other names for it -> aliases.
                // "CVE-2017-5715 CVE-2017-5753 XSA-254": several CVEs fixed together -> one
                // record each, the other names only related (they must not merge the CVEs).
                let tokens: Vec<&str> = id_line.split_whitespace().collect();
                let cves: Vec<&str> = tokens.iter().copied().filter(|t| is_cve(t)).collect();
                let others: Vec<&str> = tokens.iter().copied().filter(|t| !is_cve(t)).collect();
                let (ids, names_are_aliases): (Vec<&str>, bool) = match cves.len() {
                    0 => (tokens.first().copied().into_iter().collect(), false),
                    1 => (cves, true),
                    _ => (cves, false),
                };
                for id in ids {
                    let source = format!("alpine-secdb:{id}");
                    let advisory = by_id
                        .entry(id.to_string())
                        .or_insert_with(|| Advisory::new(id, &source));
                    for name in others.iter().filter(|name| **name != id) {
                        if names_are_aliases {
                            advisory.aliases.insert((*name).to_string());
                        } else {
                            advisory.related.insert((*name).to_string());
                        }
                    }
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
    }
    parsed.advisories.extend(by_id.into_values());
    parsed.keep_valid(origin)
}
