//! Builds a kit from the whole of ../shared/data and checks counts and merges against the input
//! files, counted here independently of the parsers. SKIPs loudly when the corpus is absent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;

use common::*;
use stella_importer::{FixedClock, Limits, verify_kit};

fn files_with(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `aliases:` list items of an OSV YAML record, read as text.
fn yaml_aliases(text: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("aliases:") {
            inside = true;
            continue;
        }
        if inside {
            match line.strip_prefix("- ") {
                Some(alias) => out.push(alias.trim().trim_matches('"').to_string()),
                None => inside = false,
            }
        }
    }
    out
}

#[test]
fn full_corpus_kit_matches_its_inputs() {
    let Some(data) = shared_data() else {
        eprintln!("SKIP: ../shared/data is absent; the full-corpus kit test did not run");
        return;
    };
    let key = key();
    let osv = data.join("osv");
    let specs = vec![
        spec("osv", &osv.join("pypa-advisory-database/vulns")),
        spec("osv", &osv.join("rustsec-advisory-db/crates")),
        spec("osv", &osv.join("rustsec-advisory-db/rust")),
        spec("osv", &osv.join("golang-vulndb/data/osv")),
        spec("osv", &osv.join("ubuntu-security-notices/osv")),
        spec(
            "nodejs-security-wg",
            &osv.join("nodejs-security-wg/vuln/npm"),
        ),
        spec(
            "nodejs-security-wg",
            &osv.join("nodejs-security-wg/vuln/core"),
        ),
        spec(
            "debian-dsa",
            &data.join("distro/debian-security-tracker/data/DSA/list"),
        ),
        spec(
            "debian-dla",
            &data.join("distro/debian-security-tracker/data/DLA/list"),
        ),
        spec("alpine-secdb", &data.join("distro/alpine-secdb")),
        spec(
            "kev",
            &data.join("kev/known_exploited_vulnerabilities.json"),
        ),
        spec("epss", &data.join("epss/emba-epss-data/EPSS_CVE_data")),
        spec(
            "openvex",
            &osv.join("nodejs-security-wg/tools/vex/node.openvex.json"),
        ),
        spec("csaf", &data.join("vex/redhat-csaf-vex")),
    ];
    let started = std::time::Instant::now();
    let report = stella_kit_builder::build(&options(specs, 1), &key.signing, None).unwrap();
    eprintln!(
        "full corpus: built in {:?}, {} bytes",
        started.elapsed(),
        report.kit.archive.len()
    );
    let kit = verify_kit(
        report.kit.archive.as_slice(),
        &key.trusted,
        &FixedClock(time("2026-11-15T00:00:00Z")),
        &Limits::default(),
    )
    .unwrap();
    let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, advisory) in kit.advisories.iter().enumerate() {
        for k in std::iter::once(&advisory.id).chain(&advisory.aliases) {
            assert!(
                keys.insert(k.as_str(), index).is_none(),
                "{k} is a key of two advisories"
            );
        }
    }
    let records = |kind: &str, name: &str| {
        report
            .sources
            .iter()
            .find(|s| s.kind.as_str() == kind && s.name == name)
            .unwrap_or_else(|| panic!("no source {kind} {name}"))
    };

    // PyPA: every file one record; each record and its aliases land in one advisory.
    let pypa = files_with(&osv.join("pypa-advisory-database/vulns"), ".yaml");
    assert_eq!(
        records("osv", "pypa-advisory-database/vulns").records,
        pypa.len()
    );
    assert!(
        records("osv", "pypa-advisory-database/vulns")
            .errors
            .is_empty()
    );
    for path in &pypa {
        let text = std::fs::read_to_string(path).unwrap();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap()
            .trim();
        let home = keys[id];
        for alias in yaml_aliases(&text) {
            assert_eq!(
                keys[alias.as_str()],
                home,
                "{id} and its alias {alias} are in different advisories"
            );
        }
    }
    // Go: the same with JSON aliases.
    let go = files_with(&osv.join("golang-vulndb/data/osv"), ".json");
    assert_eq!(
        records("osv", "data/osv").records,
        go.len(),
        "the Go database"
    );
    for path in &go {
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let home = keys[value["id"].as_str().unwrap()];
        for alias in value["aliases"].as_array().into_iter().flatten() {
            assert_eq!(keys[alias.as_str().unwrap()], home);
        }
    }
    // RustSec: one record per advisory file.
    let rustsec = files_with(&osv.join("rustsec-advisory-db/crates"), ".md");
    assert_eq!(
        records("osv", "rustsec-advisory-db/crates").records,
        rustsec.len()
    );
    for path in &rustsec {
        assert!(keys.contains_key(path.file_stem().unwrap().to_str().unwrap()));
    }
    // Node.js: every numbered npm and core file.
    let npm = files_with(&osv.join("nodejs-security-wg/vuln/npm"), ".json")
        .into_iter()
        .filter(|p| !p.ends_with("index.json"))
        .count();
    assert_eq!(records("nodejs-security-wg", "vuln/npm").records, npm);
    // Debian: one record per (advisory, CVE), or per advisory without CVEs; every CVE present.
    for (kind, list) in [("debian-dsa", "DSA"), ("debian-dla", "DLA")] {
        let text = std::fs::read_to_string(
            data.join(format!("distro/debian-security-tracker/data/{list}/list")),
        )
        .unwrap();
        let mut expected = 0;
        let mut current_cves = None::<usize>;
        for line in text.lines() {
            if line.starts_with('[') {
                expected += current_cves.map_or(0, |n| n.max(1));
                current_cves = Some(0);
            } else if line.trim_start().starts_with('{') {
                let cves: Vec<&str> = line
                    .split_whitespace()
                    .map(|w| w.trim_matches(['{', '}']))
                    .filter(|w| w.starts_with("CVE-"))
                    .collect();
                for cve in &cves {
                    assert!(keys.contains_key(cve), "{cve} from {list} missing");
                }
                current_cves = Some(current_cves.unwrap_or(0) + cves.len());
            }
        }
        expected += current_cves.map_or(0, |n| n.max(1));
        let report = records(kind, &format!("{list}/list"));
        assert_eq!(
            report.records + report.errors.len(),
            expected,
            "{kind}: {:?}",
            &report.errors[..report.errors.len().min(5)]
        );
    }
    // Alpine: every CVE named in a secfixes list.
    for path in files_with(&data.join("distro/alpine-secdb"), ".yaml") {
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            for word in line
                .trim_start()
                .strip_prefix("- ")
                .unwrap_or("")
                .split_whitespace()
                .filter(|w| w.starts_with("CVE-"))
            {
                assert!(
                    keys.contains_key(word),
                    "{word} from {} missing",
                    path.display()
                );
            }
        }
    }
    // KEV and EPSS: complete tables; the flag on exactly the advisories whose CVEs are listed.
    let kev_json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("kev/known_exploited_vulnerabilities.json")).unwrap(),
    )
    .unwrap();
    let kev_cves: BTreeSet<&str> = kev_json["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cveID"].as_str().unwrap())
        .collect();
    assert_eq!(kit.kev.len(), kev_cves.len());
    let flagged: BTreeSet<usize> = kev_cves
        .iter()
        .filter_map(|c| keys.get(c).copied())
        .collect();
    assert_eq!(
        kit.advisories.iter().filter(|a| a.kev.is_some()).count(),
        flagged.len()
    );
    let mut epss_cves = BTreeSet::new();
    for path in files_with(&data.join("epss/emba-epss-data/EPSS_CVE_data"), ".csv.gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        epss_cves.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.split(';').next().unwrap().to_string()),
        );
    }
    assert_eq!(kit.epss.len(), epss_cves.len());
    // VEX: one claim per product listed per statement / product_status entry.
    let openvex: serde_json::Value = serde_json::from_slice(
        &std::fs::read(osv.join("nodejs-security-wg/tools/vex/node.openvex.json")).unwrap(),
    )
    .unwrap();
    let openvex_claims: usize = openvex["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["products"].as_array().unwrap().len())
        .sum();
    let mut csaf_claims = 0;
    for path in files_with(&data.join("vex/redhat-csaf-vex"), ".json") {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for vulnerability in doc["vulnerabilities"].as_array().unwrap() {
            for (status, ids) in vulnerability["product_status"].as_object().unwrap() {
                if status != "recommended" {
                    csaf_claims += ids.as_array().unwrap().len();
                }
            }
        }
    }
    let by_format = |format| kit.vex_claims.iter().filter(|c| c.format == format).count();
    // Every product_status entry / statement product was read ...
    assert_eq!(
        records("openvex", "vex/node.openvex.json").records,
        openvex_claims
    );
    assert_eq!(records("csaf", "vex/redhat-csaf-vex").records, csaf_claims);
    // ... and the kit holds them without exact duplicates (Red Hat lists one component purl under
    // several platforms; identical claims about it collapse into one).
    let distinct: BTreeSet<&stella_importer::VexClaim> = kit.vex_claims.iter().collect();
    assert_eq!(distinct.len(), kit.vex_claims.len());
    assert!(by_format(stella_importer::vex::VexFormat::Openvex) <= openvex_claims);
    assert!(by_format(stella_importer::vex::VexFormat::Csaf) <= csaf_claims);
    assert!(
        by_format(stella_importer::vex::VexFormat::Csaf) * 100 >= csaf_claims * 85,
        "{} of {csaf_claims}",
        by_format(stella_importer::vex::VexFormat::Csaf)
    );
    // Known cross-source merges.
    let log4shell = &kit.advisories[keys["CVE-2021-44228"]];
    assert!(log4shell.kev.is_some() && log4shell.epss.is_some());
    assert!(
        log4shell
            .sources
            .iter()
            .any(|s| s.starts_with("debian-dsa:"))
    );
    let salt = &kit.advisories[keys["PYSEC-2020-104"]];
    assert_eq!(salt.id, "CVE-2020-16846");
    assert!(salt.sources.iter().any(|s| s.starts_with("debian-")) && salt.kev.is_some());
    eprintln!("{}", stella_kit_builder::summary_table(&report));
}
