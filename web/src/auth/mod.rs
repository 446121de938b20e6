//! The Authority on the wire: the route table with per-route access rules, access-token and
//! DPoP checks with RFC 9449 error responses, the OAuth endpoints, console sessions, and audit
//! records for every authentication decision.

mod admin;
mod console;
mod oauth;
mod routes;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use stella_authority::{
    AuthorityError, DpopLimits, DpopRequest, DpopVerifier, ErrorCode, LoginThrottle, NonceMode,
    ReplayCache, Scope, ScopeSet, SoftwareSigner, TokenIssuer, TokenLifetime, TokenSigner,
    TokenValidator,
};
use stella_core::Clock;
use stella_store::{AuditEvent, Catalog, StoreError, UserRecord};

use crate::{AppState, RequestId};

pub use console::{Role, SESSION_COOKIE, SESSION_COOKIE_SECURE};
pub use routes::{Access, RouteEntry, RouteTable};

pub(crate) use admin::routes as admin_routes;
pub(crate) use console::SessionInfo;
pub(crate) use console::routes as console_routes;
pub(crate) use oauth::routes as oauth_routes;

/// Settings of the Authority, from `[auth]` and `[tls]` and the listening address.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The issuer URL (`iss`), e.g. `https://appliance.example:8443`.
    pub issuer: String,
    /// Whether the daemon serves HTTPS (cookies get `Secure`, HSTS is sent, `htu` is `https`).
    pub https: bool,
    /// Access-token lifetime.
    pub token_lifetime: TokenLifetime,
    /// Console session lifetime, seconds.
    pub session_lifetime_secs: u64,
    /// Whether bearer (unbound) tokens may be issued and used on non-signer routes.
    pub allow_bearer_tokens: bool,
    /// Login backoff and lockout.
    pub throttle: LoginThrottle,
}

/// Why the Authority could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthSetupError {
    /// Keys, randomness, hashing.
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    /// The catalog.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The audience of the appliance's access tokens.
pub const AUDIENCE: &str = "stella-api";

/// The Authority's runtime state: token issuer and validator, DPoP verifier, settings.
pub struct Authority {
    settings: AuthSettings,
    issuer: TokenIssuer,
    validator: TokenValidator,
    dpop: DpopVerifier,
    assertion_replay: ReplayCache,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// The Authority with the software token-signing key of `data_dir`
    /// (`authority/token-signing.pem`, made at first start). Returns it and whether the key was
    /// created now.
    pub fn open(
        data_dir: &Path,
        settings: AuthSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, bool), AuthSetupError> {
        let dir = data_dir.join("authority");
        std::fs::create_dir_all(&dir).map_err(|err| AuthorityError::Key {
            path: dir.clone(),
            reason: format!("cannot create directory: {err}"),
        })?;
        let (signer, created) = SoftwareSigner::load_or_create(&dir.join("token-signing.pem"))?;
        Ok((
            Self::with_signer(Arc::new(signer), settings, clock)?,
            created,
        ))
    }

    /// The Authority signing with `signer` (e.g. an HSM-backed one).
    pub fn with_signer(
        signer: Arc<dyn TokenSigner>,
        settings: AuthSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthSetupError> {
        let issuer = TokenIssuer::new(
            signer,
            settings.issuer.clone(),
            AUDIENCE,
            settings.token_lifetime,
            clock.clone(),
        );
        let validator = issuer.validator(10_000);
        let dpop = DpopVerifier::new(DpopLimits::default(), clock.clone())?;
        Ok(Self {
            settings,
            issuer,
            validator,
            dpop,
            assertion_replay: ReplayCache::new(100_000),
            clock,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The token issuer.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    /// The token validator.
    pub fn validator(&self) -> &TokenValidator {
        &self.validator
    }

    /// The DPoP verifier.
    pub fn dpop(&self) -> &DpopVerifier {
        &self.dpop
    }

    /// Seen `jti`s of `private_key_jwt` client assertions.
    pub fn assertion_replay(&self) -> &ReplayCache {
        &self.assertion_replay
    }

    /// Now, from the Authority's clock.
    pub fn now(&self) -> u64 {
        self.clock.now_unix()
    }

    /// First start: when no console user exists, creates `admin` with a random one-time
    /// password that must be changed at first login, records it in the audit log (without the
    /// password), and returns the password so the caller can print it once.
    pub fn bootstrap_admin(&self, catalog: &Catalog) -> Result<Option<String>, AuthSetupError> {
        if catalog.user_count()? > 0 {
            return Ok(None);
        }
        let password = stella_authority::random_token()?;
        let user = UserRecord {
            name: "admin".to_owned(),
            password_hash: stella_authority::hash_secret(&password)?,
            role: Role::Admin.as_str().to_owned(),
            must_change: true,
            failures: 0,
            last_failure: 0,
            created_at: self.now(),
        };
        if !catalog.insert_user(&user)? {
            return Ok(None);
        }
        catalog.audit(&AuditEvent {
            at: self.now(),
            actor: "system".to_owned(),
            action: "user.create".to_owned(),
            target: "admin".to_owned(),
            detail: json!({ "role": "admin", "bootstrap": true }).to_string(),
            request_id: None,
        })?;
        Ok(Some(password))
    }

    /// The request URL as DPoP `htu` sees it: scheme, the Host the client used, and the path.
    pub(crate) fn request_url(&self, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
        let scheme = if self.settings.https { "https" } else { "http" };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        format!("{scheme}://{host}{}", uri.path())
    }
}

/// Who is calling, as established by the access check; handlers read it as an extension.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The client id or user name.
    pub subject: String,
    /// The scopes the caller holds.
    pub scopes: ScopeSet,
    /// How the caller authenticated.
    pub kind: CallerKind,
}

impl Caller {
    /// The subject of the caller the access check established for `request` (`unknown` on a
    /// public route), for audit records.
    pub fn subject_of(request: &Request) -> String {
        request
            .extensions()
            .get::<Caller>()
            .map(|c| c.subject.clone())
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// An OAuth client with an access token (DPoP-bound when `dpop`).
    Client {
        /// Whether the token was DPoP-bound and a proof was checked.
        dpop: bool,
    },
    /// A console user with a session.
    User {
        /// The user's role.
        role: Role,
    },
}

/// Where a request came from and which request it was, for audit records.
#[derive(Debug, Clone)]
pub struct AuditContext {
    /// The request id.
    pub request_id: Option<String>,
    /// The peer address, when known.
    pub source: String,
}

impl AuditContext {
    /// The context of `request`.
    pub fn of(request: &Request) -> Self {
        Self::from_parts(request.extensions())
    }

    pub(crate) fn from_parts(extensions: &axum::http::Extensions) -> Self {
        Self {
            request_id: extensions.get::<RequestId>().map(|id| id.0.clone()),
            source: extensions
                .get::<ConnectInfo<crate::ClientAddr>>()
                .map(|info| info.0.0.to_string())
                .or_else(|| {
                    extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|info| info.0.to_string())
                })
                .unwrap_or_else(|| "unknown".to_owned()),
        }
    }
}

/// Appends an audit record; `detail` gets the source address added. A failure to write is
/// logged, never hidden from the operator, but does not fail the request it describes.
pub(crate) fn audit(
    state: &AppState,
    ctx: &AuditContext,
    actor: &str,
    action: &str,
    target: &str,
    mut detail: serde_json::Value,
) {
    if let Some(map) = detail.as_object_mut() {
        map.insert("source".to_owned(), ctx.source.clone().into());
    }
    let event = AuditEvent {
        at: state.authority().now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_string(),
        request_id: ctx.request_id.clone(),
    };
    if let Err(err) = state.stores().catalog.audit(&event) {
        tracing::error!(%err, action, "cannot write audit record");
    }
}

/// A `WWW-Authenticate` challenge (RFC 6750 §3 / RFC 9449 §7.1) with a JSON body.
pub(crate) fn challenge(
    status: StatusCode,
    dpop_scheme: bool,
    code: Option<ErrorCode>,
    description: &str,
    scope: Option<Scope>,
    nonce: Option<String>,
) -> Response {
    let scheme = if dpop_scheme { "DPoP" } else { "Bearer" };
    // Quotes and backslashes cannot appear inside the quoted-string.
    let clean: String = description
        .chars()
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    let mut params = Vec::new();
    if let Some(code) = code {
        params.push(format!("error=\"{}\"", code.as_str()));
        params.push(format!("error_description=\"{clean}\""));
    }
    if let Some(scope) = scope {
        params.push(format!("scope=\"{scope}\""));
    }
    if dpop_scheme {
        params.push("algs=\"ES256 EdDSA\"".to_owned());
    }
    let value = if params.is_empty() {
        scheme.to_owned()
    } else {
        format!("{scheme} {}", params.join(", "))
    };
    let body = json!({
        "error": code.map_or("unauthorized", ErrorCode::as_str),
        "error_description": description,
    });
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    if let Some(nonce) = nonce
        && let Ok(value) = HeaderValue::from_str(&nonce)
    {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response
}

/// Applies `access` to `request`.
pub(crate) async fn check(
    state: &AppState,
    access: Access,
    request: Request,
    next: Next,
) -> Response {
    match access {
        Access::Public { .. } => next.run(request).await,
        Access::Token { scope } => check_token_then(state, scope, false, request, next).await,
        Access::TokenDpopNonce { scope } => {
            check_token_then(state, scope, true, request, next).await
        }
        Access::Session { scope } => console::check_session(state, scope, request, next).await,
    }
}

/// Largest unread request body drained before a refusal is sent; see [`check_token_then`].
const DRAIN_LIMIT: usize = 1024 * 1024;

/// Runs the token check on the request's head. A refused request's body (up to
/// [`DRAIN_LIMIT`], for at most five seconds) is read before the refusal goes out: closing a
/// connection with unread data makes the kernel reset it, and the client would lose the 401
/// that carries the DPoP nonce it should retry with.
async fn check_token_then(
    state: &AppState,
    scope: Scope,
    dpop_required: bool,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let head = Request::from_parts(parts, axum::body::Body::empty());
    match check_token(state, scope, dpop_required, head) {
        Ok(authorized) => {
            let (parts, _) = authorized.into_parts();
            next.run(Request::from_parts(parts, body)).await
        }
        Err(refusal) => {
            let drain = axum::body::to_bytes(body, DRAIN_LIMIT);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
            refusal
        }
    }
}

/// Checks the token (and DPoP proof) of `request`; on success returns it with the [`Caller`]
/// extension. The request's body is not touched.
fn check_token(
    state: &AppState,
    scope: Scope,
    dpop_required: bool,
    mut request: Request,
) -> Result<Request, Response> {
    let authority = state.authority();
    let nonce_mode = if dpop_required {
        NonceMode::Required
    } else {
        NonceMode::NotRequired
    };
    let fresh_nonce = || dpop_required.then(|| authority.dpop().current_nonce());
    let unauthorized = |dpop_scheme: bool, err: Option<&AuthorityError>| {
        let (code, description) = match err {
            Some(err) => (Some(err.code()), err.to_string()),
            None => (None, "an access token is required".to_owned()),
        };
        challenge(
            StatusCode::UNAUTHORIZED,
            dpop_scheme,
            code,
            &description,
            None,
            fresh_nonce(),
        )
    };

    let Some(authorization) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(unauthorized(true, None));
    };
    let (scheme, token) = authorization.split_once(' ').unwrap_or((authorization, ""));
    let dpop_scheme = scheme.eq_ignore_ascii_case("DPoP");
    if !dpop_scheme && !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(unauthorized(
            true,
            Some(&AuthorityError::InvalidToken(format!(
                "authorization scheme {scheme:?} is not DPoP or Bearer"
            ))),
        ));
    }
    let token = token.trim();
    let validated = match authority.validator().validate(token) {
        Ok(validated) => validated,
        Err(err) => {
            audit_denied(state, &request, "?", &err);
            return Err(unauthorized(dpop_scheme, Some(&err)));
        }
    };
    let subject = validated.claims.sub.clone();
    let binding = validated.claims.cnf.as_ref().map(|c| c.jkt.clone());
    let proofs: Vec<&HeaderValue> = request.headers().get_all("dpop").iter().collect();
    match (dpop_scheme, binding) {
        (true, Some(jkt)) => {
            let [proof] = proofs.as_slice() else {
                let err = AuthorityError::InvalidDpopProof(format!(
                    "expected exactly one DPoP header, got {}",
                    proofs.len()
                ));
                return Err(unauthorized(true, Some(&err)));
            };
            let proof = proof.to_str().unwrap_or_default().to_owned();
            let url = authority.request_url(request.headers(), request.uri());
            let method = request.method().as_str().to_owned();
            let checked = authority.dpop().verify(
                &proof,
                &DpopRequest {
                    method: &method,
                    url: &url,
                    access_token: Some(token),
                    expected_jkt: Some(&jkt),
                    nonce: nonce_mode,
                },
            );
            if let Err(err) = checked {
                audit_denied(state, &request, &subject, &err);
                return Err(unauthorized(true, Some(&err)));
            }
        }
        (true, None) => {
            let err = AuthorityError::InvalidToken(
                "token has no cnf.jkt binding; DPoP needs a DPoP-bound token".to_owned(),
            );
            audit_denied(state, &request, &subject, &err);
            return Err(unauthorized(true, Some(&err)));
        }
        (false, Some(_)) => {
            let err = AuthorityError::InvalidToken(
                "a DPoP-bound token must be presented with the DPoP scheme and a proof".to_owned(),
            );
            audit_denied(state, &request, &subject, &err);
            return Err(unauthorized(true, Some(&err)));
        }
        (false, None) if dpop_required || !authority.settings().allow_bearer_tokens => {
            let err = AuthorityError::InvalidToken(
                "this route requires a DPoP-bound token (cnf.jkt)".to_owned(),
            );
            // (Also reached for any route when bearer tokens are not allowed.)
            audit_denied(state, &request, &subject, &err);
            return Err(unauthorized(true, Some(&err)));
        }
        (false, None) => {}
    }
    if !validated.scopes.contains(scope) {
        let ctx = AuditContext::of(&request);
        audit(
            state,
            &ctx,
            &subject,
            "auth.scope_denied",
            request.uri().path(),
            json!({ "needed": scope.as_str(), "held": validated.scopes.to_string(),
                    "method": request.method().as_str() }),
        );
        return Err(challenge(
            StatusCode::FORBIDDEN,
            dpop_scheme,
            Some(ErrorCode::InsufficientScope),
            &format!("this route needs scope {scope}"),
            Some(scope),
            None,
        ));
    }
    request.extensions_mut().insert(Caller {
        subject,
        scopes: validated.scopes.clone(),
        kind: CallerKind::Client { dpop: dpop_scheme },
    });
    Ok(request)
}

fn audit_denied(state: &AppState, request: &Request, subject: &str, err: &AuthorityError) {
    let ctx = AuditContext::of(request);
    audit(
        state,
        &ctx,
        subject,
        "auth.token_rejected",
        request.uri().path(),
        json!({ "error": err.code().as_str(), "reason": err.to_string(),
                "method": request.method().as_str() }),
    );
}

/// The HSTS header value sent on every HTTPS response.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Middleware adding `Strict-Transport-Security` when serving HTTPS.
pub(crate) async fn hsts(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if state.authority().settings().https {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}
