//! The local admin socket (`DATA_DIR/admin.sock`, mode 0600): how `stella import` and other
//! operator commands reach a running daemon that holds the data directory. Access to the socket
//! is access to the data directory, so it needs no token.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

use crate::AppState;

#[derive(Debug, Deserialize)]
struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    origin: String,
}

/// Routes of the admin socket.
pub fn admin_router(state: AppState) -> Router {
    let limit = usize::try_from(state.config().kits.max_kit_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/admin/import",
            post(import).layer(DefaultBodyLimit::max(limit)),
        )
        .with_state(state)
}

async fn import(
    State(state): State<AppState>,
    Query(query): Query<ImportQuery>,
    body: Bytes,
) -> Response {
    let origin = if query.origin.is_empty() {
        "cli".to_owned()
    } else {
        query.origin
    };
    crate::kits::import_response(state, body, origin, "cli", None, query.dry_run).await
}
