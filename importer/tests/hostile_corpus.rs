//! The committed corpus of hostile kits (tests/data/hostile-kits/), one file per attack, with the
//! reason each must be rejected for in `expected.json`. The corpus is generated here from the
//! committed test key, deterministically; the test fails if the committed files differ from what
//! the generator makes, and checks every committed file's verdict. Regenerate with
//! `STELLA_REGENERATE_HOSTILE_KITS=1 cargo test -p stella-importer --test hostile_corpus`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::path::{Path, PathBuf};

use stella_importer::canonical::to_canonical_json;
use stella_importer::manifest::{ContentKind, FileEntry, KitPath, Manifest, Sha256Hex, parse_time};
use stella_importer::model::{Advisory, EpssEntry, KevEntry};
use stella_importer::writer::{KitContents, KitParams, write_kit};
use stella_importer::{
    ChannelHead, FixedClock, Limits, SigningKey, TrustedKeys, check_sequence, verify_kit,
};

/// SHA-256 of 300 MiB of zero bytes (the bomb's content), precomputed with `sha256sum`.
const ZEROS_300_MIB_SHA256: &str =
    "17a88af83717f68b8bd97873ffcf022c8aed703416fe9b08e0fa9e3287692bf0";
const BOMB_BYTES: u64 = 300 << 20;

fn kit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/kit")
}

fn key(name: &str) -> SigningKey {
    SigningKey::from_minisign_file_contents(
        &std::fs::read_to_string(kit_dir().join(name)).unwrap(),
        None,
    )
    .unwrap()
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

fn params(sequence: u64, expires: &str) -> KitParams {
    KitParams {
        channel: "stable".into(),
        sequence,
        created: parse_time("2026-11-01T00:00:00Z").unwrap(),
        expires: parse_time(expires).unwrap(),
        base: None,
        sources: vec![],
    }
}

/// The instant the corpus is judged at.
fn clock() -> FixedClock {
    FixedClock(parse_time("2026-11-15T00:00:00Z").unwrap())
}

enum Item {
    File(String, Vec<u8>),
    Zeros(String, u64),
    Link(String, tar::EntryType, String),
    Special(String, tar::EntryType),
}

fn header(path: &str, entry_type: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    let name = &mut header.as_mut_bytes()[..100];
    name.fill(0);
    name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(1_793_491_200);
    header.set_entry_type(entry_type);
    header.set_cksum();
    header
}

fn assemble(items: Vec<Item>) -> Vec<u8> {
    let encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    let mut builder = tar::Builder::new(encoder);
    for item in items {
        match item {
            Item::File(path, data) => builder
                .append(
                    &header(&path, tar::EntryType::Regular, data.len() as u64),
                    data.as_slice(),
                )
                .unwrap(),
            Item::Zeros(path, size) => builder
                .append(
                    &header(&path, tar::EntryType::Regular, size),
                    std::io::repeat(0).take(size),
                )
                .unwrap(),
            Item::Link(path, kind, target) => {
                let mut h = header(&path, kind, 0);
                h.set_link_name(&target).unwrap();
                h.set_cksum();
                builder.append(&h, std::io::empty()).unwrap();
            }
            Item::Special(path, kind) => builder
                .append(&header(&path, kind, 0), std::io::empty())
                .unwrap(),
        }
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn parts(signer: &SigningKey, params: &KitParams) -> (Manifest, Vec<(String, Vec<u8>)>) {
    let kit = write_kit(&contents(), params, signer).unwrap();
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

fn head(manifest: &Manifest, signer: &SigningKey) -> Vec<Item> {
    let bytes = to_canonical_json("manifest", manifest).unwrap();
    let signature = signer.sign(&bytes, "hostile corpus");
    vec![
        Item::File("manifest.json".into(), bytes),
        Item::File("manifest.json.minisig".into(), signature.into_bytes()),
    ]
}

fn body(files: &[(String, Vec<u8>)]) -> Vec<Item> {
    files
        .iter()
        .map(|(p, d)| Item::File(p.clone(), d.clone()))
        .collect()
}

fn with(
    manifest: &Manifest,
    signer: &SigningKey,
    files: &[(String, Vec<u8>)],
    extra: Vec<Item>,
) -> Vec<u8> {
    let mut items = head(manifest, signer);
    items.extend(body(files));
    items.extend(extra);
    assemble(items)
}

fn relist(manifest: &mut Manifest, path: &str, bytes: &[u8]) {
    let entry = manifest
        .files
        .iter_mut()
        .find(|f| f.path.as_str() == path)
        .unwrap();
    entry.sha256 = Sha256Hex::of(bytes);
    entry.size = bytes.len() as u64;
}

/// (file name, kit bytes, expected reason, what it is). `rollback` cases verify and then fail
/// `check_sequence` against a channel head at sequence 5.
fn corpus() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let signer = key("test-kit.key");
    let stranger = key("../hostile-kits/untrusted-test.key");
    let normal = params(5, "2026-12-01T00:00:00Z");
    let (manifest, files) = parts(&signer, &normal);
    let epss = files
        .iter()
        .position(|(p, _)| p.starts_with("epss/"))
        .unwrap();
    let mut out = vec![
        (
            "valid.tar.zst",
            with(&manifest, &signer, &files, vec![]),
            "ok",
            "the untouched kit, reassembled",
        ),
        (
            "absolute-path.tar.zst",
            with(
                &manifest,
                &signer,
                &files,
                vec![Item::File("/etc/cron.d/x".into(), b"x".to_vec())],
            ),
            "unsafe-path",
            "member with an absolute path",
        ),
        (
            "dot-dot.tar.zst",
            with(
                &manifest,
                &signer,
                &files,
                vec![Item::File("advisories/../../x".into(), b"x".to_vec())],
            ),
            "unsafe-path",
            "member escaping with ..",
        ),
        (
            "symlink.tar.zst",
            with(
                &manifest,
                &signer,
                &files,
                vec![Item::Link(
                    "link.json".into(),
                    tar::EntryType::Symlink,
                    "/etc/shadow".into(),
                )],
            ),
            "forbidden-entry-type",
            "symlink member",
        ),
        (
            "hardlink.tar.zst",
            with(
                &manifest,
                &signer,
                &files,
                vec![Item::Link(
                    "hard.json".into(),
                    tar::EntryType::Link,
                    "manifest.json".into(),
                )],
            ),
            "forbidden-entry-type",
            "hardlink member",
        ),
        (
            "fifo.tar.zst",
            with(
                &manifest,
                &signer,
                &files,
                vec![Item::Special("fifo.json".into(), tar::EntryType::Fifo)],
            ),
            "forbidden-entry-type",
            "FIFO member",
        ),
        (
            "device.tar.zst",
            with(
                &manifest,
                &signer,
                &files,
                vec![Item::Special("dev.json".into(), tar::EntryType::Char)],
            ),
            "forbidden-entry-type",
            "character device member",
        ),
        (
            "duplicate.tar.zst",
            with(
                &manifest,
                &signer,
                &files,
                vec![Item::File(files[0].0.clone(), files[0].1.clone())],
            ),
            "duplicate-entry",
            "a listed file twice",
        ),
        (
            "unlisted.tar.zst",
            with(
                &manifest,
                &signer,
                &files,
                vec![Item::File("extra.json".into(), b"[]".to_vec())],
            ),
            "unlisted-file",
            "a file the manifest does not list",
        ),
        (
            "missing.tar.zst",
            with(&manifest, &signer, &files[1..], vec![]),
            "missing-file",
            "a listed file left out",
        ),
        (
            "expired.tar.zst",
            {
                let (m, f) = parts(&signer, &params(5, "2026-11-10T00:00:00Z"));
                with(&m, &signer, &f, vec![])
            },
            "expired",
            "expired on 2026-11-10, judged 2026-11-15",
        ),
        (
            "unknown-key.tar.zst",
            with(&manifest, &stranger, &files, vec![]),
            "unknown-key",
            "signed by a key that is not trusted",
        ),
        (
            "replayed-sequence.tar.zst",
            {
                let (m, f) = parts(&signer, &params(3, "2026-12-01T00:00:00Z"));
                with(&m, &signer, &f, vec![])
            },
            "rollback",
            "valid, but sequence 3 after the channel reached 5",
        ),
    ];
    let mut swapped = files.clone();
    let last = swapped[0].1.len() - 2;
    swapped[0].1[last] = if swapped[0].1[last] == b'1' {
        b'2'
    } else {
        b'1'
    };
    out.push((
        "swapped-after-signing.tar.zst",
        with(&manifest, &signer, &swapped, vec![]),
        "hash",
        "a content file changed after signing, same size",
    ));
    let mut resized = files.clone();
    resized[0].1.push(b' ');
    out.push((
        "resized.tar.zst",
        with(&manifest, &signer, &resized, vec![]),
        "size",
        "a content file one byte longer than signed",
    ));
    let good = with(&manifest, &signer, &files, vec![]);
    out.push((
        "truncated.tar.zst",
        good[..good.len() * 2 / 3].to_vec(),
        "compression",
        "zstd stream cut at two thirds",
    ));
    let mut corrupt = good.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    out.push((
        "corrupt-zstd.tar.zst",
        corrupt,
        "*",
        "one byte of the zstd stream flipped (rejected; the reason depends on where)",
    ));
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"appended after the zstd frame");
    out.push((
        "trailing-data.tar.zst",
        trailing,
        "compression",
        "bytes appended after the zstd frame",
    ));
    // Bomb: a 300 MiB file of zeros, correctly listed and signed, a few KiB compressed.
    let mut bomb_manifest = manifest.clone();
    bomb_manifest.files.push(FileEntry {
        path: KitPath::parse("epss/0001.json").unwrap(),
        kind: ContentKind::Epss,
        sha256: Sha256Hex::parse(ZEROS_300_MIB_SHA256).unwrap(),
        size: BOMB_BYTES,
        records: 0,
    });
    out.push((
        "bomb.tar.zst",
        with(
            &bomb_manifest,
            &signer,
            &files,
            vec![Item::Zeros("epss/0001.json".into(), BOMB_BYTES)],
        ),
        "limit",
        "300 MiB of zeros, over the 256 MiB per-file limit",
    ));
    // Signed manifest, edited afterwards.
    let mut edited = manifest.clone();
    edited.sequence = 99;
    let mut items = vec![Item::File(
        "manifest.json".into(),
        to_canonical_json("m", &edited).unwrap(),
    )];
    if let Item::File(_, signature) = head(&manifest, &signer).remove(1) {
        items.push(Item::File("manifest.json.minisig".into(), signature));
    }
    items.extend(body(&files));
    out.push((
        "manifest-edited.tar.zst",
        assemble(items),
        "signature",
        "manifest changed after signing",
    ));
    let mut items = body(&files);
    items.extend(head(&manifest, &signer));
    out.push((
        "manifest-last.tar.zst",
        assemble(items),
        "layout",
        "manifest not the first member",
    ));
    let pretty = serde_json::to_vec_pretty(&manifest).unwrap();
    let mut items = vec![
        Item::File("manifest.json".into(), pretty.clone()),
        Item::File(
            "manifest.json.minisig".into(),
            signer.sign(&pretty, "hostile corpus").into_bytes(),
        ),
    ];
    items.extend(body(&files));
    out.push((
        "manifest-not-canonical.tar.zst",
        assemble(items),
        "manifest",
        "signed, but not canonical JSON",
    ));
    let mut miscounted = manifest.clone();
    miscounted.counts.insert(ContentKind::Advisories, 7);
    out.push((
        "counts-mismatch.tar.zst",
        with(&miscounted, &signer, &files, vec![]),
        "manifest",
        "manifest counts disagree with the files",
    ));
    for (name, bytes, what) in [
        (
            "malformed-json.tar.zst",
            br#"[{"cve":"CVE-2021-44228","score":0.5"#.to_vec(),
            "a content file that is not JSON (signed as such)",
        ),
        (
            "invalid-record.tar.zst",
            br#"[{"cve":"CVE-2021-44228","score":2.5,"percentile":0.99}]"#.to_vec(),
            "an EPSS score of 2.5",
        ),
        (
            "unknown-field.tar.zst",
            br#"[{"cve":"CVE-2021-44228","score":0.5,"percentile":0.5,"smuggled":1}]"#.to_vec(),
            "a record with a field the model does not have",
        ),
    ] {
        let mut m = manifest.clone();
        let mut f = files.clone();
        relist(&mut m, &f[epss].0.clone(), &bytes);
        f[epss].1 = bytes;
        out.push((name, with(&m, &signer, &f, vec![]), "validation", what));
    }
    out
}

#[test]
fn committed_hostile_corpus_is_current_and_each_kit_fails_for_its_reason() {
    let dir = kit_dir().join("../hostile-kits");
    let corpus = corpus();
    if std::env::var_os("STELLA_REGENERATE_HOSTILE_KITS").is_some() {
        let mut index = Vec::new();
        for (name, bytes, reason, what) in &corpus {
            std::fs::write(dir.join(name), bytes).unwrap();
            index.push(serde_json::json!({"file": name, "reason": reason, "what": what}));
        }
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "trusted_key": "../kit/test-kit.pub",
            "now": "2026-11-15T00:00:00Z",
            "channel_head_sequence": 5,
            "kits": index,
        }))
        .unwrap();
        std::fs::write(dir.join("expected.json"), text + "\n").unwrap();
    }
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let listed = expected["kits"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        corpus.len(),
        "expected.json is stale; regenerate"
    );
    let trusted =
        TrustedKeys::from_texts([std::fs::read_to_string(kit_dir().join("test-kit.pub"))
            .unwrap()
            .as_str()])
        .unwrap();
    for (name, bytes, reason, _) in &corpus {
        let committed = std::fs::read(dir.join(name))
            .unwrap_or_else(|_| panic!("{name} missing; regenerate the corpus"));
        assert!(
            &committed == bytes,
            "{name} differs from the generator; regenerate the corpus"
        );
        let entry = listed.iter().find(|e| e["file"] == *name).unwrap();
        assert_eq!(entry["reason"], *reason);
        let result = verify_kit(committed.as_slice(), &trusted, &clock(), &Limits::default());
        match *reason {
            "ok" => {
                result.unwrap();
            }
            "rollback" => {
                let kit = result.unwrap();
                let head = ChannelHead {
                    sequence: 5,
                    manifest_sha256: Sha256Hex::of(b"head"),
                };
                assert_eq!(
                    check_sequence(&kit, Some(&head)).unwrap_err().reason(),
                    "rollback"
                );
            }
            "*" => assert!(result.is_err(), "{name} accepted"),
            "compression" => {
                let error = result.err().unwrap_or_else(|| panic!("{name} accepted"));
                assert!(
                    matches!(error.reason(), "compression" | "layout"),
                    "{name}: {error}"
                );
            }
            expected_reason => {
                let error = result.err().unwrap_or_else(|| panic!("{name} accepted"));
                assert_eq!(error.reason(), expected_reason, "{name}: {error}");
            }
        }
    }
}
