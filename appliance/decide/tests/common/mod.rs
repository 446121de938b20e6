//! Shared fixtures of the decider's integration tests: real advisory files parsed through the
//! importer's own parsers into a `MemorySource`, and small component lists.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use stella_decide::{Component, MemorySource};
use stella_importer::sources::Parsed;

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/decide")
}

pub fn read(relative: &str) -> Vec<u8> {
    let path = data_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn files(relative: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data_dir().join(relative))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

fn add(source: &mut MemorySource, parsed: Parsed) {
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    for advisory in parsed.advisories {
        source.add_advisory(advisory);
    }
    for claim in parsed.vex_claims {
        source.add_vex_claim(claim);
    }
}

/// The raw records of the e2e advisory set, as the importer's parsers give them.
pub fn e2e_records() -> Vec<stella_importer::Advisory> {
    use stella_importer::sources::{alpine, debian_list, nodejs, osv};
    let mut parsed = Parsed::default();
    for path in files("e2e/pypa") {
        let bytes = std::fs::read(&path).unwrap();
        parsed.extend(osv::parse(&path.display().to_string(), &bytes));
    }
    parsed.extend(debian_list::parse(
        "debian-dsa",
        "DSA-list",
        &read("e2e/debian/DSA-list"),
    ));
    parsed.extend(alpine::parse(
        "v3.11-main.yaml",
        &read("e2e/alpine/v3.11-main.yaml"),
    ));
    parsed.extend(nodejs::parse("npm/1.json", &read("e2e/nodejs/npm-1.json")));
    parsed.extend(osv::parse(
        "GO-2020-0001.json",
        &read("e2e/go/GO-2020-0001.json"),
    ));
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.advisories
}

/// The e2e advisory set: PyPA OSV (jinja2, urllib3), a Debian DSA list excerpt, Alpine secdb
/// v3.11, one Node.js security-wg npm entry and one Go vulndb entry.
pub fn e2e_source() -> MemorySource {
    use stella_importer::sources::{alpine, debian_list, nodejs, osv};
    let mut source = MemorySource::new();
    for path in files("e2e/pypa") {
        let bytes = std::fs::read(&path).unwrap();
        add(&mut source, osv::parse(&path.display().to_string(), &bytes));
    }
    add(
        &mut source,
        debian_list::parse("debian-dsa", "DSA-list", &read("e2e/debian/DSA-list")),
    );
    add(
        &mut source,
        alpine::parse("v3.11-main.yaml", &read("e2e/alpine/v3.11-main.yaml")),
    );
    add(
        &mut source,
        nodejs::parse("npm/1.json", &read("e2e/nodejs/npm-1.json")),
    );
    add(
        &mut source,
        osv::parse("GO-2020-0001.json", &read("e2e/go/GO-2020-0001.json")),
    );
    source
}

pub fn language(ecosystem: &str, purl_type: &str, name: &str, version: &str) -> Component {
    Component {
        purl: format!("pkg:{purl_type}/{name}@{version}"),
        name: name.into(),
        version: version.into(),
        ecosystem: ecosystem.into(),
        source_name: None,
        source_version: None,
        distro: None,
        layer_digest: Some(format!("sha256:{}", "2".repeat(64))),
        used_by_entrypoint: false,
        path: None,
        licences: Vec::new(),
    }
}

pub fn debian(binary: &str, source: &str, version: &str, release: &str) -> Component {
    Component {
        purl: format!("pkg:deb/debian/{binary}@{version}?arch=amd64&distro=debian-{release}"),
        name: binary.into(),
        version: version.into(),
        ecosystem: "Debian".into(),
        source_name: Some(source.into()),
        source_version: Some(version.into()),
        distro: Some(format!("debian:{release}")),
        layer_digest: Some(format!("sha256:{}", "1".repeat(64))),
        used_by_entrypoint: false,
        path: Some("/var/lib/dpkg/status".into()),
        licences: Vec::new(),
    }
}

pub fn alpine(name: &str, version: &str, release: &str) -> Component {
    Component {
        purl: format!("pkg:apk/alpine/{name}@{version}?distro=alpine-{release}"),
        name: name.into(),
        version: version.into(),
        ecosystem: "Alpine".into(),
        source_name: Some(name.into()),
        source_version: Some(version.into()),
        distro: Some(format!("alpine:{release}")),
        layer_digest: Some(format!("sha256:{}", "1".repeat(64))),
        used_by_entrypoint: false,
        path: Some("/lib/apk/db/installed".into()),
        licences: Vec::new(),
    }
}
