//! Admin API of the Authority: register and list OAuth clients, read the audit log. Every route
//! here needs the `admin` scope.

use axum::extract::{Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use stella_authority::{Scope, ScopeSet};
use stella_store::ClientRecord;

use super::{AuditContext, Caller, RouteTable, audit};
use crate::AppState;

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .scoped(Method::GET, "/api/audit", Scope::Admin, audit_log)
        .scoped(Method::GET, "/api/clients", Scope::Admin, list_clients)
        .scoped(Method::POST, "/api/clients", Scope::Admin, create_client)
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    limit: Option<u32>,
}

async fn audit_log(State(state): State<AppState>, Query(query): Query<AuditQuery>) -> Response {
    let limit = query.limit.unwrap_or(100).min(1000);
    let stores = state.stores().clone();
    match tokio::task::spawn_blocking(move || stores.catalog.recent_audit(limit)).await {
        Ok(Ok(events)) => Json(json!({
            "events": events.iter().map(|e| json!({
                "at": e.at, "actor": e.actor, "action": e.action, "target": e.target,
                "detail": serde_json::from_str::<serde_json::Value>(&e.detail)
                    .unwrap_or_else(|_| e.detail.clone().into()),
                "request_id": e.request_id,
            })).collect::<Vec<_>>()
        }))
        .into_response(),
        Ok(Err(err)) => internal(&err.to_string()),
        Err(err) => internal(&err.to_string()),
    }
}

fn internal(message: &str) -> Response {
    tracing::error!(message, "admin API failure");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": "server_error", "error_description": message })),
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": "invalid_request", "error_description": message })),
    )
        .into_response()
}

async fn list_clients(State(state): State<AppState>) -> Response {
    let stores = state.stores().clone();
    match tokio::task::spawn_blocking(move || stores.catalog.clients()).await {
        Ok(Ok(clients)) => Json(json!({
            "clients": clients.iter().map(|c| json!({
                "client_id": c.client_id, "scopes": c.scopes, "created_at": c.created_at,
                "created_by": c.created_by, "disabled": c.disabled,
            })).collect::<Vec<_>>()
        }))
        .into_response(),
        Ok(Err(err)) => internal(&err.to_string()),
        Err(err) => internal(&err.to_string()),
    }
}

/// `POST /api/clients` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClient {
    client_id: String,
    /// Space-separated scopes the client may be granted.
    scopes: String,
    /// Public JWK set for `private_key_jwt`; without it a client secret is generated.
    #[serde(default)]
    jwks: Option<serde_json::Value>,
}

fn valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

async fn create_client(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let ctx = AuditContext::of(&request);
    let body = match axum::body::to_bytes(request.into_body(), 16 * 1024).await {
        Ok(body) => body,
        Err(_) => return bad_request("body too large or unreadable".to_owned()),
    };
    let new: NewClient = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(err) => return bad_request(format!("body: {err}")),
    };
    if !valid_client_id(&new.client_id) {
        return bad_request(format!(
            "client_id {:?} must be 1-64 characters of [A-Za-z0-9._-]",
            new.client_id
        ));
    }
    let scopes = match ScopeSet::parse(&new.scopes) {
        Ok(scopes) if !scopes.is_empty() => scopes,
        Ok(_) => return bad_request("scopes must not be empty".to_owned()),
        Err(err) => return bad_request(err.to_string()),
    };
    if let Some(jwks) = &new.jwks
        && let Err(err) = stella_authority::parse_client_jwks(jwks)
    {
        return bad_request(err.to_string());
    }
    let secret = match (&new.jwks, stella_authority::random_token()) {
        (Some(_), _) => None,
        (None, Ok(secret)) => Some(secret),
        (None, Err(err)) => return internal(&err.to_string()),
    };
    let stores = state.stores().clone();
    let record_secret = secret.clone();
    let record = ClientRecord {
        client_id: new.client_id.clone(),
        secret_hash: None,
        jwks: new.jwks.as_ref().map(|j| j.to_string()),
        scopes: scopes.to_string(),
        created_at: state.authority().now(),
        created_by: caller.subject.clone(),
        disabled: false,
    };
    let inserted = tokio::task::spawn_blocking(move || {
        let hash = record_secret
            .map(|secret| stella_authority::hash_secret(&secret))
            .transpose()
            .map_err(|e| e.to_string())?;
        let record = ClientRecord {
            secret_hash: hash,
            ..record
        };
        stores
            .catalog
            .insert_client(&record)
            .map_err(|e| e.to_string())
    })
    .await;
    match inserted {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            return (
                StatusCode::CONFLICT,
                Json(json!({ "error": "invalid_request",
                             "error_description": format!("client {:?} exists", new.client_id) })),
            )
                .into_response();
        }
        Ok(Err(err)) => return internal(&err),
        Err(err) => return internal(&err.to_string()),
    }
    audit(
        &state,
        &ctx,
        &caller.subject,
        "client.create",
        &new.client_id,
        json!({ "scopes": scopes.to_string(), "private_key_jwt": new.jwks.is_some() }),
    );
    let body = match secret {
        Some(secret) => json!({
            "client_id": new.client_id,
            "client_secret": secret,
            "scopes": scopes.to_string(),
            "token_endpoint_auth_method": "client_secret_basic",
        }),
        None => json!({
            "client_id": new.client_id,
            "scopes": scopes.to_string(),
            "token_endpoint_auth_method": "private_key_jwt",
        }),
    };
    (StatusCode::CREATED, Json(body)).into_response()
}
