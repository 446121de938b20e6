//! The attestor over HTTP: the local Rekor v2 log (`POST /api/v2/log/entries`, read-only
//! `GET /api/v2/checkpoint` and `GET /api/v2/tile/...`), the trust documents a verifier needs
//! (`/api/trust/trusted_root.json`, `/api/trust/signing_config.json`,
//! `/api/trust/trust-config.json`), and exports: `POST /api/exports {imageDigest, format, view}`
//! signs a stored SBOM, logs it and keeps its Sigstore bundle (`GET /api/exports/{id}`,
//! `.../bundle`, `.../artifact`). The console's attestations page (`attestations.html`) lists
//! the exports with their downloads and the trust documents, and verifies an uploaded bundle
//! against the appliance's own trusted root with the code `stella verify` runs
//! (`attestations_verify.html`).

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stella_attestor::{
    Attestor, BUNDLE_MEDIA_TYPE, CLIENT_TRUST_CONFIG_MEDIA_TYPE, HashedRekord,
    SIGNING_CONFIG_MEDIA_TYPE, TRUSTED_ROOT_MEDIA_TYPE, TrustMaterial, Verified, verify_bundle,
};
use stella_authority::Scope;
use stella_core::Digest;
use stella_signer::{Predicate, Sha256Digest, StatementBuilder};
use stella_store::rusqlite::{OptionalExtension, params};

use crate::AppState;
use crate::auth::{AuditContext, Caller, RouteTable};
use crate::console::view::{Column, PER_PAGE, Pager, Params, Sort, When, error_page};
use crate::console::{Chrome, render};
use crate::kits::read_upload;
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
            Method::POST,
            "/console/attestations/verify",
            Some(Scope::ScannerRead),
            verify_upload,
        )
        .console(
            Method::GET,
            "/console/attestations/{id}/{part}",
            Some(Scope::ScannerRead),
            get_export_part,
        )
}

const ATTESTATIONS_PATH: &str = "/console/attestations";
/// The exports' sortable columns: key and label.
const EXPORT_COLUMNS: [(&str, &str); 5] = [
    ("id", "#"),
    ("image", "Image"),
    ("name", "Artefact"),
    ("log_index", "Log index"),
    ("created", "Created"),
];

/// One export in the list.
struct ExportListRow {
    id: i64,
    image: String,
    name: String,
    format: String,
    log_index: i64,
    created: When,
}

/// `GET /console/attestations`.
#[derive(Template)]
#[template(path = "attestations.html")]
struct AttestationsPage {
    chrome: Chrome,
    rows: Vec<ExportListRow>,
    columns: Vec<Column>,
    pager: Pager,
    /// Why there is no transparency log or trusted root; `None` when there is one.
    no_trust: Option<String>,
}

/// Why this appliance has no attestor (and so no trusted root), or `None` when it has one.
fn attestor_missing(state: &AppState) -> Option<String> {
    match state.signing() {
        None => Some(
            "No HSM is configured ([hsm] in the configuration): this appliance signs nothing and \
             has no transparency log or trusted root."
                .to_owned(),
        ),
        Some(service) if service.attestor().is_none() => Some(
            "The HSM lacks the appliance keys, so there is no transparency log or trusted root: \
             run `stella hsm init` and restart the daemon."
                .to_owned(),
        ),
        Some(_) => None,
    }
}

/// The console's attestations: every export with its log index, the artefact and bundle to
/// download (newest first; `?sort=` by any column but the downloads), the trust documents a
/// verifier needs, and the form to verify a bundle.
async fn attestations_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("Attestations", "attestations");
    let params = Params::parse(query.as_deref());
    let now = state.clock().now_unix();
    let no_trust = attestor_missing(&state);
    let sort = Sort::new(&params, &EXPORT_COLUMNS, "-created");
    let columns = sort.columns(&params, ATTESTATIONS_PATH, &EXPORT_COLUMNS);
    let order = sort.order_by(
        &[
            ("created", "created_at"),
            ("id", "id"),
            ("image", "image_digest"),
            ("name", "name"),
            ("log_index", "log_index"),
        ],
        "id",
    );
    let listed = tokio::task::spawn_blocking(move || {
        let conn = state.stores().catalog.connection();
        let total: i64 = conn.query_row("SELECT count(*) FROM exports", [], |r| r.get(0))?;
        let pager = Pager::new(&params, ATTESTATIONS_PATH, total.max(0) as usize, PER_PAGE);
        let range = pager.range();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, image_digest, name, format, log_index, created_at FROM exports
             ORDER BY {order} LIMIT ?1 OFFSET ?2"
        ))?;
        let rows = stmt
            .query_map(
                params![(range.end - range.start) as i64, range.start as i64],
                |r| {
                    Ok(ExportListRow {
                        id: r.get(0)?,
                        image: r.get(1)?,
                        name: r.get(2)?,
                        format: r.get(3)?,
                        log_index: r.get(4)?,
                        created: When::new(r.get::<_, i64>(5)?.max(0) as u64, now),
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, stella_store::rusqlite::Error>((pager, rows))
    })
    .await;
    let (pager, rows) = match listed {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return catalog_failed(chrome, &e.to_string()),
        Err(e) => return catalog_failed(chrome, &e.to_string()),
    };
    render(
        StatusCode::OK,
        &AttestationsPage {
            chrome,
            rows,
            columns,
            pager,
            no_trust,
        },
    )
}

fn catalog_failed(chrome: Chrome, problem: &str) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        chrome,
        format!("The exports cannot be read: {problem}."),
        "Check the daemon log and the data directory's disk; then reload this page.",
        "/",
    )
}

/// The verified claims of a bundle, for the result page.
struct ClaimsView {
    identity: String,
    issuer: String,
    log_index: u64,
    signed_at: When,
    predicate_type: String,
    /// (name, sha256 hex) of every subject of the signed statement.
    subjects: Vec<(String, String)>,
    /// Further claims of the statement (image, licence, …).
    claims: Vec<(String, String)>,
}

/// `POST /console/attestations/verify`: valid or invalid, why, and the claims.
#[derive(Template)]
#[template(path = "attestations_verify.html")]
struct VerifyPage {
    chrome: Chrome,
    bundle_name: String,
    artifact_name: String,
    /// SHA-256 of the uploaded artefact, hex.
    artifact_sha256: String,
    /// Why the bundle does not verify; `None` when it does.
    problem: Option<String>,
    claims: Option<ClaimsView>,
}

/// Verifies `bundle` and `artifact` offline against the appliance's own published trusted
/// root: the trusted root is read back from its JSON and checked with [`verify_bundle`], exactly
/// as `stella verify --trust-root trusted_root.json` does.
fn verify_against_appliance(
    state: &AppState,
    bundle: &[u8],
    artifact: &[u8],
) -> Result<Result<Verified, String>, String> {
    let attestor = state
        .signing()
        .and_then(|service| service.attestor())
        .ok_or_else(|| attestor_missing(state).unwrap_or_default())?;
    let published = attestor
        .trusted_root_json()
        .map_err(|e| format!("the trusted root cannot be made: {e}"))?;
    let trust = TrustMaterial::from_trusted_root(&published)
        .map_err(|e| format!("the published trusted root does not parse: {e}"))?;
    Ok(verify_bundle(bundle, Some(artifact), &trust).map_err(|e| e.to_string()))
}

/// The console's bundle verifier: multipart `bundle` (Sigstore bundle JSON) and `artifact`.
async fn verify_upload(
    State(state): State<AppState>,
    chrome: Chrome,
    request: Request,
) -> Response {
    let chrome = chrome.page("Bundle verification", "attestations");
    let again =
        "Choose the bundle (NAME.sigstore.json) and the artefact it is about, and try again.";
    let mut fields = match read_upload(request).await {
        Ok(fields) => fields,
        Err(problem) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                chrome,
                format!("The upload failed: {problem}."),
                again,
                ATTESTATIONS_PATH,
            );
        }
    };
    let non_empty = |upload: Option<crate::kits::Upload>| upload.filter(|u| !u.bytes.is_empty());
    let (Some(bundle), Some(artifact)) = (
        non_empty(fields.remove("bundle")),
        non_empty(fields.remove("artifact")),
    ) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            chrome,
            "Both files are needed: the bundle and the artefact it is about.",
            again,
            ATTESTATIONS_PATH,
        );
    };
    let now = state.clock().now_unix();
    let bundle_name = bundle
        .file_name
        .clone()
        .unwrap_or_else(|| "bundle".to_owned());
    let artifact_name = artifact
        .file_name
        .clone()
        .unwrap_or_else(|| "artefact".to_owned());
    let artifact_sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&artifact.bytes));
    let checked = tokio::task::spawn_blocking(move || {
        verify_against_appliance(&state, &bundle.bytes, &artifact.bytes)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|inner| inner);
    let outcome = match checked {
        Ok(outcome) => outcome,
        Err(problem) => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                chrome,
                format!("Bundles cannot be verified here: {problem}"),
                "Verify offline with `stella verify` against the issuing appliance's trusted_root.json.",
                ATTESTATIONS_PATH,
            );
        }
    };
    let (status, problem, claims) = match outcome {
        Ok(verified) => (
            StatusCode::OK,
            None,
            Some(ClaimsView {
                identity: verified.identity,
                issuer: verified.oidc_issuer,
                log_index: verified.log_index,
                signed_at: When::new(
                    u64::try_from(verified.signed_at.unix_timestamp()).unwrap_or_default(),
                    now,
                ),
                predicate_type: verified.predicate_type,
                subjects: verified.subjects,
                claims: verified.claims.into_iter().collect(),
            }),
        ),
        Err(problem) => (StatusCode::UNPROCESSABLE_ENTITY, Some(problem), None),
    };
    render(
        status,
        &VerifyPage {
            chrome,
            bundle_name,
            artifact_name,
            artifact_sha256,
            problem,
            claims,
        },
    )
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
    let licence_id = signed.attestation.licence_id.clone();
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
        "licenceId": licence_id,
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

/// Test support: a console environment whose appliance has a signer and a transparency log
/// (software keys from the development key source, no HSM needed), and bundles it signed.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use stella_hsm::{FileKeySource, KeyRole, SigningMode};
    use stella_signer::{
        Entitlement, GateContext, Predicate, RevocationList, SIGNING_QUOTA, SemVer, Sha256Digest,
        StatementBuilder, VendorSignature, check_entitlement,
    };
    use stella_store::Stores;
    use time::OffsetDateTime;

    use crate::AppState;
    use crate::auth::{AuthSettings, Authority};
    use crate::console::testing::{ConsoleEnv, T0};
    use crate::signing::SigningService;

    /// The SBOM the test bundles are about.
    pub(crate) const SBOM: &[u8] = include_bytes!("../../tests/data/attestor/sbom.cdx.json");

    /// [`ConsoleEnv`] with `[hsm]` set up: keys made, the CA, the log and the TSA open.
    pub(crate) fn env_with_signing() -> ConsoleEnv {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let config = stella_core::Config::default();
        let source = FileKeySource::open(&data.join("dev-keys"), SigningMode::Dev).unwrap();
        stella_hsm::init_appliance_keys(&source).unwrap();
        let mut service =
            SigningService::open(Box::new(source), data, "test-appliance", &config).unwrap();
        service
            .open_attestor(data, "http://stella.test", &config)
            .unwrap();
        // As `ConsoleEnv::state_in`, with the signer.
        let stores = Arc::new(Stores::open(data).unwrap());
        let clock: Arc<dyn stella_core::Clock> = Arc::new(stella_core::FixedClock(T0));
        let authority = Authority::with_signer(
            Arc::new(stella_authority::SoftwareSigner::generate().unwrap()),
            AuthSettings {
                issuer: "http://stella.test".into(),
                https: false,
                token_lifetime: stella_authority::TokenLifetime::clamped(300),
                session_lifetime_secs: 3600,
                allow_bearer_tokens: false,
                throttle: stella_authority::LoginThrottle::default(),
            },
            clock.clone(),
        )
        .unwrap();
        let feeds = Arc::new(stella_feeds::FeedStore::open(stores.dir(), &stores.catalog).unwrap());
        let state = AppState::new(
            stores,
            feeds,
            Arc::new(authority),
            config,
            clock,
            Some(Arc::new(service)),
        );
        ConsoleEnv { dir, state }
    }

    /// Signs a statement about [`SBOM`] (the gate run with a made-up valid licence), logs and
    /// timestamps it; returns the Sigstore bundle JSON.
    pub(crate) fn signed_bundle(env: &ConsoleEnv) -> Vec<u8> {
        let service = env.state.signing().unwrap();
        let installation = service
            .key_source()
            .find_key(&KeyRole::InstallationIdentity.label().unwrap())
            .unwrap()
            .unwrap()
            .public_key
            .key_id();
        let now = OffsetDateTime::now_utc();
        let licence = Entitlement {
            licence_id: "lic-0123456789abcdef0123".to_owned(),
            customer: "CUST-ACME".to_owned(),
            plan: "pro".to_owned(),
            quotas: BTreeMap::from([(SIGNING_QUOTA.to_owned(), 100)]),
            valid_release_year: Some(2027),
            max_version: Some(SemVer::new(2, 9, 0)),
            expires: now + time::Duration::days(30),
            installation_key_sha256: installation.clone(),
            vendor_key_id: "vendor-key-2026".to_owned(),
            vendor_signature: VendorSignature::Verified,
        };
        let trusted = BTreeSet::from(["vendor-key-2026".to_owned()]);
        let entitled = check_entitlement(
            Some(&licence),
            &GateContext {
                now,
                installation_key_sha256: &installation,
                trusted_vendor_keys: &trusted,
                revocations: &RevocationList::default(),
                running_version: &SemVer::new(2, 3, 1),
                running_release_year: 2026,
                signatures_used: 0,
            },
        )
        .unwrap();
        let statement =
            StatementBuilder::new("registry.example/app", Sha256Digest::of(b"image manifest"))
                .sbom_subject("sbom.cdx.json", SBOM)
                .build(Predicate::CycloneDx(serde_json::from_slice(SBOM).unwrap()))
                .unwrap();
        let signed = service
            .attestation_signer()
            .unwrap()
            .sign_statement(statement, &entitled)
            .unwrap();
        service.attestor().unwrap().attest(&signed).unwrap().json
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use stella_store::rusqlite::params;

    use super::testing::{SBOM, env_with_signing, signed_bundle};
    use crate::console::testing::{CSRF, ConsoleEnv, T0};
    use crate::kits::tests::{multipart, order};

    const VERIFY: &str = "/console/attestations/verify";

    fn export_row(env: &ConsoleEnv, name: &str) {
        export_of(env, ("sha256:aa", name, 7, 60));
    }

    /// Records an export of `image` called `name` at `log_index`, made `age` seconds ago.
    fn export_of(env: &ConsoleEnv, (image, name, log_index, age): (&str, &str, i64, u64)) {
        env.state
            .stores()
            .catalog
            .connection()
            .execute(
                "INSERT INTO exports (image_digest, format, view, name, artifact_digest,
                                      bundle_digest, log_index, created_at)
                 VALUES (?1, 'cdx-json', 'inventory', ?2, 'sha256:bb', 'sha256:cc', ?3, ?4)",
                params![image, name, log_index, (T0 - age) as i64],
            )
            .unwrap();
    }

    #[tokio::test]
    async fn attestations_page_without_hsm_says_what_to_do() {
        let env = ConsoleEnv::new();
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/attestations").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        assert!(page.body.contains("No HSM is configured"), "{}", page.body);
        assert!(page.body.contains("No attestation yet — scan an image"));
        assert!(!page.body.contains(VERIFY));
        let action = format!("{VERIFY}?csrf={CSRF}");
        let refused = env
            .send(multipart(
                &viewer,
                &action,
                &[("bundle", "b.json", b"{}"), ("artifact", "a", b"x")],
            ))
            .await;
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        refused.assert_secure();
        assert!(refused.body.contains("stella verify"), "{}", refused.body);
    }

    #[tokio::test]
    async fn attestations_page_lists_exports_paginated_and_escaped() {
        let env = ConsoleEnv::new();
        for _ in 0..50 {
            export_row(&env, "sbom.cdx.json");
        }
        export_row(&env, "<script>alert(1)</script>");
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/attestations").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Exports 1–50 of 51"), "{}", page.body);
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
        );
        assert!(!page.body.contains("<script>alert"));
        assert!(page.body.contains("/console/attestations/51/bundle"));
        let second = env.get(&viewer, "/console/attestations?page=2").await;
        assert!(
            second.body.contains("/console/attestations/1/artifact"),
            "{}",
            second.body
        );
    }

    #[tokio::test]
    async fn exports_sort_by_each_column() {
        let env = ConsoleEnv::new();
        // Made in this order (ids 1, 2, 3), at these ages.
        for export in [
            ("sha256:bb", "b.cdx.json", 9, 60),
            ("sha256:cc", "c.spdx.json", 3, 600),
            ("sha256:aa", "a.report.json", 5, 6),
        ] {
            export_of(&env, export);
        }
        let viewer = env.sign_in("val", "viewer");
        let names = ["a.report.json", "b.cdx.json", "c.spdx.json"];
        let get = |query: &'static str| {
            let env = &env;
            let viewer = viewer.clone();
            async move {
                let page = env
                    .get(&viewer, &format!("/console/attestations{query}"))
                    .await;
                assert_eq!(page.status, StatusCode::OK, "{}", page.body);
                page.body
            }
        };
        let newest = get("").await;
        assert!(
            newest.contains(
                r#"<th scope="col" aria-sort="descending"><a href="/console/attestations?sort=created">Created</a></th>"#
            ),
            "{newest}"
        );
        assert!(get("?sort=id").await.contains(
            r#"<th scope="col" aria-sort="ascending"><a href="/console/attestations?sort=-id">#</a></th>"#
        ));
        let (a, b, c) = ("a.report.json", "b.cdx.json", "c.spdx.json");
        for (query, expected) in [
            ("", [a, b, c]),
            ("?sort=id", [b, c, a]),
            ("?sort=-image", [c, b, a]),
            ("?sort=name", [a, b, c]),
            ("?sort=log_index", [c, a, b]),
            ("?sort=created", [c, b, a]),
            // Unknown keys fall back to newest first.
            ("?sort=-format", [a, b, c]),
        ] {
            assert_eq!(order(&get(query).await, &names), expected, "{query}");
        }
    }

    #[tokio::test]
    async fn verify_upload_accepts_a_real_bundle_and_rejects_a_tampered_artefact() {
        let env = env_with_signing();
        let bundle = signed_bundle(&env);
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/attestations").await;
        let action = format!("{VERIFY}?csrf={CSRF}");
        assert!(
            page.body.contains(&format!("action=\"{action}\"")),
            "{}",
            page.body
        );
        assert!(page.body.contains("/api/trust/trusted_root.json"));

        let valid = env
            .send(multipart(
                &viewer,
                &action,
                &[
                    ("bundle", "sbom.cdx.json.sigstore.json", &bundle),
                    ("artifact", "sbom.cdx.json", SBOM),
                ],
            ))
            .await;
        assert_eq!(valid.status, StatusCode::OK, "{}", valid.body);
        valid.assert_secure();
        assert!(
            valid.body.contains("<strong>VALID</strong>"),
            "{}",
            valid.body
        );
        // The claims: identity, log index, the artefact's digest as a subject.
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(SBOM));
        assert!(
            valid
                .body
                .contains(&stella_core::Config::default().signer.identity)
        );
        assert!(
            valid.body.contains("<dt>Log index</dt><dd>0</dd>"),
            "{}",
            valid.body
        );
        assert!(
            valid
                .body
                .contains(&format!("sbom.cdx.json <code>sha256:{digest}</code>"))
        );

        let mut tampered = SBOM.to_vec();
        tampered[10] ^= 0x01;
        let invalid = env
            .send(multipart(
                &viewer,
                &action,
                &[
                    ("bundle", "b.json", &bundle),
                    ("artifact", "<i>sbom</i>", &tampered),
                ],
            ))
            .await;
        assert_eq!(
            invalid.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            invalid.body
        );
        invalid.assert_secure();
        assert!(invalid.body.contains("<strong>INVALID</strong>"));
        assert!(invalid.body.contains("Why: "), "{}", invalid.body);
        assert!(invalid.body.contains("&#60;i&#62;sbom&#60;/i&#62;"));
        assert!(!invalid.body.contains("<strong>VALID</strong>"));

        let missing = env
            .send(multipart(
                &viewer,
                &action,
                &[("bundle", "b.json", &bundle)],
            ))
            .await;
        assert_eq!(missing.status, StatusCode::BAD_REQUEST);
        assert!(missing.body.contains("Both files are needed"));
        let forged = env
            .send(multipart(
                &viewer,
                VERIFY,
                &[("bundle", "b.json", &bundle), ("artifact", "a", SBOM)],
            ))
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
    }
}
