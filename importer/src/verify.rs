//! `verify_kit`: the pure check of an untrusted kit. Signature first, then every byte against the
//! signed manifest, under explicit limits, then the records against the model.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use crate::canonical::to_canonical_json;
use crate::error::KitError;
use crate::keyupdate::SignedKeyUpdate;
use crate::licence::{SignedLicence, SignedRevocationList};
use crate::manifest::{
    ContentKind, KitKind, KitPath, MANIFEST_PATH, MANIFEST_SIG_PATH, Manifest, Sha256Hex,
    format_time,
};
use crate::model::{Advisory, EpssEntry, KevEntry, check_probability, is_cve};
use crate::signing::TrustedKeys;
use crate::vex::VexClaim;
use crate::writer::RemovedKey;

/// Where verification gets "now" from, so expiry is testable.
pub trait Clock {
    fn now(&self) -> time::OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }
}

/// A clock stopped at one instant (tests, dry runs "as of").
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub time::OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> time::OffsetDateTime {
        self.0
    }
}

/// Ceilings for untrusted kits. Defaults are sized for the full public corpus with headroom.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Compressed kit size (default 1 GiB).
    pub max_kit_bytes: u64,
    /// Size of `manifest.json` (default 16 MiB).
    pub max_manifest_bytes: u64,
    /// Size of `manifest.json.minisig` (default 4 KiB).
    pub max_signature_bytes: u64,
    /// Size of one content file (default 256 MiB).
    pub max_file_bytes: u64,
    /// Sum of all content files (default 2 GiB); also bounds decompression (bomb protection).
    pub max_total_bytes: u64,
    /// Number of content files (default 10,000).
    pub max_files: usize,
    /// Largest zstd window accepted, as a power of two (default 27 = 128 MiB).
    pub max_zstd_window_log: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_kit_bytes: 1 << 30,
            max_manifest_bytes: 16 << 20,
            max_signature_bytes: 4096,
            max_file_bytes: 256 << 20,
            max_total_bytes: 2 << 30,
            max_files: 10_000,
            max_zstd_window_log: 27,
        }
    }
}

/// A kit whose signature, bytes and records have all been checked.
#[derive(Debug, Clone)]
pub struct VerifiedKit {
    pub manifest: Manifest,
    /// SHA-256 of the signed `manifest.json` bytes: the kit's identity for anti-rollback chains.
    pub manifest_sha256: Sha256Hex,
    /// minisign key id that signed the manifest.
    pub key_id: String,
    pub trusted_comment: String,
    pub advisories: Vec<Advisory>,
    pub vex_claims: Vec<VexClaim>,
    pub kev: Vec<KevEntry>,
    pub epss: Vec<EpssEntry>,
    pub licences: Vec<SignedLicence>,
    pub revocations: Vec<SignedRevocationList>,
    /// Kit-key rotations; apply with `SignedKeyUpdate::apply` against the keys trusted now.
    pub key_updates: Vec<SignedKeyUpdate>,
    pub removed: Vec<RemovedKey>,
}

/// Whether the newest imported kit is recent enough (freeze attacks: an attacker who can only
/// replay old but unexpired kits makes the feed look current; age reveals it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Older than the configured maximum age; `age_seconds` since the kit's `created`.
    Stale {
        age_seconds: i64,
    },
}

/// Freshness of a kit created at `created` (manifest field), as of `clock`, against `max_age`.
pub fn freshness(
    manifest: &Manifest,
    clock: &dyn Clock,
    max_age: time::Duration,
) -> Result<Freshness, KitError> {
    let created = crate::manifest::parse_time(&manifest.created).map_err(KitError::Manifest)?;
    let age = clock.now() - created;
    Ok(if age > max_age {
        Freshness::Stale {
            age_seconds: age.whole_seconds(),
        }
    } else {
        Freshness::Fresh
    })
}

/// What the appliance last imported on a channel (for [`check_sequence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelHead {
    pub sequence: u64,
    pub manifest_sha256: Sha256Hex,
}

/// Anti-rollback and delta chaining: a kit must be newer than the channel head; a delta kit's base
/// must be exactly the head.
pub fn check_sequence(kit: &VerifiedKit, head: Option<&ChannelHead>) -> Result<(), KitError> {
    let manifest = &kit.manifest;
    if let Some(head) = head
        && manifest.sequence <= head.sequence
    {
        return Err(KitError::Rollback {
            channel: manifest.channel.clone(),
            sequence: manifest.sequence,
            last: head.sequence,
        });
    }
    if manifest.kind == KitKind::Delta {
        let base = manifest
            .base
            .as_ref()
            .ok_or_else(|| KitError::Manifest("delta kit without base".into()))?;
        match head {
            None => {
                return Err(KitError::BaseMismatch(format!(
                    "delta kit needs base {} but nothing is imported",
                    base.kit_id
                )));
            }
            Some(head)
                if head.manifest_sha256 != base.manifest_sha256
                    || head.sequence != base.sequence =>
            {
                return Err(KitError::BaseMismatch(format!(
                    "delta kit is based on sequence {} ({}), the channel is at sequence {} ({})",
                    base.sequence, base.manifest_sha256, head.sequence, head.manifest_sha256
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Counts bytes and fails once a ceiling is passed, so a decompression bomb stops early.
struct Ceiling<R> {
    inner: R,
    read: u64,
    max: u64,
    what: &'static str,
}

impl<R: Read> Read for Ceiling<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(std::io::Error::other(format!(
                "{} exceeds {} bytes",
                self.what, self.max
            )));
        }
        Ok(n)
    }
}

fn entry_type_name(entry_type: tar::EntryType) -> String {
    match entry_type {
        tar::EntryType::Symlink => "symlink".into(),
        tar::EntryType::Link => "hardlink".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "fifo".into(),
        tar::EntryType::Directory => "directory".into(),
        other => format!("{other:?}"),
    }
}

fn map_read_error(context: &str, error: std::io::Error) -> KitError {
    let text = error.to_string();
    if text.contains("exceeds") {
        KitError::LimitExceeded(format!("{context}: {text}"))
    } else {
        KitError::Compression(format!("{context}: {text}"))
    }
}

/// Verifies a kit read from `reader` and returns its parsed records.
///
/// Order of checks: layout (manifest first, its signature second), the signature against
/// `trusted_keys`, the manifest's own consistency and canonical form, expiry against `clock`, then
/// for each further entry: safe path, regular file, not duplicated, listed, size and SHA-256 as
/// signed; finally that nothing listed is missing, the zstd stream ends cleanly, and every record
/// parses and validates. Nothing is returned unless all of it holds.
pub fn verify_kit<R: Read>(
    reader: R,
    trusted_keys: &TrustedKeys,
    clock: &dyn Clock,
    limits: &Limits,
) -> Result<VerifiedKit, KitError> {
    if trusted_keys.is_empty() {
        return Err(KitError::Key("no trusted kit keys are configured".into()));
    }
    let compressed = Ceiling {
        inner: reader,
        read: 0,
        max: limits.max_kit_bytes,
        what: "compressed kit",
    };
    let mut decoder = zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| KitError::Compression(e.to_string()))?;
    decoder
        .window_log_max(limits.max_zstd_window_log)
        .map_err(|e| KitError::Compression(e.to_string()))?;
    // Tar overhead: 512-byte header per entry, padding, and the end blocks.
    let overhead = (limits.max_files as u64 + 8) * 1536
        + limits.max_manifest_bytes
        + limits.max_signature_bytes;
    let decompressed = Ceiling {
        inner: decoder,
        read: 0,
        max: limits.max_total_bytes.saturating_add(overhead),
        what: "decompressed kit",
    };
    let mut archive = tar::Archive::new(decompressed);
    let entries = archive
        .entries()
        .map_err(|e| KitError::Tar(e.to_string()))?;

    let mut manifest: Option<(Manifest, Sha256Hex, String, String)> = None;
    let mut manifest_bytes: Option<Vec<u8>> = None;
    let mut listed: BTreeMap<KitPath, (ContentKind, Sha256Hex, u64)> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut contents: Vec<(KitPath, ContentKind, Vec<u8>)> = Vec::new();

    for (position, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| map_read_error("reading tar entry", e))?;
        let raw_path = String::from_utf8(entry.path_bytes().into_owned()).map_err(|_| {
            KitError::UnsafePath {
                path: "<non-UTF-8>".into(),
                reason: "path is not UTF-8".into(),
            }
        })?;
        let path = KitPath::parse(&raw_path)?;
        let entry_type = entry.header().entry_type();
        if entry_type != tar::EntryType::Regular {
            return Err(KitError::ForbiddenEntryType {
                path: raw_path,
                entry_type: entry_type_name(entry_type),
            });
        }
        if !seen.insert(raw_path.clone()) {
            return Err(KitError::DuplicateEntry { path: raw_path });
        }
        let header_size = entry
            .header()
            .size()
            .map_err(|e| KitError::Tar(format!("{raw_path}: size: {e}")))?;
        match position {
            0 => {
                if raw_path != MANIFEST_PATH {
                    return Err(KitError::Layout(format!(
                        "first entry is {raw_path:?}, expected {MANIFEST_PATH}"
                    )));
                }
                if header_size > limits.max_manifest_bytes {
                    return Err(KitError::LimitExceeded(format!(
                        "manifest.json is {header_size} bytes"
                    )));
                }
                manifest_bytes = Some(read_exact_entry(&mut entry, &raw_path, header_size)?);
            }
            1 => {
                if raw_path != MANIFEST_SIG_PATH {
                    return Err(KitError::Layout(format!(
                        "second entry is {raw_path:?}, expected {MANIFEST_SIG_PATH}"
                    )));
                }
                if header_size > limits.max_signature_bytes {
                    return Err(KitError::LimitExceeded(format!(
                        "{MANIFEST_SIG_PATH} is {header_size} bytes"
                    )));
                }
                let signature = read_exact_entry(&mut entry, &raw_path, header_size)?;
                let signature = String::from_utf8(signature).map_err(|_| KitError::Signature {
                    what: MANIFEST_PATH.into(),
                    reason: "signature file is not UTF-8".into(),
                })?;
                let bytes = manifest_bytes
                    .take()
                    .ok_or_else(|| KitError::Layout("manifest missing".into()))?;
                let verified = trusted_keys.verify(MANIFEST_PATH, &bytes, &signature)?;
                let parsed: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| KitError::Manifest(format!("manifest.json: {e}")))?;
                if to_canonical_json(MANIFEST_PATH, &parsed)? != bytes {
                    return Err(KitError::Manifest(
                        "manifest.json is not in canonical JSON form".into(),
                    ));
                }
                parsed.validate()?;
                let now = clock.now();
                let expires = parsed.expires_at()?;
                if now >= expires {
                    return Err(KitError::Expired {
                        kit_id: parsed.kit_id.clone(),
                        expires: parsed.expires.clone(),
                        now: format_time(now),
                    });
                }
                if parsed.files.len() > limits.max_files {
                    return Err(KitError::LimitExceeded(format!(
                        "{} files, limit {}",
                        parsed.files.len(),
                        limits.max_files
                    )));
                }
                let mut total: u64 = 0;
                for file in &parsed.files {
                    if file.size > limits.max_file_bytes {
                        return Err(KitError::LimitExceeded(format!(
                            "{} is {} bytes, limit {}",
                            file.path, file.size, limits.max_file_bytes
                        )));
                    }
                    total = total.saturating_add(file.size);
                    listed.insert(
                        file.path.clone(),
                        (file.kind, file.sha256.clone(), file.size),
                    );
                }
                if total > limits.max_total_bytes {
                    return Err(KitError::LimitExceeded(format!(
                        "content totals {total} bytes, limit {}",
                        limits.max_total_bytes
                    )));
                }
                manifest = Some((
                    parsed,
                    Sha256Hex::of(&bytes),
                    verified.key_id,
                    verified.trusted_comment,
                ));
            }
            _ => {
                let Some((kind, sha256, size)) = listed.get(&path).cloned() else {
                    return Err(KitError::UnlistedFile { path: raw_path });
                };
                if header_size != size {
                    return Err(KitError::SizeMismatch {
                        path: raw_path,
                        expected: size,
                        actual: header_size,
                    });
                }
                let bytes = read_exact_entry(&mut entry, &raw_path, size)?;
                let actual = Sha256Hex::from_hasher(Sha256::new_with_prefix(&bytes));
                if actual != sha256 {
                    return Err(KitError::HashMismatch {
                        path: raw_path,
                        expected: sha256.to_string(),
                        actual: actual.to_string(),
                    });
                }
                contents.push((path, kind, bytes));
            }
        }
    }
    let (manifest, manifest_sha256, key_id, trusted_comment) =
        manifest.ok_or_else(|| KitError::Layout("kit holds no signed manifest".into()))?;
    for path in listed.keys() {
        if !seen.contains(path.as_str()) {
            return Err(KitError::MissingFile {
                path: path.to_string(),
            });
        }
    }
    // The tar end marker is not the end of the stream: read on so that a truncated or corrupt
    // zstd frame, or data appended after the archive, is noticed.
    let mut rest = archive.into_inner();
    let mut sink = [0u8; 8192];
    let mut trailing: u64 = 0;
    loop {
        let n = rest
            .read(&mut sink)
            .map_err(|e| map_read_error("after the tar end", e))?;
        if n == 0 {
            break;
        }
        if sink[..n].iter().any(|&b| b != 0) {
            return Err(KitError::Layout(
                "data after the end of the tar archive".into(),
            ));
        }
        trailing += n as u64;
        if trailing > 1 << 20 {
            return Err(KitError::Layout(
                "more than 1 MiB of padding after the tar archive".into(),
            ));
        }
    }

    let mut kit = VerifiedKit {
        manifest,
        manifest_sha256,
        key_id,
        trusted_comment,
        advisories: Vec::new(),
        vex_claims: Vec::new(),
        kev: Vec::new(),
        epss: Vec::new(),
        licences: Vec::new(),
        revocations: Vec::new(),
        key_updates: Vec::new(),
        removed: Vec::new(),
    };
    let mut counted: BTreeMap<ContentKind, u64> = BTreeMap::new();
    for (path, kind, bytes) in contents {
        let path = path.as_str();
        let n = match kind {
            ContentKind::Advisories => {
                parse_records(path, &bytes, &mut kit.advisories, Advisory::validate)?
            }
            ContentKind::VexClaims => {
                parse_records(path, &bytes, &mut kit.vex_claims, VexClaim::validate)?
            }
            ContentKind::Kev => parse_records(path, &bytes, &mut kit.kev, |entry: &KevEntry| {
                if is_cve(&entry.cve) {
                    Ok(())
                } else {
                    Err(format!("{:?} is not a CVE id", entry.cve))
                }
            })?,
            ContentKind::Epss => {
                parse_records(path, &bytes, &mut kit.epss, |entry: &EpssEntry| {
                    if !is_cve(&entry.cve) {
                        return Err(format!("{:?} is not a CVE id", entry.cve));
                    }
                    check_probability(&entry.cve, entry.score, entry.percentile)
                })?
            }
            ContentKind::Licences => {
                parse_records(path, &bytes, &mut kit.licences, SignedLicence::validate)?
            }
            ContentKind::Revocations => parse_records(
                path,
                &bytes,
                &mut kit.revocations,
                SignedRevocationList::validate,
            )?,
            ContentKind::KeyUpdates => parse_records(
                path,
                &bytes,
                &mut kit.key_updates,
                SignedKeyUpdate::validate,
            )?,
            ContentKind::Removed => {
                parse_records(path, &bytes, &mut kit.removed, |_: &RemovedKey| Ok(()))?
            }
        };
        *counted.entry(kind).or_default() += n;
        let declared = kit
            .manifest
            .files
            .iter()
            .find(|file| file.path.as_str() == path)
            .map(|file| file.records);
        if declared != Some(n) {
            return Err(KitError::Manifest(format!(
                "{path}: manifest says {declared:?} records, file holds {n}"
            )));
        }
    }
    for (kind, declared) in &kit.manifest.counts {
        let actual = counted.get(kind).copied().unwrap_or(0);
        if *declared != actual {
            return Err(KitError::Manifest(format!(
                "count of {kind:?} is {declared} in the manifest, {actual} in the files"
            )));
        }
    }
    Ok(kit)
}

fn read_exact_entry<R: Read>(entry: &mut R, path: &str, size: u64) -> Result<Vec<u8>, KitError> {
    let mut bytes = Vec::with_capacity(usize::try_from(size.min(64 << 20)).unwrap_or(0));
    entry
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(|e| map_read_error(path, e))?;
    if bytes.len() as u64 != size {
        return Err(KitError::Compression(format!(
            "{path}: stream ended after {} of {size} bytes",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn parse_records<T: DeserializeOwned>(
    path: &str,
    bytes: &[u8],
    out: &mut Vec<T>,
    validate: impl Fn(&T) -> Result<(), String>,
) -> Result<u64, KitError> {
    let values: Vec<serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| KitError::InvalidRecord {
            path: path.into(),
            index: 0,
            reason: format!("not a JSON array: {e}"),
        })?;
    let count = values.len() as u64;
    for (index, value) in values.into_iter().enumerate() {
        let record: T = serde_json::from_value(value).map_err(|e| KitError::InvalidRecord {
            path: path.into(),
            index,
            reason: e.to_string(),
        })?;
        validate(&record).map_err(|reason| KitError::InvalidRecord {
            path: path.into(),
            index,
            reason,
        })?;
        out.push(record);
    }
    Ok(count)
}

/// Reads `manifest.json` and its signature text from a kit WITHOUT verifying anything, for
/// display (`stella-kit inspect` without a key). Never use the result for a trust decision.
pub fn read_manifest_unverified<R: Read>(
    reader: R,
    limits: &Limits,
) -> Result<(Manifest, String), KitError> {
    let mut decoder = zstd::stream::read::Decoder::new(reader)
        .map_err(|e| KitError::Compression(e.to_string()))?;
    decoder
        .window_log_max(limits.max_zstd_window_log)
        .map_err(|e| KitError::Compression(e.to_string()))?;
    let mut archive = tar::Archive::new(decoder);
    let mut entries = archive
        .entries()
        .map_err(|e| KitError::Tar(e.to_string()))?;
    let mut next = |expected: &str, max: u64| -> Result<Vec<u8>, KitError> {
        let mut entry = entries
            .next()
            .ok_or_else(|| KitError::Layout(format!("kit ends before {expected}")))?
            .map_err(|e| map_read_error("reading tar entry", e))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if path != expected {
            return Err(KitError::Layout(format!(
                "found {path:?} where {expected} belongs"
            )));
        }
        let size = entry
            .header()
            .size()
            .map_err(|e| KitError::Tar(e.to_string()))?;
        if size > max {
            return Err(KitError::LimitExceeded(format!(
                "{expected} is {size} bytes"
            )));
        }
        read_exact_entry(&mut entry, expected, size)
    };
    let manifest_bytes = next(MANIFEST_PATH, limits.max_manifest_bytes)?;
    let signature = next(MANIFEST_SIG_PATH, limits.max_signature_bytes)?;
    let manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| KitError::Manifest(format!("manifest.json: {e}")))?;
    Ok((manifest, String::from_utf8_lossy(&signature).into_owned()))
}

/// Runs [`verify_kit`] on untrusted bytes with a fixed, published test key and default limits;
/// the entry point of the `kit_verify` fuzz target (it exercises the zstd/tar walker and the
/// layout checks up to the signature).
pub fn verify_kit_for_fuzzing(data: &[u8]) -> Result<VerifiedKit, KitError> {
    const FUZZ_PUBLIC_KEY: &str = "RWQf5PPLriMfEivtTd2umwwh06dgy0qkArgyBwrQhyjG+UAUDusY90zu";
    let keys = TrustedKeys::from_texts([FUZZ_PUBLIC_KEY])?;
    let clock = FixedClock(time::OffsetDateTime::UNIX_EPOCH);
    let limits = Limits {
        max_total_bytes: 64 << 20,
        max_file_bytes: 16 << 20,
        ..Limits::default()
    };
    verify_kit(data, &keys, &clock, &limits)
}
