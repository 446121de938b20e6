//! Console accounts: login with backoff and lockout, sessions in HttpOnly SameSite=Strict cookies
//! (`Secure` and the `__Host-` prefix under HTTPS), a CSRF token on every form, forced password
//! change after the bootstrap password, logout and logout everywhere, and minimal admin forms to
//! create users and OAuth clients. Plain HTML; the full console is built on top later.

use std::collections::HashMap;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use stella_authority::{Scope, ScopeSet, ThrottleDecision};
use stella_store::{ClientRecord, SessionRecord, UserRecord};

use super::{AuditContext, Caller, CallerKind, RouteTable, audit};
use crate::AppState;

/// Session cookie name over plain HTTP (loopback only).
pub const SESSION_COOKIE: &str = "stella_session";
/// Session cookie name over HTTPS; the `__Host-` prefix pins it to this origin with `Secure`.
pub const SESSION_COOKIE_SECURE: &str = "__Host-stella_session";
/// Double-submit cookie protecting the login form itself.
const LOGIN_CSRF_COOKIE: &str = "stella_login_csrf";
/// Shortest acceptable new password.
const MIN_PASSWORD_LEN: usize = 12;
/// Most bytes of a console form.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// A console user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads scans, SBOMs and reports.
    Viewer,
    /// Viewer, plus runs scans and imports kits.
    Operator,
    /// Viewer, plus approves policies, waivers and VEX.
    Approver,
    /// Everything, including users, clients and the audit log.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Approver, Role::Admin];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }

    /// Parses a stored role name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The scopes the role grants in the console.
    pub fn scopes(self) -> ScopeSet {
        match self {
            Self::Viewer => ScopeSet::new([Scope::ScannerRead]),
            Self::Operator => {
                ScopeSet::new([Scope::ScannerRead, Scope::ScannerScan, Scope::KitImport])
            }
            Self::Approver => {
                ScopeSet::new([Scope::ScannerRead, Scope::PolicyWrite, Scope::VexWrite])
            }
            Self::Admin => ScopeSet::new(Scope::ALL),
        }
    }
}

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .public(Method::GET, "/login", "the login page", login_page)
        .public(
            Method::POST,
            "/login",
            "checks the password itself (with double-submit CSRF, backoff and lockout)",
            login,
        )
        .console(Method::GET, "/", None, home)
        .console(Method::GET, "/account/password", None, password_page)
        .console(Method::POST, "/account/password", None, change_password)
        .console(Method::POST, "/logout", None, logout)
        .console(Method::POST, "/logout/everywhere", None, logout_everywhere)
        .console(
            Method::GET,
            "/console/users",
            Some(Scope::Admin),
            users_page,
        )
        .console(
            Method::POST,
            "/console/users",
            Some(Scope::Admin),
            create_user,
        )
        .console(
            Method::GET,
            "/console/clients",
            Some(Scope::Admin),
            clients_page,
        )
        .console(
            Method::POST,
            "/console/clients",
            Some(Scope::Admin),
            create_client,
        )
}

/// The session of the current request, for handlers.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    id_hash: String,
    csrf: String,
    user: String,
    must_change: bool,
}

impl SessionInfo {
    /// The session's CSRF token, for forms a handler renders.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The signed-in user's name.
    pub(crate) fn user(&self) -> &str {
        &self.user
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Stella Ops</title></head>\n<body>\n<h1>{}</h1>\n{body}\n</body></html>\n",
        escape(title),
        escape(title)
    )
}

pub(crate) fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let mut response = (status, Html(page(title, body))).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    response
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn cookie_name(state: &AppState) -> &'static str {
    if state.authority().settings().https {
        SESSION_COOKIE_SECURE
    } else {
        SESSION_COOKIE
    }
}

fn set_cookie(
    state: &AppState,
    response: &mut Response,
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
) {
    let secure = if state.authority().settings().https {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Constant-time equality for secrets of public length.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn read_form(body: Body) -> Result<(Bytes, HashMap<String, String>), Response> {
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            html(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "<p>Form too large.</p>",
            )
        })?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
        html(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "<p>Form does not parse.</p>",
        )
    })?;
    Ok((bytes, pairs.into_iter().collect()))
}

/// The access check for [`super::Access::Session`] routes.
pub(crate) async fn check_session(
    state: &AppState,
    scope: Option<Scope>,
    request: Request,
    next: Next,
) -> Response {
    let ctx = AuditContext::of(&request);
    let now = state.authority().now();
    let found = cookie(request.headers(), cookie_name(state))
        .map(stella_authority::sha256_b64url)
        .and_then(|hash| state.stores().catalog.session(&hash, now).ok().flatten());
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    let Some((session, user)) = found else {
        return if safe {
            redirect("/login")
        } else {
            html(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "<p>Please <a href=\"/login\">sign in</a>.</p>",
            )
        };
    };
    let Some(role) = Role::parse(&user.role) else {
        tracing::error!(user = %user.name, role = %user.role, "stored role is unknown");
        return html(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "<p>Your account has no valid role.</p>",
        );
    };
    let path = request.uri().path().to_owned();
    if user.must_change && path != "/account/password" && path != "/logout" {
        return if safe {
            redirect("/account/password")
        } else {
            html(
                StatusCode::FORBIDDEN,
                "Password change required",
                "<p>Change your one-time password first.</p>",
            )
        };
    }
    let scopes = role.scopes();
    if let Some(scope) = scope
        && !scopes.contains(scope)
    {
        audit(
            state,
            &ctx,
            &user.name,
            "auth.scope_denied",
            &path,
            json!({ "needed": scope.as_str(), "role": role.as_str(), "method": request.method().as_str() }),
        );
        return html(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "<p>This page needs the {} permission.</p>",
                escape(scope.as_str())
            ),
        );
    }
    let (parts, body) = request.into_parts();
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let body = if safe {
        body
    } else {
        // Every state-changing console request carries the session's CSRF token: in the form
        // body, or for file uploads (multipart, possibly large) in the form action's query.
        let (body, presented) = if multipart {
            let query: HashMap<String, String> =
                serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).unwrap_or_default();
            (body, query.get("csrf").cloned().unwrap_or_default())
        } else {
            let (bytes, form) = match read_form(body).await {
                Ok(read) => read,
                Err(response) => return response,
            };
            (
                Body::from(bytes),
                form.get("csrf").cloned().unwrap_or_default(),
            )
        };
        if !same(&presented, &session.csrf) {
            audit(
                state,
                &ctx,
                &user.name,
                "auth.csrf_rejected",
                &path,
                json!({ "method": parts.method.as_str() }),
            );
            return html(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "<p>The form's CSRF token is missing or wrong. Reload the page and try again.</p>",
            );
        }
        body
    };
    let mut request = Request::from_parts(parts, body);
    request.extensions_mut().insert(Caller {
        subject: user.name.clone(),
        scopes,
        kind: CallerKind::User { role },
    });
    request.extensions_mut().insert(SessionInfo {
        id_hash: session.id_hash,
        csrf: session.csrf,
        user: user.name,
        must_change: user.must_change,
    });
    next.run(request).await
}

fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(token)
    )
}

fn login_form(csrf: &str, message: &str) -> String {
    format!(
        "{message}<form method=\"post\" action=\"/login\">{}\
         <label>User <input name=\"username\" autocomplete=\"username\" required></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Sign in</button></form>",
        csrf_field(csrf)
    )
}

async fn login_page(State(state): State<AppState>) -> Response {
    let Ok(token) = stella_authority::random_token() else {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "<p>No randomness.</p>",
        );
    };
    let mut response = html(StatusCode::OK, "Sign in", &login_form(&token, ""));
    set_cookie(
        &state,
        &mut response,
        LOGIN_CSRF_COOKIE,
        &token,
        "/login",
        3600,
    );
    response
}

async fn login(State(state): State<AppState>, request: Request) -> Response {
    let ctx = AuditContext::of(&request);
    let (parts, body) = request.into_parts();
    let (_, form) = match read_form(body).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let cookie_token = cookie(&parts.headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let presented = form.get("csrf").map(String::as_str).unwrap_or_default();
    if cookie_token.is_empty() || !same(cookie_token, presented) {
        audit(&state, &ctx, "?", "auth.csrf_rejected", "/login", json!({}));
        return html(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "<p>The login form's CSRF token is missing or wrong. <a href=\"/login\">Reload</a>.</p>",
        );
    }
    let username = form.get("username").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let authority = state.authority();
    let now = authority.now();
    let catalog_user = state.stores().catalog.user(&username).ok().flatten();
    let failed = |reason: &str, status: StatusCode, message: &str| {
        audit(
            &state,
            &ctx,
            &username,
            "auth.login_failed",
            &username,
            json!({ "reason": reason }),
        );
        html(
            status,
            "Sign in",
            &login_form(
                cookie_token,
                &format!("<p role=\"alert\">{}</p>", escape(message)),
            ),
        )
    };
    let Some(user) = catalog_user else {
        // Same answer as a wrong password, after the same work.
        let _ = tokio::task::spawn_blocking(move || {
            stella_authority::verify_secret(&password, &DUMMY_HASH)
        })
        .await;
        return failed(
            "unknown user",
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.",
        );
    };
    match authority
        .settings()
        .throttle
        .decide(user.failures, user.last_failure, now)
    {
        ThrottleDecision::Allow => {}
        ThrottleDecision::Backoff(wait) => {
            let mut response = failed(
                "backoff",
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many attempts; wait {wait} s."),
            );
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
        ThrottleDecision::Locked(wait) => {
            let mut response = failed(
                "locked",
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Account locked after repeated failures; try again in {wait} s."),
            );
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
    }
    let hash = user.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || stella_authority::verify_secret(&password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        let failures = state
            .stores()
            .catalog
            .record_login_failure(&user.name, now)
            .unwrap_or(0);
        let locked = failures >= authority.settings().throttle.lockout_after;
        return failed(
            if locked {
                "wrong password; account now locked"
            } else {
                "wrong password"
            },
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.",
        );
    }
    if let Err(err) = state.stores().catalog.reset_login_failures(&user.name) {
        tracing::error!(%err, "cannot reset login failures");
    }
    let (Ok(session_id), Ok(csrf)) = (
        stella_authority::random_token(),
        stella_authority::random_token(),
    ) else {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "<p>No randomness.</p>",
        );
    };
    let lifetime = authority.settings().session_lifetime_secs;
    let record = SessionRecord {
        id_hash: stella_authority::sha256_b64url(&session_id),
        user_name: user.name.clone(),
        csrf,
        created_at: now,
        expires_at: now + lifetime,
    };
    if let Err(err) = state.stores().catalog.insert_session(&record) {
        tracing::error!(%err, "cannot store session");
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "<p>Cannot start a session.</p>",
        );
    }
    audit(
        &state,
        &ctx,
        &user.name,
        "auth.login",
        &user.name,
        json!({ "role": user.role, "must_change": user.must_change }),
    );
    let mut response = redirect(if user.must_change {
        "/account/password"
    } else {
        "/"
    });
    set_cookie(
        &state,
        &mut response,
        cookie_name(&state),
        &session_id,
        "/",
        lifetime,
    );
    set_cookie(&state, &mut response, LOGIN_CSRF_COOKIE, "", "/login", 0);
    response
}

/// An argon2id hash of a random string, so that an unknown user costs as much as a known one.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    stella_authority::random_token()
        .and_then(|t| stella_authority::hash_secret(&t))
        .unwrap_or_default()
});

async fn home(
    Extension(session): Extension<SessionInfo>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let role = match caller.kind {
        CallerKind::User { role } => role.as_str(),
        CallerKind::Client { .. } => "client",
    };
    let csrf = csrf_field(&session.csrf);
    let admin_links = if caller.scopes.contains(Scope::Admin) {
        "<li><a href=\"/console/users\">Users</a></li><li><a href=\"/console/clients\">API clients</a></li>"
    } else {
        ""
    };
    html(
        StatusCode::OK,
        "Stella Ops",
        &format!(
            "<p>Signed in as <b>{}</b> ({role}).</p><ul><li><a href=\"/account/password\">Change password</a></li>{admin_links}</ul>\
             <form method=\"post\" action=\"/logout\">{csrf}<button>Sign out</button></form>\
             <form method=\"post\" action=\"/logout/everywhere\">{csrf}<button>Sign out everywhere</button></form>",
            escape(&session.user)
        ),
    )
}

fn password_form(session: &SessionInfo, message: &str) -> String {
    let must = if session.must_change {
        "<p>Your password is a one-time password: choose a new one to continue.</p>"
    } else {
        ""
    };
    format!(
        "{must}{message}<form method=\"post\" action=\"/account/password\">{}\
         <label>Current password <input name=\"current\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <label>New password <input name=\"new\" type=\"password\" autocomplete=\"new-password\" minlength=\"{MIN_PASSWORD_LEN}\" required></label>\
         <label>Repeat <input name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required></label>\
         <button type=\"submit\">Change password</button></form>",
        csrf_field(&session.csrf)
    )
}

async fn password_page(Extension(session): Extension<SessionInfo>) -> Response {
    html(
        StatusCode::OK,
        "Change password",
        &password_form(&session, ""),
    )
}

async fn change_password(
    State(state): State<AppState>,
    Extension(session): Extension<SessionInfo>,
    request: Request,
) -> Response {
    let ctx = AuditContext::of(&request);
    let (_, form) = match read_form(request.into_body()).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let (current, new, confirm) = (field("current"), field("new"), field("confirm"));
    let retry = |message: &str| {
        html(
            StatusCode::BAD_REQUEST,
            "Change password",
            &password_form(
                &session,
                &format!("<p role=\"alert\">{}</p>", escape(message)),
            ),
        )
    };
    if new != confirm {
        return retry("The new passwords differ.");
    }
    if new.chars().count() < MIN_PASSWORD_LEN {
        return retry(&format!(
            "The new password needs at least {MIN_PASSWORD_LEN} characters."
        ));
    }
    if new == current {
        return retry("The new password must differ from the current one.");
    }
    let Ok(Some(user)) = state.stores().catalog.user(&session.user) else {
        return retry("Your account is gone.");
    };
    let stored = user.password_hash.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        if !stella_authority::verify_secret(&current, &stored) {
            return Ok(None);
        }
        stella_authority::hash_secret(&new).map(Some)
    })
    .await;
    let hash = match outcome {
        Ok(Ok(Some(hash))) => hash,
        Ok(Ok(None)) => {
            audit(
                &state,
                &ctx,
                &user.name,
                "user.password_change_failed",
                &user.name,
                json!({ "reason": "wrong current password" }),
            );
            return retry("The current password is wrong.");
        }
        _ => {
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "<p>Cannot hash the password.</p>",
            );
        }
    };
    if let Err(err) = state
        .stores()
        .catalog
        .set_password(&user.name, &hash, false)
    {
        tracing::error!(%err, "cannot store password");
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "<p>Cannot store the password.</p>",
        );
    }
    // A new password ends every other session of the account.
    let ended = state
        .stores()
        .catalog
        .delete_other_sessions(&user.name, &session.id_hash)
        .unwrap_or(0);
    audit(
        &state,
        &ctx,
        &user.name,
        "user.password_change",
        &user.name,
        json!({ "other_sessions_ended": ended }),
    );
    redirect("/")
}

async fn logout(
    State(state): State<AppState>,
    Extension(session): Extension<SessionInfo>,
    request: Request,
) -> Response {
    let ctx = AuditContext::of(&request);
    if let Err(err) = state.stores().catalog.delete_session(&session.id_hash) {
        tracing::error!(%err, "cannot delete session");
    }
    audit(
        &state,
        &ctx,
        &session.user,
        "auth.logout",
        &session.user,
        json!({}),
    );
    let mut response = redirect("/login");
    set_cookie(&state, &mut response, cookie_name(&state), "", "/", 0);
    response
}

async fn logout_everywhere(
    State(state): State<AppState>,
    Extension(session): Extension<SessionInfo>,
    request: Request,
) -> Response {
    let ctx = AuditContext::of(&request);
    let ended = state
        .stores()
        .catalog
        .delete_user_sessions(&session.user)
        .unwrap_or(0);
    audit(
        &state,
        &ctx,
        &session.user,
        "auth.logout_everywhere",
        &session.user,
        json!({ "sessions": ended }),
    );
    let mut response = redirect("/login");
    set_cookie(&state, &mut response, cookie_name(&state), "", "/", 0);
    response
}

fn users_form(session: &SessionInfo, message: &str, users: &str) -> String {
    let roles: String = Role::ALL
        .iter()
        .map(|r| format!("<option>{}</option>", r.as_str()))
        .collect();
    format!(
        "{message}{users}<form method=\"post\" action=\"/console/users\">{}\
         <label>Name <input name=\"name\" required></label>\
         <label>Role <select name=\"role\">{roles}</select></label>\
         <button type=\"submit\">Create user</button></form>",
        csrf_field(&session.csrf)
    )
}

async fn users_page(Extension(session): Extension<SessionInfo>) -> Response {
    html(StatusCode::OK, "Users", &users_form(&session, "", ""))
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

async fn create_user(
    State(state): State<AppState>,
    Extension(session): Extension<SessionInfo>,
    request: Request,
) -> Response {
    let ctx = AuditContext::of(&request);
    let (_, form) = match read_form(request.into_body()).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let name = form.get("name").cloned().unwrap_or_default();
    let Some(role) = form.get("role").and_then(|r| Role::parse(r)) else {
        return html(
            StatusCode::BAD_REQUEST,
            "Users",
            &users_form(&session, "<p role=\"alert\">Unknown role.</p>", ""),
        );
    };
    if !valid_name(&name) {
        return html(
            StatusCode::BAD_REQUEST,
            "Users",
            &users_form(
                &session,
                "<p role=\"alert\">Names are 1-64 characters of [A-Za-z0-9._-].</p>",
                "",
            ),
        );
    }
    let Ok(password) = stella_authority::random_token() else {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "<p>No randomness.</p>",
        );
    };
    let hashed_password = password.clone();
    let Ok(Ok(hash)) =
        tokio::task::spawn_blocking(move || stella_authority::hash_secret(&hashed_password)).await
    else {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "<p>Cannot hash.</p>",
        );
    };
    let user = UserRecord {
        name: name.clone(),
        password_hash: hash,
        role: role.as_str().to_owned(),
        must_change: true,
        failures: 0,
        last_failure: 0,
        created_at: state.authority().now(),
    };
    match state.stores().catalog.insert_user(&user) {
        Ok(true) => {}
        Ok(false) => {
            return html(
                StatusCode::CONFLICT,
                "Users",
                &users_form(&session, "<p role=\"alert\">That name is taken.</p>", ""),
            );
        }
        Err(err) => {
            tracing::error!(%err, "cannot create user");
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "<p>Cannot store the user.</p>",
            );
        }
    }
    audit(
        &state,
        &ctx,
        &session.user,
        "user.create",
        &name,
        json!({ "role": role.as_str() }),
    );
    html(
        StatusCode::CREATED,
        "User created",
        &format!(
            "<p>User <b>{}</b> ({}) created. One-time password, shown once: <code id=\"one-time-password\">{}</code></p><p><a href=\"/console/users\">Back</a></p>",
            escape(&name),
            role.as_str(),
            escape(&password)
        ),
    )
}

fn clients_form(session: &SessionInfo, message: &str) -> String {
    let scopes: String = Scope::ALL
        .iter()
        .map(|s| {
            format!(
                "<label><input type=\"checkbox\" name=\"scope_{0}\" value=\"1\"> {0}</label>",
                s.as_str()
            )
        })
        .collect();
    format!(
        "{message}<form method=\"post\" action=\"/console/clients\">{}\
         <label>Client id <input name=\"client_id\" required></label>{scopes}\
         <label>or scopes (space-separated) <input name=\"scopes\"></label>\
         <button type=\"submit\">Register client</button></form>",
        csrf_field(&session.csrf)
    )
}

async fn clients_page(Extension(session): Extension<SessionInfo>) -> Response {
    html(StatusCode::OK, "API clients", &clients_form(&session, ""))
}

async fn create_client(
    State(state): State<AppState>,
    Extension(session): Extension<SessionInfo>,
    request: Request,
) -> Response {
    let ctx = AuditContext::of(&request);
    let (_, form) = match read_form(request.into_body()).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let bad = |message: &str| {
        html(
            StatusCode::BAD_REQUEST,
            "API clients",
            &clients_form(
                &session,
                &format!("<p role=\"alert\">{}</p>", escape(message)),
            ),
        )
    };
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    if !valid_name(&client_id) {
        return bad("Client ids are 1-64 characters of [A-Za-z0-9._-].");
    }
    let mut listed = form.get("scopes").cloned().unwrap_or_default();
    for scope in Scope::ALL {
        if form.contains_key(&format!("scope_{}", scope.as_str())) {
            listed.push(' ');
            listed.push_str(scope.as_str());
        }
    }
    let scopes = match ScopeSet::parse(&listed) {
        Ok(scopes) if !scopes.is_empty() => scopes,
        Ok(_) => return bad("Choose at least one scope."),
        Err(err) => return bad(&err.to_string()),
    };
    let Ok(secret) = stella_authority::random_token() else {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "<p>No randomness.</p>",
        );
    };
    let hashed = secret.clone();
    let Ok(Ok(hash)) =
        tokio::task::spawn_blocking(move || stella_authority::hash_secret(&hashed)).await
    else {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "<p>Cannot hash.</p>",
        );
    };
    let record = ClientRecord {
        client_id: client_id.clone(),
        secret_hash: Some(hash),
        jwks: None,
        scopes: scopes.to_string(),
        created_at: state.authority().now(),
        created_by: session.user.clone(),
        disabled: false,
    };
    match state.stores().catalog.insert_client(&record) {
        Ok(true) => {}
        Ok(false) => return bad("That client id is taken."),
        Err(err) => {
            tracing::error!(%err, "cannot create client");
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "<p>Cannot store the client.</p>",
            );
        }
    }
    audit(
        &state,
        &ctx,
        &session.user,
        "client.create",
        &client_id,
        json!({ "scopes": scopes.to_string() }),
    );
    html(
        StatusCode::CREATED,
        "Client registered",
        &format!(
            "<p>Client <b>{}</b> may get scopes <code>{}</code>. Its secret, shown once: <code id=\"client-secret\">{}</code></p>",
            escape(&client_id),
            escape(&scopes.to_string()),
            escape(&secret)
        ),
    )
}
