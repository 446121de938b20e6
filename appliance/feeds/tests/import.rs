//! Loading kits into generations: the happy path, no-ops, every rejection leaving the stores
//! unchanged, delta kits matching the contract's reference state, and crash leftovers removed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use stella_core::FixedClock;
use stella_feeds::{FeedStore, ImportError, ImportOptions, ImportOutcome};
use stella_importer::manifest::KitBase;
use stella_importer::model::Affected;
use stella_importer::signing::{KeyProtection, generate_key_pair};
use stella_importer::state::KitState;
use stella_importer::writer::{BuiltKit, KitContents, KitParams, write_kit};
use stella_importer::{Advisory, Limits, SigningKey, TrustedKeys};
use stella_store::Stores;
use time::OffsetDateTime;

const CREATED: i64 = 1_780_000_000;
const DAY: i64 = 86_400;

struct Signer {
    key: SigningKey,
    trusted: TrustedKeys,
}

fn signer() -> Signer {
    let pair = generate_key_pair(KeyProtection::Unencrypted, "feeds test").unwrap();
    Signer {
        key: SigningKey::from_minisign_file_contents(&pair.secret_key_file, None).unwrap(),
        trusted: TrustedKeys::from_texts([pair.public_key_file.as_str()]).unwrap(),
    }
}

fn advisory(id: &str, package: &str, summary: &str) -> Advisory {
    let mut advisory = Advisory::new(id, format!("osv:{id}"));
    advisory.summary = Some(summary.to_owned());
    advisory.aliases.insert(format!("GHSA-{}", &id[4..]));
    advisory.affected.push(Affected {
        ecosystem: "PyPI".into(),
        package: package.into(),
        purl: Some(format!("pkg:pypi/{package}")),
        ranges: Vec::new(),
        requirements: Vec::new(),
        versions: vec!["1.0".into()],
        fixed: vec!["1.1".into()],
        distro: Vec::new(),
        source: format!("osv:{id}"),
    });
    advisory
}

fn contents(advisories: Vec<Advisory>) -> KitContents {
    KitContents {
        advisories,
        ..KitContents::default()
    }
}

fn kit(
    signer: &Signer,
    contents: &KitContents,
    sequence: u64,
    base: Option<&BuiltKit>,
) -> BuiltKit {
    let created = OffsetDateTime::from_unix_timestamp(CREATED + sequence as i64).unwrap();
    let params = KitParams {
        channel: "stable".into(),
        sequence,
        created,
        expires: created + time::Duration::days(30),
        base: base.map(|b| KitBase {
            kit_id: b.manifest.kit_id.clone(),
            sequence: b.manifest.sequence,
            manifest_sha256: b.manifest_sha256.clone(),
        }),
        sources: Vec::new(),
    };
    write_kit(contents, &params, &signer.key).unwrap()
}

fn options(signer: &Signer, quarantine: &Path) -> ImportOptions {
    ImportOptions {
        trusted_keys: signer.trusted.clone(),
        limits: Limits::default(),
        dry_run: false,
        audit_dry_run: false,
        actor: "test".into(),
        origin: "test.kit".into(),
        request_id: None,
        quarantine_dir: Some(quarantine.to_owned()),
    }
}

const NOW: FixedClock = FixedClock(CREATED as u64 + 3_600);

fn first_two() -> Vec<Advisory> {
    vec![
        advisory("CVE-2024-0001", "requests", "Header injection in requests"),
        advisory(
            "CVE-2024-0002",
            "urllib3",
            "Proxy credentials leak in urllib3",
        ),
    ]
}

#[test]
fn full_kit_loads_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let built = kit(&signer, &contents(first_two()), 1, None);
    {
        let stores = Stores::open(dir.path()).unwrap();
        let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
        assert!(feeds.current().is_none());
        let outcome = feeds
            .import(
                &stores.catalog,
                &built.archive,
                &options(&signer, &dir.path().join("q")),
                &NOW,
            )
            .unwrap();
        let ImportOutcome::Loaded(report) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(report.generation, Some(1));
        assert_eq!(report.totals.unwrap().advisories, 2);
        let generation = feeds.current().unwrap();
        let hits = generation
            .advisories_for_package("PyPI", "requests")
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].1.id, "CVE-2024-0001");
        assert_eq!(
            generation.advisories_by_alias("GHSA-2024-0002").unwrap()[0]
                .1
                .id,
            "CVE-2024-0002"
        );
        let found = generation.search("proxy credentials", 10).unwrap();
        assert_eq!(found.hits[0].id, "CVE-2024-0002");
        assert_eq!(
            generation.search("CVE-2024-0001", 10).unwrap().hits[0].id,
            "CVE-2024-0001"
        );
        assert_eq!(
            feeds.check_integrity(&stores.catalog).unwrap().unwrap().0,
            1
        );
        let fresh = feeds
            .freshness(&stores.catalog, NOW.0, 7 * DAY as u64)
            .unwrap();
        assert_eq!(fresh.len(), 1);
        assert!(!fresh[0].stale);
        let stale = feeds
            .freshness(&stores.catalog, NOW.0 + 8 * DAY as u64, 7 * DAY as u64)
            .unwrap();
        assert!(
            stale[0].stale,
            "an old but unexpired kit must show as stale"
        );
        let imports = feeds.imports(&stores.catalog, 10).unwrap();
        assert_eq!(imports[0].verdict, "loaded");
        assert_eq!(imports[0].sequence, Some(1));
    }
    let stores = Stores::open(dir.path()).unwrap();
    let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
    assert_eq!(feeds.current().unwrap().number(), 1);
    assert_eq!(stores.catalog.audit_count("kit.import").unwrap(), 1);
}

#[test]
fn reimport_is_a_no_op_and_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let built = kit(&signer, &contents(first_two()), 1, None);
    let stores = Stores::open(dir.path()).unwrap();
    let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
    let mut dry = options(&signer, &dir.path().join("q"));
    dry.dry_run = true;
    let outcome = feeds
        .import(&stores.catalog, &built.archive, &dry, &NOW)
        .unwrap();
    assert!(matches!(outcome, ImportOutcome::Verified(_)), "{outcome:?}");
    assert!(feeds.current().is_none());
    assert!(feeds.imports(&stores.catalog, 10).unwrap().is_empty());
    assert_eq!(std::fs::read_dir(feeds.dir()).unwrap().count(), 0);

    let opts = options(&signer, &dir.path().join("q"));
    feeds
        .import(&stores.catalog, &built.archive, &opts, &NOW)
        .unwrap();
    let again = feeds
        .import(&stores.catalog, &built.archive, &opts, &NOW)
        .unwrap();
    assert!(
        matches!(again, ImportOutcome::AlreadyImported(_)),
        "{again:?}"
    );
    assert_eq!(feeds.current().unwrap().number(), 1);
    assert_eq!(
        feeds.imports(&stores.catalog, 10).unwrap()[0].verdict,
        "already-imported"
    );
}

/// An audited dry run (the console's upload step) writes its verdict to the trail and the audit
/// log, quarantines a rejected kit, and loads nothing.
#[test]
fn audited_dry_run_records_the_verdict_and_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let quarantine = dir.path().join("q");
    let signer = signer();
    let built = kit(&signer, &contents(first_two()), 1, None);
    let stores = Stores::open(dir.path()).unwrap();
    let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
    let mut verify = options(&signer, &quarantine);
    verify.dry_run = true;
    verify.audit_dry_run = true;
    let outcome = feeds
        .import(&stores.catalog, &built.archive, &verify, &NOW)
        .unwrap();
    assert!(matches!(outcome, ImportOutcome::Verified(_)), "{outcome:?}");
    assert!(feeds.current().is_none());
    assert_eq!(std::fs::read_dir(feeds.dir()).unwrap().count(), 0);
    let imports = feeds.imports(&stores.catalog, 10).unwrap();
    assert_eq!(imports[0].verdict, "verified");
    assert_eq!(imports[0].sequence, Some(1));
    assert!(
        imports[0].detail.contains("\"records\""),
        "{}",
        imports[0].detail
    );

    let Err(ImportError::Rejected(rejection)) =
        feeds.import(&stores.catalog, b"not a kit", &verify, &NOW)
    else {
        panic!("garbage verified");
    };
    assert!(rejection.quarantined.expect("quarantined").exists());
    assert!(feeds.current().is_none());
    let imports = feeds.imports(&stores.catalog, 10).unwrap();
    assert!(imports[0].verdict.starts_with("rejected:"), "{imports:?}");
    assert_eq!(stores.catalog.audit_count("kit.import").unwrap(), 2);
}

/// Every rejection names its reason, quarantines the kit, and leaves generation 1 current and
/// intact.
#[test]
fn rejections_leave_the_stores_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let quarantine = dir.path().join("q");
    let signer = signer();
    let stranger = signer_other();
    let stores = Stores::open(dir.path()).unwrap();
    let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
    let opts = options(&signer, &quarantine);
    let first = kit(&signer, &contents(first_two()), 5, None);
    feeds
        .import(&stores.catalog, &first.archive, &opts, &NOW)
        .unwrap();
    let baseline = feeds.current().unwrap().states().unwrap_or_default();

    let older = kit(
        &signer,
        &contents(vec![advisory("CVE-2024-0003", "flask", "x")]),
        4,
        None,
    );
    let by_stranger = kit(&stranger, &contents(first_two()), 6, None);
    let mut tampered = kit(&signer, &contents(first_two()), 7, None).archive;
    let last = tampered.len() - 10;
    tampered[last] ^= 0x55;
    let truncated = {
        let archive = kit(&signer, &contents(first_two()), 8, None).archive;
        archive[..archive.len() / 2].to_vec()
    };
    let cases: Vec<(&str, Vec<u8>, FixedClock)> = vec![
        ("rollback", older.archive.clone(), NOW),
        ("unknown-key", by_stranger.archive.clone(), NOW),
        (
            "expired",
            kit(&signer, &contents(first_two()), 9, None).archive,
            FixedClock(NOW.0 + 40 * DAY as u64),
        ),
        ("compression", truncated, NOW),
        ("garbage", b"not a kit at all".to_vec(), NOW),
        ("tampered", tampered, NOW),
    ];
    for (name, bytes, clock) in cases {
        let err = feeds
            .import(&stores.catalog, &bytes, &opts, &clock)
            .unwrap_err();
        let stella_feeds::ImportError::Rejected(rejection) = err else {
            panic!("{name}: store error {err}")
        };
        if ["rollback", "unknown-key", "expired"].contains(&name) {
            assert_eq!(rejection.reason, name, "{name}: {}", rejection.message);
        }
        assert!(!rejection.message.is_empty());
        let quarantined = rejection.quarantined.expect("quarantined");
        assert_eq!(std::fs::read(&quarantined).unwrap(), bytes, "{name}");
        assert_eq!(feeds.current().unwrap().number(), 1, "{name}");
        assert_eq!(
            feeds.current().unwrap().states().unwrap(),
            baseline,
            "{name}"
        );
        feeds.check_integrity(&stores.catalog).unwrap();
    }
    let trail = feeds.imports(&stores.catalog, 20).unwrap();
    assert_eq!(trail.len(), 7);
    assert!(
        trail
            .iter()
            .filter(|r| r.verdict.starts_with("rejected:"))
            .count()
            == 6
    );
}

fn signer_other() -> Signer {
    signer()
}

#[test]
fn delta_kit_reaches_the_reference_state() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let stores = Stores::open(dir.path()).unwrap();
    let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
    let opts = options(&signer, &dir.path().join("q"));

    let v1 = contents(first_two());
    let full1 = kit(&signer, &v1, 1, None);
    let mut v2_advisories = first_two();
    v2_advisories[0].summary = Some("Header injection in requests (revised)".into());
    v2_advisories.remove(1);
    v2_advisories.push(advisory("CVE-2024-0003", "flask", "Session fixation"));
    let v2 = contents(v2_advisories);
    let delta_contents = KitState::from_contents(&v1).delta_to(&KitState::from_contents(&v2));
    let delta = kit(&signer, &delta_contents, 2, Some(&full1));

    feeds
        .import(&stores.catalog, &full1.archive, &opts, &NOW)
        .unwrap();
    let outcome = feeds
        .import(&stores.catalog, &delta.archive, &opts, &NOW)
        .unwrap();
    assert!(matches!(outcome, ImportOutcome::Loaded(_)), "{outcome:?}");
    let states = feeds.current().unwrap().states().unwrap();
    assert_eq!(states["stable"], KitState::from_contents(&v2));
    assert_eq!(feeds.current().unwrap().number(), 2);
    // The replaced generation's directory is gone.
    let names: Vec<_> = std::fs::read_dir(feeds.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["gen-0000000002".to_owned()]);
    feeds.check_integrity(&stores.catalog).unwrap();
}

#[test]
fn leftovers_of_a_crash_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    {
        let stores = Stores::open(dir.path()).unwrap();
        let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
        let built = kit(&signer, &contents(first_two()), 1, None);
        feeds
            .import(
                &stores.catalog,
                &built.archive,
                &options(&signer, &dir.path().join("q")),
                &NOW,
            )
            .unwrap();
    }
    let feeds_dir = dir.path().join("feeds");
    std::fs::create_dir_all(feeds_dir.join("gen-0000000002.partial/index")).unwrap();
    std::fs::write(feeds_dir.join("gen-0000000002.partial/feeds.redb"), b"half").unwrap();
    std::fs::create_dir_all(feeds_dir.join("gen-0000000003")).unwrap();
    let stores = Stores::open(dir.path()).unwrap();
    let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
    let names: Vec<_> = std::fs::read_dir(&feeds_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["gen-0000000001".to_owned()]);
    assert_eq!(feeds.current().unwrap().number(), 1);
    feeds.check_integrity(&stores.catalog).unwrap();
}

/// A kit may carry a key update signed by a key trusted now; later kits are then verified
/// against the rotated set, across restarts, and the retired key is refused.
#[test]
fn key_rotation_through_a_signed_key_update() {
    use stella_importer::keyupdate::{KeyUpdate, sign_key_update};
    let dir = tempfile::tempdir().unwrap();
    let old = signer();
    let new_pair = generate_key_pair(KeyProtection::Unencrypted, "new").unwrap();
    let new = Signer {
        key: SigningKey::from_minisign_file_contents(&new_pair.secret_key_file, None).unwrap(),
        trusted: TrustedKeys::from_texts([new_pair.public_key_file.as_str()]).unwrap(),
    };
    let new_key_line = new_pair.public_key_file.lines().nth(1).unwrap().to_owned();
    let update = sign_key_update(
        KeyUpdate {
            format: String::new(),
            sequence: 1,
            issued: "2026-06-01T00:00:00Z".into(),
            add: vec![new_key_line],
            remove: vec![old.key.key_id()],
        },
        &old.key,
    )
    .unwrap();
    let mut rotating = contents(first_two());
    rotating.key_updates.push(update);
    // Only the old key is configured.
    let opts = options(&old, &dir.path().join("q"));
    {
        let stores = Stores::open(dir.path()).unwrap();
        let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
        feeds
            .import(
                &stores.catalog,
                &kit(&old, &rotating, 1, None).archive,
                &opts,
                &NOW,
            )
            .unwrap();
        assert_eq!(
            feeds
                .check_integrity(&stores.catalog)
                .unwrap()
                .unwrap()
                .1
                .key_updates,
            1
        );
    }
    let stores = Stores::open(dir.path()).unwrap();
    let feeds = FeedStore::open(dir.path(), &stores.catalog).unwrap();
    let by_old = feeds.import(
        &stores.catalog,
        &kit(&old, &contents(first_two()), 2, None).archive,
        &opts,
        &NOW,
    );
    match by_old {
        Err(stella_feeds::ImportError::Rejected(r)) => {
            assert_eq!(r.reason, "unknown-key", "{}", r.message)
        }
        other => panic!("the retired key was accepted: {other:?}"),
    }
    let by_new = feeds
        .import(
            &stores.catalog,
            &kit(&new, &contents(first_two()), 3, None).archive,
            &opts,
            &NOW,
        )
        .unwrap();
    assert!(matches!(by_new, ImportOutcome::Loaded(_)), "{by_new:?}");
}
