//! Every version scheme against its ecosystem's own reference cases (tests/data/decide/versions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;
use std::path::PathBuf;

use stella_decide::version::{self, VersionScheme};

fn data(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/decide/versions")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ordering(result: &str) -> Ordering {
    match result {
        "-1" | "<" => Ordering::Less,
        "0" | "=" => Ordering::Equal,
        "1" | ">" => Ordering::Greater,
        other => panic!("bad expected result {other:?}"),
    }
}

/// Checks "A B RESULT" (or "A OP B" when `op_in_middle`) lines both ways; returns the count.
fn check_pairs(scheme: &dyn VersionScheme, file: &str, op_in_middle: bool) -> usize {
    let mut failures = Vec::new();
    let mut count = 0;
    for line in data(file).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 3 {
            continue;
        }
        let (a, b, expected) = if op_in_middle {
            (fields[0], fields[2], ordering(fields[1]))
        } else {
            (fields[0], fields[1], ordering(fields[2]))
        };
        count += 1;
        match (scheme.compare(a, b), scheme.compare(b, a)) {
            (Ok(forward), Ok(backward))
                if forward == expected && backward == expected.reverse() => {}
            (forward, backward) => failures.push(format!(
                "{a} vs {b}: expected {expected:?}, got {forward:?} / reversed {backward:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} {} cases fail:\n{}",
        failures.len(),
        scheme.id(),
        failures.join("\n")
    );
    count
}

#[test]
fn dpkg_matches_dpkg_test_suite() {
    assert!(check_pairs(&version::Dpkg, "dpkg.txt", false) >= 50);
}

#[test]
fn dpkg_rejects_what_dpkg_rejects() {
    for bad in ["", "  ", "0:", "a:0-0", "A:0-0", "0:0 0-1", "-1:0-1"] {
        assert!(version::Dpkg.validate(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn rpm_matches_rpmvercmp_test_suite() {
    assert!(check_pairs(&version::Rpm, "rpm.txt", false) >= 90);
}

#[test]
fn rpm_compares_epoch_then_version_then_release() {
    let rpm = version::Rpm;
    assert_eq!(rpm.compare("1:1.0-1", "2.0-1").unwrap(), Ordering::Greater);
    assert_eq!(
        rpm.compare("1.0-2.el9", "1.0-10.el9").unwrap(),
        Ordering::Less
    );
    assert!(rpm.compare("x:1.0", "1.0").is_err());
}

#[test]
fn apk_matches_apk_tools_test_suite() {
    assert!(check_pairs(&version::Apk, "apk.txt", true) >= 700);
}

#[test]
fn apk_validity_matches_apk_tools_test_suite() {
    let mut count = 0;
    for line in data("apk.txt").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.contains(' ') {
            continue;
        }
        count += 1;
        match line.strip_prefix('!') {
            Some(bad) => assert!(version::Apk.validate(bad).is_err(), "{bad:?} accepted"),
            None => assert!(version::Apk.validate(line).is_ok(), "{line:?} rejected"),
        }
    }
    assert!(count >= 20);
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&data(name)).unwrap()
}

fn pairs(value: &serde_json::Value, key: &str) -> Vec<(String, String)> {
    value[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn npm_ranges_match_node_semver_fixtures() {
    let cases = json("npm.json");
    let npm = version::Npm;
    let mut failures = Vec::new();
    for (range, version) in pairs(&cases, "range_include") {
        if npm.satisfies(&version, &range).ok() != Some(true) {
            failures.push(format!("{version} should satisfy {range:?}"));
        }
    }
    for (range, version) in pairs(&cases, "range_exclude") {
        if npm.satisfies(&version, &range).ok() == Some(true) {
            failures.push(format!("{version} should not satisfy {range:?}"));
        }
    }
    for (greater, lower) in pairs(&cases, "greater_than") {
        if npm.compare(&greater, &lower).ok() != Some(Ordering::Greater) {
            failures.push(format!("{greater} > {lower}"));
        }
    }
    for (a, b) in pairs(&cases, "equal") {
        if npm.compare(&a, &b).ok() != Some(Ordering::Equal) {
            failures.push(format!("{a} == {b}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cargo_requirements_match_semver_crate_cases() {
    let cases = json("cargo.json");
    let cargo = version::Cargo;
    for (requirement, version) in pairs(&cases, "req_include") {
        assert!(
            cargo.satisfies(&version, &requirement).unwrap(),
            "{version} in {requirement}"
        );
    }
    for (requirement, version) in pairs(&cases, "req_exclude") {
        assert!(
            !cargo.satisfies(&version, &requirement).unwrap(),
            "{version} not in {requirement}"
        );
    }
}

#[test]
fn go_matches_x_mod_semver_and_pseudo_version_cases() {
    assert!(check_pairs(&version::Go, "go.txt", false) >= 200);
    for line in data("go.txt").lines() {
        if let Some(bad) = line.strip_prefix('!') {
            assert!(version::Go.validate(bad).is_err(), "{bad:?} accepted");
        }
    }
}

#[test]
fn pep440_matches_packaging_ordering() {
    let cases = json("pep440.json");
    let ordered: Vec<&str> = cases["ordered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(ordered.len() > 80);
    for (i, a) in ordered.iter().enumerate() {
        for (j, b) in ordered.iter().enumerate() {
            let got = version::Pep440.compare(a, b).unwrap();
            assert_eq!(got, i.cmp(&j), "{a} vs {b}");
        }
    }
}

#[test]
fn maven_matches_comparable_version_test() {
    assert!(check_pairs(&version::Maven, "maven.txt", false) >= 300);
}

#[test]
fn nuget_matches_version_comparer_tests() {
    assert!(check_pairs(&version::NuGet, "nuget.txt", false) >= 20);
}
