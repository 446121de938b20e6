//! `stella scan` end to end on the scanner's real-data fixtures: the same image through the OCI
//! layout and the `docker save` archive gives the golden SBOM, the second scan reuses every layer
//! from the data directory's redb cache, and every format is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::stella;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/scanner")
}

fn scan(data: &Path, image: &Path, format: &str, out: &Path) -> String {
    let run = stella()
        .arg("scan")
        .arg(image)
        .args(["--format", format, "--data-dir"])
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

#[test]
fn scan_is_golden_through_every_intake_path_and_reuses_cached_layers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let golden = std::fs::read(fixtures().join("golden/fixture.cdx.json")).unwrap();

    let cold = dir.path().join("cold.cdx.json");
    let summary = scan(&data, &fixtures().join("fixture-oci"), "cdx-json", &cold);
    assert!(summary.contains("layers analysed 4, reused 0"), "{summary}");
    assert_eq!(std::fs::read(&cold).unwrap(), golden);

    let warm = dir.path().join("warm.cdx.json");
    let summary = scan(
        &data,
        &fixtures().join("fixture-docker.tar"),
        "cdx-json",
        &warm,
    );
    assert!(summary.contains("layers analysed 0, reused 4"), "{summary}");
    assert_eq!(std::fs::read(&warm).unwrap(), golden);

    let spdx = dir.path().join("sbom.spdx.json");
    scan(&data, &fixtures().join("fixture-oci"), "spdx-json", &spdx);
    assert_eq!(
        std::fs::read(&spdx).unwrap(),
        std::fs::read(fixtures().join("golden/fixture.spdx.json")).unwrap()
    );
    let pb = dir.path().join("sbom.cdx.pb");
    scan(&data, &fixtures().join("fixture-oci"), "cdx-pb", &pb);
    assert!(!std::fs::read(&pb).unwrap().is_empty());
}

#[test]
fn a_tampered_blob_fails_the_scan_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(fixtures().join("fixture-oci"))
        .arg(&image)
        .status()
        .unwrap();
    assert!(copied.success());
    // Flip one byte of the largest blob.
    let blobs = image.join("blobs/sha256");
    let mut largest: Vec<_> = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    largest.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let victim = largest.pop().unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let run = stella()
        .arg("scan")
        .arg(&image)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    let name = victim.file_name().unwrap().to_string_lossy();
    assert!(stderr.contains(name.as_ref()), "{stderr}");
}

/// `POST /api/scans` runs a scan in the daemon; `GET /api/scans/{id}` follows it; the SBOM is
/// served by image digest; `/metrics` counts analysed and reused layers.
#[test]
fn scan_over_the_api_and_fetch_the_sbom() {
    #[path = "authority_common/mod.rs"]
    mod authority_common;
    let dir = tempfile::tempdir().unwrap();
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
    let golden = std::fs::read_to_string(fixtures().join("golden/fixture.cdx.json")).unwrap();
    let missing = call("GET", &format!("/api/sboms/sha256:{}", "0".repeat(64)), "");
    assert_eq!(missing.status, 404);
    for expected in ["analysed\"} 4", "reused\"} 4"] {
        let body = serde_json::json!({ "path": fixtures().join("fixture-oci") }).to_string();
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
        let digest = done["imageDigest"].as_str().unwrap();
        let sbom = call(
            "GET",
            &format!("/api/sboms/{digest}?format=cdx-json&view=inventory"),
            "",
        );
        assert_eq!(sbom.status, 200);
        assert_eq!(sbom.body, golden);
        let metrics = call("GET", "/metrics", "").body;
        assert!(
            metrics.contains(&format!("stella_scan_layers_total{{outcome=\"{expected}")),
            "{metrics}"
        );
    }
    // The per-layer fragments the image SBOM links to are stored beside it.
    let data = dir.path().join("data");
    daemon.stop();
    let stores = stella_store::Stores::open(&data).unwrap();
    let layer_sboms: i64 = stores
        .catalog
        .connection()
        .query_row(
            "SELECT count(*) FROM artifacts WHERE kind = 'layer-sbom'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        layer_sboms,
        4 * 2,
        "a CycloneDX and an SPDX fragment per layer"
    );
}
