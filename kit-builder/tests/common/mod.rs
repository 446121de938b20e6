//! Shared helpers for the kit-builder integration tests: paths, keys, source lists.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use stella_importer::{KeyProtection, SigningKey, TrustedKeys};
use stella_kit_builder::{BuildOptions, SourceSpec};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn subsets() -> PathBuf {
    repo_root().join("tests/data/sources")
}

/// `../shared/data` beside the repository, when present.
pub fn shared_data() -> Option<PathBuf> {
    let path = repo_root().join("../shared/data");
    path.join("SOURCES.md").exists().then_some(path)
}

pub fn spec(kind: &str, path: &Path) -> SourceSpec {
    format!("{kind}={}", path.display()).parse().unwrap()
}

/// Every source kind over the real-data subsets (licence/revocations are added by the tests that
/// make them).
pub fn subset_specs() -> Vec<SourceSpec> {
    let s = subsets();
    vec![
        spec("osv", &s.join("osv")),
        spec("nodejs-security-wg", &s.join("nodejs")),
        spec("nvd", &s.join("nvd/nvdcve-2.0-sample.json")),
        spec("debian-dsa", &s.join("debian/DSA/list")),
        spec("debian-dla", &s.join("debian/DLA/list")),
        spec("debian-json", &s.join("debian-json/tracker-sample.json")),
        spec("alpine-secdb", &s.join("alpine")),
        spec("kev", &s.join("kev/known_exploited_vulnerabilities.json")),
        spec("epss", &s.join("epss/epss-semicolon.csv")),
        spec("openvex", &s.join("openvex")),
        spec("csaf", &s.join("csaf")),
        spec("cyclonedx-vex", &s.join("cyclonedx-vex")),
    ]
}

pub fn time(text: &str) -> time::OffsetDateTime {
    stella_importer::manifest::parse_time(text).unwrap()
}

pub fn options(sources: Vec<SourceSpec>, sequence: u64) -> BuildOptions {
    BuildOptions {
        sources,
        channel: "stable".into(),
        sequence,
        created: time("2026-11-01T00:00:00Z"),
        expires: time("2026-12-01T00:00:00Z"),
        bases: Vec::new(),
        base_keys: Vec::new(),
    }
}

pub struct TestKey {
    pub signing: SigningKey,
    pub trusted: TrustedKeys,
    pub secret_file: String,
    pub public_file: String,
}

pub fn key() -> TestKey {
    let pair = stella_importer::generate_key_pair(KeyProtection::Unencrypted, "test").unwrap();
    TestKey {
        signing: SigningKey::from_minisign_file_contents(&pair.secret_key_file, None).unwrap(),
        trusted: TrustedKeys::from_texts([pair.public_key_file.as_str()]).unwrap(),
        secret_file: pair.secret_key_file,
        public_file: pair.public_key_file,
    }
}

/// Extracts one entry from a `.tar.zst` kit.
pub fn extract(kit: &[u8], name: &str) -> Vec<u8> {
    use std::io::Read as _;
    let mut archive = tar::Archive::new(zstd::stream::read::Decoder::new(kit).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == name {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("{name} not in kit");
}
