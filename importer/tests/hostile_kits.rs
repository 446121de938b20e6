//! Hostile kits: each is rejected by `verify_kit` with its own named reason. The kits are crafted
//! here from a valid one (re-signed where the attack needs a signed manifest).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;

use stella_importer::canonical::to_canonical_json;
use stella_importer::manifest::{ContentKind, FileEntry, KitPath, Manifest, Sha256Hex, parse_time};
use stella_importer::model::{Advisory, EpssEntry, KevEntry};
use stella_importer::writer::{KitContents, KitParams, write_kit};
use stella_importer::{
    FixedClock, KeyProtection, KitError, Limits, SigningKey, TrustedKeys, generate_key_pair,
    verify_kit,
};

struct Keys {
    signing: SigningKey,
    trusted: TrustedKeys,
}

fn keys() -> Keys {
    let pair = generate_key_pair(KeyProtection::Unencrypted, "t").unwrap();
    Keys {
        signing: SigningKey::from_minisign_file_contents(&pair.secret_key_file, None).unwrap(),
        trusted: TrustedKeys::from_texts([pair.public_key_file.as_str()]).unwrap(),
    }
}

fn contents() -> KitContents {
    let mut advisory = Advisory::new("CVE-2021-44228", "osv:GHSA-jfh8-c2jp-5v3q");
    advisory.aliases.insert("GHSA-jfh8-c2jp-5v3q".into());
    advisory.summary = Some("Remote code injection in Log4j".into());
    KitContents {
        advisories: vec![advisory],
        kev: vec![KevEntry {
            cve: "CVE-2021-44228".into(),
            date_added: "2021-12-10".into(),
            due_date: None,
            ransomware: Some("Known".into()),
            vendor: None,
            product: None,
            name: None,
        }],
        epss: vec![EpssEntry {
            cve: "CVE-2021-44228".into(),
            score: 0.94,
            percentile: 0.99,
            date: None,
        }],
        ..KitContents::default()
    }
}

fn params() -> KitParams {
    KitParams {
        channel: "stable".into(),
        sequence: 5,
        created: parse_time("2026-11-01T00:00:00Z").unwrap(),
        expires: parse_time("2026-12-01T00:00:00Z").unwrap(),
        base: None,
        sources: vec![],
    }
}

fn now() -> FixedClock {
    FixedClock(parse_time("2026-11-15T00:00:00Z").unwrap())
}

/// One tar member of a crafted kit.
enum Item {
    File(String, Vec<u8>),
    Symlink(String, String),
    Hardlink(String, String),
    Fifo(String),
    CharDevice(String),
    Directory(String),
}

fn header(path: &str, entry_type: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    // Write the name bytes directly: `set_path` would refuse the hostile names we need.
    let name = &mut header.as_mut_bytes()[..100];
    name.fill(0);
    name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(entry_type);
    header.set_cksum();
    header
}

fn assemble(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        match item {
            Item::File(path, data) => builder
                .append(
                    &header(path, tar::EntryType::Regular, data.len() as u64),
                    data.as_slice(),
                )
                .unwrap(),
            Item::Symlink(path, target) | Item::Hardlink(path, target) => {
                let kind = if matches!(item, Item::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(path, kind, 0);
                h.set_link_name(target).unwrap();
                h.set_cksum();
                builder.append(&h, std::io::empty()).unwrap();
            }
            Item::Fifo(path) => builder
                .append(&header(path, tar::EntryType::Fifo, 0), std::io::empty())
                .unwrap(),
            Item::CharDevice(path) => builder
                .append(&header(path, tar::EntryType::Char, 0), std::io::empty())
                .unwrap(),
            Item::Directory(path) => builder
                .append(
                    &header(path, tar::EntryType::Directory, 0),
                    std::io::empty(),
                )
                .unwrap(),
        }
    }
    zstd::encode_all(builder.into_inner().unwrap().as_slice(), 3).unwrap()
}

/// A valid kit taken apart: manifest, and content files in order.
fn parts(keys: &Keys) -> (Manifest, Vec<(String, Vec<u8>)>) {
    let kit = write_kit(&contents(), &params(), &keys.signing).unwrap();
    let mut archive =
        tar::Archive::new(zstd::stream::read::Decoder::new(kit.archive.as_slice()).unwrap());
    let mut files = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if !path.starts_with("manifest.json") {
            files.push((path, data));
        }
    }
    (kit.manifest, files)
}

/// manifest.json + its signature (by `signer`) as the first two members.
fn signed_head(manifest: &Manifest, signer: &SigningKey) -> Vec<Item> {
    let bytes = to_canonical_json("manifest", manifest).unwrap();
    let signature = signer.sign(&bytes, "test");
    vec![
        Item::File("manifest.json".into(), bytes),
        Item::File("manifest.json.minisig".into(), signature.into_bytes()),
    ]
}

fn kit_with(
    keys: &Keys,
    manifest: &Manifest,
    files: &[(String, Vec<u8>)],
    extra: Vec<Item>,
) -> Vec<u8> {
    let mut items = signed_head(manifest, &keys.signing);
    items.extend(files.iter().map(|(p, d)| Item::File(p.clone(), d.clone())));
    items.extend(extra);
    assemble(&items)
}

fn verify(keys: &Keys, kit: &[u8]) -> Result<stella_importer::VerifiedKit, KitError> {
    verify_kit(kit, &keys.trusted, &now(), &Limits::default())
}

fn reason(result: Result<stella_importer::VerifiedKit, KitError>) -> &'static str {
    match result {
        Ok(_) => panic!("hostile kit was accepted"),
        Err(error) => error.reason(),
    }
}

#[test]
fn the_untouched_reassembled_kit_verifies() {
    let keys = keys();
    let (manifest, files) = parts(&keys);
    let kit = verify(&keys, &kit_with(&keys, &manifest, &files, vec![])).unwrap();
    assert_eq!(kit.advisories.len(), 1);
    assert_eq!(kit.epss[0].score, 0.94);
}

#[test]
fn unsafe_paths_and_entry_types_are_rejected() {
    let keys = keys();
    let (manifest, files) = parts(&keys);
    let cases: Vec<(Item, &str)> = vec![
        (
            Item::File("/etc/passwd".into(), b"x".to_vec()),
            "unsafe-path",
        ),
        (
            Item::File("../escape.json".into(), b"x".to_vec()),
            "unsafe-path",
        ),
        (
            Item::File("advisories/../../x".into(), b"x".to_vec()),
            "unsafe-path",
        ),
        (
            Item::Symlink("link.json".into(), "/etc/shadow".into()),
            "forbidden-entry-type",
        ),
        (
            Item::Hardlink("hard.json".into(), "manifest.json".into()),
            "forbidden-entry-type",
        ),
        (Item::Fifo("fifo.json".into()), "forbidden-entry-type"),
        (Item::CharDevice("dev.json".into()), "forbidden-entry-type"),
        (Item::Directory("advisories".into()), "forbidden-entry-type"),
        (
            Item::File("extra.json".into(), b"[]".to_vec()),
            "unlisted-file",
        ),
    ];
    for (item, expected) in cases {
        let kit = kit_with(&keys, &manifest, &files, vec![item]);
        assert_eq!(reason(verify(&keys, &kit)), expected);
    }
    // The same content file twice.
    let duplicate = vec![Item::File(files[0].0.clone(), files[0].1.clone())];
    assert_eq!(
        reason(verify(
            &keys,
            &kit_with(&keys, &manifest, &files, duplicate)
        )),
        "duplicate-entry"
    );
}

#[test]
fn swapped_missing_and_resized_files_are_rejected() {
    let keys = keys();
    let (manifest, files) = parts(&keys);
    let mut swapped = files.clone();
    let last = swapped[0].1.len() - 2;
    swapped[0].1[last] = if swapped[0].1[last] == b'1' {
        b'2'
    } else {
        b'1'
    };
    assert_eq!(
        reason(verify(&keys, &kit_with(&keys, &manifest, &swapped, vec![]))),
        "hash"
    );
    let mut resized = files.clone();
    resized[0].1.push(b' ');
    assert_eq!(
        reason(verify(&keys, &kit_with(&keys, &manifest, &resized, vec![]))),
        "size"
    );
    let missing: Vec<_> = files[1..].to_vec();
    assert_eq!(
        reason(verify(&keys, &kit_with(&keys, &manifest, &missing, vec![]))),
        "missing-file"
    );
}

#[test]
fn broken_compression_and_trailing_data_are_rejected() {
    let keys = keys();
    let (manifest, files) = parts(&keys);
    let good = kit_with(&keys, &manifest, &files, vec![]);
    let truncated = &good[..good.len() * 2 / 3];
    let error = verify(&keys, truncated).unwrap_err();
    assert!(
        matches!(
            error,
            KitError::Compression(_) | KitError::Tar(_) | KitError::Layout(_)
        ),
        "{error}"
    );
    let mut corrupt = good.clone();
    let at = corrupt.len() / 2;
    corrupt[at] ^= 0xff;
    assert!(verify(&keys, &corrupt).is_err());
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"appended after the zstd frame");
    assert!(matches!(
        verify(&keys, &trailing).unwrap_err(),
        KitError::Compression(_) | KitError::Layout(_)
    ));
    assert!(matches!(
        verify(&keys, b"not zstd at all").unwrap_err(),
        KitError::Compression(_)
    ));
}

#[test]
fn decompression_bombs_stop_at_the_limits() {
    let keys = keys();
    let (mut manifest, mut files) = parts(&keys);
    // A 64 MiB file of zeros, correctly listed and signed, compresses to a few KiB.
    let bomb = vec![0u8; 64 << 20];
    manifest.files.push(FileEntry {
        path: KitPath::parse("epss/0001.json").unwrap(),
        kind: ContentKind::Epss,
        sha256: Sha256Hex::of(&bomb),
        size: bomb.len() as u64,
        records: 0,
    });
    files.push(("epss/0001.json".into(), bomb));
    let kit = kit_with(&keys, &manifest, &files, vec![]);
    assert!(
        kit.len() < 1 << 20,
        "the bomb should compress well ({} bytes)",
        kit.len()
    );
    let limits = Limits {
        max_file_bytes: 1 << 20,
        ..Limits::default()
    };
    assert_eq!(
        reason(verify_kit(kit.as_slice(), &keys.trusted, &now(), &limits)),
        "limit"
    );
    let limits = Limits {
        max_total_bytes: 8 << 20,
        ..Limits::default()
    };
    assert_eq!(
        reason(verify_kit(kit.as_slice(), &keys.trusted, &now(), &limits)),
        "limit"
    );
    // A member whose header claims far more than the manifest is refused before it is read.
    let (manifest, files) = parts(&keys);
    let mut items = signed_head(&manifest, &keys.signing);
    items.push(Item::File(files[0].0.clone(), vec![0u8; 4 << 20]));
    assert_eq!(reason(verify(&keys, &assemble(&items))), "size");
}

#[test]
fn malformed_and_invalid_records_are_rejected() {
    let keys = keys();
    let (mut manifest, mut files) = parts(&keys);
    let epss_index = files
        .iter()
        .position(|(p, _)| p.starts_with("epss/"))
        .unwrap();
    for (bytes, expected) in [
        (
            br#"[{"cve":"CVE-2021-44228","score":2.5,"percentile":0.99}]"#.to_vec(),
            "outside 0..1",
        ),
        (
            br#"[{"cve":"CVE-2021-44228","score":0.5"#.to_vec(),
            "not a JSON array",
        ),
        (
            br#"[{"cve":"CVE-2021-44228","score":0.5,"percentile":0.5,"smuggled":1}]"#.to_vec(),
            "unknown field",
        ),
    ] {
        files[epss_index].1 = bytes.clone();
        let entry = manifest
            .files
            .iter_mut()
            .find(|f| f.path.as_str().starts_with("epss/"))
            .unwrap();
        entry.sha256 = Sha256Hex::of(&bytes);
        entry.size = bytes.len() as u64;
        let error = verify(&keys, &kit_with(&keys, &manifest, &files, vec![])).unwrap_err();
        assert_eq!(error.reason(), "validation", "{error}");
        assert!(error.to_string().contains(expected), "{error}");
    }
}

#[test]
fn signature_key_expiry_and_manifest_attacks_are_rejected() {
    let keys = keys();
    let (manifest, files) = parts(&keys);
    let good = kit_with(&keys, &manifest, &files, vec![]);
    // Expired: the clock is after `expires`.
    let late = FixedClock(parse_time("2026-12-01T00:00:00Z").unwrap());
    assert_eq!(
        reason(verify_kit(
            good.as_slice(),
            &keys.trusted,
            &late,
            &Limits::default()
        )),
        "expired"
    );
    // Signed by a key the verifier does not trust.
    let other = keys_other();
    assert_eq!(
        reason(verify_kit(
            good.as_slice(),
            &other.trusted,
            &now(),
            &Limits::default()
        )),
        "unknown-key"
    );
    let stranger = kit_with(&other, &manifest, &files, vec![]);
    assert_eq!(reason(verify(&keys, &stranger)), "unknown-key");
    // Manifest changed after signing (a replayed sequence bump): the old signature no longer fits.
    let mut bumped = manifest.clone();
    bumped.sequence = 99;
    let mut items = vec![Item::File(
        "manifest.json".into(),
        to_canonical_json("m", &bumped).unwrap(),
    )];
    items.push(Item::File(
        "manifest.json.minisig".into(),
        signed_head(&manifest, &keys.signing)
            .pop()
            .map(|i| match i {
                Item::File(_, d) => d,
                _ => unreachable!(),
            })
            .unwrap(),
    ));
    items.extend(files.iter().map(|(p, d)| Item::File(p.clone(), d.clone())));
    assert_eq!(reason(verify(&keys, &assemble(&items))), "signature");
    // Manifest not first.
    let mut items: Vec<Item> = files
        .iter()
        .map(|(p, d)| Item::File(p.clone(), d.clone()))
        .collect();
    items.extend(signed_head(&manifest, &keys.signing));
    assert_eq!(reason(verify(&keys, &assemble(&items))), "layout");
    // Signed but not canonical (pretty-printed): refused, so one manifest has one digest.
    let pretty = serde_json::to_vec_pretty(&manifest).unwrap();
    let mut items = vec![
        Item::File("manifest.json".into(), pretty.clone()),
        Item::File(
            "manifest.json.minisig".into(),
            keys.signing.sign(&pretty, "t").into_bytes(),
        ),
    ];
    items.extend(files.iter().map(|(p, d)| Item::File(p.clone(), d.clone())));
    assert_eq!(reason(verify(&keys, &assemble(&items))), "manifest");
    // Counts that disagree with the files.
    let mut miscounted = manifest.clone();
    miscounted.counts.insert(ContentKind::Advisories, 7);
    assert_eq!(
        reason(verify(&keys, &kit_with(&keys, &miscounted, &files, vec![]))),
        "manifest"
    );
    // No trusted keys configured at all.
    assert_eq!(
        reason(verify_kit(
            good.as_slice(),
            &TrustedKeys::default(),
            &now(),
            &Limits::default()
        )),
        "key"
    );
}

fn keys_other() -> Keys {
    keys()
}

#[test]
fn the_fuzz_entry_point_rejects_garbage_without_panicking() {
    let keys = keys();
    let (manifest, files) = parts(&keys);
    let good = kit_with(&keys, &manifest, &files, vec![]);
    // A well-formed kit signed by another key: gets as far as the signature check.
    assert_eq!(
        reason(stella_importer::verify::verify_kit_for_fuzzing(&good)),
        "unknown-key"
    );
    for garbage in [&b""[..], b"\x28\xb5\x2f\xfd", &good[..40]] {
        assert!(stella_importer::verify::verify_kit_for_fuzzing(garbage).is_err());
    }
}

#[test]
fn exit_codes_separate_the_failure_classes_and_freshness_flags_frozen_feeds() {
    let keys = keys();
    let (manifest, files) = parts(&keys);
    let good = kit_with(&keys, &manifest, &files, vec![]);
    let other = keys_other();
    let code =
        |result: Result<stella_importer::VerifiedKit, KitError>| result.unwrap_err().exit_code();
    assert_eq!(
        code(verify_kit(
            good.as_slice(),
            &other.trusted,
            &now(),
            &Limits::default()
        )),
        3
    );
    let mut swapped = files.clone();
    swapped[0].1[2] ^= 1;
    assert_eq!(
        code(verify(&keys, &kit_with(&keys, &manifest, &swapped, vec![]))),
        4
    );
    let late = FixedClock(parse_time("2027-01-01T00:00:00Z").unwrap());
    assert_eq!(
        code(verify_kit(
            good.as_slice(),
            &keys.trusted,
            &late,
            &Limits::default()
        )),
        6
    );
    let mut miscounted = manifest.clone();
    miscounted.counts.insert(ContentKind::Advisories, 9);
    assert_eq!(
        code(verify(&keys, &kit_with(&keys, &miscounted, &files, vec![]))),
        7
    );
    let tiny = Limits {
        max_total_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        code(verify_kit(good.as_slice(), &keys.trusted, &now(), &tiny)),
        8
    );
    let kit = verify(&keys, &good).unwrap();
    let head = stella_importer::ChannelHead {
        sequence: 9,
        manifest_sha256: kit.manifest_sha256.clone(),
    };
    assert_eq!(
        stella_importer::check_sequence(&kit, Some(&head))
            .unwrap_err()
            .exit_code(),
        5
    );

    // Created 2026-11-01: fresh after 10 days with a 14-day window, stale after 20.
    let max_age = time::Duration::days(14);
    let at = |day: &str| FixedClock(parse_time(day).unwrap());
    assert_eq!(
        stella_importer::freshness(&kit.manifest, &at("2026-11-11T00:00:00Z"), max_age).unwrap(),
        stella_importer::Freshness::Fresh
    );
    assert_eq!(
        stella_importer::freshness(&kit.manifest, &at("2026-11-21T00:00:00Z"), max_age).unwrap(),
        stella_importer::Freshness::Stale {
            age_seconds: 20 * 86_400
        }
    );
}
