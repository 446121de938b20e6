//! Scans over HTTP: `POST /api/scans {imageRef|path, platform?}` starts a scan in the
//! background and answers `{scanId}`; `GET /api/scans/{id}` reports its status, summary and
//! artefacts; `GET /api/sboms/{imageDigest}?format=cdx-json|cdx-pb|spdx-json&view=inventory|usage`
//! returns a stored SBOM; `GET /api/diff?old=&new=` diffs two scanned images. The image digest is the image id (config digest), which is the same
//! whichever way the image arrived. SBOMs live in the blob store; the catalog records them.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use stella_authority::Scope;
use stella_core::Digest;
use stella_scanner::fragment::FileKey;
use stella_scanner::{
    FragmentKey, ImageReference, ImageSource, LayerCache, Platform, Progress, ProgressEvent,
    RegistryAccess, RegistrySource, ScanError, ScanOptions, Transport,
};
use stella_store::rusqlite::{OptionalExtension, params};
use stella_store::{BlobStore, StoreError};

use crate::auth::{AuditContext, RouteTable, audit};
use crate::{AppState, Caller};

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .scoped(
            Method::POST,
            "/api/scans",
            Scope::ScannerScan,
            start_scan_api,
        )
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
struct ApiScanRequest {
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

/// The SBOM formats every scan stores, in both views.
pub(crate) const FORMATS: [&str; 3] = ["cdx-json", "cdx-pb", "spdx-json"];

/// Where a scan's image comes from.
#[derive(Debug, Clone)]
pub(crate) enum ScanSource {
    /// What `stella scan IMAGE` takes: an existing local path, else a registry reference
    /// (`POST /api/scans`, `imageRef` or `path`).
    Image {
        image: String,
        insecure_registries: Vec<String>,
    },
    /// A registry reference and nothing else: never read as a local path (the console's form).
    Registry {
        reference: ImageReference,
        transport: Transport,
    },
    /// An archive uploaded into the data directory; removed when its scan ends.
    Upload { path: PathBuf, name: String },
}

impl ScanSource {
    /// What lists show and the catalog records as the image's reference.
    pub(crate) fn label(&self) -> String {
        match self {
            Self::Image { image, .. } => image.clone(),
            Self::Registry { reference, .. } => reference.to_string(),
            Self::Upload { name, .. } => format!("upload:{name}"),
        }
    }

    /// Removes an uploaded archive (nothing else is touched); a failure is logged.
    fn discard(&self) {
        if let Self::Upload { path, .. } = self
            && let Err(e) = std::fs::remove_file(path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the uploaded archive");
        }
    }

    fn open(&self) -> Result<Box<dyn ImageSource>, ScanError> {
        match self {
            Self::Image {
                image,
                insecure_registries,
            } => stella_scanner::open_image(
                image,
                &RegistryAccess {
                    insecure_registries: insecure_registries.clone(),
                    credentials: None,
                },
            ),
            Self::Registry {
                reference,
                transport,
            } => Ok(Box::new(RegistrySource::new(
                reference.clone(),
                *transport,
                None,
            ))),
            Self::Upload { path, .. } => stella_scanner::open_local(path),
        }
    }
}

/// How far a running scan has got, as its progress events tell.
#[derive(Debug, Default)]
pub(crate) struct LiveProgress {
    resolved: AtomicBool,
    layers: AtomicUsize,
    finished: AtomicUsize,
    reused: AtomicUsize,
    bytes: AtomicU64,
}

/// A snapshot of [`LiveProgress`], for the console's progress page.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScanProgress {
    /// The image's index, manifest and config were read.
    pub resolved: bool,
    pub layers: usize,
    /// Layers done (analysed or taken from the cache).
    pub finished: usize,
    /// Layers taken from the cache.
    pub reused: usize,
    /// Compressed bytes read so far.
    pub bytes: u64,
}

impl Progress for LiveProgress {
    fn on_event(&self, event: &ProgressEvent) {
        match event {
            ProgressEvent::Resolved { layers, .. } => {
                self.layers.store(*layers, Ordering::Relaxed);
                self.resolved.store(true, Ordering::Relaxed);
            }
            ProgressEvent::LayerStarted { reused: true, .. } => {
                self.reused.fetch_add(1, Ordering::Relaxed);
            }
            ProgressEvent::LayerFinished { .. } => {
                self.finished.fetch_add(1, Ordering::Relaxed);
            }
            ProgressEvent::BytesRead(n) => {
                self.bytes.fetch_add(*n, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// The progress of the scans running in this process, by scan id. The catalog only knows
/// running, done and failed; this says how far a running scan has got.
static RUNNING: LazyLock<Mutex<HashMap<String, Arc<LiveProgress>>>> =
    LazyLock::new(Default::default);

/// How far the running scan `id` has got; `None` once it ended (or when it runs in another
/// process).
pub(crate) fn progress(id: &str) -> Option<ScanProgress> {
    let running = RUNNING.lock().ok()?;
    let live = running.get(id)?;
    Some(ScanProgress {
        resolved: live.resolved.load(Ordering::Relaxed),
        layers: live.layers.load(Ordering::Relaxed),
        finished: live.finished.load(Ordering::Relaxed),
        reused: live.reused.load(Ordering::Relaxed),
        bytes: live.bytes.load(Ordering::Relaxed),
    })
}

/// Registers `id` as a scan running in this process and returns its progress sink.
pub(crate) fn register_running(id: &str) -> Arc<LiveProgress> {
    let live = Arc::new(LiveProgress::default());
    if let Ok(mut running) = RUNNING.lock() {
        running.insert(id.to_owned(), live.clone());
    }
    live
}

/// Starts scanning `source` in the background: records the scan as running, audits
/// `scan.start`, and returns the scan id. The API and the console both start scans here.
pub(crate) fn start_scan(
    state: &AppState,
    ctx: &AuditContext,
    actor: &str,
    source: ScanSource,
    platform: Platform,
) -> Result<String, String> {
    let id = new_scan_id();
    let label = source.label();
    let now = stella_core::rfc3339(state.clock().now_unix());
    // Registered before the catalog says `running`, so that a running scan in the catalog that
    // is not registered here is one a restart cut short.
    let live = register_running(&id);
    let recorded = state.stores().catalog.connection().execute(
        "INSERT INTO scans (id, image_ref, status, started_at) VALUES (?1, ?2, 'running', ?3)",
        params![id, label, now],
    );
    if let Err(e) = recorded {
        if let Ok(mut running) = RUNNING.lock() {
            running.remove(&id);
        }
        source.discard();
        return Err(format!("cannot record the scan: {e}"));
    }
    audit(
        state,
        ctx,
        actor,
        "scan.start",
        &label,
        json!({ "scanId": id, "platform": platform.to_string() }),
    );
    let scan_id = id.clone();
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let outcome = run_scan(&state, &source, platform, live.as_ref());
        source.discard();
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
        drop(conn);
        if let Err(e) = written {
            tracing::error!(scan = %scan_id, error = %e, "cannot record the scan's end");
        }
        if let Ok(mut running) = RUNNING.lock() {
            running.remove(&scan_id);
        }
    });
    Ok(id)
}

async fn start_scan_api(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: axum::extract::Request,
) -> Response {
    let ctx = AuditContext::of(&request);
    let body = match axum::body::to_bytes(request.into_body(), 64 * 1024).await {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let request: ApiScanRequest = match serde_json::from_slice(&body) {
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
    let image = match (request.image_ref, request.path) {
        (Some(image), None) | (None, Some(image)) => image,
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
    let source = ScanSource::Image {
        image,
        insecure_registries: request.insecure_registries,
    };
    match start_scan(&state, &ctx, &caller.subject, source, platform) {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "scanId": id }))).into_response(),
        Err(message) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

/// Scans, stores the SBOMs in every format, the image config and the BOM-Index, and records
/// image, layers and artefacts.
fn run_scan(
    state: &AppState,
    source: &ScanSource,
    platform: Platform,
    progress: &dyn Progress,
) -> Result<(String, String), String> {
    let image = source.label();
    let source = source.open().map_err(|e| e.to_string())?;
    // The config (labels, history) and the layer blob sizes, which the scan result does not
    // keep; reading them again is a few small documents.
    let resolved =
        stella_scanner::image::resolve(source.as_ref(), &platform).map_err(|e| e.to_string())?;
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
        progress,
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
    let config = serde_json::to_vec(&resolved.config).map_err(|e| e.to_string())?;
    let blob = stores.blobs.put(&config).map_err(|e| e.to_string())?;
    sboms.push((IMAGE_CONFIG.0, IMAGE_CONFIG.1, blob, config.len()));
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
            // The blob's media type and size as the manifest states them (0 when a
            // `docker save` archive does not say).
            let (media_type, size) = resolved.layers.get(layer.index).map_or(("diff", 0), |l| {
                (l.media_type.as_str(), l.blob.size.unwrap_or(0))
            });
            txn.execute(
                "INSERT INTO layers (digest, media_type, size) VALUES (?1, ?2, ?3)
                 ON CONFLICT (digest) DO UPDATE SET media_type = ?2, size = max(size, ?3)",
                params![layer.diff_id.to_string(), media_type, size as i64],
            )?;
            txn.execute(
                "INSERT INTO image_layers (image_digest, position, layer_digest) VALUES (?1, ?2, ?3)",
                params![digest, layer.index as i64, layer.diff_id.to_string()],
            )?;
        }
        txn.execute(
            "DELETE FROM artifacts WHERE image_digest = ?1 AND kind IN ('sbom', 'layer-sbom', 'usage-sbom', 'bom-index', 'image-config')",
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

/// The artefact (kind, format) of an image's config JSON as the image states it (labels,
/// entrypoint, history), stored with every scan.
pub(crate) const IMAGE_CONFIG: (&str, &str) = ("image-config", "oci-config-json");

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

/// A stored SBOM of a scanned image, with its content type.
pub(crate) struct StoredSbom {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// The stored SBOM of `digest` in `format` (`cdx-json`, `cdx-pb`, `spdx-json`) and `view`
/// (`inventory`, `usage`). The error is a status and a sentence saying what to do.
pub(crate) fn stored_sbom(
    state: &AppState,
    digest: &str,
    format: &str,
    view: &str,
) -> Result<StoredSbom, (StatusCode, String)> {
    if digest.parse::<Digest>().is_err() {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("{digest}: an image digest is sha256:<64 hex>"),
        ));
    }
    let content_type = match format {
        "cdx-json" => "application/vnd.cyclonedx+json",
        "cdx-pb" => "application/x.vnd.cyclonedx+protobuf",
        "spdx-json" => "application/spdx+json",
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                "format is one of cdx-json, cdx-pb, spdx-json".to_owned(),
            ));
        }
    };
    let kind = match view {
        "inventory" => "sbom",
        "usage" => "usage-sbom",
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                "view is inventory (everything installed) or usage (what the entrypoint runs)"
                    .to_owned(),
            ));
        }
    };
    match state.stores().artifact(digest, kind, format) {
        Ok(Some(bytes)) => Ok(StoredSbom {
            bytes,
            content_type,
        }),
        Ok(None) => Err((
            StatusCode::NOT_FOUND,
            format!("no {view} SBOM in {format} for {digest}: scan the image first"),
        )),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn get_sbom(
    State(state): State<AppState>,
    Path(digest): Path<String>,
    Query(query): Query<SbomQuery>,
) -> Response {
    match stored_sbom(&state, &digest, &query.format, &query.view) {
        Ok(sbom) => ([(header::CONTENT_TYPE, sbom.content_type)], sbom.bytes).into_response(),
        Err((status, message)) => error(status, message),
    }
}

#[derive(Debug, Deserialize)]
struct DiffQuery {
    old: String,
    new: String,
}

/// The diff of two scanned images (by image digest) from their stored inventory CycloneDX
/// SBOMs; no layer is read: both scans already shared their layers through the cache.
pub(crate) fn diff_images(
    state: &AppState,
    old: &str,
    new: &str,
) -> Result<stella_scanner::diff::ImageDiff, (StatusCode, String)> {
    let side = |digest: &str, which: &str| {
        let sbom = stored_sbom(state, digest, "cdx-json", "inventory")?;
        stella_scanner::diff::DiffSide::from_cyclonedx(&sbom.bytes).map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{which} SBOM: {e}"),
            )
        })
    };
    let old = side(old, "old")?;
    let new = side(new, "new")?;
    Ok(stella_scanner::diff::diff(&old, &new, None))
}

/// `GET /api/diff?old=<image digest>&new=<image digest>`: see [`diff_images`].
async fn get_diff(State(state): State<AppState>, Query(query): Query<DiffQuery>) -> Response {
    match diff_images(&state, &query.old, &query.new) {
        Ok(diff) => Json(diff).into_response(),
        Err((status, message)) => error(status, message),
    }
}
