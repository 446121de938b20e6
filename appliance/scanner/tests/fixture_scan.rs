//! End-to-end scans of the real-data fixture (`tests/data/scanner`): every intake
//! path gives the same SBOMs, outputs match the golden files and the official
//! schemas, warm scans reuse every layer, and tampered blobs are refused by name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stella_scanner::{
    Limits, MemoryLayerCache, NoCache, NoProgress, Platform, ScanError, ScanOptions, ScanResult,
    scan, scan_path, source::open_local,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/scanner")
}

fn layout() -> PathBuf {
    data_dir().join("fixture-oci")
}

fn docker_archive() -> PathBuf {
    data_dir().join("fixture-docker.tar")
}

/// An OCI archive is a tar of a layout; build one from the committed layout.
fn oci_archive(dir: &Path) -> PathBuf {
    let out = dir.join("fixture-oci.tar");
    let file = fs::File::create(&out).unwrap();
    let mut builder = tar::Builder::new(file);
    builder.append_dir_all(".", layout()).unwrap();
    builder.finish().unwrap();
    out
}

fn copy_layout(dir: &Path) -> PathBuf {
    let target = dir.join("layout");
    fs::create_dir_all(target.join("blobs/sha256")).unwrap();
    for name in ["oci-layout", "index.json"] {
        fs::copy(layout().join(name), target.join(name)).unwrap();
    }
    for entry in fs::read_dir(layout().join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(
            entry.path(),
            target.join("blobs/sha256").join(entry.file_name()),
        )
        .unwrap();
    }
    target
}

fn scan_cold(path: &Path) -> ScanResult {
    scan_path(path, &ScanOptions::default(), &NoCache, &NoProgress).unwrap()
}

fn validator(schema_file: &str) -> jsonschema::Validator {
    let dir = data_dir().join("schemas");
    let load = |name: &str| -> Value {
        serde_json::from_slice(&fs::read(dir.join(name)).unwrap()).unwrap()
    };
    let registry = jsonschema::Registry::new()
        .add(
            "http://cyclonedx.org/schema/spdx.schema.json",
            load("spdx.schema.json"),
        )
        .unwrap()
        .add(
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            load("jsf-0.82.schema.json"),
        )
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .offline()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&load(schema_file))
        .unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, bytes: &[u8], what: &str) {
    let value: Value = serde_json::from_slice(bytes).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} is not schema-valid:\n{}",
        errors.join("\n")
    );
}

fn check_golden(name: &str, bytes: &[u8]) {
    let path = data_dir().join("golden").join(name);
    if std::env::var_os("STELLA_UPDATE_GOLDEN").is_some() {
        fs::write(&path, bytes).unwrap();
        return;
    }
    let expected =
        fs::read(&path).unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert!(
        expected == bytes,
        "{name} differs from the golden file; rerun with STELLA_UPDATE_GOLDEN=1 after checking the change"
    );
}

#[test]
fn same_sbom_through_every_intake_path() {
    let temp = tempfile::tempdir().unwrap();
    let from_layout = scan_cold(&layout());
    let from_oci_archive = scan_cold(&oci_archive(temp.path()));
    let from_docker = scan_cold(&docker_archive());
    let reference_cdx = from_layout.to_cyclonedx_json().unwrap();
    let reference_spdx = from_layout.to_spdx_json().unwrap();
    for (name, result) in [
        ("oci-archive", &from_oci_archive),
        ("docker-archive", &from_docker),
    ] {
        assert_eq!(result.image.image_id, from_layout.image.image_id, "{name}");
        assert!(
            result.to_cyclonedx_json().unwrap() == reference_cdx,
            "{name}: CycloneDX differs"
        );
        assert!(
            result.to_spdx_json().unwrap() == reference_spdx,
            "{name}: SPDX differs"
        );
    }
    // The docker archive delivers uncompressed blobs: same diff_ids, other blob digests.
    assert_ne!(
        from_docker.layers[1].blob_digest,
        from_layout.layers[1].blob_digest
    );
}

#[test]
fn golden_outputs_and_schema_validity() {
    let result = scan_cold(&layout());
    let cdx = result.to_cyclonedx_json().unwrap();
    let spdx = result.to_spdx_json().unwrap();
    let cdx_validator = validator("bom-1.6.schema.json");
    let spdx_validator = validator("spdx-2.3.schema.json");
    assert_valid(&cdx_validator, &cdx, "image CycloneDX");
    assert_valid(&spdx_validator, &spdx, "image SPDX");
    for index in 0..result.layers.len() {
        assert_valid(
            &cdx_validator,
            &result.layer_to_cyclonedx_json(index).unwrap(),
            "layer CycloneDX",
        );
        assert_valid(
            &spdx_validator,
            &result.layer_to_spdx_json(index).unwrap(),
            "layer SPDX",
        );
    }
    check_golden("fixture.cdx.json", &cdx);
    check_golden("fixture.spdx.json", &spdx);
    check_golden(
        "fixture.layer3.cdx.json",
        &result.layer_to_cyclonedx_json(3).unwrap(),
    );
}

#[test]
fn schema_validation_catches_a_broken_document() {
    // Guards the validators themselves: a document missing required fields must fail.
    let cdx_validator = validator("bom-1.6.schema.json");
    assert!(!cdx_validator.is_valid(&serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "x"}]})));
    let spdx_validator = validator("spdx-2.3.schema.json");
    assert!(!spdx_validator.is_valid(&serde_json::json!({"spdxVersion": "SPDX-2.3"})));
}

#[test]
fn components_reflect_the_final_filesystem() {
    let result = scan_cold(&layout());
    let purls: Vec<&str> = result
        .components
        .iter()
        .filter_map(|c| c.purl.as_deref())
        .collect();
    let has = |prefix: &str| purls.iter().any(|p| p.starts_with(prefix));
    assert!(has("pkg:deb/debian/base-files@"), "{purls:#?}");
    assert!(
        has("pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib"),
        "{purls:#?}"
    );
    assert!(has("pkg:deb/debian/gosu@1.14-1%2Bb10"), "{purls:#?}");
    assert!(
        !has("pkg:deb/debian/tzdata@"),
        "tzdata was removed from the status file by layer 3"
    );
    assert!(has("pkg:maven/commons-cli/commons-cli@1.5.0"));
    assert!(
        has("pkg:maven/org.fusesource.jansi/jansi@2.4.0"),
        "nested jar inside the war"
    );
    assert!(has("pkg:pypi/six@1.17.0"));
    assert!(has("pkg:npm/ms@2.1.3"));
    assert!(has("pkg:npm/%40isaacs/string-locale-compare@1.1.0"));
    assert!(has("pkg:golang/stdlib@"), "Go toolchain as stdlib");
    assert!(
        purls.contains(&"pkg:golang/github.com/tianon/gosu"),
        "{purls:#?}"
    );

    let by_name = |name: &str| result.components.iter().find(|c| c.name == name).unwrap();
    // zlib1g has been in the status file since layer 0, though layer 3 rewrote the file.
    assert_eq!(by_name("zlib1g").layer_index, 0);
    assert_eq!(by_name("gosu").layer_index, 3);
    assert_eq!(
        by_name("zlib1g")
            .properties
            .get("stella:sourcePackage")
            .unwrap(),
        "zlib"
    );
    // The hard link carries the same jar: one component, two evidence paths.
    let cli = by_name("commons-cli:commons-cli");
    assert_eq!(cli.evidence.len(), 2, "{:?}", cli.evidence);
    assert_eq!(cli.layer_index, 1);

    // The damaged package.json is an unknown; the scan went on.
    assert!(
        result
            .unknowns
            .iter()
            .any(|u| u.path == "/usr/lib/node_modules/broken/package.json" && u.analyzer == "node"),
        "{:?}",
        result.unknowns
    );
    // Whiteout, opaque directory and duplicate entries.
    assert!(
        result.view.get("tmp/junk").is_none() && result.view.get("tmp/junk/cache.bin").is_none()
    );
    assert!(result.view.get("etc/stella/old.conf").is_none());
    assert_eq!(result.view.get("etc/stella/new.conf").unwrap().layer, 3);
    assert_eq!(
        result.view.resolve("/etc/os-release").unwrap(),
        "usr/lib/os-release"
    );
    assert_eq!(
        result
            .file_owners()
            .get("usr/sbin/gosu")
            .map(String::as_str),
        Some("gosu")
    );
    assert_eq!(result.distro.as_ref().unwrap().id, "debian");
}

#[test]
fn warm_scan_analyses_no_layer_and_gives_identical_sboms() {
    let cache = MemoryLayerCache::new();
    let options = ScanOptions::default();
    let cold = scan_path(&layout(), &options, &cache, &NoProgress).unwrap();
    assert_eq!(
        (cold.summary.layers_analysed, cold.summary.layers_reused),
        (4, 0)
    );
    let warm = scan_path(&layout(), &options, &cache, &NoProgress).unwrap();
    assert_eq!(
        (warm.summary.layers_analysed, warm.summary.layers_reused),
        (0, 4)
    );
    assert!(cold.to_cyclonedx_json().unwrap() == warm.to_cyclonedx_json().unwrap());
    assert!(cold.to_spdx_json().unwrap() == warm.to_spdx_json().unwrap());
    // The docker archive shares every layer (by diff_id) with the layout.
    let docker = scan_path(&docker_archive(), &options, &cache, &NoProgress).unwrap();
    assert_eq!(docker.summary.layers_analysed, 0);
    // The arm64 image shares both of its layers.
    let arm = ScanOptions {
        platform: Platform::parse("linux/arm64").unwrap(),
        ..ScanOptions::default()
    };
    let arm_result = scan_path(&layout(), &arm, &cache, &NoProgress).unwrap();
    assert_eq!(
        (
            arm_result.summary.layers_analysed,
            arm_result.summary.layers_reused
        ),
        (0, 2)
    );
    assert_eq!(arm_result.image.platform, "linux/arm64");
    assert!(
        cold.summary
            .to_string()
            .contains("layers analysed 4, reused 0")
    );
}

#[test]
fn corrupt_cache_entries_are_reanalysed() {
    struct Garbage;
    impl stella_scanner::LayerCache for Garbage {
        fn get(&self, _key: &stella_scanner::FragmentKey) -> Result<Option<Vec<u8>>, ScanError> {
            Ok(Some(b"not a fragment".to_vec()))
        }
        fn put(&self, _key: &stella_scanner::FragmentKey, _bytes: &[u8]) -> Result<(), ScanError> {
            Ok(())
        }
    }
    let result = scan_path(&layout(), &ScanOptions::default(), &Garbage, &NoProgress).unwrap();
    assert_eq!(result.summary.layers_analysed, 4);
}

#[test]
fn platform_not_in_index_is_named() {
    let options = ScanOptions {
        platform: Platform::parse("linux/s390x").unwrap(),
        ..ScanOptions::default()
    };
    let err = scan_path(&layout(), &options, &NoCache, &NoProgress).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ScanError::PlatformNotFound { .. }), "{text}");
    assert!(
        text.contains("linux/amd64") && text.contains("linux/arm64"),
        "{text}"
    );
}

#[test]
fn source_date_epoch_sets_timestamps() {
    let default = scan_cold(&layout());
    assert_eq!(
        default.image.timestamp, "2026-01-01T00:00:00Z",
        "from the image config"
    );
    let options = ScanOptions {
        source_date_epoch: Some(86_400),
        ..ScanOptions::default()
    };
    let pinned = scan_path(&layout(), &options, &NoCache, &NoProgress).unwrap();
    assert_eq!(pinned.image.timestamp, "1970-01-02T00:00:00Z");
    let cdx: Value = serde_json::from_slice(&pinned.to_cyclonedx_json().unwrap()).unwrap();
    assert_eq!(cdx["metadata"]["timestamp"], "1970-01-02T00:00:00Z");
}

fn layer_blob_paths(layout_dir: &Path) -> Vec<PathBuf> {
    let result = scan_cold(layout_dir);
    result
        .layers
        .iter()
        .map(|l| layout_dir.join("blobs/sha256").join(l.blob_digest.hex()))
        .collect()
}

#[test]
fn flipped_byte_in_a_layer_fails_naming_the_blob() {
    let temp = tempfile::tempdir().unwrap();
    let copy = copy_layout(temp.path());
    for (index, blob) in layer_blob_paths(&copy).into_iter().enumerate() {
        let original = fs::read(&blob).unwrap();
        let mut bytes = original.clone();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        fs::write(&blob, &bytes).unwrap();
        let err = scan_path(&copy, &ScanOptions::default(), &NoCache, &NoProgress).unwrap_err();
        let name = blob.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            matches!(err, ScanError::DigestMismatch { .. }),
            "layer {index}: {err}"
        );
        assert!(err.to_string().contains(&name), "layer {index}: {err}");
        fs::write(&blob, &original).unwrap();
    }
}

#[test]
fn truncated_or_extended_blob_fails_with_size_mismatch() {
    let temp = tempfile::tempdir().unwrap();
    let copy = copy_layout(temp.path());
    let blob = layer_blob_paths(&copy).remove(2);
    let mut bytes = fs::read(&blob).unwrap();
    bytes.extend_from_slice(&[0u8; 1024]);
    fs::write(&blob, &bytes).unwrap();
    let err = scan_path(&copy, &ScanOptions::default(), &NoCache, &NoProgress).unwrap_err();
    assert!(matches!(err, ScanError::SizeMismatch { .. }), "{err}");
}

#[test]
fn tampered_config_fails_naming_the_config() {
    let temp = tempfile::tempdir().unwrap();
    let copy = copy_layout(temp.path());
    let image_id = scan_cold(&copy).image.image_id;
    let config = copy.join("blobs/sha256").join(image_id.hex());
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("amd64", "AMD64");
    fs::write(&config, text).unwrap();
    let err = scan_path(&copy, &ScanOptions::default(), &NoCache, &NoProgress).unwrap_err();
    assert!(err.to_string().contains(image_id.as_str()), "{err}");
}

#[test]
fn docker_archive_layers_are_checked_against_diff_ids() {
    // Flip one byte inside a legacy `layer.tar` of the docker archive: there is
    // no compressed digest to check, so the diff_id check must catch it.
    let temp = tempfile::tempdir().unwrap();
    let mut bytes = fs::read(docker_archive()).unwrap();
    let needle = b"zlib1g";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at] = b'Z';
    let path = temp.path().join("tampered.tar");
    fs::write(&path, &bytes).unwrap();
    let err = scan_path(&path, &ScanOptions::default(), &NoCache, &NoProgress).unwrap_err();
    assert!(
        matches!(
            err,
            ScanError::DigestMismatch { .. } | ScanError::DiffIdMismatch { .. }
        ),
        "{err}"
    );
}

#[test]
fn limits_turn_big_files_into_unknowns() {
    let options = ScanOptions {
        limits: Limits {
            max_file_bytes: 1024,
            ..Limits::default()
        },
        ..ScanOptions::default()
    };
    let source = open_local(&layout()).unwrap();
    let result = scan(source.as_ref(), &options, &NoCache, &NoProgress).unwrap();
    assert!(
        result
            .unknowns
            .iter()
            .any(|u| u.path == "/usr/sbin/gosu" && u.reason.contains("limit"))
    );
}

#[test]
fn rpm_sqlite_database_written_by_rpm_is_read() {
    let result = scan_cold(&data_dir().join("fixture-rpm-oci"));
    let purls: Vec<&str> = result
        .components
        .iter()
        .filter_map(|c| c.purl.as_deref())
        .collect();
    assert!(
        purls.iter().any(|p| p.starts_with("pkg:rpm/stella-fixture-hello@1.0-1?arch=noarch&upstream=stella-fixture-hello-1.0-1.src.rpm")),
        "{purls:?}"
    );
    let greeter = result
        .components
        .iter()
        .find(|c| c.name == "stella-fixture-greeter")
        .unwrap();
    assert_eq!(greeter.version, "7:2.5-3");
    assert!(greeter.purl.as_deref().unwrap().contains("epoch=7"));
    assert_eq!(greeter.licenses, vec!["Apache-2.0"]);
    assert_eq!(
        result
            .file_owners()
            .get("usr/share/stella-fixture-hello/hello.txt")
            .map(String::as_str),
        Some("stella-fixture-hello")
    );
    assert!(result.unknowns.is_empty(), "{:?}", result.unknowns);
    let cdx = result.to_cyclonedx_json().unwrap();
    assert_valid(&validator("bom-1.6.schema.json"), &cdx, "rpm CycloneDX");
    assert_valid(
        &validator("spdx-2.3.schema.json"),
        &result.to_spdx_json().unwrap(),
        "rpm SPDX",
    );
    check_golden("fixture-rpm.cdx.json", &cdx);
}

#[test]
fn per_file_cache_reuses_results_by_content() {
    let cache = MemoryLayerCache::new();
    let cold = scan_path(&layout(), &ScanOptions::default(), &cache, &NoProgress).unwrap();
    assert!(cold.summary.files_analysed > 0);
    assert_eq!(cold.summary.files_reused, 0);
    // Without fragments every layer is read again, but no file is analysed again.
    cache.forget_fragments();
    let again = scan_path(&layout(), &ScanOptions::default(), &cache, &NoProgress).unwrap();
    assert_eq!(again.summary.layers_analysed, 4);
    assert_eq!(again.summary.files_analysed, 0);
    assert_eq!(again.summary.files_reused, cold.summary.files_analysed);
    assert!(again.to_cyclonedx_json().unwrap() == cold.to_cyclonedx_json().unwrap());
    assert!(again.to_spdx_json().unwrap() == cold.to_spdx_json().unwrap());
}

#[test]
fn parallel_and_sequential_layer_analysis_agree() {
    let run = |parallel_layers| {
        let options = ScanOptions {
            parallel_layers,
            ..ScanOptions::default()
        };
        scan_path(&layout(), &options, &NoCache, &NoProgress).unwrap()
    };
    let sequential = run(1);
    let parallel = run(4);
    assert!(sequential.to_cyclonedx_json().unwrap() == parallel.to_cyclonedx_json().unwrap());
    assert!(sequential.to_spdx_json().unwrap() == parallel.to_spdx_json().unwrap());
    assert_eq!(sequential.fragments, parallel.fragments);
}
