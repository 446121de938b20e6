//! CycloneDX 1.6 Protobuf output: decodes with prost, carries the same facts as
//! the JSON, and is read by an independent implementation (`protoc --decode`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use prost::Message;
use stella_scanner::sbom::cyclonedx_pb::Bom;
use stella_scanner::{NoCache, NoProgress, ScanOptions, scan_path};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> stella_scanner::ScanResult {
    let layout = manifest_dir().join("../../tests/data/scanner/fixture-oci");
    scan_path(&layout, &ScanOptions::default(), &NoCache, &NoProgress).unwrap()
}

#[test]
fn protobuf_round_trips_and_matches_json() {
    let result = fixture();
    let bytes = result.to_cyclonedx_protobuf().unwrap();
    assert_eq!(
        bytes,
        result.to_cyclonedx_protobuf().unwrap(),
        "deterministic"
    );
    let bom = Bom::decode(bytes.as_slice()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&result.to_cyclonedx_json().unwrap()).unwrap();
    assert_eq!(bom.spec_version, "1.6");
    assert_eq!(bom.serial_number.as_deref(), json["serialNumber"].as_str());
    assert_eq!(
        bom.components.len(),
        json["components"].as_array().unwrap().len()
    );
    for (proto, json) in bom
        .components
        .iter()
        .zip(json["components"].as_array().unwrap())
    {
        assert_eq!(proto.bom_ref.as_deref(), json["bom-ref"].as_str());
        assert_eq!(proto.purl.as_deref(), json["purl"].as_str());
        assert_eq!(
            proto.properties.len(),
            json["properties"].as_array().unwrap().len()
        );
    }
    assert_eq!(bom.external_references.len(), result.layers.len());
    let seconds = bom.metadata.unwrap().timestamp.unwrap().seconds;
    assert_eq!(
        seconds, 1_767_225_600,
        "2026-01-01T00:00:00Z from the image config"
    );
}

#[test]
fn protoc_decodes_the_protobuf() {
    let have_protoc = Command::new("protoc").arg("--version").output().is_ok();
    if !have_protoc {
        assert!(
            std::env::var_os("CI").is_none(),
            "protoc (Debian protobuf-compiler) is required in CI"
        );
        eprintln!(
            "SKIP protoc_decodes_the_protobuf: protoc not installed (apt-get install protobuf-compiler)"
        );
        return;
    }
    let bytes = fixture().to_cyclonedx_protobuf().unwrap();
    let proto_dir: &Path = &manifest_dir().join("proto");
    let mut child = Command::new("protoc")
        .arg(format!("--proto_path={}", proto_dir.display()))
        .arg("--decode=cyclonedx.v1_6.Bom")
        .arg("bom-1.6.proto")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("spec_version: \"1.6\""), "{text}");
    assert!(
        text.contains("purl: \"pkg:maven/commons-cli/commons-cli@1.5.0\""),
        "{text}"
    );
    assert!(text.contains("type: CLASSIFICATION_CONTAINER"), "{text}");
    assert!(text.contains("type: EXTERNAL_REFERENCE_TYPE_BOM"), "{text}");
}
