//! Console accounts: login with backoff and lockout, sessions in HttpOnly SameSite=Strict cookies
//! (`Secure` and the `__Host-` prefix under HTTPS), a CSRF token on every form, forced password
//! change after the bootstrap password, logout and logout everywhere, and the admin pages for
//! users (roles, one-time passwords) and OAuth clients. Pages are askama templates
//! (`login.html`, `password.html`, `users.html`, `clients.html`) rendered with the console's
//! security headers.

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use stella_authority::{Scope, ScopeSet, ThrottleDecision};
use stella_store::rusqlite;
use stella_store::{ClientRecord, SessionRecord, UserRecord};

use super::{AuditContext, Caller, CallerKind, RouteTable, audit};
use crate::AppState;
use crate::console::view::{Column, PER_PAGE, Pager, Params, Sort, When, error_page};
use crate::console::{Chrome, render};

/// Session cookie name over plain HTTP (loopback only).
pub const SESSION_COOKIE: &str = "stella_session";
/// Session cookie name over HTTPS; the `__Host-` prefix pins it to this origin with `Secure`.
pub const SESSION_COOKIE_SECURE: &str = "__Host-stella_session";
/// Double-submit cookie protecting the login form itself.
const LOGIN_CSRF_COOKIE: &str = "stella_login_csrf";
/// Shortest acceptable new password.
const MIN_PASSWORD_LEN: usize = 12;
/// Most bytes of a console form.
/// Most bytes of a console form: the policy editor posts whole policies (the API takes up to
/// 1 MiB), so forms may be as large; uploads are multipart and not read here.
const MAX_FORM_BYTES: usize = 1024 * 1024 + 16 * 1024;

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
            Method::POST,
            "/console/users/role",
            Some(Scope::Admin),
            change_role,
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

/// An error page for requests that have no page chrome (refused before a handler runs, or
/// before sign-in): what went wrong and what to do next.
fn refusal(
    state: &AppState,
    status: StatusCode,
    title: &str,
    problem: &str,
    next: &str,
    back: &str,
) -> Response {
    error_page(status, Chrome::anonymous(state, title), problem, next, back)
}

/// The error page of a server-side failure (randomness, hashing, the catalog).
fn failure(state: &AppState, problem: &str) -> Response {
    refusal(
        state,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Error",
        problem,
        "Check the daemon log, then try again.",
        "/",
    )
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

async fn read_form(
    state: &AppState,
    body: Body,
) -> Result<(Bytes, HashMap<String, String>), Response> {
    let bad = |problem: &str| {
        refusal(
            state,
            StatusCode::BAD_REQUEST,
            "Bad request",
            problem,
            "Go back, reload the form and send it again.",
            "/",
        )
    };
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| bad("The form is too large."))?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&bytes).map_err(|_| bad("The form does not parse."))?;
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
            refusal(
                state,
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "You are signed out (or your session expired).",
                "Sign in again, then repeat what you were doing.",
                "/login",
            )
        };
    };
    let Some(role) = Role::parse(&user.role) else {
        tracing::error!(user = %user.name, role = %user.role, "stored role is unknown");
        return refusal(
            state,
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Your account has no valid role.",
            "Ask an admin to give your account a role on the Users page.",
            "/login",
        );
    };
    let path = request.uri().path().to_owned();
    if user.must_change && path != "/account/password" && path != "/logout" {
        return if safe {
            redirect("/account/password")
        } else {
            refusal(
                state,
                StatusCode::FORBIDDEN,
                "Password change required",
                "Your password is a one-time password.",
                "Change it first; then everything else opens.",
                "/account/password",
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
        return refusal(
            state,
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "This page needs the {} permission, which the {} role does not grant.",
                scope.as_str(),
                role.as_str()
            ),
            "Ask an admin for a role that grants it.",
            "/",
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
            let (bytes, form) = match read_form(state, body).await {
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
            return refusal(
                state,
                StatusCode::FORBIDDEN,
                "Forbidden",
                "The form's CSRF token is missing or wrong.",
                "Reload the page and send the form again.",
                "/",
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

/// `GET /login` and the login form again after a failure.
#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    /// Anonymous chrome; its `csrf` is the login form's double-submit token.
    chrome: Chrome,
    /// Why the last attempt failed; empty on the first visit.
    message: String,
    /// The user name tried last, so that only the password has to be typed again.
    username: String,
}

fn login_page_with(
    state: &AppState,
    status: StatusCode,
    token: &str,
    message: &str,
    username: &str,
) -> Response {
    let mut chrome = Chrome::anonymous(state, "Sign in");
    chrome.csrf = token.to_owned();
    render(
        status,
        &LoginPage {
            chrome,
            message: message.to_owned(),
            username: username.to_owned(),
        },
    )
}

async fn login_page(State(state): State<AppState>) -> Response {
    let Ok(token) = stella_authority::random_token() else {
        return failure(
            &state,
            "The appliance has no randomness for the login form.",
        );
    };
    let mut response = login_page_with(&state, StatusCode::OK, &token, "", "");
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
    let (_, form) = match read_form(&state, body).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let cookie_token = cookie(&parts.headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let presented = form.get("csrf").map(String::as_str).unwrap_or_default();
    if cookie_token.is_empty() || !same(cookie_token, presented) {
        audit(&state, &ctx, "?", "auth.csrf_rejected", "/login", json!({}));
        return refusal(
            &state,
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The login form's CSRF token is missing or wrong.",
            "Reload the login page and sign in again (the browser must accept cookies).",
            "/login",
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
        login_page_with(&state, status, cookie_token, message, &username)
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
        return failure(&state, "The appliance has no randomness for a session.");
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
        return failure(&state, "The session cannot be stored.");
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

/// `GET /account/password` and the form again after a refusal.
#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: Chrome,
    /// The password is a one-time password: the change is forced.
    must_change: bool,
    /// Why the last attempt was refused; empty on the first visit.
    message: String,
    min_len: usize,
}

fn password_view(
    chrome: Chrome,
    session: &SessionInfo,
    status: StatusCode,
    message: &str,
) -> Response {
    render(
        status,
        &PasswordPage {
            chrome: chrome.page("Change password", ""),
            must_change: session.must_change,
            message: message.to_owned(),
            min_len: MIN_PASSWORD_LEN,
        },
    )
}

async fn password_page(chrome: Chrome, Extension(session): Extension<SessionInfo>) -> Response {
    password_view(chrome, &session, StatusCode::OK, "")
}

async fn change_password(
    State(state): State<AppState>,
    chrome: Chrome,
    Extension(session): Extension<SessionInfo>,
    request: Request,
) -> Response {
    let ctx = AuditContext::of(&request);
    let (_, form) = match read_form(&state, request.into_body()).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let (current, new, confirm) = (field("current"), field("new"), field("confirm"));
    let retry =
        |message: &str| password_view(chrome.clone(), &session, StatusCode::BAD_REQUEST, message);
    if new != confirm {
        return retry("The new passwords differ: type the same new password in both fields.");
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
        return retry("Your account no longer exists: sign out and ask an admin for a new one.");
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
            return retry("The current password is wrong: type the one you signed in with.");
        }
        _ => return failure(&state, "The new password cannot be hashed."),
    };
    if let Err(err) = state
        .stores()
        .catalog
        .set_password(&user.name, &hash, false)
    {
        tracing::error!(%err, "cannot store password");
        return failure(&state, "The new password cannot be stored.");
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

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A fresh random secret (`what`: a one-time password, a client secret) and its argon2id hash.
async fn new_secret(state: &AppState, what: &str) -> Result<(String, String), Response> {
    let secret = stella_authority::random_token().map_err(|_| {
        failure(
            state,
            &format!("The appliance has no randomness for a {what}."),
        )
    })?;
    let hashed = secret.clone();
    match tokio::task::spawn_blocking(move || stella_authority::hash_secret(&hashed)).await {
        Ok(Ok(hash)) => Ok((secret, hash)),
        _ => Err(failure(state, &format!("The {what} cannot be hashed."))),
    }
}

/// The error page of a list that cannot be read.
fn unreadable(chrome: Chrome, what: &str, problem: &dyn std::fmt::Display) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        chrome,
        format!("The {what} cannot be read: {problem}."),
        "Check the daemon log and the data directory's disk; then reload this page.",
        "/",
    )
}

/// A secret shown once, right after it was made (a one-time password or a client secret).
struct ShownOnce {
    /// The user name or client id.
    name: String,
    /// The role or the scopes.
    grants: String,
    secret: String,
}

const USERS_PATH: &str = "/console/users";
const USER_COLUMNS: [(&str, &str); 3] =
    [("name", "User"), ("role", "Role"), ("created", "Created")];

#[derive(Clone)]
struct UserRow {
    name: String,
    role: String,
    created: When,
    must_change: bool,
    locked: bool,
    /// The signed-in admin's own row.
    is_self: bool,
}

/// `GET /console/users`: users and roles, the role change per user, the create form.
#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    columns: Vec<Column>,
    rows: Vec<UserRow>,
    pager: Pager,
    roles: Vec<&'static str>,
    /// Outcome of the last form (error or confirmation); empty when none.
    message: String,
    /// Whether `message` reports a refusal.
    refused: bool,
    created: Option<ShownOnce>,
}

/// The user rows, sorted as asked; the whole table (a handful of accounts) is read once.
fn user_rows(state: &AppState, sort: &Sort, me: &str) -> Result<Vec<UserRow>, rusqlite::Error> {
    let now = state.clock().now_unix();
    let lockout_after = state.authority().settings().throttle.lockout_after;
    let conn = state.stores().catalog.connection();
    let mut stmt =
        conn.prepare("SELECT name, role, created_at, must_change, failures FROM users")?;
    let mut rows = stmt
        .query_map([], |row| {
            let name: String = row.get(0)?;
            Ok(UserRow {
                is_self: name == me,
                name,
                role: row.get(1)?,
                created: When::new(row.get::<_, i64>(2)?.max(0) as u64, now),
                must_change: row.get::<_, i64>(3)? != 0,
                locked: row.get::<_, i64>(4)? >= i64::from(lockout_after),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    sort.apply(&mut rows, |row, key| match key {
        "role" => (row.role.clone(), row.name.clone()),
        "created" => (row.created.iso.clone(), row.name.clone()),
        _ => (row.name.clone(), String::new()),
    });
    Ok(rows)
}

/// Renders the users page with `status`, an optional message and a secret shown once.
fn users_view(
    state: &AppState,
    chrome: Chrome,
    query: Option<&str>,
    status: StatusCode,
    message: (&str, bool),
    created: Option<ShownOnce>,
) -> Response {
    let chrome = chrome.page("Users", "users");
    let params = Params::parse(query);
    let sort = Sort::new(&params, &USER_COLUMNS, "name");
    let rows = match user_rows(state, &sort, &chrome.user) {
        Ok(rows) => rows,
        Err(err) => return unreadable(chrome, "users", &err),
    };
    let pager = Pager::new(&params, USERS_PATH, rows.len(), PER_PAGE);
    let rows = pager.slice(&rows);
    render(
        status,
        &UsersPage {
            columns: sort.columns(&params, USERS_PATH, &USER_COLUMNS),
            chrome,
            rows,
            pager,
            roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
            message: message.0.to_owned(),
            refused: message.1,
            created,
        },
    )
}

async fn users_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    users_view(
        &state,
        chrome,
        query.as_deref(),
        StatusCode::OK,
        ("", false),
        None,
    )
}

/// The users page again with a refusal.
fn refuse_users(state: &AppState, chrome: &Chrome, status: StatusCode, message: &str) -> Response {
    users_view(state, chrome.clone(), None, status, (message, true), None)
}

/// Reads a users-page form (`name`, `role`); an unknown role is refused with the page.
async fn read_user_form(
    state: &AppState,
    chrome: &Chrome,
    request: Request,
) -> Result<(AuditContext, String, Role), Response> {
    let ctx = AuditContext::of(&request);
    let (_, form) = read_form(state, request.into_body()).await?;
    let name = form.get("name").cloned().unwrap_or_default();
    let role = form
        .get("role")
        .and_then(|r| Role::parse(r))
        .ok_or_else(|| {
            refuse_users(
                state,
                chrome,
                StatusCode::BAD_REQUEST,
                "Unknown role: choose one from the list.",
            )
        })?;
    Ok((ctx, name, role))
}

async fn create_user(State(state): State<AppState>, chrome: Chrome, request: Request) -> Response {
    let (ctx, name, role) = match read_user_form(&state, &chrome, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let refuse = |status: StatusCode, message: &str| refuse_users(&state, &chrome, status, message);
    if !valid_name(&name) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "User names are 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'.",
        );
    }
    let (password, hash) = match new_secret(&state, "one-time password").await {
        Ok(made) => made,
        Err(response) => return response,
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
            return refuse(
                StatusCode::CONFLICT,
                "That name is taken: choose another one.",
            );
        }
        Err(err) => {
            tracing::error!(%err, "cannot create user");
            return failure(&state, "The user cannot be stored.");
        }
    }
    audit(
        &state,
        &ctx,
        &chrome.user,
        "user.create",
        &name,
        json!({ "role": role.as_str() }),
    );
    users_view(
        &state,
        chrome,
        None,
        StatusCode::CREATED,
        ("", false),
        Some(ShownOnce {
            name,
            grants: role.as_str().to_owned(),
            secret: password,
        }),
    )
}

/// `POST /console/users/role` (`name`, `role`): changes a user's role. The last admin keeps the
/// admin role, so that the appliance always has someone who can manage it.
async fn change_role(State(state): State<AppState>, chrome: Chrome, request: Request) -> Response {
    let (ctx, name, role) = match read_user_form(&state, &chrome, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let refuse = |status: StatusCode, message: &str| refuse_users(&state, &chrome, status, message);
    let user = match state.stores().catalog.user(&name) {
        Ok(Some(user)) => user,
        Ok(None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                &format!("There is no user {name:?}: reload the list."),
            );
        }
        Err(err) => {
            tracing::error!(%err, "cannot read user");
            return failure(&state, "The user cannot be read.");
        }
    };
    if user.role == role.as_str() {
        return users_view(
            &state,
            chrome,
            None,
            StatusCode::OK,
            (
                &format!("{name} already has the role {}.", role.as_str()),
                false,
            ),
            None,
        );
    }
    let changed = {
        let conn = state.stores().catalog.connection();
        (|| -> Result<bool, rusqlite::Error> {
            let admins: i64 = conn.query_row(
                "SELECT count(*) FROM users WHERE role = 'admin'",
                [],
                |row| row.get(0),
            )?;
            if user.role == Role::Admin.as_str() && admins <= 1 {
                return Ok(false);
            }
            conn.execute(
                "UPDATE users SET role = ?2 WHERE name = ?1",
                rusqlite::params![name, role.as_str()],
            )?;
            Ok(true)
        })()
    };
    match changed {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                StatusCode::CONFLICT,
                &format!(
                    "{name} is the last admin: make another user admin first, so that someone can still manage the appliance."
                ),
            );
        }
        Err(err) => {
            tracing::error!(%err, "cannot change role");
            return failure(&state, "The role cannot be stored.");
        }
    }
    audit(
        &state,
        &ctx,
        &chrome.user,
        "user.role_change",
        &name,
        json!({ "from": user.role, "to": role.as_str() }),
    );
    users_view(
        &state,
        chrome,
        None,
        StatusCode::OK,
        (
            &format!(
                "{name} now has the role {} (was {}); it applies to their next request.",
                role.as_str(),
                user.role
            ),
            false,
        ),
        None,
    )
}

const CLIENTS_PATH: &str = "/console/clients";
const CLIENT_COLUMNS: [(&str, &str); 3] = [
    ("client_id", "Client id"),
    ("created", "Created"),
    ("created_by", "Created by"),
];

#[derive(Clone)]
struct ClientRow {
    client_id: String,
    scopes: String,
    /// `client secret` or `private_key_jwt`.
    auth: &'static str,
    created: When,
    created_by: String,
    disabled: bool,
}

/// `GET /console/clients`: API clients and the form to register one.
#[derive(Template)]
#[template(path = "clients.html")]
struct ClientsPage {
    chrome: Chrome,
    columns: Vec<Column>,
    rows: Vec<ClientRow>,
    pager: Pager,
    scopes: Vec<&'static str>,
    /// Why the last form was refused; empty when none.
    message: String,
    created: Option<ShownOnce>,
}

fn clients_view(
    state: &AppState,
    chrome: Chrome,
    query: Option<&str>,
    status: StatusCode,
    message: &str,
    created: Option<ShownOnce>,
) -> Response {
    let chrome = chrome.page("API clients", "clients");
    let params = Params::parse(query);
    let sort = Sort::new(&params, &CLIENT_COLUMNS, "client_id");
    let now = state.clock().now_unix();
    let clients = match state.stores().catalog.clients() {
        Ok(clients) => clients,
        Err(err) => return unreadable(chrome, "API clients", &err),
    };
    let mut rows: Vec<ClientRow> = clients
        .into_iter()
        .map(|c| ClientRow {
            auth: if c.jwks.is_some() {
                "private_key_jwt"
            } else {
                "client secret"
            },
            client_id: c.client_id,
            scopes: c.scopes,
            created: When::new(c.created_at, now),
            created_by: c.created_by,
            disabled: c.disabled,
        })
        .collect();
    sort.apply(&mut rows, |row, key| match key {
        "created" => (row.created.iso.clone(), row.client_id.clone()),
        "created_by" => (row.created_by.clone(), row.client_id.clone()),
        _ => (row.client_id.clone(), String::new()),
    });
    let pager = Pager::new(&params, CLIENTS_PATH, rows.len(), PER_PAGE);
    let rows = pager.slice(&rows);
    render(
        status,
        &ClientsPage {
            columns: sort.columns(&params, CLIENTS_PATH, &CLIENT_COLUMNS),
            chrome,
            rows,
            pager,
            scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
            message: message.to_owned(),
            created,
        },
    )
}

async fn clients_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    clients_view(&state, chrome, query.as_deref(), StatusCode::OK, "", None)
}

async fn create_client(
    State(state): State<AppState>,
    chrome: Chrome,
    request: Request,
) -> Response {
    let ctx = AuditContext::of(&request);
    let (_, form) = match read_form(&state, request.into_body()).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let bad = |message: &str| {
        clients_view(
            &state,
            chrome.clone(),
            None,
            StatusCode::BAD_REQUEST,
            message,
            None,
        )
    };
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    if !valid_name(&client_id) {
        return bad("Client ids are 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'.");
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
        Err(err) => return bad(&format!("{err}: choose scopes from the list.")),
    };
    let (secret, hash) = match new_secret(&state, "client secret").await {
        Ok(made) => made,
        Err(response) => return response,
    };
    let record = ClientRecord {
        client_id: client_id.clone(),
        secret_hash: Some(hash),
        jwks: None,
        scopes: scopes.to_string(),
        created_at: state.authority().now(),
        created_by: chrome.user.clone(),
        disabled: false,
    };
    match state.stores().catalog.insert_client(&record) {
        Ok(true) => {}
        Ok(false) => return bad("That client id is taken: choose another one."),
        Err(err) => {
            tracing::error!(%err, "cannot create client");
            return failure(&state, "The client cannot be stored.");
        }
    }
    audit(
        &state,
        &ctx,
        &chrome.user,
        "client.create",
        &client_id,
        json!({ "scopes": scopes.to_string() }),
    );
    clients_view(
        &state,
        chrome,
        None,
        StatusCode::CREATED,
        "",
        Some(ShownOnce {
            name: client_id,
            grants: scopes.to_string(),
            secret,
        }),
    )
}

#[cfg(test)]
mod page_tests {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use stella_store::{ClientRecord, UserRecord};

    use crate::console::testing::{ConsoleEnv, Page, T0};

    /// A user with a real password hash, for sign-in tests.
    fn user_with_password(env: &ConsoleEnv, name: &str, password: &str, role: &str) {
        env.state
            .stores()
            .catalog
            .insert_user(&UserRecord {
                name: name.into(),
                password_hash: stella_authority::hash_secret(password).unwrap(),
                role: role.into(),
                must_change: false,
                failures: 0,
                last_failure: 0,
                created_at: T0,
            })
            .unwrap();
    }

    fn set_cookie(page: &Page, name: &str) -> String {
        page.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie"))
    }

    async fn post_login(env: &ConsoleEnv, login_cookie: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).unwrap();
        env.post_encoded(login_cookie, "/login", body).await
    }

    #[tokio::test]
    async fn login_flow_uses_the_template_and_lands_on_the_dashboard() {
        let env = ConsoleEnv::new();
        user_with_password(&env, "alice", "right-password-1", "operator");
        let page = env.get("", "/login").await;
        assert_eq!(page.status, StatusCode::OK);
        page.assert_secure();
        let login_cookie = set_cookie(&page, "stella_login_csrf");
        let token = login_cookie.split_once('=').unwrap().1.to_owned();
        // The double-submit token is the form's hidden csrf field.
        assert!(
            page.body
                .contains(&format!("name=\"csrf\" value=\"{token}\"")),
            "{}",
            page.body
        );
        assert!(page.body.contains("<title>Sign in · Stella Ops</title>"));

        // A wrong password shows the form again with the message; the name typed is escaped.
        let hostile = "<script>alert(1)</script>";
        let wrong = post_login(
            &env,
            &login_cookie,
            &[("csrf", &token), ("username", hostile), ("password", "x")],
        )
        .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        wrong.assert_secure();
        assert!(wrong.body.contains("Wrong user name or password."));
        assert!(
            wrong
                .body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
        );
        assert!(!wrong.body.contains("<script>alert"));

        // Without the double-submit cookie: refused with an error page.
        let forged = post_login(
            &env,
            "",
            &[
                ("csrf", &token),
                ("username", "alice"),
                ("password", "right-password-1"),
            ],
        )
        .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        forged.assert_secure();
        assert!(forged.body.contains("CSRF token is missing or wrong"));

        let ok = post_login(
            &env,
            &login_cookie,
            &[
                ("csrf", &token),
                ("username", "alice"),
                ("password", "right-password-1"),
            ],
        )
        .await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
        assert_eq!(ok.headers[header::LOCATION], "/");
        let session = set_cookie(&ok, crate::auth::SESSION_COOKIE);
        let home = env.get(&session, "/").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        home.assert_secure();
        assert!(home.body.contains("<h1>Dashboard</h1>"), "{}", home.body);
    }

    #[tokio::test]
    async fn password_page_renders_and_refuses_with_messages() {
        let env = ConsoleEnv::new();
        let cookie = env.sign_in("carol", "viewer");
        let page = env.get(&cookie, "/account/password").await;
        assert_eq!(page.status, StatusCode::OK);
        page.assert_secure();
        for field in ["name=\"current\"", "name=\"new\"", "name=\"confirm\""] {
            assert!(page.body.contains(field), "{field}: {}", page.body);
        }
        let refused = env
            .post(
                &cookie,
                "/account/password",
                &[("current", "a"), ("new", "short"), ("confirm", "short")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        refused.assert_secure();
        assert!(
            refused.body.contains("at least 12 characters"),
            "{}",
            refused.body
        );
    }

    #[tokio::test]
    async fn users_page_lists_escapes_creates_and_changes_roles_audited() {
        let env = ConsoleEnv::new();
        let admin = env.sign_in("root", "admin");
        env.sign_in("<script>alert(1)</script>", "viewer");
        let page = env.get(&admin, "/console/users").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
        );
        assert!(!page.body.contains("<script>alert"));
        assert!(page.body.contains("Users 1–2 of 2"), "{}", page.body);

        let created = env
            .post(
                &admin,
                "/console/users",
                &[("name", "bob"), ("role", "operator")],
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.assert_secure();
        assert!(created.body.contains("<code id=\"one-time-password\">"));
        let taken = env
            .post(
                &admin,
                "/console/users",
                &[("name", "bob"), ("role", "viewer")],
            )
            .await;
        assert_eq!(taken.status, StatusCode::CONFLICT);
        let bad = env
            .post(
                &admin,
                "/console/users",
                &[("name", "<b>"), ("role", "viewer")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        let changed = env
            .post(
                &admin,
                "/console/users/role",
                &[("name", "bob"), ("role", "approver")],
            )
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
        assert!(changed.body.contains("bob now has the role approver"));
        // Each row's role select starts at the user's role.
        assert!(
            changed.body.contains("<option selected>approver</option>"),
            "{}",
            changed.body
        );
        let catalog = &env.state.stores().catalog;
        assert_eq!(catalog.user("bob").unwrap().unwrap().role, "approver");
        assert_eq!(catalog.audit_count("user.role_change").unwrap(), 1);
        let detail: String = catalog
            .connection()
            .query_row(
                "SELECT actor || ' ' || target || ' ' || detail FROM audit_log WHERE action = 'user.role_change'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            detail.starts_with("root bob ")
                && detail.contains("\"from\":\"operator\"")
                && detail.contains("\"to\":\"approver\""),
            "{detail}"
        );

        // The last admin keeps the admin role.
        let last = env
            .post(
                &admin,
                "/console/users/role",
                &[("name", "root"), ("role", "viewer")],
            )
            .await;
        assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.body);
        assert!(last.body.contains("last admin"));
        assert_eq!(catalog.user("root").unwrap().unwrap().role, "admin");
        let unknown = env
            .post(
                &admin,
                "/console/users/role",
                &[("name", "nobody"), ("role", "viewer")],
            )
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(catalog.audit_count("user.role_change").unwrap(), 1);
    }

    #[tokio::test]
    async fn users_and_clients_sort_and_page() {
        let env = ConsoleEnv::new();
        let admin = env.sign_in("root", "admin");
        let catalog = &env.state.stores().catalog;
        for n in 0..55u64 {
            catalog
                .insert_user(&UserRecord {
                    name: format!("u{n:02}"),
                    password_hash: "not a hash: these users never sign in".into(),
                    role: if n == 7 { "approver" } else { "viewer" }.into(),
                    must_change: false,
                    failures: 0,
                    last_failure: 0,
                    created_at: T0 - 1000 + n,
                })
                .unwrap();
            catalog
                .insert_client(&ClientRecord {
                    client_id: format!("c{n:02}"),
                    secret_hash: None,
                    jwks: Some("{}".into()),
                    scopes: "scanner.read".into(),
                    created_at: T0 - 1000 + n,
                    created_by: if n == 3 { "zed" } else { "root" }.into(),
                    disabled: false,
                })
                .unwrap();
        }
        let users = |body: &str| {
            crate::console::testing::cells(body, "<tbody>", "<tr>\n      <td>", "<")
                .into_iter()
                .map(|name| name.trim().to_owned())
                .collect::<Vec<_>>()
        };
        let page = env.get(&admin, "/console/users").await;
        assert!(page.body.contains("Users 1–50 of 56"), "{}", page.body);
        assert_eq!(users(&page.body)[..2], ["root", "u00"]);
        let page = env.get(&admin, "/console/users?page=2").await;
        assert_eq!(
            users(&page.body),
            ["u49", "u50", "u51", "u52", "u53", "u54"]
        );
        let page = env.get(&admin, "/console/users?sort=-name").await;
        assert_eq!(users(&page.body)[0], "u54");
        // By role: admin, approver, then the viewers.
        let page = env.get(&admin, "/console/users?sort=role").await;
        assert_eq!(users(&page.body)[..3], ["root", "u07", "u00"]);
        let page = env.get(&admin, "/console/users?sort=-created").await;
        assert_eq!(
            users(&page.body)[0],
            "root",
            "signed in last, so created last"
        );

        let clients = |body: &str| {
            crate::console::testing::cells(body, "<tbody>", "<tr><td class=\"mono\">", "<")
        };
        let page = env.get(&admin, "/console/clients").await;
        assert!(
            page.body.contains("API clients 1–50 of 55"),
            "{}",
            page.body
        );
        assert_eq!(clients(&page.body)[0], "c00");
        let page = env.get(&admin, "/console/clients?page=2").await;
        assert_eq!(clients(&page.body), ["c50", "c51", "c52", "c53", "c54"]);
        let page = env.get(&admin, "/console/clients?sort=-created").await;
        assert_eq!(clients(&page.body)[0], "c54");
        let page = env.get(&admin, "/console/clients?sort=-created_by").await;
        assert_eq!(clients(&page.body)[0], "c03");
    }

    #[tokio::test]
    async fn clients_page_lists_escapes_and_creates() {
        let env = ConsoleEnv::new();
        let admin = env.sign_in("root", "admin");
        env.state
            .stores()
            .catalog
            .insert_client(&ClientRecord {
                client_id: "<script>alert(2)</script>".into(),
                secret_hash: None,
                jwks: Some("{}".into()),
                scopes: "scanner.read".into(),
                created_at: T0,
                created_by: "root".into(),
                disabled: false,
            })
            .unwrap();
        let page = env.get(&admin, "/console/clients").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        assert!(
            page.body
                .contains("&#60;script&#62;alert(2)&#60;/script&#62;")
        );
        assert!(!page.body.contains("<script>alert"));
        assert!(page.body.contains("private_key_jwt"));

        let created = env
            .post(
                &admin,
                "/console/clients",
                &[("client_id", "ci-bot"), ("scope_scanner.read", "1")],
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        assert!(created.body.contains("<code id=\"client-secret\">"));
        assert!(created.body.contains("ci-bot"));
        let none = env
            .post(&admin, "/console/clients", &[("client_id", "empty")])
            .await;
        assert_eq!(none.status, StatusCode::BAD_REQUEST);
        assert!(none.body.contains("Choose at least one scope."));
    }

    #[tokio::test]
    async fn viewer_cannot_post_admin_forms() {
        let env = ConsoleEnv::new();
        env.sign_in("root", "admin");
        let viewer = env.sign_in("val", "viewer");
        for (path, fields) in [
            ("/console/users", vec![("name", "eve"), ("role", "admin")]),
            (
                "/console/users/role",
                vec![("name", "val"), ("role", "admin")],
            ),
            (
                "/console/clients",
                vec![("client_id", "x"), ("scopes", "admin")],
            ),
        ] {
            let page = env.post(&viewer, path, &fields).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
            page.assert_secure();
            assert!(
                page.body.contains("needs the admin permission"),
                "{}",
                page.body
            );
        }
        let catalog = &env.state.stores().catalog;
        assert_eq!(catalog.user("val").unwrap().unwrap().role, "viewer");
        assert!(catalog.user("eve").unwrap().is_none());
        assert_eq!(catalog.audit_count("auth.scope_denied").unwrap(), 3);
        // And a form without the CSRF token is refused even for an admin.
        let admin = env.sign_in("root", "admin");
        let forged = env
            .send(
                Request::builder()
                    .method(Method::POST)
                    .uri("/console/users")
                    .header(header::COOKIE, &admin)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from("name=eve&role=admin"))
                    .unwrap(),
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        forged.assert_secure();
    }
}
