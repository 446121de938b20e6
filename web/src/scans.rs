//! Scans over HTTP: `POST /api/scans {imageRef|path, platform?}` starts a scan in the
//! background and answers `{scanId}`; `GET /api/scans/{id}` reports its status, summary and
//! artefacts; `GET /api/sboms/{imageDigest}?format=cdx-json|cdx-pb|spdx-json&view=inventory|usage`
//! returns a stored SBOM; `GET /api/diff?old=&new=` diffs two scanned images. The image digest is the image id (config digest), which is the same
//! whichever way the image arrived. SBOMs live in the blob store; the catalog records them.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stella_authority::Scope;
use stella_core::Digest;
use stella_scanner::fragment::FileKey;
use stella_scanner::{FragmentKey, LayerCache, Platform, RegistryAccess, ScanError, ScanOptions};
use stella_store::rusqlite::{OptionalExtension, params};
use stella_store::{BlobStore, StoreError};

use crate::AppState;
use crate::auth::RouteTable;

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .scoped(Method::POST, "/api/scans", Scope::ScannerScan, start_scan)
        .scoped(Method::GET, "/api/scans/{id}", Scope::ScannerRead, get_scan)
        .scoped(
            Method::GET,
            "/api/sboms/{digest}",
            Scope::ScannerRead,
            get_sbom,
        )
        .scoped(Method::GET, "/api/diff", Scope::ScannerRead, get_diff)
}

/// The redb layer and file caches of the data directory (`docs/cache-keys.md`).
pub struct StoreCache<'a>(pub &'a BlobStore);

fn cache_error(e: StoreError) -> ScanError {
    ScanError::Cache(e.to_string())
}

impl LayerCache for StoreCache<'_> {
    fn get(&self, key: &FragmentKey) -> Result<Option<Vec<u8>>, ScanError> {
        self.0
            .layer_fragment(key.as_string().as_bytes())
            .map_err(cache_error)
    }

    fn put(&self, key: &FragmentKey, bytes: &[u8]) -> Result<(), ScanError> {
        self.0
            .put_layer_fragment(key.as_string().as_bytes(), bytes)
            .map_err(cache_error)
    }

    fn get_file(&self, key: &FileKey) -> Result<Option<Vec<u8>>, ScanError> {
        self.0
            .file_result(key.as_string().as_bytes())
            .map_err(cache_error)
    }

    fn put_files(&self, entries: &[(FileKey, Vec<u8>)]) -> Result<(), ScanError> {
        let keys: Vec<String> = entries.iter().map(|(k, _)| k.as_string()).collect();
        self.0
            .put_file_results(
                keys.iter()
                    .zip(entries)
                    .map(|(k, (_, v))| (k.as_bytes(), v.as_slice())),
            )
            .map_err(cache_error)
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScanRequest {
    image_ref: Option<String>,
    path: Option<String>,
    platform: Option<String>,
    #[serde(default)]
    insecure_registries: Vec<String>,
}

static SCAN_COUNTER: AtomicU64 = AtomicU64::new(0);

fn new_scan_id() -> String {
    let n = SCAN_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("scan-{:016x}{n:04x}", RandomState::new().hash_one(n))
}

const FORMATS: [&str; 3] = ["cdx-json", "cdx-pb", "spdx-json"];

async fn start_scan(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let request: ScanRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "body: {e}; send {{\"imageRef\": \"registry/repo:tag\"}} or {{\"path\": \"/path/to/image\"}}"
                ),
            );
        }
    };
    let (image, _) = match (&request.image_ref, &request.path) {
        (Some(r), None) => (r.clone(), "imageRef"),
        (None, Some(p)) => (p.clone(), "path"),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give exactly one of imageRef and path",
            );
        }
    };
    let platform = match Platform::parse(request.platform.as_deref().unwrap_or("linux/amd64")) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let id = new_scan_id();
    let now = stella_core::rfc3339(state.clock().now_unix());
    let inserted = state.stores().catalog.connection().execute(
        "INSERT INTO scans (id, image_ref, status, started_at) VALUES (?1, ?2, 'running', ?3)",
        params![id, image, now],
    );
    if let Err(e) = inserted {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    let scan_id = id.clone();
    tokio::task::spawn_blocking(move || {
        let outcome = run_scan(&state, &image, platform, request.insecure_registries);
        let finished = stella_core::rfc3339(state.clock().now_unix());
        let conn = state.stores().catalog.connection();
        let written = match outcome {
            Ok((digest, summary)) => conn.execute(
                "UPDATE scans SET status = 'done', image_digest = ?2, summary = ?3, finished_at = ?4 WHERE id = ?1",
                params![scan_id, digest, summary, finished],
            ),
            Err(message) => conn.execute(
                "UPDATE scans SET status = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1",
                params![scan_id, message, finished],
            ),
        };
        if let Err(e) = written {
            tracing::error!(scan = %scan_id, error = %e, "cannot record the scan's end");
        }
    });
    (StatusCode::ACCEPTED, Json(json!({ "scanId": id }))).into_response()
}

/// Scans, stores the SBOMs in every format, records image, layers and artefacts.
fn run_scan(
    state: &AppState,
    image: &str,
    platform: Platform,
    insecure_registries: Vec<String>,
) -> Result<(String, String), String> {
    let source = stella_scanner::open_image(
        image,
        &RegistryAccess {
            insecure_registries,
            credentials: None,
        },
    )
    .map_err(|e| e.to_string())?;
    let options = ScanOptions {
        platform,
        parallel_layers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..ScanOptions::default()
    };
    let stores = state.stores();
    let result = stella_scanner::scan(
        source.as_ref(),
        &options,
        &StoreCache(&stores.blobs),
        &stella_scanner::NoProgress,
    )
    .map_err(|e| e.to_string())?;
    state
        .metrics()
        .record_scan(result.summary.layers_analysed, result.summary.layers_reused);
    let digest = result.image.image_id.to_string();
    let now = stella_core::rfc3339(state.clock().now_unix());
    let mut sboms = Vec::new();
    // Both views in every format, and the BOM-Index sidecar (docs/bom-index.md); the usage view
    // comes from the layer fragments, no layer is read again.
    let usage = stella_scanner::usage::analyse(&result);
    for format in FORMATS {
        for (kind, view) in [("sbom", None), ("usage-sbom", Some(&usage))] {
            let bytes = result
                .render_sbom(format, view)
                .map_err(|e| e.to_string())?;
            let blob = stores.blobs.put(&bytes).map_err(|e| e.to_string())?;
            sboms.push((kind, format, blob, bytes.len()));
        }
    }
    let index = stella_scanner::bomindex::BomIndex::build(&result, Some(&usage)).to_bytes();
    let blob = stores.blobs.put(&index).map_err(|e| e.to_string())?;
    sboms.push((
        "bom-index",
        stella_scanner::bomindex::FORMAT,
        blob,
        index.len(),
    ));
    // The per-layer fragments the image SBOMs point at (CycloneDX BOM-Link, SPDX
    // ExternalDocumentRef), so that every reference resolves inside the appliance.
    for index in 0..result.layers.len() {
        for (format, bytes) in [
            ("cdx-json", result.layer_to_cyclonedx_json(index)),
            ("spdx-json", result.layer_to_spdx_json(index)),
        ] {
            let bytes = bytes.map_err(|e| e.to_string())?;
            let blob = stores.blobs.put(&bytes).map_err(|e| e.to_string())?;
            sboms.push(("layer-sbom", format, blob, bytes.len()));
        }
    }
    let mut conn = stores.catalog.connection();
    let txn = conn.transaction().map_err(|e| e.to_string())?;
    let write = || -> Result<(), stella_store::rusqlite::Error> {
        txn.execute(
            "INSERT INTO images (digest, reference, config, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (digest) DO UPDATE SET reference = ?2",
            params![digest, image, result.image.platform, now],
        )?;
        txn.execute(
            "DELETE FROM image_layers WHERE image_digest = ?1",
            [&digest],
        )?;
        for layer in &result.layers {
            txn.execute(
                "INSERT INTO layers (digest, media_type, size) VALUES (?1, 'diff', 0)
                 ON CONFLICT (digest) DO NOTHING",
                [layer.diff_id.to_string()],
            )?;
            txn.execute(
                "INSERT INTO image_layers (image_digest, position, layer_digest) VALUES (?1, ?2, ?3)",
                params![digest, layer.index as i64, layer.diff_id.to_string()],
            )?;
        }
        txn.execute(
            "DELETE FROM artifacts WHERE image_digest = ?1 AND kind IN ('sbom', 'layer-sbom', 'usage-sbom', 'bom-index')",
            [&digest],
        )?;
        for (kind, format, blob, size) in &sboms {
            txn.execute(
                "INSERT INTO artifacts (kind, format, digest, size, image_digest, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![kind, format, blob.to_string(), *size as i64, digest, now],
            )?;
        }
        Ok(())
    };
    write().map_err(|e| e.to_string())?;
    txn.commit().map_err(|e| e.to_string())?;
    let summary = serde_json::to_string(&result.summary).map_err(|e| e.to_string())?;
    Ok((digest, summary))
}

async fn get_scan(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let row = {
        let conn = state.stores().catalog.connection();
        conn.query_row(
            "SELECT status, image_ref, image_digest, summary, error, started_at, finished_at FROM scans WHERE id = ?1",
            [&id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            },
        )
        .optional()
    };
    let (status, image_ref, digest, summary, failure, started, finished) = match row {
        Ok(Some(row)) => row,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no scan {id}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let artifacts: Vec<serde_json::Value> = digest
        .as_ref()
        .map(|d| {
            ["inventory", "usage"]
                .iter()
                .flat_map(|view| FORMATS.iter().map(move |f| (view, f)))
                .map(|(view, f)| json!({ "kind": "sbom", "view": view, "format": f, "url": format!("/api/sboms/{d}?format={f}&view={view}") }))
                .collect()
        })
        .unwrap_or_default();
    Json(json!({
        "scanId": id,
        "status": status,
        "imageRef": image_ref,
        "imageDigest": digest,
        "summary": summary.and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok()),
        "error": failure,
        "startedAt": started,
        "finishedAt": finished,
        "artifacts": artifacts,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct SbomQuery {
    #[serde(default = "default_format")]
    format: String,
    #[serde(default = "default_view")]
    view: String,
}

fn default_format() -> String {
    "cdx-json".to_owned()
}

fn default_view() -> String {
    "inventory".to_owned()
}

async fn get_sbom(
    State(state): State<AppState>,
    Path(digest): Path<String>,
    Query(query): Query<SbomQuery>,
) -> Response {
    if digest.parse::<Digest>().is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "the image digest is sha256:<64 hex>",
        );
    }
    if !FORMATS.contains(&query.format.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "format is one of cdx-json, cdx-pb, spdx-json",
        );
    }
    let kind = match query.view.as_str() {
        "inventory" => "sbom",
        "usage" => "usage-sbom",
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "view is inventory (everything installed) or usage (what the entrypoint runs)",
            );
        }
    };
    let blob: Result<Option<String>, _> = state
        .stores()
        .catalog
        .connection()
        .query_row(
            "SELECT digest FROM artifacts WHERE image_digest = ?1 AND kind = ?3 AND format = ?2",
            params![digest, query.format, kind],
            |r| r.get(0),
        )
        .optional();
    let blob = match blob {
        Ok(Some(blob)) => blob,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no SBOM for {digest}: scan the image first"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let Ok(blob) = blob.parse::<Digest>() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "catalog holds a malformed digest",
        );
    };
    match state.stores().blobs.get(&blob) {
        Ok(Some(bytes)) => {
            let content_type = match query.format.as_str() {
                "cdx-pb" => "application/x.vnd.cyclonedx+protobuf",
                "spdx-json" => "application/spdx+json",
                _ => "application/vnd.cyclonedx+json",
            };
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        Ok(None) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("blob {blob} is missing"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct DiffQuery {
    old: String,
    new: String,
}

/// The stored inventory CycloneDX SBOM of a scanned image.
fn stored_sbom(state: &AppState, digest: &str) -> Result<Vec<u8>, (StatusCode, String)> {
    if digest.parse::<Digest>().is_err() {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("{digest}: an image digest is sha256:<64 hex>"),
        ));
    }
    let blob: Result<Option<String>, _> = state
        .stores()
        .catalog
        .connection()
        .query_row(
            "SELECT digest FROM artifacts WHERE image_digest = ?1 AND kind = 'sbom' AND format = 'cdx-json'",
            [digest],
            |r| r.get(0),
        )
        .optional();
    let blob = match blob {
        Ok(Some(blob)) => blob,
        Ok(None) => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("no SBOM for {digest}: scan the image first"),
            ));
        }
        Err(e) => return Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    };
    let Ok(blob) = blob.parse::<Digest>() else {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "catalog holds a malformed digest".to_owned(),
        ));
    };
    match state.stores().blobs.get(&blob) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("blob {blob} is missing"),
        )),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// `GET /api/diff?old=<image digest>&new=<image digest>`: the diff of two scanned images from
/// their stored inventory SBOMs (no layer is read: both scans already shared their layers
/// through the cache).
async fn get_diff(State(state): State<AppState>, Query(query): Query<DiffQuery>) -> Response {
    let sides = stored_sbom(&state, &query.old)
        .and_then(|old| stored_sbom(&state, &query.new).map(|new| (old, new)));
    let (old, new) = match sides {
        Ok(sides) => sides,
        Err((status, message)) => return error(status, message),
    };
    let parse = |bytes: &[u8], which: &str| -> Result<stella_scanner::diff::DiffSide, String> {
        stella_scanner::diff::DiffSide::from_cyclonedx(bytes)
            .map_err(|e| format!("{which} SBOM: {e}"))
    };
    let (old, new) = match (parse(&old, "old"), parse(&new, "new")) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(message), _) | (_, Err(message)) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, message);
        }
    };
    Json(stella_scanner::diff::diff(&old, &new, None)).into_response()
}
