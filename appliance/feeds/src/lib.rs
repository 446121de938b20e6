//! The appliance's feed store (the seed's Feedser and Vexer): verified offline kits loaded into
//! atomic generations, advisory/VEX/KEV/EPSS lookups for the decider, and advisory search.
//!
//! Loading follows "verify before you write": `stella_importer::verify_kit` checks every byte of
//! a kit before anything here touches disk. The new state is written as a whole new generation
//! directory and becomes visible with one SQLite transaction (the switch); a crash at any point
//! leaves the previous generation current, and the next open removes the leftovers.

mod generation;
mod import;
mod index;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use generation::{Counts, Generation, PackageList, VexProducts};
pub use import::{
    ChannelFreshness, ImportError, ImportOptions, ImportOutcome, ImportReport, KitImportRecord,
    Rejection,
};
pub use index::{
    FacetCount, Facets, PageHit, QueryProblem, SEARCH_FIELDS, SearchHit, SearchOrder, SearchPage,
    SearchRequest, SearchResults, SnippetPart,
};
use stella_store::Catalog;

/// Why the feed store failed. Kit rejections are not errors of the store: see [`Rejection`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A generation's redb file failed.
    #[error("feed database {path}: {source}")]
    Redb {
        /// The `feeds.redb` file.
        path: PathBuf,
        /// The redb error.
        source: redb::Error,
    },
    /// A generation's search index failed.
    #[error("feed index {path}: {source}")]
    Index {
        /// The index directory.
        path: PathBuf,
        /// The tantivy error.
        source: tantivy::TantivyError,
    },
    /// The catalog failed.
    #[error(transparent)]
    Store(#[from] stella_store::StoreError),
    /// The catalog's feed tables failed.
    #[error("catalog feed tables: {0}")]
    Catalog(#[from] rusqlite::Error),
    /// Stored data does not have the shape this build wrote.
    #[error("feed store is corrupt: {0}")]
    Corrupt(String),
    /// A search query failed.
    #[error("search: {0}")]
    Query(String),
    /// The configuration cannot be used.
    #[error("configuration: {0}")]
    Config(String),
}

impl FeedError {
    pub(crate) fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}

/// The feed store of one data directory: `DATA_DIR/feeds/` plus the catalog's switch.
#[derive(Debug)]
pub struct FeedStore {
    dir: PathBuf,
    current: RwLock<Option<Arc<Generation>>>,
}

/// The current generation number and its counts as recorded at the switch.
pub(crate) fn current_pointer(catalog: &Catalog) -> Result<Option<(u64, Counts)>, FeedError> {
    use stella_store::rusqlite::OptionalExtension;
    let row: Option<(i64, String)> = catalog
        .connection()
        .query_row(
            "SELECT generation, counts FROM feed_current WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    row.map(|(generation, counts)| {
        let counts = serde_json::from_str(&counts)
            .map_err(|e| FeedError::Corrupt(format!("feed_current.counts: {e}")))?;
        Ok((generation as u64, counts))
    })
    .transpose()
}

impl FeedStore {
    /// Opens `DATA_DIR/feeds`: removes every generation directory that is not the current one
    /// (a partial write interrupted by a crash, or a generation replaced by a later switch) and
    /// opens the current generation, if any kit was ever loaded.
    pub fn open(data_dir: &Path, catalog: &Catalog) -> Result<Self, FeedError> {
        let dir = data_dir.join("feeds");
        std::fs::create_dir_all(&dir).map_err(|e| FeedError::io("create feeds dir", &dir, e))?;
        let pointer = current_pointer(catalog)?;
        let keep = pointer.map(|(n, _)| generation::dir_name(n));
        let entries =
            std::fs::read_dir(&dir).map_err(|e| FeedError::io("list feeds dir", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| FeedError::io("list feeds dir", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if Some(&name) != keep.as_ref() && name.starts_with("gen-") {
                tracing::info!(generation = %name, "removing feed generation that is not current");
                std::fs::remove_dir_all(entry.path())
                    .map_err(|e| FeedError::io("remove stale generation", &entry.path(), e))?;
            }
        }
        let current = match pointer {
            Some((number, _)) => Some(Arc::new(Generation::open(&dir, number)?)),
            None => None,
        };
        Ok(Self {
            dir,
            current: RwLock::new(current),
        })
    }

    /// The current generation, or `None` before the first kit.
    pub fn current(&self) -> Option<Arc<Generation>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_current(&self, generation: Arc<Generation>) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(generation);
    }

    /// The `feeds/` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The advisory snapshot a report names: the kit id and sequence of the channel head when
    /// one channel is loaded; with several, `channel=kit@sequence` joined by `,` (channels in
    /// name order) and the generation number. `None` before the first kit.
    pub fn snapshot(&self, catalog: &Catalog) -> Result<Option<(String, u64)>, FeedError> {
        let Some((generation, _)) = current_pointer(catalog)? else {
            return Ok(None);
        };
        let conn = catalog.connection();
        let mut statement =
            conn.prepare("SELECT channel, kit_id, sequence FROM channel_heads ORDER BY channel")?;
        let heads = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(match heads.as_slice() {
            [(_, kit_id, sequence)] => (kit_id.clone(), (*sequence).max(0) as u64),
            many => (
                many.iter()
                    .map(|(channel, kit_id, sequence)| format!("{channel}={kit_id}@{sequence}"))
                    .collect::<Vec<_>>()
                    .join(","),
                generation,
            ),
        }))
    }

    /// Checks that the current generation holds exactly what the switch recorded: every record
    /// decodes, counts match, and the search index has one document per advisory.
    pub fn check_integrity(&self, catalog: &Catalog) -> Result<Option<(u64, Counts)>, FeedError> {
        let Some((number, recorded)) = current_pointer(catalog)? else {
            return Ok(None);
        };
        let generation = match self.current() {
            Some(current) if current.number() == number => current,
            _ => Arc::new(Generation::open(&self.dir, number)?),
        };
        let counted = generation.recount()?;
        if counted != recorded {
            return Err(FeedError::Corrupt(format!(
                "generation {number} holds {counted:?}, the switch recorded {recorded:?}"
            )));
        }
        if generation.indexed() != counted.advisories {
            return Err(FeedError::Corrupt(format!(
                "generation {number} indexes {} advisories, holds {}",
                generation.indexed(),
                counted.advisories
            )));
        }
        Ok(Some((number, counted)))
    }
}
