//! The admin console in a real headless Chromium against a real `stella serve` on loopback
//! (`docs/console.md` is the contract: URLs and form field names). Each test walks what an
//! operator does — first sign-in and the forced password change, a kit upload, its
//! verification report and its load, the audit trail, a scan upload and its findings, an
//! advisory search, a policy edit with an error then its fix, an attestation bundle download —
//! and saves screenshots under `TARGET_DIR/screenshots/`.
//!
//! Without Chromium and ChromeDriver (Debian `chromium`, `chromium-driver`) these tests fail
//! under `CI=true` and are skipped, loudly, elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority_common;
mod browser_common;
mod common;
mod signer_common;

use std::path::PathBuf;

use authority_common::Daemon;
use browser_common::Browser;

const NEW_PASSWORD: &str = "a-long-new-password-1";

fn repo_file(relative: &str) -> PathBuf {
    common::repo().join(relative)
}

/// A daemon over a fresh data dir whose configuration trusts the repository's test kit key.
fn daemon_trusting_the_test_kit(dir: &std::path::Path) -> Daemon {
    let config = dir.join("stella.toml");
    std::fs::write(
        &config,
        format!(
            "[kits]\ntrusted_keys = [{:?}]\n",
            repo_file("tests/data/kit/test-kit.pub")
                .display()
                .to_string()
        ),
    )
    .unwrap();
    Daemon::start(&dir.join("data"), &["--config", config.to_str().unwrap()])
}

/// What most tests start with: `None` (skipped) without a browser; else a daemon over a fresh
/// data dir trusting the test kit key, and a browser signed in as `admin`.
async fn admin_console(test: &str) -> Option<(tempfile::TempDir, Daemon, Browser)> {
    if !browser_common::available(test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_trusting_the_test_kit(dir.path());
    let browser = signed_in(test, &daemon).await;
    Some((dir, daemon, browser))
}

/// Uploads the repository's test kit on `/console/kits`: the verification report, which offers
/// to load it.
async fn verify_test_kit(browser: &Browser) -> String {
    browser.open("/console/kits").await;
    browser
        .upload(
            "input[name=kit]",
            &repo_file("tests/data/kit/subset-kit-1.tar.zst"),
        )
        .await;
    let report = browser.text().await;
    assert!(report.contains("Verified: ready to load"), "{report}");
    report
}

/// Uploads the repository's test kit on `/console/kits` and loads it from its verification
/// report.
async fn upload_test_kit(browser: &Browser) {
    verify_test_kit(browser).await;
    browser
        .follow("form[action='/console/kits/load'] button")
        .await;
    let loaded = browser.text().await;
    assert!(loaded.contains("Loaded"), "{loaded}");
}

/// Uploads the repository's image archive `relative` on `/console/scans` and waits on the scan's
/// page, which refreshes itself, until the scan finished.
async fn scan_upload(browser: &mut Browser, relative: &str) {
    browser.open("/console/scans").await;
    browser
        .upload("input[name=archive]", &repo_file(relative))
        .await;
    assert!(
        browser.path().await.starts_with("/console/scans/"),
        "{}",
        browser.path().await
    );
    browser.wait_for_text("The scan finished").await;
    browser.step("scan-done").await;
}

/// A browser signed in as `admin` (bootstrap password changed to [`NEW_PASSWORD`]).
async fn signed_in(test: &str, daemon: &Daemon) -> Browser {
    let mut browser = Browser::start(test, &daemon.base_url()).await;
    let bootstrap = daemon.bootstrap_password().expect("a fresh data dir");
    browser.first_sign_in(&bootstrap, NEW_PASSWORD).await;
    browser
}

#[tokio::test]
async fn first_sign_in_forces_a_password_change_then_only_the_new_password_works() {
    let test = "first-sign-in";
    if !browser_common::available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"), &[]);
    let bootstrap = daemon.bootstrap_password().unwrap();
    let mut browser = signed_in(test, &daemon).await;
    browser.step("signed-in").await;

    // Sign out; the one-time password is spent, the new one works.
    browser.submit("form[action='/logout'] button").await;
    browser.open("/login").await;
    browser.fill("input[name=username]", "admin").await;
    browser.fill("input[name=password]", &bootstrap).await;
    browser.submit("input[name=password]").await;
    assert_eq!(
        browser.path().await,
        "/login",
        "the bootstrap password is spent"
    );
    browser.step("bootstrap-password-refused").await;
    // The login throttle backs off for a second after a failure (docs/security.md).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    browser.fill("input[name=username]", "admin").await;
    browser.fill("input[name=password]", NEW_PASSWORD).await;
    browser.submit("input[name=password]").await;
    let path = browser.path().await;
    assert!(
        path != "/login" && path != "/account/password",
        "signed in with the new password: {path}"
    );
    browser.step("signed-in-again").await;
    browser.close().await;
}

#[tokio::test]
async fn kit_upload_shows_the_verification_report_then_loads_with_the_audit_trail() {
    let Some((_dir, _daemon, mut browser)) = admin_console("kit-upload").await else {
        return;
    };
    let report = verify_test_kit(&browser).await;
    browser.step("verification-report").await;
    assert!(report.contains("stable"), "the kit's channel: {report}");
    assert!(report.contains("Nothing is loaded yet"), "{report}");
    browser
        .follow("form[action='/console/kits/load'] button")
        .await;
    let loaded = browser.text().await;
    browser.step("loaded").await;
    assert!(loaded.contains("Loaded"), "{loaded}");
    assert!(loaded.contains("Records loaded"), "{loaded}");

    // The kits page now lists the channel and both steps; the audit log has them, by admin.
    browser.follow("a[href='/console/kits']").await;
    let kits = browser.text().await;
    assert!(kits.contains("stable"), "{kits}");
    let trail = browser.source().await;
    assert!(trail.contains("<td>verified</td>"), "{trail}");
    assert!(trail.contains("<td>loaded</td>"), "{trail}");
    browser.step("kits").await;
    browser.open("/console/audit").await;
    browser.fill("input[name=actor]", "admin").await;
    browser.submit("input[name=actor]").await;
    assert!(
        browser.path().await.contains("actor=admin"),
        "{}",
        browser.path().await
    );
    let audit = browser.text().await;
    assert!(audit.contains("kit.import"), "{audit}");
    browser.step("audit-trail").await;
    browser.close().await;
}

#[tokio::test]
async fn demo_findings_show_the_banner_the_verdict_and_the_advisories() {
    let test = "demo-findings";
    if !browser_common::available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"), &["--demo"]);
    let scanned = daemon
        .line("stella: demo: scanned sample image ")
        .expect("the demo scanned its image")
        .to_owned();
    let digest = scanned
        .trim_start_matches("stella: demo: scanned sample image ")
        .split(": ")
        .next()
        .unwrap()
        .to_owned();
    let mut browser = signed_in(test, &daemon).await;
    let home = browser.source().await;
    assert!(home.contains("class=\"demo-banner\""), "{home}");
    browser.step("dashboard").await;

    browser
        .open(&format!("/console/images/{digest}/findings"))
        .await;
    let findings = browser.text().await;
    browser.step("findings").await;
    assert!(findings.contains("Demo mode"), "{findings}");
    assert!(findings.contains("Verdict"), "{findings}");
    // The three Go advisories that hit the image's Go 1.19.8 (GO-2023-1702 is fixed in it).
    for cve in ["CVE-2023-24539", "CVE-2023-24540", "CVE-2023-29403"] {
        assert!(findings.contains(cve), "{cve} missing: {findings}");
    }
    assert!(!findings.contains("GO-2023-1702"), "{findings}");
    browser.close().await;
}

#[tokio::test]
async fn policy_error_shows_its_line_and_column_then_the_fix_is_saved() {
    let Some((_dir, _daemon, mut browser)) = admin_console("policy-edit").await else {
        return;
    };

    browser.open("/console/policies").await;
    browser.step("policies").await;
    let broken = "apiVersion: stella.policy/v1\nname: strict\ndefaultAction: explode\n";
    browser.fill("textarea[name=policy]", broken).await;
    browser.submit("textarea[name=policy]").await;
    let refused = browser.text().await;
    browser.step("policy-error").await;
    assert!(refused.contains("was not saved"), "{refused}");
    assert!(refused.contains("Line 3, column"), "{refused}");
    // The editor keeps what was typed.
    let kept = browser
        .find("textarea[name=policy]")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(kept, broken);

    let fixed = "apiVersion: stella.policy/v1\nname: strict\ndefaultAction: fail\n";
    browser.fill("textarea[name=policy]", fixed).await;
    browser.submit("textarea[name=policy]").await;
    assert!(
        browser.path().await.contains("saved=1"),
        "{}",
        browser.path().await
    );
    let saved = browser.text().await;
    browser.step("policy-saved").await;
    assert!(saved.contains("Saved revision 1"), "{saved}");
    assert!(saved.contains("strict"), "{saved}");
    browser.close().await;
}

#[tokio::test]
async fn report_stored_from_the_findings_page_is_signed_and_its_bundle_downloads_and_verifies() {
    let test = "attestation";
    if !browser_common::available(test) {
        return;
    }
    // An entitled appliance on SoftHSM: keys made, licence enrolled and imported in one kit with
    // the Go advisories the image fixture is hit by.
    let Some(app) = signer_common::Appliance::new() else {
        return;
    };
    app.hsm_init();
    let request = app.enrol();
    let licence = app.licence("licence.json", &request, "vendor", &["--expires", "365d"]);
    app.import(
        1,
        &[
            format!("licence={}", licence.display()),
            format!("osv={}", repo_file("tests/data/report/go").display()),
        ],
    );
    let daemon = app.serve();
    let mut browser = signed_in(test, &daemon).await;
    scan_upload(&mut browser, "tests/data/scanner/fixture-docker.tar").await;
    browser.follow("a[href$='/findings']").await;
    let findings = browser.text().await;
    browser.step("findings").await;
    assert!(findings.contains("CVE-2023-29403"), "{findings}");
    browser
        .confirm("form[data-confirm] button[type=submit]")
        .await;
    let stored = browser.text().await;
    browser.step("report-stored").await;
    assert!(
        stored.contains("Made from the same SBOM, advisories and policy"),
        "{stored}"
    );

    // The signed report is on the attestations page; its bundle downloads.
    browser.open("/console/attestations").await;
    let listed = browser.text().await;
    assert!(listed.contains("report.json"), "{listed}");
    browser.step("attestations").await;
    browser
        .click("a[download='report.json.sigstore.json']")
        .await;
    browser.click("a[download='report.json']").await;
    let bundle = browser.downloaded("report.json.sigstore.json").await;
    let artifact = browser.downloaded("report.json").await;
    let parsed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    assert!(
        parsed["mediaType"]
            .as_str()
            .unwrap()
            .starts_with("application/vnd.dev.sigstore.bundle"),
        "{parsed}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&artifact).unwrap()).unwrap();
    assert!(
        report["subject"]["imageDigest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{report}"
    );

    // And the appliance verifies what was carried out.
    browser.choose_file("input[name=bundle]", &bundle).await;
    browser.choose_file("input[name=artifact]", &artifact).await;
    browser.submit("input[name=artifact]").await;
    let verified = browser.text().await;
    browser.step("bundle-verified").await;
    assert!(verified.contains("VALID:"), "{verified}");
    assert!(!verified.contains("INVALID"), "{verified}");
    browser.close().await;
}

#[tokio::test]
async fn scan_upload_then_image_then_findings() {
    let Some((_dir, _daemon, mut browser)) = admin_console("scan-upload").await else {
        return;
    };
    upload_test_kit(&browser).await;
    scan_upload(&mut browser, "tests/data/scanner/fixture-docker.tar").await;
    browser.follow("a[href^='/console/images/']").await;
    let image = browser.text().await;
    browser.step("image").await;
    assert!(image.contains("gosu"), "the fixture's Go binary: {image}");
    assert!(image.contains("stdlib"), "{image}");
    browser.follow("a[href$='/findings']").await;
    let findings = browser.text().await;
    browser.step("findings").await;
    assert!(findings.contains("Verdict"), "{findings}");
    browser.close().await;
}

#[tokio::test]
async fn advisory_search_finds_an_advisory_by_alias_and_opens_it() {
    let Some((_dir, _daemon, mut browser)) = admin_console("advisory-search").await else {
        return;
    };
    upload_test_kit(&browser).await;

    // GO-2020-0001 (gin log injection) is in the subset kit, also known as CVE-2020-36567.
    browser.open("/console/advisories").await;
    browser.fill("input[name=q]", "CVE-2020-36567").await;
    browser.submit("input[name=q]").await;
    assert!(
        browser.path().await.contains("q=CVE-2020-36567"),
        "{}",
        browser.path().await
    );
    let results = browser.text().await;
    browser.step("search").await;
    assert!(results.contains("gin"), "{results}");
    browser.follow("a[href^='/console/advisories/']").await;
    let advisory = browser.text().await;
    browser.step("advisory").await;
    assert!(advisory.contains("CVE-2020-36567"), "{advisory}");
    assert!(advisory.contains("github.com/gin-gonic/gin"), "{advisory}");

    // Every advisory, sorted by id from its column header, then the other way.
    browser.open("/console/advisories").await;
    assert!(browser.text().await.contains("best match first"));
    browser.follow("th[aria-sort] a[href*='sort=id']").await;
    assert!(
        browser.path().await.contains("sort=id"),
        "{}",
        browser.path().await
    );
    let ascending = browser.text().await;
    assert!(ascending.contains(", by id"), "{ascending}");
    let first_row = "table.advisories tbody tr td a";
    let first_ascending = browser.find(first_row).await.text().await.unwrap();
    browser.follow("th[aria-sort=ascending] a").await;
    assert!(
        browser.path().await.contains("sort=-id"),
        "{}",
        browser.path().await
    );
    let descending = browser.text().await;
    browser.step("sorted").await;
    assert!(descending.contains("by id, Z to A"), "{descending}");
    let first_descending = browser.find(first_row).await.text().await.unwrap();
    assert!(
        first_ascending < first_descending,
        "{first_ascending} then {first_descending}"
    );
    browser.close().await;
}
