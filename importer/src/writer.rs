//! Writes a kit: content files in canonical JSON, the manifest, its minisign signature, one
//! deterministic tar, zstd-compressed. Pure: bytes in memory in, bytes out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::canonical::to_canonical_json;
use crate::error::KitError;
use crate::keyupdate::SignedKeyUpdate;
use crate::licence::{SignedLicence, SignedRevocationList};
use crate::manifest::{
    ContentKind, FileEntry, KIT_FORMAT, KitBase, KitKind, KitPath, MANIFEST_PATH,
    MANIFEST_SIG_PATH, Manifest, Sha256Hex, SourceSummary, format_time,
};
use crate::model::{Advisory, EpssEntry, KevEntry};
use crate::signing::SigningKey;
use crate::vex::VexClaim;

/// Records per content file. Shards keep every file well under the verifier's per-file limit.
pub const RECORDS_PER_FILE: usize = 5000;
/// zstd level used for kits (fixed, so that output is reproducible).
pub const ZSTD_LEVEL: i32 = 12;

/// A record removed since the base kit (delta kits only).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovedKey {
    pub kind: ContentKind,
    pub key: String,
}

/// Everything a kit carries. For a delta kit: the records that are new or changed, plus removals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KitContents {
    pub advisories: Vec<Advisory>,
    pub vex_claims: Vec<VexClaim>,
    pub kev: Vec<KevEntry>,
    pub epss: Vec<EpssEntry>,
    pub licences: Vec<SignedLicence>,
    pub revocations: Vec<SignedRevocationList>,
    pub key_updates: Vec<SignedKeyUpdate>,
    pub removed: Vec<RemovedKey>,
}

impl KitContents {
    /// Sorts every list by its record key so the written files do not depend on input order.
    pub fn sort(&mut self) {
        self.advisories.sort_by(|a, b| a.id.cmp(&b.id));
        self.advisories.dedup_by(|a, b| a.id == b.id);
        self.vex_claims.sort();
        self.vex_claims.dedup();
        self.kev.sort_by(|a, b| a.cve.cmp(&b.cve));
        self.kev.dedup_by(|a, b| a.cve == b.cve);
        self.epss.sort_by(|a, b| a.cve.cmp(&b.cve));
        self.epss.dedup_by(|a, b| a.cve == b.cve);
        self.licences
            .sort_by(|a, b| a.licence.licence_id.cmp(&b.licence.licence_id));
        self.licences
            .dedup_by(|a, b| a.licence.licence_id == b.licence.licence_id);
        self.revocations.sort_by_key(|list| list.list.sequence);
        self.revocations.dedup_by_key(|list| list.list.sequence);
        self.key_updates
            .sort_by_key(|update| update.update.sequence);
        self.key_updates
            .dedup_by_key(|update| update.update.sequence);
        self.removed.sort();
        self.removed.dedup();
    }
}

/// Kit metadata chosen by the builder.
#[derive(Debug, Clone)]
pub struct KitParams {
    pub channel: String,
    pub sequence: u64,
    pub created: time::OffsetDateTime,
    pub expires: time::OffsetDateTime,
    /// Set for delta kits.
    pub base: Option<KitBase>,
    pub sources: Vec<SourceSummary>,
}

/// A written kit.
#[derive(Debug, Clone)]
pub struct BuiltKit {
    /// The `.tar.zst` bytes.
    pub archive: Vec<u8>,
    pub manifest: Manifest,
    /// The exact signed manifest bytes (canonical JSON).
    pub manifest_bytes: Vec<u8>,
    pub manifest_sha256: Sha256Hex,
    /// minisign signature of `manifest.json` (also inside the kit as `manifest.json.minisig`).
    pub manifest_signature: String,
    /// minisign signature of the whole archive, written next to it as `KIT.minisig`.
    pub archive_signature: String,
}

fn shard<T: Serialize>(
    kind: ContentKind,
    dir: &str,
    records: &[T],
    files: &mut Vec<(FileEntry, Vec<u8>)>,
) -> Result<(), KitError> {
    for (index, chunk) in records.chunks(RECORDS_PER_FILE).enumerate() {
        let path = KitPath::parse(&format!("{dir}/{index:04}.json"))?;
        let bytes = to_canonical_json(path.as_str(), &chunk)?;
        files.push((
            FileEntry {
                path,
                kind,
                sha256: Sha256Hex::of(&bytes),
                size: bytes.len() as u64,
                records: chunk.len() as u64,
            },
            bytes,
        ));
    }
    Ok(())
}

/// Builds the kit. The same contents, params and key always give byte-identical output.
pub fn write_kit(
    contents: &KitContents,
    params: &KitParams,
    key: &SigningKey,
) -> Result<BuiltKit, KitError> {
    write_kit_owned(contents.clone(), params, key)
}

/// [`write_kit`] taking the contents by value, so that a large build does not hold two copies
/// of every record (the builder uses this; the output is the same).
pub fn write_kit_owned(
    mut contents: KitContents,
    params: &KitParams,
    key: &SigningKey,
) -> Result<BuiltKit, KitError> {
    contents.sort();
    for advisory in &mut contents.advisories {
        advisory.normalize();
    }
    let mut files = Vec::new();
    shard(
        ContentKind::Advisories,
        "advisories",
        &contents.advisories,
        &mut files,
    )?;
    shard(
        ContentKind::VexClaims,
        "vex",
        &contents.vex_claims,
        &mut files,
    )?;
    shard(ContentKind::Kev, "kev", &contents.kev, &mut files)?;
    shard(ContentKind::Epss, "epss", &contents.epss, &mut files)?;
    shard(
        ContentKind::Licences,
        "licences",
        &contents.licences,
        &mut files,
    )?;
    shard(
        ContentKind::Revocations,
        "revocations",
        &contents.revocations,
        &mut files,
    )?;
    shard(
        ContentKind::KeyUpdates,
        "key-updates",
        &contents.key_updates,
        &mut files,
    )?;
    let kind = if params.base.is_some() {
        KitKind::Delta
    } else {
        KitKind::Full
    };
    if kind == KitKind::Full && !contents.removed.is_empty() {
        return Err(KitError::Manifest(
            "a full kit cannot carry removals".into(),
        ));
    }
    shard(
        ContentKind::Removed,
        "removed",
        &contents.removed,
        &mut files,
    )?;

    let mut counts = BTreeMap::new();
    counts.insert(ContentKind::Advisories, contents.advisories.len() as u64);
    counts.insert(ContentKind::VexClaims, contents.vex_claims.len() as u64);
    counts.insert(ContentKind::Kev, contents.kev.len() as u64);
    counts.insert(ContentKind::Epss, contents.epss.len() as u64);
    counts.insert(ContentKind::Licences, contents.licences.len() as u64);
    counts.insert(ContentKind::Revocations, contents.revocations.len() as u64);
    counts.insert(ContentKind::KeyUpdates, contents.key_updates.len() as u64);
    counts.insert(ContentKind::Removed, contents.removed.len() as u64);

    let mut content_digest = sha2::Sha256::default();
    for (entry, _) in &files {
        sha2::Digest::update(&mut content_digest, entry.path.as_str().as_bytes());
        sha2::Digest::update(&mut content_digest, entry.sha256.as_str().as_bytes());
    }
    let content_digest = Sha256Hex::from_hasher(content_digest);
    let kit_id = format!(
        "{}-{}-{}",
        params.channel,
        params.sequence,
        &content_digest.as_str()[..12]
    );
    let mut sources = params.sources.clone();
    sources.sort_by(|a, b| (&a.kind, &a.name, &a.sha256).cmp(&(&b.kind, &b.name, &b.sha256)));
    let manifest = Manifest {
        format: KIT_FORMAT.into(),
        kit_id,
        channel: params.channel.clone(),
        sequence: params.sequence,
        kind,
        created: format_time(params.created),
        expires: format_time(params.expires),
        previous_manifest_sha256: params
            .base
            .as_ref()
            .map(|base| base.manifest_sha256.clone()),
        base: params.base.clone(),
        counts,
        sources,
        files: files.iter().map(|(entry, _)| entry.clone()).collect(),
    };
    manifest.validate()?;
    let manifest_bytes = to_canonical_json(MANIFEST_PATH, &manifest)?;
    let manifest_sha256 = Sha256Hex::of(&manifest_bytes);
    let manifest_signature = key.sign(
        &manifest_bytes,
        &format!(
            "stella-kit kit_id={} channel={} sequence={} created={} manifest_sha256={}",
            manifest.kit_id,
            manifest.channel,
            manifest.sequence,
            manifest.created,
            manifest_sha256.as_str()
        ),
    );

    let mtime = u64::try_from(params.created.unix_timestamp()).unwrap_or(0);
    // The records are in `files` now; free them before the archive is written.
    drop(contents);
    // The tar streams straight into the zstd encoder: the uncompressed archive is never held whole.
    let encoder = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)
        .map_err(|e| KitError::io("zstd compression", e))?;
    let mut tar = tar::Builder::new(encoder);
    let mut append = |path: &str, data: &[u8]| -> Result<(), KitError> {
        let mut header = tar::Header::new_ustar();
        header
            .set_path(path)
            .map_err(|e| KitError::io(format!("tar path {path}"), e))?;
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, data)
            .map_err(|e| KitError::io(format!("tar entry {path}"), e))
    };
    append(MANIFEST_PATH, &manifest_bytes)?;
    append(MANIFEST_SIG_PATH, manifest_signature.as_bytes())?;
    for (entry, bytes) in files {
        append(entry.path.as_str(), &bytes)?;
    }
    let encoder = tar
        .into_inner()
        .map_err(|e| KitError::io("finishing tar", e))?;
    let archive = encoder
        .finish()
        .map_err(|e| KitError::io("zstd compression", e))?;
    let archive_signature = key.sign(
        &archive,
        &format!(
            "stella-kit archive kit_id={} manifest_sha256={}",
            manifest.kit_id,
            manifest_sha256.as_str()
        ),
    );
    Ok(BuiltKit {
        archive,
        manifest,
        manifest_bytes,
        manifest_sha256,
        manifest_signature,
        archive_signature,
    })
}
