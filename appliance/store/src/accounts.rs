//! The Authority's records in the catalog: OAuth clients, console users (with their login
//! failure counters) and console sessions. Secrets are stored only as argon2id hashes and
//! session ids only as SHA-256 hashes; the hashing is the Authority's job, not the store's.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Catalog, StoreError};

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client id.
    pub client_id: String,
    /// argon2id PHC string of the client secret, for `client_secret_basic`/`_post`.
    pub secret_hash: Option<String>,
    /// Public JWK set (JSON), for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Space-separated scopes the client may be granted.
    pub scopes: String,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// Who registered it.
    pub created_by: String,
    /// A disabled client gets no tokens.
    pub disabled: bool,
}

/// A console user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Login name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `viewer`, `operator`, `approver` or `admin`.
    pub role: String,
    /// The password must be changed at the next login.
    pub must_change: bool,
    /// Consecutive failed logins.
    pub failures: u32,
    /// Time of the last failed login, seconds since the epoch.
    pub last_failure: u64,
    /// Seconds since the epoch.
    pub created_at: u64,
}

/// A console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 (hex or base64url) of the session cookie value.
    pub id_hash: String,
    /// The user.
    pub user_name: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// Seconds since the epoch.
    pub expires_at: u64,
}

fn client_row(row: &Row<'_>) -> rusqlite::Result<ClientRecord> {
    Ok(ClientRecord {
        client_id: row.get(0)?,
        secret_hash: row.get(1)?,
        jwks: row.get(2)?,
        scopes: row.get(3)?,
        created_at: row.get::<_, i64>(4)? as u64,
        created_by: row.get(5)?,
        disabled: row.get::<_, i64>(6)? != 0,
    })
}

fn user_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        name: row.get(0)?,
        password_hash: row.get(1)?,
        role: row.get(2)?,
        must_change: row.get::<_, i64>(3)? != 0,
        failures: row.get::<_, i64>(4)? as u32,
        last_failure: row.get::<_, i64>(5)? as u64,
        created_at: row.get::<_, i64>(6)? as u64,
    })
}

const CLIENT_COLUMNS: &str =
    "client_id, secret_hash, jwks, scopes, created_at, created_by, disabled";
const USER_COLUMNS: &str =
    "name, password_hash, role, must_change, failures, last_failure, created_at";

impl Catalog {
    /// Registers a client; `false` when the id is taken (nothing is changed then).
    pub fn insert_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        self.connection()
            .execute(
                "INSERT OR IGNORE INTO oauth_clients
                 (client_id, secret_hash, jwks, scopes, created_at, created_by, disabled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    client.client_id,
                    client.secret_hash,
                    client.jwks,
                    client.scopes,
                    client.created_at as i64,
                    client.created_by,
                    i64::from(client.disabled)
                ],
            )
            .map(|n| n == 1)
            .map_err(|e| self.err(e))
    }

    /// The client with this id.
    pub fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.connection()
            .query_row(
                &format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = ?1"),
                [client_id],
                client_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every client, by id.
    pub fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let conn = self.connection();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {CLIENT_COLUMNS} FROM oauth_clients ORDER BY client_id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], client_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Creates a user; `false` when the name is taken.
    pub fn insert_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        self.connection()
            .execute(
                "INSERT OR IGNORE INTO users
                 (name, password_hash, role, must_change, failures, last_failure, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    user.name,
                    user.password_hash,
                    user.role,
                    i64::from(user.must_change),
                    i64::from(user.failures),
                    user.last_failure as i64,
                    user.created_at as i64
                ],
            )
            .map(|n| n == 1)
            .map_err(|e| self.err(e))
    }

    /// The user with this name.
    pub fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.connection()
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
                [name],
                user_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// How many users exist.
    pub fn user_count(&self) -> Result<u64, StoreError> {
        self.connection()
            .query_row("SELECT count(*) FROM users", [], |row| row.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Counts a failed login for `name` at `at`; returns the new failure count (0 when the user
    /// does not exist).
    pub fn record_login_failure(&self, name: &str, at: u64) -> Result<u32, StoreError> {
        self.connection()
            .query_row(
                "UPDATE users SET failures = failures + 1, last_failure = ?2 WHERE name = ?1
                 RETURNING failures",
                params![name, at as i64],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|n| n.unwrap_or(0) as u32)
            .map_err(|e| self.err(e))
    }

    /// Clears the failure counter after a successful login.
    pub fn reset_login_failures(&self, name: &str) -> Result<(), StoreError> {
        self.connection()
            .execute(
                "UPDATE users SET failures = 0, last_failure = 0 WHERE name = ?1",
                [name],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Replaces a user's password hash and sets whether it must be changed at next login.
    pub fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        must_change: bool,
    ) -> Result<bool, StoreError> {
        self.connection()
            .execute(
                "UPDATE users SET password_hash = ?2, must_change = ?3 WHERE name = ?1",
                params![name, password_hash, i64::from(must_change)],
            )
            .map(|n| n == 1)
            .map_err(|e| self.err(e))
    }

    /// Stores a new session.
    pub fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.connection()
            .execute(
                "INSERT INTO sessions (id_hash, user_name, csrf, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    session.id_hash,
                    session.user_name,
                    session.csrf,
                    session.created_at as i64,
                    session.expires_at as i64
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The live session with this id hash at time `now`, with its user.
    pub fn session(
        &self,
        id_hash: &str,
        now: u64,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        let user_columns = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.connection()
            .query_row(
                &format!(
                    "SELECT s.id_hash, s.user_name, s.csrf, s.created_at, s.expires_at, {user_columns}
                     FROM sessions s JOIN users u ON u.name = s.user_name
                     WHERE s.id_hash = ?1 AND s.expires_at > ?2"
                ),
                params![id_hash, now as i64],
                |row| {
                    let session = SessionRecord {
                        id_hash: row.get(0)?,
                        user_name: row.get(1)?,
                        csrf: row.get(2)?,
                        created_at: row.get::<_, i64>(3)? as u64,
                        expires_at: row.get::<_, i64>(4)? as u64,
                    };
                    let user = UserRecord {
                        name: row.get(5)?,
                        password_hash: row.get(6)?,
                        role: row.get(7)?,
                        must_change: row.get::<_, i64>(8)? != 0,
                        failures: row.get::<_, i64>(9)? as u32,
                        last_failure: row.get::<_, i64>(10)? as u64,
                        created_at: row.get::<_, i64>(11)? as u64,
                    };
                    Ok((session, user))
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Ends one session.
    pub fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.connection()
            .execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Ends every session of `user_name` but `keep` (after a password change); returns how
    /// many ended.
    pub fn delete_other_sessions(&self, user_name: &str, keep: &str) -> Result<u64, StoreError> {
        self.connection()
            .execute(
                "DELETE FROM sessions WHERE user_name = ?1 AND id_hash != ?2",
                [user_name, keep],
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Ends every session of `user_name` ("log out everywhere"); returns how many ended.
    pub fn delete_user_sessions(&self, user_name: &str) -> Result<u64, StoreError> {
        self.connection()
            .execute("DELETE FROM sessions WHERE user_name = ?1", [user_name])
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        (dir, catalog)
    }

    #[test]
    fn clients_round_trip_and_ids_are_unique() {
        let (_dir, catalog) = catalog();
        let client = ClientRecord {
            client_id: "ci".into(),
            secret_hash: Some("$argon2id$x".into()),
            jwks: None,
            scopes: "scanner.read".into(),
            created_at: 5,
            created_by: "admin".into(),
            disabled: false,
        };
        assert!(catalog.insert_client(&client).unwrap());
        assert!(!catalog.insert_client(&client).unwrap());
        assert_eq!(catalog.client("ci").unwrap(), Some(client.clone()));
        assert_eq!(catalog.clients().unwrap(), vec![client]);
        assert_eq!(catalog.client("nope").unwrap(), None);
    }

    #[test]
    fn users_failures_and_sessions() {
        let (_dir, catalog) = catalog();
        let user = UserRecord {
            name: "admin".into(),
            password_hash: "h".into(),
            role: "admin".into(),
            must_change: true,
            failures: 0,
            last_failure: 0,
            created_at: 1,
        };
        assert!(catalog.insert_user(&user).unwrap());
        assert_eq!(catalog.user_count().unwrap(), 1);
        assert_eq!(catalog.record_login_failure("admin", 10).unwrap(), 1);
        assert_eq!(catalog.record_login_failure("admin", 11).unwrap(), 2);
        assert_eq!(catalog.record_login_failure("ghost", 11).unwrap(), 0);
        assert_eq!(catalog.user("admin").unwrap().unwrap().last_failure, 11);
        catalog.reset_login_failures("admin").unwrap();
        assert_eq!(catalog.user("admin").unwrap().unwrap().failures, 0);
        assert!(catalog.set_password("admin", "h2", false).unwrap());
        for id in ["s1", "s2"] {
            catalog
                .insert_session(&SessionRecord {
                    id_hash: id.into(),
                    user_name: "admin".into(),
                    csrf: "c".into(),
                    created_at: 1,
                    expires_at: 100,
                })
                .unwrap();
        }
        let (session, user) = catalog.session("s1", 50).unwrap().unwrap();
        assert_eq!(session.csrf, "c");
        assert!(!user.must_change);
        assert_eq!(catalog.session("s1", 100).unwrap(), None, "expired");
        catalog.delete_session("s1").unwrap();
        assert_eq!(catalog.session("s1", 50).unwrap(), None);
        assert_eq!(catalog.delete_other_sessions("admin", "s2").unwrap(), 0);
        assert_eq!(catalog.delete_user_sessions("admin").unwrap(), 1);
        assert_eq!(catalog.session("s2", 50).unwrap(), None);
    }
}
