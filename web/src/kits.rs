//! Offline kits over HTTP: `POST /api/kits` (multipart upload, field `kit`, or a raw body),
//! `GET /api/kits` (freshness per channel and the import audit trail) and
//! `GET /api/advisories?q=` (ranked search over the current generation); and the console's kit
//! page (`kits.html`: freshness, upload, paginated audit trail). The console imports in two
//! steps, both answered by `kits_report.html`: an upload is verified (audited, loading nothing)
//! and, if it passed, staged ([`staging`]) behind a "Load this kit" form; the load verifies the
//! staged bytes again and loads them. The freshness table is shared with the dashboard
//! (`kits_freshness.html`).

mod staging;

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Form, FromRequest, Multipart, Query, RawQuery, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stella_authority::Scope;
use stella_feeds::{ImportError, ImportOptions, ImportOutcome, Rejection};

use crate::auth::RouteTable;
use crate::console::view::{Column, PER_PAGE, Pager, Params, Sort, When, error_page};
use crate::console::{Chrome, render};
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
        .console(
            Method::GET,
            "/console/kits",
            Some(Scope::ScannerRead),
            kits_page,
        )
        .console(
            Method::POST,
            "/console/kits",
            Some(Scope::KitImport),
            kits_upload,
        )
        .console(Method::POST, LOAD_PATH, Some(Scope::KitImport), kits_load)
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

/// One file field of a multipart upload.
pub(crate) struct Upload {
    /// The file name the browser sent, if any.
    pub file_name: Option<String>,
    pub bytes: Bytes,
}

/// Whether `request` carries a multipart form.
fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

/// Reads every field of a multipart form (uploads are bounded by the router's body limit);
/// the error says what was wrong with the upload.
pub(crate) async fn read_upload(request: Request) -> Result<HashMap<String, Upload>, String> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| format!("the upload is not a form with files: {}", e.body_text()))?;
    let mut fields = HashMap::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| format!("malformed upload: {e}"))?
    {
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        let file_name = field.file_name().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| format!("the upload broke off: {e}"))?;
        fields.insert(name, Upload { file_name, bytes });
    }
    Ok(fields)
}

/// Reads the kit from a multipart field named `kit` (the console's form) or from the raw body.
async fn kit_bytes(request: Request) -> Result<(Bytes, String), Response> {
    if !is_multipart(&request) {
        let bytes = Bytes::from_request(request, &())
            .await
            .map_err(IntoResponse::into_response)?;
        return Ok((bytes, "upload".to_owned()));
    }
    let mut fields = read_upload(request)
        .await
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    let kit = fields.remove("kit").ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "the upload has no field named \"kit\"; send the kit file in a field named kit",
        )
    })?;
    Ok((
        kit.bytes,
        kit.file_name.unwrap_or_else(|| "upload".to_owned()),
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

/// What an import does with a kit that verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Load it.
    Load,
    /// Nothing: verify only, unaudited (`?dry_run=true`, `stella import --dry-run`).
    DryRun,
    /// Audit the verdict (and quarantine a refused kit) but load nothing: the console's upload.
    Verify,
}

/// Runs an import off the async workers.
async fn run_import(
    state: AppState,
    bytes: Bytes,
    origin: String,
    actor: &str,
    request_id: Option<String>,
    step: Step,
) -> Result<Result<ImportOutcome, Rejection>, String> {
    let actor = actor.to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let mut options =
            ImportOptions::from_config(&state.config().kits, state.stores().dir(), &actor, &origin)
                .map_err(ImportError::Feed)?;
        options.request_id = request_id;
        options.dry_run = step != Step::Load;
        options.audit_dry_run = step == Step::Verify;
        state.feeds().import(
            &state.stores().catalog,
            &bytes,
            &options,
            state.clock().as_ref(),
        )
    })
    .await;
    match result {
        Ok(Ok(outcome)) => Ok(Ok(outcome)),
        Ok(Err(ImportError::Rejected(rejection))) => Ok(Err(rejection)),
        Ok(Err(ImportError::Feed(e))) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Imports and answers in JSON: 201 loaded, 200 verified or already imported, 422 rejected.
pub(crate) async fn import_response(
    state: AppState,
    bytes: Bytes,
    origin: String,
    actor: &str,
    request_id: Option<String>,
    dry_run: bool,
) -> Response {
    let step = if dry_run { Step::DryRun } else { Step::Load };
    match run_import(state, bytes, origin, actor, request_id, step).await {
        Ok(Ok(outcome)) => {
            let status = match outcome {
                ImportOutcome::Loaded(_) => StatusCode::CREATED,
                _ => StatusCode::OK,
            };
            (status, Json(outcome)).into_response()
        }
        Ok(Err(rejection)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "outcome": "rejected", "reason": rejection.reason, "error": rejection.message, "quarantined": rejection.quarantined })),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// One channel's head kit as the console shows it.
pub(crate) struct ChannelRow {
    pub channel: String,
    pub kit_id: String,
    pub sequence: u64,
    /// When the head kit was built.
    pub built: When,
    /// When it expires (the raw text if it does not parse).
    pub expires: Option<When>,
    pub expires_text: String,
    /// Older than `[kits] stale_after_days`, or expired.
    pub stale: bool,
}

/// Feed freshness per channel, for the kit page and the dashboard (`kits_freshness.html`).
pub(crate) struct Freshness {
    pub channels: Vec<ChannelRow>,
    /// `[kits] stale_after_days`.
    pub stale_days: u64,
}

impl Freshness {
    /// Whether any channel is stale.
    pub(crate) fn any_stale(&self) -> bool {
        self.channels.iter().any(|c| c.stale)
    }
}

/// Feed freshness per channel: the age of each channel's newest kit against
/// `[kits] stale_after_days`.
pub(crate) fn freshness(state: &AppState) -> Result<Freshness, String> {
    let now = state.clock().now_unix();
    let stale_days = state.config().kits.stale_after_days;
    let channels = state
        .feeds()
        .freshness(
            &state.stores().catalog,
            now,
            stale_days.saturating_mul(86_400),
        )
        .map_err(|e| e.to_string())?;
    let rows = channels
        .into_iter()
        .map(|c| ChannelRow {
            built: When::parse(&c.created, now)
                .unwrap_or_else(|| When::new(now.saturating_sub(c.age_secs), now)),
            expires: When::parse(&c.expires, now),
            expires_text: c.expires,
            channel: c.channel,
            kit_id: c.kit_id,
            sequence: c.sequence,
            stale: c.stale,
        })
        .collect();
    Ok(Freshness {
        channels: rows,
        stale_days,
    })
}

const KITS_PATH: &str = "/console/kits";
/// Where a verification report's "Load this kit" form posts.
const LOAD_PATH: &str = "/console/kits/load";
/// The trail's sortable columns: key and label.
const IMPORT_COLUMNS: [(&str, &str); 6] = [
    ("at", "When"),
    ("actor", "Who"),
    ("kit", "Kit"),
    ("channel", "Channel"),
    ("sequence", "Sequence"),
    ("verdict", "Verdict"),
];

/// One attempt of the import audit trail.
struct ImportRow {
    at: Option<When>,
    at_text: String,
    actor: String,
    kit_id: String,
    channel: String,
    sequence: String,
    verdict: String,
    rejected: bool,
    detail: String,
}

/// `GET /console/kits`.
#[derive(Template)]
#[template(path = "kits.html")]
struct KitsPage {
    chrome: Chrome,
    freshness: Freshness,
    can_import: bool,
    imports: Vec<ImportRow>,
    columns: Vec<Column>,
    pager: Pager,
    max_mib: u64,
}

/// The console's kit page: freshness per channel, the upload form, the import audit trail
/// (newest first; `?sort=` by any column but the detail).
async fn kits_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("Offline kits", "kits");
    let params = Params::parse(query.as_deref());
    let now = state.clock().now_unix();
    let max_mib = state.config().kits.max_kit_bytes >> 20;
    let sort = Sort::new(&params, &IMPORT_COLUMNS, "-at");
    let columns = sort.columns(&params, KITS_PATH, &IMPORT_COLUMNS);
    let order = sort.order_by(
        &[
            ("at", "at"),
            ("actor", "actor"),
            ("kit", "kit_id"),
            ("channel", "channel"),
            ("sequence", "sequence"),
            ("verdict", "verdict"),
        ],
        "id",
    );
    let loaded = tokio::task::spawn_blocking(move || {
        let freshness = freshness(&state)?;
        let conn = state.stores().catalog.connection();
        let read = || -> stella_store::rusqlite::Result<(Pager, Vec<ImportRow>)> {
            let total: i64 =
                conn.query_row("SELECT count(*) FROM kit_imports", [], |row| row.get(0))?;
            let pager = Pager::new(&params, KITS_PATH, total.max(0) as usize, PER_PAGE);
            let range = pager.range();
            let mut stmt = conn.prepare(&format!(
                "SELECT at, actor, kit_id, channel, sequence, verdict, detail FROM kit_imports
                 ORDER BY {order} LIMIT ?1 OFFSET ?2"
            ))?;
            let rows = stmt
                .query_map(
                    stella_store::rusqlite::params![
                        (range.end - range.start) as i64,
                        range.start as i64
                    ],
                    |row| {
                        let at: String = row.get(0)?;
                        let verdict: String = row.get(5)?;
                        Ok(ImportRow {
                            at: When::parse(&at, now),
                            at_text: at,
                            actor: row.get(1)?,
                            kit_id: row
                                .get::<_, Option<String>>(2)?
                                .unwrap_or_else(|| "-".to_owned()),
                            channel: row
                                .get::<_, Option<String>>(3)?
                                .unwrap_or_else(|| "-".to_owned()),
                            sequence: row
                                .get::<_, Option<i64>>(4)?
                                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                            rejected: verdict.starts_with("rejected"),
                            verdict,
                            detail: row.get(6)?,
                        })
                    },
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((pager, rows))
        };
        let (pager, imports) = read().map_err(|e| e.to_string())?;
        Ok::<_, String>((freshness, pager, imports))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|inner| inner);
    let (freshness, pager, imports) = match loaded {
        Ok(found) => found,
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                chrome,
                format!("The feed store cannot be read: {e}."),
                "Check the daemon log and the data directory's disk; then reload this page.",
                "/",
            );
        }
    };
    render(
        StatusCode::OK,
        &KitsPage {
            can_import: chrome.can(Scope::KitImport),
            chrome,
            freshness,
            imports,
            columns,
            pager,
            max_mib,
        },
    )
}

/// What a verified kit carried, for the report page.
struct ReportView {
    kit_id: String,
    channel: String,
    sequence: u64,
    kind: &'static str,
    key_id: String,
    manifest_sha256: String,
    /// When the kit was built and when it expires, in UTC with their age (else as written).
    created: Option<When>,
    created_text: String,
    expires: Option<When>,
    expires_text: String,
    records: Vec<(String, u64)>,
    /// What the anti-rollback check found.
    rollback: &'static str,
    generation: String,
}

/// Why a kit was refused, for the report page.
struct RejectionView {
    reason: &'static str,
    message: String,
    quarantined: Option<String>,
}

/// `POST /console/kits` and `POST /console/kits/load`: the verification report of an upload
/// (with "Load this kit" when it verified), or the result of a load.
#[derive(Template)]
#[template(path = "kits_report.html")]
struct KitReportPage {
    chrome: Chrome,
    /// The uploaded file's name.
    origin: String,
    /// `Verified: ready to load`, `Loaded`, `Already imported: nothing to do` or `Rejected`.
    verdict: &'static str,
    report: Option<ReportView>,
    rejection: Option<RejectionView>,
    /// The staged id of an upload that verified: the page offers to load it.
    staged: Option<String>,
    /// How long a staged kit waits, in minutes.
    staged_minutes: u64,
    /// The page answers a load (else an upload).
    load: bool,
}

impl KitReportPage {
    /// The page of an import's `outcome`, and its status: 422 for a refusal.
    fn of(
        chrome: Chrome,
        origin: String,
        outcome: Result<ImportOutcome, Rejection>,
        load: bool,
        now: u64,
    ) -> (StatusCode, Self) {
        let (status, verdict, report, rejection) = match outcome {
            Ok(outcome) => {
                let (verdict, rollback, report) = match outcome {
                    ImportOutcome::Loaded(r) => ("Loaded", "passed again at load", r),
                    ImportOutcome::AlreadyImported(r) => (
                        "Already imported: nothing to do",
                        "not needed: this kit is the channel's loaded kit",
                        r,
                    ),
                    ImportOutcome::Verified(r) => (
                        "Verified: ready to load",
                        "passed: newer than the channel's loaded kit, or the channel's first",
                        r,
                    ),
                };
                let view = ReportView {
                    kit_id: report.kit_id,
                    channel: report.channel,
                    sequence: report.sequence,
                    kind: report.kind,
                    key_id: report.key_id,
                    manifest_sha256: report.manifest_sha256,
                    created: When::parse(&report.created, now),
                    created_text: report.created,
                    expires: When::parse(&report.expires, now),
                    expires_text: report.expires,
                    records: report.records.into_iter().collect(),
                    rollback,
                    generation: report
                        .generation
                        .map_or_else(|| "unchanged".to_owned(), |g| g.to_string()),
                };
                (StatusCode::OK, verdict, Some(view), None)
            }
            Err(rejection) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Rejected",
                None,
                Some(RejectionView {
                    reason: rejection.reason,
                    message: rejection.message,
                    quarantined: rejection.quarantined.map(|q| q.display().to_string()),
                }),
            ),
        };
        let page = Self {
            chrome,
            origin,
            verdict,
            report,
            rejection,
            staged: None,
            staged_minutes: staging::MAX_AGE_SECS / 60,
            load,
        };
        (status, page)
    }
}

/// The error page of an import that failed inside the appliance.
fn import_failed(chrome: Chrome, problem: String, kept: &str) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        chrome,
        format!("The import failed inside the appliance: {problem}."),
        format!("Nothing was loaded{kept}. Check the daemon log, then try again."),
        KITS_PATH,
    )
}

/// The console upload, step one: verify (audited, loading nothing); stage a kit that verified
/// and show its report with "Load this kit", or show why it was refused.
async fn kits_upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    chrome: Chrome,
    request: Request,
) -> Response {
    let chrome = chrome.page("Kit verification report", "kits");
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone());
    let again = "Choose the kit file again on the Offline kits page and retry.";
    let mut fields = match read_upload(request).await {
        Ok(fields) => fields,
        Err(problem) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                chrome,
                format!("The upload failed: {problem}."),
                again,
                KITS_PATH,
            );
        }
    };
    let Some(kit) = fields.remove("kit").filter(|kit| !kit.bytes.is_empty()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            chrome,
            "No kit file was chosen.",
            again,
            KITS_PATH,
        );
    };
    let origin = kit.file_name.unwrap_or_else(|| "upload".to_owned());
    let outcome = match run_import(
        state.clone(),
        kit.bytes.clone(),
        origin.clone(),
        &caller.subject,
        request_id,
        Step::Verify,
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(e) => return import_failed(chrome, e, ""),
    };
    let verified = matches!(outcome, Ok(ImportOutcome::Verified(_)));
    let (status, mut page) = KitReportPage::of(
        chrome,
        origin.clone(),
        outcome,
        false,
        state.clock().now_unix(),
    );
    if verified {
        let staged = staging::Staged {
            origin,
            actor: caller.subject.clone(),
            staged_at: state.clock().now_unix(),
        };
        let dir = staging::dir(state.stores().dir());
        let stored =
            tokio::task::spawn_blocking(move || staging::stage(&dir, &kit.bytes, &staged)).await;
        match stored {
            Ok(Ok(id)) => page.staged = Some(id.as_str().to_owned()),
            Ok(Err(e)) => return staging_failed(page.chrome, e.to_string()),
            Err(e) => return staging_failed(page.chrome, e.to_string()),
        }
    }
    render(status, &page)
}

fn staging_failed(chrome: Chrome, problem: String) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        chrome,
        format!("The kit verified but could not be staged for loading: {problem}."),
        "Nothing was loaded. Check the data directory's free space and the daemon log, then \
         upload the kit again.",
        KITS_PATH,
    )
}

/// The form of the report's "Load this kit" button.
#[derive(Debug, Deserialize)]
struct LoadForm {
    #[serde(default)]
    staged: String,
}

/// The console upload, step two: verify the staged kit again (never trusting the first check),
/// load it through the normal import, remove it, and show the result.
async fn kits_load(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    chrome: Chrome,
    request: Request,
) -> Response {
    let chrome = chrome.page("Kit load", "kits");
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone());
    let upload_again = "Upload the kit again on the Offline kits page; its verification report \
                        offers Load this kit.";
    let form: LoadForm = match Form::from_request(request, &state).await {
        Ok(Form(form)) => form,
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                chrome,
                format!("The load form could not be read: {e}."),
                upload_again,
                KITS_PATH,
            );
        }
    };
    let Some(id) = staging::StagedId::parse(&form.staged) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            chrome,
            format!(
                "\"{}\" is not a staged kit id (32 hex digits, from a verification report).",
                form.staged.chars().take(80).collect::<String>()
            ),
            upload_again,
            KITS_PATH,
        );
    };
    let dir = staging::dir(state.stores().dir());
    let now = state.clock().now_unix();
    let read = {
        let (dir, id) = (dir.clone(), id.clone());
        tokio::task::spawn_blocking(move || staging::read(&dir, &id, now)).await
    };
    let (bytes, staged) = match read {
        Ok(Ok(found)) => found,
        Ok(Err(staging::Missing::Gone)) => {
            return error_page(
                StatusCode::NOT_FOUND,
                chrome,
                format!(
                    "No kit is staged as {}: it was loaded already, or never uploaded here.",
                    id.as_str()
                ),
                upload_again,
                KITS_PATH,
            );
        }
        Ok(Err(staging::Missing::Expired)) => {
            return error_page(
                StatusCode::GONE,
                chrome,
                format!(
                    "The kit staged as {} expired: a verified upload waits {} minutes to be \
                     loaded.",
                    id.as_str(),
                    staging::MAX_AGE_SECS / 60
                ),
                upload_again,
                KITS_PATH,
            );
        }
        Ok(Err(staging::Missing::Io(e))) => return staging_unreadable(chrome, e.to_string()),
        Err(e) => return staging_unreadable(chrome, e.to_string()),
    };
    let now = state.clock().now_unix();
    let outcome = run_import(
        state,
        Bytes::from(bytes),
        staged.origin.clone(),
        &caller.subject,
        request_id,
        Step::Load,
    )
    .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => return import_failed(chrome, e, "; the staged kit is kept"),
    };
    // A verdict was reached (and audited): the staged copy has served.
    tokio::task::spawn_blocking(move || staging::remove(&dir, &id))
        .await
        .unwrap_or_else(|e| tracing::warn!(error = %e, "cannot remove a staged kit"));
    let (status, page) = KitReportPage::of(chrome, staged.origin, outcome, true, now);
    render(status, &page)
}

fn staging_unreadable(chrome: Chrome, problem: String) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        chrome,
        format!("The staged kit cannot be read: {problem}."),
        "Nothing was loaded. Check the data directory and the daemon log, then upload the kit \
         again.",
        KITS_PATH,
    )
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

#[cfg(test)]
pub(crate) mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use stella_store::rusqlite::params;

    use crate::console::testing::{CSRF, ConsoleEnv, Page, SignedKit, T0, sample_kit, signed_kit};

    /// A multipart POST of `files` (field, file name, bytes) to `path` with `cookie`.
    pub(crate) fn multipart(
        cookie: &str,
        path: &str,
        files: &[(&str, &str, &[u8])],
    ) -> Request<Body> {
        let boundary = "consoletestboundary7";
        let mut body = Vec::new();
        for (field, file_name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, "stella.test")
            .header(header::COOKIE, cookie)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap()
    }

    /// Makes `channel`'s head a kit built `age_days` ago.
    pub(crate) fn channel_head(env: &ConsoleEnv, channel: &str, age_days: u64) {
        let built = T0 - age_days * 86_400;
        env.state
            .stores()
            .catalog
            .connection()
            .execute(
                "INSERT INTO channel_heads (channel, kit_id, sequence, manifest_sha256, created,
                                            expires, imported_at, generation)
                 VALUES (?1, ?2, 3, 'ab', ?3, ?4, ?5, 1)",
                params![
                    channel,
                    format!("{channel}-kit-3"),
                    stella_core::rfc3339(built),
                    stella_core::rfc3339(built + 90 * 86_400),
                    built as i64
                ],
            )
            .unwrap();
    }

    fn import_record(env: &ConsoleEnv, verdict: &str, detail: &str) {
        import_by(env, ("opal", "osv", 1, verdict, 1), detail);
    }

    /// Records an import attempt by `actor` of kit `kit-of-ACTOR` on `channel` at `sequence`,
    /// `age_hours` ago.
    fn import_by(
        env: &ConsoleEnv,
        (actor, channel, sequence, verdict, age_hours): (&str, &str, u64, &str, u64),
        detail: &str,
    ) {
        env.state
            .stores()
            .catalog
            .connection()
            .execute(
                "INSERT INTO kit_imports (kit_id, channel, sequence, verdict, detail, actor, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    format!("kit-of-{actor}"),
                    channel,
                    sequence as i64,
                    verdict,
                    detail,
                    actor,
                    stella_core::rfc3339(T0 - age_hours * 3600)
                ],
            )
            .unwrap();
    }

    #[tokio::test]
    async fn kits_page_says_what_to_do_when_empty_and_hides_the_form_from_viewers() {
        let env = ConsoleEnv::new();
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/kits").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        assert!(
            page.body
                .contains("No kit imported yet — import one to see findings"),
            "{}",
            page.body
        );
        assert!(page.body.contains("No import attempted yet"));
        assert!(!page.body.contains("/console/kits?csrf="));
        assert!(page.body.contains("needs the operator or admin role"));

        let operator = env.sign_in("opal", "operator");
        let page = env.get(&operator, "/console/kits").await;
        assert!(
            page.body
                .contains(&format!("action=\"/console/kits?csrf={CSRF}\"")),
            "{}",
            page.body
        );
        assert!(page.body.contains("Upload and verify"));
        assert!(
            !page.body.contains("dry_run"),
            "verifying is the first step now"
        );
    }

    #[tokio::test]
    async fn kits_page_warns_of_stale_channels_and_escapes_the_paginated_trail() {
        let env = ConsoleEnv::new();
        channel_head(&env, "osv", 1);
        channel_head(&env, "nvd", 30);
        for _ in 0..55 {
            import_record(&env, "loaded", "{\"advisories\":3}");
        }
        import_record(
            &env,
            "rejected:signature",
            "<script>alert(1)</script> is not signed",
        );
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/kits").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("Stale feeds."), "{}", page.body);
        assert!(page.body.contains("STALE</span> built 30 d ago"));
        assert!(page.body.contains("fresh, built 1 d ago"));
        assert!(page.body.contains("stale after 7 days"));
        // Newest first: the rejection leads page 1.
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
        );
        assert!(!page.body.contains("<script>alert"));
        assert!(page.body.contains("Page 1 of 2"), "{}", page.body);
        let second = env.get(&viewer, "/console/kits?page=2").await;
        assert!(second.body.contains("51–56 of 56"), "{}", second.body);
        assert!(!second.body.contains("alert(1)"));
    }

    /// The names of `names` in the order they appear in `body`.
    pub(crate) fn order<'a>(body: &str, names: &[&'a str]) -> Vec<&'a str> {
        let mut found: Vec<(usize, &str)> = names
            .iter()
            .map(|n| (body.find(n).unwrap_or_else(|| panic!("{n} missing")), *n))
            .collect();
        found.sort();
        found.into_iter().map(|(_, n)| n).collect()
    }

    #[tokio::test]
    async fn kits_trail_sorts_by_each_column() {
        let env = ConsoleEnv::new();
        // Oldest first: opal's, then ada's rejection, then zed's.
        for attempt in [
            ("opal", "osv", 2, "loaded", 3),
            ("ada", "nvd", 5, "rejected:signature", 2),
            ("zed", "vendor", 3, "loaded", 1),
        ] {
            import_by(&env, attempt, "{}");
        }
        let viewer = env.sign_in("val", "viewer");
        let (opal, ada, zed) = ("kit-of-opal", "kit-of-ada", "kit-of-zed");
        let get = |query: &'static str| {
            let (env, viewer) = (&env, viewer.clone());
            async move {
                let page = env.get(&viewer, &format!("/console/kits{query}")).await;
                assert_eq!(page.status, StatusCode::OK, "{}", page.body);
                page.body
            }
        };
        assert!(get("").await.contains(
            r#"<th scope="col" aria-sort="descending"><a href="/console/kits?sort=at">When</a></th>"#
        ));
        assert!(get("?sort=actor").await.contains(
            r#"<th scope="col" aria-sort="ascending"><a href="/console/kits?sort=-actor">Who</a></th>"#
        ));
        for (query, expected) in [
            ("", [zed, ada, opal]),
            ("?sort=actor", [ada, opal, zed]),
            ("?sort=-sequence&page=1", [ada, zed, opal]),
            ("?sort=channel", [ada, opal, zed]),
            ("?sort=-verdict", [ada, zed, opal]),
            ("?sort=-kit", [zed, opal, ada]),
            // An unknown key (or an attempt at SQL) falls back to newest first.
            (
                "?sort=detail%3B%20DROP%20TABLE%20kit_imports",
                [zed, ada, opal],
            ),
        ] {
            assert_eq!(
                order(&get(query).await, &[opal, ada, zed]),
                expected,
                "{query}"
            );
        }
    }

    /// The staged id in a verification report's "Load this kit" form.
    pub(crate) fn staged_id(body: &str) -> String {
        body.split("name=\"staged\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no Load this kit form in {body}"))
            .to_owned()
    }

    /// Uploads `kit` as `cookie` (step one).
    pub(crate) async fn upload(env: &ConsoleEnv, cookie: &str, kit: &[u8]) -> Page {
        env.send(multipart(
            cookie,
            &format!("/console/kits?csrf={CSRF}"),
            &[("kit", "stable-1.tar.zst", kit)],
        ))
        .await
    }

    /// The kit-import trail's verdicts, newest first.
    fn verdicts(env: &ConsoleEnv) -> Vec<String> {
        env.state
            .feeds()
            .imports(&env.state.stores().catalog, 20)
            .unwrap()
            .into_iter()
            .map(|r| r.verdict)
            .collect()
    }

    /// The files in the staging area.
    fn staged_files(env: &ConsoleEnv) -> usize {
        std::fs::read_dir(env.state.stores().dir().join("staging")).map_or(0, |dir| dir.count())
    }

    fn kit_env() -> (ConsoleEnv, SignedKit, String) {
        let kit = sample_kit();
        let env = ConsoleEnv::trusting(&kit.public_key);
        let operator = env.sign_in("opal", "operator");
        (env, kit, operator)
    }

    #[tokio::test]
    async fn upload_verifies_and_stages_then_the_load_loads_and_both_are_audited() {
        let (env, kit, operator) = kit_env();
        let report = upload(&env, &operator, &kit.archive).await;
        assert_eq!(report.status, StatusCode::OK, "{}", report.body);
        report.assert_secure();
        for fact in [
            "<strong>Verified: ready to load</strong>: stable-1.tar.zst",
            "valid, by trusted key <code>",
            "stable / 1",
            "Anti-rollback</dt><dd>passed",
            "advisories=",
            "Feed generation now</dt><dd>unchanged",
            "Nothing is loaded yet",
            // Dates in UTC with their age.
            "<dt>Built</dt><dd><time datetime=\"",
            "<dt>Expires</dt><dd><time datetime=\"",
        ] {
            assert!(report.body.contains(fact), "{fact} in {}", report.body);
        }
        let form = report
            .body
            .split("<form method=\"post\" action=\"/console/kits/load\"")
            .nth(1)
            .and_then(|rest| rest.split("</form>").next())
            .unwrap_or_else(|| panic!("no load form in {}", report.body));
        assert!(
            form.contains(&format!("name=\"csrf\" value=\"{CSRF}\"")),
            "{form}"
        );
        assert!(form.contains("Load this kit</button>"), "{form}");
        assert!(report.body.contains(&kit.kit_id));
        // Verified and audited, nothing loaded; the bytes wait in the staging area.
        assert!(env.state.feeds().current().is_none());
        assert_eq!(verdicts(&env), ["verified"]);
        assert_eq!(staged_files(&env), 2);
        let id = staged_id(&report.body);

        // A viewer cannot load it.
        let viewer = env.sign_in("val", "viewer");
        let denied = env
            .post(&viewer, "/console/kits/load", &[("staged", &id)])
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
        assert!(env.state.feeds().current().is_none());
        assert_eq!(staged_files(&env), 2);

        let loaded = env
            .post(&operator, "/console/kits/load", &[("staged", &id)])
            .await;
        assert_eq!(loaded.status, StatusCode::OK, "{}", loaded.body);
        loaded.assert_secure();
        for fact in [
            "<strong>Loaded</strong>: stable-1.tar.zst",
            "Records loaded</dt><dd>advisories=",
            "Feed generation now</dt><dd>1</dd>",
            "href=\"/console/audit?action=kit.import\"",
            "href=\"/console/advisories\"",
        ] {
            assert!(loaded.body.contains(fact), "{fact} in {}", loaded.body);
        }
        assert!(!loaded.body.contains("Load this kit"));
        assert_eq!(env.state.feeds().current().unwrap().number(), 1);
        assert_eq!(verdicts(&env), ["loaded", "verified"]);
        assert_eq!(
            env.state
                .stores()
                .catalog
                .audit_count("kit.import")
                .unwrap(),
            2
        );
        assert_eq!(staged_files(&env), 0);
        let trail = env.get(&viewer, "/console/kits").await;
        let shown = crate::console::testing::cells(&trail.body, "Import attempts", "<td", "</td>");
        assert!(shown.iter().any(|c| c.ends_with(">loaded")), "{shown:?}");
        assert!(shown.iter().any(|c| c.ends_with(">verified")), "{shown:?}");

        // The staged copy is gone: a second load says what to do.
        let again = env
            .post(&operator, "/console/kits/load", &[("staged", &id)])
            .await;
        assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
        assert!(again.body.contains("No kit is staged as"), "{}", again.body);
        assert!(again.body.contains("Upload the kit again"));
        // Uploading the loaded kit again: nothing to do, nothing staged.
        let same = upload(&env, &operator, &kit.archive).await;
        assert_eq!(same.status, StatusCode::OK, "{}", same.body);
        assert!(same.body.contains("Already imported: nothing to do"));
        assert!(!same.body.contains("Load this kit"));
        assert_eq!(staged_files(&env), 0);
        assert_eq!(verdicts(&env)[0], "already-imported");
    }

    #[tokio::test]
    async fn a_refused_upload_stages_nothing_and_offers_no_load() {
        let kit = sample_kit();
        let stranger = signed_kit(&Default::default());
        let env = ConsoleEnv::trusting(&stranger.public_key);
        let operator = env.sign_in("opal", "operator");
        let refused = upload(&env, &operator, &kit.archive).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        assert!(refused.body.contains("<strong>Rejected</strong>"));
        assert!(
            refused
                .body
                .contains("Nothing was loaded; the stores are unchanged.")
        );
        assert!(refused.body.contains("upload it again"));
        assert!(!refused.body.contains("Load this kit"));
        assert!(!refused.body.contains("/console/kits/load"));
        assert_eq!(staged_files(&env), 0);
        assert!(env.state.feeds().current().is_none());
        assert!(
            verdicts(&env)[0].starts_with("rejected:"),
            "{:?}",
            verdicts(&env)
        );
    }

    #[tokio::test]
    async fn the_load_verifies_again_and_refuses_a_tampered_staged_kit() {
        let (env, kit, operator) = kit_env();
        let report = upload(&env, &operator, &kit.archive).await;
        let id = staged_id(&report.body);
        let staged = env
            .state
            .stores()
            .dir()
            .join("staging")
            .join(format!("{id}.kit"));
        let mut bytes = std::fs::read(&staged).unwrap();
        let at = bytes.len() - 10;
        bytes[at] ^= 0x55;
        std::fs::write(&staged, bytes).unwrap();
        let refused = env
            .post(&operator, "/console/kits/load", &[("staged", &id)])
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains("<strong>Rejected</strong>"),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("The staged copy was removed."));
        assert!(env.state.feeds().current().is_none());
        let verdicts = verdicts(&env);
        assert!(verdicts[0].starts_with("rejected:"), "{verdicts:?}");
        assert_eq!(verdicts[1], "verified");
        assert_eq!(staged_files(&env), 0);
    }

    #[tokio::test]
    async fn loads_of_bad_expired_or_unknown_ids_say_what_to_do() {
        let (env, kit, operator) = kit_env();
        for (id, status, says) in [
            ("../x", StatusCode::BAD_REQUEST, "is not a staged kit id"),
            (
                "../../../../etc/passwd",
                StatusCode::BAD_REQUEST,
                "is not a staged kit id",
            ),
            ("", StatusCode::BAD_REQUEST, "is not a staged kit id"),
            (
                "0123456789abcdef0123456789abcdef",
                StatusCode::NOT_FOUND,
                "No kit is staged as",
            ),
        ] {
            let page = env
                .post(&operator, "/console/kits/load", &[("staged", id)])
                .await;
            assert_eq!(page.status, status, "{id}: {}", page.body);
            page.assert_secure();
            assert!(page.body.contains(says), "{id}: {}", page.body);
            assert!(page.body.contains("role=\"alert\""));
            assert!(
                page.body
                    .contains("Upload the kit again on the Offline kits page")
            );
        }
        // Forged without the token: refused before anything is read.
        let forged = env
            .post_encoded(
                &operator,
                "/console/kits/load",
                "staged=0123456789abcdef0123456789abcdef".to_owned(),
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        // A kit staged longer than an hour ago has expired.
        let report = upload(&env, &operator, &kit.archive).await;
        let id = staged_id(&report.body);
        let meta = env
            .state
            .stores()
            .dir()
            .join("staging")
            .join(format!("{id}.json"));
        std::fs::write(
            &meta,
            format!(
                r#"{{"origin":"k","actor":"opal","staged_at":{}}}"#,
                T0 - 3600
            ),
        )
        .unwrap();
        let expired = env
            .post(&operator, "/console/kits/load", &[("staged", &id)])
            .await;
        assert_eq!(expired.status, StatusCode::GONE, "{}", expired.body);
        assert!(expired.body.contains("expired"), "{}", expired.body);
        assert!(env.state.feeds().current().is_none());
        assert_eq!(staged_files(&env), 0);
    }

    #[tokio::test]
    async fn upload_is_verified_and_refusals_say_why() {
        let env = ConsoleEnv::new();
        let operator = env.sign_in("opal", "operator");
        let action = format!("/console/kits?csrf={CSRF}");
        let rejected = env
            .send(multipart(
                &operator,
                &action,
                &[("kit", "<b>kit</b>.tar.zst", b"not a kit at all")],
            ))
            .await;
        assert_eq!(
            rejected.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            rejected.body
        );
        rejected.assert_secure();
        assert!(
            rejected.body.contains("<strong>Rejected</strong>"),
            "{}",
            rejected.body
        );
        assert!(rejected.body.contains("Nothing was loaded"));
        // The file name is the uploader's text: escaped.
        assert!(rejected.body.contains("&#60;b&#62;kit&#60;/b&#62;.tar.zst"));
        assert!(!rejected.body.contains("<b>kit"));
        let empty = env.send(multipart(&operator, &action, &[])).await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.body);
        assert!(empty.body.contains("No kit file was chosen."));
        // Without the token in the action: refused before the body is read.
        let forged = env
            .send(multipart(&operator, "/console/kits", &[("kit", "k", b"x")]))
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let viewer = env.sign_in("val", "viewer");
        let denied = env
            .send(multipart(&viewer, &action, &[("kit", "k", b"x")]))
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        denied.assert_secure();
    }
}
