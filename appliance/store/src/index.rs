//! The tantivy advisory search index. The importer fills it from each loaded kit; the API and
//! console query it. Its schema is fixed here so both sides agree on field names.

use std::path::{Path, PathBuf};

use tantivy::directory::MmapDirectory;
use tantivy::schema::{FAST, INDEXED, STORED, STRING, Schema, TEXT};
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::StoreError;

/// Field names of the advisory index.
pub mod fields {
    /// Advisory id (exact).
    pub const ID: &str = "id";
    /// Aliases such as CVE or GHSA ids (exact, repeated).
    pub const ALIAS: &str = "alias";
    /// Affected package names (tokenised, repeated).
    pub const PACKAGE: &str = "package";
    /// Ecosystem of an affected package (exact facet value, repeated).
    pub const ECOSYSTEM: &str = "ecosystem";
    /// Summary and details (tokenised).
    pub const SUMMARY: &str = "summary";
    /// Highest CVSS base score.
    pub const CVSS: &str = "cvss";
    /// 1 when listed in CISA KEV.
    pub const KEV: &str = "kev";
}

/// The advisory schema.
pub fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_text_field(fields::ID, STRING | STORED);
    builder.add_text_field(fields::ALIAS, STRING | STORED);
    builder.add_text_field(fields::PACKAGE, TEXT | STORED);
    builder.add_text_field(fields::ECOSYSTEM, STRING | STORED | FAST);
    builder.add_text_field(fields::SUMMARY, TEXT | STORED);
    builder.add_f64_field(fields::CVSS, INDEXED | STORED | FAST);
    builder.add_u64_field(fields::KEV, INDEXED | STORED | FAST);
    builder.build()
}

/// The index at `DATA_DIR/index/advisories`.
pub struct AdvisoryIndex {
    path: PathBuf,
    index: Index,
    reader: IndexReader,
}

impl std::fmt::Debug for AdvisoryIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisoryIndex")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AdvisoryIndex {
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
            what: "cannot create index dir",
            path: path.to_owned(),
            source,
        })?;
        let err = |source| StoreError::Index {
            path: path.to_owned(),
            source,
        };
        let directory = MmapDirectory::open(path).map_err(|e| err(e.into()))?;
        let index = Index::open_or_create(directory, schema()).map_err(err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        Ok(Self {
            path: path.to_owned(),
            index,
            reader,
        })
    }

    /// The tantivy index, for writers (the importer) and queries.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// A reader; call `reload` after an import switches generations.
    pub fn reader(&self) -> &IndexReader {
        &self.reader
    }

    /// Number of indexed advisories in the current generation.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether no advisory is indexed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn check_writable(&self) -> Result<(), StoreError> {
        let probe = self.path.join(".ready-probe");
        let io = |source| StoreError::Io {
            what: "advisory index dir is not writable",
            path: probe.clone(),
            source,
        };
        std::fs::write(&probe, b"ok").map_err(io)?;
        std::fs::remove_file(&probe).map_err(io)
    }
}
