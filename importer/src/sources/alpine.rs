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
                let tokens = tokens(id_line);
                let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
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

/// The names on one secfixes line. A few lines write a CVE with a space ("CVE 2018-16859",
/// seen in v3.9/main): the two tokens are joined back into the CVE id instead of making an
/// advisory called "CVE".
fn tokens(line: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("CVE")
            && let Some(next) = words.peek()
            && is_cve(&format!("CVE-{next}"))
        {
            out.push(format!("CVE-{next}"));
            words.next();
            continue;
        }
        out.push(word.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::tokens;

    #[test]
    fn a_cve_written_with_a_space_is_one_id() {
        assert_eq!(tokens("CVE 2018-16859"), vec!["CVE-2018-16859"]);
        assert_eq!(
            tokens("CVE-2017-2887 TALOS-2017-0394"),
            vec!["CVE-2017-2887", "TALOS-2017-0394"]
        );
        assert_eq!(tokens("CVE XSA-1"), vec!["CVE", "XSA-1"]);
    }
}
