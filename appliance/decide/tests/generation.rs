//! The same fixture through both advisory sources: a signed kit loaded into the feed store
//! (`stella_feeds::Generation`) and a `MemorySource` built from the same merged records must give
//! byte-identical reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use stella_core::FixedClock;
use stella_decide::{MemorySource, Policy, Snapshot, Subject, evaluate};
use stella_feeds::{FeedStore, ImportOptions, ImportOutcome};
use stella_importer::merge::merge_advisories;
use stella_importer::model::KevEntry;
use stella_importer::signing::{KeyProtection, generate_key_pair};
use stella_importer::sources::openvex;
use stella_importer::writer::{KitContents, KitParams, write_kit};
use stella_importer::{Limits, SigningKey, TrustedKeys};
use stella_store::Stores;

const CREATED: i64 = 1_780_000_000;

#[test]
fn generation_and_memory_source_give_the_same_report() {
    let kev = vec![KevEntry {
        cve: "CVE-2023-23916".into(),
        date_added: "2023-03-01".into(),
        due_date: None,
        ransomware: None,
        vendor: None,
        product: None,
        name: None,
    }];
    let (merged, _) = merge_advisories(common::e2e_records(), &kev, &[]);
    let vex =
        openvex::parse("node.openvex.json", &common::read("vex/node.openvex.json")).vex_claims;

    let mut memory = MemorySource::new();
    for advisory in &merged {
        memory.add_advisory(advisory.clone());
    }
    for claim in &vex {
        memory.add_vex_claim(claim.clone());
    }
    for entry in &kev {
        memory.add_kev(entry.clone());
    }

    let pair = generate_key_pair(KeyProtection::Unencrypted, "decide test").unwrap();
    let key = SigningKey::from_minisign_file_contents(&pair.secret_key_file, None).unwrap();
    let trusted = TrustedKeys::from_texts([pair.public_key_file.as_str()]).unwrap();
    let created = time::OffsetDateTime::from_unix_timestamp(CREATED).unwrap();
    let contents = KitContents {
        advisories: merged.clone(),
        vex_claims: vex.clone(),
        kev: kev.clone(),
        ..KitContents::default()
    };
    let params = KitParams {
        channel: "stable".into(),
        sequence: 1,
        created,
        expires: created + time::Duration::days(30),
        base: None,
        sources: Vec::new(),
    };
    let built = write_kit(&contents, &params, &key).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::open(dir.path()).unwrap();
    let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
    let options = ImportOptions {
        trusted_keys: trusted,
        limits: Limits::default(),
        dry_run: false,
        audit_dry_run: false,
        actor: "test".into(),
        origin: "decide.kit".into(),
        request_id: None,
        quarantine_dir: Some(dir.path().join("quarantine")),
    };
    let outcome = feeds
        .import(
            &stores.catalog,
            &built.archive,
            &options,
            &FixedClock(CREATED as u64 + 60),
        )
        .unwrap();
    assert!(matches!(outcome, ImportOutcome::Loaded(_)), "{outcome:?}");
    let generation = feeds.current().unwrap();

    let components = vec![
        common::debian("libcurl4", "curl", "7.74.0-1.3+deb11u5", "11"),
        common::debian("libssl1.1", "openssl", "1.1.1n-0+deb11u3", "11"),
        common::alpine("apache2", "2.4.39-r0", "3.11.6"),
        common::language("PyPI", "pypi", "urllib3", "1.26.4"),
        common::language("npm", "npm", "bassmaster", "1.5.1"),
        common::language("Go", "golang", "github.com/gin-gonic/gin", "v1.5.0"),
    ];
    let subject = Subject {
        sbom_digest: format!("sha256:{}", "c".repeat(64)),
        ..Subject::default()
    };
    let snapshot = Snapshot {
        kit_id: built.manifest.kit_id.clone(),
        sequence: built.manifest.sequence,
    };
    let policy = Policy::default_policy().unwrap();
    let clock = FixedClock(CREATED as u64 + 3_600);
    let from_store = evaluate(
        &subject,
        &components,
        &*generation,
        &[],
        &policy,
        &clock,
        &snapshot,
    )
    .unwrap();
    let from_memory = evaluate(
        &subject,
        &components,
        &memory,
        &[],
        &policy,
        &clock,
        &snapshot,
    )
    .unwrap();
    assert!(
        from_store.findings.len() > 10,
        "{}",
        from_store.findings.len()
    );
    assert!(from_store.findings.iter().any(|f| f.kev.is_some()));
    assert_eq!(
        from_store.to_canonical_json().unwrap(),
        from_memory.to_canonical_json().unwrap()
    );
    // The generation's per-package index: a second lookup hands out the same decoded records,
    // and a second evaluation through it gives the same bytes.
    let first = generation
        .shared_advisories_for_package("Debian", "curl")
        .unwrap();
    let second = generation
        .shared_advisories_for_package("Debian", "curl")
        .unwrap();
    assert!(!first.is_empty());
    assert!(std::sync::Arc::ptr_eq(&first, &second));
    assert!(first.windows(2).all(|pair| pair[0].id <= pair[1].id));
    let again = evaluate(
        &subject,
        &components,
        &*generation,
        &[],
        &policy,
        &clock,
        &snapshot,
    )
    .unwrap();
    assert_eq!(
        again.to_canonical_json().unwrap(),
        from_store.to_canonical_json().unwrap()
    );
}
