//! Builds a kit from the real-data subsets in tests/data/sources and checks its counts and merges
//! against the input files, read independently here (not through the parsers under test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use stella_importer::{FixedClock, Limits, verify_kit};

fn verified(
    report: &stella_kit_builder::BuildReport,
    key: &TestKey,
) -> stella_importer::VerifiedKit {
    verify_kit(
        report.kit.archive.as_slice(),
        &key.trusted,
        &FixedClock(time("2026-11-15T00:00:00Z")),
        &Limits::default(),
    )
    .unwrap()
}

/// Map id/alias -> advisory index.
fn keys(kit: &stella_importer::VerifiedKit) -> BTreeMap<String, usize> {
    let mut map = BTreeMap::new();
    for (index, advisory) in kit.advisories.iter().enumerate() {
        map.insert(advisory.id.clone(), index);
        for alias in &advisory.aliases {
            map.insert(alias.clone(), index);
        }
    }
    map
}

/// Advisory headers in a Debian list that are followed by a `{…}` line naming `cve`.
fn debian_ids_for(list: &str, cve: &str) -> BTreeSet<String> {
    let mut current = String::new();
    let mut ids = BTreeSet::new();
    for line in list.lines() {
        if line.starts_with('[') {
            current = line.split_whitespace().nth(3).unwrap().to_string();
        } else if line.trim_start().starts_with('{')
            && line
                .split_whitespace()
                .any(|w| w.trim_matches(['{', '}']) == cve)
        {
            ids.insert(current.clone());
        }
    }
    ids
}

#[test]
fn subset_kit_counts_and_merges_match_the_inputs() {
    let key = key();
    let report =
        stella_kit_builder::build(&options(subset_specs(), 1), &key.signing, None).unwrap();
    let kit = verified(&report, &key);
    let keys = keys(&kit);
    let sources = subsets();

    // Every OSV-style input id is in the kit, as id or alias.
    for dir in [
        "osv/pypa",
        "osv/go",
        "osv/ubuntu",
        "osv/rustsec",
        "osv/ghsa",
        "osv/cve",
    ] {
        for entry in std::fs::read_dir(sources.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            assert!(
                keys.contains_key(&stem),
                "{stem} from {dir} missing from the kit"
            );
        }
    }
    for (file, id) in [
        ("nodejs/npm/1.json", "NSWG-ECO-1"),
        ("nodejs/npm/10.json", "NSWG-ECO-10"),
        ("nodejs/core/1.json", "NSWG-COR-1"),
    ] {
        assert!(sources.join(file).exists());
        assert!(keys.contains_key(id), "{id} missing");
    }

    // Every CVE of every Debian list entry is in the kit.
    for list in ["debian/DSA/list", "debian/DLA/list"] {
        let text = std::fs::read_to_string(sources.join(list)).unwrap();
        let mut headers = 0;
        for line in text.lines() {
            if line.starts_with('[') {
                headers += 1;
            }
            if line.trim_start().starts_with('{') {
                for cve in line
                    .split_whitespace()
                    .map(|w| w.trim_matches(['{', '}']))
                    .filter(|w| w.starts_with("CVE-"))
                {
                    assert!(keys.contains_key(cve), "{cve} from {list} missing");
                }
            }
        }
        assert!(headers >= 8, "{list} subset has {headers} entries");
    }

    // CVE-2020-16846 merges PyPA, Debian DSA + DLA, NVD, KEV and EPSS.
    let salt = &kit.advisories[keys["CVE-2020-16846"]];
    assert_eq!(salt.id, "CVE-2020-16846");
    assert!(salt.aliases.contains("PYSEC-2020-104"));
    let dsa = std::fs::read_to_string(sources.join("debian/DSA/list")).unwrap();
    let dla = std::fs::read_to_string(sources.join("debian/DLA/list")).unwrap();
    let mut expected_sources: BTreeSet<String> = BTreeSet::from([
        "osv:PYSEC-2020-104".to_string(),
        "nvd:CVE-2020-16846".to_string(),
    ]);
    expected_sources.extend(
        debian_ids_for(&dsa, "CVE-2020-16846")
            .into_iter()
            .map(|id| format!("debian-dsa:{id}")),
    );
    expected_sources.extend(
        debian_ids_for(&dla, "CVE-2020-16846")
            .into_iter()
            .map(|id| format!("debian-dla:{id}")),
    );
    assert!(expected_sources.len() >= 4, "{expected_sources:?}");
    assert_eq!(salt.sources, expected_sources);
    for related in debian_ids_for(&dsa, "CVE-2020-16846") {
        assert!(salt.related.contains(&related));
    }
    assert_eq!(
        salt.provenance["details"], "osv:PYSEC-2020-104",
        "OSV text wins over NVD"
    );
    assert!(
        salt.affected
            .iter()
            .any(|a| a.ecosystem == "PyPI" && a.package == "salt")
    );
    assert!(
        salt.affected
            .iter()
            .any(|a| a.ecosystem == "Debian" && a.package == "salt" && !a.distro.is_empty())
    );
    assert!(salt.affected.iter().any(|a| a.ecosystem == "CPE"));
    assert!(salt.severities.iter().any(|s| s.vector
        == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
        && s.score == Some(9.8)));
    let kev_json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sources.join("kev/known_exploited_vulnerabilities.json")).unwrap(),
    )
    .unwrap();
    let kev_entry = kev_json["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["cveID"] == "CVE-2020-16846")
        .unwrap();
    assert_eq!(
        salt.kev.as_ref().unwrap().date_added,
        kev_entry["dateAdded"].as_str().unwrap()
    );
    let epss_text = std::fs::read_to_string(sources.join("epss/epss-semicolon.csv")).unwrap();
    let epss_row: Vec<&str> = epss_text
        .lines()
        .find(|l| l.starts_with("CVE-2020-16846;"))
        .unwrap()
        .split(';')
        .collect();
    assert_eq!(
        salt.epss.as_ref().unwrap().score,
        epss_row[1].parse::<f64>().unwrap()
    );
    assert_eq!(
        salt.epss.as_ref().unwrap().percentile,
        epss_row[2].parse::<f64>().unwrap()
    );

    // Alpine + Debian JSON + PyPA + DLA for the paramiko CVE.
    let paramiko = &kit.advisories[keys["CVE-2018-7750"]];
    assert!(paramiko.sources.contains("alpine-secdb:CVE-2018-7750"));
    assert!(paramiko.sources.contains("debian-json:CVE-2018-7750"));
    assert!(paramiko.sources.contains("osv:PYSEC-2018-19"));
    // The NVD rejected record is withdrawn.
    assert!(kit.advisories[keys["CVE-2020-99999"]].withdrawn.is_some());

    // KEV and EPSS tables are complete; every advisory whose CVE is in KEV carries the flag.
    let kev_cves: BTreeSet<&str> = kev_json["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cveID"].as_str().unwrap())
        .collect();
    assert_eq!(kit.kev.len(), kev_cves.len());
    let epss_cves: BTreeSet<&str> = epss_text
        .lines()
        .map(|l| l.split(';').next().unwrap())
        .collect();
    assert_eq!(kit.epss.len(), epss_cves.len());
    for advisory in &kit.advisories {
        let cves: Vec<&String> = std::iter::once(&advisory.id)
            .chain(&advisory.aliases)
            .filter(|k| k.starts_with("CVE-"))
            .collect();
        let in_kev = cves.iter().any(|c| kev_cves.contains(c.as_str()));
        assert_eq!(advisory.kev.is_some(), in_kev, "{}", advisory.id);
    }

    // VEX: one claim per (product, vulnerability) statement; spot checks from each format.
    assert!(
        kit.vex_claims
            .iter()
            .any(|c| c.format == stella_importer::vex::VexFormat::Openvex
                && c.product == "pkg:apk/wolfi/bash@1.0.0")
    );
    let red_hat: Vec<_> = kit
        .vex_claims
        .iter()
        .filter(|c| c.vulnerability == "CVE-2024-34500")
        .collect();
    assert!(
        red_hat
            .iter()
            .any(|c| c.product == "pkg:rpm/redhat/mediawiki?arch=src"
                && c.provider == "Red Hat Product Security")
    );
    let cdx = kit
        .vex_claims
        .iter()
        .find(|c| c.vulnerability == "CVE-2020-25649")
        .unwrap();
    assert_eq!(
        cdx.justification.as_deref(),
        Some("vulnerable_code_not_in_execute_path")
    );

    // The manifest counts what the kit holds. The only subset records dropped are the two
    // statements of go-vex's pre-spec `vex.yaml`, which name no products.
    assert_eq!(
        kit.manifest.counts[&stella_importer::ContentKind::Advisories],
        kit.advisories.len() as u64
    );
    for source in &report.sources {
        if source.kind.as_str() == "openvex" {
            assert_eq!(source.errors.len(), 2, "{:?}", source.errors);
            assert!(
                source
                    .errors
                    .iter()
                    .all(|e| e.origin.starts_with("sources/openvex/vex.yaml")
                        && e.reason == "statement without products")
            );
        } else {
            assert!(
                source.errors.is_empty(),
                "{} {}: {:?}",
                source.kind,
                source.name,
                source.errors
            );
        }
        assert!(
            source.records > 0,
            "{} {} gave nothing",
            source.kind,
            source.name
        );
    }
    let table = stella_kit_builder::summary_table(&report);
    assert!(
        table.contains("debian-dsa") && table.contains("merged advisories"),
        "{table}"
    );
}

#[test]
fn malformed_records_are_reported_and_skipped() {
    let key = key();
    let malformed = subsets().join("malformed");
    let sources = vec![
        spec("osv", &malformed),
        spec("epss", &malformed.join("epss-bad.csv")),
        spec("debian-dla", &malformed.join("list")),
        spec("osv", &subsets().join("osv/go")),
    ];
    let report = stella_kit_builder::build(&options(sources, 1), &key.signing, None).unwrap();
    let kit = verified(&report, &key);
    let ids: BTreeSet<&str> = kit.advisories.iter().map(|a| a.id.as_str()).collect();
    // Good records around the bad ones are kept.
    assert!(ids.contains("CVE-2099-2222"), "{ids:?}");
    assert!(ids.contains("CVE-2020-36567"), "{ids:?}");
    // Bad ones are absent, never half-loaded.
    for absent in [
        "CVE-2099-1111",
        "CVE-2099-3333",
        "GO-9999-0001",
        "CVE-2099-0001",
        "GO-9999-0002",
    ] {
        assert!(!ids.contains(absent), "{absent} should have been dropped");
    }
    assert_eq!(kit.epss.len(), 1);
    let dropped: Vec<(String, String)> = report
        .sources
        .iter()
        .flat_map(|s| {
            s.errors
                .iter()
                .map(move |e| (s.kind.to_string(), e.reason.clone()))
        })
        .collect();
    assert_eq!(report.sources[0].errors.len(), 2, "{dropped:?}");
    assert_eq!(report.sources[1].errors.len(), 4, "{dropped:?}");
    assert_eq!(report.sources[2].errors.len(), 2, "{dropped:?}");
    assert!(dropped.iter().any(|(_, r)| r.contains("WEIRD")));
    assert!(dropped.iter().any(|(_, r)| r.contains("<bogus-status>")));
    assert_eq!(
        kit.manifest.sources.iter().map(|s| s.dropped).sum::<u64>(),
        8
    );
    assert!(stella_kit_builder::summary_table(&report).contains("dropped records by reason"));
}

#[test]
fn the_same_inputs_give_a_byte_identical_kit() {
    let key = key();
    let first = stella_kit_builder::build(&options(subset_specs(), 7), &key.signing, None).unwrap();
    let mut reversed = subset_specs();
    reversed.reverse();
    let second =
        stella_kit_builder::build(&options(subset_specs(), 7), &key.signing, None).unwrap();
    assert_eq!(first.kit.archive, second.kit.archive);
    assert_eq!(first.kit.archive_signature, second.kit.archive_signature);
    // Source order changes the manifest's source list order only through sorting: contents agree.
    let third = stella_kit_builder::build(&options(reversed, 7), &key.signing, None).unwrap();
    assert_eq!(first.kit.manifest.files, third.kit.manifest.files);
    // A different created time changes the kit.
    let mut later = options(subset_specs(), 7);
    later.created = time("2026-11-02T00:00:00Z");
    assert_ne!(
        stella_kit_builder::build(&later, &key.signing, None)
            .unwrap()
            .kit
            .archive,
        first.kit.archive
    );
}
