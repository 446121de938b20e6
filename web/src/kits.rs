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
use stella_feeds::{ImportError, ImportOptions, ImportOutcome, Rejection};

use crate::auth::{RouteTable, SessionInfo, escape, html};
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

/// Runs an import off the async workers.
async fn run_import(
    state: AppState,
    bytes: Bytes,
    origin: String,
    actor: &str,
    request_id: Option<String>,
    dry_run: bool,
) -> Result<Result<ImportOutcome, Rejection>, String> {
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
    match run_import(state, bytes, origin, actor, request_id, dry_run).await {
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

fn age(secs: u64) -> String {
    match secs {
        s if s < 3_600 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3_600),
        s => format!("{} days ago", s / 86_400),
    }
}

/// The console's kit page: freshness per channel, the upload form, the import audit trail.
async fn kits_page(
    State(state): State<AppState>,
    Extension(session): Extension<SessionInfo>,
) -> Response {
    let now = state.clock().now_unix();
    let stale_after = state.config().kits.stale_after_days.saturating_mul(86_400);
    let csrf = session.csrf().to_owned();
    let loaded = tokio::task::spawn_blocking(move || {
        let catalog = &state.stores().catalog;
        Ok::<_, stella_feeds::FeedError>((
            state.feeds().freshness(catalog, now, stale_after)?,
            state.feeds().imports(catalog, 100)?,
        ))
    })
    .await;
    let (channels, imports) = match loaded {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Offline kits",
                &format!(
                    "<p>The feed store failed: {}. Check the daemon log.</p>",
                    escape(&e.to_string())
                ),
            );
        }
        Err(e) => {
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Offline kits",
                &format!("<p>{}</p>", escape(&e.to_string())),
            );
        }
    };
    let mut body = String::from("<h2>Feed freshness</h2>");
    if channels.is_empty() {
        body.push_str("<p>No kit imported yet &mdash; import one to see findings.</p>");
    } else {
        body.push_str("<table><thead><tr><th scope=\"col\">Channel</th><th scope=\"col\">Kit</th><th scope=\"col\">Sequence</th><th scope=\"col\">Built (UTC)</th><th scope=\"col\">Expires (UTC)</th><th scope=\"col\">State</th></tr></thead><tbody>");
        for c in &channels {
            let state_text = if c.stale {
                format!(
                    "<strong>STALE</strong>: built {}; import a newer kit",
                    age(c.age_secs)
                )
            } else {
                format!("fresh, built {}", age(c.age_secs))
            };
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{state_text}</td></tr>",
                escape(&c.channel), escape(&c.kit_id), c.sequence, escape(&c.created), escape(&c.expires)
            ));
        }
        body.push_str("</tbody></table>");
    }
    body.push_str(&format!(
        "<h2>Import a kit</h2><form method=\"post\" enctype=\"multipart/form-data\" action=\"/console/kits?csrf={}\">\
         <label for=\"kit\">Kit file (.tar.zst)</label> <input id=\"kit\" type=\"file\" name=\"kit\" required> \
         <label><input type=\"checkbox\" name=\"dry_run\" value=\"true\"> verify only (dry run)</label> \
         <button>Verify and import</button></form>",
        escape(&csrf)
    ));
    body.push_str("<h2>Import audit trail</h2>");
    if imports.is_empty() {
        body.push_str("<p>No import attempted yet.</p>");
    } else {
        body.push_str("<table><thead><tr><th scope=\"col\">When (UTC)</th><th scope=\"col\">Who</th><th scope=\"col\">Kit</th><th scope=\"col\">Channel</th><th scope=\"col\">Sequence</th><th scope=\"col\">Verdict</th><th scope=\"col\">Detail</th></tr></thead><tbody>");
        for r in &imports {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                escape(&r.at),
                escape(&r.actor),
                escape(r.kit_id.as_deref().unwrap_or("-")),
                escape(r.channel.as_deref().unwrap_or("-")),
                r.sequence.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                escape(&r.verdict),
                escape(&r.detail)
            ));
        }
        body.push_str("</tbody></table>");
    }
    html(StatusCode::OK, "Offline kits", &body)
}

/// The console upload: verify (and unless a dry run, load), then show the verification report.
async fn kits_upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone());
    let mut multipart = match Multipart::from_request(request, &()).await {
        Ok(m) => m,
        Err(e) => {
            return html(
                StatusCode::BAD_REQUEST,
                "Import failed",
                &format!(
                    "<p>The upload is not a form with a file: {}. Choose a kit file and try again.</p>",
                    escape(&e.body_text())
                ),
            );
        }
    };
    let mut kit = None;
    let mut dry_run = false;
    while let Ok(Some(field)) = multipart.next_field().await {
        match field.name() {
            Some("kit") => {
                let name = field.file_name().unwrap_or("upload").to_owned();
                match field.bytes().await {
                    Ok(bytes) => kit = Some((bytes, name)),
                    Err(e) => {
                        return html(
                            StatusCode::BAD_REQUEST,
                            "Import failed",
                            &format!(
                                "<p>The upload broke off: {}. Try again.</p>",
                                escape(&e.to_string())
                            ),
                        );
                    }
                }
            }
            Some("dry_run") => dry_run = true,
            _ => {}
        }
    }
    let Some((bytes, origin)) = kit else {
        return html(
            StatusCode::BAD_REQUEST,
            "Import failed",
            "<p>No kit file was chosen. <a href=\"/console/kits\">Choose one</a>.</p>",
        );
    };
    let back = "<p><a href=\"/console/kits\">Back to offline kits</a></p>";
    match run_import(
        state,
        bytes,
        origin.clone(),
        &caller.subject,
        request_id,
        dry_run,
    )
    .await
    {
        Ok(Ok(outcome)) => {
            let (verdict, report) = match &outcome {
                ImportOutcome::Loaded(r) => ("Loaded", r),
                ImportOutcome::AlreadyImported(r) => ("Already imported: nothing to do", r),
                ImportOutcome::Verified(r) => ("Verified (dry run: nothing loaded)", r),
            };
            let records: Vec<String> = report
                .records
                .iter()
                .map(|(k, v)| format!("{}={v}", escape(k)))
                .collect();
            let body = format!(
                "<p><strong>{verdict}</strong>: {}</p><dl><dt>Kit</dt><dd>{}</dd><dt>Channel / sequence</dt><dd>{} / {}</dd>\
                 <dt>Signed by key</dt><dd>{}</dd><dt>Manifest</dt><dd><code>sha256:{}</code></dd>\
                 <dt>Built / expires (UTC)</dt><dd>{} / {}</dd><dt>Records</dt><dd>{}</dd>\
                 <dt>Feed generation now</dt><dd>{}</dd></dl>{back}",
                escape(&origin),
                escape(&report.kit_id),
                escape(&report.channel),
                report.sequence,
                escape(&report.key_id),
                escape(&report.manifest_sha256),
                escape(&report.created),
                escape(&report.expires),
                records.join(", "),
                report
                    .generation
                    .map_or_else(|| "unchanged".to_owned(), |g| g.to_string()),
            );
            html(StatusCode::OK, "Kit verification report", &body)
        }
        Ok(Err(rejection)) => {
            let body = format!(
                "<p><strong>Rejected</strong> ({}): {}</p><p>Nothing was loaded; the stores are unchanged. {}</p>\
                 <p>Check that the kit comes from your vendor and is newer than the one loaded, then try again.</p>{back}",
                escape(rejection.reason),
                escape(&rejection.message),
                rejection
                    .quarantined
                    .as_ref()
                    .map_or_else(String::new, |q| format!(
                        "The kit was copied to quarantine: <code>{}</code>.",
                        escape(&q.display().to_string())
                    )),
            );
            html(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Kit verification report",
                &body,
            )
        }
        Err(e) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Import failed",
            &format!(
                "<p>The appliance failed: {}. Check the daemon log.</p>{back}",
                escape(&e)
            ),
        ),
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
