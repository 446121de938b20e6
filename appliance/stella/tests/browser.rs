//! The admin console in a real headless Chromium against a real `stella serve` on loopback
//! (`docs/console.md` is the contract: URLs and form field names). Each test walks what an
//! operator does — first sign-in and the forced password change, a kit upload and its
//! verification report, the audit trail, a scan upload and its findings, an advisory search, a
//! policy edit with an error then its fix, an attestation bundle download — and saves
//! screenshots under `TARGET_DIR/screenshots/`.
//!
//! Without Chromium and ChromeDriver (Debian `chromium`, `chromium-driver`) these tests fail
//! under `CI=true` and are skipped, loudly, elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority_common;
mod browser_common;
mod common;

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
async fn kit_upload_shows_the_verification_report_and_the_audit_trail() {
    let test = "kit-upload";
    if !browser_common::available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_trusting_the_test_kit(dir.path());
    let mut browser = signed_in(test, &daemon).await;

    browser.open("/console/kits").await;
    browser
        .choose_file(
            "input[name=kit]",
            &repo_file("tests/data/kit/subset-kit-1.tar.zst"),
        )
        .await;
    browser.step("kit-chosen").await;
    browser.submit("input[name=kit]").await;
    let report = browser.text().await;
    browser.step("verification-report").await;
    assert!(report.contains("Loaded"), "{report}");
    assert!(report.contains("stable"), "the kit's channel: {report}");

    // The kits page now lists the channel; the audit log has the import, by admin.
    browser.open("/console/kits").await;
    let kits = browser.text().await;
    assert!(kits.contains("stable"), "{kits}");
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
