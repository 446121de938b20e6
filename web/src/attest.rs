//! The attestor over HTTP: the local Rekor v2 log (`POST /api/v2/log/entries`, read-only
//! `GET /api/v2/checkpoint` and `GET /api/v2/tile/...`), the trust documents a verifier needs
//! (`/api/trust/trusted_root.json`, `/api/trust/signing_config.json`,
//! `/api/trust/trust-config.json`), and exports: `POST /api/exports {imageDigest, format, view}`
//! signs a stored SBOM, logs it and keeps its Sigstore bundle (`GET /api/exports/{id}`,
//! `.../bundle`, `.../artifact`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stella_attestor::{
    Attestor, BUNDLE_MEDIA_TYPE, CLIENT_TRUST_CONFIG_MEDIA_TYPE, HashedRekord,
    SIGNING_CONFIG_MEDIA_TYPE, TRUSTED_ROOT_MEDIA_TYPE,
};
use stella_authority::Scope;
use stella_core::Digest;
use stella_signer::{Predicate, Sha256Digest, StatementBuilder};
use stella_store::rusqlite::{OptionalExtension, params};

use crate::AppState;

use crate::auth::{AuditContext, Caller, RouteTable, escape, html};
use crate::signing::{SignOutcome, SigningService};

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .signer(
            Method::POST,
            "/api/v2/log/entries",
            Scope::SignerSign,
            create_entry,
        )
        .public(
            Method::GET,
            "/api/v2/checkpoint",
            "transparency logs are public and read-only",
            checkpoint,
        )
        .public(
            Method::GET,
            "/api/v2/tile/{*path}",
            "transparency logs are public and read-only",
            tile,
        )
        .public(
            Method::GET,
            "/api/trust/{name}",
            "trust anchors are public: verifiers need them offline",
            trust_document,
        )
        .signer(Method::POST, "/api/exports", Scope::SignerSign, export)
        .scoped(
            Method::GET,
            "/api/exports/{id}",
            Scope::ScannerRead,
            get_export,
        )
        .scoped(
            Method::GET,
            "/api/exports/{id}/{part}",
            Scope::ScannerRead,
            get_export_part,
        )
        .console(
            Method::GET,
            "/console/attestations",
            Some(Scope::ScannerRead),
            attestations_page,
        )
        .console(
            Method::GET,
            "/console/attestations/{id}/{part}",
            Some(Scope::ScannerRead),
            get_export_part,
        )
}

/// The console's attestations: every export with its log index, the artefact and bundle to
/// download, and the trust documents a verifier needs.
async fn attestations_page(State(state): State<AppState>) -> Response {
    let title = "Attestations";
    let rows = tokio::task::spawn_blocking(move || {
        let conn = state.stores().catalog.connection();
        let mut stmt = conn.prepare(
            "SELECT id, image_digest, name, log_index, created_at FROM exports
             ORDER BY id DESC LIMIT 200",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, stella_store::rusqlite::Error>(rows)
    })
    .await;
    let rows = match rows {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                title,
                &format!(
                    "<p>The catalog failed: {}. Check the daemon log.</p>",
                    escape(&e.to_string())
                ),
            );
        }
        Err(e) => {
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                title,
                &escape(&e.to_string()),
            );
        }
    };
    let mut body = String::from(
        "<p>Verify offline with <code>stella verify NAME.sigstore.json --artifact NAME \
         --trust-root trusted_root.json</code> or <code>sigstore --trust-config trust-config.json \
         verify identity --offline</code>. Trust documents: \
         <a href=\"/api/trust/trusted_root.json\">trusted_root.json</a>, \
         <a href=\"/api/trust/trust-config.json\">trust-config.json</a>, \
         <a href=\"/api/trust/signing_config.json\">signing_config.json</a>.</p>",
    );
    if rows.is_empty() {
        body.push_str(
            "<p>No attestation yet: scan an image, then export its SBOMs \
             (<code>stella attest export IMAGE -o DIR</code>) or create a report.</p>",
        );
    } else {
        body.push_str(
            "<table><thead><tr><th>#</th><th>image</th><th>artefact</th><th>log index</th>\
             <th>created (UTC)</th><th>download</th></tr></thead><tbody>",
        );
        for (id, image, name, log_index, created) in rows {
            let created = stella_core::rfc3339(u64::try_from(created).unwrap_or_default());
            body.push_str(&format!(
                "<tr><td>{id}</td><td><code>{}</code></td><td>{}</td><td>{log_index}</td>\
                 <td>{created}</td><td><a href=\"/console/attestations/{id}/artifact\">{}</a> \
                 <a href=\"/console/attestations/{id}/bundle\">{}.sigstore.json</a></td></tr>",
                escape(&image),
                escape(&name),
                escape(&name),
                escape(&name),
            ));
        }
        body.push_str("</tbody></table>");
    }
    html(StatusCode::OK, title, &body)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The attestor, or the response saying why there is none.
fn attestor(state: &AppState) -> Result<std::sync::Arc<SigningService>, Response> {
    let unavailable = |why: &str| error(StatusCode::SERVICE_UNAVAILABLE, why);
    let service = state.signing().cloned().ok_or_else(|| {
        unavailable("no [hsm] is configured: there is no transparency log on this appliance")
    })?;
    if service.attestor().is_none() {
        return Err(unavailable(
            "the HSM lacks the appliance keys: run `stella hsm init` and restart",
        ));
    }
    Ok(service)
}

fn with_attestor<T>(
    service: &SigningService,
    f: impl FnOnce(&Attestor) -> Result<T, stella_attestor::AttestorError>,
) -> Result<T, Response> {
    let attestor = service
        .attestor()
        .ok_or_else(|| error(StatusCode::SERVICE_UNAVAILABLE, "no transparency log"))?;
    f(attestor).map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn create_entry(State(state): State<AppState>, body: Bytes) -> Response {
    let service = match attestor(&state) {
        Ok(service) => service,
        Err(response) => return response,
    };
    let result = tokio::task::spawn_blocking(move || {
        let entry = HashedRekord::from_request_json(&body)
            .and_then(|entry| entry.check_signature().map(|()| entry))
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
        with_attestor(&service, |attestor| attestor.log().append(&entry))
    })
    .await;
    match result {
        Ok(Ok(entry)) => (StatusCode::CREATED, Json(entry)).into_response(),
        Ok(Err(response)) => response,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn checkpoint(State(state): State<AppState>) -> Response {
    let service = match attestor(&state) {
        Ok(service) => service,
        Err(response) => return response,
    };
    match with_attestor(&service, |attestor| attestor.log().checkpoint()) {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(response) => response,
    }
}

async fn tile(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    let service = match attestor(&state) {
        Ok(service) => service,
        Err(response) => return response,
    };
    let path = format!("tile/{path}");
    let Some(attestor) = service.attestor() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no transparency log");
    };
    match attestor.log().read_tile(&path) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            bytes,
        )
            .into_response(),
        Err(stella_attestor::AttestorError::TilePath { reason, .. }) => {
            error(StatusCode::NOT_FOUND, format!("{path}: {reason}"))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn trust_document(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let service = match attestor(&state) {
        Ok(service) => service,
        Err(response) => return response,
    };
    let (bytes, media_type) = match name.as_str() {
        "trusted_root.json" => (
            with_attestor(&service, Attestor::trusted_root_json),
            TRUSTED_ROOT_MEDIA_TYPE,
        ),
        "signing_config.json" => (
            with_attestor(&service, Attestor::signing_config_json),
            SIGNING_CONFIG_MEDIA_TYPE,
        ),
        "trust-config.json" => (
            with_attestor(&service, Attestor::client_trust_config_json),
            CLIENT_TRUST_CONFIG_MEDIA_TYPE,
        ),
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "trust documents: trusted_root.json, signing_config.json, trust-config.json",
            );
        }
    };
    match bytes {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (
                    header::HeaderName::from_static("x-sigstore-media-type"),
                    media_type.to_owned(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExportRequest {
    image_digest: String,
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

/// The file name an exported artefact is carried out under.
fn artifact_name(format: &str) -> Option<&'static str> {
    match format {
        "cdx-json" => Some("sbom.cdx.json"),
        "spdx-json" => Some("sbom.spdx.json"),
        _ => None,
    }
}

async fn export(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let service = match attestor(&state) {
        Ok(service) => service,
        Err(response) => return response,
    };
    let ctx = AuditContext::of(&request);
    let actor = Caller::subject_of(&request);
    let body = match axum::body::to_bytes(request.into_body(), 64 * 1024).await {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("request body: {e}")),
    };
    let wanted: ExportRequest = match serde_json::from_slice(&body) {
        Ok(wanted) => wanted,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("export request: {e}")),
    };
    let Some(name) = artifact_name(&wanted.format) else {
        return error(
            StatusCode::BAD_REQUEST,
            "format is cdx-json or spdx-json (the signed JSON SBOMs)",
        );
    };
    if wanted.view != "inventory" {
        return error(StatusCode::BAD_REQUEST, "view is inventory");
    }
    let Ok(image) = wanted.image_digest.parse::<Digest>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "imageDigest is sha256:<64 hex> (the image id)",
        );
    };
    let result = tokio::task::spawn_blocking(move || {
        let stores = state.stores();
        let sbom = stores
            .artifact(&image.to_string(), "sbom", &wanted.format)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .ok_or_else(|| {
                error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no {} SBOM for {image}: scan the image first",
                        wanted.format
                    ),
                )
            })?;
        // The blob store is content-addressed: the SBOM's digest is its blob's key.
        let blob = Digest::of(&sbom);
        let reference: Option<String> = stores
            .catalog
            .connection()
            .query_row(
                "SELECT reference FROM images WHERE digest = ?1",
                [image.to_string()],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten();
        let document: serde_json::Value = serde_json::from_slice(&sbom).map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("stored SBOM: {e}"),
            )
        })?;
        let image_digest = Sha256Digest::parse(&image.to_string())
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let predicate = match wanted.format.as_str() {
            "spdx-json" => Predicate::Spdx(document),
            _ => Predicate::CycloneDx(document),
        };
        let statement = StatementBuilder::new(
            reference.as_deref().unwrap_or(&image.to_string()),
            image_digest,
        )
        .sbom_subject(name, &sbom)
        .build(predicate)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        sign_and_record(
            &state,
            &service,
            &ExportInput {
                image: &image,
                format: &wanted.format,
                view: &wanted.view,
                name,
                artifact: &blob,
            },
            &actor,
            &ctx,
            |_| Ok(statement),
        )
    })
    .await;
    match result {
        Ok(Ok(body)) => (StatusCode::CREATED, Json(body)).into_response(),
        Ok(Err(response)) => response,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// What an export signs: an artefact of an image, stored in the blob store.
pub(crate) struct ExportInput<'a> {
    pub image: &'a Digest,
    pub format: &'a str,
    pub view: &'a str,
    /// The file name the artefact is carried out under.
    pub name: &'a str,
    /// The artefact's blob digest.
    pub artifact: &'a Digest,
}

/// Signs the statement `build` makes (gate, HSM, transparency log), keeps the Sigstore bundle
/// in the blob store and records the export; answers `{artifactId, logIndex, bundleUrl, …}`.
pub(crate) fn sign_and_record(
    state: &AppState,
    service: &SigningService,
    input: &ExportInput<'_>,
    actor: &str,
    ctx: &AuditContext,
    build: impl FnOnce(
        &stella_signer::Entitled,
    ) -> Result<stella_signer::Statement, stella_signer::SignerError>,
) -> Result<serde_json::Value, Response> {
    let stores = state.stores();
    let signed = service
        .sign_with(state.feeds(), &stores.catalog, actor, ctx, build)
        .map_err(SignOutcome::into_response)?;
    let bundle = signed
        .bundle
        .ok_or_else(|| error(StatusCode::SERVICE_UNAVAILABLE, "no transparency log"))?;
    let log_index = bundle
        .entry
        .index()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let bundle_digest = stores
        .blobs
        .put(&bundle.json)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let conn = stores.catalog.connection();
    conn.execute(
        "INSERT INTO exports (image_digest, format, view, name, artifact_digest,
                              bundle_digest, log_index, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            input.image.to_string(),
            input.format,
            input.view,
            input.name,
            input.artifact.to_string(),
            bundle_digest.to_string(),
            log_index as i64,
            state.clock().now_unix() as i64,
        ],
    )
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let id = conn.last_insert_rowid();
    Ok(json!({
        "artifactId": id,
        "logIndex": log_index,
        "name": input.name,
        "artifactDigest": input.artifact.to_string(),
        "bundleUrl": format!("/api/exports/{id}/bundle"),
        "artifactUrl": format!("/api/exports/{id}/artifact"),
    }))
}

/// One stored export.
struct ExportRow {
    image_digest: String,
    format: String,
    view: String,
    name: String,
    artifact_digest: String,
    bundle_digest: String,
    log_index: i64,
}

fn export_row(state: &AppState, id: i64) -> Result<ExportRow, Response> {
    state
        .stores()
        .catalog
        .connection()
        .query_row(
            "SELECT image_digest, format, view, name, artifact_digest, bundle_digest, log_index
             FROM exports WHERE id = ?1",
            [id],
            |r| {
                Ok(ExportRow {
                    image_digest: r.get(0)?,
                    format: r.get(1)?,
                    view: r.get(2)?,
                    name: r.get(3)?,
                    artifact_digest: r.get(4)?,
                    bundle_digest: r.get(5)?,
                    log_index: r.get(6)?,
                })
            },
        )
        .optional()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no export {id}")))
}

async fn get_export(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    match export_row(&state, id) {
        Ok(row) => Json(json!({
            "artifactId": id,
            "imageDigest": row.image_digest,
            "format": row.format,
            "view": row.view,
            "name": row.name,
            "logIndex": row.log_index,
            "artifactDigest": row.artifact_digest,
            "bundleDigest": row.bundle_digest,
            "bundleUrl": format!("/api/exports/{id}/bundle"),
            "artifactUrl": format!("/api/exports/{id}/artifact"),
        }))
        .into_response(),
        Err(response) => response,
    }
}

async fn get_export_part(
    State(state): State<AppState>,
    Path((id, part)): Path<(i64, String)>,
) -> Response {
    let row = match export_row(&state, id) {
        Ok(row) => row,
        Err(response) => return response,
    };
    let (digest, content_type) = match part.as_str() {
        "bundle" => (row.bundle_digest, BUNDLE_MEDIA_TYPE),
        "artifact" if row.format == "spdx-json" => (row.artifact_digest, "application/spdx+json"),
        "artifact" if row.format == "report-json" => (row.artifact_digest, "application/json"),
        "artifact" => (row.artifact_digest, "application/vnd.cyclonedx+json"),
        _ => return error(StatusCode::NOT_FOUND, "parts: bundle, artifact"),
    };
    let Ok(digest) = digest.parse::<Digest>() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "malformed digest");
    };
    match state.stores().blobs.get(&digest) {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("blob {digest} is missing")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
