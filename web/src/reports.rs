//! Reports over HTTP: `POST /api/reports {imageDigest, policyRevision?, evaluatedAt?}` judges a
//! scanned image's stored CycloneDX SBOM against the current feed generation and a policy, stores
//! the canonical report JSON in the blob store with a catalog row, and answers `{reportId}`;
//! `GET /api/reports` lists, `GET /api/reports/{id}` returns the stored bytes. Policies are
//! uploaded as revisions: `POST /api/policies` (YAML body), `GET /api/policies[/{revision}]`.
//! The report id is derived from the report's digest, so the same inputs give the same id and
//! byte-identical bytes (`docs/report.md`).

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use stella_authority::Scope;
use stella_core::{Clock, Digest, FixedClock};
use stella_decide::{Policy, SbomLimits, Snapshot, Subject};
use stella_store::rusqlite::{OptionalExtension, params};

use crate::auth::{AuditContext, RouteTable};
use crate::{AppState, Caller};

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .scoped(
            Method::POST,
            "/api/reports",
            Scope::ScannerScan,
            create_report,
        )
        .scoped(
            Method::GET,
            "/api/reports",
            Scope::ScannerRead,
            list_reports,
        )
        .scoped(
            Method::GET,
            "/api/reports/{id}",
            Scope::ScannerRead,
            get_report,
        )
        .scoped(
            Method::POST,
            "/api/policies",
            Scope::PolicyWrite,
            create_policy,
        )
        .scoped(
            Method::GET,
            "/api/policies",
            Scope::ScannerRead,
            list_policies,
        )
        .scoped(
            Method::GET,
            "/api/policies/{revision}",
            Scope::ScannerRead,
            get_policy,
        )
}

/// An API error: a status and a sentence saying what to do next.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReportRequest {
    image_digest: String,
    policy_revision: Option<i64>,
    /// RFC 3339; the evaluation time (waivers are judged against it). Default: now.
    evaluated_at: Option<String>,
}

/// What a report was computed from, for its catalog row.
struct Stored {
    id: String,
    verdict: &'static str,
    report_digest: String,
    image: Digest,
    report_blob: Digest,
    policy_digest: String,
    report_json: Vec<u8>,
}

async fn create_report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: axum::extract::Request,
) -> Response {
    let ctx = AuditContext::of(&request);
    let body = match axum::body::to_bytes(request.into_body(), 64 * 1024).await {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")).into_response(),
    };
    let request: ReportRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body: {e}; send {{\"imageDigest\": \"sha256:…\", \"policyRevision\": N}}"),
            )
            .into_response();
        }
    };
    let worker = state.clone();
    let made = tokio::task::spawn_blocking(move || {
        make_report(&worker, &request, &caller.subject).map(|stored| {
            let attestation = sign_report(&worker, &stored, &caller.subject, &ctx);
            (stored, attestation)
        })
    })
    .await;
    match made {
        Ok(Ok((stored, attestation))) => (
            StatusCode::CREATED,
            Json(json!({
                "reportId": stored.id,
                "verdict": stored.verdict,
                "reportDigest": stored.report_digest,
                "url": format!("/api/reports/{}", stored.id),
                "artifactId": attestation.get("artifactId"),
                "logIndex": attestation.get("logIndex"),
                "bundleUrl": attestation.get("bundleUrl"),
                "attestation": attestation,
            })),
        )
            .into_response(),
        Ok(Err(problem)) => problem.into_response(),
        Err(e) => internal(e).into_response(),
    }
}

/// The policy of `revision`, or the newest revision, or the default policy when none is stored.
fn load_policy(state: &AppState, revision: Option<i64>) -> Result<(Policy, Option<i64>), ApiError> {
    let row: Option<(i64, String)> = {
        let conn = state.stores().catalog.connection();
        let found = match revision {
            Some(n) => conn
                .query_row(
                    "SELECT revision, blob FROM policy_revisions WHERE revision = ?1",
                    [n],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
            None => conn
                .query_row(
                    "SELECT revision, blob FROM policy_revisions ORDER BY revision DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
        };
        found.map_err(internal)?
    };
    let Some((number, blob)) = row else {
        if let Some(n) = revision {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("no policy revision {n}: upload one with POST /api/policies"),
            ));
        }
        return Policy::default_policy()
            .map(|p| (p, None))
            .map_err(internal);
    };
    let blob: Digest = blob
        .parse()
        .map_err(|_| internal(format!("policy revision {number}: malformed blob digest")))?;
    let bytes = state
        .stores()
        .blobs
        .get(&blob)
        .map_err(internal)?
        .ok_or_else(|| internal(format!("policy revision {number}: blob {blob} is missing")))?;
    Policy::parse(&format!("revision {number}"), &bytes)
        .map(|p| (p, Some(number)))
        .map_err(internal)
}

fn make_report(state: &AppState, request: &ReportRequest, actor: &str) -> Result<Stored, ApiError> {
    let digest: Digest = request.image_digest.parse().map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "imageDigest is sha256:<64 hex> (the image id POST /api/scans reports)",
        )
    })?;
    let clock: Box<dyn Clock> = match &request.evaluated_at {
        None => Box::new(FixedClock(state.clock().now_unix())),
        Some(text) => {
            let at =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .ok()
                    .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
                    .ok_or_else(|| {
                        error(
                            StatusCode::BAD_REQUEST,
                            format!("evaluatedAt {text:?} is not an RFC 3339 time after 1970"),
                        )
                    })?;
            Box::new(FixedClock(at))
        }
    };
    let (policy, revision) = load_policy(state, request.policy_revision)?;
    let stores = state.stores();
    let row: Option<(String, Option<String>)> = stores
        .catalog
        .connection()
        .query_row(
            "SELECT a.digest, i.reference FROM artifacts a JOIN images i ON i.digest = a.image_digest
             WHERE a.image_digest = ?1 AND a.kind = 'sbom' AND a.format = 'cdx-json'",
            [digest.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(internal)?;
    let Some((blob, reference)) = row else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no SBOM for {digest}: scan the image first (POST /api/scans)"),
        ));
    };
    let blob: Digest = blob
        .parse()
        .map_err(|_| internal("the catalog holds a malformed SBOM digest"))?;
    let sbom = stores
        .blobs
        .get(&blob)
        .map_err(internal)?
        .ok_or_else(|| internal(format!("SBOM blob {blob} is missing")))?;
    let feeds = state.feeds();
    let (Some(generation), Some((kit_id, sequence))) = (
        feeds.current(),
        feeds.snapshot(&stores.catalog).map_err(internal)?,
    ) else {
        return Err(error(
            StatusCode::CONFLICT,
            "no advisories loaded: import an offline kit first (POST /api/kits)",
        ));
    };
    let mut input = stella_decide::components_from_cyclonedx(&sbom, &SbomLimits::default())
        .map_err(internal)?;
    // What the entrypoint runs (usedByEntrypoint) comes from the BOM-Index the scan stored
    // beside the SBOM (docs/bom-index.md): one bitmap lookup per component; without one (a scan
    // from before the index), from the usage-view SBOM.
    let image = digest.to_string();
    if let Some(bytes) = stores
        .artifact(&image, "bom-index", stella_scanner::bomindex::FORMAT)
        .map_err(internal)?
    {
        let index = stella_scanner::bomindex::read(&bytes).map_err(internal)?;
        input.mark_used_where(|purl| index.used_by_entrypoint(purl));
    } else if let Some(usage) = stores
        .artifact(&image, "usage-sbom", "cdx-json")
        .map_err(internal)?
    {
        input
            .mark_used_from_cyclonedx(&usage, &SbomLimits::default())
            .map_err(internal)?;
    }
    let subject = Subject {
        image: Some(reference.unwrap_or_else(|| digest.to_string())),
        image_digest: input.image_digest.clone(),
        sbom_digest: input.sbom_digest.clone(),
        ..Subject::default()
    };
    let report = stella_decide::evaluate(
        &subject,
        &input.components,
        generation.as_ref(),
        &[],
        &policy,
        clock.as_ref(),
        &Snapshot { kit_id, sequence },
    )
    .map_err(internal)?;
    let canonical = report.to_canonical_json().map_err(internal)?;
    let report_blob = stores.blobs.put(canonical.as_bytes()).map_err(internal)?;
    let report_digest = report_blob.to_string();
    // The id is a function of the report's bytes: same inputs, same report, same id.
    let id = format!("report-{}", &report_blob.hex()[..32]);
    let verdict = match report.verdict {
        stella_decide::Verdict::Pass => "PASS",
        stella_decide::Verdict::Fail => "FAIL",
    };
    let now = stella_core::rfc3339(state.clock().now_unix());
    let inserted = stores
        .catalog
        .connection()
        .execute(
            "INSERT INTO reports (id, image_digest, verdict, policy_digest, report_digest, created_at,
                                  sbom_digest, kit_id, sequence, policy_name, policy_revision,
                                  findings, evaluated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (id) DO NOTHING",
            params![
                id,
                digest.to_string(),
                verdict,
                report.policy.digest,
                report_digest,
                now,
                report.subject.sbom_digest,
                report.advisories.kit_id,
                report.advisories.sequence as i64,
                report.policy.name,
                revision,
                report.counts.findings as i64,
                report.evaluated_at,
            ],
        )
        .map_err(internal)?;
    if inserted == 1 {
        let event = stella_store::AuditEvent {
            at: state.clock().now_unix(),
            actor: actor.to_owned(),
            action: "report.create".into(),
            target: digest.to_string(),
            detail:
                json!({ "reportId": id, "verdict": verdict, "policyDigest": report.policy.digest })
                    .to_string(),
            request_id: None,
        };
        if let Err(e) = stores.catalog.audit(&event) {
            tracing::warn!(error = %e, "cannot audit the report");
        }
    }
    Ok(Stored {
        id,
        verdict,
        report_digest,
        image: digest,
        report_blob,
        policy_digest: report.policy.digest.clone(),
        report_json: canonical.into_bytes(),
    })
}

/// Signs and logs a stored report as a policy-report attestation (seed §8) when the appliance
/// can sign; otherwise says why (community mode, no HSM) without failing the report.
fn sign_report(
    state: &AppState,
    stored: &Stored,
    actor: &str,
    ctx: &AuditContext,
) -> serde_json::Value {
    let Some(service) = state.signing().cloned() else {
        return json!({ "signed": false, "reason": "no-hsm",
                       "message": "no [hsm] is configured: the report is not signed" });
    };
    if service.attestor().is_none() {
        return json!({ "signed": false, "reason": "signer-unavailable",
                       "message": "the HSM lacks the appliance keys: run `stella hsm init`" });
    }
    let build = |entitled: &stella_signer::Entitled| {
        let image = stella_signer::Sha256Digest::parse(&stored.image.to_string())?;
        let report: serde_json::Value = serde_json::from_slice(&stored.report_json)
            .map_err(|e| stella_signer::SignerError::Statement(e.to_string()))?;
        let predicate = stella_signer::PolicyReport {
            image_digest: image,
            stellaops_version: stella_core::VERSION.to_owned(),
            license_id: entitled.licence_id().to_owned(),
            customer_id: entitled.customer().to_owned(),
            plan: entitled.plan().to_owned(),
            policy_digest: stella_signer::Sha256Digest::parse(&stored.policy_digest)?,
            views: vec!["inventory".to_owned()],
            created: stella_signer::PolicyReport::format_created(time::OffsetDateTime::now_utc())?,
            report,
        };
        stella_signer::StatementBuilder::new(&stored.image.to_string(), image)
            .sbom_subject(REPORT_NAME, &stored.report_json)
            .build(stella_signer::Predicate::PolicyReport(Box::new(predicate)))
    };
    let input = crate::attest::ExportInput {
        image: &stored.image,
        format: "report-json",
        view: "inventory",
        name: REPORT_NAME,
        artifact: &stored.report_blob,
    };
    match crate::attest::sign_and_record(state, &service, &input, actor, ctx, build) {
        Ok(mut answer) => {
            answer["signed"] = true.into();
            answer
        }
        Err(response) => {
            let status = response.status().as_u16();
            json!({ "signed": false, "status": status,
                    "message": "the report was stored but not signed; see /api/signer/status" })
        }
    }
}

/// The file name a report is carried out under, beside `report.json.sigstore.json`.
const REPORT_NAME: &str = "report.json";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    image_digest: Option<String>,
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
}

fn default_limit() -> u32 {
    50
}

async fn list_reports(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Response {
    let conn = state.stores().catalog.connection();
    let rows = (|| -> Result<Vec<serde_json::Value>, stella_store::rusqlite::Error> {
        let mut statement = conn.prepare(
            "SELECT id, image_digest, verdict, policy_name, policy_digest, policy_revision,
                    report_digest, sbom_digest, kit_id, sequence, findings, evaluated_at, created_at
             FROM reports WHERE (?1 IS NULL OR image_digest = ?1)
             ORDER BY created_at DESC, id LIMIT ?2 OFFSET ?3",
        )?;
        let mapped = statement.query_map(
            params![
                query.image_digest,
                i64::from(query.limit.min(500)),
                i64::from(query.offset)
            ],
            |r| {
                Ok(json!({
                    "reportId": r.get::<_, String>(0)?,
                    "imageDigest": r.get::<_, String>(1)?,
                    "verdict": r.get::<_, String>(2)?,
                    "policy": {
                        "name": r.get::<_, Option<String>>(3)?,
                        "digest": r.get::<_, String>(4)?,
                        "revision": r.get::<_, Option<i64>>(5)?,
                    },
                    "reportDigest": r.get::<_, String>(6)?,
                    "sbomDigest": r.get::<_, Option<String>>(7)?,
                    "advisories": { "kitId": r.get::<_, Option<String>>(8)?, "sequence": r.get::<_, Option<i64>>(9)? },
                    "findings": r.get::<_, Option<i64>>(10)?,
                    "evaluatedAt": r.get::<_, Option<String>>(11)?,
                    "createdAt": r.get::<_, String>(12)?,
                    "url": format!("/api/reports/{}", r.get::<_, String>(0)?),
                }))
            },
        )?;
        mapped.collect()
    })();
    match rows {
        Ok(reports) => Json(json!({ "reports": reports })).into_response(),
        Err(e) => internal(e).into_response(),
    }
}

async fn get_report(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let row: Result<Option<String>, _> = state
        .stores()
        .catalog
        .connection()
        .query_row(
            "SELECT report_digest FROM reports WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )
        .optional();
    let blob = match row {
        Ok(Some(blob)) => blob,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no report {id}")).into_response(),
        Err(e) => return internal(e).into_response(),
    };
    let Ok(blob) = blob.parse::<Digest>() else {
        return internal("the catalog holds a malformed report digest").into_response();
    };
    match state.stores().blobs.get(&blob) {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(None) => internal(format!("report blob {blob} is missing")).into_response(),
        Err(e) => internal(e).into_response(),
    }
}

async fn create_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Response {
    let policy = match Policy::parse("(upload)", &body) {
        Ok(p) => p,
        // Line and column of the problem, for the editor.
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    };
    let digest = match policy.digest() {
        Ok(d) => d,
        Err(e) => return internal(e).into_response(),
    };
    let blob = match state.stores().blobs.put(&body) {
        Ok(b) => b,
        Err(e) => return internal(e).into_response(),
    };
    let now = stella_core::rfc3339(state.clock().now_unix());
    let conn = state.stores().catalog.connection();
    let inserted = conn.execute(
        "INSERT INTO policy_revisions (name, digest, blob, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![policy.name, digest, blob.to_string(), now, caller.subject],
    );
    match inserted {
        Ok(_) => (
            StatusCode::CREATED,
            Json(json!({
                "revision": conn.last_insert_rowid(),
                "name": policy.name,
                "digest": digest,
            })),
        )
            .into_response(),
        Err(e) => internal(e).into_response(),
    }
}

async fn list_policies(State(state): State<AppState>) -> Response {
    let conn = state.stores().catalog.connection();
    let rows = (|| -> Result<Vec<serde_json::Value>, stella_store::rusqlite::Error> {
        let mut statement = conn.prepare(
            "SELECT revision, name, digest, created_at, created_by FROM policy_revisions
             ORDER BY revision DESC LIMIT 500",
        )?;
        let mapped = statement.query_map([], |r| {
            Ok(json!({
                "revision": r.get::<_, i64>(0)?,
                "name": r.get::<_, String>(1)?,
                "digest": r.get::<_, String>(2)?,
                "createdAt": r.get::<_, String>(3)?,
                "createdBy": r.get::<_, String>(4)?,
            }))
        })?;
        mapped.collect()
    })();
    match rows {
        Ok(policies) => Json(json!({ "policies": policies })).into_response(),
        Err(e) => internal(e).into_response(),
    }
}

async fn get_policy(State(state): State<AppState>, Path(revision): Path<i64>) -> Response {
    let row: Result<Option<String>, _> = state
        .stores()
        .catalog
        .connection()
        .query_row(
            "SELECT blob FROM policy_revisions WHERE revision = ?1",
            [revision],
            |r| r.get(0),
        )
        .optional();
    let blob = match row {
        Ok(Some(blob)) => blob,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no policy revision {revision}"),
            )
            .into_response();
        }
        Err(e) => return internal(e).into_response(),
    };
    let Ok(blob) = blob.parse::<Digest>() else {
        return internal("the catalog holds a malformed policy digest").into_response();
    };
    match state.stores().blobs.get(&blob) {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, "application/yaml")], bytes).into_response(),
        Ok(None) => internal(format!("policy blob {blob} is missing")).into_response(),
        Err(e) => internal(e).into_response(),
    }
}
