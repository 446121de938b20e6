//! Offline kits over HTTP: `POST /api/kits` (multipart upload, field `kit`, or a raw body),
//! `GET /api/kits` (freshness per channel and the import audit trail) and
//! `GET /api/advisories?q=` (ranked search over the current generation).

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stella_authority::Scope;
use stella_feeds::{ImportError, ImportOptions, ImportOutcome};

use crate::auth::RouteTable;
use crate::{AppState, Caller, RequestId};

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .scoped(Method::GET, "/api/kits", Scope::ScannerRead, list_kits)
        .scoped(Method::POST, "/api/kits", Scope::KitImport, upload_kit)
        .scoped(
            Method::GET,
            "/api/advisories",
            Scope::ScannerRead,
            search_advisories,
        )
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn list_kits(State(state): State<AppState>) -> Response {
    let now = state.clock().now_unix();
    let stale_after = state.config().kits.stale_after_days.saturating_mul(86_400);
    let result = tokio::task::spawn_blocking(move || {
        let catalog = &state.stores().catalog;
        let freshness = state.feeds().freshness(catalog, now, stale_after)?;
        let imports = state.feeds().imports(catalog, 200)?;
        Ok::<_, stella_feeds::FeedError>(json!({ "channels": freshness, "imports": imports }))
    })
    .await;
    match result {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    #[serde(default)]
    dry_run: bool,
}

/// Reads the kit from a multipart field named `kit` (the console's form) or from the raw body.
async fn kit_bytes(request: Request) -> Result<(Bytes, String), Response> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        let bytes = Bytes::from_request(request, &())
            .await
            .map_err(IntoResponse::into_response)?;
        return Ok((bytes, "upload".to_owned()));
    }
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(IntoResponse::into_response)?;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("malformed upload: {e}")))?
    {
        if field.name() == Some("kit") {
            let name = field.file_name().unwrap_or("upload").to_owned();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| error(StatusCode::BAD_REQUEST, format!("malformed upload: {e}")))?;
            return Ok((bytes, name));
        }
    }
    Err(error(
        StatusCode::BAD_REQUEST,
        "the upload has no field named \"kit\"; send the kit file in a field named kit",
    ))
}

async fn upload_kit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Response {
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone());
    let (bytes, origin) = match kit_bytes(request).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    import_response(
        state,
        bytes,
        origin,
        &caller.subject,
        request_id,
        query.dry_run,
    )
    .await
}

/// Runs an import off the async workers and maps its outcome to a response: 200 with the
/// report when loaded, verified or already imported; 422 with the reason when rejected.
pub(crate) async fn import_response(
    state: AppState,
    bytes: Bytes,
    origin: String,
    actor: &str,
    request_id: Option<String>,
    dry_run: bool,
) -> Response {
    let actor = actor.to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let mut options =
            ImportOptions::from_config(&state.config().kits, state.stores().dir(), &actor, &origin)
                .map_err(ImportError::Feed)?;
        options.request_id = request_id;
        options.dry_run = dry_run;
        state.feeds().import(
            &state.stores().catalog,
            &bytes,
            &options,
            state.clock().as_ref(),
        )
    })
    .await;
    match result {
        Ok(Ok(outcome)) => {
            let status = match outcome {
                ImportOutcome::Loaded(_) => StatusCode::CREATED,
                _ => StatusCode::OK,
            };
            (status, Json(outcome)).into_response()
        }
        Ok(Err(ImportError::Rejected(rejection))) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "outcome": "rejected", "reason": rejection.reason, "error": rejection.message, "quarantined": rejection.quarantined })),
        )
            .into_response(),
        Ok(Err(ImportError::Feed(e))) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    20
}

async fn search_advisories(
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> Response {
    if query.q.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "give a query: /api/advisories?q=log4j",
        );
    }
    let Some(generation) = state.feeds().current() else {
        return error(
            StatusCode::NOT_FOUND,
            "no kit imported yet: import an offline kit to search advisories",
        );
    };
    let limit = query.limit.clamp(1, 200);
    match tokio::task::spawn_blocking(move || generation.search(&query.q, limit)).await {
        Ok(Ok(results)) => Json(results).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
