//! Console: the dashboard at `/` (any signed-in user). One look at whether the appliance can do
//! its job: stores writable, feed freshness per channel, the HSM and signer, licences, the
//! transparency log, and the latest scans with their verdicts. Every section says what to do
//! when it is empty or unwell.

use askama::Template;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use stella_store::rusqlite;

use super::view::{When, error_page};
use super::{Chrome, render};
use crate::AppState;
use crate::auth::RouteTable;
use crate::kits::Freshness;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.console(Method::GET, "/", None, dashboard)
}

/// How many scans the dashboard lists.
const RECENT_SCANS: i64 = 10;

/// Stores and feeds, as `/readyz` checks them.
struct Health {
    /// Why the stores are not writable; `None` when they are.
    stores_problem: Option<String>,
    version: &'static str,
    /// The current feed generation and how many advisories it indexes.
    generation: Option<(u64, u64)>,
}

/// The HSM and signer.
struct HsmView {
    /// The key source's name (`pkcs11:…`, `file`, …).
    source: String,
    /// Why the HSM cannot sign; `None` when it is ready.
    problem: Option<String>,
    /// `entitled` or `community`.
    mode: String,
    /// The entitlement gate's answer, in words.
    entitlement: String,
    entitled: bool,
}

/// One licence a kit brought.
struct LicenceRow {
    licence_id: String,
    customer: String,
    plan: String,
    channel: String,
    expires: Option<When>,
    expires_text: String,
    expired: bool,
}

/// The transparency log.
struct LogView {
    size: u64,
    /// When the latest checkpoint was written.
    checkpoint: Option<When>,
}

/// One recent scan with its image's latest verdict.
struct ScanRow {
    id: String,
    image_ref: String,
    image_digest: Option<String>,
    status: String,
    started: Option<When>,
    /// `PASS` or `FAIL` of the image's latest policy report, else judged now.
    verdict: Option<String>,
    /// The verdict was judged now (no report is stored): see [`crate::reports::live_verdict`].
    live: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    can_scan: bool,
    can_import: bool,
    s: Sections,
}

/// Every section of the dashboard.
struct Sections {
    health: Health,
    /// Feed freshness, or why it cannot be read.
    freshness: Freshness,
    freshness_problem: Option<String>,
    /// `None` when no `[hsm]` is configured.
    hsm: Option<HsmView>,
    licences: Vec<LicenceRow>,
    licence_problem: Option<String>,
    /// The log, or why there is none.
    log: Result<LogView, String>,
    scans: Vec<ScanRow>,
}

async fn dashboard(State(state): State<AppState>, chrome: Chrome) -> Response {
    let chrome = chrome.page("Dashboard", "dashboard");
    let can_scan = chrome.can(stella_authority::Scope::ScannerScan);
    let can_import = chrome.can(stella_authority::Scope::KitImport);
    // Store checks write and fsync, the HSM status signs; keep them off the async workers.
    let gathered = tokio::task::spawn_blocking(move || gather(&state)).await;
    let Ok(sections) = gathered else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            chrome,
            "The dashboard failed to gather its figures.",
            "Check the daemon log, then reload this page.",
            "/",
        );
    };
    render(
        StatusCode::OK,
        &DashboardPage {
            chrome,
            can_scan,
            can_import,
            s: sections,
        },
    )
}

/// Reads every section; a section that fails says why instead of failing the page.
fn gather(state: &AppState) -> Sections {
    let now = state.clock().now_unix();
    let stores = state.stores();
    let generation = state.feeds().current();
    let health = Health {
        stores_problem: stores.check_writable().err().map(|e| e.to_string()),
        version: stella_core::VERSION,
        generation: generation.as_ref().map(|g| (g.number(), g.indexed())),
    };
    let (freshness, freshness_problem) = match crate::kits::freshness(state) {
        Ok(freshness) => (freshness, None),
        Err(problem) => (
            Freshness {
                channels: Vec::new(),
                stale_days: state.config().kits.stale_after_days,
            },
            Some(problem),
        ),
    };
    let (licences, licence_problem) = match &generation {
        None => (Vec::new(), None),
        Some(generation) => match generation.licences() {
            Ok(licences) => (
                licences
                    .into_iter()
                    .map(|(channel, signed)| {
                        let licence = signed.licence;
                        let expires_unix = unix_of(&licence.expires);
                        LicenceRow {
                            // A licence whose expiry does not parse covers nothing.
                            expired: expires_unix.is_none_or(|at| at <= now),
                            expires: expires_unix.map(|at| When::new(at, now)),
                            expires_text: licence.expires,
                            licence_id: licence.licence_id,
                            customer: licence.customer,
                            plan: licence.plan,
                            channel,
                        }
                    })
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e.to_string())),
        },
    };
    let hsm = state.signing().map(|service| {
        let status = service.status(state.feeds(), &stores.catalog);
        let text = |pointer: &str| {
            status
                .pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let entitled = status
            .pointer("/entitlement/entitled")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        HsmView {
            source: text("/hsm/source"),
            // The status ran the readiness probe (every key present, a test signature).
            problem: status
                .pointer("/hsm/problem")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            mode: text("/mode"),
            entitlement: if entitled {
                format!(
                    "entitled under licence {} ({}, plan {})",
                    text("/entitlement/licence_id"),
                    text("/entitlement/customer"),
                    text("/entitlement/plan")
                )
            } else {
                text("/entitlement/message")
            },
            entitled,
        }
    });
    let log = match state.signing().and_then(|service| service.attestor()) {
        None if state.signing().is_none() => Err(
            "No transparency log: no HSM is configured, so nothing is signed or logged.".to_owned(),
        ),
        None => Err(
            "No transparency log: the HSM lacks the appliance keys; run `stella hsm init` and restart."
                .to_owned(),
        ),
        Some(attestor) => attestor
            .log()
            .size()
            .map(|size| LogView {
                size,
                checkpoint: std::fs::metadata(
                    attestor.log().dir().join(stella_attestor::CHECKPOINT_FILE),
                )
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| When::new(d.as_secs(), now)),
            })
            .map_err(|e| format!("The transparency log cannot be read: {e}.")),
    };
    let mut scans = recent_scans(state, now).unwrap_or_else(|err| {
        tracing::error!(%err, "dashboard: cannot read scans");
        Vec::new()
    });
    for scan in scans.iter_mut().filter(|s| s.verdict.is_none()) {
        let live = (scan.image_digest.as_deref())
            .and_then(|image| crate::reports::live_verdict(state, image));
        scan.live = live.is_some();
        scan.verdict = live.map(str::to_owned);
    }
    Sections {
        health,
        freshness,
        freshness_problem,
        hsm,
        licences,
        licence_problem,
        log,
        scans,
    }
}

/// The latest scans, newest first, each with its image's latest report verdict.
fn recent_scans(state: &AppState, now: u64) -> Result<Vec<ScanRow>, rusqlite::Error> {
    let conn = state.stores().catalog.connection();
    let mut stmt = conn.prepare(
        "SELECT s.id, s.image_ref, s.image_digest, s.status, s.started_at,
                (SELECT r.verdict FROM reports r WHERE r.image_digest = s.image_digest
                 ORDER BY r.created_at DESC LIMIT 1)
         FROM scans s ORDER BY s.started_at DESC, s.id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([RECENT_SCANS], |row| {
            Ok(ScanRow {
                id: row.get(0)?,
                image_ref: row.get(1)?,
                image_digest: row.get(2)?,
                status: row.get(3)?,
                started: When::parse(&row.get::<_, String>(4)?, now),
                verdict: row.get(5)?,
                live: false,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// An RFC 3339 time as Unix seconds; `None` when it does not parse or is before 1970.
fn unix_of(rfc3339: &str) -> Option<u64> {
    let parsed =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
            .ok()?;
    u64::try_from(parsed.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use stella_store::rusqlite::params;

    use crate::attest::testing::{env_with_signing, signed_bundle};
    use crate::console::testing::{ConsoleEnv, T0};
    use crate::kits::tests::channel_head;

    /// A finished scan of `reference`, and a report with `verdict` when given.
    fn scan(env: &ConsoleEnv, id: &str, reference: &str, digest: &str, verdict: Option<&str>) {
        let conn = env.state.stores().catalog.connection();
        let at = stella_core::rfc3339(T0 - 600);
        conn.execute(
            "INSERT OR IGNORE INTO images (digest, reference, created_at) VALUES (?1, ?2, ?3)",
            params![digest, reference, at],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO scans (id, image_ref, image_digest, status, started_at)
             VALUES (?1, ?2, ?3, 'done', ?4)",
            params![id, reference, digest, at],
        )
        .unwrap();
        if let Some(verdict) = verdict {
            conn.execute(
                "INSERT INTO reports (id, image_digest, verdict, policy_digest, report_digest,
                                      created_at)
                 VALUES (?1, ?2, ?3, 'p', 'r', ?4)",
                params![format!("report-{id}"), digest, verdict, at],
            )
            .unwrap();
        }
    }

    #[tokio::test]
    async fn a_scan_without_a_stored_report_shows_the_verdict_it_gets_now() {
        use crate::console::findings::tests::{IMAGE, import_kit, store_scan};
        let env = ConsoleEnv::new();
        import_kit(&env);
        store_scan(&env, IMAGE, &[("requests", true), ("jinja2", false)]);
        scan(&env, "scan-1", "registry.local/app:1.0", IMAGE, None);
        let viewer = env.sign_in("val", "viewer");
        let not_stored = "verdict-fail\">FAIL</span> <span class=\"age\" title=\"Judged now";
        for path in ["/", "/console/scans"] {
            let page = env.get(&viewer, path).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            assert!(page.body.contains(not_stored), "{path}: {}", page.body);
        }
        // Once a report is stored, the lists show it, not the judgement.
        let operator = env.sign_in("olga", "operator");
        let stored = env
            .post(&operator, &format!("/console/images/{IMAGE}/findings"), &[])
            .await;
        assert_eq!(stored.status, StatusCode::SEE_OTHER, "{}", stored.body);
        for path in ["/", "/console/scans"] {
            let page = env.get(&viewer, path).await;
            assert!(page.body.contains("verdict-fail\">FAIL</span>"), "{path}");
            assert!(!page.body.contains("Judged now"), "{path}: {}", page.body);
        }
    }

    #[tokio::test]
    async fn licences_from_the_kit_show_customer_plan_channel_and_expiry() {
        use stella_importer::licence::{LicenceTerms, ed25519_enrolment_request, issue_licence};
        let env = ConsoleEnv::new();
        let vendor = {
            use stella_importer::signing::{KeyProtection, generate_key_pair};
            let pair = generate_key_pair(KeyProtection::Unencrypted, "vendor").unwrap();
            stella_importer::SigningKey::from_minisign_file_contents(&pair.secret_key_file, None)
                .unwrap()
        };
        let request =
            ed25519_enrolment_request(&[7; 32], "appliance-1", "2026-01-01T00:00:00Z").unwrap();
        let at = |unix: u64| time::OffsetDateTime::from_unix_timestamp(unix as i64).unwrap();
        let licence = |customer: &str, issued: u64, expires: u64| {
            let terms = LicenceTerms {
                customer: customer.into(),
                plan: "enterprise".into(),
                quotas: Default::default(),
                valid_release_year: None,
                max_version: None,
                issued: at(issued),
                expires: at(expires),
            };
            issue_licence(&request, &terms, &vendor).unwrap()
        };
        let current = licence("Example Corp", T0 - 10 * 86_400, T0 + 20 * 86_400);
        let lapsed = licence("Lapsed Ltd", T0 - 40 * 86_400, T0 - 86_400);
        let mut contents = crate::console::advisories::tests::contents();
        contents.licences = vec![current.clone(), lapsed.clone()];
        crate::console::advisories::tests::load(&env, &contents);
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let row = |id: &str| -> String {
            let start = page
                .body
                .find(&format!("<td class=\"mono\">{id}</td>"))
                .unwrap();
            page.body[start..start + page.body[start..].find("</tr>").unwrap()].to_owned()
        };
        let valid = row(&current.licence.licence_id);
        assert!(valid.contains("Example Corp / enterprise"), "{valid}");
        assert!(valid.contains("<td>stable</td>"), "{valid}");
        assert!(valid.contains("in 20 d"), "{valid}");
        assert!(!valid.contains("expired"), "{valid}");
        let expired = row(&lapsed.licence.licence_id);
        assert!(expired.contains("<td class=\"bad\">"), "{expired}");
        assert!(
            expired.contains("1 d ago") && expired.contains("expired: import a renewed licence"),
            "{expired}"
        );
        assert!(!page.body.contains("No licence imported"));
    }

    #[tokio::test]
    async fn empty_dashboard_says_what_to_do_next() {
        let env = ConsoleEnv::new();
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        for text in [
            "Stores open and writable.",
            "No HSM configured — this appliance scans and reports but signs nothing",
            "No licence imported",
            "No transparency log: no HSM is configured",
            "No kit imported yet — import one to see findings",
            "No scan yet — an operator can scan an image",
            "aria-current=\"page\">Dashboard<",
        ] {
            assert!(page.body.contains(text), "{text}: {}", page.body);
        }
        let operator = env.sign_in("opal", "operator");
        let page = env.get(&operator, "/").await;
        assert!(
            page.body
                .contains("<a href=\"/console/scans\">scan an image</a>")
        );
    }

    #[tokio::test]
    async fn dashboard_shows_health_freshness_signer_log_and_recent_verdicts() {
        let env = env_with_signing();
        signed_bundle(&env);
        signed_bundle(&env);
        channel_head(&env, "osv", 12);
        let digest = format!("sha256:{}", "a".repeat(64));
        scan(
            &env,
            "scan-1",
            "registry.example/app:1",
            &digest,
            Some("PASS"),
        );
        let other = format!("sha256:{}", "b".repeat(64));
        scan(
            &env,
            "scan-2",
            "<script>alert(1)</script>",
            &other,
            Some("FAIL"),
        );
        scan(
            &env,
            "scan-3",
            "registry.example/new:2",
            &format!("sha256:{}", "c".repeat(64)),
            None,
        );
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        for text in [
            "HSM ready (",
            // No licence in the feeds: the gate refuses, and the page says why.
            "<dt>Mode</dt><dd>community</dd>",
            "<dt>Entries</dt><dd>2</dd>",
            "Stale feeds.",
            "STALE</span> built 12 d ago",
            "registry.example/app:1",
            "verdict-pass\">PASS<",
            "verdict-fail\">FAIL<",
            "no report yet",
            &format!("/console/images/{digest}/findings"),
            "&#60;script&#62;alert(1)&#60;/script&#62;",
        ] {
            assert!(page.body.contains(text), "{text}: {}", page.body);
        }
        assert!(!page.body.contains("<script>alert"));
        assert!(
            !page
                .body
                .contains("Last checkpoint</dt><dd>not written yet")
        );
    }
}
