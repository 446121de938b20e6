//! Per-layer fragments and the [`LayerCache`] they are stored in.
//!
//! A fragment is everything the scanner needs to know about one layer: its
//! normalised entries (to rebuild the merged view without reading the layer
//! again) and the analyzers' results per path. It is keyed by the layer's
//! diff_id and the analyzer set (`id@version,...`), so a changed analyzer
//! invalidates exactly the fragments it contributed to. Serialised as JSON
//! with sorted maps, a fragment is byte-identical for the same layer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::analyzer::PathResult;
use crate::digest::Digest;
use crate::error::ScanError;
use crate::layer::LayerEntry;

/// Version of the fragment encoding; part of the cache key.
pub const FRAGMENT_FORMAT: u32 = 2;

/// Key of a fragment in a [`LayerCache`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FragmentKey {
    /// The layer's diff_id.
    pub diff_id: Digest,
    /// `id@version` of every analyzer, in registry order.
    pub analyzers: String,
}

impl FragmentKey {
    /// The key as one string: `fragment-v1|sha256:...|dpkg@1,apk@1,...`.
    pub fn as_string(&self) -> String {
        format!(
            "fragment-v{FRAGMENT_FORMAT}|{}|{}",
            self.diff_id, self.analyzers
        )
    }
}

/// What the scanner learnt from one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerFragment {
    /// Encoding version ([`FRAGMENT_FORMAT`]).
    pub format: u32,
    /// The layer's diff_id.
    pub diff_id: Digest,
    /// The analyzer set that produced it.
    pub analyzers: String,
    /// Whiteouts and opaque markers first, then additions; each group sorted by path.
    pub entries: Vec<LayerEntry>,
    /// Analyzer results by path.
    pub results: BTreeMap<String, PathResult>,
}

impl LayerFragment {
    /// Builds a fragment.
    pub fn new(
        diff_id: Digest,
        analyzers: String,
        entries: Vec<LayerEntry>,
        results: BTreeMap<String, PathResult>,
    ) -> LayerFragment {
        LayerFragment {
            format: FRAGMENT_FORMAT,
            diff_id,
            analyzers,
            entries,
            results,
        }
    }

    /// The fragment's cache key.
    pub fn key(&self) -> FragmentKey {
        FragmentKey {
            diff_id: self.diff_id.clone(),
            analyzers: self.analyzers.clone(),
        }
    }

    /// Serialises the fragment (deterministic).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ScanError> {
        serde_json::to_vec(self)
            .map_err(|e| ScanError::Cache(format!("encoding fragment {}: {e}", self.diff_id)))
    }

    /// Decodes a fragment and checks it belongs to `key`.
    pub fn from_bytes(key: &FragmentKey, bytes: &[u8]) -> Result<LayerFragment, ScanError> {
        let corrupt = |reason: String| ScanError::CacheCorrupt {
            layer: key.diff_id.to_string(),
            reason,
        };
        let fragment: LayerFragment =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if fragment.format != FRAGMENT_FORMAT || fragment.key() != *key {
            return Err(corrupt("entry was stored under a different key".into()));
        }
        Ok(fragment)
    }
}

/// Key of one file's analyzer results in the per-file cache (CAS).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    /// sha256 of the file's content.
    pub sha256: Digest,
    /// The file's name (last path component): some results depend on it.
    pub file_name: String,
    /// `id@version` of the analyzers that wanted the file.
    pub analyzers: String,
}

impl FileKey {
    /// The key as one string: `file-v1|sha256:...|NAME|java@1`.
    pub fn as_string(&self) -> String {
        format!(
            "file-v{FRAGMENT_FORMAT}|{}|{}|{}",
            self.sha256, self.file_name, self.analyzers
        )
    }
}

/// Storage for layer fragments and per-file results. The appliance implements
/// it on redb; tests use [`MemoryLayerCache`]. Implementations must be safe to share.
pub trait LayerCache: Sync {
    /// The fragment bytes stored under `key`, if any.
    fn get(&self, key: &FragmentKey) -> Result<Option<Vec<u8>>, ScanError>;
    /// Stores fragment bytes under `key` (overwriting).
    fn put(&self, key: &FragmentKey, bytes: &[u8]) -> Result<(), ScanError>;
    /// One file's cached analyzer results (content-addressed), if any. The
    /// default caches nothing: implement both file methods to share results
    /// between layers that hold the same files.
    fn get_file(&self, _key: &FileKey) -> Result<Option<Vec<u8>>, ScanError> {
        Ok(None)
    }
    /// Stores one file's analyzer results.
    fn put_file(&self, _key: &FileKey, _bytes: &[u8]) -> Result<(), ScanError> {
        Ok(())
    }
    /// Stores the file results of one layer at once (called once per analysed
    /// layer, so a transactional store can use one transaction). The default
    /// calls [`LayerCache::put_file`] for each.
    fn put_files(&self, entries: &[(FileKey, Vec<u8>)]) -> Result<(), ScanError> {
        for (key, bytes) in entries {
            self.put_file(key, bytes)?;
        }
        Ok(())
    }
}

/// A cache that stores nothing: every scan is cold.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl LayerCache for NoCache {
    fn get(&self, _key: &FragmentKey) -> Result<Option<Vec<u8>>, ScanError> {
        Ok(None)
    }
    fn put(&self, _key: &FragmentKey, _bytes: &[u8]) -> Result<(), ScanError> {
        Ok(())
    }
}

/// An in-memory cache.
#[derive(Debug, Default)]
pub struct MemoryLayerCache {
    entries: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryLayerCache {
    /// An empty cache.
    pub fn new() -> MemoryLayerCache {
        MemoryLayerCache::default()
    }

    /// Number of stored fragments.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LayerCache for MemoryLayerCache {
    fn get(&self, key: &FragmentKey) -> Result<Option<Vec<u8>>, ScanError> {
        let entries = self
            .entries
            .lock()
            .map_err(|_| ScanError::Cache("memory cache lock poisoned".into()))?;
        Ok(entries.get(&key.as_string()).cloned())
    }
    fn put(&self, key: &FragmentKey, bytes: &[u8]) -> Result<(), ScanError> {
        self.insert(key.as_string(), bytes)
    }
    fn get_file(&self, key: &FileKey) -> Result<Option<Vec<u8>>, ScanError> {
        let entries = self
            .entries
            .lock()
            .map_err(|_| ScanError::Cache("memory cache lock poisoned".into()))?;
        Ok(entries.get(&key.as_string()).cloned())
    }
    fn put_file(&self, key: &FileKey, bytes: &[u8]) -> Result<(), ScanError> {
        self.insert(key.as_string(), bytes)
    }
}

impl MemoryLayerCache {
    fn insert(&self, key: String, bytes: &[u8]) -> Result<(), ScanError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| ScanError::Cache("memory cache lock poisoned".into()))?;
        entries.insert(key, bytes.to_vec());
        Ok(())
    }

    /// Forgets every layer fragment but keeps per-file results (for tests of
    /// the per-file cache).
    pub fn forget_fragments(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|key, _| key.starts_with("file-"));
        }
    }
}
