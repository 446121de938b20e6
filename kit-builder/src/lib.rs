//! The connected side's kit building: read sources (files, directories, `https://` URLs), parse
//! them with the importer's parsers, merge, compute deltas, and write a signed kit.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use sha2::{Digest as _, Sha256};
use stella_importer::manifest::{KitBase, Sha256Hex, SourceSummary};
use stella_importer::merge::{MergeStats, merge_advisories};
use stella_importer::sources::{Parsed, SourceKind};
use stella_importer::state::KitState;
use stella_importer::{
    BuiltKit, FixedClock, KitContents, KitError, KitParams, Limits, RecordError, SigningKey,
    TrustedKeys, VerifiedKit,
};

pub mod duration;

/// Largest single source file or download accepted (after gzip decompression).
pub const MAX_SOURCE_FILE_BYTES: u64 = 1 << 30;

/// Why a build failed. Dropped records are not errors; they are in the report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("--source {0:?}: expected KIND=PATH")]
    SourceSyntax(String),
    #[error("{0}")]
    SourceKind(String),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("source {0} holds no file this kind reads")]
    EmptySource(String),
    #[error("base kit {path}: {source}")]
    Base {
        path: String,
        #[source]
        source: KitError,
    },
    #[error("sequence {sequence} must be greater than the base kit's {base}")]
    SequenceNotAfterBase { sequence: u64, base: u64 },
    #[error(transparent)]
    Kit(#[from] KitError),
}

/// One `--source KIND=LOCATION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub kind: SourceKind,
    /// A file, a directory (walked recursively, in sorted order), or an `https://` URL.
    pub location: String,
}

impl std::str::FromStr for SourceSpec {
    type Err = BuildError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (kind, location) = text
            .split_once('=')
            .ok_or_else(|| BuildError::SourceSyntax(text.to_string()))?;
        if location.is_empty() {
            return Err(BuildError::SourceSyntax(text.to_string()));
        }
        Ok(SourceSpec {
            kind: kind.parse().map_err(BuildError::SourceKind)?,
            location: location.to_string(),
        })
    }
}

/// What one source gave.
#[derive(Debug, Clone)]
pub struct SourceReport {
    pub kind: SourceKind,
    pub name: String,
    pub files: usize,
    pub records: usize,
    pub errors: Vec<RecordError>,
    pub summary: SourceSummary,
}

/// Everything `build` did, for the summary table.
#[derive(Debug)]
pub struct BuildReport {
    pub sources: Vec<SourceReport>,
    pub merge: MergeStats,
    pub kit: BuiltKit,
    /// The full state this kit (with its bases) stands for.
    pub state_counts: BTreeMap<&'static str, usize>,
}

/// Inputs of a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub sources: Vec<SourceSpec>,
    pub channel: String,
    pub sequence: u64,
    pub created: time::OffsetDateTime,
    pub expires: time::OffsetDateTime,
    /// Previous kits, oldest first: a full kit optionally followed by deltas. The last is the base.
    pub bases: Vec<PathBuf>,
    /// Public keys (minisign `.pub` text) the bases may be signed with besides the build key, for
    /// building across a key rotation.
    pub base_keys: Vec<String>,
}

/// The name a source goes by in the manifest, provenance and the summary: the last two path
/// components (`DSA/list`, `golang-vulndb/data/osv` -> `data/osv`), never the build machine's
/// absolute path; URLs as given.
fn display_name(location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let components: Vec<String> = Path::new(location)
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    match components.len() {
        0 => location.to_string(),
        1 => components[0].clone(),
        n => format!("{}/{}", components[n - 2], components[n - 1]),
    }
}

/// Lists the files of a source in a stable order, with the origin names used in provenance
/// (relative to the source, prefixed with its name; never absolute paths of the build machine).
pub fn list_source_files(spec: &SourceSpec) -> Result<Vec<(PathBuf, String)>, BuildError> {
    let root = Path::new(&spec.location);
    let name = display_name(&spec.location);
    let metadata = std::fs::metadata(root).map_err(|source| BuildError::Read {
        path: spec.location.clone(),
        source,
    })?;
    if metadata.is_file() {
        return Ok(vec![(root.to_path_buf(), name)]);
    }
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| BuildError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| BuildError::Read {
                path: dir.display().to_string(),
                source,
            })?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(|source| BuildError::Read {
                path: path.display().to_string(),
                source,
            })?;
            if file_type.is_dir() {
                stack.push(path);
            } else if file_type.is_file()
                && spec.kind.wants_file(&entry.file_name().to_string_lossy())
            {
                let relative = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                files.push((path, format!("{name}/{relative}")));
            }
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    if files.is_empty() {
        return Err(BuildError::EmptySource(spec.location.clone()));
    }
    Ok(files)
}

fn gunzip_if_needed(origin: &str, bytes: Vec<u8>) -> Result<Vec<u8>, BuildError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .take(MAX_SOURCE_FILE_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|source| BuildError::Read {
                path: origin.to_string(),
                source,
            })?;
        if out.len() as u64 > MAX_SOURCE_FILE_BYTES {
            return Err(BuildError::Read {
                path: origin.to_string(),
                source: std::io::Error::other("larger than 1 GiB once decompressed"),
            });
        }
        return Ok(out);
    }
    Ok(bytes)
}

fn fetch(url: &str) -> Result<Vec<u8>, BuildError> {
    let fail = |reason: String| BuildError::Fetch {
        url: url.to_string(),
        reason,
    };
    let mut response = ureq::get(url).call().map_err(|e| fail(e.to_string()))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_SOURCE_FILE_BYTES)
        .read_to_vec()
        .map_err(|e| fail(e.to_string()))
}

/// Reads and parses one source. Record errors are collected, not fatal.
pub fn load_source(
    spec: &SourceSpec,
    progress: Option<&ProgressBar>,
) -> Result<(Parsed, SourceReport), BuildError> {
    let name = display_name(&spec.location);
    let mut parsed = Parsed::default();
    let mut digest = Sha256::new();
    let mut files = 0;
    let mut handle =
        |origin: &str, bytes: Vec<u8>, parsed: &mut Parsed| -> Result<(), BuildError> {
            let bytes = gunzip_if_needed(origin, bytes)?;
            let file_digest = Sha256::digest(&bytes);
            digest.update(origin.as_bytes());
            digest.update([0]);
            digest.update(file_digest);
            parsed.extend(spec.kind.parse(origin, &bytes));
            files += 1;
            if let Some(progress) = progress {
                progress.inc(1);
            }
            Ok(())
        };
    if spec.location.starts_with("https://") {
        let bytes = fetch(&spec.location)?;
        handle(&name, bytes, &mut parsed)?;
    } else if spec.location.contains("://") {
        return Err(BuildError::Fetch {
            url: spec.location.clone(),
            reason: "only https:// URLs are fetched".into(),
        });
    } else {
        for (path, origin) in list_source_files(spec)? {
            let bytes = std::fs::read(&path).map_err(|source| BuildError::Read {
                path: path.display().to_string(),
                source,
            })?;
            handle(&origin, bytes, &mut parsed)?;
        }
    }
    let summary = SourceSummary {
        kind: spec.kind.as_str().to_string(),
        name: name.clone(),
        sha256: Sha256Hex::from_hasher(digest),
        records: parsed.records() as u64,
        dropped: parsed.errors.len() as u64,
    };
    let report = SourceReport {
        kind: spec.kind,
        name,
        files,
        records: parsed.records(),
        errors: parsed.errors.clone(),
        summary,
    };
    Ok((parsed, report))
}

/// Counts the files a build will read (for the progress bar length); URLs count as one.
pub fn count_files(specs: &[SourceSpec]) -> u64 {
    specs
        .iter()
        .map(|spec| {
            if spec.location.contains("://") {
                1
            } else {
                list_source_files(spec).map(|f| f.len() as u64).unwrap_or(0)
            }
        })
        .sum()
}

/// Parses all sources and merges them into the full contents of a kit.
pub fn collect(
    specs: &[SourceSpec],
    progress: Option<&ProgressBar>,
) -> Result<(KitContents, Vec<SourceReport>, MergeStats), BuildError> {
    let mut all = Parsed::default();
    let mut reports = Vec::new();
    for spec in specs {
        if let Some(progress) = progress {
            progress.set_message(format!("{} {}", spec.kind, display_name(&spec.location)));
        }
        let (parsed, report) = load_source(spec, progress)?;
        all.extend(parsed);
        reports.push(report);
    }
    let mut kev = all.kev;
    kev.sort_by(|a, b| a.cve.cmp(&b.cve));
    kev.dedup_by(|a, b| a.cve == b.cve);
    let mut epss = all.epss;
    epss.sort_by(|a, b| a.cve.cmp(&b.cve));
    epss.dedup_by(|a, b| a.cve == b.cve);
    let (advisories, stats) = merge_advisories(all.advisories, &kev, &epss);
    let mut contents = KitContents {
        advisories,
        vex_claims: all.vex_claims,
        kev,
        epss,
        licences: all.licences,
        revocations: all.revocations,
        key_updates: all.key_updates,
        removed: Vec::new(),
    };
    contents.sort();
    Ok((contents, reports, stats))
}

/// Reads the base chain (full kit, then deltas) and returns the state and the last kit.
/// The bases were signed by the same key the new kit is signed with; they are verified with it,
/// with the clock set to each kit's creation time so an expired base can still serve as a base.
pub fn read_bases(
    bases: &[PathBuf],
    key: &SigningKey,
    extra_keys: &[String],
) -> Result<Option<(KitState, VerifiedKit)>, BuildError> {
    let own = key.public_key_file();
    let trusted = TrustedKeys::from_texts(
        std::iter::once(own.as_str()).chain(extra_keys.iter().map(String::as_str)),
    )?;
    let mut state = KitState::default();
    let mut last: Option<VerifiedKit> = None;
    for path in bases {
        let base_error = |source: KitError| BuildError::Base {
            path: path.display().to_string(),
            source,
        };
        let bytes = std::fs::read(path).map_err(|source| BuildError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let (manifest, _) =
            stella_importer::read_manifest_unverified(bytes.as_slice(), &Limits::default())
                .map_err(base_error)?;
        let created = stella_importer::manifest::parse_time(&manifest.created)
            .map_err(|e| base_error(KitError::Manifest(e)))?;
        let kit = stella_importer::verify_kit(
            bytes.as_slice(),
            &trusted,
            &FixedClock(created),
            &Limits::default(),
        )
        .map_err(base_error)?;
        if let Some(previous) = &last {
            let head = stella_importer::ChannelHead {
                sequence: previous.manifest.sequence,
                manifest_sha256: previous.manifest_sha256.clone(),
            };
            stella_importer::check_sequence(&kit, Some(&head)).map_err(base_error)?;
        }
        state.apply(&kit).map_err(base_error)?;
        last = Some(kit);
    }
    Ok(last.map(|kit| (state, kit)))
}

/// Builds a kit (full, or delta when bases are given) and signs it with `key`.
pub fn build(
    options: &BuildOptions,
    key: &SigningKey,
    progress: Option<&ProgressBar>,
) -> Result<BuildReport, BuildError> {
    let base = read_bases(&options.bases, key, &options.base_keys)?;
    let (contents, reports, merge) = collect(&options.sources, progress)?;
    if let Some(progress) = progress {
        progress.set_message("merging, compressing and signing");
    }
    let state_counts = BTreeMap::from([
        ("advisories", contents.advisories.len()),
        ("vex_claims", contents.vex_claims.len()),
        ("kev", contents.kev.len()),
        ("epss", contents.epss.len()),
        ("licences", contents.licences.len()),
        ("revocations", contents.revocations.len()),
        ("key_updates", contents.key_updates.len()),
    ]);
    let (contents, kit_base) = match base {
        None => (contents, None),
        Some((state, last)) => {
            if options.sequence <= last.manifest.sequence {
                return Err(BuildError::SequenceNotAfterBase {
                    sequence: options.sequence,
                    base: last.manifest.sequence,
                });
            }
            let target = KitState::from_contents(&contents);
            drop(contents);
            let delta = state.delta_to(&target);
            let kit_base = KitBase {
                kit_id: last.manifest.kit_id.clone(),
                sequence: last.manifest.sequence,
                manifest_sha256: last.manifest_sha256.clone(),
            };
            (delta, Some(kit_base))
        }
    };
    let params = KitParams {
        channel: options.channel.clone(),
        sequence: options.sequence,
        created: options.created,
        expires: options.expires,
        base: kit_base,
        sources: reports.iter().map(|r| r.summary.clone()).collect(),
    };
    let kit = stella_importer::write_kit_owned(contents, &params, key)?;
    Ok(BuildReport {
        sources: reports,
        merge,
        kit,
        state_counts,
    })
}

/// The summary table printed after a build: records per source, dropped with reasons, merge counts.
pub fn summary_table(report: &BuildReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<40} {:>7} {:>9} {:>8}",
        "KIND", "SOURCE", "FILES", "RECORDS", "DROPPED"
    );
    for source in &report.sources {
        let _ = writeln!(
            out,
            "{:<20} {:<40} {:>7} {:>9} {:>8}",
            source.kind.as_str(),
            truncate(&source.name, 40),
            source.files,
            source.records,
            source.errors.len()
        );
    }
    let _ = writeln!(
        out,
        "advisories: {} input records -> {} merged advisories ({} built from several records, largest {}); {} with KEV, {} with EPSS",
        report.merge.input,
        report.merge.output,
        report.merge.merged_groups,
        report.merge.largest_group,
        report.merge.with_kev,
        report.merge.with_epss
    );
    let manifest = &report.kit.manifest;
    let counts: Vec<String> = manifest
        .counts
        .iter()
        .map(|(kind, n)| {
            format!(
                "{}={n}",
                serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "kit {} ({:?}, sequence {}): {}",
        manifest.kit_id,
        manifest.kind,
        manifest.sequence,
        counts.join(" ")
    );
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for source in &report.sources {
        for error in &source.errors {
            *reasons
                .entry(format!(
                    "{}: {}",
                    source.kind,
                    shorten_reason(&error.reason)
                ))
                .or_default() += 1;
        }
    }
    if !reasons.is_empty() {
        let _ = writeln!(out, "dropped records by reason:");
        for (reason, count) in reasons {
            let _ = writeln!(out, "  {count:>6}  {reason}");
        }
    }
    out
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let tail: String = text
            .chars()
            .rev()
            .take(width - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

/// Groups reasons that differ only in details (quoted values, line numbers) under one line.
fn shorten_reason(reason: &str) -> String {
    let cut = reason.find(['"', ':']).unwrap_or(reason.len());
    reason[..cut].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_specs_parse_and_name_their_errors() {
        let spec: SourceSpec = "debian-dsa=data/DSA/list".parse().unwrap();
        assert_eq!(spec.kind, SourceKind::DebianDsa);
        assert_eq!(display_name(&spec.location), "DSA/list");
        assert!(matches!(
            "osv".parse::<SourceSpec>(),
            Err(BuildError::SourceSyntax(_))
        ));
        assert!(matches!(
            "osv=".parse::<SourceSpec>(),
            Err(BuildError::SourceSyntax(_))
        ));
        assert!(matches!(
            "nope=x".parse::<SourceSpec>(),
            Err(BuildError::SourceKind(_))
        ));
    }

    #[test]
    fn only_https_urls_are_fetched() {
        for location in [
            "http://127.0.0.1:9/x.json",
            "ftp://example.invalid/x",
            "file:///etc/passwd",
        ] {
            let spec = SourceSpec {
                kind: SourceKind::Kev,
                location: location.into(),
            };
            match load_source(&spec, None) {
                Err(BuildError::Fetch { reason, .. }) => assert!(reason.contains("only https://")),
                other => panic!("{location}: {other:?}"),
            }
        }
    }
}
