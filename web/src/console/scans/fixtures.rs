//! Test images for the console's scan and image pages: a small two-layer OCI layout with dpkg
//! and npm packages, labels (one of them hostile HTML) and an entrypoint script whose chain
//! cannot be followed to its end; and a helper that scans an image through the same start
//! function as the API and the console, then waits for the scan to end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stella_scanner::Digest;
use stella_scanner::fixture::LayerBuilder;

use crate::console::testing::ConsoleEnv;
use crate::scans::{ScanSource, start_scan};

/// The hostile label value of the test image.
pub(crate) const HOSTILE_LABEL: &str = "<script>alert(1)</script>";
/// dpkg packages in the bottom layer (more than one page of components).
pub(crate) const DEB_PACKAGES: usize = 55;

/// The committed scanner fixtures (`tests/data/scanner`).
pub(crate) fn scanner_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/scanner")
}

fn dpkg_status() -> String {
    (0..DEB_PACKAGES)
        .map(|i| {
            format!(
                "Package: pkg{i:02}\nStatus: install ok installed\nVersion: 1.{i}-1\n\
                 Architecture: amd64\n\n"
            )
        })
        .collect()
}

fn npm_package(layer: &mut LayerBuilder, name: &str, version: &str) {
    let manifest = format!(r#"{{"name": "{name}", "version": "{version}"}}"#);
    layer
        .file(
            &format!("app/node_modules/{name}/package.json"),
            manifest.as_bytes(),
            0o644,
        )
        .unwrap();
}

/// Writes the test image to `dir` (an OCI layout) and returns its image id. Variant 0 has
/// npm `left-pad 1.0.0` and `oldlib 0.9.0` in its top layer; variant 1 `left-pad 1.1.0` and
/// `newlib 0.1.0`. The bottom layer (the dpkg database) is the same in both.
pub(crate) fn test_image(dir: &Path, variant: u32) -> Digest {
    let mut base = LayerBuilder::new();
    base.file("var/lib/dpkg/status", dpkg_status().as_bytes(), 0o644)
        .unwrap();
    // An executable shell, so that the entry script is interpreted (statically) up to the
    // program that is missing.
    base.file("bin/sh", b"not a real shell", 0o755).unwrap();
    let mut app = LayerBuilder::new();
    app.file(
        "app/start.sh",
        b"#!/bin/sh\nset -e\nexec missing-tool --serve \"$@\"\n",
        0o755,
    )
    .unwrap();
    if variant == 0 {
        npm_package(&mut app, "left-pad", "1.0.0");
        npm_package(&mut app, "oldlib", "0.9.0");
    } else {
        npm_package(&mut app, "left-pad", "1.1.0");
        npm_package(&mut app, "newlib", "0.1.0");
    }
    let layers = [base.finish().unwrap(), app.finish().unwrap()];
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in &layers {
        let digest = Digest::of_bytes(layer);
        std::fs::write(blobs.join(digest.hex()), layer).unwrap();
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest.as_str(), "size": layer.len()}));
        diff_ids.push(digest.as_str().to_owned());
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/app/start.sh"],
            "Labels": {
                "org.opencontainers.image.title": format!("console test image {variant}"),
                "org.example.note": HOSTILE_LABEL,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids}}))
    .unwrap();
    let config_digest = Digest::of_bytes(&config);
    std::fs::write(blobs.join(config_digest.hex()), &config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.as_str(), "size": config.len()},
        "layers": descriptors}))
    .unwrap();
    let manifest_digest = Digest::of_bytes(&manifest);
    std::fs::write(blobs.join(manifest_digest.hex()), &manifest).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": manifest_digest.as_str(), "size": manifest.len()}]}))
        .unwrap(),
    )
    .unwrap();
    config_digest
}

/// Waits (at most a minute) until scan `id` is no longer running; returns its status.
pub(crate) async fn wait_for(env: &ConsoleEnv, id: &str) -> String {
    for _ in 0..1200 {
        let status: String = env
            .state
            .stores()
            .catalog
            .connection()
            .query_row("SELECT status FROM scans WHERE id = ?1", [id], |r| r.get(0))
            .unwrap();
        if status != "running" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("scan {id} still running after a minute");
}

/// Scans the image at `path` as the API would and waits for it; returns the image digest.
pub(crate) async fn scan_path(env: &ConsoleEnv, path: &Path) -> String {
    let source = ScanSource::Image {
        image: path.display().to_string(),
        insecure_registries: Vec::new(),
    };
    let ctx = crate::auth::AuditContext {
        request_id: None,
        source: "test".into(),
    };
    let id = start_scan(&env.state, &ctx, "tester", source, Default::default()).unwrap();
    assert_eq!(wait_for(env, &id).await, "done");
    env.state
        .stores()
        .catalog
        .connection()
        .query_row("SELECT image_digest FROM scans WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap()
}

/// Scans variant 0 of the test image; returns (dir holding it, image digest).
pub(crate) async fn scanned_test_image(env: &ConsoleEnv) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let id = test_image(dir.path(), 0);
    let digest = scan_path(env, dir.path()).await;
    assert_eq!(digest, id.as_str());
    (dir, digest)
}

/// Scans both variants of the test image; returns (dir holding them, old digest, new digest).
pub(crate) async fn two_scanned_images(env: &ConsoleEnv) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    let old_id = test_image(&old, 0);
    let new_id = test_image(&new, 1);
    let old_digest = scan_path(env, &old).await;
    let new_digest = scan_path(env, &new).await;
    assert_eq!(old_digest, old_id.as_str());
    assert_eq!(new_digest, new_id.as_str());
    (dir, old_digest, new_digest)
}
