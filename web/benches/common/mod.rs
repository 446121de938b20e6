//! What the console benchmarks share: a daemon state over a temporary data directory with the
//! tests' fixed clock, a signed-in viewer, and one GET through the whole router.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use stella_store::{SessionRecord, Stores, UserRecord};
use stella_web::auth::{AuthSettings, SESSION_COOKIE};
use stella_web::{AppState, Authority};
use tower::ServiceExt as _;

/// The fixed clock of every bench state (and of its sessions).
pub const T0: u64 = 1_764_416_400;

/// A state over the stores in `dir`, as the daemon builds it, with the clock at [`T0`].
pub fn state(dir: &std::path::Path) -> AppState {
    let stores = Arc::new(Stores::open(dir).unwrap());
    let clock: Arc<dyn stella_core::Clock> = Arc::new(stella_core::FixedClock(T0));
    let authority = Authority::with_signer(
        Arc::new(stella_authority::SoftwareSigner::generate().unwrap()),
        AuthSettings {
            issuer: "http://stella.bench".into(),
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
    AppState::new(
        stores,
        feeds,
        Arc::new(authority),
        stella_core::Config::default(),
        clock,
        None,
    )
}

/// Creates the viewer `val` with a session and returns its cookie header value.
pub fn viewer_cookie(stores: &Stores) -> String {
    stores
        .catalog
        .insert_user(&UserRecord {
            name: "val".into(),
            password_hash: "$argon2id$unused".into(),
            role: "viewer".into(),
            must_change: false,
            failures: 0,
            last_failure: 0,
            created_at: T0,
        })
        .unwrap();
    let cookie = stella_authority::random_token().unwrap();
    stores
        .catalog
        .insert_session(&SessionRecord {
            id_hash: stella_authority::sha256_b64url(&cookie),
            user_name: "val".into(),
            csrf: "bench-csrf".into(),
            created_at: T0,
            expires_at: T0 + 3600,
        })
        .unwrap();
    format!("{SESSION_COOKIE}={cookie}")
}

/// GET `path` through `router` with `cookie`; the page must answer 200. Returns the body.
pub async fn get(router: &Router, cookie: &str, path: &str) -> Bytes {
    let response = router
        .clone()
        .oneshot(
            Request::builder()
                .uri(path)
                .header(header::HOST, "stella.bench")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap()
}
