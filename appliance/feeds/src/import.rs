//! Importing a kit: verify every byte, check the channel's sequence, write a new generation,
//! switch to it in one catalog transaction, and audit every attempt. A rejected kit is copied to
//! the quarantine directory beside a JSON report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use stella_core::{Clock, rfc3339};
use stella_importer::manifest::{ContentKind, KitKind};
use stella_importer::state::KitState;
use stella_importer::verify::{ChannelHead, check_sequence};
use stella_importer::{Limits, Sha256Hex, TrustedKeys, VerifiedKit};
use stella_store::Catalog;
use stella_store::rusqlite::{self, OptionalExtension, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::generation::{self, Counts, Generation};
use crate::{FeedError, FeedStore, current_pointer};

/// How to import one kit.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Minisign keys trusted to sign kits (`[kits] trusted_keys`).
    pub trusted_keys: TrustedKeys,
    /// Ceilings for the untrusted kit.
    pub limits: Limits,
    /// Verify and report only; write nothing.
    pub dry_run: bool,
    /// With `dry_run`: still audit the verdict (`verified`, `already-imported` or
    /// `rejected:<reason>`, a rejected kit quarantined) while loading nothing: the console's
    /// upload step, whose verified kit is loaded by a later import.
    pub audit_dry_run: bool,
    /// Who imports: a user, a client id, `cli`, `watch-folder`.
    pub actor: String,
    /// Where the kit came from (file name, upload name), for the audit trail.
    pub origin: String,
    /// The HTTP request id, when the import came over HTTP.
    pub request_id: Option<String>,
    /// Where rejected kits are copied with their report; `None` keeps no copy.
    pub quarantine_dir: Option<PathBuf>,
}

/// What was verified (and, unless a dry run, loaded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Kit id from the signed manifest.
    pub kit_id: String,
    /// Channel.
    pub channel: String,
    /// Sequence number on the channel.
    pub sequence: u64,
    /// `full` or `delta`.
    pub kind: &'static str,
    /// SHA-256 of the signed manifest.
    pub manifest_sha256: String,
    /// Minisign key id that signed it.
    pub key_id: String,
    /// When the kit was built (RFC 3339).
    pub created: String,
    /// When the kit expires (RFC 3339).
    pub expires: String,
    /// Records carried by the kit, per content kind.
    pub records: BTreeMap<String, u64>,
    /// The generation that became current (not for dry runs or no-ops).
    pub generation: Option<u64>,
    /// Totals of the new current generation.
    pub totals: Option<Counts>,
}

/// The result of an import that was not rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum ImportOutcome {
    /// Verified and loaded; the new generation is current.
    Loaded(ImportReport),
    /// The channel's head is this very kit: nothing to do.
    AlreadyImported(ImportReport),
    /// Dry run: verified, nothing written.
    Verified(ImportReport),
}

/// A kit that was refused, with the short reason code (`signature`, `hash`, `rollback`,
/// `expired`, `validation`, …) and the full message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("kit rejected ({reason}): {message}")]
pub struct Rejection {
    /// Stable short code, see `stella_importer::KitError::reason`.
    pub reason: &'static str,
    /// What exactly was wrong, naming the file, key or record.
    pub message: String,
    /// Where the kit was copied, when a quarantine directory is configured.
    pub quarantined: Option<PathBuf>,
}

/// Why an import did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The kit was refused; the stores are unchanged.
    #[error(transparent)]
    Rejected(Rejection),
    /// The store failed; the previous generation stays current.
    #[error(transparent)]
    Feed(#[from] FeedError),
}

impl From<rusqlite::Error> for ImportError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Feed(err.into())
    }
}

/// Age of the newest kit per channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelFreshness {
    /// Channel.
    pub channel: String,
    /// Kit id of the channel head.
    pub kit_id: String,
    /// Its sequence.
    pub sequence: u64,
    /// When it was built.
    pub created: String,
    /// When it expires.
    pub expires: String,
    /// Seconds since it was built.
    pub age_secs: u64,
    /// Older than the configured stale age, or expired: the feed may be frozen.
    pub stale: bool,
}

/// One row of the kit-import audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KitImportRecord {
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// Kit id, when the manifest verified.
    pub kit_id: Option<String>,
    /// Channel, when the manifest verified.
    pub channel: Option<String>,
    /// Sequence, when the manifest verified.
    pub sequence: Option<u64>,
    /// Manifest digest, when the manifest verified.
    pub manifest_sha256: Option<String>,
    /// `loaded`, `already-imported`, `verified` (an audited dry run) or `rejected:<reason>`.
    pub verdict: String,
    /// Counts or the rejection message, as JSON.
    pub detail: String,
}

/// Adapts the appliance clock to the importer's.
struct ImporterClock(OffsetDateTime);

impl stella_importer::Clock for ImporterClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

fn report(kit: &VerifiedKit, generation: Option<u64>, totals: Option<Counts>) -> ImportReport {
    let m = &kit.manifest;
    ImportReport {
        kit_id: m.kit_id.clone(),
        channel: m.channel.clone(),
        sequence: m.sequence,
        kind: match m.kind {
            KitKind::Full => "full",
            KitKind::Delta => "delta",
        },
        manifest_sha256: kit.manifest_sha256.as_str().to_owned(),
        key_id: kit.key_id.clone(),
        created: m.created.clone(),
        expires: m.expires.clone(),
        records: m
            .counts
            .iter()
            .map(|(kind, n)| (content_kind_name(*kind), *n))
            .collect(),
        generation,
        totals,
    }
}

fn content_kind_name(kind: ContentKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

fn channel_head(catalog: &Catalog, channel: &str) -> Result<Option<ChannelHead>, FeedError> {
    let row: Option<(i64, String)> = catalog
        .connection()
        .query_row(
            "SELECT sequence, manifest_sha256 FROM channel_heads WHERE channel = ?1",
            [channel],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    row.map(|(sequence, digest)| {
        Ok(ChannelHead {
            sequence: sequence as u64,
            manifest_sha256: Sha256Hex::parse(&digest)
                .map_err(|e| FeedError::Corrupt(format!("channel_heads.manifest_sha256: {e}")))?,
        })
    })
    .transpose()
}

/// Serialises imports: one generation is written at a time.
static IMPORT_LOCK: Mutex<()> = Mutex::new(());

impl FeedStore {
    /// Verifies `kit_bytes` and, unless `options.dry_run`, loads it as a new generation.
    pub fn import(
        &self,
        catalog: &Catalog,
        kit_bytes: &[u8],
        options: &ImportOptions,
        clock: &dyn Clock,
    ) -> Result<ImportOutcome, ImportError> {
        let _serial = IMPORT_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = clock.now_unix();
        let reject = |reason: &'static str, message: String, kit: Option<&VerifiedKit>| {
            self.reject(catalog, kit_bytes, options, now, reason, message, kit)
        };
        if kit_bytes.len() as u64 > options.limits.max_kit_bytes {
            return Err(reject(
                "limit",
                format!(
                    "kit is {} bytes, over the ceiling of {}",
                    kit_bytes.len(),
                    options.limits.max_kit_bytes
                ),
                None,
            )?);
        }
        let at = OffsetDateTime::from_unix_timestamp(i64::try_from(now).unwrap_or(i64::MAX))
            .map_err(|e| FeedError::Corrupt(format!("clock out of range: {e}")))?;
        let current = self.current();
        let (trusted_keys, last_key_update) = match &current {
            Some(generation) => effective_keys(&options.trusted_keys, &generation.states()?)?,
            None => (options.trusted_keys.clone(), None),
        };
        let mut kit = match stella_importer::verify_kit(
            kit_bytes,
            &trusted_keys,
            &ImporterClock(at),
            &options.limits,
        ) {
            Ok(kit) => kit,
            Err(err) => return Err(reject(err.reason(), err.to_string(), None)?),
        };
        let channel = kit.manifest.channel.clone();
        let head = channel_head(catalog, &channel)?;
        if head
            .as_ref()
            .is_some_and(|h| h.manifest_sha256 == kit.manifest_sha256)
        {
            let outcome = report(&kit, None, None);
            if !options.dry_run || options.audit_dry_run {
                self.record(catalog, options, now, Some(&kit), "already-imported", "{}")?;
            }
            return Ok(ImportOutcome::AlreadyImported(outcome));
        }
        if let Err(err) = check_sequence(&kit, head.as_ref()) {
            return Err(reject(err.reason(), err.to_string(), Some(&kit))?);
        }
        // Key updates the kit carries must be signed by a key trusted now, in sequence order.
        let mut updates: Vec<_> = kit.key_updates.iter().collect();
        updates.sort_by_key(|u| u.update.sequence);
        let mut keys = trusted_keys;
        let mut last = last_key_update;
        for update in updates {
            match update.apply(&keys, last) {
                Ok(next) => {
                    keys = next;
                    last = Some(update.update.sequence);
                }
                Err(err) => return Err(reject(err.reason(), err.to_string(), Some(&kit))?),
            }
        }
        if options.dry_run {
            let outcome = report(&kit, None, None);
            if options.audit_dry_run {
                let detail = serde_json::json!({ "records": outcome.records });
                self.record(
                    catalog,
                    options,
                    now,
                    Some(&kit),
                    "verified",
                    &detail.to_string(),
                )?;
            }
            return Ok(ImportOutcome::Verified(outcome));
        }

        // Build the new state of every channel: the kit's channel changes, the others carry over.
        // A full kit replaces its channel: only the other channels are read back.
        let skip = (kit.manifest.kind == KitKind::Full).then_some(channel.as_str());
        let mut states: BTreeMap<String, KitState> = match &current {
            Some(generation) => generation.states_except(skip)?,
            None => BTreeMap::new(),
        };
        let state = states.entry(channel.clone()).or_default();
        if let Err(err) = state.apply_taking(&mut kit) {
            return Err(reject(err.reason(), err.to_string(), Some(&kit))?);
        }
        let previous = current_pointer(catalog)?.map(|(n, _)| n);
        let number = previous.map_or(1, |n| n + 1);
        let counts = generation::write(&self.dir, number, &states)?;
        drop(states);

        // The switch: one transaction moves the pointer, the channel head, and the audit trail.
        {
            let mut conn = catalog.connection();
            let txn = conn.transaction()?;
            txn.execute(
                "INSERT INTO feed_current (id, generation, counts, switched_at) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET generation = ?1, counts = ?2, switched_at = ?3",
                params![
                    number as i64,
                    serde_json::to_string(&counts).unwrap_or_default(),
                    now as i64
                ],
            )?;
            let m = &kit.manifest;
            txn.execute(
                "INSERT INTO channel_heads (channel, kit_id, sequence, manifest_sha256, created, expires, imported_at, generation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (channel) DO UPDATE SET kit_id = ?2, sequence = ?3, manifest_sha256 = ?4,
                     created = ?5, expires = ?6, imported_at = ?7, generation = ?8",
                params![
                    m.channel,
                    m.kit_id,
                    m.sequence as i64,
                    kit.manifest_sha256.as_str(),
                    m.created,
                    m.expires,
                    now as i64,
                    number as i64
                ],
            )?;
            let detail = serde_json::json!({ "records": report(&kit, None, None).records, "totals": counts, "generation": number });
            insert_record(
                &txn,
                options,
                now,
                Some(&kit),
                "loaded",
                &detail.to_string(),
            )?;
            txn.commit()?;
        }
        tracing::info!(kit = %kit.manifest.kit_id, channel = %channel, sequence = kit.manifest.sequence, generation = number, "kit loaded");

        let generation = Arc::new(Generation::open(&self.dir, number)?);
        self.set_current(generation);
        if let Some(old) = previous {
            let old_dir = self.dir.join(generation::dir_name(old));
            if let Err(e) = std::fs::remove_dir_all(&old_dir) {
                // Harmless: the next open removes it.
                tracing::warn!(dir = %old_dir.display(), error = %e, "cannot remove old generation yet");
            }
        }
        Ok(ImportOutcome::Loaded(report(
            &kit,
            Some(number),
            Some(counts),
        )))
    }

    #[allow(clippy::too_many_arguments)]
    fn reject(
        &self,
        catalog: &Catalog,
        kit_bytes: &[u8],
        options: &ImportOptions,
        now: u64,
        reason: &'static str,
        message: String,
        kit: Option<&VerifiedKit>,
    ) -> Result<ImportError, FeedError> {
        tracing::warn!(reason, %message, origin = %options.origin, "kit rejected");
        if options.dry_run && !options.audit_dry_run {
            return Ok(ImportError::Rejected(Rejection {
                reason,
                message,
                quarantined: None,
            }));
        }
        let quarantined = match &options.quarantine_dir {
            Some(dir) => Some(quarantine(dir, kit_bytes, now, reason, &message, options)?),
            None => None,
        };
        let detail =
            serde_json::json!({ "reason": reason, "message": message, "quarantined": quarantined });
        self.record(
            catalog,
            options,
            now,
            kit,
            &format!("rejected:{reason}"),
            &detail.to_string(),
        )?;
        Ok(ImportError::Rejected(Rejection {
            reason,
            message,
            quarantined,
        }))
    }

    fn record(
        &self,
        catalog: &Catalog,
        options: &ImportOptions,
        now: u64,
        kit: Option<&VerifiedKit>,
        verdict: &str,
        detail: &str,
    ) -> Result<(), FeedError> {
        let mut conn = catalog.connection();
        let txn = conn.transaction()?;
        insert_record(&txn, options, now, kit, verdict, detail)?;
        txn.commit()?;
        Ok(())
    }

    /// Age of each channel's newest kit; `stale_after_secs` marks a possible freeze attack.
    pub fn freshness(
        &self,
        catalog: &Catalog,
        now_unix: u64,
        stale_after_secs: u64,
    ) -> Result<Vec<ChannelFreshness>, FeedError> {
        let conn = catalog.connection();
        let mut stmt = conn.prepare(
            "SELECT channel, kit_id, sequence, created, expires FROM channel_heads ORDER BY channel",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (channel, kit_id, sequence, created, expires) = row?;
            let unix = |text: &str| {
                OffsetDateTime::parse(text, &Rfc3339)
                    .map(|t| t.unix_timestamp().max(0) as u64)
                    .unwrap_or(0)
            };
            let age_secs = now_unix.saturating_sub(unix(&created));
            let stale = age_secs > stale_after_secs || unix(&expires) <= now_unix;
            out.push(ChannelFreshness {
                channel,
                kit_id,
                sequence: sequence as u64,
                created,
                expires,
                age_secs,
                stale,
            });
        }
        Ok(out)
    }

    /// The kit-import audit trail, newest first.
    pub fn imports(
        &self,
        catalog: &Catalog,
        limit: u32,
    ) -> Result<Vec<KitImportRecord>, FeedError> {
        let conn = catalog.connection();
        let mut stmt = conn.prepare(
            "SELECT at, actor, kit_id, channel, sequence, manifest_digest, verdict, detail
             FROM kit_imports ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |row| {
            Ok(KitImportRecord {
                at: row.get(0)?,
                actor: row.get(1)?,
                kit_id: row.get(2)?,
                channel: row.get(3)?,
                sequence: row.get::<_, Option<i64>>(4)?.map(|n| n as u64),
                manifest_sha256: row.get(5)?,
                verdict: row.get(6)?,
                detail: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The kit keys trusted now: the configured keys with every stored key update applied in
/// sequence order (each was checked against the keys trusted when it was imported), and the
/// sequence of the last update.
fn effective_keys(
    configured: &TrustedKeys,
    states: &BTreeMap<String, KitState>,
) -> Result<(TrustedKeys, Option<u64>), FeedError> {
    let mut updates: Vec<_> = states
        .values()
        .flat_map(|s| s.key_updates.values())
        .collect();
    updates.sort_by_key(|u| u.update.sequence);
    let mut keys = configured.clone();
    let mut last = None;
    for update in updates {
        keys = update.apply(&keys, last).map_err(|e| {
            FeedError::Corrupt(format!(
                "stored key update {} no longer applies to the configured keys: {e}",
                update.update.sequence
            ))
        })?;
        last = Some(update.update.sequence);
    }
    Ok((keys, last))
}

fn insert_record(
    txn: &rusqlite::Transaction<'_>,
    options: &ImportOptions,
    now: u64,
    kit: Option<&VerifiedKit>,
    verdict: &str,
    detail: &str,
) -> Result<(), FeedError> {
    let m = kit.map(|k| &k.manifest);
    txn.execute(
        "INSERT INTO kit_imports (kit_id, channel, sequence, manifest_digest, verdict, detail, actor, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            m.map(|m| m.kit_id.clone()),
            m.map(|m| m.channel.clone()),
            m.map(|m| m.sequence as i64),
            kit.map(|k| k.manifest_sha256.as_str().to_owned()),
            verdict,
            detail,
            options.actor,
            rfc3339(now)
        ],
    )?;
    let audit_detail = serde_json::json!({
        "verdict": verdict,
        "origin": options.origin,
        "channel": m.map(|m| m.channel.clone()),
        "sequence": m.map(|m| m.sequence),
        "manifest_sha256": kit.map(|k| k.manifest_sha256.as_str().to_owned()),
        "detail": serde_json::from_str::<serde_json::Value>(detail).unwrap_or_default(),
    });
    txn.execute(
        "INSERT INTO audit_log (at, actor, action, target, detail, request_id)
         VALUES (?1, ?2, 'kit.import', ?3, ?4, ?5)",
        params![
            now as i64,
            options.actor,
            m.map_or_else(|| options.origin.clone(), |m| m.kit_id.clone()),
            audit_detail.to_string(),
            options.request_id
        ],
    )?;
    Ok(())
}

fn quarantine(
    dir: &Path,
    kit_bytes: &[u8],
    now: u64,
    reason: &str,
    message: &str,
    options: &ImportOptions,
) -> Result<PathBuf, FeedError> {
    std::fs::create_dir_all(dir).map_err(|e| FeedError::io("create quarantine dir", dir, e))?;
    let digest = Sha256Hex::of(kit_bytes);
    let stem = format!("{now}-{}", &digest.as_str()[..16]);
    let kit_path = dir.join(format!("{stem}.kit"));
    std::fs::write(&kit_path, kit_bytes)
        .map_err(|e| FeedError::io("quarantine kit", &kit_path, e))?;
    let report = serde_json::json!({
        "at": rfc3339(now),
        "origin": options.origin,
        "actor": options.actor,
        "sha256": digest.as_str(),
        "reason": reason,
        "message": message,
    });
    let report_path = dir.join(format!("{stem}.report.json"));
    std::fs::write(
        &report_path,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| FeedError::io("write quarantine report", &report_path, e))?;
    Ok(kit_path)
}

impl ImportOptions {
    /// Options from the `[kits]` configuration: trusted keys (inline or `.pub` paths), ceilings
    /// and the quarantine directory (default `DATA_DIR/quarantine`).
    pub fn from_config(
        kits: &stella_core::config::KitsConfig,
        data_dir: &Path,
        actor: &str,
        origin: &str,
    ) -> Result<Self, FeedError> {
        let mut texts = Vec::with_capacity(kits.trusted_keys.len());
        for entry in &kits.trusted_keys {
            texts.push(
                stella_core::key_text(entry)
                    .map_err(|e| FeedError::io("read trusted kit key", Path::new(entry), e))?,
            );
        }
        let trusted_keys = TrustedKeys::from_texts(texts.iter().map(String::as_str))
            .map_err(|e| FeedError::Config(format!("[kits] trusted_keys: {e}")))?;
        let limits = Limits {
            max_kit_bytes: kits.max_kit_bytes,
            max_total_bytes: kits.max_unpacked_bytes,
            ..Limits::default()
        };
        let quarantine_dir = if kits.quarantine_dir.as_os_str().is_empty() {
            data_dir.join("quarantine")
        } else {
            kits.quarantine_dir.clone()
        };
        Ok(Self {
            trusted_keys,
            limits,
            dry_run: false,
            audit_dry_run: false,
            actor: actor.to_owned(),
            origin: origin.to_owned(),
            request_id: None,
            quarantine_dir: Some(quarantine_dir),
        })
    }
}
