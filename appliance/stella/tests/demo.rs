//! `stella serve --demo` end to end on the real binary: the printed console URL and one-time
//! password sign in, the sample image, its findings and its verdict are there through the API,
//! every console page answers with the demo banner, and the ephemeral demo key is trusted nowhere
//! else: a normal `stella serve` refuses the demo data dir, a normal import refuses the demo kit,
//! and `--demo` refuses a real data dir. Without `--data-dir` the demo's data go away on stop.
//! With a SoftHSM2 `[hsm]`, the demo licence gets the sample report signed and logged at start,
//! and the same licence on a normal appliance with the same HSM entitles nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority_common;
mod common;
mod signer_common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authority_common::{Daemon, Response, first_admin_login, http};
use common::stella;

const BEARER: &str = "[auth]\nallow_bearer_tokens = true\n";

/// Runs `stella ARGS` that must end by itself within 30 seconds; returns (exit code, stdout,
/// stderr). A daemon that starts serving instead is killed and the test fails.
fn run_to_end(args: &[&str], config: &Path, data: &Path) -> (i32, String, String) {
    let mut child = stella()
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env_remove("STELLA_DATA")
        .env_remove("STELLA_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stella {args:?} did not end: it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The text after `prefix` on the daemon's stdout line that starts with it.
fn after<'a>(daemon: &'a Daemon, prefix: &str) -> &'a str {
    daemon
        .line(prefix)
        .unwrap_or_else(|| panic!("no line {prefix:?} in {:#?}", daemon.seen))
        .strip_prefix(prefix)
        .unwrap()
}

/// A console page fetched with the session `cookie`: it must answer 200 with the demo banner.
fn demo_page(daemon: &Daemon, cookie: &str, path: &str) -> Response {
    let answer = http(daemon.addr, "GET", path, &[("Cookie", cookie)], "");
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    assert!(
        answer.body.contains("class=\"demo-banner\""),
        "{path} has no demo banner"
    );
    answer
}

/// An API resource fetched with a bearer `token`: it must answer 200.
fn api_get(daemon: &Daemon, token: &str, path: &str) -> Response {
    let auth = format!("Bearer {token}");
    let answer = http(daemon.addr, "GET", path, &[("Authorization", &auth)], "");
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    answer
}

#[test]
fn demo_shows_image_findings_and_verdict_and_its_key_is_trusted_nowhere_else() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stella.toml");
    // A real trusted key beside the demo: the demo kit must be refused as signed by an unknown
    // key, not merely because no key is configured.
    let trusted = common::repo().join("tests/data/kit/test-kit.pub");
    std::fs::write(
        &config,
        format!(
            "[kits]\ntrusted_keys = [{:?}]\n{BEARER}",
            trusted.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("demo-data");
    let daemon = Daemon::start(&data, &["--demo", "--config", config.to_str().unwrap()]);
    let seeded = Instant::now();

    // What the newcomer reads: the demo is labelled, the console URL and the password are there.
    assert!(
        after(&daemon, "stella: DEMO MODE: sample kit demo-1-").contains("ephemeral demo key"),
        "{:#?}",
        daemon.seen
    );
    let console = after(&daemon, "stella: demo console: ");
    assert!(
        console.starts_with(&format!("{}/ ", daemon.base_url())),
        "{console}"
    );
    assert!(daemon.bootstrap_password().is_some(), "{:#?}", daemon.seen);
    let scanned = after(&daemon, "stella: demo: scanned sample image ");
    let digest = scanned.split(':').take(2).collect::<Vec<_>>().join(":");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{scanned}"
    );
    assert!(
        data.join("demo/demo-kit-1.tar.zst").exists(),
        "the sample kit is kept"
    );
    // Without [hsm] the demo issues no licence and says why the report is unsigned.
    assert!(
        after(&daemon, "stella: demo: the report is not signed: ").contains("no [hsm]"),
        "{:#?}",
        daemon.seen
    );
    assert!(!data.join("demo/demo-licence.json").exists());

    // Sign in with the printed password; every console page answers and says demo.
    let login = http(daemon.addr, "GET", "/login", &[], "");
    assert!(
        login.body.contains("class=\"demo-banner\""),
        "the sign-in page says demo"
    );
    let session = first_admin_login(&daemon, "a-long-new-password-1");
    let scans = demo_page(&daemon, &session, "/console/scans");
    let scan = scans
        .body
        .split("href=\"/console/scans/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no scan listed: {}", scans.body));
    for page in [
        "/",
        "/console/scans",
        &format!("/console/scans/{scan}"),
        &format!("/console/images/{digest}"),
        &format!("/console/images/{digest}/findings"),
        "/console/diff",
        &format!("/console/diff?old={digest}&new={digest}"),
        "/console/advisories",
        "/console/advisories/GO-2023-1751",
        "/console/vex",
        "/console/policies",
        "/console/kits",
        "/console/attestations",
        "/console/audit",
        "/console/users",
        "/console/clients",
        "/account/password",
    ] {
        demo_page(&daemon, &session, page);
    }

    // The image, its findings and its verdict through the API.
    let token = authority_common::bearer_token(&daemon, &session, "demo-check", "scanner.read");
    let get = |path: &str| api_get(&daemon, &token, path);
    let sbom = get(&format!("/api/sboms/{digest}")).json();
    let components = sbom["components"].as_array().unwrap();
    assert!(
        components.iter().any(|c| c["purl"]
            .as_str()
            .unwrap_or("")
            .starts_with("pkg:golang/stdlib@")),
        "the sample image carries the Go standard library the advisories hit"
    );
    let reports = get(&format!("/api/reports?imageDigest={digest}")).json();
    let listed = &reports["reports"][0];
    assert!(
        matches!(listed["verdict"].as_str(), Some("PASS" | "FAIL")),
        "{reports}"
    );
    assert!(
        listed["advisories"]["kitId"]
            .as_str()
            .unwrap()
            .starts_with("demo-"),
        "{reports}"
    );
    let report = get(listed["url"].as_str().unwrap()).json();
    let advisories: BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["advisory"]["aliases"].as_array().unwrap())
        .map(|alias| alias.as_str().unwrap())
        .collect();
    // GO-2023-1702 is fixed in the image's Go 1.19.8; the other three are not.
    assert_eq!(
        advisories,
        BTreeSet::from(["GO-2023-1751", "GO-2023-1752", "GO-2023-1840"]),
        "{report}"
    );
    let stderr = daemon.stop();
    assert!(stderr.contains("DEMO MODE"), "{stderr}");

    // A second demo run on the same data dir keeps the first run's data and says so.
    let again = Daemon::start(&data, &["--demo", "--config", config.to_str().unwrap()]);
    assert!(
        after(&again, "stella: DEMO MODE: ").contains("earlier demo run"),
        "{:#?}",
        again.seen
    );
    assert!(after(&again, "stella: demo console: ").contains("stella reset-password"));
    assert!(again.bootstrap_password().is_none());
    assert!(after(&again, "stella: demo: scanned sample image ").starts_with(&digest));
    again.stop();

    // A normal daemon refuses the demo's data dir: demo data never pass for evidence.
    let (code, _, stderr) = run_to_end(&["serve", "--listen", "127.0.0.1:0"], &config, &data);
    assert_ne!(code, 0);
    assert!(stderr.contains("holds demo data"), "{stderr}");

    // The same configuration does not trust the demo key: the demo kit is refused by signature.
    let real = dir.path().join("real-data");
    let kit = data.join("demo/demo-kit-1.tar.zst");
    let (code, stdout, stderr) = run_to_end(&["import", kit.to_str().unwrap()], &config, &real);
    assert_eq!(code, 4, "{stdout}{stderr}");
    assert!(stdout.contains("REJECTED (unknown-key)"), "{stdout}");

    // And --demo refuses a data dir that holds a real appliance's data.
    let (code, _, stderr) = run_to_end(
        &["serve", "--demo", "--listen", "127.0.0.1:0"],
        &config,
        &real,
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("--demo refuses data dir"), "{stderr}");
    eprintln!(
        "demo: seeded and serving after {:?}, whole test {:?}",
        seeded - started,
        started.elapsed()
    );
}

#[test]
fn demo_without_data_dir_uses_a_temporary_one_removed_on_stop() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stella"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .env_remove("STELLA_DATA")
        .env_remove("STELLA_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let prefix = "stella: demo: data in ";
    let line = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.starts_with(prefix))
        .expect("the demo names its data dir");
    let path = PathBuf::from(
        line[prefix.len()..]
            .strip_suffix(" (removed when the daemon stops)")
            .unwrap_or_else(|| panic!("not said to be temporary: {line}")),
    );
    assert!(path.join("demo").is_dir(), "{}", path.display());
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    assert!(child.wait().unwrap().success());
    assert!(!path.exists(), "{} is left behind", path.display());
}

#[test]
fn demo_with_an_hsm_signs_and_logs_its_report_under_a_demo_licence_trusted_nowhere_else() {
    let Some(app) = signer_common::Appliance::new() else {
        return;
    };
    let mut config = std::fs::read_to_string(&app.config).unwrap();
    config.push_str(BEARER);
    std::fs::write(&app.config, config).unwrap();
    // The key ceremony on a real appliance's data dir; the demo then uses the same HSM keys.
    app.hsm_init();
    let data = app.path("demo-data");
    let env = [("SOFTHSM2_CONF", app.softhsm_conf.as_path())];
    let daemon = Daemon::start_env(
        &data,
        &["--demo", "--config", app.config.to_str().unwrap()],
        &env,
    );

    // Start-up says the kit carries a demo licence and the report is signed and logged.
    let licence_line = after(&daemon, "stella: demo: demo licence ");
    let licence_id = licence_line.split(' ').next().unwrap().to_owned();
    assert!(licence_id.starts_with("demo-"), "{licence_line}");
    assert!(
        licence_line.contains("valid only in this demo run"),
        "{licence_line}"
    );
    let signed = after(&daemon, "stella: demo: the report is signed under licence ");
    assert!(
        signed.starts_with(&format!("{licence_id} and logged at index 0 ")),
        "{:#?}",
        daemon.seen
    );
    let scanned = after(&daemon, "stella: demo: scanned sample image ");
    let digest = scanned.split(':').take(2).collect::<Vec<_>>().join(":");

    // The licence on disk is the real licence model, labelled as demo.
    let licence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("demo/demo-licence.json")).unwrap())
            .unwrap();
    assert_eq!(
        licence["licence"]["licence_id"],
        licence_id.as_str(),
        "{licence}"
    );
    for field in ["customer", "plan"] {
        assert!(
            licence["licence"][field]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("demo"),
            "{licence}"
        );
    }

    // The attestations page and the API list the signed report.
    let session = first_admin_login(&daemon, "a-long-new-password-1");
    let page = demo_page(&daemon, &session, "/console/attestations");
    assert!(
        page.body.contains(&digest)
            && page.body.contains("report.json")
            && page.body.contains("/console/attestations/1/bundle"),
        "{}",
        page.body
    );
    let token = authority_common::bearer_token(&daemon, &session, "demo-check", "scanner.read");
    let get = |path: &str| api_get(&daemon, &token, path);
    let export = get("/api/exports/1").json();
    assert_eq!(export["imageDigest"], digest.as_str(), "{export}");
    assert_eq!(export["name"], "report.json", "{export}");
    assert_eq!(export["logIndex"], 0, "{export}");
    // The signed statement itself names the demo licence, its customer and plan.
    let bundle = get("/api/exports/1/bundle").json();
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        bundle["dsseEnvelope"]["payload"].as_str().unwrap(),
    )
    .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let predicate = &statement["predicate"];
    assert_eq!(predicate["license_id"], licence_id.as_str(), "{predicate}");
    assert!(
        predicate["customer_id"].as_str().unwrap().contains("DEMO"),
        "{predicate}"
    );
    let status = get("/api/signer/status").json();
    assert_eq!(
        status["entitlement"]["licence_id"],
        licence_id.as_str(),
        "{status}"
    );
    daemon.stop();

    // The demo licence elsewhere: carried in a kit signed by a trusted kit key onto a normal
    // appliance with the very same HSM (so bound to its installation key), it entitles nothing,
    // because its signing key is not a vendor key there.
    let licence_file = data.join("demo/demo-licence.json");
    app.import(1, &[format!("licence={}", licence_file.display())]);
    let normal = app.serve();
    let session = first_admin_login(&normal, "a-long-new-password-2");
    let token = authority_common::bearer_token(&normal, &session, "check", "scanner.read");
    let status = api_get(&normal, &token, "/api/signer/status").json();
    assert_eq!(status["entitlement"]["entitled"], false, "{status}");
    assert_eq!(
        status["entitlement"]["reason"], "unknown-vendor-key",
        "{status}"
    );
    assert_eq!(
        status["licence"]["licence_id"],
        licence_id.as_str(),
        "{status}"
    );
    normal.stop();
}
