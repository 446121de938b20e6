//! The usage view end to end: `stella scan --view usage` on a fixture image made from real
//! Debian binaries, and `GET /api/sboms/{digest}?view=usage` plus the BOM-Index sidecar stored
//! by `POST /api/scans`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

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

fn scan(data: &Path, image: &Path, view: &str, out: &Path) -> String {
    let run = stella()
        .arg("scan")
        .arg(image)
        .args(["--view", view, "--data-dir"])
        .arg(data)
        .arg("-o")
        .arg(out)
        .env_remove("STELLA_DATA")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{stderr}");
    stderr
}

fn component_names(sbom: &serde_json::Value) -> Vec<String> {
    sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn scan_view_usage_lists_the_closure_and_the_entry_chain() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image");
    debian::python_image(&image, 0).unwrap();
    let data = dir.path().join("data");
    let inventory_path = dir.path().join("inventory.json");
    scan(&data, &image, "inventory", &inventory_path);
    let usage_path = dir.path().join("usage.json");
    let stderr = scan(&data, &image, "usage", &usage_path);
    assert!(stderr.contains("layers analysed 0, reused 3"), "{stderr}");
    assert!(
        stderr.contains("usage view: 8 of 13 components used by the entrypoint"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exec /usr/local/bin/docker-entrypoint.sh:16 [python3 /app/main.py]"),
        "{stderr}"
    );
    let inventory: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&inventory_path).unwrap()).unwrap();
    let usage: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&usage_path).unwrap()).unwrap();
    let all = component_names(&inventory);
    let used = component_names(&usage);
    assert!(all.contains(&"coreutils".to_owned()));
    assert!(!used.contains(&"coreutils".to_owned()));
    assert!(used.contains(&"python3.11-minimal".to_owned()));
    assert!(used.iter().all(|u| all.contains(u)));
    let props = usage["metadata"]["component"]["properties"]
        .as_array()
        .unwrap();
    assert!(
        props
            .iter()
            .any(|p| p["name"] == "stella:view" && p["value"] == "usage")
    );
    let spdx = dir.path().join("usage.spdx.json");
    let run = stella()
        .arg("scan")
        .arg(&image)
        .args(["--view", "usage", "--format", "spdx-json", "--data-dir"])
        .arg(&data)
        .arg("-o")
        .arg(&spdx)
        .env_remove("STELLA_DATA")
        .output()
        .unwrap();
    assert!(run.status.success());
    let spdx: serde_json::Value = serde_json::from_slice(&std::fs::read(&spdx).unwrap()).unwrap();
    // The image package plus the 8 used components.
    assert_eq!(spdx["packages"].as_array().unwrap().len(), 9);
}

#[test]
fn sbom_api_serves_both_views_and_stores_the_bom_index() {
    #[path = "authority_common/mod.rs"]
    mod authority_common;
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image");
    debian::python_image(&image, 0).unwrap();
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
    let digest = done["imageDigest"].as_str().unwrap().to_owned();
    let inventory = call(
        "GET",
        &format!("/api/sboms/{digest}?format=cdx-json&view=inventory"),
        "",
    );
    let usage = call(
        "GET",
        &format!("/api/sboms/{digest}?format=cdx-json&view=usage"),
        "",
    );
    assert_eq!(inventory.status, 200);
    assert_eq!(usage.status, 200, "{}", usage.body);
    assert_eq!(component_names(&inventory.json()).len(), 13);
    assert_eq!(component_names(&usage.json()).len(), 8);
    let bad = call("GET", &format!("/api/sboms/{digest}?view=runtime"), "");
    assert_eq!(bad.status, 400);
    daemon.stop();
    let stores = stella_store::Stores::open(&dir.path().join("data")).unwrap();
    let blob: String = stores
        .catalog
        .connection()
        .query_row(
            "SELECT digest FROM artifacts WHERE kind = 'bom-index' AND image_digest = ?1",
            [&digest],
            |r| r.get(0),
        )
        .unwrap();
    let bytes = stores.blobs.get(&blob.parse().unwrap()).unwrap().unwrap();
    let index = stella_scanner::bomindex::read(&bytes).unwrap();
    assert_eq!(index.image_id.to_string(), digest);
    assert_eq!(index.components.len(), 13);
    assert_eq!(index.used_by_entrypoint.len(), 8);
}
