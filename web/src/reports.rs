//! Reports over HTTP: `POST /api/reports {imageDigest, policyRevision?, evaluatedAt?}` judges a
//! scanned image's stored CycloneDX SBOM against the current feed generation and a policy, stores
//! the canonical report JSON in the blob store with a catalog row, and answers `{reportId}`;
//! `GET /api/reports` lists, `GET /api/reports/{id}` returns the stored bytes. Policies are
//! uploaded as revisions: `POST /api/policies` (YAML body), `GET /api/policies[/{revision}]`.
//! The report id is derived from the report's digest, so the same inputs give the same id and
//! byte-identical bytes (`docs/report.md`).
//!
//! The console's findings and policy pages go through the same functions ([`evaluate_image`],
//! [`create_report`], [`create_policy_revision`], [`policy_revision`]), so a report made from
//! the console and one made over the API are the same report, and a policy saved in the editor
//! is the same revision the API would store.

use axum::extract::{Path, Query, State};
use axum::http::{Extensions, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use stella_authority::Scope;
use stella_core::{Digest, FixedClock};
use stella_decide::{Policy, PolicyError, Report, SbomLimits, Snapshot, Subject};
use stella_store::rusqlite::{OptionalExtension, params};

use crate::auth::{AuditContext, RouteTable, audit};
use crate::{AppState, Caller};

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .scoped(
            Method::POST,
            "/api/reports",
            Scope::ScannerScan,
            post_report,
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
            post_policy,
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

/// A store or a stored input is broken; the text names what (a missing blob, a bad row).
#[derive(Debug)]
pub(crate) struct Broken(pub String);

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn broken(e: impl std::fmt::Display) -> Broken {
    Broken(e.to_string())
}

/// Why a report could not be made. Each caller says it in its own words: the API names its
/// routes, the console its pages.
#[derive(Debug)]
pub(crate) enum ReportProblem {
    /// No CycloneDX SBOM is stored for the image: it was never scanned.
    NotScanned(Digest),
    /// No kit was ever imported: there are no advisories to judge against.
    NoAdvisories,
    /// The asked-for policy revision does not exist.
    NoRevision(i64),
    Broken(Broken),
}

impl From<Broken> for ReportProblem {
    fn from(b: Broken) -> Self {
        Self::Broken(b)
    }
}

impl From<ReportProblem> for ApiError {
    fn from(problem: ReportProblem) -> Self {
        match problem {
            ReportProblem::NotScanned(digest) => error(
                StatusCode::NOT_FOUND,
                format!("no SBOM for {digest}: scan the image first (POST /api/scans)"),
            ),
            ReportProblem::NoAdvisories => error(
                StatusCode::CONFLICT,
                "no advisories loaded: import an offline kit first (POST /api/kits)",
            ),
            ReportProblem::NoRevision(n) => error(
                StatusCode::NOT_FOUND,
                format!("no policy revision {n}: upload one with POST /api/policies"),
            ),
            ReportProblem::Broken(b) => internal(b),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReportRequest {
    image_digest: String,
    policy_revision: Option<i64>,
    /// RFC 3339; the evaluation time (waivers are judged against it). Default: now.
    evaluated_at: Option<String>,
}

/// A report judged for an image and not yet stored.
pub(crate) struct Evaluated {
    pub image: Digest,
    pub report: Report,
    /// The policy revision it was judged by; `None` for the default policy.
    pub revision: Option<i64>,
}

/// What a stored report was computed from, for its catalog row and its signature.
pub(crate) struct Stored {
    pub id: String,
    pub verdict: &'static str,
    pub report_digest: String,
    image: Digest,
    report_blob: Digest,
    policy_digest: String,
    report_json: Vec<u8>,
}

async fn post_report(
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
    let Ok(image) = request.image_digest.parse::<Digest>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "imageDigest is sha256:<64 hex> (the image id POST /api/scans reports)",
        )
        .into_response();
    };
    let at = match &request.evaluated_at {
        None => state.clock().now_unix(),
        Some(text) => {
            match time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .ok()
                .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
            {
                Some(at) => at,
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("evaluatedAt {text:?} is not an RFC 3339 time after 1970"),
                    )
                    .into_response();
                }
            }
        }
    };
    let worker = state.clone();
    let made = tokio::task::spawn_blocking(move || {
        create_report(
            &worker,
            &image,
            request.policy_revision,
            at,
            &caller.subject,
            &ctx,
        )
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
        Ok(Err(problem)) => ApiError::from(problem).into_response(),
        Err(e) => internal(e).into_response(),
    }
}

/// Judges, stores and signs a report of `image` under policy `revision` (the newest when `None`,
/// the default policy when none is stored) as of `at`: what `POST /api/reports` and the
/// console's "evaluate and store" both do. Blocking; the signature part says why it is missing
/// when the appliance cannot sign, without failing the report.
pub(crate) fn create_report(
    state: &AppState,
    image: &Digest,
    revision: Option<i64>,
    at: u64,
    actor: &str,
    ctx: &AuditContext,
) -> Result<(Stored, serde_json::Value), ReportProblem> {
    let evaluated = evaluate_image(state, image, revision, at)?;
    let stored = store_report(state, &evaluated, actor, ctx)?;
    let attestation = sign_report(state, &stored, actor, ctx);
    Ok((stored, attestation))
}

/// Judges scanned image `image_digest` against the newest policy as of now, stores the report
/// and signs it when the appliance can, exactly as `POST /api/reports` does, in this thread;
/// answers that endpoint's JSON with the report's counts. For `stella serve --demo`.
pub(crate) fn report_now(
    state: &AppState,
    image: &Digest,
    actor: &str,
) -> Result<serde_json::Value, String> {
    let ctx = AuditContext {
        request_id: None,
        source: "in-process".to_owned(),
    };
    let at = state.clock().now_unix();
    let (stored, attestation) = create_report(state, image, None, at, actor, &ctx)
        .map_err(|problem| ApiError::from(problem).1)?;
    let report: serde_json::Value =
        serde_json::from_slice(&stored.report_json).map_err(|e| e.to_string())?;
    Ok(json!({
        "reportId": stored.id,
        "verdict": stored.verdict,
        "reportDigest": stored.report_digest,
        "counts": report["counts"],
        "attestation": attestation,
    }))
}

/// The policy of `revision`, or the newest revision, or the default policy when none is stored.
pub(crate) fn load_policy(
    state: &AppState,
    revision: Option<i64>,
) -> Result<(Policy, Option<i64>), ReportProblem> {
    let Some(row) = policy_revision(state, revision)? else {
        if let Some(n) = revision {
            return Err(ReportProblem::NoRevision(n));
        }
        return Ok((Policy::default_policy().map_err(broken)?, None));
    };
    let bytes = policy_yaml(state, &row)?;
    let policy = Policy::parse(&format!("revision {}", row.revision), &bytes).map_err(broken)?;
    Ok((policy, Some(row.revision)))
}

/// Judges `image`'s stored SBOM against the current feed generation and the policy of
/// `revision` (see [`load_policy`]) as of `at`. Stores nothing. Blocking.
pub(crate) fn evaluate_image(
    state: &AppState,
    image: &Digest,
    revision: Option<i64>,
    at: u64,
) -> Result<Evaluated, ReportProblem> {
    let (policy, revision) = load_policy(state, revision)?;
    let stores = state.stores();
    let reference: Option<Option<String>> = stores
        .catalog
        .connection()
        .query_row(
            "SELECT i.reference FROM artifacts a JOIN images i ON i.digest = a.image_digest
             WHERE a.image_digest = ?1 AND a.kind = 'sbom' AND a.format = 'cdx-json'",
            [image.to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(broken)?;
    let Some(reference) = reference else {
        return Err(ReportProblem::NotScanned(*image));
    };
    let image_text = image.to_string();
    let sbom = stores
        .artifact(&image_text, "sbom", "cdx-json")
        .map_err(broken)?
        .ok_or_else(|| broken(format!("the SBOM blob of {image} is missing")))?;
    let feeds = state.feeds();
    let (Some(generation), Some((kit_id, sequence))) = (
        feeds.current(),
        feeds.snapshot(&stores.catalog).map_err(broken)?,
    ) else {
        return Err(ReportProblem::NoAdvisories);
    };
    let mut input =
        stella_decide::components_from_cyclonedx(&sbom, &SbomLimits::default()).map_err(broken)?;
    // What the entrypoint runs (usedByEntrypoint) comes from the BOM-Index the scan stored
    // beside the SBOM (docs/bom-index.md): one bitmap lookup per component; without one (a scan
    // from before the index), from the usage-view SBOM.
    if let Some(bytes) = stores
        .artifact(&image_text, "bom-index", stella_scanner::bomindex::FORMAT)
        .map_err(broken)?
    {
        let index = stella_scanner::bomindex::read(&bytes).map_err(broken)?;
        input.mark_used_where(|purl| index.used_by_entrypoint(purl));
    } else if let Some(usage) = stores
        .artifact(&image_text, "usage-sbom", "cdx-json")
        .map_err(broken)?
    {
        input
            .mark_used_from_cyclonedx(&usage, &SbomLimits::default())
            .map_err(broken)?;
    }
    let subject = Subject {
        image: Some(reference.unwrap_or_else(|| image_text.clone())),
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
        &FixedClock(at),
        &Snapshot { kit_id, sequence },
    )
    .map_err(broken)?;
    Ok(Evaluated {
        image: *image,
        report,
        revision,
    })
}

/// Verdicts judged for the lists, by (image, SBOM, kit and sequence, policy digest): the same
/// inputs give the same verdict, so an entry never goes stale, and a new kit or policy misses.
type VerdictKey = (String, String, String, u64, String);
static LIVE_VERDICTS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<VerdictKey, &'static str>>,
> = std::sync::LazyLock::new(Default::default);

/// The most verdicts kept; the cache starts again when full.
const LIVE_VERDICTS_KEPT: usize = 4096;

/// The verdict (`PASS`/`FAIL`) scanned image `image` gets now under the newest policy and the
/// current kit — what its findings page shows — for the lists that show a scan's verdict before
/// a report is stored. Judged once per (image, SBOM, kit, policy) and kept in memory; stores
/// nothing. `None` without a kit or a stored SBOM, or when judging fails. Blocking.
pub(crate) fn live_verdict(state: &AppState, image: &str) -> Option<&'static str> {
    let image: Digest = image.parse().ok()?;
    let stores = state.stores();
    let (kit_id, sequence) = state.feeds().snapshot(&stores.catalog).ok()??;
    let (policy, _) = load_policy(state, None).ok()?;
    let sbom: String = stores
        .catalog
        .connection()
        .query_row(
            "SELECT digest FROM artifacts WHERE image_digest = ?1 AND kind = 'sbom' \
             AND format = 'cdx-json'",
            [image.to_string()],
            |r| r.get(0),
        )
        .optional()
        .ok()??;
    let key = (
        image.to_string(),
        sbom,
        kit_id,
        sequence,
        policy.digest().ok()?,
    );
    if let Some(verdict) = LIVE_VERDICTS.lock().ok()?.get(&key) {
        return Some(verdict);
    }
    let evaluated = evaluate_image(state, &image, None, state.clock().now_unix()).ok()?;
    let verdict = verdict_text(evaluated.report.verdict);
    let mut cache = LIVE_VERDICTS.lock().ok()?;
    if cache.len() >= LIVE_VERDICTS_KEPT {
        cache.clear();
    }
    cache.insert(key, verdict);
    Some(verdict)
}

/// Stores an evaluated report's canonical JSON and its catalog row (once: the id is derived
/// from the bytes) and audits `report.create` when it is new.
pub(crate) fn store_report(
    state: &AppState,
    evaluated: &Evaluated,
    actor: &str,
    ctx: &AuditContext,
) -> Result<Stored, ReportProblem> {
    let report = &evaluated.report;
    let stores = state.stores();
    let canonical = report.to_canonical_json().map_err(broken)?;
    let report_blob = stores.blobs.put(canonical.as_bytes()).map_err(broken)?;
    let report_digest = report_blob.to_string();
    // The id is a function of the report's bytes: same inputs, same report, same id.
    let id = format!("report-{}", &report_blob.hex()[..32]);
    let verdict = verdict_text(report.verdict);
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
                evaluated.image.to_string(),
                verdict,
                report.policy.digest,
                report_digest,
                now,
                report.subject.sbom_digest,
                report.advisories.kit_id,
                report.advisories.sequence as i64,
                report.policy.name,
                evaluated.revision,
                report.counts.findings as i64,
                report.evaluated_at,
            ],
        )
        .map_err(broken)?;
    if inserted == 1 {
        audit(
            state,
            ctx,
            actor,
            "report.create",
            &evaluated.image.to_string(),
            json!({ "reportId": id, "verdict": verdict, "policyDigest": report.policy.digest }),
        );
    }
    Ok(Stored {
        id,
        verdict,
        report_digest,
        image: evaluated.image,
        report_blob,
        policy_digest: report.policy.digest.clone(),
        report_json: canonical.into_bytes(),
    })
}

/// `PASS` or `FAIL`, as reports and their catalog rows write it.
pub(crate) fn verdict_text(verdict: stella_decide::Verdict) -> &'static str {
    match verdict {
        stella_decide::Verdict::Pass => "PASS",
        stella_decide::Verdict::Fail => "FAIL",
    }
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

/// A stored report's catalog row.
#[derive(Debug, Clone)]
pub(crate) struct ReportRow {
    pub id: String,
    pub image_digest: String,
    pub verdict: String,
    pub policy_name: Option<String>,
    pub policy_digest: String,
    pub policy_revision: Option<i64>,
    pub report_digest: String,
    pub sbom_digest: Option<String>,
    pub kit_id: Option<String>,
    pub sequence: Option<i64>,
    pub findings: Option<i64>,
    pub evaluated_at: Option<String>,
    pub created_at: String,
}

/// Stored reports, newest first, of one image or of all.
pub(crate) fn report_rows(
    state: &AppState,
    image_digest: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<Vec<ReportRow>, Broken> {
    let conn = state.stores().catalog.connection();
    let mut statement = conn
        .prepare(
            "SELECT id, image_digest, verdict, policy_name, policy_digest, policy_revision,
                    report_digest, sbom_digest, kit_id, sequence, findings, evaluated_at, created_at
             FROM reports WHERE (?1 IS NULL OR image_digest = ?1)
             ORDER BY created_at DESC, id LIMIT ?2 OFFSET ?3",
        )
        .map_err(broken)?;
    let rows = statement
        .query_map(
            params![image_digest, i64::from(limit), i64::from(offset)],
            |r| {
                Ok(ReportRow {
                    id: r.get(0)?,
                    image_digest: r.get(1)?,
                    verdict: r.get(2)?,
                    policy_name: r.get(3)?,
                    policy_digest: r.get(4)?,
                    policy_revision: r.get(5)?,
                    report_digest: r.get(6)?,
                    sbom_digest: r.get(7)?,
                    kit_id: r.get(8)?,
                    sequence: r.get(9)?,
                    findings: r.get(10)?,
                    evaluated_at: r.get(11)?,
                    created_at: r.get(12)?,
                })
            },
        )
        .map_err(broken)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(broken)
}

async fn list_reports(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Response {
    let rows = report_rows(
        &state,
        query.image_digest.as_deref(),
        query.limit.min(500),
        query.offset,
    );
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return internal(e).into_response(),
    };
    let reports: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "url": format!("/api/reports/{}", r.id),
                "reportId": r.id,
                "imageDigest": r.image_digest,
                "verdict": r.verdict,
                "policy": {
                    "name": r.policy_name,
                    "digest": r.policy_digest,
                    "revision": r.policy_revision,
                },
                "reportDigest": r.report_digest,
                "sbomDigest": r.sbom_digest,
                "advisories": { "kitId": r.kit_id, "sequence": r.sequence },
                "findings": r.findings,
                "evaluatedAt": r.evaluated_at,
                "createdAt": r.created_at,
            })
        })
        .collect();
    Json(json!({ "reports": reports })).into_response()
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

/// One stored policy revision's catalog row; its YAML is in the blob store ([`policy_yaml`]).
#[derive(Debug, Clone)]
pub(crate) struct PolicyRevision {
    pub revision: i64,
    pub name: String,
    pub digest: String,
    blob: String,
    /// RFC 3339.
    pub created_at: String,
    pub created_by: String,
}

const REVISION_COLUMNS: &str = "revision, name, digest, blob, created_at, created_by";

fn revision_row(
    r: &stella_store::rusqlite::Row<'_>,
) -> stella_store::rusqlite::Result<PolicyRevision> {
    Ok(PolicyRevision {
        revision: r.get(0)?,
        name: r.get(1)?,
        digest: r.get(2)?,
        blob: r.get(3)?,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
    })
}

/// The row of policy `revision`, or of the newest revision when `None`; `None` when there is
/// no such revision (or none at all: the default policy applies).
pub(crate) fn policy_revision(
    state: &AppState,
    revision: Option<i64>,
) -> Result<Option<PolicyRevision>, Broken> {
    let conn = state.stores().catalog.connection();
    let found = match revision {
        Some(n) => conn.query_row(
            &format!("SELECT {REVISION_COLUMNS} FROM policy_revisions WHERE revision = ?1"),
            [n],
            revision_row,
        ),
        None => conn.query_row(
            &format!(
                "SELECT {REVISION_COLUMNS} FROM policy_revisions ORDER BY revision DESC LIMIT 1"
            ),
            [],
            revision_row,
        ),
    };
    found.optional().map_err(broken)
}

/// How many policy revisions are stored, and `limit` of them from `offset`, newest first.
pub(crate) fn policy_revisions(
    state: &AppState,
    limit: usize,
    offset: usize,
) -> Result<(usize, Vec<PolicyRevision>), Broken> {
    policy_revisions_by(state, RevisionOrder::Revision, true, limit, offset)
}

/// What the revision history can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RevisionOrder {
    Revision,
    Name,
    Author,
    Saved,
}

/// [`policy_revisions`] ordered by `order` (ties by revision, in the same direction).
pub(crate) fn policy_revisions_by(
    state: &AppState,
    order: RevisionOrder,
    descending: bool,
    limit: usize,
    offset: usize,
) -> Result<(usize, Vec<PolicyRevision>), Broken> {
    let column = match order {
        RevisionOrder::Revision => "revision",
        RevisionOrder::Name => "name",
        RevisionOrder::Author => "created_by",
        RevisionOrder::Saved => "created_at",
    };
    let direction = if descending { "DESC" } else { "ASC" };
    let conn = state.stores().catalog.connection();
    let total: i64 = conn
        .query_row("SELECT count(*) FROM policy_revisions", [], |r| r.get(0))
        .map_err(broken)?;
    let mut statement = conn
        .prepare(&format!(
            "SELECT {REVISION_COLUMNS} FROM policy_revisions
             ORDER BY {column} {direction}, revision {direction} LIMIT ?1 OFFSET ?2"
        ))
        .map_err(broken)?;
    let rows = statement
        .query_map(params![limit as i64, offset as i64], revision_row)
        .map_err(broken)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(broken)?;
    Ok((usize::try_from(total).unwrap_or(0), rows))
}

/// A revision's YAML, byte for byte as it was saved.
pub(crate) fn policy_yaml(state: &AppState, row: &PolicyRevision) -> Result<Vec<u8>, Broken> {
    let blob: Digest = row.blob.parse().map_err(|_| {
        broken(format!(
            "policy revision {}: malformed blob digest",
            row.revision
        ))
    })?;
    state
        .stores()
        .blobs
        .get(&blob)
        .map_err(broken)?
        .ok_or_else(|| {
            broken(format!(
                "policy revision {}: blob {blob} is missing",
                row.revision
            ))
        })
}

/// Why a policy was not stored.
#[derive(Debug)]
pub(crate) enum PolicyProblem {
    /// It is not a valid policy; the error carries line and column when the parser knows them.
    Invalid(PolicyError),
    Broken(Broken),
}

/// Parses `yaml` as a policy and, when it is valid, stores it as the next revision (the YAML
/// byte for byte, the digest of its canonical form) and audits `policy.create`. An invalid
/// policy stores nothing. What `POST /api/policies` and the console's editor both do.
pub(crate) fn create_policy_revision(
    state: &AppState,
    yaml: &[u8],
    actor: &str,
    ctx: &AuditContext,
) -> Result<PolicyRevision, PolicyProblem> {
    let policy = Policy::parse("(upload)", yaml).map_err(PolicyProblem::Invalid)?;
    let fault = |e: &dyn std::fmt::Display| PolicyProblem::Broken(broken(e));
    let digest = policy.digest().map_err(|e| fault(&e))?;
    let blob = state.stores().blobs.put(yaml).map_err(|e| fault(&e))?;
    let created_at = stella_core::rfc3339(state.clock().now_unix());
    let revision = {
        let conn = state.stores().catalog.connection();
        conn.execute(
            "INSERT INTO policy_revisions (name, digest, blob, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![policy.name, digest, blob.to_string(), created_at, actor],
        )
        .map_err(|e| fault(&e))?;
        conn.last_insert_rowid()
    };
    audit(
        state,
        ctx,
        actor,
        "policy.create",
        &format!("revision {revision}"),
        json!({ "revision": revision, "name": policy.name, "digest": digest }),
    );
    Ok(PolicyRevision {
        revision,
        name: policy.name,
        digest,
        blob: blob.to_string(),
        created_at,
        created_by: actor.to_owned(),
    })
}

async fn post_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    extensions: Extensions,
    body: axum::body::Bytes,
) -> Response {
    let ctx = AuditContext::from_parts(&extensions);
    match create_policy_revision(&state, &body, &caller.subject, &ctx) {
        Ok(stored) => (
            StatusCode::CREATED,
            Json(json!({
                "revision": stored.revision,
                "name": stored.name,
                "digest": stored.digest,
            })),
        )
            .into_response(),
        // Line and column of the problem, for the editor.
        Err(PolicyProblem::Invalid(e)) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response()
        }
        Err(PolicyProblem::Broken(e)) => internal(e).into_response(),
    }
}

async fn list_policies(State(state): State<AppState>) -> Response {
    match policy_revisions(&state, 500, 0) {
        Ok((_, rows)) => {
            let policies: Vec<serde_json::Value> = rows
                .into_iter()
                .map(|r| {
                    json!({
                        "revision": r.revision,
                        "name": r.name,
                        "digest": r.digest,
                        "createdAt": r.created_at,
                        "createdBy": r.created_by,
                    })
                })
                .collect();
            Json(json!({ "policies": policies })).into_response()
        }
        Err(e) => internal(e).into_response(),
    }
}

async fn get_policy(State(state): State<AppState>, Path(revision): Path<i64>) -> Response {
    let row = match policy_revision(&state, Some(revision)) {
        Ok(Some(row)) => row,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no policy revision {revision}"),
            )
            .into_response();
        }
        Err(e) => return internal(e).into_response(),
    };
    match policy_yaml(&state, &row) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/yaml")], bytes).into_response(),
        Err(e) => internal(e).into_response(),
    }
}
