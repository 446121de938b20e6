//! The SQLite catalog: images, layers, artefacts, scans, reports, kit imports and the audit log,
//! under versioned migrations (`PRAGMA user_version`), WAL journal and foreign keys on.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// Migrations in order; migration `i` takes the schema from version `i` to `i + 1`. Released
/// migrations are never edited, only appended to.
const MIGRATIONS: &[&str] = &[
    // Version 1: the catalog of the foundation.
    "CREATE TABLE meta (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     );
     INSERT INTO meta (key, value) VALUES ('instance_id', lower(hex(randomblob(16))));
     INSERT INTO meta (key, value) VALUES ('ready_checks', '0');
     CREATE TABLE images (
         digest     TEXT PRIMARY KEY,
         reference  TEXT,
         config     TEXT,
         created_at TEXT NOT NULL
     );
     CREATE TABLE layers (
         digest     TEXT PRIMARY KEY,
         media_type TEXT NOT NULL,
         size       INTEGER NOT NULL
     );
     CREATE TABLE image_layers (
         image_digest TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
         position     INTEGER NOT NULL,
         layer_digest TEXT NOT NULL REFERENCES layers(digest),
         PRIMARY KEY (image_digest, position)
     );
     CREATE TABLE artifacts (
         id           INTEGER PRIMARY KEY,
         kind         TEXT NOT NULL,
         format       TEXT NOT NULL,
         digest       TEXT NOT NULL,
         size         INTEGER NOT NULL,
         image_digest TEXT REFERENCES images(digest),
         log_index    INTEGER,
         created_at   TEXT NOT NULL
     );
     CREATE TABLE scans (
         id           TEXT PRIMARY KEY,
         image_ref    TEXT NOT NULL,
         image_digest TEXT REFERENCES images(digest),
         status       TEXT NOT NULL,
         summary      TEXT,
         error        TEXT,
         started_at   TEXT NOT NULL,
         finished_at  TEXT
     );
     CREATE TABLE reports (
         id            TEXT PRIMARY KEY,
         image_digest  TEXT NOT NULL REFERENCES images(digest),
         verdict       TEXT NOT NULL,
         policy_digest TEXT NOT NULL,
         report_digest TEXT NOT NULL,
         created_at    TEXT NOT NULL
     );
     CREATE TABLE kit_imports (
         id              INTEGER PRIMARY KEY,
         kit_id          TEXT,
         channel         TEXT,
         sequence        INTEGER,
         manifest_digest TEXT,
         verdict         TEXT NOT NULL,
         detail          TEXT NOT NULL,
         actor           TEXT NOT NULL,
         at              TEXT NOT NULL
     );
     CREATE TABLE audit_log (
         id         INTEGER PRIMARY KEY,
         at         INTEGER NOT NULL,
         actor      TEXT NOT NULL,
         action     TEXT NOT NULL,
         target     TEXT NOT NULL,
         detail     TEXT NOT NULL,
         request_id TEXT
     );
     CREATE INDEX audit_log_action ON audit_log(action, at);",
    // Version 2: feed generations and per-channel kit heads (the importer's switch).
    "CREATE TABLE feed_current (
         id          INTEGER PRIMARY KEY CHECK (id = 1),
         generation  INTEGER NOT NULL,
         counts      TEXT NOT NULL,
         switched_at INTEGER NOT NULL
     );
     CREATE TABLE channel_heads (
         channel         TEXT PRIMARY KEY,
         kit_id          TEXT NOT NULL,
         sequence        INTEGER NOT NULL,
         manifest_sha256 TEXT NOT NULL,
         created         TEXT NOT NULL,
         expires         TEXT NOT NULL,
         imported_at     INTEGER NOT NULL,
         generation      INTEGER NOT NULL
     );",
    // Version 3: the Authority's OAuth clients, console users and console sessions.
    "CREATE TABLE oauth_clients (
         client_id   TEXT PRIMARY KEY,
         secret_hash TEXT,
         jwks        TEXT,
         scopes      TEXT NOT NULL,
         created_at  INTEGER NOT NULL,
         created_by  TEXT NOT NULL,
         disabled    INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE users (
         name          TEXT PRIMARY KEY,
         password_hash TEXT NOT NULL,
         role          TEXT NOT NULL,
         must_change   INTEGER NOT NULL,
         failures      INTEGER NOT NULL DEFAULT 0,
         last_failure  INTEGER NOT NULL DEFAULT 0,
         created_at    INTEGER NOT NULL
     );
     CREATE TABLE sessions (
         id_hash    TEXT PRIMARY KEY,
         user_name  TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
         csrf       TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL
     );
     CREATE INDEX sessions_user ON sessions(user_name);",
    // Version 4: reports name their inputs (SBOM, advisory snapshot, policy revision); policy
    // revisions as uploaded, their YAML in the blob store.
    "ALTER TABLE reports ADD COLUMN sbom_digest TEXT;
     ALTER TABLE reports ADD COLUMN kit_id TEXT;
     ALTER TABLE reports ADD COLUMN sequence INTEGER;
     ALTER TABLE reports ADD COLUMN policy_name TEXT;
     ALTER TABLE reports ADD COLUMN policy_revision INTEGER;
     ALTER TABLE reports ADD COLUMN findings INTEGER;
     ALTER TABLE reports ADD COLUMN evaluated_at TEXT;
     CREATE INDEX reports_image ON reports(image_digest, created_at);
     CREATE TABLE policy_revisions (
         revision   INTEGER PRIMARY KEY,
         name       TEXT NOT NULL,
         digest     TEXT NOT NULL,
         blob       TEXT NOT NULL,
         created_at TEXT NOT NULL,
         created_by TEXT NOT NULL
     );",
    // Version 5: signed, logged exports (the artefact, its Sigstore bundle, its log index).
    "CREATE TABLE exports (
         id              INTEGER PRIMARY KEY,
         image_digest    TEXT NOT NULL,
         format          TEXT NOT NULL,
         view            TEXT NOT NULL,
         name            TEXT NOT NULL,
         artifact_digest TEXT NOT NULL,
         bundle_digest   TEXT NOT NULL,
         log_index       INTEGER NOT NULL,
         created_at      INTEGER NOT NULL
     );
     CREATE INDEX exports_image ON exports(image_digest);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// One audit-log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Who: a user, a client id, or `system`.
    pub actor: String,
    /// What, as a dotted verb such as `daemon.start` or `kit.import`.
    pub action: String,
    /// On what: an image digest, a kit id, a user name.
    pub target: String,
    /// Free-form details, usually JSON.
    pub detail: String,
    /// The request id that caused it, when it came over HTTP.
    pub request_id: Option<String>,
}

/// The catalog database at `DATA_DIR/catalog.sqlite`.
#[derive(Debug)]
pub struct Catalog {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Catalog {
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |source| StoreError::Catalog {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(err)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::CatalogTooNew {
                path: path.to_owned(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            // Each migration and its version bump commit together, so a crash mid-migration
            // leaves the previous version intact.
            let txn = conn.transaction().map_err(err)?;
            txn.execute_batch(sql).map_err(err)?;
            txn.pragma_update(None, "user_version", version as i64 + 1)
                .map_err(err)?;
            txn.commit().map_err(err)?;
            tracing::info!(path = %path.display(), version = version + 1, "catalog migrated");
        }
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Catalog {
            path: self.path.clone(),
            source,
        }
    }

    /// The connection; a poisoned lock is still usable because every write is a transaction.
    pub fn connection(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The random id given to this data directory when it was first initialised.
    pub fn instance_id(&self) -> Result<String, StoreError> {
        self.connection()
            .query_row(
                "SELECT value FROM meta WHERE key = 'instance_id'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The schema version of the open catalog.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.connection()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| self.err(e))
    }

    /// Appends an event to the audit log.
    pub fn audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.connection()
            .execute(
                "INSERT INTO audit_log (at, actor, action, target, detail, request_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    event.at as i64,
                    event.actor,
                    event.action,
                    event.target,
                    event.detail,
                    event.request_id
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// How many audit events carry this action.
    pub fn audit_count(&self, action: &str) -> Result<u64, StoreError> {
        self.connection()
            .query_row(
                "SELECT count(*) FROM audit_log WHERE action = ?1",
                [action],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// How many audit events carry this action at or after `since` (Unix seconds): quota
    /// periods.
    pub fn audit_count_since(&self, action: &str, since: u64) -> Result<u64, StoreError> {
        self.connection()
            .query_row(
                "SELECT count(*) FROM audit_log WHERE action = ?1 AND at >= ?2",
                params![action, since as i64],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Marks every scan still `running` as failed: called once at daemon start, when no scan of
    /// this process can be running, so scans a stop or crash cut short do not stay "running"
    /// forever. Returns how many were marked.
    pub fn fail_interrupted_scans(&self, finished_at: &str) -> Result<usize, StoreError> {
        self.connection()
            .execute(
                "UPDATE scans SET status = 'failed', finished_at = ?1,
                     error = 'interrupted: the daemon stopped during this scan; start the scan again'
                 WHERE status = 'running'",
                [finished_at],
            )
            .map_err(|e| self.err(e))
    }

    /// The newest audit events, newest first.
    pub fn recent_audit(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let conn = self.connection();
        let mut stmt = conn
            .prepare(
                "SELECT at, actor, action, target, detail, request_id FROM audit_log
                 ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit], |row| {
                Ok(AuditEvent {
                    at: row.get::<_, i64>(0)? as u64,
                    actor: row.get(1)?,
                    action: row.get(2)?,
                    target: row.get(3)?,
                    detail: row.get(4)?,
                    request_id: row.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub(crate) fn check_writable(&self) -> Result<(), StoreError> {
        let conn = self.connection();
        conn.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'ready_checks'",
            [],
        )
        .map_err(|e| self.err(e))?;
        // The row must exist: a catalog without it was not made by these migrations.
        conn.query_row(
            "SELECT value FROM meta WHERE key = 'ready_checks'",
            [],
            |row| row.get::<_, String>(0),
        )
        .optional()
        .map_err(|e| self.err(e))?
        .map(drop)
        .ok_or_else(|| self.err(rusqlite::Error::QueryReturnedNoRows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_with_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let catalog = Catalog::open(&path).unwrap();
        assert_eq!(catalog.schema_version().unwrap(), SCHEMA_VERSION);
        {
            let conn = catalog.connection();
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let fk: i64 = conn
                .pragma_query_value(None, "foreign_keys", |r| r.get(0))
                .unwrap();
            assert_eq!(fk, 1);
            // A layer link to an unknown image violates a foreign key.
            let res = conn.execute(
                "INSERT INTO image_layers (image_digest, position, layer_digest) VALUES ('x', 0, 'y')",
                [],
            );
            assert!(res.is_err());
        }
        let id = catalog.instance_id().unwrap();
        drop(catalog);
        let again = Catalog::open(&path).unwrap();
        assert_eq!(again.instance_id().unwrap(), id);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = Catalog::open(&path).unwrap_err().to_string();
        assert!(err.contains("newer than this release"), "{err}");
    }

    #[test]
    fn interrupted_scans_are_failed_and_finished_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        for (id, status) in [("a", "running"), ("b", "succeeded"), ("c", "running")] {
            catalog
                .connection()
                .execute(
                    "INSERT INTO scans (id, image_ref, status, started_at) VALUES (?1, 'img', ?2, 't0')",
                    [id, status],
                )
                .unwrap();
        }
        assert_eq!(catalog.fail_interrupted_scans("t1").unwrap(), 2);
        let rows: Vec<(String, String, Option<String>)> = {
            let conn = catalog.connection();
            let mut stmt = conn
                .prepare("SELECT id, status, finished_at FROM scans ORDER BY id")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(
            rows,
            vec![
                ("a".into(), "failed".into(), Some("t1".into())),
                ("b".into(), "succeeded".into(), None),
                ("c".into(), "failed".into(), Some("t1".into())),
            ]
        );
        assert_eq!(catalog.fail_interrupted_scans("t2").unwrap(), 0);
    }

    #[test]
    fn audit_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let event = AuditEvent {
            at: 7,
            actor: "system".into(),
            action: "daemon.start".into(),
            target: "stella".into(),
            detail: "{}".into(),
            request_id: None,
        };
        catalog.audit(&event).unwrap();
        assert_eq!(catalog.audit_count("daemon.start").unwrap(), 1);
        assert_eq!(catalog.recent_audit(10).unwrap(), vec![event]);
    }
}
