//! Operations endpoints: `/healthz` (the process is alive), `/readyz` (every store open and
//! writable, and a configured HSM holding every key and signing), `/metrics` (Prometheus text).

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::AppState;
use crate::auth::RouteTable;

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .public(Method::GET, "/healthz", "liveness probe", healthz)
        .public(Method::GET, "/readyz", "readiness probe", readyz)
        .public(Method::GET, "/metrics", "Prometheus scrape", metrics)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let stores = state.stores().clone();
    let feeds = state.feeds().clone();
    let now = state.clock().now_unix();
    let stale_after = state.config().kits.stale_after_days.saturating_mul(86_400);
    let signing = state.signing().cloned();
    // Store checks write and fsync, the HSM check signs; keep them off the async workers.
    let checked = tokio::task::spawn_blocking(move || {
        let hsm = match &signing {
            None => Ok(json!({ "status": "not configured: community mode, signs nothing" })),
            Some(service) => match service.check_ready() {
                Ok(inventory) => Ok(json!({
                    "status": "ok",
                    "source": inventory.source,
                    "keys": inventory.keys.len(),
                })),
                Err(problem) => Err(format!("hsm: {problem}")),
            },
        };
        let writable = stores.check_writable();
        let instance = stores.catalog.instance_id();
        let schema = stores.catalog.schema_version();
        let starts = stores.catalog.audit_count("daemon.start");
        let generation = feeds.current();
        let channels = feeds
            .freshness(&stores.catalog, now, stale_after)
            .map_err(|e| e.to_string());
        let feeds = json!({
            "status": if generation.is_some() { "ok" } else { "empty: no kit imported yet" },
            "generation": generation.as_ref().map(|g| g.number()),
            "advisories_indexed": generation.as_ref().map(|g| g.indexed()),
            "stale": channels.as_ref().map(|c| c.iter().any(|c| c.stale)).unwrap_or(false),
            "channels": channels.unwrap_or_default(),
        });
        (writable, instance, schema, starts, feeds, hsm)
    })
    .await;
    match checked {
        Ok((Ok(()), Ok(instance_id), Ok(schema_version), Ok(starts), feeds, Ok(hsm))) => (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "version": stella_core::VERSION,
                "instance_id": instance_id,
                "stores": {
                    "blobs": "ok",
                    "catalog": { "status": "ok", "schema_version": schema_version },
                    "feeds": feeds,
                },
                "hsm": hsm,
                "starts": starts,
            })),
        ),
        Ok((writable, instance, schema, starts, _, hsm)) => {
            let problem = [writable.err(), instance.err(), schema.err(), starts.err()]
                .into_iter()
                .flatten()
                .map(|e| e.to_string())
                .chain(hsm.err())
                .collect::<Vec<_>>();
            tracing::warn!(?problem, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "problems": problem })),
            )
        }
        Err(join) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "problems": [join.to_string()] })),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let stores = state.stores().clone();
    let sizes = tokio::task::spawn_blocking(move || stores.sizes())
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().render(sizes),
    )
}
