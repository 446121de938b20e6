//! Matching against real advisory files: distro by source package and release, OSV ranges,
//! native npm requirements, Go SEMVER ranges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use stella_decide::matching::match_components;

fn ids_for(components: &[stella_decide::Component], index: usize) -> Vec<String> {
    let source = common::e2e_source();
    let found = match_components(components, &source).unwrap();
    assert!(found.unknowns.is_empty(), "{:?}", found.unknowns);
    let mut ids: Vec<String> = found
        .matches
        .iter()
        .filter(|m| m.component == index)
        .map(|m| m.advisory.id.clone())
        .collect();
    ids.sort();
    ids
}

#[test]
fn debian_matches_by_source_package_and_release() {
    // libcurl4 is built from curl: the DSA names the source package.
    let components = vec![common::debian(
        "libcurl4",
        "curl",
        "7.74.0-1.3+deb11u5",
        "11",
    )];
    let ids = ids_for(&components, 0);
    // deb11u5 fixes DSA-5330-1 and older; DSA-5365-1 (fixed in deb11u7) still applies.
    assert_eq!(ids, ["CVE-2023-23916"]);
}

#[test]
fn debian_fixed_version_equal_to_installed_is_not_a_finding() {
    let components = vec![common::debian("libapr1", "apr", "1.7.0-6+deb11u2", "11")];
    assert!(ids_for(&components, 0).is_empty());
}

#[test]
fn debian_release_without_an_entry_is_not_matched_from_other_releases() {
    // The excerpt has bullseye (and older) entries only; a trixie package is never matched
    // with another release's fixed version or with upstream ranges.
    let components = vec![common::debian("libcurl4", "curl", "7.0.0-1", "13")];
    assert!(ids_for(&components, 0).is_empty());
}

#[test]
fn debian_finding_records_the_fixed_version_of_its_release() {
    let source = common::e2e_source();
    let components = vec![common::debian(
        "libssl1.1",
        "openssl",
        "1.1.1n-0+deb11u3",
        "11",
    )];
    let found = match_components(&components, &source).unwrap();
    let finding = found
        .matches
        .iter()
        .find(|m| m.advisory.id == "CVE-2023-0286")
        .expect("openssl deb11u3 is affected by DSA-5343-1");
    assert_eq!(finding.fixed_version.as_deref(), Some("1.1.1n-0+deb11u4"));
    assert!(finding.reason.contains("bullseye"), "{}", finding.reason);
}

#[test]
fn alpine_matches_secfixes_of_its_release() {
    let components = vec![
        common::alpine("apache2", "2.4.39-r0", "3.11.6"),
        common::alpine("apache2", "2.4.41-r0", "3.11.6"),
        common::alpine("apache2", "2.4.39-r0", "3.12.0"),
    ];
    let vulnerable = ids_for(&components, 0);
    assert!(
        vulnerable.contains(&"CVE-2019-9517".to_owned()),
        "{vulnerable:?}"
    );
    assert!(!vulnerable.contains(&"CVE-2019-0211".to_owned()));
    assert!(ids_for(&components, 1).is_empty());
    assert!(
        ids_for(&components, 2).is_empty(),
        "v3.12 is not in the v3.11 secdb"
    );
}

#[test]
fn pypi_matches_osv_ecosystem_ranges() {
    let components = vec![
        common::language("PyPI", "pypi", "Jinja2", "2.11.2"),
        common::language("PyPI", "pypi", "jinja2", "3.1.4"),
    ];
    let ids = ids_for(&components, 0);
    assert!(
        ids.iter()
            .any(|id| id.contains("2020-28493") || id == "PYSEC-2021-66"),
        "{ids:?}"
    );
    assert!(ids_for(&components, 1).is_empty());
}

#[test]
fn npm_matches_the_native_vulnerable_versions_requirement() {
    let components = vec![
        common::language("npm", "npm", "bassmaster", "1.5.1"),
        common::language("npm", "npm", "bassmaster", "1.5.2"),
    ];
    assert_eq!(ids_for(&components, 0), ["NSWG-ECO-1"]);
    assert!(ids_for(&components, 1).is_empty());
}

#[test]
fn go_matches_semver_ranges_with_v_prefixed_versions() {
    let components = vec![
        common::language("Go", "golang", "github.com/gin-gonic/gin", "v1.5.0"),
        common::language("Go", "golang", "github.com/gin-gonic/gin", "v1.6.0"),
    ];
    assert_eq!(ids_for(&components, 0).len(), 1);
    assert!(ids_for(&components, 1).is_empty());
}

#[test]
fn unreadable_versions_become_unknowns_not_silence() {
    let source = common::e2e_source();
    let components = vec![common::language(
        "npm",
        "npm",
        "bassmaster",
        "not-a-version",
    )];
    let found = match_components(&components, &source).unwrap();
    assert!(found.matches.is_empty());
    assert_eq!(found.unknowns.len(), 1, "{:?}", found.unknowns);
    assert!(found.unknowns[0].reason.contains("not-a-version"));
}
