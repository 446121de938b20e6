//! Rebuilds the committed golden kit (tests/data/kit) from the committed subsets and requires the
//! same bytes: reproducibility across runs and machines, not only within one process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use stella_importer::{FixedClock, Limits, SigningKey, TrustedKeys, verify_kit};

#[test]
fn golden_kit_is_rebuilt_byte_for_byte() {
    let dir = repo_root().join("tests/data/kit");
    let key = SigningKey::from_minisign_file_contents(
        &std::fs::read_to_string(dir.join("test-kit.key")).unwrap(),
        None,
    )
    .unwrap();
    let mut options = options(subset_specs(), 1);
    options.expires = time("2036-11-01T00:00:00Z");
    let report = stella_kit_builder::build(&options, &key, None).unwrap();
    let golden = std::fs::read(dir.join("subset-kit-1.tar.zst")).unwrap();
    assert!(
        report.kit.archive == golden,
        "rebuilt kit differs from tests/data/kit/subset-kit-1.tar.zst ({} vs {} bytes); if the format changed on purpose, run tests/data/kit/regenerate.sh",
        report.kit.archive.len(),
        golden.len()
    );
    assert_eq!(
        report.kit.archive_signature.as_bytes(),
        std::fs::read(dir.join("subset-kit-1.tar.zst.minisig")).unwrap()
    );
    let trusted = TrustedKeys::from_texts([std::fs::read_to_string(dir.join("test-kit.pub"))
        .unwrap()
        .as_str()])
    .unwrap();
    let kit = verify_kit(
        golden.as_slice(),
        &trusted,
        &FixedClock(time("2027-01-01T00:00:00Z")),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(kit.manifest.kit_id, report.kit.manifest.kit_id);
    assert!(
        kit.advisories
            .iter()
            .any(|a| a.id == "CVE-2020-16846" && a.kev.is_some())
    );
}
