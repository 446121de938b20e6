//! Hostile layer tars: path traversal, absolute paths, traversing hard links,
//! garbage and truncation must give named errors, never a panic or an escape.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use stella_scanner::analyzer::registry;
use stella_scanner::layer::{EntryKind, read_layer_tar};
use stella_scanner::{Digest, Limits, ScanError};

/// Writes a tar entry with a raw (unchecked) name, bypassing the tar crate's own path checks.
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    raw_entry_with(out, tar::Header::new_old(), name, kind, link, data);
}

fn raw_entry_with(
    out: &mut Vec<u8>,
    mut header: tar::Header,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    {
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_entry_type(kind);
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

fn read(bytes: &[u8]) -> Result<stella_scanner::LayerFragment, ScanError> {
    let diff_id = Digest::of_bytes(bytes);
    let analyzers = registry();
    read_layer_tar(bytes, &diff_id, &analyzers, "test", &Limits::default())
}

#[test]
fn dot_dot_entry_is_rejected_by_name() {
    let mut tar = Vec::new();
    raw_entry(&mut tar, "ok.txt", tar::EntryType::Regular, "", b"fine");
    raw_entry(
        &mut tar,
        "a/../../etc/passwd",
        tar::EntryType::Regular,
        "",
        b"root::0:0",
    );
    let err = read(&finish(tar)).unwrap_err();
    assert!(matches!(err, ScanError::UnsafeEntry { .. }), "{err}");
    assert!(err.to_string().contains("a/../../etc/passwd"), "{err}");
}

#[test]
fn absolute_entry_is_rejected_by_name() {
    let mut tar = Vec::new();
    raw_entry(&mut tar, "/etc/shadow", tar::EntryType::Regular, "", b"x");
    let err = read(&finish(tar)).unwrap_err();
    assert!(
        matches!(
            err,
            ScanError::UnsafeEntry {
                reason: "absolute path",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn hard_link_out_of_the_root_is_rejected() {
    let mut tar = Vec::new();
    raw_entry(
        &mut tar,
        "evil",
        tar::EntryType::Link,
        "../../etc/passwd",
        b"",
    );
    let err = read(&finish(tar)).unwrap_err();
    assert!(matches!(err, ScanError::UnsafeEntry { .. }), "{err}");
}

#[test]
fn symlink_out_of_the_root_is_kept_verbatim_and_resolved_inside() {
    let mut tar = Vec::new();
    raw_entry(&mut tar, "etc/", tar::EntryType::Directory, "", b"");
    raw_entry(
        &mut tar,
        "etc/passwd",
        tar::EntryType::Regular,
        "",
        b"image's own",
    );
    raw_entry(
        &mut tar,
        "link",
        tar::EntryType::Symlink,
        "../../../../etc/passwd",
        b"",
    );
    let fragment = read(&finish(tar)).unwrap();
    let link = fragment.entries.iter().find(|e| e.path == "link").unwrap();
    assert!(
        matches!(&link.kind, EntryKind::Symlink { target } if target == "../../../../etc/passwd")
    );
    let mut view = stella_scanner::MergedView::new();
    view.apply_layer(0, &fragment.entries);
    assert_eq!(view.resolve("link").unwrap(), "etc/passwd");
}

#[test]
fn duplicate_entries_last_wins_including_results() {
    let mut tar = Vec::new();
    raw_entry(
        &mut tar,
        "node_modules/a/package.json",
        tar::EntryType::Regular,
        "",
        br#"{"name":"a","version":"1.0.0"}"#,
    );
    raw_entry(
        &mut tar,
        "node_modules/a/package.json",
        tar::EntryType::Regular,
        "",
        br#"{"name":"a","version":"2.0.0"}"#,
    );
    let fragment = read(&finish(tar)).unwrap();
    let result = fragment.results.get("node_modules/a/package.json").unwrap();
    assert_eq!(result.components.len(), 1);
    assert_eq!(result.components[0].version, "2.0.0");
}

#[test]
fn garbage_and_truncation_are_errors_not_panics() {
    // Pseudo-random garbage, deterministic.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state & 0xff) as u8
        })
        .collect();
    assert!(read(&garbage).is_err());
    let mut tar = Vec::new();
    raw_entry(
        &mut tar,
        "big.bin",
        tar::EntryType::Regular,
        "",
        &[7u8; 2000],
    );
    let truncated = &tar[..1200];
    let err = read(truncated).unwrap_err();
    assert!(matches!(err, ScanError::LayerRead { .. }), "{err}");
}

#[test]
fn too_many_entries_hit_the_limit() {
    let mut tar = Vec::new();
    for i in 0..20 {
        raw_entry(&mut tar, &format!("f{i}"), tar::EntryType::Regular, "", b"");
    }
    let diff_id = Digest::of_bytes(&tar);
    let limits = Limits {
        max_layer_entries: 10,
        ..Limits::default()
    };
    let err = read_layer_tar(&finish(tar)[..], &diff_id, &registry(), "test", &limits).unwrap_err();
    assert!(matches!(err, ScanError::LimitExceeded { .. }), "{err}");
}

#[test]
fn same_jar_in_two_layers_is_analysed_once_with_its_own_evidence() {
    use stella_scanner::layer::{FileStats, read_layer_tar_with};
    let jar = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/scanner/fixture-oci/oci-layout"),
    )
    .unwrap();
    // Any content works for the cache; a non-zip "jar" yields an unknown naming its path.
    let cache = stella_scanner::MemoryLayerCache::new();
    let mut stats = FileStats::default();
    let mut first = Vec::new();
    raw_entry(&mut first, "a/lib.jar", tar::EntryType::Regular, "", &jar);
    let mut second = Vec::new();
    raw_entry(&mut second, "b/lib.jar", tar::EntryType::Regular, "", &jar);
    let analyzers = registry();
    for (tar, path) in [(finish(first), "a/lib.jar"), (finish(second), "b/lib.jar")] {
        let fragment = read_layer_tar_with(
            &tar[..],
            &Digest::of_bytes(&tar),
            &analyzers,
            "test",
            &Limits::default(),
            &cache,
            &mut stats,
        )
        .unwrap();
        let result = fragment.results.get(path).unwrap();
        assert!(
            result.unknowns[0].reason.starts_with(path),
            "{:?}",
            result.unknowns
        );
    }
    assert_eq!((stats.analysed, stats.reused), (1, 1));
}

#[test]
fn huge_long_name_entry_is_refused_before_buffering() {
    // A GNU long-name entry declaring 4 GiB: the tar crate would buffer it whole.
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    header.set_size(4 << 30);
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_mode(0o644);
    header.set_cksum();
    let mut tar = header.as_bytes().to_vec();
    tar.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let err = read(&tar).unwrap_err();
    assert!(matches!(err, ScanError::LimitExceeded { .. }), "{err}");
    assert!(err.to_string().contains("tar metadata entry"), "{err}");
}

#[test]
fn pax_size_records_keep_the_guard_aligned() {
    // A PAX header whose `size` overrides the ustar size of the next entry; the
    // data then holds bytes that would look like a huge long-name header if the
    // guard lost its alignment.
    let mut tar = Vec::new();
    raw_entry_with(
        &mut tar,
        tar::Header::new_ustar(),
        "PaxHeaders/f",
        tar::EntryType::XHeader,
        "",
        b"12 size=600\n",
    );
    let mut data = vec![0u8; 600];
    let mut fake = tar::Header::new_gnu();
    fake.set_size(4 << 30);
    fake.set_entry_type(tar::EntryType::GNULongName);
    fake.set_cksum();
    data[..512].copy_from_slice(fake.as_bytes());
    // The regular header claims size 0; the PAX record says 600.
    let mut header = tar::Header::new_ustar();
    header.as_ustar_mut().unwrap().name[..1].copy_from_slice(b"f");
    header.set_size(0);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(&data);
    tar.extend(std::iter::repeat_n(0u8, 1024 - 600));
    raw_entry(&mut tar, "g", tar::EntryType::Regular, "", b"after");
    let fragment = read(&finish(tar)).unwrap();
    let paths: Vec<&str> = fragment.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["f", "g"]);
}
