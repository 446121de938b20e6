//! `stella report` and `/api/reports` end to end on the scanner's real image fixture (Debian 12
//! with Go stdlib 1.19.8) and kits built from real advisory files: exit codes 0/1/2, the `--json`
//! fields, usage-gated policies, the API's store/list/get with byte-identical reports for the same
//! inputs, and findings checked against expectations computed from the raw advisory files
//! (never through the matcher's code path).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority_common;
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::kits::{self, KitKey};
use common::stella;
use stella_importer::Advisory;
use stella_importer::sources::{Parsed, debian_list, osv};
use stella_importer::writer::KitContents;

const AT: &str = "2026-06-01T00:00:00Z";
const BEARER: &str = "[auth]\nallow_bearer_tokens = true\n";
const STRICT: &str = "apiVersion: stella.policy/v1\nname: strict\ndefaultAction: fail\n";
/// Fails only findings on components the entrypoint uses; everything else warns.
const USAGE_GATED: &str = "apiVersion: stella.policy/v1
name: usage-gated
defaultAction: warn
rules:
  - name: used-components-fail
    match:
      usedByEntrypoint: true
    action: fail
";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture() -> PathBuf {
    repo_root().join("tests/data/scanner/fixture-oci")
}

fn data(relative: &str) -> PathBuf {
    repo_root().join("tests/data/report").join(relative)
}

/// The small committed advisory set: four Go stdlib records and two zlib DSAs.
fn small_advisories() -> Vec<Advisory> {
    let mut parsed = Parsed::default();
    let mut go: Vec<PathBuf> = std::fs::read_dir(data("go"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    go.sort();
    for path in go {
        parsed.extend(osv::parse(
            &path.display().to_string(),
            &std::fs::read(&path).unwrap(),
        ));
    }
    parsed.extend(debian_list::parse(
        "debian-dsa",
        "DSA-list",
        &std::fs::read(data("debian/DSA-list")).unwrap(),
    ));
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.advisories
}

/// A data dir with a kit of `advisories` imported through `stella import`; returns the config.
fn data_dir_with_kit(dir: &Path, advisories: Vec<Advisory>, extra_config: &str) -> PathBuf {
    let key = KitKey::new(dir, "vendor");
    let config = kits::config(dir, &[&key], extra_config);
    let contents = KitContents {
        advisories,
        ..KitContents::default()
    };
    let kit = kits::save(
        dir,
        "kit-1.tar.zst",
        &kits::build(&key, &contents, 1, 0, 30, None),
    );
    let out = stella()
        .arg("import")
        .arg(&kit)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("STELLA_DATA")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    config
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn report(dir: &Path, config: &Path, image: &Path, extra: &[&str]) -> Run {
    let out = stella()
        .arg("report")
        .arg(image)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--at", AT])
        .args(extra)
        .env_remove("STELLA_DATA")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// (purl, GO id) of every finding whose advisory is a Go vulndb record.
fn go_findings(report: &serde_json::Value) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            let purl = f["component"]["purl"].as_str().unwrap().to_owned();
            let mut ids: Vec<String> = vec![f["advisory"]["id"].as_str().unwrap().to_owned()];
            ids.extend(
                f["advisory"]["aliases"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned()),
            );
            ids.into_iter()
                .filter(|id| id.starts_with("GO-"))
                .map(move |id| (purl.clone(), id))
        })
        .collect()
}

#[test]
fn cli_exits_0_on_pass_1_on_fail_2_on_error_with_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    // Before any kit: an error, not a verdict.
    let empty_config = write(dir.path(), "empty.toml", "");
    let run = report(dir.path(), &empty_config, &fixture(), &[]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("import an offline kit first"),
        "{}",
        run.stderr
    );

    let config = data_dir_with_kit(dir.path(), small_advisories(), "");

    // Default policy: the Go findings carry no severity, so they warn: PASS.
    let pass = report(dir.path(), &config, &fixture(), &[]);
    assert_eq!(pass.code, 0, "{}{}", pass.stdout, pass.stderr);
    assert!(pass.stdout.starts_with("PASS: "), "{}", pass.stdout);
    assert!(
        pass.stdout.contains("by severity: critical 0"),
        "{}",
        pass.stdout
    );
    for id in ["GO-2023-1751", "GO-2023-1752", "GO-2023-1840"] {
        assert!(
            pass.stdout.contains(id),
            "{id} missing from\n{}",
            pass.stdout
        );
    }
    assert!(!pass.stdout.contains("GO-2023-1702"), "{}", pass.stdout);

    // A policy that fails every finding: FAIL, exit 1.
    let strict = write(dir.path(), "strict.yaml", STRICT);
    let fail = report(
        dir.path(),
        &config,
        &fixture(),
        &["--policy", strict.to_str().unwrap()],
    );
    assert_eq!(fail.code, 1, "{}{}", fail.stdout, fail.stderr);
    assert!(fail.stdout.starts_with("FAIL: "), "{}", fail.stdout);

    // --json: the documented fields on every finding.
    let json = report(
        dir.path(),
        &config,
        &fixture(),
        &["--policy", strict.to_str().unwrap(), "--json"],
    );
    assert_eq!(json.code, 1, "{}", json.stderr);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["schema"], "stella.report/v1");
    assert_eq!(value["verdict"], "FAIL");
    assert_eq!(value["policy"]["name"], "strict");
    assert!(
        value["policy"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(
        value["subject"]["sbomDigest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(
        value["subject"]["imageDigest"],
        "sha256:4cbc655dec9c1ed7c035148672ee6e4c28d984a46156468b5f52ec76c5ea9240"
    );
    assert_eq!(value["advisories"]["sequence"], 1);
    assert_eq!(value["evaluatedAt"], AT);
    let findings = value["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 3, "{}", json.stdout);
    for finding in findings {
        assert_eq!(finding["component"]["purl"], "pkg:golang/stdlib@1.19.8");
        assert!(finding["advisory"]["id"].is_string());
        assert!(finding["advisory"]["aliases"].is_array());
        assert_eq!(
            finding["layerDigest"],
            "sha256:2ac1a22ff81eeeea0dd321220a70f06aeffece07e5ec34766e5c2e76db8bdd5b"
        );
        // Go stdlib is compiled into /usr/sbin/gosu, the entrypoint: the scanner's usage
        // closure holds it.
        assert_eq!(finding["usedByEntrypoint"], true);
        assert_eq!(finding["vex"]["status"], "none");
        assert_eq!(finding["decision"]["verdict"], "fail");
        assert_eq!(finding["decision"]["rule"], "default");
    }
    assert_eq!(value["counts"]["bySeverity"]["unknown"], 3);
    // Same inputs, same bytes.
    let again = report(
        dir.path(),
        &config,
        &fixture(),
        &["--policy", strict.to_str().unwrap(), "--json"],
    );
    assert_eq!(again.stdout, json.stdout);

    // An uploaded OpenVEX document joins the kits' statements: the stdlib is not affected by
    // GO-2023-1751, so that finding carries the VEX decision; a file that is no VEX is an error.
    let vex = write(
        dir.path(),
        "stdlib.openvex.json",
        r#"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://vendor.example/vex/1",
            "author":"Vendor Example","timestamp":"2026-01-01T00:00:00Z","version":1,
            "statements":[{"vulnerability":{"name":"GO-2023-1751"},
              "products":[{"@id":"pkg:golang/stdlib@1.19.8"}],
              "status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}]}"#,
    );
    let with_vex = report(
        dir.path(),
        &config,
        &fixture(),
        &[
            "--policy",
            strict.to_str().unwrap(),
            "--json",
            "--vex",
            vex.to_str().unwrap(),
        ],
    );
    let value: serde_json::Value = serde_json::from_str(&with_vex.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", with_vex.stdout, with_vex.stderr));
    let statuses: Vec<(String, String)> = value["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["advisory"]["id"].as_str().unwrap().to_owned(),
                f["vex"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&("GO-2023-1751".to_owned(), "not_affected".to_owned())),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("GO-2023-1752".to_owned(), "none".to_owned())),
        "{statuses:?}"
    );
    let not_vex = report(
        dir.path(),
        &config,
        &fixture(),
        &["--vex", strict.to_str().unwrap()],
    );
    assert_eq!(not_vex.code, 2, "{}{}", not_vex.stdout, not_vex.stderr);
    assert!(
        not_vex
            .stderr
            .contains("is not a VEX document with statements"),
        "{}",
        not_vex.stderr
    );

    // A bad policy is an error (2) naming the file, line and column.
    let bad = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: stella.policy/v1\nname: bad\nrules:\n  - name: r\n    match: { colour: red }\n    action: fail\n",
    );
    let run = report(
        dir.path(),
        &config,
        &fixture(),
        &["--policy", bad.to_str().unwrap()],
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!("{}:5:", bad.display())),
        "{}",
        run.stderr
    );
    // An image that does not exist is an error too.
    let run = report(dir.path(), &config, &dir.path().join("no-such-image"), &[]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
}

/// Item 6. The scanner does not mark the usage closure yet (EntryTrace is another issue), so the
/// fixture's real SBOM is taken as `stella scan` writes it and the Go stdlib component is marked
/// with the `stella:usedByEntrypoint` property the report reads; the same SBOM unmarked must PASS.
#[test]
fn usage_gated_policy_fails_only_when_the_vulnerable_component_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let config = data_dir_with_kit(dir.path(), small_advisories(), "");
    let sbom_path = dir.path().join("fixture.cdx.json");
    let scan = stella()
        .arg("scan")
        .arg(fixture())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("-o")
        .arg(&sbom_path)
        .env_remove("STELLA_DATA")
        .output()
        .unwrap();
    assert!(
        scan.status.success(),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let mut sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sbom_path).unwrap()).unwrap();
    let policy = write(dir.path(), "usage.yaml", USAGE_GATED);
    let strict = write(dir.path(), "strict.yaml", STRICT);
    let policy_arg = ["--policy", policy.to_str().unwrap(), "--sbom", "--json"];

    // Outside the usage closure: the findings warn, PASS.
    let outside = report(dir.path(), &config, &sbom_path, &policy_arg);
    assert_eq!(outside.code, 0, "{}{}", outside.stdout, outside.stderr);
    let value: serde_json::Value = serde_json::from_str(&outside.stdout).unwrap();
    assert_eq!(value["verdict"], "PASS");
    assert_eq!(value["counts"]["byDecision"]["warn"], 3);
    // The same findings FAIL under a policy that is not usage-gated.
    let ungated = report(
        dir.path(),
        &config,
        &sbom_path,
        &["--policy", strict.to_str().unwrap(), "--sbom"],
    );
    assert_eq!(ungated.code, 1, "{}{}", ungated.stdout, ungated.stderr);

    // Inside the usage closure: the gate fires, FAIL.
    for component in sbom["components"].as_array_mut().unwrap() {
        if component["purl"] == "pkg:golang/stdlib@1.19.8" {
            component["properties"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({ "name": "stella:usedByEntrypoint", "value": "true" }));
        }
    }
    let used_path = dir.path().join("used.cdx.json");
    std::fs::write(&used_path, serde_json::to_vec(&sbom).unwrap()).unwrap();
    let inside = report(dir.path(), &config, &used_path, &policy_arg);
    assert_eq!(inside.code, 1, "{}{}", inside.stdout, inside.stderr);
    let value: serde_json::Value = serde_json::from_str(&inside.stdout).unwrap();
    assert_eq!(value["verdict"], "FAIL");
    for finding in value["findings"].as_array().unwrap() {
        assert_eq!(finding["usedByEntrypoint"], true);
        assert_eq!(finding["decision"]["rule"], "used-components-fail");
    }
}

fn bearer_token(daemon: &authority_common::Daemon, scopes: &str) -> String {
    let session = authority_common::first_admin_login(daemon, "a-long-new-password-1");
    authority_common::bearer_token(daemon, &session, "ci", scopes)
}

#[test]
fn api_reports_are_stored_listed_and_byte_identical_for_the_same_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let config = data_dir_with_kit(dir.path(), small_advisories(), BEARER);
    let data = dir.path().join("data");
    let daemon = authority_common::Daemon::start(&data, &["--config", config.to_str().unwrap()]);
    let token = bearer_token(&daemon, "scanner.scan scanner.read policy.write");
    let auth = format!("Bearer {token}");
    let call = |method: &str, path: &str, body: &str| {
        authority_common::http(
            daemon.addr,
            method,
            path,
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    };
    // Without a token: refused.
    assert_eq!(
        authority_common::http(daemon.addr, "GET", "/api/reports", &[], "").status,
        401
    );
    // An image never scanned: 404 saying what to do.
    let missing = call(
        "POST",
        "/api/reports",
        &format!("{{\"imageDigest\": \"sha256:{}\"}}", "0".repeat(64)),
    );
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert!(
        missing.body.contains("scan the image first"),
        "{}",
        missing.body
    );

    let started = call(
        "POST",
        "/api/scans",
        &serde_json::json!({ "path": fixture() }).to_string(),
    );
    assert_eq!(started.status, 202, "{}", started.body);
    let scan_id = started.json()["scanId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let digest = loop {
        let scan = call("GET", &format!("/api/scans/{scan_id}"), "").json();
        if scan["status"] != "running" {
            assert_eq!(scan["status"], "done", "{scan}");
            break scan["imageDigest"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "scan never finished");
        std::thread::sleep(Duration::from_millis(100));
    };

    let request = serde_json::json!({ "imageDigest": digest, "evaluatedAt": AT }).to_string();
    let created = call("POST", "/api/reports", &request);
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["reportId"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["verdict"], "PASS");
    let stored = call("GET", &format!("/api/reports/{id}"), "");
    assert_eq!(stored.status, 200);
    let value = stored.json();
    assert_eq!(value["subject"]["imageDigest"], digest.as_str());
    assert_eq!(go_findings(&value).len(), 3, "{}", stored.body);

    // Same inputs: same id, byte-identical report, one row.
    let again = call("POST", "/api/reports", &request);
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.json()["reportId"], id.as_str());
    assert_eq!(
        call("GET", &format!("/api/reports/{id}"), "").body,
        stored.body
    );

    // A policy revision: a bad upload points at line and column; a good one changes the verdict.
    let bad = call(
        "POST",
        "/api/policies",
        "apiVersion: stella.policy/v1\nname: x\nrules: 7\n",
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains(":3:"), "{}", bad.body);
    let revision = call("POST", "/api/policies", STRICT);
    assert_eq!(revision.status, 201, "{}", revision.body);
    let number = revision.json()["revision"].as_i64().unwrap();
    let strict_request = serde_json::json!({
        "imageDigest": digest, "evaluatedAt": AT, "policyRevision": number
    })
    .to_string();
    let failed = call("POST", "/api/reports", &strict_request);
    assert_eq!(failed.status, 201, "{}", failed.body);
    assert_eq!(failed.json()["verdict"], "FAIL");
    let failed_id = failed.json()["reportId"].as_str().unwrap().to_owned();
    assert_ne!(failed_id, id);
    let unknown_revision = call(
        "POST",
        "/api/reports",
        &serde_json::json!({ "imageDigest": digest, "policyRevision": 999 }).to_string(),
    );
    assert_eq!(unknown_revision.status, 404, "{}", unknown_revision.body);

    let list = call("GET", &format!("/api/reports?imageDigest={digest}"), "").json();
    let listed: BTreeSet<&str> = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reportId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, BTreeSet::from([id.as_str(), failed_id.as_str()]));
    let strict_row = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reportId"] == failed_id.as_str())
        .unwrap();
    assert_eq!(strict_row["policy"]["revision"], number);
    assert_eq!(strict_row["verdict"], "FAIL");

    // The CLI cannot read the feed store the daemon holds: a clear error, exit 2.
    let held = report(dir.path(), &config, Path::new(&digest), &[]);
    assert_eq!(held.code, 2, "{}{}", held.stdout, held.stderr);
    assert!(
        held.stderr.contains("holds the data dir"),
        "{}",
        held.stderr
    );
    daemon.stop();

    // The CLI over the stored SBOM gives the API's bytes.
    let cli = report(dir.path(), &config, Path::new(&digest), &["--json"]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert_eq!(cli.stdout.trim_end(), stored.body);
}

/// OSV's reference evaluation of SEMVER events (sort by version, walk), with the `semver` crate:
/// a different algorithm and version parser from the decider's.
fn osv_semver_affected(installed: &str, events: &[serde_json::Value]) -> bool {
    let parse = |v: &str| {
        if v == "0" {
            semver::Version::new(0, 0, 0)
        } else {
            semver::Version::parse(v).unwrap()
        }
    };
    let installed = parse(installed);
    let mut sorted: Vec<(semver::Version, &str)> = events
        .iter()
        .map(|e| {
            let (kind, value) = e.as_object().unwrap().iter().next().unwrap();
            (parse(value.as_str().unwrap()), kind.as_str())
        })
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut affected = false;
    for (version, kind) in sorted {
        match kind {
            "introduced" if version <= installed => affected = true,
            "fixed" if version <= installed => affected = false,
            "last_affected" if version < installed => affected = false,
            _ => {}
        }
    }
    affected
}

fn dpkg_older(a: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, "lt", b])
        .status()
        .unwrap()
        .success()
}

/// Item 7: the fixture image against a kit built from the full Go vulndb and the Debian DSA and
/// DLA lists of `../shared/data`; the expected findings are computed here from the raw files.
#[test]
fn findings_equal_expectations_computed_from_the_raw_advisory_files() {
    let shared = repo_root().join("../shared/data");
    if !shared.is_dir() {
        eprintln!(
            "SKIP findings_equal_expectations_computed_from_the_raw_advisory_files: {} not found",
            shared.display()
        );
        return;
    }
    let go_dir = shared.join("osv/golang-vulndb/data/osv");
    let dsa = shared.join("distro/debian-security-tracker/data/DSA/list");
    let dla = shared.join("distro/debian-security-tracker/data/DLA/list");
    let mut go_files: Vec<PathBuf> = std::fs::read_dir(&go_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    go_files.sort();

    // Expected, from the raw files.
    let mut expected_go = BTreeSet::new();
    for path in &go_files {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        if record.get("withdrawn").is_some() {
            continue;
        }
        let id = record["id"].as_str().unwrap();
        for affected in record["affected"].as_array().into_iter().flatten() {
            if affected["package"]["name"] != "stdlib" {
                continue;
            }
            let hit = affected["ranges"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["type"] == "SEMVER")
                .any(|r| osv_semver_affected("1.19.8", r["events"].as_array().unwrap()));
            if hit {
                expected_go.insert(("pkg:golang/stdlib@1.19.8".to_owned(), id.to_owned()));
            }
        }
    }
    assert!(expected_go.len() > 20, "{expected_go:?}");
    // Debian 12 (bookworm) source packages of the fixture and their installed source versions.
    let installed = [
        ("base-files", "12.4+deb12u11"),
        ("gosu", "1.14-1"),
        ("zlib", "1:1.2.13.dfsg-1"),
    ];
    // One record per CVE of an entry (the entry's own id when it names none), as the tracker
    // lists them; an entry's bookworm line says whether the installed source version is fixed.
    let mut expected_debian = BTreeSet::new();
    for list in [&dsa, &dla] {
        let text = std::fs::read_to_string(list).unwrap();
        let mut entry_id = String::new();
        let mut cves: Vec<String> = Vec::new();
        for line in text.lines() {
            if line.starts_with('[') {
                entry_id = line.split_whitespace().nth(3).unwrap_or("").to_owned();
                cves.clear();
                continue;
            }
            let trimmed = line.trim();
            if let Some(list) = trimmed.strip_prefix('{').and_then(|l| l.strip_suffix('}')) {
                cves = list.split_whitespace().map(str::to_owned).collect();
                continue;
            }
            let Some(rest) = trimmed.strip_prefix("[bookworm] - ") else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let (Some(package), Some(fixed)) = (words.next(), words.next()) else {
                continue;
            };
            for (source, version) in installed {
                let affected = fixed == "<unfixed>"
                    || fixed == "<end-of-life>"
                    || (!fixed.starts_with('<') && dpkg_older(version, fixed));
                if package == source && affected {
                    let ids = if cves.is_empty() {
                        vec![entry_id.clone()]
                    } else {
                        cves.clone()
                    };
                    expected_debian.extend(ids.into_iter().map(|id| (source.to_owned(), id)));
                }
            }
        }
    }

    // The kit, from the same files through the importer's parsers.
    let mut parsed = Parsed::default();
    for path in &go_files {
        parsed.extend(osv::parse(
            &path.display().to_string(),
            &std::fs::read(path).unwrap(),
        ));
    }
    parsed.extend(debian_list::parse(
        "debian-dsa",
        "DSA/list",
        &std::fs::read(&dsa).unwrap(),
    ));
    parsed.extend(debian_list::parse(
        "debian-dla",
        "DLA/list",
        &std::fs::read(&dla).unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = data_dir_with_kit(dir.path(), parsed.advisories, "");
    let run = report(dir.path(), &config, &fixture(), &["--json"]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    eprintln!(
        "{} Go stdlib and {} Debian findings expected from the raw files",
        expected_go.len(),
        expected_debian.len()
    );
    assert_eq!(go_findings(&value), expected_go);
    let debian_findings: BTreeSet<(String, String)> = value["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["component"]["ecosystem"] == "Debian")
        .map(|f| {
            (
                f["component"]["sourceName"].as_str().unwrap().to_owned(),
                f["advisory"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(debian_findings, expected_debian, "{}", run.stdout);
}

/// Item 6 on the scanner's own usage closure (no hand-made marks): the fixture's entrypoint is
/// `/usr/sbin/gosu`, so its Go stdlib is used while `pkg:pypi/six@1.17.0` is not. A kit with an
/// advisory against `six` FAILs under a policy that is not usage-gated and PASSes under the
/// usage-gated one; adding the Go advisories brings a used vulnerable component back: FAIL.
#[test]
fn usage_gate_follows_the_scanners_closure() {
    let six = || {
        let mut advisory = kits::advisory("GHSA-test-six0-0001", "six", "Test advisory for six");
        advisory.affected[0].versions = vec!["1.17.0".into()];
        advisory.affected[0].fixed = vec!["1.17.1".into()];
        advisory
    };
    let dir = tempfile::tempdir().unwrap();
    let config = data_dir_with_kit(dir.path(), vec![six()], "");
    let gated = write(dir.path(), "usage.yaml", USAGE_GATED);
    let strict = write(dir.path(), "strict.yaml", STRICT);

    let ungated = report(
        dir.path(),
        &config,
        &fixture(),
        &["--policy", strict.to_str().unwrap(), "--json"],
    );
    assert_eq!(ungated.code, 1, "{}{}", ungated.stdout, ungated.stderr);
    let value: serde_json::Value = serde_json::from_str(&ungated.stdout).unwrap();
    let findings = value["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{}", ungated.stdout);
    assert_eq!(findings[0]["component"]["purl"], "pkg:pypi/six@1.17.0");
    assert_eq!(findings[0]["usedByEntrypoint"], false);

    let outside = report(
        dir.path(),
        &config,
        &fixture(),
        &["--policy", gated.to_str().unwrap(), "--json"],
    );
    assert_eq!(outside.code, 0, "{}{}", outside.stdout, outside.stderr);
    let value: serde_json::Value = serde_json::from_str(&outside.stdout).unwrap();
    assert_eq!(value["verdict"], "PASS");
    assert_eq!(value["counts"]["byDecision"]["warn"], 1);

    // With the Go advisories too, the used stdlib fails the usage-gated policy.
    let both = tempfile::tempdir().unwrap();
    let mut advisories = small_advisories();
    advisories.push(six());
    let config = data_dir_with_kit(both.path(), advisories, "");
    let gated = write(both.path(), "usage.yaml", USAGE_GATED);
    let inside = report(
        both.path(),
        &config,
        &fixture(),
        &["--policy", gated.to_str().unwrap(), "--json"],
    );
    assert_eq!(inside.code, 1, "{}{}", inside.stdout, inside.stderr);
    let value: serde_json::Value = serde_json::from_str(&inside.stdout).unwrap();
    for finding in value["findings"].as_array().unwrap() {
        let used = finding["component"]["purl"] == "pkg:golang/stdlib@1.19.8";
        assert_eq!(finding["usedByEntrypoint"], used, "{finding}");
        let rule = if used {
            "used-components-fail"
        } else {
            "default"
        };
        assert_eq!(finding["decision"]["rule"], rule, "{finding}");
    }
}
