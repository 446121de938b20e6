//! A deterministic mutation run (a poor man's fuzzer that CI can afford): real source files and a
//! real kit, with bytes flipped, dropped and duplicated, must give errors, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use stella_importer::sources::SourceKind;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(4) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => {
                bytes.remove(at);
            }
            2 => {
                let end = (at + 1 + rng.below(64)).min(bytes.len());
                let chunk = bytes[at..end].to_vec();
                bytes.splice(at..at, chunk);
            }
            _ => bytes.truncate(at),
        }
    }
    bytes
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn mutated_sources_never_panic_a_parser() {
    let sources = repo().join("tests/data/sources");
    let cases: &[(SourceKind, &str)] = &[
        (SourceKind::Osv, "osv/pypa/PYSEC-2020-104.yaml"),
        (SourceKind::Osv, "osv/rustsec/RUSTSEC-2020-0105.md"),
        (SourceKind::Osv, "osv/go/GO-2020-0001.json"),
        (SourceKind::NodejsSecurityWg, "nodejs/npm/1.json"),
        (SourceKind::Nvd, "nvd/nvdcve-2.0-sample.json"),
        (SourceKind::DebianDsa, "debian/DSA/list"),
        (SourceKind::DebianJson, "debian-json/tracker-sample.json"),
        (SourceKind::AlpineSecdb, "alpine/v3.11/main.yaml"),
        (SourceKind::Kev, "kev/known_exploited_vulnerabilities.json"),
        (SourceKind::Epss, "epss/epss-daily.csv"),
        (SourceKind::Openvex, "openvex/document1.vex.json"),
        (SourceKind::Csaf, "csaf/CVE-2024-34500.json"),
        (SourceKind::CyclonedxVex, "cyclonedx-vex/case-4-vex.json"),
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for (kind, file) in cases {
        let original = std::fs::read(sources.join(file)).unwrap();
        let clean = kind.parse(file, &original);
        assert!(clean.records() > 0, "{file} parses to nothing");
        for _ in 0..150 {
            let mutated = mutate(&mut rng, &original);
            let _ = kind.parse(file, &mutated);
        }
    }
}

#[test]
fn mutated_kits_are_rejected_without_panicking() {
    let kit_dir = repo().join("tests/data/kit");
    let kit = std::fs::read(kit_dir.join("subset-kit-1.tar.zst")).unwrap();
    let trusted = stella_importer::TrustedKeys::from_texts([std::fs::read_to_string(
        kit_dir.join("test-kit.pub"),
    )
    .unwrap()
    .as_str()])
    .unwrap();
    let clock = stella_importer::FixedClock(
        stella_importer::manifest::parse_time("2027-01-01T00:00:00Z").unwrap(),
    );
    let limits = stella_importer::Limits::default();
    let reference = stella_importer::verify_kit(kit.as_slice(), &trusted, &clock, &limits).unwrap();
    // Mutating the compressed bytes and, more usefully, the tar inside them.
    let tar = zstd::decode_all(kit.as_slice()).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let mut accepted = 0;
    for round in 0..300 {
        let candidate = if round % 2 == 0 {
            mutate(&mut rng, &kit)
        } else {
            zstd::encode_all(mutate(&mut rng, &tar).as_slice(), 1).unwrap()
        };
        if let Ok(verified) =
            stella_importer::verify_kit(candidate.as_slice(), &trusted, &clock, &limits)
        {
            // Only mutations that leave every signed byte intact may pass (tar padding, header
            // fields such as mtime that are not content); what passes is exactly what was signed.
            accepted += 1;
            assert_eq!(verified.manifest_sha256, reference.manifest_sha256);
            assert_eq!(verified.advisories, reference.advisories);
            assert_eq!(verified.vex_claims, reference.vex_claims);
            assert_eq!(verified.epss, reference.epss);
        }
    }
    assert!(accepted < 30, "{accepted} of 300 mutated kits verified");
}
