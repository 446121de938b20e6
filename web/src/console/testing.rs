//! In-process harness for console page tests: a fresh data directory, a signed-in user of a
//! given role, and GET/POST helpers through the full router (access rules, CSRF, headers).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use stella_store::{SessionRecord, Stores, UserRecord};
use tower::ServiceExt as _;

use crate::auth::{AuthSettings, Authority};
use crate::{AppState, router};

/// The CSRF token of every test session.
pub(crate) const CSRF: &str = "test-csrf-token";
/// The fixed time of test sessions and the state's clock.
pub(crate) const T0: u64 = 1_764_416_400;

pub(crate) struct ConsoleEnv {
    pub dir: tempfile::TempDir,
    pub state: AppState,
}

/// A rendered response, for assertions.
pub(crate) struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl ConsoleEnv {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = Self::state_in(dir.path());
        Self { dir, state }
    }

    /// A console whose `[kits] trusted_keys` is `public_key` (a minisign `.pub` file's text).
    pub(crate) fn trusting(public_key: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = stella_core::Config::default();
        config.kits.trusted_keys = vec![public_key.to_owned()];
        let state = Self::state_with(dir.path(), config);
        Self { dir, state }
    }

    /// A state over the stores in `dir` (which may already hold data).
    pub(crate) fn state_in(dir: &std::path::Path) -> AppState {
        Self::state_with(dir, stella_core::Config::default())
    }

    /// [`Self::state_in`] with `config`.
    fn state_with(dir: &std::path::Path, config: stella_core::Config) -> AppState {
        let stores = Arc::new(Stores::open(dir).unwrap());
        let clock: Arc<dyn stella_core::Clock> = Arc::new(stella_core::FixedClock(T0));
        let authority = Authority::with_signer(
            Arc::new(stella_authority::SoftwareSigner::generate().unwrap()),
            AuthSettings {
                issuer: "http://stella.test".into(),
                https: false,
                token_lifetime: stella_authority::TokenLifetime::clamped(300),
                session_lifetime_secs: 3600,
                allow_bearer_tokens: false,
                throttle: stella_authority::LoginThrottle {
                    lockout_after: 3,
                    lockout_secs: 600,
                    base_backoff_secs: 1,
                },
            },
            clock.clone(),
        )
        .unwrap();
        let feeds = Arc::new(stella_feeds::FeedStore::open(stores.dir(), &stores.catalog).unwrap());
        AppState::new(stores, feeds, Arc::new(authority), config, clock, None)
    }

    /// Creates `name` with `role` (no password change pending) and returns a session cookie.
    pub(crate) fn sign_in(&self, name: &str, role: &str) -> String {
        let catalog = &self.state.stores().catalog;
        if catalog.user(name).unwrap().is_none() {
            catalog
                .insert_user(&UserRecord {
                    name: name.into(),
                    // Never checked: sessions are made directly.
                    password_hash: "$argon2id$unused".into(),
                    role: role.into(),
                    must_change: false,
                    failures: 0,
                    last_failure: 0,
                    created_at: T0,
                })
                .unwrap();
        }
        let cookie = stella_authority::random_token().unwrap();
        catalog
            .insert_session(&SessionRecord {
                id_hash: stella_authority::sha256_b64url(&cookie),
                user_name: name.into(),
                csrf: CSRF.into(),
                created_at: T0,
                expires_at: T0 + 3600,
            })
            .unwrap();
        format!("{}={cookie}", crate::auth::SESSION_COOKIE)
    }

    /// GET `path` with `cookie`.
    pub(crate) async fn get(&self, cookie: &str, path: &str) -> Page {
        self.send(
            Request::builder()
                .method(Method::GET)
                .uri(path)
                .header(header::HOST, "stella.test")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// POSTs the form `fields` (the CSRF token is added) to `path` with `cookie`.
    pub(crate) async fn post(&self, cookie: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut pairs: Vec<(&str, &str)> = vec![("csrf", CSRF)];
        pairs.extend_from_slice(fields);
        self.post_encoded(cookie, path, serde_urlencoded::to_string(&pairs).unwrap())
            .await
    }

    /// POSTs the url-encoded form `body` as it is (no token added) to `path` with `cookie`.
    pub(crate) async fn post_encoded(&self, cookie: &str, path: &str, body: String) -> Page {
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::HOST, "stella.test")
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Sends any request through the full router.
    pub(crate) async fn send(&self, request: Request<Body>) -> Page {
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

impl Page {
    /// Asserts the console's security headers are present.
    pub(crate) fn assert_secure(&self) {
        let csp = self.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert_eq!(csp, super::view::CSP);
        assert_eq!(self.headers["x-frame-options"], "DENY");
    }
}

/// A kit signed for tests: its archive, the minisign public key (`.pub` text) that verifies it,
/// and its kit id.
pub(crate) struct SignedKit {
    pub archive: Vec<u8>,
    pub public_key: String,
    pub kit_id: String,
}

/// Builds a kit of `contents` on channel `stable` at sequence 1, built a day before [`T0`] (the
/// dashboard's freshness tests count on it), signed with a fresh key.
pub(crate) fn signed_kit(contents: &stella_importer::writer::KitContents) -> SignedKit {
    use stella_importer::signing::{KeyProtection, generate_key_pair};
    let pair = generate_key_pair(KeyProtection::Unencrypted, "console test").unwrap();
    let key = stella_importer::SigningKey::from_minisign_file_contents(&pair.secret_key_file, None)
        .unwrap();
    let created = time::OffsetDateTime::from_unix_timestamp(T0 as i64 - 86_400).unwrap();
    let params = stella_importer::writer::KitParams {
        channel: "stable".into(),
        sequence: 1,
        created,
        expires: created + time::Duration::days(30),
        base: None,
        sources: Vec::new(),
    };
    let built = stella_importer::writer::write_kit(contents, &params, &key).unwrap();
    SignedKit {
        archive: built.archive,
        public_key: pair.public_key_file,
        kit_id: built.manifest.kit_id,
    }
}

/// [`signed_kit`] of the advisory pages' kit contents (advisories, KEV, EPSS, VEX).
pub(crate) fn sample_kit() -> SignedKit {
    signed_kit(&super::advisories::tests::contents())
}

/// A test's view of one column of a table: in the first table at or after `marker` in `body`,
/// the text after each `row_start` up to the next `end`. Panics when `marker` is absent.
pub(crate) fn cells(body: &str, marker: &str, row_start: &str, end: &str) -> Vec<String> {
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {body}"));
    let table = &body[start..];
    let table = &table[..table.find("</table>").unwrap_or(table.len())];
    table
        .split(row_start)
        .skip(1)
        .map(|cell| cell.split(end).next().unwrap_or_default().to_owned())
        .collect()
}
