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
