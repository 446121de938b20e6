//! Expected findings computed independently of the matcher: the raw PyPA OSV files are read with
//! plain serde (affected `versions` lists), the Debian DSA list is read as text and its versions
//! compared by `dpkg --compare-versions`; the result must equal what `evaluate` reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use stella_core::FixedClock;
use stella_decide::{Component, Policy, Snapshot, Subject, evaluate};

fn components() -> Vec<Component> {
    vec![
        common::language("PyPI", "pypi", "Jinja2", "2.10.1"),
        common::language("PyPI", "pypi", "jinja2", "2.11.2"),
        common::language("PyPI", "pypi", "jinja2", "3.1.4"),
        common::language("PyPI", "pypi", "urllib3", "1.24.1"),
        common::language("PyPI", "pypi", "urllib3", "1.26.4"),
        common::language("PyPI", "pypi", "urllib3", "2.2.2"),
        common::debian("libcurl4", "curl", "7.74.0-1.3+deb11u1", "11"),
        common::debian("libssl1.1", "openssl", "1.1.1n-0+deb11u3", "11"),
        common::debian("libapr1", "apr", "1.7.0-6+deb11u2", "11"),
        common::debian("syslog-ng-core", "syslog-ng", "3.28.1-2", "11"),
        common::debian("libssl1.1", "openssl", "1.1.1d-0+deb10u5", "10"),
    ]
}

fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// PyPI: a component is affected by a record whose `affected[].versions` lists its version.
fn expected_pypi(components: &[Component]) -> BTreeSet<(String, String)> {
    let mut expected = BTreeSet::new();
    for path in common::files("e2e/pypa") {
        let text = std::fs::read_to_string(&path).unwrap();
        let record: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        let id = record["id"].as_str().unwrap();
        if record.get("withdrawn").is_some() {
            continue;
        }
        for affected in record["affected"].as_array().into_iter().flatten() {
            let name = affected["package"]["name"].as_str().unwrap();
            let listed: Vec<&str> = affected["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .collect();
            for component in components.iter().filter(|c| c.ecosystem == "PyPI") {
                if normalize(&component.name) == normalize(name)
                    && listed.contains(&component.version.as_str())
                {
                    expected.insert((component.purl.clone(), id.to_owned()));
                }
            }
        }
    }
    expected
}

fn dpkg_lt(a: &str, b: &str) -> bool {
    let status = Command::new("dpkg")
        .args(["--compare-versions", a, "lt", b])
        .status()
        .expect("dpkg is needed for this test (Debian base system)");
    status.success()
}

/// Debian: for each DSA entry with a line for the component's release and source package, the
/// entry's CVEs (or the DSA id when it lists none) apply when installed < fixed.
fn expected_debian(components: &[Component]) -> BTreeSet<(String, String)> {
    let text = String::from_utf8(common::read("e2e/debian/DSA-list")).unwrap();
    let mut expected = BTreeSet::new();
    let mut dsa = String::new();
    let mut cves: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            dsa = line.split_whitespace().nth(3).unwrap().to_owned();
            cves.clear();
        } else if let Some(list) = line.trim().strip_prefix('{') {
            cves = list
                .trim_end_matches('}')
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        } else if let Some(rest) = line.trim().strip_prefix('[') {
            let (release, rest) = rest.split_once(']').unwrap();
            let mut words = rest.trim_start_matches([' ', '-']).split_whitespace();
            let (package, fixed) = (words.next().unwrap(), words.next().unwrap());
            for component in components.iter().filter(|c| c.ecosystem == "Debian") {
                let codename = match component.distro.as_deref() {
                    Some("debian:11") => "bullseye",
                    Some("debian:10") => "buster",
                    other => panic!("no codename for {other:?}"),
                };
                if release != codename || component.source_name.as_deref() != Some(package) {
                    continue;
                }
                let affected = match fixed {
                    "<unfixed>" | "<end-of-life>" => true,
                    "<not-affected>" => false,
                    version => dpkg_lt(component.source_version.as_deref().unwrap(), version),
                };
                if affected {
                    let ids = if cves.is_empty() {
                        vec![dsa.clone()]
                    } else {
                        cves.clone()
                    };
                    for id in ids {
                        expected.insert((component.purl.clone(), id));
                    }
                }
            }
        }
    }
    expected
}

#[test]
fn matcher_agrees_with_findings_computed_from_the_raw_files() {
    let components = components();
    let mut expected = expected_pypi(&components);
    let pypi_expected = expected.len();
    expected.extend(expected_debian(&components));
    assert!(
        pypi_expected >= 3,
        "the fixture should produce PyPI findings"
    );
    assert!(expected.len() > pypi_expected + 5, "and Debian findings");

    let report = evaluate(
        &Subject::default(),
        &components,
        &common::e2e_source(),
        &[],
        &Policy::default_policy().unwrap(),
        &FixedClock(1_767_225_600),
        &Snapshot {
            kit_id: "test".into(),
            sequence: 1,
        },
    )
    .unwrap();
    assert!(report.unknowns.is_empty(), "{:?}", report.unknowns);
    let actual: BTreeSet<(String, String)> = report
        .findings
        .iter()
        .map(|f| (f.component.purl.clone(), f.advisory.id.clone()))
        .collect();
    let missing: Vec<_> = expected.difference(&actual).collect();
    let extra: Vec<_> = actual.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
}
