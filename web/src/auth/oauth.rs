//! OAuth 2 endpoints of the local Authority: `POST /oauth/token` (client credentials with
//! `client_secret_basic` or `client_secret_post`, DPoP-bound when a `DPoP` proof is sent),
//! `POST /oauth/introspect` (RFC 7662), `/.well-known/openid-configuration` and `/jwks`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use stella_authority::{AuthorityError, DpopRequest, NonceMode, Scope, ScopeSet, SignatureAlg};
use stella_store::ClientRecord;

use super::{AuditContext, RouteTable, audit};
use crate::AppState;

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .public(
            Method::POST,
            "/oauth/token",
            "clients authenticate here with their own credentials",
            token,
        )
        .public(
            Method::POST,
            "/oauth/introspect",
            "clients authenticate here with their own credentials",
            introspect,
        )
        .public(
            Method::GET,
            "/.well-known/openid-configuration",
            "discovery metadata is public by design (RFC 8414)",
            discovery,
        )
        .public(
            Method::GET,
            "/jwks",
            "public keys that verify the appliance's tokens",
            jwks,
        )
}

/// An OAuth error response (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"stella\""),
        );
    }
    response
}

/// Most bytes of a token or introspection request body.
const MAX_FORM_BYTES: usize = 16 * 1024;

async fn read_form(
    request: Request,
) -> Result<(axum::http::request::Parts, HashMap<String, String>), Response> {
    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body is too large or unreadable",
            )
        })?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|err| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("the form does not parse: {err}"),
        )
    })?;
    let mut form = HashMap::new();
    for (key, value) in pairs {
        // RFC 6749 §3.2: parameters must not be repeated.
        if form.insert(key.clone(), value).is_some() {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("parameter {key:?} is repeated"),
            ));
        }
    }
    Ok((parts, form))
}

/// Client credentials from `Authorization: Basic` or the form, never both.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(String, String), AuthorityError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("Basic"))
        })
        .map(|(_, b64)| b64.trim().to_owned());
    let posted = form.get("client_secret");
    match (basic, posted) {
        (Some(_), Some(_)) => Err(AuthorityError::InvalidCredentials(
            "client authenticated with more than one method".to_owned(),
        )),
        (Some(b64), None) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    AuthorityError::InvalidCredentials("Basic credentials are not base64".into())
                })?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| {
                AuthorityError::InvalidCredentials("Basic credentials have no ':'".into())
            })?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded.
            let unescape = |s: &str| -> String {
                serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
                    .ok()
                    .and_then(|mut v| v.pop())
                    .map_or_else(|| s.to_owned(), |(_, v)| v)
            };
            Ok((unescape(id), unescape(secret)))
        }
        (None, Some(secret)) => {
            let id = form.get("client_id").ok_or_else(|| {
                AuthorityError::InvalidCredentials("client_secret without client_id".into())
            })?;
            Ok((id.clone(), secret.clone()))
        }
        (None, None) => Err(AuthorityError::InvalidCredentials(
            "no client authentication (use client_secret_basic or client_secret_post)".into(),
        )),
    }
}

/// Authenticates a `private_key_jwt` client.
fn authenticate_assertion(
    state: &AppState,
    parts: &axum::http::request::Parts,
    form: &HashMap<String, String>,
    assertion: &str,
) -> Result<ClientRecord, (String, AuthorityError)> {
    let fail = |id: &str, msg: String| (id.to_owned(), AuthorityError::InvalidCredentials(msg));
    if form.get("client_assertion_type").map(String::as_str)
        != Some(stella_authority::JWT_BEARER_ASSERTION)
    {
        return Err(fail("?", "client_assertion_type must be jwt-bearer".into()));
    }
    if form.contains_key("client_secret") || parts.headers.contains_key(header::AUTHORIZATION) {
        return Err(fail(
            "?",
            "client authenticated with more than one method".into(),
        ));
    }
    let id = stella_authority::assertion_issuer(assertion)
        .ok_or_else(|| fail("?", "client assertion has no iss".into()))?;
    if form.get("client_id").is_some_and(|given| *given != id) {
        return Err(fail(
            &id,
            "client_id differs from the assertion's iss".into(),
        ));
    }
    let client = state
        .stores()
        .catalog
        .client(&id)
        .ok()
        .flatten()
        .filter(|c| !c.disabled)
        .ok_or_else(|| fail(&id, format!("client {id:?} is unknown or disabled")))?;
    let jwks = client
        .jwks
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| fail(&id, format!("client {id:?} has no registered keys")))?;
    let keys = stella_authority::parse_client_jwks(&jwks).map_err(|e| (id.clone(), e))?;
    let authority = state.authority();
    let token_url = authority.request_url(&parts.headers, &parts.uri);
    let issuer = authority.issuer().issuer();
    let issuer_token_url = format!("{issuer}/oauth/token");
    let audiences = [token_url.as_str(), issuer, issuer_token_url.as_str()];
    stella_authority::verify_client_assertion(
        assertion,
        &keys,
        &id,
        &audiences,
        authority.now(),
        authority.assertion_replay(),
    )
    .map_err(|e| (id.clone(), e))?;
    Ok(client)
}

/// Authenticates the client (secret or `private_key_jwt`); argon2id runs off the async workers.
async fn authenticate(
    state: &AppState,
    parts: &axum::http::request::Parts,
    form: &HashMap<String, String>,
) -> Result<ClientRecord, (String, AuthorityError)> {
    if let Some(assertion) = form.get("client_assertion") {
        return authenticate_assertion(state, parts, form, assertion);
    }
    let headers = &parts.headers;
    let (id, secret) = client_credentials(headers, form).map_err(|e| ("?".to_owned(), e))?;
    let stores = state.stores().clone();
    let lookup_id = id.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let client = stores.catalog.client(&lookup_id).ok().flatten();
        match client {
            Some(client)
                if !client.disabled
                    && client
                        .secret_hash
                        .as_deref()
                        .is_some_and(|hash| stella_authority::verify_secret(&secret, hash)) =>
            {
                Some(client)
            }
            _ => None,
        }
    })
    .await
    .ok()
    .flatten();
    checked.ok_or_else(|| {
        (
            id.clone(),
            AuthorityError::InvalidCredentials(format!(
                "client {id:?} is unknown, disabled, or its secret is wrong"
            )),
        )
    })
}

async fn token(State(state): State<AppState>, request: Request) -> Response {
    let ctx = AuditContext::of(&request);
    let (parts, form) = match read_form(request).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let client = match authenticate(&state, &parts, &form).await {
        Ok(client) => client,
        Err((id, err)) => {
            audit(
                &state,
                &ctx,
                &id,
                "auth.token_denied",
                &id,
                json!({ "reason": err.to_string() }),
            );
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &err.to_string());
        }
    };
    let allowed = match ScopeSet::parse(&client.scopes) {
        Ok(allowed) => allowed,
        Err(err) => {
            tracing::error!(client = %client.client_id, %err, "stored client scopes do not parse");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "bad client record",
            );
        }
    };
    let requested = match form.get("scope").map(|s| ScopeSet::parse(s)).transpose() {
        Ok(requested) => requested,
        Err(err) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &err.to_string()),
    };
    let granted = match allowed.grant(requested.as_ref()) {
        Ok(granted) => granted,
        Err(err) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &err.to_string()),
    };

    let authority = state.authority();
    let proofs: Vec<&HeaderValue> = parts.headers.get_all("dpop").iter().collect();
    let jkt = match proofs.as_slice() {
        [] if !authority.settings().allow_bearer_tokens => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "a DPoP proof is required: this appliance issues only DPoP-bound tokens",
            );
        }
        [] => None,
        [proof] => {
            let url = authority.request_url(&parts.headers, &parts.uri);
            let proof = proof.to_str().unwrap_or_default();
            match authority.dpop().verify(
                proof,
                &DpopRequest {
                    method: "POST",
                    url: &url,
                    access_token: None,
                    expected_jkt: None,
                    nonce: NonceMode::NotRequired,
                },
            ) {
                Ok(proof) => Some(proof.jkt),
                Err(err) => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        err.code().as_str(),
                        &err.to_string(),
                    );
                }
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "more than one DPoP header",
            );
        }
    };
    let issued = match authority.issuer().issue(&client.client_id, &granted, jkt) {
        Ok(issued) => issued,
        Err(err) => {
            tracing::error!(%err, "token issuance failed");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "token signing failed",
            );
        }
    };
    audit(
        &state,
        &ctx,
        &client.client_id,
        "auth.token_issued",
        &client.client_id,
        json!({ "scope": issued.claims.scope, "jti": issued.claims.jti,
                "dpop": issued.claims.cnf.is_some(), "exp": issued.claims.exp }),
    );
    let mut response = Json(json!({
        "access_token": issued.access_token,
        "token_type": issued.token_type,
        "expires_in": issued.expires_in,
        "scope": issued.claims.scope,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn introspect(State(state): State<AppState>, request: Request) -> Response {
    let (parts, form) = match read_form(request).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    if let Err((_, err)) = authenticate(&state, &parts, &form).await {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &err.to_string());
    }
    let Some(token) = form.get("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "no token parameter",
        );
    };
    match state.authority().validator().validate(token) {
        Ok(valid) => {
            let claims = &valid.claims;
            Json(json!({
                "active": true,
                "scope": claims.scope,
                "client_id": claims.client_id,
                "sub": claims.sub,
                "iss": claims.iss,
                "aud": claims.aud,
                "exp": claims.exp,
                "iat": claims.iat,
                "jti": claims.jti,
                "token_type": if claims.cnf.is_some() { "DPoP" } else { "Bearer" },
                "cnf": claims.cnf.as_ref().map(|c| json!({ "jkt": c.jkt })),
            }))
            .into_response()
        }
        Err(_) => Json(json!({ "active": false })).into_response(),
    }
}

async fn discovery(State(state): State<AppState>) -> Response {
    let issuer = state.authority().issuer().issuer().to_owned();
    let algs: Vec<&str> = SignatureAlg::ALLOWED.iter().map(|a| a.as_str()).collect();
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth/token"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "jwks_uri": format!("{issuer}/jwks"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "dpop_signing_alg_values_supported": algs,
        "scopes_supported": scopes,
        "token_endpoint_auth_signing_alg_values_supported": algs,
    }))
    .into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    Json(state.authority().issuer().jwks()).into_response()
}
