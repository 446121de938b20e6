//! `stella diff OLD NEW` and `GET /api/diff` on two fixture images from real Debian binaries that
//! share their two bottom layers: changes are attributed to the top layer, the shared layers are
//! analysed once (the second scan reuses them from the cache).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::stella;
use stella_scanner::fixture::debian;

fn ready() -> bool {
    let missing = debian::missing_host_files();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "fixture host files missing under CI: {missing:?}"
    );
    eprintln!("SKIP: host files for the Debian fixture images are missing: {missing:?}");
    false
}

fn check_diff(diff: &serde_json::Value) {
    let names = |key: &str| -> Vec<(String, serde_json::Value)> {
        diff[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c["layer"].clone()))
            .collect()
    };
    assert_eq!(
        names("added"),
        [("newlib".to_owned(), serde_json::json!(2))]
    );
    assert_eq!(
        names("removed"),
        [("oldlib".to_owned(), serde_json::json!(2))]
    );
    let changed = diff["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{diff}");
    assert_eq!(changed[0]["name"], "otherlib");
    assert_eq!(changed[0]["oldVersion"], "2.0.0");
    assert_eq!(changed[0]["newVersion"], "2.1.0");
    assert_eq!(changed[0]["layer"], 2);
    let layers = diff["layers"].as_array().unwrap();
    // Three layers of the new image, then the old top layer it replaced.
    assert_eq!(layers.len(), 4);
    assert_eq!(layers[3]["index"], serde_json::Value::Null);
    assert_eq!(layers[0]["shared"], true);
    assert_eq!(layers[1]["shared"], true);
    assert_eq!(layers[2]["shared"], false);
    assert_eq!(
        (
            &layers[2]["added"],
            &layers[2]["removed"],
            &layers[2]["changed"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1)
        )
    );
    assert_eq!(layers[0]["added"], 0);
}

#[test]
fn diff_attributes_changes_to_the_layer_and_reuses_shared_layers() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    debian::python_image(&old, 0).unwrap();
    debian::python_image(&new, 1).unwrap();
    let run = stella()
        .arg("diff")
        .arg(&old)
        .arg(&new)
        .arg("--json")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("STELLA_DATA")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("layers analysed 3, reused 0"), "{stderr}");
    // The new image's two bottom layers come from the cache: only its top layer is read.
    assert!(stderr.contains("layers analysed 1, reused 2"), "{stderr}");
    let diff: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    check_diff(&diff);
    let text = stella()
        .arg("diff")
        .arg(&old)
        .arg(&new)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("STELLA_DATA")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("~ pypi otherlib 2.0.0 -> 2.1.0 (layer 2)"),
        "{text}"
    );
    assert!(text.contains("+ pypi newlib 0.1.0 (layer 2)"), "{text}");
    assert!(text.contains("- pypi oldlib 0.9.0 (layer 2)"), "{text}");
}

#[test]
fn diff_api_on_two_scanned_images() {
    #[path = "authority_common/mod.rs"]
    mod authority_common;
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    debian::python_image(&old, 0).unwrap();
    debian::python_image(&new, 1).unwrap();
    let config = dir.path().join("stella.toml");
    std::fs::write(&config, "[auth]\nallow_bearer_tokens = true\n").unwrap();
    let daemon = authority_common::Daemon::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let session = authority_common::first_admin_login(&daemon, "a-long-new-password-1");
    let secret =
        authority_common::register_client(&daemon, &session, "ci", "scanner.scan scanner.read");
    let token = authority_common::http(
        daemon.addr,
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("grant_type=client_credentials&client_id=ci&client_secret={secret}&scope=scanner.scan+scanner.read"),
    )
    .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let mut digests = Vec::new();
    for image in [&old, &new] {
        let body = serde_json::json!({ "path": image }).to_string();
        let started = call("POST", "/api/scans", &body);
        assert_eq!(started.status, 202, "{}", started.body);
        let id = started.json()["scanId"].as_str().unwrap().to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let done = loop {
            let scan = call("GET", &format!("/api/scans/{id}"), "").json();
            if scan["status"] != "running" {
                break scan;
            }
            assert!(std::time::Instant::now() < deadline, "scan never finished");
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        assert_eq!(done["status"], "done", "{done}");
        digests.push(done["imageDigest"].as_str().unwrap().to_owned());
    }
    let diff = call(
        "GET",
        &format!("/api/diff?old={}&new={}", digests[0], digests[1]),
        "",
    );
    assert_eq!(diff.status, 200, "{}", diff.body);
    check_diff(&diff.json());
    let unknown = call(
        "GET",
        &format!("/api/diff?old={}&new=sha256:{}", digests[0], "0".repeat(64)),
        "",
    );
    assert_eq!(unknown.status, 404);
    daemon.stop();
}
