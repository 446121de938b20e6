//! Every kit of the committed hostile corpus (`tests/data/hostile-kits/`, see its
//! `expected.json`) is rejected by the appliance's importer with its named reason, and the store
//! that already holds a generation is left exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use stella_core::FixedClock;
use stella_feeds::{FeedStore, ImportError, ImportOptions, ImportOutcome};
use stella_importer::{Limits, TrustedKeys};
use stella_store::Stores;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hostile-kits")
}

#[test]
fn each_hostile_kit_is_rejected_for_its_reason_and_the_store_is_unchanged() {
    let dir = corpus_dir();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let public =
        std::fs::read_to_string(dir.join(expected["trusted_key"].as_str().unwrap())).unwrap();
    let now = time::OffsetDateTime::parse(
        expected["now"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let clock = FixedClock(now.unix_timestamp() as u64);

    let data = tempfile::tempdir().unwrap();
    let stores = Stores::open(data.path()).unwrap();
    let feeds = FeedStore::open(data.path(), &stores.catalog).unwrap();
    let options = ImportOptions {
        trusted_keys: TrustedKeys::from_texts([public.as_str()]).unwrap(),
        limits: Limits::default(),
        dry_run: false,
        audit_dry_run: false,
        actor: "test".into(),
        origin: "hostile corpus".into(),
        request_id: None,
        quarantine_dir: Some(data.path().join("quarantine")),
    };
    // The untouched kit sets the channel head the corpus expects.
    let valid = std::fs::read(dir.join("valid.tar.zst")).unwrap();
    let loaded = feeds
        .import(&stores.catalog, &valid, &options, &clock)
        .unwrap();
    let ImportOutcome::Loaded(report) = loaded else {
        panic!("{loaded:?}")
    };
    assert_eq!(
        report.sequence,
        expected["channel_head_sequence"].as_u64().unwrap()
    );
    let baseline = feeds.current().unwrap().states().unwrap();

    let mut checked = 0;
    for kit in expected["kits"].as_array().unwrap() {
        let file = kit["file"].as_str().unwrap();
        let reason = kit["reason"].as_str().unwrap();
        if reason == "ok" {
            continue;
        }
        let bytes = std::fs::read(dir.join(file)).unwrap();
        match feeds.import(&stores.catalog, &bytes, &options, &clock) {
            Err(ImportError::Rejected(rejection)) => {
                // `*`: the corruption may surface as any named reason.
                if reason != "*" {
                    assert_eq!(rejection.reason, reason, "{file}: {}", rejection.message);
                }
                assert!(rejection.quarantined.is_some(), "{file}");
            }
            other => panic!("{file} ({}) was not rejected: {other:?}", kit["what"]),
        }
        assert_eq!(feeds.current().unwrap().number(), 1, "{file}");
        assert_eq!(
            feeds.current().unwrap().states().unwrap(),
            baseline,
            "{file}"
        );
        feeds.check_integrity(&stores.catalog).unwrap();
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} hostile kits");
    let rejected = feeds
        .imports(&stores.catalog, 100)
        .unwrap()
        .iter()
        .filter(|r| r.verdict.starts_with("rejected:"))
        .count();
    assert_eq!(rejected, checked);
}
