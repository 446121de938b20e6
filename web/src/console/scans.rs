//! Console: the scans list (newest first, with the latest report's verdict per image), the forms
//! that start a scan from a registry reference or an uploaded archive, and one scan's live
//! progress. Scans start through [`crate::scans::start_scan`], the same function as the API's.

use askama::Template;
use axum::Extension;
use axum::extract::{FromRequest as _, Multipart, Path, RawQuery, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stella_authority::Scope;
use stella_scanner::{ImageReference, Platform, Transport};
use stella_store::rusqlite::{OptionalExtension, params};
use tokio::io::AsyncWriteExt as _;

use super::view::{Column, PER_PAGE, Pager, Params, Sort, When, error_page};
use super::{Chrome, render};
use crate::auth::{AuditContext, RouteTable};
use crate::scans::{ScanProgress, ScanSource, progress, start_scan};
use crate::{AppState, Caller};

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .console(Method::GET, PATH, Some(Scope::ScannerRead), scans_page)
        .console(
            Method::POST,
            PATH,
            Some(Scope::ScannerScan),
            start_from_reference,
        )
        .console(
            Method::POST,
            "/console/scans/upload",
            Some(Scope::ScannerScan),
            start_from_upload,
        )
        .console(
            Method::GET,
            "/console/scans/{id}",
            Some(Scope::ScannerRead),
            scan_page,
        )
}

const PATH: &str = "/console/scans";
/// Sortable columns: key (also the SQL expression's name below) and label.
const COLUMNS: [(&str, &str); 4] = [
    ("started", "Started"),
    ("image", "Image"),
    ("status", "Status"),
    ("finished", "Finished"),
];

/// One scan as the list and the progress page show it.
#[derive(Debug, Clone)]
struct ScanRow {
    id: String,
    image_ref: String,
    digest: Option<String>,
    status: String,
    error: Option<String>,
    started: Option<When>,
    finished: Option<When>,
    /// The verdict (`PASS`/`FAIL`) of the image's latest report, else judged now.
    verdict: Option<String>,
    /// The verdict was judged now (no report is stored): see [`crate::reports::live_verdict`].
    live: bool,
    /// The scan's summary JSON (layers analysed and reused, components by type).
    summary: Option<String>,
}

#[derive(Template)]
#[template(path = "scans.html")]
struct ScansPage {
    chrome: Chrome,
    can_scan: bool,
    columns: Vec<Column>,
    rows: Vec<ScanRow>,
    pager: Pager,
}

const SELECT_SCANS: &str = "SELECT s.id, s.image_ref, s.image_digest, s.status, s.error, \
     s.started_at, s.finished_at, \
     (SELECT r.verdict FROM reports r WHERE r.image_digest = s.image_digest \
      ORDER BY r.created_at DESC, r.id DESC LIMIT 1), s.summary FROM scans s";

fn scan_row(
    row: &stella_store::rusqlite::Row<'_>,
    now: u64,
) -> stella_store::rusqlite::Result<ScanRow> {
    let when = |at: Option<String>| at.and_then(|at| When::parse(&at, now));
    Ok(ScanRow {
        id: row.get(0)?,
        image_ref: row.get(1)?,
        digest: row.get(2)?,
        status: row.get(3)?,
        error: row.get(4)?,
        started: when(row.get(5)?),
        finished: when(row.get(6)?),
        verdict: row.get(7)?,
        live: false,
        summary: row.get(8)?,
    })
}

async fn scans_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("Scans", "scans");
    let params = Params::parse(query.as_deref());
    let now = state.clock().now_unix();
    let sort = Sort::new(&params, &COLUMNS, "-started");
    // The expression comes from this table, keyed by a COLUMNS key (Sort rejects others).
    let column = match sort.key.as_str() {
        "image" => "s.image_ref",
        "status" => "s.status",
        "finished" => "s.finished_at",
        _ => "s.started_at",
    };
    let direction = if sort.descending { "DESC" } else { "ASC" };
    let read = {
        let conn = state.stores().catalog.connection();
        (|| -> stella_store::rusqlite::Result<(Pager, Vec<ScanRow>)> {
            let total: i64 = conn.query_row("SELECT count(*) FROM scans", [], |r| r.get(0))?;
            let pager = Pager::new(&params, PATH, total as usize, PER_PAGE);
            let range = pager.range();
            let mut stmt = conn.prepare(&format!(
            "{SELECT_SCANS} ORDER BY {column} {direction}, s.rowid {direction} LIMIT ?1 OFFSET ?2"
        ))?;
            let rows = stmt
                .query_map(
                    params![(range.end - range.start) as i64, range.start as i64],
                    |row| scan_row(row, now),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((pager, rows))
        })()
    };
    let (pager, mut rows) = match read {
        Ok(read) => read,
        Err(err) => return store_error(chrome, "The scan list", err, "/"),
    };
    // Finished scans whose image has no stored report show the verdict it gets now.
    if rows
        .iter()
        .any(|r| r.verdict.is_none() && r.status == "done")
    {
        let judging = state.clone();
        let judged = tokio::task::spawn_blocking(move || {
            for row in rows
                .iter_mut()
                .filter(|r| r.verdict.is_none() && r.status == "done")
            {
                let live = (row.digest.as_deref())
                    .and_then(|image| crate::reports::live_verdict(&judging, image));
                row.live = live.is_some();
                row.verdict = live.map(str::to_owned);
            }
            rows
        })
        .await;
        rows = match judged {
            Ok(rows) => rows,
            Err(err) => return store_error(chrome, "The scan list", err, "/"),
        };
    }
    let columns = sort.columns(&params, PATH, &COLUMNS);
    render(
        StatusCode::OK,
        &ScansPage {
            can_scan: chrome.can(Scope::ScannerScan),
            chrome,
            columns,
            rows,
            pager,
        },
    )
}

/// `POST /console/scans`: the registry form.
#[derive(Debug, Deserialize)]
struct ReferenceForm {
    #[serde(default)]
    image_ref: String,
    /// A checkbox: present (`on`) when plain HTTP may be used for this registry.
    insecure: Option<String>,
}

/// Where to go after a scan started: its progress page.
fn see_scan(id: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("{PATH}/{id}"))],
    )
        .into_response()
}

/// Starts the scan and shows its progress page, or says why it did not start.
fn start_and_show(
    state: &AppState,
    ctx: &AuditContext,
    caller: &Caller,
    chrome: Chrome,
    source: ScanSource,
) -> Response {
    match start_scan(state, ctx, &caller.subject, source, Platform::default()) {
        Ok(id) => see_scan(&id),
        Err(problem) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            chrome,
            problem,
            "Check the daemon log and the data directory's disk, then start the scan again.",
            PATH,
        ),
    }
}

/// An error page for a catalog or store read that failed: the cause, and where to look.
pub(super) fn store_error(
    chrome: Chrome,
    what: &str,
    err: impl std::fmt::Display,
    back: &str,
) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        chrome,
        format!("{what} cannot be read: {err}."),
        "Check the daemon log and the data directory's disk; then reload this page.",
        back,
    )
}

async fn start_from_reference(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    chrome: Chrome,
    request: Request,
) -> Response {
    let chrome = chrome.page("Scan not started", "scans");
    let ctx = AuditContext::of(&request);
    let form: ReferenceForm = match axum::Form::from_request(request, &state).await {
        Ok(axum::Form(form)) => form,
        Err(err) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                chrome,
                format!("The scan form could not be read: {err}."),
                "Reload the scans page and submit the form again.",
                PATH,
            );
        }
    };
    let text = form.image_ref.trim();
    let reference = match ImageReference::parse(text) {
        Ok(reference) if !text.is_empty() => reference,
        Ok(_) | Err(_) => {
            let problem = if text.is_empty() {
                "No image reference was given.".to_owned()
            } else {
                format!("“{text}” is not a registry reference.")
            };
            return error_page(
                StatusCode::BAD_REQUEST,
                chrome,
                problem,
                "Write it as host[:port]/repository:tag or host[:port]/repository@sha256:…, \
                 for example registry.local:5000/team/app:1.4 (the registry host is always \
                 explicit: the appliance has no default registry). For an image you have as a \
                 file, upload its docker save or OCI archive instead.",
                PATH,
            );
        }
    };
    let transport = if form.insecure.is_some() {
        Transport::InsecureHttp
    } else {
        Transport::Https
    };
    let source = ScanSource::Registry {
        reference,
        transport,
    };
    start_and_show(&state, &ctx, &caller, chrome, source)
}

/// `POST /console/scans/upload?csrf=`: a `docker save` or OCI archive (multipart field
/// `archive`), streamed into the data directory's `uploads/` and scanned from there; the file is
/// removed when the scan ends.
async fn start_from_upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    chrome: Chrome,
    request: Request,
) -> Response {
    let chrome = chrome.page("Upload not scanned", "scans");
    let ctx = AuditContext::of(&request);
    let mut multipart = match Multipart::from_request(request, &state).await {
        Ok(multipart) => multipart,
        Err(err) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                chrome,
                format!("The upload could not be read: {err}."),
                "Choose the archive with the upload form on the scans page and send it again.",
                PATH,
            );
        }
    };
    let dir = state.stores().dir().join("uploads");
    let stored = loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("archive") => {
                break receive(&dir, field).await;
            }
            Ok(Some(_)) => continue,
            Ok(None) => break Err(UploadError::Missing),
            Err(err) => break Err(UploadError::Read(err.to_string())),
        }
    };
    let (path, name) = match stored {
        Ok(stored) => stored,
        Err(err) => {
            let (status, problem, next) = err.explain();
            return error_page(status, chrome, problem, next, PATH);
        }
    };
    let source = ScanSource::Upload { path, name };
    start_and_show(&state, &ctx, &caller, chrome, source)
}

/// Why an upload was not stored.
enum UploadError {
    /// No `archive` field, or an empty one.
    Missing,
    /// The body broke off or exceeded the size limit.
    Read(String),
    /// The data directory refused the file.
    Store(String),
}

impl UploadError {
    fn explain(self) -> (StatusCode, String, &'static str) {
        match self {
            Self::Missing => (
                StatusCode::BAD_REQUEST,
                "No archive was uploaded.".to_owned(),
                "Choose a docker save archive (docker save -o image.tar IMAGE) or an OCI \
                 layout tar, then press Upload and scan.",
            ),
            Self::Read(err) => (
                StatusCode::BAD_REQUEST,
                format!("The upload broke off: {err}."),
                "Send the archive again; archives larger than the configured kit size limit \
                 ([kits] max_kit_bytes) are refused — copy those to the appliance and scan \
                 them with `stella scan PATH`.",
            ),
            Self::Store(err) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("The archive could not be stored in the data directory: {err}."),
                "Check the free space of the data directory, then upload again.",
            ),
        }
    }
}

/// Streams the field into a new file under `dir`; returns its path and the uploaded file name
/// (for display only: the stored name is random).
async fn receive(
    dir: &std::path::Path,
    mut field: axum::extract::multipart::Field<'_>,
) -> Result<(std::path::PathBuf, String), UploadError> {
    let name: String = field
        .file_name()
        .unwrap_or("archive.tar")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let token = stella_authority::random_token().map_err(|e| UploadError::Store(e.to_string()))?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| UploadError::Store(format!("{}: {e}", dir.display())))?;
    let path = dir.join(format!("upload-{token}.tar"));
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| UploadError::Store(format!("{}: {e}", path.display())))?;
    let mut written = 0u64;
    let outcome = async {
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| UploadError::Read(e.to_string()))?
        {
            written += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| UploadError::Store(e.to_string()))?;
        }
        file.flush()
            .await
            .map_err(|e| UploadError::Store(e.to_string()))?;
        if written == 0 {
            return Err(UploadError::Missing);
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => Ok((path, name)),
        Err(err) => {
            drop(file);
            let _ = tokio::fs::remove_file(&path).await;
            Err(err)
        }
    }
}

#[derive(Template)]
#[template(path = "scans_one.html")]
struct ScanPage {
    chrome: Chrome,
    scan: ScanRow,
    /// How far a running scan has got; `None` when it is not running in this daemon.
    progress: Option<ScanProgress>,
    /// Components by type from the summary, for a finished scan.
    components: Vec<(String, u64)>,
    layers_analysed: u64,
    layers_reused: u64,
    /// What to do about a failure.
    advice: &'static str,
}

impl ScanPage {
    fn running(&self) -> bool {
        self.scan.status == "running"
    }

    fn mib_read(&self) -> String {
        self.progress
            .map(|p| format!("{:.1}", p.bytes as f64 / (1024.0 * 1024.0)))
            .unwrap_or_default()
    }
}

async fn scan_page(
    State(state): State<AppState>,
    chrome: Chrome,
    Path(id): Path<String>,
) -> Response {
    let now = state.clock().now_unix();
    let found = state
        .stores()
        .catalog
        .connection()
        .query_row(&format!("{SELECT_SCANS} WHERE s.id = ?1"), [&id], |row| {
            scan_row(row, now)
        })
        .optional();
    let scan = match found {
        Ok(Some(scan)) => scan,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                chrome.page("No such scan", "scans"),
                format!("There is no scan {id}."),
                "Open the scans list and pick a scan from there, or start a new one.",
                PATH,
            );
        }
        Err(err) => return store_error(chrome.page("Scan", "scans"), "The scan", err, PATH),
    };
    let summary: serde_json::Value = scan
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let components = summary["components_by_type"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let advice = if scan.image_ref.starts_with("upload:") {
        "Check that the file is a docker save archive (docker save -o image.tar IMAGE) or an OCI \
         image layout packed as a tar, for the linux/amd64 platform; then upload it again."
    } else {
        "Check the reference (host[:port]/repository:tag), that the registry is reachable from \
         the appliance and serves HTTPS with a certificate the appliance trusts (tick “plain \
         HTTP” only for a registry on a trusted network), and that the image has a linux/amd64 \
         manifest; then start the scan again."
    };
    let title = match scan.status.as_str() {
        "running" => "Scan running",
        "done" => "Scan finished",
        _ => "Scan failed",
    };
    render(
        StatusCode::OK,
        &ScanPage {
            chrome: chrome.page(title, "scans"),
            progress: progress(&scan.id),
            layers_analysed: summary["layers_analysed"].as_u64().unwrap_or(0),
            layers_reused: summary["layers_reused"].as_u64().unwrap_or(0),
            scan,
            components,
            advice,
        },
    )
}

#[cfg(test)]
pub(super) mod fixtures;

#[cfg(test)]
pub(crate) mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use stella_store::rusqlite::params;

    use super::fixtures::{scanner_fixtures, wait_for};
    use crate::console::testing::{CSRF, ConsoleEnv, Page, T0};

    pub(crate) fn insert_scan(env: &ConsoleEnv, id: &str, image: &str, status: &str, started: u64) {
        env.state
            .stores()
            .catalog
            .connection()
            .execute(
                "INSERT INTO scans (id, image_ref, status, started_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, image, status, stella_core::rfc3339(started)],
            )
            .unwrap();
    }

    fn scan_count(env: &ConsoleEnv) -> i64 {
        env.state
            .stores()
            .catalog
            .connection()
            .query_row("SELECT count(*) FROM scans", [], |r| r.get(0))
            .unwrap()
    }

    fn audit_count(env: &ConsoleEnv, action: &str) -> i64 {
        env.state
            .stores()
            .catalog
            .connection()
            .query_row(
                "SELECT count(*) FROM audit_log WHERE action = ?1",
                [action],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// The scan id a form post redirected to.
    fn redirected_scan(page: &Page) -> String {
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let location = page.headers[header::LOCATION].to_str().unwrap();
        location
            .strip_prefix("/console/scans/")
            .unwrap_or_else(|| panic!("redirected to {location}"))
            .to_owned()
    }

    async fn upload(env: &ConsoleEnv, cookie: &str, csrf: &str, archive: &[u8]) -> Page {
        let boundary = "stella-test-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"archive\"; \
             filename=\"app<1>.tar\"\r\nContent-Type: application/x-tar\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(archive);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        env.send(
            Request::builder()
                .method(Method::POST)
                .uri(format!("/console/scans/upload?csrf={csrf}"))
                .header(header::HOST, "stella.test")
                .header(header::COOKIE, cookie)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    #[tokio::test]
    async fn list_is_empty_then_paginated_newest_first_with_verdicts() {
        let env = ConsoleEnv::new();
        let operator = env.sign_in("olga", "operator");
        let page = env.get(&operator, "/console/scans").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        assert!(
            page.body
                .contains("No scan yet — start one with the forms above"),
            "{}",
            page.body
        );

        for i in 0..60 {
            insert_scan(
                &env,
                &format!("scan-{i:02}"),
                &format!("registry.test/app:{i:02}"),
                "failed",
                T0 - 3600 + i,
            );
        }
        // The newest scan finished and its image has a failing report.
        let digest = format!("sha256:{}", "ab".repeat(32));
        {
            let conn = env.state.stores().catalog.connection();
            conn.execute(
                "INSERT INTO images (digest, reference, created_at) VALUES (?1, 'registry.test/app:59', ?2)",
                params![digest, stella_core::rfc3339(T0)],
            )
            .unwrap();
            conn.execute(
                "UPDATE scans SET status = 'done', image_digest = ?1, finished_at = ?2 WHERE id = 'scan-59'",
                params![digest, stella_core::rfc3339(T0 - 120)],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO reports (id, image_digest, verdict, policy_digest, report_digest, created_at)
                 VALUES ('r1', ?1, 'FAIL', 'p', 'd', ?2)",
                params![digest, stella_core::rfc3339(T0 - 60)],
            )
            .unwrap();
        }
        let page = env.get(&operator, "/console/scans").await;
        assert!(page.body.contains("Page 1 of 2"), "{}", page.body);
        assert!(page.body.contains("1–50 of 60"));
        // Newest first: scan-59 before scan-58, scan-09 on the second page.
        let first = page.body.find("scan-59").unwrap();
        assert!(first < page.body.find("scan-58").unwrap());
        assert!(!page.body.contains(">scan-09<"));
        assert!(
            page.body
                .contains(&format!("href=\"/console/images/{digest}\""))
        );
        assert!(page.body.contains("verdict-fail\">FAIL"), "{}", page.body);
        assert!(page.body.contains("2 min ago"));
        assert!(page.body.contains("no report"));
        let page = env.get(&operator, "/console/scans?page=2").await;
        assert!(page.body.contains("51–60 of 60"));
        assert!(page.body.contains(">scan-09<"));
        // Sorting by image ascending puts app:00 first; an unknown key falls back to the default.
        let page = env.get(&operator, "/console/scans?sort=image").await;
        assert!(page.body.contains("aria-sort=\"ascending\""));
        assert!(page.body.find("app:00").unwrap() < page.body.find("app:01").unwrap());
        let page = env.get(&operator, "/console/scans?sort=rowid;drop").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.find("scan-59").unwrap() < page.body.find("scan-58").unwrap());
    }

    #[tokio::test]
    async fn viewer_sees_no_forms_and_cannot_start_a_scan() {
        let env = ConsoleEnv::new();
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/scans").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("action=\"/console/scans\""));
        assert!(!page.body.contains("/console/scans/upload"));
        assert!(page.body.contains("an operator can start one"));
        let page = env
            .post(
                &viewer,
                "/console/scans",
                &[("image_ref", "registry.test/app:1")],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let page = upload(&env, &viewer, CSRF, b"tar").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert_eq!(scan_count(&env), 0);

        let operator = env.sign_in("olga", "operator");
        let page = env.get(&operator, "/console/scans").await;
        assert!(page.body.contains("action=\"/console/scans\""));
        assert!(
            page.body
                .contains(&format!("/console/scans/upload?csrf={CSRF}"))
        );
    }

    #[tokio::test]
    async fn starting_a_scan_needs_the_csrf_token() {
        let env = ConsoleEnv::new();
        let operator = env.sign_in("olga", "operator");
        let forged = env
            .send(
                Request::builder()
                    .method(Method::POST)
                    .uri("/console/scans")
                    .header(header::HOST, "stella.test")
                    .header(header::COOKIE, &operator)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from("csrf=wrong&image_ref=registry.test%2Fapp%3A1"))
                    .unwrap(),
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let archive = std::fs::read(scanner_fixtures().join("fixture-docker.tar")).unwrap();
        let forged = upload(&env, &operator, "wrong", &archive).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert_eq!(scan_count(&env), 0);
        assert_eq!(audit_count(&env, "auth.csrf_rejected"), 2);
    }

    #[tokio::test]
    async fn a_bad_reference_says_how_to_write_one() {
        let env = ConsoleEnv::new();
        let operator = env.sign_in("olga", "operator");
        let page = env
            .post(&operator, "/console/scans", &[("image_ref", "ubuntu<b>")])
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        page.assert_secure();
        assert!(
            page.body.contains("is not a registry reference"),
            "{}",
            page.body
        );
        assert!(page.body.contains("ubuntu&#60;b&#62;"));
        assert!(page.body.contains("host[:port]/repository:tag"));
        // A local path is not a registry reference either: the form never scans server files.
        let path = scanner_fixtures().join("fixture-oci");
        let page = env
            .post(
                &operator,
                "/console/scans",
                &[("image_ref", path.to_str().unwrap())],
            )
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert_eq!(scan_count(&env), 0);
    }

    #[tokio::test]
    async fn a_registry_scan_that_fails_says_what_to_do() {
        let env = ConsoleEnv::new();
        let operator = env.sign_in("olga", "operator");
        // Nothing listens on the discard port: the pull fails at once, without leaving the host.
        let page = env
            .post(
                &operator,
                "/console/scans",
                &[("image_ref", "127.0.0.1:9/team/app:1"), ("insecure", "on")],
            )
            .await;
        let id = redirected_scan(&page);
        assert_eq!(audit_count(&env, "scan.start"), 1);
        assert_eq!(wait_for(&env, &id).await, "failed");
        let page = env.get(&operator, &format!("/console/scans/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        page.assert_secure();
        assert!(page.body.contains("The scan failed"), "{}", page.body);
        assert!(page.body.contains("127.0.0.1:9/team/app:1"));
        assert!(page.body.contains("registry is reachable"));
        assert!(!page.body.contains("http-equiv=\"refresh\""));
        let page = env.get(&operator, "/console/scans").await;
        assert!(page.body.contains("status-failed"));
    }

    #[tokio::test]
    async fn a_running_scan_refreshes_and_an_unknown_one_is_404() {
        let env = ConsoleEnv::new();
        let viewer = env.sign_in("val", "viewer");
        insert_scan(
            &env,
            "scan-orphan",
            "registry.test/app:1",
            "running",
            T0 - 30,
        );
        let page = env.get(&viewer, "/console/scans/scan-orphan").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body
                .contains("<meta http-equiv=\"refresh\" content=\"2\">")
        );
        // Not running in this process (a restart cut it short): say so.
        assert!(
            page.body.contains("not running in this daemon"),
            "{}",
            page.body
        );
        let page = env.get(&viewer, "/console/scans/scan-nope").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert!(page.body.contains("There is no scan scan-nope"));
    }

    #[tokio::test]
    async fn a_scan_in_flight_shows_its_layers_cache_hits_and_bytes() {
        use stella_scanner::{Digest, Progress as _, ProgressEvent};
        let env = ConsoleEnv::new();
        let viewer = env.sign_in("val", "viewer");
        insert_scan(&env, "scan-live", "registry.test/app:2", "running", T0 - 5);
        let live = crate::scans::register_running("scan-live");
        let page = env.get(&viewer, "/console/scans/scan-live").await;
        assert!(
            page.body
                .contains("Reading the image&#39;s manifest and config")
                || page
                    .body
                    .contains("Reading the image's manifest and config"),
            "{}",
            page.body
        );
        let layer = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        live.on_event(&ProgressEvent::Resolved {
            image_id: layer.clone(),
            layers: 3,
            total_bytes: None,
        });
        for (index, reused) in [(0, true), (1, false)] {
            live.on_event(&ProgressEvent::LayerStarted {
                index,
                diff_id: layer.clone(),
                reused,
            });
            live.on_event(&ProgressEvent::LayerFinished { index });
        }
        live.on_event(&ProgressEvent::BytesRead(3 * 1024 * 1024 + 512 * 1024));
        let page = env.get(&viewer, "/console/scans/scan-live").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains(
                "<strong>Analysing layers: 2 of 3 done</strong> (1 from the cache), 3.5 MiB read."
            ),
            "{}",
            page.body
        );
        assert!(
            page.body
                .contains("<meta http-equiv=\"refresh\" content=\"2\">")
        );
    }

    #[tokio::test]
    async fn an_uploaded_docker_archive_is_scanned_and_removed() {
        let env = ConsoleEnv::new();
        let operator = env.sign_in("olga", "operator");
        let archive = std::fs::read(scanner_fixtures().join("fixture-docker.tar")).unwrap();
        let page = upload(&env, &operator, CSRF, &archive).await;
        let id = redirected_scan(&page);
        assert_eq!(wait_for(&env, &id).await, "done");
        let page = env.get(&operator, &format!("/console/scans/{id}")).await;
        assert!(page.body.contains("The scan finished"), "{}", page.body);
        let digest: String = env
            .state
            .stores()
            .catalog
            .connection()
            .query_row("SELECT image_digest FROM scans WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            page.body
                .contains(&format!("href=\"/console/images/{digest}\""))
        );
        assert!(page.body.contains("upload:app&#60;1&#62;.tar"));
        // The archive is gone once scanned.
        let uploads = env.state.stores().dir().join("uploads");
        assert_eq!(std::fs::read_dir(uploads).unwrap().count(), 0);
        // An empty upload is refused with advice.
        let page = upload(&env, &operator, CSRF, b"").await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(
            page.body.contains("No archive was uploaded"),
            "{}",
            page.body
        );
    }
}
