//! Delta kits: full kit + deltas loads to the same state as the equivalent full kit, deltas carry
//! only changes, name their base, and chain-check against the channel head.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use stella_importer::state::KitState;
use stella_importer::{
    ChannelHead, ContentKind, FixedClock, KitError, KitKind, Limits, VerifiedKit, check_sequence,
    verify_kit,
};

fn write_kit(dir: &Path, name: &str, report: &stella_kit_builder::BuildReport) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, &report.kit.archive).unwrap();
    path
}

fn verify(path: &Path, key: &TestKey) -> VerifiedKit {
    verify_kit(
        std::fs::read(path).unwrap().as_slice(),
        &key.trusted,
        &FixedClock(time("2026-11-10T00:00:00Z")),
        &Limits::default(),
    )
    .unwrap()
}

fn head(kit: &VerifiedKit) -> ChannelHead {
    ChannelHead {
        sequence: kit.manifest.sequence,
        manifest_sha256: kit.manifest_sha256.clone(),
    }
}

#[test]
fn full_plus_deltas_equals_the_equivalent_full_kit() {
    let key = key();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let s = subsets();
    // Generation 1: PyPA, Debian DSA, EPSS, OpenVEX.
    let pypa1 = w.join("pypa1");
    std::fs::create_dir(&pypa1).unwrap();
    for entry in std::fs::read_dir(s.join("osv/pypa")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, pypa1.join(path.file_name().unwrap())).unwrap();
    }
    let epss_text = std::fs::read_to_string(s.join("epss/epss-semicolon.csv")).unwrap();
    std::fs::write(w.join("epss1.csv"), &epss_text).unwrap();
    let gen1 = vec![
        spec("osv", &pypa1),
        spec("debian-dsa", &s.join("debian/DSA/list")),
        spec("epss", &w.join("epss1.csv")),
        spec("openvex", &s.join("openvex")),
    ];
    // Generation 2: one PyPA record gone, RustSec and NVD added (NVD changes a merged advisory),
    // one EPSS score changed and one row dropped, OpenVEX gone.
    let pypa2 = w.join("pypa2");
    std::fs::create_dir(&pypa2).unwrap();
    for entry in std::fs::read_dir(&pypa1).unwrap() {
        let path = entry.unwrap().path();
        if !path.ends_with("PYSEC-2021-335.yaml") {
            std::fs::copy(&path, pypa2.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut lines: Vec<String> = epss_text.lines().map(str::to_string).collect();
    let dropped_cve = lines.remove(0).split(';').next().unwrap().to_string();
    let changed_cve = lines[0].split(';').next().unwrap().to_string();
    lines[0] = format!("{changed_cve};0.123450000;0.543210000");
    std::fs::write(w.join("epss2.csv"), lines.join("\n")).unwrap();
    let gen2 = vec![
        spec("osv", &pypa2),
        spec("osv", &s.join("osv/rustsec")),
        spec("nvd", &s.join("nvd")),
        spec("debian-dsa", &s.join("debian/DSA/list")),
        spec("epss", &w.join("epss2.csv")),
    ];
    // Generation 3: generation 2 plus KEV and CycloneDX VEX.
    let mut gen3 = gen2.clone();
    gen3.push(spec("kev", &s.join("kev")));
    gen3.push(spec("cyclonedx-vex", &s.join("cyclonedx-vex")));

    let full1 = write_kit(
        w,
        "full1",
        &stella_kit_builder::build(&options(gen1, 1), &key.signing, None).unwrap(),
    );
    let full2 = write_kit(
        w,
        "full2",
        &stella_kit_builder::build(&options(gen2.clone(), 2), &key.signing, None).unwrap(),
    );
    let full3 = write_kit(
        w,
        "full3",
        &stella_kit_builder::build(&options(gen3.clone(), 3), &key.signing, None).unwrap(),
    );
    let mut delta2_options = options(gen2, 2);
    delta2_options.bases = vec![full1.clone()];
    let delta2 = write_kit(
        w,
        "delta2",
        &stella_kit_builder::build(&delta2_options, &key.signing, None).unwrap(),
    );
    let mut delta3_options = options(gen3, 3);
    delta3_options.bases = vec![full1.clone(), delta2.clone()];
    let delta3 = write_kit(
        w,
        "delta3",
        &stella_kit_builder::build(&delta3_options, &key.signing, None).unwrap(),
    );

    let (k1, k2, k3, d2, d3) = (
        verify(&full1, &key),
        verify(&full2, &key),
        verify(&full3, &key),
        verify(&delta2, &key),
        verify(&delta3, &key),
    );
    assert_eq!(d2.manifest.kind, KitKind::Delta);
    let base = d2.manifest.base.as_ref().unwrap();
    assert_eq!(
        (base.kit_id.as_str(), base.sequence),
        (k1.manifest.kit_id.as_str(), 1)
    );
    assert_eq!(base.manifest_sha256, k1.manifest_sha256);
    assert_eq!(
        d2.manifest.previous_manifest_sha256.as_ref(),
        Some(&k1.manifest_sha256)
    );
    assert_eq!(
        d3.manifest.base.as_ref().unwrap().manifest_sha256,
        d2.manifest_sha256
    );

    // Only changes travel.
    assert!(
        d2.advisories.len() < k2.advisories.len(),
        "{} vs {}",
        d2.advisories.len(),
        k2.advisories.len()
    );
    assert_eq!(d2.epss.len(), 1, "only the changed EPSS row");
    assert_eq!(d2.epss[0].cve, changed_cve);
    assert!(
        d2.removed
            .iter()
            .any(|r| r.kind == ContentKind::Epss && r.key == dropped_cve)
    );
    assert!(d2.removed.iter().any(|r| r.kind == ContentKind::VexClaims));
    assert!(
        d2.removed
            .iter()
            .any(|r| r.kind == ContentKind::Advisories && r.key == "CVE-2021-32807"),
        "{:?}",
        d2.removed
    );
    assert!(
        d2.advisories.iter().any(|a| a.id == "CVE-2020-16846"),
        "changed by NVD"
    );
    assert!(d3.advisories.len() < k3.advisories.len());
    assert!(d3.removed.is_empty());

    // Applying full + deltas gives exactly the state of the equivalent full kits.
    let mut state = KitState::default();
    state.apply(&k1).unwrap();
    assert_eq!(state, {
        let mut s = KitState::default();
        s.apply(&k1).unwrap();
        s
    });
    state.apply(&d2).unwrap();
    let mut expected2 = KitState::default();
    expected2.apply(&k2).unwrap();
    assert_eq!(state, expected2);
    state.apply(&d3).unwrap();
    let mut expected3 = KitState::default();
    expected3.apply(&k3).unwrap();
    assert_eq!(state, expected3);
    assert!(!state.kev.is_empty() && !state.vex_claims.is_empty());

    // Chain checks against the channel head.
    check_sequence(&k1, None).unwrap();
    check_sequence(&d2, Some(&head(&k1))).unwrap();
    check_sequence(&d3, Some(&head(&d2))).unwrap();
    assert!(matches!(
        check_sequence(&d3, Some(&head(&k1))),
        Err(KitError::BaseMismatch(_))
    ));
    assert!(matches!(
        check_sequence(&d2, None),
        Err(KitError::BaseMismatch(_))
    ));
    assert!(matches!(
        check_sequence(&k1, Some(&head(&d2))),
        Err(KitError::Rollback { .. })
    ));
    assert!(
        matches!(
            check_sequence(&k2, Some(&head(&k2))),
            Err(KitError::Rollback { .. })
        ),
        "re-import is not newer"
    );

    // A delta cannot be built with a sequence at or below its base.
    let mut stale = options(vec![spec("kev", &s.join("kev"))], 1);
    stale.bases = vec![full1];
    assert!(matches!(
        stella_kit_builder::build(&stale, &key.signing, None),
        Err(stella_kit_builder::BuildError::SequenceNotAfterBase { .. })
    ));
}
