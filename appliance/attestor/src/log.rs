//! The append-only transparency log: a Merkle tree stored as C2SP tlog-tiles in a directory,
//! with signed-note checkpoints. Appends are batched (group commit): a batch's tiles, entry
//! bundles and checkpoint are written (temp file + fsync + rename + directory fsync) before any
//! entry of it is acknowledged, so every acknowledged entry is durable and covered by a
//! checkpoint that was on disk before the acknowledgement.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::AttestorError;
use crate::merkle::{self, Hash, SubtreeHashes};
use crate::note::{Checkpoint, CheckpointSigner, verify_checkpoint};
use crate::rekor::{
    CheckpointEnvelope, HashedRekord, InclusionProof, KindVersion, LogId, TransparencyLogEntry,
};
use crate::tiles::{TILE_HEIGHT, TILE_WIDTH, TileId, encode_bundle, parse_bundle};

/// The latest signed checkpoint, relative to the log directory.
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// Every checkpoint the log ever signed, as `u32` big-endian length + note, appended.
pub const CHECKPOINT_HISTORY_FILE: &str = "checkpoints.log";
/// Entries committed per batch at most.
pub const MAX_BATCH: usize = 1024;

/// The in-memory tree: `levels[k][i]` is the hash of the complete subtree of `2^k` leaves
/// starting at leaf `i << k`.
#[derive(Debug, Default, Clone)]
struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut level = 0;
        let mut index = self.levels[0].len() - 1;
        while index & 1 == 1 {
            let parent =
                merkle::node_hash(&self.levels[level][index - 1], &self.levels[level][index]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
            index >>= 1;
        }
    }

    fn truncate(&mut self, size: u64) {
        for (level, hashes) in self.levels.iter_mut().enumerate() {
            hashes.truncate((size >> level) as usize);
        }
    }

    fn root(&self, size: u64) -> Result<Hash, AttestorError> {
        self.range(0, size)
    }

    /// The hashes of tile level `tile_level` from index `lo` to `hi`.
    fn tile_hashes(&self, tile_level: u32, lo: u64, hi: u64) -> Vec<u8> {
        let level = (tile_level * TILE_HEIGHT) as usize;
        let mut out = Vec::with_capacity(((hi - lo) * 32) as usize);
        if let Some(hashes) = self
            .levels
            .get(level)
            .and_then(|hashes| hashes.get(lo as usize..hi as usize))
        {
            for hash in hashes {
                out.extend_from_slice(hash);
            }
        }
        out
    }
}

impl SubtreeHashes for Tree {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, AttestorError> {
        self.levels
            .get(level as usize)
            .and_then(|hashes| hashes.get(index as usize))
            .copied()
            .ok_or_else(|| AttestorError::Proof(format!("no subtree {index} at level {level}")))
    }
}

struct State {
    tree: Tree,
    /// Entries of the current partial entry bundle.
    bundle_tail: Vec<Vec<u8>>,
    /// The latest signed checkpoint (note text) and its size.
    checkpoint: String,
    checkpoint_size: u64,
    /// Valid length of the checkpoint history file.
    history_length: u64,
}

#[derive(Default)]
struct Queue {
    pending: Vec<(u64, Vec<u8>)>,
    next_ticket: u64,
    done: HashMap<u64, Result<TransparencyLogEntry, String>>,
    committing: bool,
}

/// An append-only Rekor v2 log in a directory.
pub struct TransparencyLog {
    dir: PathBuf,
    signer: CheckpointSigner,
    state: Mutex<State>,
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl std::fmt::Debug for TransparencyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransparencyLog")
            .field("dir", &self.dir)
            .field("origin", &self.signer.origin())
            .finish()
    }
}

fn lock<'a, T>(mutex: &'a Mutex<T>, dir: &Path) -> Result<MutexGuard<'a, T>, AttestorError> {
    mutex.lock().map_err(|_| AttestorError::Corrupt {
        dir: dir.to_path_buf(),
        reason: "a previous append panicked; reopen the log".into(),
    })
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AttestorError> {
    let temp = stage(path, bytes)?;
    fs::rename(&temp, path).map_err(AttestorError::io(path, "renaming into place"))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Writes `bytes` to a temp file beside `path` and fsyncs it; returns the temp path.
fn stage(path: &Path, bytes: &[u8]) -> Result<PathBuf, AttestorError> {
    let (temp, file) = stage_unsynced(path, bytes)?;
    file.sync_all().map_err(AttestorError::io(&temp, "fsync"))?;
    Ok(temp)
}

/// Writes `bytes` to a temp file beside `path`; the caller fsyncs the returned file.
fn stage_unsynced(path: &Path, bytes: &[u8]) -> Result<(PathBuf, File), AttestorError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    if !parent.exists() {
        fs::create_dir_all(parent).map_err(AttestorError::io(parent, "creating directory"))?;
        let mut ancestor = parent.parent();
        while let Some(dir) = ancestor {
            sync_dir(dir)?;
            if dir.join(CHECKPOINT_FILE).exists() || dir.as_os_str().is_empty() {
                break;
            }
            ancestor = dir.parent();
        }
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(".{file_name}.tmp"));
    let mut file = File::create(&temp).map_err(AttestorError::io(&temp, "creating"))?;
    file.write_all(bytes)
        .map_err(AttestorError::io(&temp, "writing"))?;
    Ok((temp, file))
}

/// Runs `jobs` on scoped threads (fsyncs overlap in the file system's journal commit).
fn in_parallel<T: Send>(
    jobs: Vec<T>,
    run: impl Fn(T) -> Result<(), AttestorError> + Sync,
) -> Result<(), AttestorError> {
    if jobs.len() <= 1 {
        return jobs.into_iter().try_for_each(run);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let run = &run;
                scope.spawn(move || run(job))
            })
            .collect();
        let mut result = Ok(());
        for handle in handles {
            let outcome = handle
                .join()
                .unwrap_or_else(|_| Err(AttestorError::Batch("an fsync thread panicked".into())));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    })
}

fn sync_dir(dir: &Path) -> Result<(), AttestorError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(AttestorError::io(dir, "fsync directory"))
}

fn read_file(path: &Path) -> Result<Vec<u8>, AttestorError> {
    fs::read(path).map_err(AttestorError::io(path, "reading"))
}

/// Reads the checkpoint history, dropping a torn record at its end.
fn read_history(path: &Path) -> Result<(Vec<String>, u64), AttestorError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(error) => return Err(AttestorError::io(path, "reading")(error)),
    };
    let mut notes = Vec::new();
    let mut offset = 0usize;
    while bytes.len() - offset >= 4 {
        let length = u32::from_be_bytes([
            bytes[offset],
            bytes[offset + 1],
            bytes[offset + 2],
            bytes[offset + 3],
        ]) as usize;
        if bytes.len() - offset - 4 < length {
            break;
        }
        let Ok(note) = String::from_utf8(bytes[offset + 4..offset + 4 + length].to_vec()) else {
            break;
        };
        notes.push(note);
        offset += 4 + length;
    }
    Ok((notes, offset as u64))
}

/// Appends a record after the first `valid_length` bytes; returns the new length.
fn append_history(path: &Path, valid_length: u64, note: &str) -> Result<u64, AttestorError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(AttestorError::io(path, "opening"))?;
    file.set_len(valid_length)
        .map_err(AttestorError::io(path, "truncating a torn record"))?;
    let mut record = (note.len() as u32).to_be_bytes().to_vec();
    record.extend_from_slice(note.as_bytes());
    use std::io::Seek as _;
    file.seek(std::io::SeekFrom::End(0))
        .map_err(AttestorError::io(path, "seeking"))?;
    file.write_all(&record)
        .map_err(AttestorError::io(path, "appending"))?;
    file.sync_data().map_err(AttestorError::io(path, "fsync"))?;
    Ok(valid_length + record.len() as u64)
}

/// The entries of the partial entry bundle at `size` (empty when `size` is a multiple of 256).
fn read_tail(dir: &Path, size: u64) -> Result<Vec<Vec<u8>>, AttestorError> {
    let tail = size % TILE_WIDTH;
    if tail == 0 {
        return Ok(Vec::new());
    }
    let id = TileId {
        level: None,
        index: size / TILE_WIDTH,
        partial_width: Some(tail as u16),
    };
    let entries = parse_bundle(&read_file(&dir.join(id.path()))?)?;
    if entries.len() as u64 != tail {
        return Err(AttestorError::Corrupt {
            dir: dir.to_path_buf(),
            reason: format!("{} holds {} entries", id.path(), entries.len()),
        });
    }
    Ok(entries)
}

impl TransparencyLog {
    /// Opens the log in `dir` (created, with a signed empty checkpoint, if it does not exist).
    /// Recovers from a crash: anything written after the last checkpoint is ignored and later
    /// overwritten; the tree is rebuilt from the level-0 tiles and must match the checkpoint.
    pub fn open(dir: &Path, signer: CheckpointSigner) -> Result<Self, AttestorError> {
        fs::create_dir_all(dir).map_err(AttestorError::io(dir, "creating directory"))?;
        let corrupt = |reason: String| AttestorError::Corrupt {
            dir: dir.to_path_buf(),
            reason,
        };
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let (checkpoint_text, checkpoint) = if checkpoint_path.exists() {
            let text = String::from_utf8(read_file(&checkpoint_path)?)
                .map_err(|_| corrupt("checkpoint is not UTF-8".into()))?;
            let checkpoint = verify_checkpoint(&text, signer.origin(), signer.public_key())
                .map_err(|error| corrupt(format!("stored checkpoint: {error}")))?;
            (text, checkpoint)
        } else {
            let checkpoint = Checkpoint {
                origin: signer.origin().to_owned(),
                size: 0,
                root: merkle::empty_root(),
            };
            let text = signer.sign(&checkpoint)?;
            write_atomic(&checkpoint_path, text.as_bytes())?;
            (text, checkpoint)
        };
        let size = checkpoint.size;
        let mut tree = Tree::default();
        let full_tiles = size / TILE_WIDTH;
        let tail = size % TILE_WIDTH;
        let tile_count = full_tiles + u64::from(tail != 0);
        for index in 0..tile_count {
            let id = TileId {
                level: Some(0),
                index,
                partial_width: if index == full_tiles {
                    Some(tail as u16)
                } else {
                    None
                },
            };
            let bytes = read_file(&dir.join(id.path()))?;
            if bytes.len() as u64 != id.width() * 32 {
                return Err(corrupt(format!(
                    "{} holds {} bytes, expected {}",
                    id.path(),
                    bytes.len(),
                    id.width() * 32
                )));
            }
            for chunk in bytes.chunks_exact(32) {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(chunk);
                tree.push(hash);
            }
        }
        let root = tree.root(size)?;
        if root != checkpoint.root {
            return Err(corrupt(format!(
                "level-0 tiles give root {} for size {size}, the checkpoint says {}",
                hex::encode(root),
                hex::encode(checkpoint.root)
            )));
        }
        let bundle_tail = if tail != 0 {
            let entries = read_tail(dir, size)?;
            for (offset, entry) in entries.iter().enumerate() {
                let index = full_tiles * TILE_WIDTH + offset as u64;
                if merkle::leaf_hash(entry) != tree.levels[0][index as usize] {
                    return Err(corrupt(format!(
                        "entry {index} does not match its leaf hash"
                    )));
                }
            }
            entries
        } else {
            Vec::new()
        };
        // The served checkpoint must be the last history record (a crash may have come between
        // writing the checkpoint and appending it to the history).
        let history_path = dir.join(CHECKPOINT_HISTORY_FILE);
        let (mut history, mut valid_length) = read_history(&history_path)?;
        // After a power loss the history may hold a checkpoint whose rename did not survive;
        // it was never acknowledged, so it is dropped (the log continues from the checkpoint).
        if let Some(last) = history.last()
            && last != &checkpoint_text
            && Checkpoint::parse_body(&format!(
                "{}\n",
                last.split("\n\n").next().unwrap_or_default()
            ))
            .map(|c| c.size > size)
            .unwrap_or(false)
        {
            valid_length -= 4 + last.len() as u64;
            history.pop();
            let file = OpenOptions::new()
                .write(true)
                .open(&history_path)
                .map_err(AttestorError::io(&history_path, "opening"))?;
            file.set_len(valid_length)
                .map_err(AttestorError::io(&history_path, "truncating"))?;
            file.sync_all()
                .map_err(AttestorError::io(&history_path, "fsync"))?;
        }
        let file_length = fs::metadata(&history_path).map_or(0, |m| m.len());
        let torn = file_length.saturating_sub(valid_length);
        // Only a torn append of the current checkpoint may be cut off; anything else is
        // evidence the monitor must see, never silently truncated.
        if torn > 0
            && (history.last() == Some(&checkpoint_text)
                || torn >= 4 + checkpoint_text.len() as u64)
        {
            return Err(corrupt(format!(
                "{CHECKPOINT_HISTORY_FILE} has {torn} unreadable bytes after offset {valid_length}"
            )));
        }
        let history_length = if history.last() != Some(&checkpoint_text) {
            let length = append_history(&history_path, valid_length, &checkpoint_text)?;
            sync_dir(dir)?;
            length
        } else {
            valid_length
        };
        Ok(TransparencyLog {
            dir: dir.to_path_buf(),
            signer,
            state: Mutex::new(State {
                tree,
                bundle_tail,
                checkpoint: checkpoint_text,
                checkpoint_size: size,
                history_length,
            }),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        })
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint signer (origin, key, log id).
    pub fn signer(&self) -> &CheckpointSigner {
        &self.signer
    }

    /// `GET /api/v2/checkpoint`: the latest signed checkpoint.
    pub fn checkpoint(&self) -> Result<String, AttestorError> {
        Ok(lock(&self.state, &self.dir)?.checkpoint.clone())
    }

    /// The current tree size.
    pub fn size(&self) -> Result<u64, AttestorError> {
        Ok(lock(&self.state, &self.dir)?.checkpoint_size)
    }

    /// `GET /api/v2/tile/...`: the bytes of a hash tile or entry bundle covered by the latest
    /// checkpoint; `path` is relative to the API root (`tile/0/x001/234.p/7`).
    pub fn read_tile(&self, path: &str) -> Result<Vec<u8>, AttestorError> {
        let id = TileId::parse(path)?;
        let size = self.size()?;
        let available = match id.level {
            Some(level) => size >> (u32::from(level) * TILE_HEIGHT),
            None => size,
        };
        let end = id
            .index
            .saturating_mul(TILE_WIDTH)
            .saturating_add(id.width());
        if end > available {
            return Err(AttestorError::TilePath {
                path: path.to_owned(),
                reason: format!("not covered by the checkpoint of size {size}"),
            });
        }
        read_file(&self.dir.join(id.path()))
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves (`size` at most the
    /// checkpointed size).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, AttestorError> {
        let state = lock(&self.state, &self.dir)?;
        if size > state.checkpoint_size {
            return Err(AttestorError::Proof(format!(
                "size {size} exceeds the checkpoint size {}",
                state.checkpoint_size
            )));
        }
        merkle::inclusion_proof(&state.tree, index, size)
    }

    /// The consistency proof between two checkpointed sizes.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, AttestorError> {
        let state = lock(&self.state, &self.dir)?;
        if new > state.checkpoint_size {
            return Err(AttestorError::Proof(format!(
                "size {new} exceeds the checkpoint size {}",
                state.checkpoint_size
            )));
        }
        merkle::consistency_proof(&state.tree, old, new)
    }

    /// The root hash at a checkpointed size.
    pub fn root_at(&self, size: u64) -> Result<Hash, AttestorError> {
        let state = lock(&self.state, &self.dir)?;
        if size > state.checkpoint_size {
            return Err(AttestorError::Proof(format!(
                "size {size} is not checkpointed"
            )));
        }
        state.tree.root(size)
    }

    /// Checks, logs and acknowledges one entry. Concurrent callers are committed together in
    /// one batch (one checkpoint signature, one set of fsyncs).
    pub fn append(&self, entry: &HashedRekord) -> Result<TransparencyLogEntry, AttestorError> {
        entry.check_signature()?;
        let body = entry.canonical_body()?;
        if body.len() > usize::from(u16::MAX) {
            return Err(AttestorError::Entry(format!(
                "body of {} bytes exceeds 65535",
                body.len()
            )));
        }
        let mut queue = lock(&self.queue, &self.dir)?;
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.pending.push((ticket, body));
        loop {
            if let Some(result) = queue.done.remove(&ticket) {
                return result.map_err(AttestorError::Batch);
            }
            if !queue.committing {
                queue.committing = true;
                let take = queue.pending.len().min(MAX_BATCH);
                let batch: Vec<(u64, Vec<u8>)> = queue.pending.drain(..take).collect();
                drop(queue);
                let tickets: Vec<u64> = batch.iter().map(|(t, _)| *t).collect();
                let bodies: Vec<Vec<u8>> = batch.into_iter().map(|(_, b)| b).collect();
                let results = self.commit(bodies);
                queue = lock(&self.queue, &self.dir)?;
                match results {
                    Ok(entries) => {
                        for (t, e) in tickets.into_iter().zip(entries) {
                            queue.done.insert(t, Ok(e));
                        }
                    }
                    Err(error) => {
                        let text = error.to_string();
                        for t in tickets {
                            queue.done.insert(t, Err(text.clone()));
                        }
                    }
                }
                queue.committing = false;
                self.wake.notify_all();
            } else {
                queue = self.wake.wait(queue).map_err(|_| AttestorError::Corrupt {
                    dir: self.dir.clone(),
                    reason: "append queue poisoned".into(),
                })?;
            }
        }
    }

    /// Appends a batch of entries (already checked) and acknowledges them all at once.
    pub fn append_batch(
        &self,
        entries: &[HashedRekord],
    ) -> Result<Vec<TransparencyLogEntry>, AttestorError> {
        let mut bodies = Vec::with_capacity(entries.len());
        for entry in entries {
            entry.check_signature()?;
            bodies.push(entry.canonical_body()?);
        }
        let mut out = Vec::with_capacity(bodies.len());
        for chunk in bodies.chunks(MAX_BATCH) {
            out.extend(self.commit(chunk.to_vec())?);
        }
        Ok(out)
    }

    /// Writes one batch durably, signs and stores its checkpoint, then builds the responses.
    fn commit(&self, bodies: Vec<Vec<u8>>) -> Result<Vec<TransparencyLogEntry>, AttestorError> {
        let mut state = lock(&self.state, &self.dir)?;
        let old = state.checkpoint_size;
        let result = self.write_batch(&mut state, &bodies);
        if result.is_err() {
            // Roll the memory back to the last checkpoint; files beyond it are never served
            // and are overwritten by the next batch.
            state.tree.truncate(old);
            state.bundle_tail = read_tail(&self.dir, old)?;
        }
        result?;
        let size = state.checkpoint_size;
        let root = state.tree.root(size)?;
        let log_id = STANDARD.encode(self.signer.log_id());
        let mut out = Vec::with_capacity(bodies.len());
        for (offset, body) in bodies.iter().enumerate() {
            let index = old + offset as u64;
            let proof = merkle::inclusion_proof(&state.tree, index, size)?;
            out.push(TransparencyLogEntry {
                log_index: index.to_string(),
                log_id: LogId {
                    key_id: log_id.clone(),
                },
                kind_version: KindVersion {
                    kind: "hashedrekord".into(),
                    version: "0.0.2".into(),
                },
                inclusion_proof: InclusionProof {
                    log_index: index.to_string(),
                    root_hash: STANDARD.encode(root),
                    tree_size: size.to_string(),
                    hashes: proof.iter().map(|h| STANDARD.encode(h)).collect(),
                    checkpoint: CheckpointEnvelope {
                        envelope: state.checkpoint.clone(),
                    },
                },
                canonicalized_body: STANDARD.encode(body),
            });
        }
        Ok(out)
    }

    fn write_batch(&self, state: &mut State, bodies: &[Vec<u8>]) -> Result<(), AttestorError> {
        let old = state.checkpoint_size;
        let new = old + bodies.len() as u64;
        // A partial tail that started a fresh bundle after a full one is empty.
        if old.is_multiple_of(TILE_WIDTH) {
            state.bundle_tail.clear();
        }
        let mut bundles: Vec<(TileId, Vec<u8>)> = Vec::new();
        for (offset, body) in bodies.iter().enumerate() {
            let index = old + offset as u64;
            state.tree.push(merkle::leaf_hash(body));
            state.bundle_tail.push(body.clone());
            let full = (index + 1).is_multiple_of(TILE_WIDTH);
            if full {
                bundles.push((
                    TileId {
                        level: None,
                        index: index / TILE_WIDTH,
                        partial_width: None,
                    },
                    encode_bundle(&state.bundle_tail)?,
                ));
                state.bundle_tail.clear();
            }
        }
        if !new.is_multiple_of(TILE_WIDTH) {
            bundles.push((
                TileId {
                    level: None,
                    index: new / TILE_WIDTH,
                    partial_width: Some((new % TILE_WIDTH) as u16),
                },
                encode_bundle(&state.bundle_tail)?,
            ));
        }
        let mut writes = bundles;
        // Hash tiles of every tile level the batch touched.
        let mut tile_level = 0u32;
        loop {
            let shift = tile_level * TILE_HEIGHT;
            let (old_count, new_count) = (old >> shift, new >> shift);
            if new_count == 0 {
                break;
            }
            if new_count > old_count {
                let first = old_count / TILE_WIDTH;
                let last = (new_count - 1) / TILE_WIDTH;
                for index in first..=last {
                    let lo = index * TILE_WIDTH;
                    let hi = new_count.min(lo + TILE_WIDTH);
                    let width = hi - lo;
                    let id = TileId {
                        level: Some(tile_level as u8),
                        index,
                        partial_width: (width < TILE_WIDTH).then_some(width as u16),
                    };
                    writes.push((id, state.tree.tile_hashes(tile_level, lo, hi)));
                }
            }
            tile_level += 1;
            if tile_level > 7 {
                break;
            }
        }
        // Sign the checkpoint first (the root is known), then: write every tile, bundle and the
        // checkpoint to temp files and fsync them together; rename the tiles and fsync their
        // directories; only then rename the checkpoint into place and, together with the log
        // directory's fsync, append it to the history. The checkpoint can thus never be
        // visible before the tiles it covers are durable.
        let root = state.tree.root(new)?;
        let note = self.signer.sign(&Checkpoint {
            origin: self.signer.origin().to_owned(),
            size: new,
            root,
        })?;
        let checkpoint_path = self.dir.join(CHECKPOINT_FILE);
        let mut staged = Vec::with_capacity(writes.len());
        for (id, bytes) in &writes {
            let path = self.dir.join(id.path());
            let (temp, file) = stage_unsynced(&path, bytes)?;
            staged.push((temp, file, path));
        }
        let (checkpoint_temp, checkpoint_file) = stage_unsynced(&checkpoint_path, note.as_bytes())?;
        let mut files: Vec<(&Path, &File)> =
            staged.iter().map(|(t, f, _)| (t.as_path(), f)).collect();
        files.push((checkpoint_temp.as_path(), &checkpoint_file));
        in_parallel(files, |(temp, file)| {
            file.sync_all().map_err(AttestorError::io(temp, "fsync"))
        })?;
        let mut dirs = BTreeSet::new();
        for (temp, _, path) in &staged {
            fs::rename(temp, path).map_err(AttestorError::io(path, "renaming into place"))?;
            if let Some(parent) = path.parent() {
                dirs.insert(parent.to_path_buf());
            }
        }
        in_parallel(dirs.into_iter().collect(), |dir| sync_dir(&dir))?;
        fs::rename(&checkpoint_temp, &checkpoint_path)
            .map_err(AttestorError::io(&checkpoint_path, "renaming into place"))?;
        let history = self.dir.join(CHECKPOINT_HISTORY_FILE);
        let history_length = state.history_length;
        let new_length = std::sync::Mutex::new(history_length);
        in_parallel(vec![true, false], |is_history| {
            if is_history {
                let length = append_history(&history, history_length, &note)?;
                if let Ok(mut slot) = new_length.lock() {
                    *slot = length;
                }
                Ok(())
            } else {
                sync_dir(&self.dir)
            }
        })?;
        state.history_length = new_length
            .into_inner()
            .map_err(|_| AttestorError::Batch("history length lock poisoned".into()))?;
        state.checkpoint = note;
        state.checkpoint_size = new;
        // C2SP tlog-tiles: a partial tile MAY be deleted once its full tile is served, which is
        // now (the checkpoint covering it is on disk). This keeps the log's size per entry flat.
        for (id, _) in &writes {
            if id.partial_width.is_none() {
                let partials = self.dir.join(format!("{}.p", id.path()));
                if partials.exists() {
                    // Only an optimisation: a failure leaves extra files that are never wrong.
                    let _ = fs::remove_dir_all(&partials);
                }
            }
        }
        Ok(())
    }
}

/// What [`verify_log`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// Size of the latest checkpoint.
    pub size: u64,
    /// Root of the latest checkpoint.
    pub root: Hash,
    /// Number of stored checkpoints checked.
    pub checkpoints_checked: usize,
    /// Number of tiles (hash tiles and entry bundles) checked.
    pub tiles_checked: usize,
    /// False after a crash between writing the checkpoint and recording it in the history
    /// (the next open of the log records it).
    pub latest_in_history: bool,
}

/// The monitor (`stella log verify`): recomputes the whole tree from the entry bundles, checks
/// every hash tile against it, and checks that every stored checkpoint is signed by the log key,
/// that sizes never decrease and that each root equals the recomputed root at its size.
pub fn verify_log(
    dir: &Path,
    origin: &str,
    ed25519_public_key: &[u8],
) -> Result<LogReport, AttestorError> {
    let corrupt = |reason: String| AttestorError::Corrupt {
        dir: dir.to_path_buf(),
        reason,
    };
    let text = String::from_utf8(read_file(&dir.join(CHECKPOINT_FILE))?)
        .map_err(|_| corrupt("checkpoint is not UTF-8".into()))?;
    let latest = verify_checkpoint(&text, origin, ed25519_public_key)?;
    let size = latest.size;
    let mut tree = Tree::default();
    let mut tiles_checked = 0usize;
    let full = size / TILE_WIDTH;
    let tail = size % TILE_WIDTH;
    for index in 0..full + u64::from(tail != 0) {
        let id = TileId {
            level: None,
            index,
            partial_width: (index == full).then_some(tail as u16),
        };
        let entries = parse_bundle(&read_file(&dir.join(id.path()))?)
            .map_err(|error| corrupt(format!("{}: {error}", id.path())))?;
        if entries.len() as u64 != id.width() {
            return Err(corrupt(format!(
                "{} holds {} entries",
                id.path(),
                entries.len()
            )));
        }
        for entry in &entries {
            tree.push(merkle::leaf_hash(entry));
        }
        tiles_checked += 1;
    }
    for tile_level in 0..8u32 {
        let count = size >> (tile_level * TILE_HEIGHT);
        if count == 0 {
            break;
        }
        let full = count / TILE_WIDTH;
        let tail = count % TILE_WIDTH;
        for index in 0..full + u64::from(tail != 0) {
            let id = TileId {
                level: Some(tile_level as u8),
                index,
                partial_width: (index == full).then_some(tail as u16),
            };
            let lo = index * TILE_WIDTH;
            let expected = tree.tile_hashes(tile_level, lo, lo + id.width());
            if read_file(&dir.join(id.path()))? != expected {
                return Err(corrupt(format!("{} does not match the entries", id.path())));
            }
            tiles_checked += 1;
        }
    }
    let root = tree.root(size)?;
    if root != latest.root {
        return Err(corrupt(format!(
            "entries give root {} at size {size}, the checkpoint says {}",
            hex::encode(root),
            hex::encode(latest.root)
        )));
    }
    let history_path = dir.join(CHECKPOINT_HISTORY_FILE);
    let (history, valid_length) = read_history(&history_path)?;
    let file_length = fs::metadata(&history_path)
        .map_err(AttestorError::io(&history_path, "reading metadata"))?
        .len();
    let mut previous = 0u64;
    for (number, note) in history.iter().enumerate() {
        let checkpoint = verify_checkpoint(note, origin, ed25519_public_key)
            .map_err(|error| corrupt(format!("stored checkpoint {number}: {error}")))?;
        if checkpoint.size < previous {
            return Err(corrupt(format!(
                "stored checkpoint {number} shrinks the log from {previous} to {}",
                checkpoint.size
            )));
        }
        if checkpoint.size > size {
            return Err(corrupt(format!(
                "stored checkpoint {number} has size {} beyond the latest {size}",
                checkpoint.size
            )));
        }
        if tree.root(checkpoint.size)? != checkpoint.root {
            return Err(corrupt(format!(
                "stored checkpoint {number} (size {}) is inconsistent with the log",
                checkpoint.size
            )));
        }
        previous = checkpoint.size;
    }
    // A crash between writing the checkpoint and appending it to the history leaves it out;
    // the next open appends it. Report it rather than fail.
    let latest_in_history = history.last() == Some(&text);
    // Unreadable bytes are only legitimate as a torn append of the latest checkpoint.
    let torn = file_length - valid_length;
    if torn > 0 && (latest_in_history || torn >= 4 + text.len() as u64) {
        return Err(corrupt(format!(
            "{CHECKPOINT_HISTORY_FILE} has {torn} unreadable bytes after offset {valid_length}"
        )));
    }
    Ok(LogReport {
        size,
        root,
        checkpoints_checked: history.len(),
        tiles_checked,
        latest_in_history,
    })
}
