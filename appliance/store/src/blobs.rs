//! Content-addressed blobs and the per-layer analysis cache, in one redb database.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use stella_core::Digest;

use crate::StoreError;

/// `sha256 digest bytes` → blob bytes.
const BLOBS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blobs");
/// Cache key (layer digest + analyzer versions, see `docs/cache-keys.md`) → fragment bytes.
const LAYER_CACHE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("layer_cache");
/// File content key (see `docs/cache-keys.md`) → that file's analyzer results.
const FILE_CACHE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("file_cache");
/// A one-row table that `/readyz` writes to prove the database is writable.
const PROBE: TableDefinition<&str, u64> = TableDefinition::new("probe");

/// The redb database at `DATA_DIR/blobs.redb`.
#[derive(Debug)]
pub struct BlobStore {
    path: PathBuf,
    db: Database,
}

impl BlobStore {
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |source: redb::Error| StoreError::Blobs {
            path: path.to_owned(),
            source,
        };
        let db = Database::create(path).map_err(|e| err(e.into()))?;
        // Create the tables up front so readers never meet a missing table.
        let txn = db.begin_write().map_err(|e| err(e.into()))?;
        txn.open_table(BLOBS).map_err(|e| err(e.into()))?;
        txn.open_table(LAYER_CACHE).map_err(|e| err(e.into()))?;
        txn.open_table(PROBE).map_err(|e| err(e.into()))?;
        txn.open_table(FILE_CACHE).map_err(|e| err(e.into()))?;
        txn.commit().map_err(|e| err(e.into()))?;
        Ok(Self {
            path: path.to_owned(),
            db,
        })
    }

    fn err(&self, source: impl Into<redb::Error>) -> StoreError {
        StoreError::Blobs {
            path: self.path.clone(),
            source: source.into(),
        }
    }

    /// Stores `bytes` under their SHA-256 digest (a no-op when already present).
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(BLOBS).map_err(|e| self.err(e))?;
            if table
                .get(digest.as_bytes())
                .map_err(|e| self.err(e))?
                .is_none()
            {
                table
                    .insert(digest.as_bytes(), bytes)
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(digest)
    }

    /// The blob with this digest, if stored.
    pub fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(BLOBS).map_err(|e| self.err(e))?;
        let value = table.get(digest.as_bytes()).map_err(|e| self.err(e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// The cached fragment for a layer-cache key, if any.
    pub fn layer_fragment(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(LAYER_CACHE).map_err(|e| self.err(e))?;
        let value = table.get(key).map_err(|e| self.err(e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Stores a layer's analysis fragment under its cache key.
    pub fn put_layer_fragment(&self, key: &[u8], fragment: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(LAYER_CACHE).map_err(|e| self.err(e))?;
            table.insert(key, fragment).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// One file's cached analyzer results, if any.
    pub fn file_result(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(FILE_CACHE).map_err(|e| self.err(e))?;
        let value = table.get(key).map_err(|e| self.err(e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Stores many files' analyzer results in one transaction.
    pub fn put_file_results<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(FILE_CACHE).map_err(|e| self.err(e))?;
            for (key, value) in entries {
                table.insert(key, value).map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }

    pub(crate) fn check_writable(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(PROBE).map_err(|e| self.err(e))?;
            let count = table
                .get("ready-checks")
                .map_err(|e| self.err(e))?
                .map_or(0, |v| v.value());
            table
                .insert("ready-checks", count.wrapping_add(1))
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }
}
