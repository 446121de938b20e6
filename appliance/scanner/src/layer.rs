//! Reading one layer: decompression (gzip, zstd or none, sniffed), digest and
//! diff_id verification while streaming, tar entry normalisation (rejecting
//! absolute paths and `..`), whiteout decoding, and running the analyzers on
//! the files they want.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};

use crate::Limits;
use crate::analyzer::{Analyzer, FileInfo, PathResult};
use crate::digest::{Digest, VerifyKind, VerifyingReader};
use crate::error::ScanError;
use crate::fragment::{FileKey, LayerCache, LayerFragment, NoCache};
use crate::image::LayerRef;

/// What one tar entry does to the filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// Permission bits.
        mode: u32,
    },
    /// A directory.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link; the target is kept verbatim and resolved inside the image root.
    Symlink {
        /// The link text.
        target: String,
    },
    /// A hard link to another path of the image (normalised, root-relative).
    Hardlink {
        /// The linked path.
        target: String,
    },
    /// `.wh.NAME`: deletes NAME from the layers below.
    Whiteout,
    /// `.wh..wh..opq` in a directory: hides that directory's contents from the layers below.
    Opaque,
    /// Device, fifo or other special file.
    Special,
}

/// A normalised entry of a layer: `path` is root-relative without a leading
/// slash (`usr/bin/env`); for whiteouts it is the path being deleted, for an
/// opaque marker the directory made opaque.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerEntry {
    /// Root-relative path.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
}

/// Normalises a tar entry path: strips `./` and trailing `/`, rejects absolute
/// paths and `..` components. `Ok(None)` is the root directory itself.
pub fn normalise_entry_path(raw: &str) -> Result<Option<String>, &'static str> {
    if raw.starts_with('/') {
        return Err("absolute path");
    }
    if raw.contains('\0') {
        return Err("NUL in path");
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("`..` component"),
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(parts.join("/")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Gzip,
    Zstd,
    None,
}

fn sniff<R: BufRead>(reader: &mut R) -> std::io::Result<Compression> {
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// Reads the layer blob from `raw`, verifying blob digest/size and diff_id,
/// and returns its fragment. On any failure the blob is drained so that a
/// digest mismatch is reported in preference to the decoder error it caused.
/// What analysing a layer needs besides the layer itself.
pub(crate) struct AnalysisContext<'a> {
    pub(crate) analyzers: &'a [Box<dyn Analyzer>],
    pub(crate) analyzer_key: &'a str,
    pub(crate) limits: &'a Limits,
    pub(crate) file_cache: &'a dyn LayerCache,
}

pub(crate) fn analyse_layer_blob(
    raw: Box<dyn Read + '_>,
    layer: &LayerRef,
    context: &AnalysisContext<'_>,
    stats: &mut FileStats,
    on_bytes: &dyn Fn(u64),
) -> Result<LayerFragment, ScanError> {
    let blob_name = layer.blob.digest.to_string();
    let counting = CountingReader {
        inner: raw,
        on_bytes,
    };
    let mut blob_verifier = VerifyingReader::new(
        counting,
        layer.blob.digest.clone(),
        layer.blob.size,
        VerifyKind::Blob,
    );
    let inner_result = (|| -> Result<LayerFragment, ScanError> {
        let mut buffered = BufReader::with_capacity(256 * 1024, &mut blob_verifier);
        let compression =
            sniff(&mut buffered).map_err(|e| ScanError::from_io(blob_name.clone(), e))?;
        let decompressed: Box<dyn Read + '_> = match compression {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(buffered)
                    .map_err(|e| ScanError::from_io(blob_name.clone(), e))?,
            ),
            Compression::None => Box::new(buffered),
        };
        let mut diff_verifier = VerifyingReader::new(
            decompressed,
            layer.diff_id.clone(),
            None,
            VerifyKind::DiffId {
                blob: blob_name.clone(),
            },
        );
        let fragment = read_layer_tar_with(
            &mut diff_verifier,
            &layer.diff_id,
            context.analyzers,
            context.analyzer_key,
            context.limits,
            context.file_cache,
            stats,
        )?;
        diff_verifier.finish()?;
        Ok(fragment)
    })();
    match inner_result {
        Ok(fragment) => {
            blob_verifier.finish()?;
            Ok(fragment)
        }
        Err(error) => match blob_verifier.finish() {
            Err(mismatch @ (ScanError::DigestMismatch { .. } | ScanError::SizeMismatch { .. })) => {
                Err(mismatch)
            }
            _ => Err(error),
        },
    }
}

struct CountingReader<'a, R> {
    inner: R,
    on_bytes: &'a dyn Fn(u64),
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_bytes)(n as u64);
        Ok(n)
    }
}

/// Largest GNU long-name / long-link / PAX header entry accepted. The tar crate
/// reads these wholly into memory, so a hostile layer could otherwise make it
/// allocate gigabytes for one "file name".
pub const MAX_TAR_METADATA_BYTES: u64 = 1 << 20;

/// Watches the tar stream block by block, reading headers with the tar crate's
/// own accessors so that it sees exactly the structure the tar crate will
/// see, and fails, before the tar crate buffers it, on a GNU long-name,
/// long-link or PAX entry larger than [`MAX_TAR_METADATA_BYTES`].
struct TarGuard<R> {
    inner: R,
    layer: String,
    block: Vec<u8>,
    /// Data bytes (with padding) to let through before the next header.
    skip: u64,
    /// Bytes of a PAX header still to collect, then its padding.
    pax_remaining: u64,
    pax_padding: u64,
    pax_data: Vec<u8>,
    /// The `size` record of the pending PAX header (applies to the next entry).
    pax_size: Option<u64>,
    pax_pending: bool,
    /// GNU sparse extension blocks follow, then this much data.
    sparse_then: Option<u64>,
}

impl<R> TarGuard<R> {
    fn new(inner: R, layer: String) -> TarGuard<R> {
        TarGuard {
            inner,
            layer,
            block: Vec::with_capacity(512),
            skip: 0,
            pax_remaining: 0,
            pax_padding: 0,
            pax_data: Vec::new(),
            pax_size: None,
            pax_pending: false,
            sparse_then: None,
        }
    }

    fn too_big(&self, kind: tar::EntryType) -> std::io::Error {
        std::io::Error::other(ScanError::LimitExceeded {
            what: format!("layer {}: tar metadata entry ({kind:?})", self.layer),
            limit: format!("{MAX_TAR_METADATA_BYTES} bytes"),
        })
    }

    /// Handles one complete 512-byte block in header position.
    fn on_block(&mut self) -> std::io::Result<()> {
        if let Some(data) = self.sparse_then {
            // GNU sparse extension block: `isextended` is byte 504.
            if self.block.get(504).copied().unwrap_or(0) == 0 {
                self.sparse_then = None;
                self.skip = data.div_ceil(512).saturating_mul(512);
            }
            return Ok(());
        }
        let Some(header) = self.block.get(..512).map(tar::Header::from_byte_slice) else {
            return Ok(());
        };
        let kind = header.entry_type();
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let Ok(size) = header.entry_size() else {
            // The tar crate will report this header as invalid.
            return Ok(());
        };
        let padded = |size: u64| size.div_ceil(512).saturating_mul(512);
        if recognized && (kind.is_gnu_longname() || kind.is_gnu_longlink()) {
            if size > MAX_TAR_METADATA_BYTES {
                return Err(self.too_big(kind));
            }
            self.skip = padded(size);
            return Ok(());
        }
        if recognized && kind.is_pax_local_extensions() {
            if size > MAX_TAR_METADATA_BYTES {
                return Err(self.too_big(kind));
            }
            self.pax_remaining = size;
            self.pax_padding = padded(size) - size;
            self.pax_pending = true;
            self.pax_size = None;
            return Ok(());
        }
        // An entry the tar crate returns: a pending PAX `size` overrides its
        // header size unless it is itself an extension type.
        let is_extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let size = match (self.pax_pending, self.pax_size, is_extension) {
            (true, Some(pax), false) => pax,
            _ => size,
        };
        self.pax_pending = false;
        self.pax_size = None;
        let extended_sparse =
            kind.is_gnu_sparse() && header.as_gnu().is_some_and(|gnu| gnu.is_extended());
        if extended_sparse {
            self.sparse_then = Some(size);
        } else {
            self.skip = padded(size);
        }
        Ok(())
    }
}

/// The `size` record of a PAX extended header, if any.
fn pax_size(data: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .filter_map(|line| line.split_once(' ').map(|(_, record)| record))
        .find_map(|record| record.strip_prefix("size="))
        .and_then(|value| value.trim().parse().ok())
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut chunk = buf.get(..n).unwrap_or_default();
        while !chunk.is_empty() {
            if self.pax_remaining > 0 {
                let step = usize::try_from(self.pax_remaining)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                self.pax_data
                    .extend_from_slice(chunk.get(..step).unwrap_or_default());
                self.pax_remaining -= step as u64;
                chunk = chunk.get(step..).unwrap_or_default();
                if self.pax_remaining == 0 {
                    self.pax_size = pax_size(&self.pax_data);
                    self.pax_data.clear();
                    self.skip = self.pax_padding;
                }
                continue;
            }
            if self.skip > 0 {
                let step = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                self.skip -= step as u64;
                chunk = chunk.get(step..).unwrap_or_default();
                continue;
            }
            let take = (512 - self.block.len()).min(chunk.len());
            self.block
                .extend_from_slice(chunk.get(..take).unwrap_or_default());
            chunk = chunk.get(take..).unwrap_or_default();
            if self.block.len() == 512 {
                let result = self.on_block();
                self.block.clear();
                result?;
            }
        }
        Ok(n)
    }
}

/// Files handed to analyzers during a scan, and how many of them had their
/// results in the per-file cache (CAS, by content sha256).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Files whose analyzers ran.
    pub analysed: usize,
    /// Files whose results came from the per-file cache.
    pub reused: usize,
}

/// Reads an (uncompressed) layer tar and builds its fragment: the normalised
/// entry list (duplicates: last wins) and the analyzers' results per path.
pub fn read_layer_tar<R: Read>(
    tar_stream: R,
    diff_id: &Digest,
    analyzers: &[Box<dyn Analyzer>],
    analyzer_key: &str,
    limits: &Limits,
) -> Result<LayerFragment, ScanError> {
    let mut stats = FileStats::default();
    read_layer_tar_with(
        tar_stream,
        diff_id,
        analyzers,
        analyzer_key,
        limits,
        &NoCache,
        &mut stats,
    )
}

/// [`read_layer_tar`] with a per-file result cache (see [`LayerCache::get_file`]).
pub fn read_layer_tar_with<R: Read>(
    tar_stream: R,
    diff_id: &Digest,
    analyzers: &[Box<dyn Analyzer>],
    analyzer_key: &str,
    limits: &Limits,
    file_cache: &dyn LayerCache,
    stats: &mut FileStats,
) -> Result<LayerFragment, ScanError> {
    let layer_name = diff_id.to_string();
    let read_error = |e: std::io::Error| -> ScanError {
        match ScanError::from_io(layer_name.clone(), e) {
            ScanError::Io { source, .. } => ScanError::LayerRead {
                layer: layer_name.clone(),
                reason: source.to_string(),
            },
            other => other,
        }
    };
    let guarded = TarGuard::new(tar_stream, layer_name.clone());
    let mut archive = tar::Archive::new(guarded);
    let mut entries: BTreeMap<String, EntryKind> = BTreeMap::new();
    // Whiteouts are kept apart: they act on lower layers only, so a file of the
    // same name added by this very layer must survive them.
    let mut deletions: BTreeMap<String, EntryKind> = BTreeMap::new();
    let mut results: BTreeMap<String, PathResult> = BTreeMap::new();
    let mut session = FileCacheSession {
        cache: file_cache,
        stats,
        pending: Vec::new(),
    };
    let mut count = 0usize;
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        count += 1;
        if count > limits.max_layer_entries {
            return Err(ScanError::LimitExceeded {
                what: format!("layer {diff_id}"),
                limit: format!("{} entries", limits.max_layer_entries),
            });
        }
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if raw_path.len() > limits.max_path_bytes {
            return Err(ScanError::LimitExceeded {
                what: format!("layer {diff_id}: entry path"),
                limit: format!("{} bytes", limits.max_path_bytes),
            });
        }
        let unsafe_entry = |reason: &'static str| ScanError::UnsafeEntry {
            layer: layer_name.clone(),
            path: raw_path.clone(),
            reason,
        };
        let Some(path) = normalise_entry_path(&raw_path).map_err(unsafe_entry)? else {
            continue;
        };
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let entry_type = header.entry_type();
        let (parent, base) = match path.rsplit_once('/') {
            Some((parent, base)) => (Some(parent), base),
            None => (None, path.as_str()),
        };
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let join = |name: &str| match parent {
                Some(parent) => format!("{parent}/{name}"),
                None => name.to_owned(),
            };
            if hidden == ".wh..opq" {
                deletions.insert(parent.unwrap_or("").to_owned(), EntryKind::Opaque);
            } else if hidden.starts_with(".wh.") || hidden.is_empty() {
                // Other `.wh..wh.*` names are aufs bookkeeping, not content.
            } else {
                deletions.insert(join(hidden), EntryKind::Whiteout);
            }
            continue;
        }
        let kind = if entry_type.is_dir() {
            EntryKind::Dir { mode }
        } else if entry_type.is_symlink() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            EntryKind::Symlink { target }
        } else if entry_type.is_hard_link() {
            let target_raw = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            match normalise_entry_path(&target_raw) {
                Ok(Some(target)) => EntryKind::Hardlink { target },
                Ok(None) => return Err(unsafe_entry("hard link to the root directory")),
                Err(reason) => {
                    return Err(ScanError::UnsafeEntry {
                        layer: layer_name.clone(),
                        path: format!("{raw_path} -> {target_raw}"),
                        reason,
                    });
                }
            }
        } else if entry_type.is_file() || entry_type == tar::EntryType::Continuous {
            EntryKind::File {
                size: entry.size(),
                mode,
            }
        } else if entry_type.is_pax_global_extensions()
            || entry_type.is_pax_local_extensions()
            || entry_type.is_gnu_longname()
            || entry_type.is_gnu_longlink()
        {
            continue;
        } else {
            EntryKind::Special
        };
        // A later duplicate replaces the earlier one and its results.
        results.remove(&path);
        if let EntryKind::File { size, mode } = kind {
            let info = FileInfo {
                path: &path,
                mode,
                size,
            };
            let wanting: Vec<&dyn Analyzer> = analyzers
                .iter()
                .map(|a| a.as_ref())
                .filter(|a| a.wants(&info))
                .collect();
            if !wanting.is_empty() {
                let result = analyse_file(
                    &mut entry,
                    &info,
                    &wanting,
                    limits,
                    &mut session,
                    &read_error,
                )?;
                if !result.is_empty() {
                    results.insert(path.clone(), result);
                }
            }
        } else if let EntryKind::Hardlink { target } = &kind {
            // A link to a file of this layer shares its content, hence its results.
            if let Some(target_result) = results.get(target).cloned() {
                results.insert(path.clone(), target_result.relocated(target, &path));
            }
        }
        entries.insert(path, kind);
    }
    let mut entry_list: Vec<LayerEntry> = deletions
        .into_iter()
        .map(|(path, kind)| LayerEntry { path, kind })
        .collect();
    entry_list.extend(
        entries
            .into_iter()
            .map(|(path, kind)| LayerEntry { path, kind }),
    );
    file_cache.put_files(&session.pending)?;
    Ok(LayerFragment::new(
        diff_id.clone(),
        analyzer_key.to_owned(),
        entry_list,
        results,
    ))
}

/// Reads a layer tar held in memory with every analyzer and default limits
/// (the fuzzing entry point; the diff_id is computed from the bytes).
pub fn read_layer_tar_bytes(bytes: &[u8]) -> Result<LayerFragment, ScanError> {
    let diff_id = Digest::of_bytes(bytes);
    let analyzers = crate::analyzer::registry();
    let key = crate::analyzer::analyzer_key(&analyzers);
    read_layer_tar(bytes, &diff_id, &analyzers, &key, &Limits::default())
}

/// The per-file cache as one layer sees it: lookups go straight to the
/// cache, stores are collected and written once at the end of the layer.
struct FileCacheSession<'a> {
    cache: &'a dyn LayerCache,
    stats: &'a mut FileStats,
    pending: Vec<(FileKey, Vec<u8>)>,
}

/// What the per-file cache stores: the result and the path it was computed
/// for (evidence inside archives names that path and is relocated on reuse).
#[derive(Serialize, Deserialize)]
struct StoredFileResult {
    path: String,
    result: PathResult,
}

fn analyse_file<R: Read>(
    reader: &mut R,
    info: &FileInfo<'_>,
    wanting: &[&dyn Analyzer],
    limits: &Limits,
    session: &mut FileCacheSession<'_>,
    read_error: &dyn Fn(std::io::Error) -> ScanError,
) -> Result<PathResult, ScanError> {
    let mut result = PathResult::default();
    if info.size > limits.max_file_bytes {
        for analyzer in wanting {
            result.unknowns.push(crate::analyzer::UnknownReason {
                analyzer: analyzer.id().to_owned(),
                reason: format!(
                    "file is {} bytes, larger than the {}-byte analysis limit",
                    info.size, limits.max_file_bytes
                ),
            });
        }
        return Ok(result);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(info.size).unwrap_or(0));
    reader
        .take(limits.max_file_bytes)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    // Results depend on the content, the analyzers and the file name (a dpkg
    // `.list` names its package, a binary component its file), not the directory.
    let key = FileKey {
        sha256: Digest::of_bytes(&bytes),
        file_name: info.path.rsplit('/').next().unwrap_or(info.path).to_owned(),
        analyzers: wanting
            .iter()
            .map(|a| format!("{}@{}", a.id(), a.version()))
            .collect::<Vec<_>>()
            .join(","),
    };
    if let Some(stored) = session.cache.get_file(&key)?
        && let Ok(stored) = serde_json::from_slice::<StoredFileResult>(&stored)
    {
        session.stats.reused += 1;
        return Ok(stored.result.relocated(&stored.path, info.path));
    }
    for analyzer in wanting {
        let output = analyzer.analyze(info.path, &bytes);
        result.merge(analyzer.id(), output);
    }
    if let Some(native) = &mut result.native {
        native.sha256 = key.sha256.hex().to_owned();
    }
    session.stats.analysed += 1;
    let stored = StoredFileResult {
        path: info.path.to_owned(),
        result,
    };
    if let Ok(encoded) = serde_json::to_vec(&stored) {
        session.pending.push((key, encoded));
    }
    Ok(stored.result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_normalised_or_rejected() {
        assert_eq!(
            normalise_entry_path("./usr/bin/").unwrap().as_deref(),
            Some("usr/bin")
        );
        assert_eq!(normalise_entry_path("./").unwrap(), None);
        assert_eq!(normalise_entry_path("/etc/passwd"), Err("absolute path"));
        assert_eq!(normalise_entry_path("a/../../etc"), Err("`..` component"));
        assert_eq!(
            normalise_entry_path("a/./b//c").unwrap().as_deref(),
            Some("a/b/c")
        );
    }
}
