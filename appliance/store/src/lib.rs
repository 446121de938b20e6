//! Embedded stores: redb blobs and layer cache, SQLite catalog, tantivy advisory index.
