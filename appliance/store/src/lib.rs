//! Embedded stores of the appliance, each for the job it does best: redb for content-addressed
//! blobs and the per-layer cache, SQLite for the relational catalog and audit log. (Advisory
//! search lives in tantivy inside each feed generation: see `stella-feeds`.) They are
//! deliberately not hidden behind one trait.

mod accounts;
mod blobs;
mod catalog;
mod lock;

use std::path::{Path, PathBuf};

pub use accounts::{ClientRecord, SessionRecord, UserRecord};
pub use blobs::BlobStore;
pub use catalog::{AuditEvent, Catalog, SCHEMA_VERSION};
pub use lock::DataDirLock;

/// Re-exported so that crates writing their own catalog transactions use the same SQLite.
pub use rusqlite;

/// Why a store could not be opened, read or written. Each variant names the store and path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the data directory.
    #[error("data dir {dir} is locked by pid {pid}", pid = pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()))]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The pid written by the holder, when readable.
        pid: Option<u32>,
    },
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The redb blob store failed.
    #[error("blob store {path}: {source}")]
    Blobs {
        /// `blobs.redb`.
        path: PathBuf,
        /// The redb error.
        source: redb::Error,
    },
    /// The SQLite catalog failed.
    #[error("catalog {path}: {source}")]
    Catalog {
        /// `catalog.sqlite`.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The catalog was written by a newer release.
    #[error("catalog {path} has schema version {found}, newer than this release's {supported}")]
    CatalogTooNew {
        /// `catalog.sqlite`.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
}

/// Sizes of the stores on disk, in bytes; exported as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreSizes {
    /// `blobs.redb`.
    pub blobs: u64,
    /// `catalog.sqlite` plus its WAL.
    pub catalog: u64,
    /// The feed generations (redb + tantivy per generation).
    pub feeds: u64,
}

/// All stores of one data directory, opened together under its lock.
#[derive(Debug)]
pub struct Stores {
    dir: PathBuf,
    /// Content-addressed blobs and the layer cache.
    pub blobs: BlobStore,
    /// The catalog and audit log.
    pub catalog: Catalog,
    // Dropped last: the lock outlives every store it protects.
    _lock: DataDirLock,
}

impl Stores {
    /// The bytes of an image's stored artefact of `kind` (`sbom`, `usage-sbom`, `bom-index`, …)
    /// in `format`, when the catalog records one.
    pub fn artifact(
        &self,
        image_digest: &str,
        kind: &str,
        format: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        use rusqlite::OptionalExtension as _;
        let blob: Option<String> = self
            .catalog
            .connection()
            .query_row(
                "SELECT digest FROM artifacts WHERE image_digest = ?1 AND kind = ?2 AND format = ?3",
                [image_digest, kind, format],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.catalog.err(e))?;
        match blob.map(|b| b.parse::<stella_core::Digest>()) {
            Some(Ok(blob)) => self.blobs.get(&blob),
            Some(Err(_)) | None => Ok(None),
        }
    }

    /// Takes the data directory's lock, then opens (creating on first use) every store.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            what: "cannot create data dir",
            path: dir.to_owned(),
            source,
        })?;
        let lock = DataDirLock::acquire(dir)?;
        let blobs = BlobStore::open(&dir.join("blobs.redb"))?;
        let catalog = Catalog::open(&dir.join("catalog.sqlite"))?;
        Ok(Self {
            dir: dir.to_owned(),
            blobs,
            catalog,
            _lock: lock,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Proves each store is open and writable by writing to it; `/readyz` calls this.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.blobs.check_writable()?;
        self.catalog.check_writable()
    }

    /// Sizes on disk of each store.
    pub fn sizes(&self) -> StoreSizes {
        StoreSizes {
            blobs: file_size(&self.dir.join("blobs.redb")),
            catalog: file_size(&self.dir.join("catalog.sqlite"))
                + file_size(&self.dir.join("catalog.sqlite-wal")),
            feeds: dir_size(&self.dir.join("feeds")),
        }
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |meta| meta.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_open_initialises_and_reopen_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let instance = {
            let stores = Stores::open(dir.path()).unwrap();
            stores.check_writable().unwrap();
            stores.blobs.put(b"layer bytes").unwrap();
            stores.catalog.instance_id().unwrap()
        };
        let stores = Stores::open(dir.path()).unwrap();
        assert_eq!(stores.catalog.instance_id().unwrap(), instance);
        let digest = stella_core::Digest::of(b"layer bytes");
        assert_eq!(
            stores.blobs.get(&digest).unwrap().as_deref(),
            Some(&b"layer bytes"[..])
        );
        let sizes = stores.sizes();
        assert!(sizes.blobs > 0 && sizes.catalog > 0);
    }

    #[test]
    fn second_open_in_one_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Stores::open(dir.path()).unwrap();
        let err = Stores::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("locked by pid {}", std::process::id())),
            "{err}"
        );
    }
}
