//! In-process tests of the Authority's HTTP surface: the route-table walk (401 without a token,
//! 403 with a wrong-scope token, for every protected route), default deny, the token endpoint
//! with DPoP binding, replayed and misdirected proofs, expired and unbound tokens, the signer
//! nonce, console CSRF, lockout and logout everywhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use stella_authority::{DpopKey, LoginThrottle, Scope, ScopeSet, SoftwareSigner, TokenLifetime};
use stella_core::Clock;
use stella_store::{ClientRecord, SessionRecord, Stores, UserRecord};
use tower::ServiceExt as _;

use super::{Access, AuthSettings, Authority, Role};
use crate::{AppState, RouteTable, route_table, router};

const HOST: &str = "stella.test";
const T0: u64 = 1_700_000_000;

struct StepClock(AtomicU64);
impl Clock for StepClock {
    fn now_unix(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Env {
    _dir: tempfile::TempDir,
    state: AppState,
    clock: Arc<StepClock>,
}

impl Env {
    fn new() -> Self {
        Self::with_bearer(false)
    }

    fn with_bearer(allow_bearer_tokens: bool) -> Self {
        Self::with(allow_bearer_tokens, false)
    }

    fn with(allow_bearer_tokens: bool, https: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stores = Arc::new(Stores::open(dir.path()).unwrap());
        let clock = Arc::new(StepClock(AtomicU64::new(T0)));
        let settings = AuthSettings {
            issuer: format!("{}://{HOST}", if https { "https" } else { "http" }),
            https,
            token_lifetime: TokenLifetime::clamped(300),
            session_lifetime_secs: 3600,
            allow_bearer_tokens,
            throttle: LoginThrottle {
                lockout_after: 3,
                lockout_secs: 600,
                base_backoff_secs: 1,
            },
        };
        let authority = Authority::with_signer(
            Arc::new(SoftwareSigner::generate().unwrap()),
            settings,
            clock.clone(),
        )
        .unwrap();
        Self {
            _dir: dir,
            state: AppState::new(
                stores.clone(),
                Arc::new(stella_feeds::FeedStore::open(stores.dir(), &stores.catalog).unwrap()),
                Arc::new(authority),
                stella_core::Config::default(),
                Arc::new(stella_core::SystemClock),
                None,
            ),
            clock,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_unix()
    }

    fn advance(&self, secs: u64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    fn router(&self) -> Router {
        router(self.state.clone())
    }

    async fn send(&self, request: Request<Body>) -> Response {
        self.router().oneshot(request).await.unwrap()
    }

    fn client(&self, id: &str, secret: &str, scopes: &str) {
        let record = ClientRecord {
            client_id: id.into(),
            secret_hash: Some(stella_authority::hash_secret(secret).unwrap()),
            jwks: None,
            scopes: scopes.into(),
            created_at: T0,
            created_by: "test".into(),
            disabled: false,
        };
        assert!(self.state.stores().catalog.insert_client(&record).unwrap());
    }

    /// A DPoP-bound token minted directly by the issuer (no argon2 round trip).
    fn token(&self, key: &DpopKey, scopes: ScopeSet) -> String {
        self.state
            .authority()
            .issuer()
            .issue("walker", &scopes, Some(key.thumbprint()))
            .unwrap()
            .access_token
    }

    fn user(&self, name: &str, password: &str, role: &str, must_change: bool) {
        let user = UserRecord {
            name: name.into(),
            password_hash: stella_authority::hash_secret(password).unwrap(),
            role: role.into(),
            must_change,
            failures: 0,
            last_failure: 0,
            created_at: T0,
        };
        assert!(self.state.stores().catalog.insert_user(&user).unwrap());
    }

    /// A session cookie for `user`, with CSRF token `csrf`.
    fn session(&self, user: &str, csrf: &str) -> String {
        let cookie = stella_authority::random_token().unwrap();
        self.state
            .stores()
            .catalog
            .insert_session(&SessionRecord {
                id_hash: stella_authority::sha256_b64url(&cookie),
                user_name: user.into(),
                csrf: csrf.into(),
                created_at: self.now(),
                expires_at: self.now() + 3600,
            })
            .unwrap();
        format!("{}={cookie}", super::SESSION_COOKIE)
    }
}

fn url(path: &str) -> String {
    format!("http://{HOST}{path}")
}

fn req(method: &Method, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST)
}

fn dpop_request(
    method: &Method,
    path: &str,
    token: &str,
    key: &DpopKey,
    now: u64,
    nonce: Option<&str>,
) -> Request<Body> {
    let proof = key
        .proof(method.as_str(), &url(path), now, Some(token), nonce)
        .unwrap();
    req(method, path)
        .header(header::AUTHORIZATION, format!("DPoP {token}"))
        .header("DPoP", proof)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap()
}

async fn body_text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn www_authenticate(response: &Response) -> String {
    response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// Public routes, listed here on purpose: a new public route must be added to this list (and to
/// `docs/security.md`) by someone who means it.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/introspect"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/jwks"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/api/v2/checkpoint"),
    ("GET", "/api/v2/tile/{*path}"),
    ("GET", "/api/trust/{name}"),
    ("GET", "/console/static/{file}"),
];

/// Walks every route of the real table: public ones must be on the list above; every other one
/// answers 401 without credentials and 403 with credentials lacking its scope.
#[tokio::test]
async fn every_route_is_public_by_name_or_denies_missing_and_wrong_scope() {
    let env = Env::new();
    let key = DpopKey::generate().unwrap();
    let table = route_table();
    assert!(
        table
            .entries()
            .iter()
            .any(|e| matches!(e.access, Access::Token { .. })),
        "the table has no protected API route"
    );
    let viewer_cookie = {
        env.user("viewer1", "irrelevant-password", "viewer", false);
        env.session("viewer1", "csrf-v")
    };
    let mut walked = 0;
    for entry in table.entries() {
        let path = concrete(entry.path);
        let method = &entry.method;
        let label = format!("{method} {}", entry.path);
        match entry.access {
            Access::Public { why } => {
                assert!(!why.is_empty(), "{label}: public without a reason");
                assert!(
                    PUBLIC.contains(&(method.as_str(), entry.path)),
                    "{label} is public but not on the reviewed PUBLIC list"
                );
                continue;
            }
            Access::Token { scope } | Access::TokenDpopNonce { scope } => {
                let none = env
                    .send(req(method, &path).body(Body::empty()).unwrap())
                    .await;
                assert_eq!(
                    none.status(),
                    StatusCode::UNAUTHORIZED,
                    "{label} without token"
                );
                assert!(www_authenticate(&none).starts_with("DPoP"), "{label}");
                let nonce = none
                    .headers()
                    .get("dpop-nonce")
                    .map(|v| v.to_str().unwrap().to_owned());
                let others = ScopeSet::new(Scope::ALL.into_iter().filter(|s| *s != scope));
                let token = env.token(&key, others);
                let wrong = env
                    .send(dpop_request(
                        method,
                        &path,
                        &token,
                        &key,
                        env.now(),
                        nonce.as_deref(),
                    ))
                    .await;
                assert_eq!(wrong.status(), StatusCode::FORBIDDEN, "{label} wrong scope");
                let challenge = www_authenticate(&wrong);
                assert!(
                    challenge.contains("error=\"insufficient_scope\"")
                        && challenge.contains(&format!("scope=\"{scope}\"")),
                    "{label}: {challenge}"
                );
            }
            Access::Session { scope } => {
                let none = env
                    .send(req(method, &path).body(Body::empty()).unwrap())
                    .await;
                let expected = if *method == Method::GET {
                    StatusCode::SEE_OTHER
                } else {
                    StatusCode::UNAUTHORIZED
                };
                assert_eq!(none.status(), expected, "{label} without session");
                // A viewer holds the read scopes; every other console scope is refused to it.
                if let Some(scope) = scope
                    && !Role::Viewer.scopes().contains(scope)
                {
                    let wrong = env
                        .send(
                            req(method, &path)
                                .header(header::COOKIE, &viewer_cookie)
                                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                                .body(Body::from("csrf=csrf-v"))
                                .unwrap(),
                        )
                        .await;
                    assert_eq!(wrong.status(), StatusCode::FORBIDDEN, "{label} as viewer");
                }
            }
        }
        walked += 1;
    }
    assert!(walked >= 3, "walked only {walked} protected routes");
    // Scope denials are audited.
    assert!(
        env.state
            .stores()
            .catalog
            .audit_count("auth.scope_denied")
            .unwrap()
            >= 3
    );
}

/// A route that reaches the router without going through the table is denied to everyone.
#[tokio::test]
async fn route_outside_the_table_is_denied() {
    let env = Env::new();
    let sneaky = Router::new().route("/api/sneaky", axum::routing::get(|| async { "secret" }));
    let app = RouteTable::new()
        .public(Method::GET, "/open", "test", || async { "open" })
        .into_router_over(sneaky, env.state.clone())
        .with_state(env.state.clone());
    let open = app
        .clone()
        .oneshot(req(&Method::GET, "/open").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let response = app
        .oneshot(
            req(&Method::GET, "/api/sneaky")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(body_text(response).await.contains("no access rule"));
}

async fn token_request(
    env: &Env,
    form: &str,
    basic: Option<(&str, &str)>,
    proof: Option<String>,
) -> Response {
    let mut builder = req(&Method::POST, "/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        builder = builder.header(header::AUTHORIZATION, format!("Basic {creds}"));
    }
    if let Some(proof) = proof {
        builder = builder.header("DPoP", proof);
    }
    env.send(builder.body(Body::from(form.to_owned())).unwrap())
        .await
}

#[tokio::test]
async fn token_endpoint_issues_dpop_bound_tokens_that_work_until_they_expire() {
    let env = Env::new();
    env.client("ci", "s3cret", "admin scanner.read");
    let key = DpopKey::generate().unwrap();

    // Wrong secret: 401 invalid_client, audited.
    let bad = token_request(
        &env,
        "grant_type=client_credentials",
        Some(("ci", "nope")),
        None,
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(body_text(bad).await.contains("invalid_client"));
    assert_eq!(
        env.state
            .stores()
            .catalog
            .audit_count("auth.token_denied")
            .unwrap(),
        1
    );

    // Scope outside the client's allowance.
    let wide = token_request(
        &env,
        "grant_type=client_credentials&scope=signer.sign",
        Some(("ci", "s3cret")),
        None,
    )
    .await;
    assert_eq!(wide.status(), StatusCode::BAD_REQUEST);
    assert!(body_text(wide).await.contains("invalid_scope"));

    // client_secret_post with a DPoP proof: a DPoP token bound to the key.
    let proof = key
        .proof("POST", &url("/oauth/token"), env.now(), None, None)
        .unwrap();
    let ok = token_request(
        &env,
        "grant_type=client_credentials&client_id=ci&client_secret=s3cret&scope=admin",
        None,
        Some(proof.clone()),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers().get(header::CACHE_CONTROL).unwrap(), "no-store");
    let body: serde_json::Value = serde_json::from_str(&body_text(ok).await).unwrap();
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "admin");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        env.state
            .stores()
            .catalog
            .audit_count("auth.token_issued")
            .unwrap(),
        1
    );

    // The same token-endpoint proof again: replay.
    let replay = token_request(
        &env,
        "grant_type=client_credentials&client_id=ci&client_secret=s3cret",
        None,
        Some(proof),
    )
    .await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(body_text(replay).await.contains("replay"));

    // The token works on an admin route with a fresh proof...
    let audit = env
        .send(dpop_request(
            &Method::GET,
            "/api/audit",
            &token,
            &key,
            env.now(),
            None,
        ))
        .await;
    assert_eq!(audit.status(), StatusCode::OK);
    let events = body_text(audit).await;
    assert!(events.contains("auth.token_issued"), "{events}");

    // ...and introspects as active and bound.
    let introspect = env
        .send(
            req(&Method::POST, "/oauth/introspect")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "client_id=ci&client_secret=s3cret&token={token}"
                )))
                .unwrap(),
        )
        .await;
    let info: serde_json::Value = serde_json::from_str(&body_text(introspect).await).unwrap();
    assert_eq!(info["active"], true);
    assert_eq!(info["cnf"]["jkt"], key.thumbprint());

    // Expired: 401 invalid_token, even though the token was cached as verified.
    env.advance(301);
    let expired = env
        .send(dpop_request(
            &Method::GET,
            "/api/audit",
            &token,
            &key,
            env.now(),
            None,
        ))
        .await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert!(www_authenticate(&expired).contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn replayed_misdirected_and_foreign_proofs_are_rejected() {
    let env = Env::new();
    let key = DpopKey::generate().unwrap();
    let token = env.token(&key, ScopeSet::new([Scope::Admin]));

    let first = dpop_request(&Method::GET, "/api/audit", &token, &key, env.now(), None);
    let proof = first.headers().get("DPoP").unwrap().clone();
    assert_eq!(env.send(first).await.status(), StatusCode::OK);
    // Replay of the same proof.
    let replay = req(&Method::GET, "/api/audit")
        .header(header::AUTHORIZATION, format!("DPoP {token}"))
        .header("DPoP", proof.clone())
        .body(Body::empty())
        .unwrap();
    let replayed = env.send(replay).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let challenge = www_authenticate(&replayed);
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\"") && challenge.contains("replay"),
        "{challenge}"
    );

    // A proof made for another URL, and one for another method.
    let other_url = key
        .proof("GET", &url("/api/clients"), env.now(), Some(&token), None)
        .unwrap();
    let other_method = key
        .proof("POST", &url("/api/audit"), env.now(), Some(&token), None)
        .unwrap();
    for proof in [other_url, other_method] {
        let response = env
            .send(
                req(&Method::GET, "/api/audit")
                    .header(header::AUTHORIZATION, format!("DPoP {token}"))
                    .header("DPoP", proof)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(www_authenticate(&response).contains("invalid_dpop_proof"));
    }

    // A proof by another key than the token's binding.
    let thief = DpopKey::generate().unwrap();
    let stolen = env
        .send(dpop_request(
            &Method::GET,
            "/api/audit",
            &token,
            &thief,
            env.now(),
            None,
        ))
        .await;
    assert_eq!(stolen.status(), StatusCode::UNAUTHORIZED);
    assert!(www_authenticate(&stolen).contains("invalid_token"));

    // The bound token presented as a bearer token.
    let bearer = env
        .send(
            req(&Method::GET, "/api/audit")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    assert!(
        env.state
            .stores()
            .catalog
            .audit_count("auth.token_rejected")
            .unwrap()
            >= 4
    );
}

/// Signer routes need a DPoP-bound token and the server nonce; a token without `cnf` is refused.
#[tokio::test]
async fn signer_routes_need_bound_tokens_and_the_server_nonce() {
    let env = Env::new();
    let app = RouteTable::new()
        .signer(Method::POST, "/api/sign", Scope::SignerSign, || async {
            "signed"
        })
        .into_router(env.state.clone())
        .with_state(env.state.clone());
    let key = DpopKey::generate().unwrap();
    let scopes = ScopeSet::new([Scope::SignerSign]);

    // Bearer token without cnf: refused where DPoP is required.
    let unbound = env
        .state
        .authority()
        .issuer()
        .issue("ci", &scopes, None)
        .unwrap()
        .access_token;
    let response = app
        .clone()
        .oneshot(
            req(&Method::POST, "/api/sign")
                .header(header::AUTHORIZATION, format!("Bearer {unbound}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(www_authenticate(&response).contains("requires a DPoP-bound token"));
    // ...and presenting it under the DPoP scheme does not help.
    let response = app
        .clone()
        .oneshot(dpop_request(
            &Method::POST,
            "/api/sign",
            &unbound,
            &key,
            env.now(),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(www_authenticate(&response).contains("cnf"));

    // Bound token, proof without nonce: use_dpop_nonce with a DPoP-Nonce header.
    let token = env.token(&key, scopes);
    let response = app
        .clone()
        .oneshot(dpop_request(
            &Method::POST,
            "/api/sign",
            &token,
            &key,
            env.now(),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(www_authenticate(&response).contains("error=\"use_dpop_nonce\""));
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let response = app
        .oneshot(dpop_request(
            &Method::POST,
            "/api/sign",
            &token,
            &key,
            env.now(),
            Some(&nonce),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn login_form(user: &str, password: &str) -> Request<Body> {
    req(&Method::POST, "/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, "stella_login_csrf=tok")
        .body(Body::from(format!(
            "csrf=tok&username={user}&password={password}"
        )))
        .unwrap()
}

#[tokio::test]
async fn login_backs_off_then_locks_and_audits() {
    let env = Env::new();
    env.user("alice", "right-password-1", "operator", false);
    // The login form itself is CSRF-protected (double submit).
    let no_csrf = env
        .send(
            req(&Method::POST, "/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("username=alice&password=right-password-1"))
                .unwrap(),
        )
        .await;
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);

    for _ in 0..3 {
        let response = env.send(login_form("alice", "wrong")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        env.advance(10); // past the backoff, not past the lockout
    }
    // Locked now: even the right password is refused.
    let locked = env.send(login_form("alice", "right-password-1")).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers().contains_key(header::RETRY_AFTER));
    env.advance(601);
    let ok = env.send(login_form("alice", "right-password-1")).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let cookie = ok
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("stella_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let catalog = &env.state.stores().catalog;
    assert_eq!(catalog.audit_count("auth.login_failed").unwrap(), 4);
    assert_eq!(catalog.audit_count("auth.login").unwrap(), 1);
    // Backoff: an immediate retry after one failure is refused without checking the password.
    env.send(login_form("alice", "wrong")).await;
    let soon = env.send(login_form("alice", "right-password-1")).await;
    assert_eq!(soon.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn csrf_forced_password_change_and_logout_everywhere() {
    let env = Env::new();
    env.user("admin", "one-time-pass", "admin", true);
    let cookie_a = env.session("admin", "csrf-a");
    let cookie_b = env.session("admin", "csrf-b");
    // must_change: every page but the password form redirects there.
    let home = env
        .send(
            req(&Method::GET, "/")
                .header(header::COOKIE, &cookie_a)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        home.headers().get(header::LOCATION).unwrap(),
        "/account/password"
    );

    let change = |cookie: &str, csrf: &str| {
        req(&Method::POST, "/account/password")
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "csrf={csrf}&current=one-time-pass&new=a-much-better-pass&confirm=a-much-better-pass"
            )))
            .unwrap()
    };
    // Wrong CSRF token (session B's token on session A): rejected and audited.
    let forged = env.send(change(&cookie_a, "csrf-b")).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        env.state
            .stores()
            .catalog
            .audit_count("auth.csrf_rejected")
            .unwrap(),
        1
    );
    let changed = env.send(change(&cookie_a, "csrf-a")).await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let user = env.state.stores().catalog.user("admin").unwrap().unwrap();
    assert!(!user.must_change);
    assert!(stella_authority::verify_secret(
        "a-much-better-pass",
        &user.password_hash
    ));

    // The password change ended session B; a new session comes and goes with logout everywhere.
    let home_b = env
        .send(
            req(&Method::GET, "/")
                .header(header::COOKIE, &cookie_b)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        home_b.status(),
        StatusCode::SEE_OTHER,
        "password change ends other sessions"
    );
    let cookie_b = env.session("admin", "csrf-c");
    let home_b = env
        .send(
            req(&Method::GET, "/")
                .header(header::COOKIE, &cookie_b)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(home_b.status(), StatusCode::OK);
    let out = env
        .send(
            req(&Method::POST, "/logout/everywhere")
                .header(header::COOKIE, &cookie_a)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("csrf=csrf-a"))
                .unwrap(),
        )
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let home_b = env
        .send(
            req(&Method::GET, "/")
                .header(header::COOKIE, &cookie_b)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        home_b.status(),
        StatusCode::SEE_OTHER,
        "session B must be gone"
    );
    assert_eq!(home_b.headers().get(header::LOCATION).unwrap(), "/login");
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_issuer_and_its_key() {
    let env = Env::new();
    let discovery = env
        .send(
            req(&Method::GET, "/.well-known/openid-configuration")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let meta: serde_json::Value = serde_json::from_str(&body_text(discovery).await).unwrap();
    assert_eq!(meta["issuer"], format!("http://{HOST}"));
    assert_eq!(meta["token_endpoint"], format!("http://{HOST}/oauth/token"));
    assert_eq!(
        meta["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA"])
    );
    let jwks = env
        .send(req(&Method::GET, "/jwks").body(Body::empty()).unwrap())
        .await;
    let jwks: serde_json::Value = serde_json::from_str(&body_text(jwks).await).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["alg"], "ES256");
    assert!(key.get("d").is_none(), "private part published");
    // The kid is what tokens carry.
    let token = env.token(&DpopKey::generate().unwrap(), ScopeSet::new([Scope::Admin]));
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&stella_authority::b64url_decode(header, "h").unwrap()).unwrap();
    assert_eq!(header["kid"], key["kid"]);
}

/// `private_key_jwt`: an admin registers a client by its public key; the client then gets a
/// DPoP-bound token with a signed assertion, once per assertion.
#[tokio::test]
async fn private_key_jwt_clients_registered_through_the_admin_api() {
    let env = Env::new();
    let admin_key = DpopKey::generate().unwrap();
    let admin = env.token(&admin_key, ScopeSet::new([Scope::Admin]));
    let client_key = DpopKey::generate().unwrap();
    let body = serde_json::json!({
        "client_id": "signer-bot",
        "scopes": "signer.sign scanner.read",
        "jwks": { "keys": [client_key.public_jwk()] },
    });
    let proof = admin_key
        .proof("POST", &url("/api/clients"), env.now(), Some(&admin), None)
        .unwrap();
    let created = env
        .send(
            req(&Method::POST, "/api/clients")
                .header(header::AUTHORIZATION, format!("DPoP {admin}"))
                .header("DPoP", proof)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: serde_json::Value = serde_json::from_str(&body_text(created).await).unwrap();
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert!(created.get("client_secret").is_none());
    assert_eq!(
        env.state
            .stores()
            .catalog
            .audit_count("client.create")
            .unwrap(),
        1
    );

    let assertion = client_key
        .client_assertion("signer-bot", &url("/oauth/token"), env.now())
        .unwrap();
    let form = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}",
        "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    );
    let dpop = client_key
        .proof("POST", &url("/oauth/token"), env.now(), None, None)
        .unwrap();
    let ok = token_request(&env, &form, None, Some(dpop)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let token: serde_json::Value = serde_json::from_str(&body_text(ok).await).unwrap();
    assert_eq!(token["token_type"], "DPoP");
    assert_eq!(token["scope"], "scanner.read signer.sign");
    // The same assertion again is a replay.
    let again = token_request(&env, &form, None, None).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(body_text(again).await.contains("replay"));
    // An assertion signed by another key is refused.
    let thief = DpopKey::generate().unwrap();
    let forged = thief
        .client_assertion("signer-bot", &url("/oauth/token"), env.now())
        .unwrap();
    let form = form.replace(&assertion, &forged);
    let refused = token_request(&env, &form, None, None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

/// By default every token is DPoP-bound: the token endpoint wants a proof and unbound tokens
/// are refused everywhere. With `allow_bearer_tokens`, bearer tokens work on non-signer routes.
#[tokio::test]
async fn bearer_tokens_only_when_allowed() {
    for allowed in [false, true] {
        let env = Env::with_bearer(allowed);
        env.client("ci", "s3cret", "admin");
        let response = token_request(
            &env,
            "grant_type=client_credentials",
            Some(("ci", "s3cret")),
            None,
        )
        .await;
        let minted = env
            .state
            .authority()
            .issuer()
            .issue("ci", &ScopeSet::new([Scope::Admin]), None)
            .unwrap()
            .access_token;
        let call = env
            .send(
                req(&Method::GET, "/api/audit")
                    .header(header::AUTHORIZATION, format!("Bearer {minted}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        if allowed {
            assert_eq!(response.status(), StatusCode::OK);
            let body: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
            assert_eq!(body["token_type"], "Bearer");
            assert_eq!(call.status(), StatusCode::OK);
        } else {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            assert!(body_text(response).await.contains("DPoP proof is required"));
            assert_eq!(call.status(), StatusCode::UNAUTHORIZED);
            assert!(www_authenticate(&call).contains("requires a DPoP-bound token"));
        }
    }
}

/// Over HTTPS the session cookie is `__Host-` prefixed and `Secure`, and HSTS is on every answer.
#[tokio::test]
async fn https_sessions_use_secure_host_cookies_and_hsts() {
    let env = Env::with(false, true);
    env.user("bob", "bobs-password-1", "viewer", false);
    let page = env
        .send(req(&Method::GET, "/login").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        page.headers()
            .get(header::STRICT_TRANSPORT_SECURITY)
            .unwrap(),
        super::HSTS
    );
    let login = env.send(login_form("bob", "bobs-password-1")).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-stella_session="))
        .expect("secure session cookie");
    for attribute in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing in {cookie}"
        );
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let value = cookie.split(';').next().unwrap();
    let home = env
        .send(
            req(&Method::GET, "/")
                .header(header::COOKIE, value)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(home.status(), StatusCode::OK);
    // The plain-HTTP cookie name is not accepted over HTTPS.
    let plain = value.replace("__Host-stella_session", "stella_session");
    let home = env
        .send(
            req(&Method::GET, "/")
                .header(header::COOKIE, plain)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
}
