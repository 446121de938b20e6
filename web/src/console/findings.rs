//! Console: one image's findings under the current policy and advisories — the verdict, counts
//! by severity and decision, and every finding with its VEX decision and the rule that decided
//! it, filtered (`severity`, `kev`, `used`, `decision`), sorted and paginated. The page judges
//! the image afresh on every view (the same evaluation as `POST /api/reports`, stored nowhere);
//! operators store and sign that report with "Evaluate and store" (`POST`, audited).

use std::cmp::Ordering;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Extensions, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use stella_authority::Scope;
use stella_core::Digest;
use stella_decide::severity::Level;
use stella_decide::{Finding, FindingVerdict, Report};

use super::view::{Column, ListKeys, PER_PAGE, Pager, Params, Sort, When, error_page, secure};
use super::{Chrome, render};
use crate::AppState;
use crate::auth::{AuditContext, RouteTable};
use crate::reports::{self, Evaluated, ReportProblem, ReportRow};

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .console(
            Method::GET,
            "/console/images/{digest}/findings",
            Some(Scope::ScannerRead),
            findings_page,
        )
        .console(
            Method::POST,
            "/console/images/{digest}/findings",
            Some(Scope::ScannerScan),
            evaluate_and_store,
        )
}

/// Sortable columns: (key, label).
const COLUMNS: [(&str, &str); 5] = [
    ("advisory", "Advisory"),
    ("component", "Component"),
    ("severity", "Severity"),
    ("epss", "EPSS"),
    ("decision", "Decision"),
];

/// Severity levels, most severe first (filter choices and the counts' order).
const LEVELS: [&str; 6] = ["critical", "high", "medium", "low", "none", "unknown"];
/// Decisions, most severe first.
const DECISIONS: [&str; 5] = ["fail", "warn", "defer", "ignore", "pass"];

/// The findings page's URL for `image`.
pub(crate) fn findings_path(image: &Digest) -> String {
    format!("/console/images/{image}/findings")
}

/// The filters as given, each one of its allowed values or empty (unknown values are ignored).
#[derive(Debug, Clone, Default)]
struct Filters {
    severity: String,
    /// `yes` or `no`.
    kev: String,
    /// `yes` or `no`.
    used: String,
    decision: String,
}

impl Filters {
    fn read(params: &Params) -> Self {
        let pick = |key: &str, allowed: &[&str]| {
            params
                .get(key)
                .filter(|v| allowed.contains(v))
                .unwrap_or("")
                .to_owned()
        };
        Self {
            severity: pick("severity", &LEVELS),
            kev: pick("kev", &["yes", "no"]),
            used: pick("used", &["yes", "no"]),
            decision: pick("decision", &DECISIONS),
        }
    }

    fn any(&self) -> bool {
        !(self.severity.is_empty()
            && self.kev.is_empty()
            && self.used.is_empty()
            && self.decision.is_empty())
    }

    fn keeps(&self, finding: &Finding) -> bool {
        let yes_no = |wanted: &str, value: bool| wanted.is_empty() || (wanted == "yes") == value;
        (self.severity.is_empty() || finding.severity.level.as_str() == self.severity)
            && yes_no(&self.kev, finding.kev.is_some())
            && yes_no(&self.used, finding.used_by_entrypoint)
            && (self.decision.is_empty() || finding.decision.verdict.as_str() == self.decision)
    }
}

/// One finding as the table shows it.
#[derive(Debug, Clone)]
struct Row {
    advisory: String,
    advisory_href: String,
    aliases: String,
    summary: String,
    purl: String,
    layer: String,
    layer_short: String,
    used: bool,
    severity: &'static str,
    cvss: String,
    /// The date the CVE entered CISA KEV; empty when it is not in KEV.
    kev: String,
    epss: String,
    fixed: String,
    vex_status: &'static str,
    vex_justification: String,
    vex_explanation: String,
    /// Providers of the winning VEX claims.
    vex_providers: String,
    decision: &'static str,
    rule: String,
    reason: String,
    /// Rules that matched but did not decide (an expired waiver, an escalation not triggered).
    trace: String,
    // Sort keys.
    level: Level,
    epss_score: f64,
    verdict: FindingVerdict,
}

impl Row {
    fn of(finding: &Finding) -> Self {
        let layer = finding.layer_digest.clone().unwrap_or_default();
        let layer_short = layer.get(..19).unwrap_or(&layer).to_owned();
        Self {
            advisory: finding.advisory.id.clone(),
            advisory_href: super::advisories::advisory_href(&finding.advisory.id),
            aliases: finding.advisory.aliases.join(", "),
            summary: finding.advisory.summary.clone().unwrap_or_default(),
            purl: finding.component.purl.clone(),
            layer,
            layer_short,
            used: finding.used_by_entrypoint,
            severity: finding.severity.level.as_str(),
            cvss: finding
                .severity
                .cvss
                .map(|s| format!("CVSS {s:.1}"))
                .unwrap_or_default(),
            kev: finding
                .kev
                .as_ref()
                .map(|k| k.date_added.clone())
                .unwrap_or_default(),
            epss: finding
                .epss
                .as_ref()
                .map(|e| format!("{:.3} (p{:.0})", e.score, e.percentile * 100.0))
                .unwrap_or_default(),
            fixed: finding.fixed_version.clone().unwrap_or_default(),
            vex_status: finding
                .vex
                .status
                .map_or("none", stella_decide::vex::status_name),
            vex_justification: finding.vex.justification.clone().unwrap_or_default(),
            vex_explanation: finding.vex.explanation.clone(),
            vex_providers: finding.vex.providers.join(", "),
            decision: finding.decision.verdict.as_str(),
            rule: finding.decision.rule.clone(),
            reason: finding.decision.reason.clone(),
            trace: finding.decision.trace.join("; "),
            level: finding.severity.level,
            epss_score: finding.epss.as_ref().map_or(-1.0, |e| e.score),
            verdict: finding.decision.verdict,
        }
    }

    /// Orders by `key`; ties by decision (fail first), severity (most severe first), advisory
    /// id and purl whatever the direction, so the order is total and a page is stable.
    fn compare(&self, other: &Self, sort: &Sort) -> Ordering {
        let primary = match sort.key.as_str() {
            "component" => self.purl.cmp(&other.purl),
            "severity" => self.level.cmp(&other.level),
            "epss" => self.epss_score.total_cmp(&other.epss_score),
            "decision" => self.verdict.cmp(&other.verdict),
            _ => self.advisory.cmp(&other.advisory),
        };
        let primary = if sort.descending {
            primary.reverse()
        } else {
            primary
        };
        primary
            .then_with(|| self.verdict.cmp(&other.verdict))
            .then_with(|| other.level.cmp(&self.level))
            .then_with(|| self.advisory.cmp(&other.advisory))
            .then_with(|| self.purl.cmp(&other.purl))
    }
}

/// A count that links to the filter showing those findings.
struct Count {
    label: &'static str,
    count: usize,
    href: String,
}

/// The latest stored report of the image.
struct StoredView {
    id: String,
    verdict: String,
    created: Option<When>,
    /// Whether it was made from the same SBOM, advisories and policy as this page.
    current: bool,
}

impl StoredView {
    fn of(row: ReportRow, report: &Report, now: u64) -> Self {
        let current = row.policy_digest == report.policy.digest
            && row.sbom_digest.as_deref() == Some(report.subject.sbom_digest.as_str())
            && row.kit_id.as_deref() == Some(report.advisories.kit_id.as_str())
            && row.sequence == i64::try_from(report.advisories.sequence).ok();
        Self {
            created: When::parse(&row.created_at, now),
            id: row.id,
            verdict: row.verdict,
            current,
        }
    }
}

/// The licence violations: a second list on the page.
const LICENCE_LIST: ListKeys = ListKeys {
    page: "licence_page",
    sort: "licence_sort",
    anchor: Some("licences"),
};

/// Sortable columns of the licence violations.
const LICENCE_COLUMNS: [(&str, &str); 3] = [
    ("component", "Component"),
    ("licences", "Licences"),
    ("decision", "Decision"),
];

#[derive(Clone)]
struct LicenceRow {
    purl: String,
    licences: String,
    decision: &'static str,
    reason: String,
}

#[derive(Template)]
#[template(path = "findings.html")]
struct FindingsPage {
    chrome: Chrome,
    path: String,
    image: String,
    reference: String,
    verdict: &'static str,
    policy_name: String,
    policy_digest: String,
    revision: Option<i64>,
    sbom_digest: String,
    kit_id: String,
    sequence: u64,
    evaluated: Option<When>,
    evaluated_text: String,
    components: usize,
    findings: usize,
    unknowns: usize,
    by_severity: Vec<Count>,
    by_decision: Vec<Count>,
    stored: Option<StoredView>,
    can_store: bool,
    filters: Filters,
    filtered: bool,
    sort: String,
    levels: [&'static str; 6],
    decisions: [&'static str; 5],
    columns: Vec<Column>,
    rows: Vec<Row>,
    pager: Pager,
    licences: Vec<LicenceRow>,
    licence_columns: Vec<Column>,
    licence_pager: Pager,
}

/// The page when there is nothing to judge yet: what is missing and where to get it.
#[derive(Template)]
#[template(path = "findings_empty.html")]
struct EmptyPage {
    chrome: Chrome,
    image: String,
    message: String,
    action_href: &'static str,
    action_label: &'static str,
}

fn parse_image(chrome: &Chrome, digest: &str) -> Result<Digest, Response> {
    digest.parse::<Digest>().map_err(|_| {
        error_page(
            StatusCode::BAD_REQUEST,
            chrome.clone(),
            format!("“{digest}” is not an image digest (sha256: and 64 hex digits)."),
            "Open the image from the scans list.",
            "/console/scans",
        )
    })
}

/// The page for a report that could not be made: an empty state for what the user can fix,
/// an error page for the rest.
fn problem_page(chrome: Chrome, image: &Digest, problem: ReportProblem) -> Response {
    let empty = |status, message: String, action_href, action_label| {
        render(
            status,
            &EmptyPage {
                chrome: chrome.clone(),
                image: image.to_string(),
                message,
                action_href,
                action_label,
            },
        )
    };
    match problem {
        ReportProblem::NoAdvisories => empty(
            StatusCode::OK,
            "No kit imported yet — import one at /console/kits to see findings.".to_owned(),
            "/console/kits",
            "Import an offline kit",
        ),
        ReportProblem::NotScanned(_) => empty(
            StatusCode::NOT_FOUND,
            format!(
                "This image has not been scanned — scan {image} at /console/scans to see its \
                 findings."
            ),
            "/console/scans",
            "Scan an image",
        ),
        ReportProblem::NoRevision(n) => error_page(
            StatusCode::NOT_FOUND,
            chrome,
            format!("Policy revision {n} does not exist."),
            "Open the policy page to see the stored revisions.",
            "/console/policies",
        ),
        ReportProblem::Broken(broken) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            chrome,
            format!("The findings cannot be computed: {broken}."),
            "Check the daemon log and the data directory; then reload this page.",
            "/console/scans",
        ),
    }
}

/// A blocking task's answer; a task that panicked counts as a broken store.
fn joined<T>(
    result: Result<Result<T, ReportProblem>, tokio::task::JoinError>,
) -> Result<T, ReportProblem> {
    result.unwrap_or_else(|e| Err(ReportProblem::Broken(reports::Broken(e.to_string()))))
}

async fn findings_page(
    State(state): State<AppState>,
    chrome: Chrome,
    Path(digest): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("Findings", "scans");
    let image = match parse_image(&chrome, &digest) {
        Ok(image) => image,
        Err(response) => return response,
    };
    let now = state.clock().now_unix();
    let worker = state.clone();
    let judged = tokio::task::spawn_blocking(move || {
        let evaluated = reports::evaluate_image(&worker, &image, None, now)?;
        let latest = reports::report_rows(&worker, Some(&image.to_string()), 1, 0)?;
        Ok::<_, ReportProblem>((evaluated, latest.into_iter().next()))
    })
    .await;
    let (evaluated, latest) = match joined(judged) {
        Ok(found) => found,
        Err(problem) => return problem_page(chrome, &image, problem),
    };
    let params = Params::parse(query.as_deref());
    let page = findings_view(chrome, &params, evaluated, latest, now);
    render(StatusCode::OK, &page)
}

fn counts(
    params: &Params,
    path: &str,
    key: &str,
    labels: &[&'static str],
    totals: &std::collections::BTreeMap<String, usize>,
) -> Vec<Count> {
    labels
        .iter()
        .map(|label| Count {
            label,
            count: totals.get(*label).copied().unwrap_or(0),
            href: params.href(path, key, label),
        })
        .collect()
}

fn findings_view(
    chrome: Chrome,
    params: &Params,
    evaluated: Evaluated,
    latest: Option<ReportRow>,
    now: u64,
) -> FindingsPage {
    let report = &evaluated.report;
    let path = findings_path(&evaluated.image);
    let filters = Filters::read(params);
    let sort = Sort::new(params, &COLUMNS, "decision");
    let mut rows: Vec<Row> = report
        .findings
        .iter()
        .filter(|f| filters.keeps(f))
        .map(Row::of)
        .collect();
    rows.sort_by(|a, b| a.compare(b, &sort));
    let pager = Pager::new(params, &path, rows.len(), PER_PAGE);
    let rows = pager.slice(&rows);
    let mut licences: Vec<LicenceRow> = report
        .licences
        .iter()
        .map(|l| LicenceRow {
            purl: l.purl.clone(),
            licences: l.licences.join(", "),
            decision: l.verdict.as_str(),
            reason: l.reason.clone(),
        })
        .collect();
    let licence_sort = Sort::of_list(params, &LICENCE_COLUMNS, "component", LICENCE_LIST);
    licence_sort.apply(&mut licences, |l, key| {
        let first = match key {
            "licences" => l.licences.clone(),
            "decision" => l.decision.to_owned(),
            _ => String::new(),
        };
        (first, l.purl.clone())
    });
    let licence_pager = Pager::of_list(params, &path, licences.len(), PER_PAGE, LICENCE_LIST);
    let licences = licence_pager.slice(&licences);
    FindingsPage {
        can_store: chrome.can(Scope::ScannerScan),
        columns: sort.columns(params, &path, &COLUMNS),
        licence_columns: licence_sort.columns(params, &path, &LICENCE_COLUMNS),
        sort: params.get("sort").unwrap_or("").to_owned(),
        by_severity: counts(
            params,
            &path,
            "severity",
            &LEVELS,
            &report.counts.by_severity,
        ),
        by_decision: counts(
            params,
            &path,
            "decision",
            &DECISIONS,
            &report.counts.by_decision,
        ),
        chrome,
        image: evaluated.image.to_string(),
        reference: report.subject.image.clone().unwrap_or_default(),
        verdict: reports::verdict_text(report.verdict),
        policy_name: report.policy.name.clone(),
        policy_digest: report.policy.digest.clone(),
        revision: evaluated.revision,
        sbom_digest: report.subject.sbom_digest.clone(),
        kit_id: report.advisories.kit_id.clone(),
        sequence: report.advisories.sequence,
        evaluated: When::parse(&report.evaluated_at, now),
        evaluated_text: report.evaluated_at.clone(),
        components: report.counts.components,
        findings: report.counts.findings,
        unknowns: report.unknowns.len(),
        stored: latest.map(|row| StoredView::of(row, report, now)),
        filtered: filters.any(),
        filters,
        levels: LEVELS,
        decisions: DECISIONS,
        path,
        rows,
        pager,
        licence_pager,
        licences,
    }
}

/// "Evaluate and store": the report the page shows, stored, signed when the appliance can
/// sign, and audited (`report.create`) — the same function `POST /api/reports` runs.
async fn evaluate_and_store(
    State(state): State<AppState>,
    chrome: Chrome,
    extensions: Extensions,
    Path(digest): Path<String>,
) -> Response {
    let chrome = chrome.page("Findings", "scans");
    let image = match parse_image(&chrome, &digest) {
        Ok(image) => image,
        Err(response) => return response,
    };
    let ctx = AuditContext::from_parts(&extensions);
    let now = state.clock().now_unix();
    let worker = state.clone();
    let actor = chrome.user.clone();
    let made = tokio::task::spawn_blocking(move || {
        reports::create_report(&worker, &image, None, now, &actor, &ctx)
    })
    .await;
    match joined(made) {
        Ok(_) => secure(Redirect::to(&findings_path(&image)).into_response()),
        Err(problem) => problem_page(chrome, &image, problem),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use stella_importer::model::{Affected, Severity};
    use stella_importer::vex::{VexFormat, VexStatus};
    use stella_importer::{Advisory, EpssEntry, KevEntry, KitContents, VexClaim};
    use stella_store::rusqlite::params;

    use crate::console::testing::{ConsoleEnv, cells};

    /// The scanned image of these tests.
    pub(crate) const IMAGE: &str =
        "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const LAYER: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    /// Extra findings (no severity: the default policy warns) so the list has two pages.
    const BULK: usize = 52;

    fn advisory(id: &str, package: &str, severity: Option<&str>, summary: &str) -> Advisory {
        let mut advisory = Advisory::new(id, format!("osv:{id}"));
        advisory.summary = Some(summary.to_owned());
        advisory.affected.push(Affected {
            ecosystem: "PyPI".into(),
            package: package.into(),
            purl: Some(format!("pkg:pypi/{package}")),
            ranges: Vec::new(),
            requirements: Vec::new(),
            versions: vec!["1.0".into()],
            fixed: vec!["1.1".into()],
            distro: Vec::new(),
            source: format!("osv:{id}"),
        });
        if let Some(vector) = severity {
            advisory.severities.push(Severity {
                kind: "CVSS_V3".into(),
                vector: vector.into(),
                score: None,
                source: "osv".into(),
            });
        }
        advisory
    }

    /// Imports a signed kit into `env`: a critical advisory on `requests` (used by the
    /// entrypoint), a KEV-listed one on `urllib3`, one on `jinja2` that a VEX claim says does not
    /// affect it, a low one on `six` with an EPSS score, and [`BULK`] more on `bulk`.
    pub(crate) fn import_kit(env: &ConsoleEnv) {
        let mut advisories = vec![
            advisory(
                "CVE-2024-1001",
                "requests",
                Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
                "Header <injection> in requests",
            ),
            advisory("CVE-2024-1002", "urllib3", None, "Proxy leak in urllib3"),
            advisory("CVE-2024-1003", "jinja2", None, "Sandbox escape in jinja2"),
            advisory(
                "CVE-2024-1004",
                "six",
                Some("CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"),
                "Minor issue in six",
            ),
        ];
        advisories[0].aliases.insert("GHSA-aaaa-bbbb-cccc".into());
        for n in 0..BULK {
            advisories.push(advisory(
                &format!("CVE-2024-{}", 2000 + n),
                "bulk",
                None,
                "bulk",
            ));
        }
        let contents = KitContents {
            advisories,
            vex_claims: vec![VexClaim {
                product: "pkg:pypi/jinja2".into(),
                subcomponents: Vec::new(),
                vulnerability: "CVE-2024-1003".into(),
                status: VexStatus::NotAffected,
                justification: Some("vulnerable_code_not_in_execute_path".into()),
                impact_statement: None,
                action_statement: None,
                provider: "Example Vendor".into(),
                timestamp: Some("2025-11-01T00:00:00Z".into()),
                format: VexFormat::Openvex,
                document: "example-vex-1".into(),
            }],
            kev: vec![KevEntry {
                cve: "CVE-2024-1002".into(),
                date_added: "2025-01-15".into(),
                due_date: None,
                ransomware: None,
                vendor: None,
                product: None,
                name: None,
            }],
            epss: vec![EpssEntry {
                cve: "CVE-2024-1004".into(),
                score: 0.1234,
                percentile: 0.5,
                date: None,
            }],
            ..KitContents::default()
        };
        crate::console::advisories::tests::load(env, &contents);
    }

    /// Stores `image` as scanned, with a CycloneDX SBOM of `packages` (name, used by the
    /// entrypoint), each at version 1.0 in one layer — what a scan leaves in the catalog.
    pub(crate) fn store_scan(env: &ConsoleEnv, image: &str, packages: &[(&str, bool)]) {
        store_licensed_scan(env, image, packages, &[]);
    }

    /// [`store_scan`], the packages named in `licences` declaring those SPDX licence ids.
    fn store_licensed_scan(
        env: &ConsoleEnv,
        image: &str,
        packages: &[(&str, bool)],
        licences: &[(&str, &str)],
    ) {
        let components: Vec<serde_json::Value> = packages
            .iter()
            .map(|(name, used)| {
                let mut component = serde_json::json!({
                    "type": "library", "name": name, "version": "1.0",
                    "purl": format!("pkg:pypi/{name}@1.0"),
                    "properties": [
                        { "name": "stella:layerDigest", "value": LAYER },
                        { "name": "stella:usedByEntrypoint", "value": used.to_string() },
                    ],
                });
                if let Some((_, id)) = licences.iter().find(|(n, _)| n == name) {
                    component["licenses"] = serde_json::json!([{ "license": { "id": id } }]);
                }
                component
            })
            .collect();
        let sbom = serde_json::to_vec(&serde_json::json!({
            "bomFormat": "CycloneDX", "specVersion": "1.6",
            "metadata": { "component": { "type": "container", "name": "registry.local/app",
                                         "version": image } },
            "components": components,
        }))
        .unwrap();
        let stores = env.state.stores();
        let blob = stores.blobs.put(&sbom).unwrap();
        let conn = stores.catalog.connection();
        conn.execute(
            "INSERT INTO images (digest, reference, config, created_at) VALUES (?1, ?2, NULL, ?3)",
            params![image, "registry.local/app:1.0", "2025-11-29T10:00:00Z"],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO artifacts (kind, format, digest, size, image_digest, created_at)
             VALUES ('sbom', 'cdx-json', ?1, ?2, ?3, ?4)",
            params![
                blob.to_string(),
                sbom.len() as i64,
                image,
                "2025-11-29T10:00:00Z"
            ],
        )
        .unwrap();
    }

    /// The findings page of `IMAGE` with `query`.
    fn path(query: &str) -> String {
        format!("/console/images/{IMAGE}/findings{query}")
    }

    fn scanned_env() -> ConsoleEnv {
        let env = ConsoleEnv::new();
        import_kit(&env);
        store_scan(
            &env,
            IMAGE,
            &[
                ("requests", true),
                ("urllib3", false),
                ("jinja2", false),
                ("six", false),
                ("bulk", false),
            ],
        );
        env
    }

    /// The table rows of a page (between `<tbody>` and `</tbody>`), one string per row.
    fn rows(body: &str) -> Vec<String> {
        let Some(start) = body.find("<table class=\"findings\">") else {
            return Vec::new();
        };
        let table = &body[start..];
        let table = &table[..table.find("</table>").unwrap()];
        table
            .split("<tr>")
            .skip(2)
            .map(|r| r.split("</tr>").next().unwrap().to_owned())
            .collect()
    }

    fn row<'a>(rows: &'a [String], advisory: &str) -> &'a str {
        rows.iter()
            .find(|r| r.contains(&format!(">{advisory}</a>")))
            .unwrap_or_else(|| panic!("no row for {advisory} in {rows:#?}"))
    }

    #[tokio::test]
    async fn findings_show_verdict_vex_decision_and_deciding_rule() {
        let env = scanned_env();
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, &path("")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        let body = &page.body;
        assert!(
            body.contains("<span class=\"badge verdict-fail\">FAIL</span>"),
            "{body}"
        );
        // What the report was computed from.
        let default = stella_decide::Policy::default_policy().unwrap();
        assert!(body.contains(&default.digest().unwrap()));
        assert!(body.contains("built-in default policy"));
        let sbom_digest = {
            let bytes = env
                .state
                .stores()
                .artifact(IMAGE, "sbom", "cdx-json")
                .unwrap()
                .unwrap();
            stella_decide::components_from_cyclonedx(&bytes, &Default::default())
                .unwrap()
                .sbom_digest
        };
        assert!(body.contains(&sbom_digest), "{body}");
        let (kit_id, sequence) = env
            .state
            .feeds()
            .snapshot(&env.state.stores().catalog)
            .unwrap()
            .unwrap();
        assert!(body.contains(&format!(
            "kit <span class=\"mono\">{kit_id}</span>, sequence {sequence}"
        )));
        assert!(body.contains("Findings 1–50 of 56"), "{body}");

        // Failing findings first, the most severe of them first.
        let table = rows(body);
        assert!(table[0].contains(">CVE-2024-1001</a>"), "{:#?}", table[0]);
        let critical = row(&table, "CVE-2024-1001");
        assert!(critical.contains("href=\"/console/advisories/CVE-2024-1001\""));
        assert!(critical.contains("GHSA-aaaa-bbbb-cccc"));
        assert!(critical.contains("pkg:pypi/requests@1.0"));
        assert!(critical.contains(&LAYER[..19]));
        assert!(critical.contains("<td>yes</td>"), "used: {critical}");
        assert!(critical.contains("sev-critical") && critical.contains("CVSS 9.8"));
        assert!(critical.contains(">1.1</td>"), "fixed version: {critical}");
        assert!(critical.contains("<code>critical-or-high-fails</code>"));
        assert!(critical.contains("decision-fail"));
        // The summary is escaped in its attribute.
        assert!(
            critical.contains("Header &#60;injection&#62;"),
            "{critical}"
        );

        let kev = row(&table, "CVE-2024-1002");
        assert!(kev.contains("in CISA KEV since 2025-01-15"));
        assert!(kev.contains("<code>known-exploited-fails</code>"));

        // The VEX claim cleared the jinja2 finding: status, justification, and rule `vex`.
        // Passing findings come last, on the second page.
        assert!(!table.iter().any(|r| r.contains(">CVE-2024-1003</a>")));
        let second = rows(&env.get(&viewer, &path("?page=2")).await.body);
        let vex = row(&second, "CVE-2024-1003");
        assert!(vex.contains("vex-not_affected"), "{vex}");
        assert!(vex.contains("vulnerable_code_not_in_execute_path"));
        assert!(vex.contains("<code>vex</code>"));
        assert!(vex.contains("by Example Vendor"), "{vex}");
        assert!(vex.contains("decision-pass"));

        let low = row(&table, "CVE-2024-1004");
        assert!(low.contains("0.123 (p50)"), "{low}");
        assert!(low.contains("<code>default</code>") && low.contains("decision-warn"));

        // Counts by severity link to the filter.
        assert!(body.contains(&format!(
            "href=\"/console/images/{IMAGE}/findings?severity=critical\""
        )));
        // Nothing stored yet; viewers get no store button.
        assert!(body.contains("No report of this image is stored yet"));
        assert!(!body.contains("Evaluate and store report"));
        assert!(body.contains("Operators can store"));
    }

    #[tokio::test]
    async fn filters_sort_and_pages() {
        let env = scanned_env();
        let viewer = env.sign_in("val", "viewer");
        let only = |body: &str| -> Vec<String> {
            let mut ids: Vec<String> = rows(body)
                .iter()
                .map(|r| {
                    let start = r.find("\">CVE-").unwrap() + 2;
                    r[start..start + 13].to_owned()
                })
                .collect();
            ids.sort();
            ids
        };
        for (query, expected) in [
            ("?decision=fail", vec!["CVE-2024-1001", "CVE-2024-1002"]),
            ("?kev=yes", vec!["CVE-2024-1002"]),
            ("?used=yes", vec!["CVE-2024-1001"]),
            ("?severity=low", vec!["CVE-2024-1004"]),
            ("?decision=pass", vec!["CVE-2024-1003"]),
            ("?decision=fail&used=no", vec!["CVE-2024-1002"]),
        ] {
            let page = env.get(&viewer, &path(query)).await;
            assert_eq!(page.status, StatusCode::OK, "{query}");
            assert_eq!(only(&page.body), expected, "{query}");
        }
        // The filter form shows the filters in force.
        let page = env.get(&viewer, &path("?kev=yes&decision=fail")).await;
        assert!(
            page.body
                .contains("<option value=\"yes\" selected>in KEV</option>")
        );
        assert!(
            page.body
                .contains("<option value=\"fail\" selected>fail</option>")
        );
        assert!(page.body.contains("Clear filters"));
        // Filters that match nothing say so; unknown values are ignored.
        let page = env.get(&viewer, &path("?kev=yes&used=yes")).await;
        assert!(page.body.contains("No findings match these filters"));
        let page = env.get(&viewer, &path("?severity=%3Cscript%3E")).await;
        assert!(page.body.contains("1–50 of 56"), "{}", page.body);

        // Sorting: by advisory id both ways; an unknown key falls back to the
        // default (decision, then severity).
        let page = env.get(&viewer, &path("?sort=advisory")).await;
        assert!(rows(&page.body)[0].contains(">CVE-2024-1001</a>"));
        assert!(page.body.contains("aria-sort=\"ascending\""));
        let page = env.get(&viewer, &path("?sort=-advisory")).await;
        assert!(rows(&page.body)[0].contains(">CVE-2024-2051</a>"));
        let page = env.get(&viewer, &path("?sort=-epss&decision=warn")).await;
        assert!(rows(&page.body)[0].contains(">CVE-2024-1004</a>"));
        let page = env.get(&viewer, &path("?sort=bogus")).await;
        assert!(rows(&page.body)[0].contains(">CVE-2024-1001</a>"));

        // The second page holds the rest, and links keep the sort.
        let page = env.get(&viewer, &path("?sort=advisory&page=2")).await;
        assert!(page.body.contains("51–56 of 56"), "{}", page.body);
        assert_eq!(rows(&page.body).len(), 6);
        assert!(
            page.body.contains(&format!(
                "href=\"/console/images/{IMAGE}/findings?page=1&#38;sort=advisory\" rel=\"prev\""
            )),
            "{}",
            page.body
        );
    }

    #[tokio::test]
    async fn licence_violations_are_sorted_and_paged_apart_from_the_findings() {
        let env = ConsoleEnv::new();
        import_kit(&env);
        store_licensed_scan(
            &env,
            IMAGE,
            &[
                ("zeta", false),
                ("alpha", false),
                ("mid", false),
                ("ok", false),
            ],
            &[
                ("zeta", "AGPL-3.0-only"),
                ("alpha", "GPL-3.0-only"),
                ("mid", "AGPL-3.0-or-later"),
                ("ok", "MIT"),
            ],
        );
        let ctx = crate::auth::AuditContext {
            request_id: None,
            source: "test".into(),
        };
        let policy = "apiVersion: stella.policy/v1\nname: licences\n\
                      licences:\n  deny: [\"AGPL-3.0-*\", \"GPL-3.0-*\"]\n";
        crate::reports::create_policy_revision(&env.state, policy.as_bytes(), "amy", &ctx).unwrap();
        let viewer = env.sign_in("val", "viewer");
        let components = |body: &str| {
            cells(
                body,
                "<h2 id=\"licences\">",
                "<td class=\"mono\">pkg:pypi/",
                "@",
            )
        };
        let page = env.get(&viewer, &path("")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body.contains("Licence violations 1–3 of 3"),
            "{}",
            page.body
        );
        // By component by default; MIT is no violation.
        assert_eq!(components(&page.body), ["alpha", "mid", "zeta"]);
        let header = format!(
            "<th scope=\"col\" aria-sort=\"ascending\"><a href=\"/console/images/{IMAGE}/\
             findings?licence_sort=-component#licences\">Component</a></th>"
        );
        assert!(page.body.contains(&header), "{}", page.body);
        // By licence, descending: AGPL-3.0-only, then AGPL-3.0-or-later, then GPL, reversed.
        let page = env.get(&viewer, &path("?licence_sort=-licences")).await;
        assert_eq!(components(&page.body), ["alpha", "mid", "zeta"]);
        let page = env.get(&viewer, &path("?licence_sort=licences")).await;
        assert_eq!(components(&page.body), ["zeta", "mid", "alpha"]);
        // The findings table keeps its own sort and page.
        let page = env
            .get(&viewer, &path("?licence_sort=licences&page=2"))
            .await;
        assert!(
            page.body
                .contains("aria-label=\"Pages of licence violations\"")
        );
        assert!(page.body.contains(&format!(
            "href=\"/console/images/{IMAGE}/findings?licence_sort=-licences&#38;page=2#licences\""
        )));
    }

    #[tokio::test]
    async fn empty_states_say_what_to_do() {
        let env = ConsoleEnv::new();
        let viewer = env.sign_in("val", "viewer");
        store_scan(&env, IMAGE, &[("requests", true)]);
        let page = env.get(&viewer, &path("")).await;
        assert_eq!(page.status, StatusCode::OK);
        page.assert_secure();
        assert!(
            page.body
                .contains("No kit imported yet — import one at /console/kits to see findings."),
            "{}",
            page.body
        );
        assert!(page.body.contains("href=\"/console/kits\""));

        import_kit(&env);
        let other = format!("sha256:{}", "2".repeat(64));
        let page = env
            .get(&viewer, &format!("/console/images/{other}/findings"))
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert!(page.body.contains("has not been scanned"), "{}", page.body);
        assert!(page.body.contains("href=\"/console/scans\""));

        let page = env.get(&viewer, "/console/images/latest/findings").await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.body.contains("is not an image digest"));

        // Scanned, kit loaded, nothing vulnerable: PASS with no findings.
        let clean = format!("sha256:{}", "3".repeat(64));
        store_scan(&env, &clean, &[("flask", true)]);
        let page = env
            .get(&viewer, &format!("/console/images/{clean}/findings"))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("verdict-pass"));
        assert!(
            page.body
                .contains("No findings: no advisory in the imported kit")
        );
    }

    #[tokio::test]
    async fn operators_store_the_report_viewers_cannot() {
        let env = scanned_env();
        let operator = env.sign_in("olga", "operator");
        let page = env.get(&operator, &path("")).await;
        assert!(page.body.contains("Evaluate and store report"));

        let viewer = env.sign_in("val", "viewer");
        let page = env.post(&viewer, &path(""), &[]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let no_csrf = env
            .send(
                Request::builder()
                    .method(Method::POST)
                    .uri(path(""))
                    .header(header::HOST, "stella.test")
                    .header(header::COOKIE, &operator)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(""))
                    .unwrap(),
            )
            .await;
        assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
        let catalog = &env.state.stores().catalog;
        assert_eq!(catalog.audit_count("report.create").unwrap(), 0);

        let page = env.post(&operator, &path(""), &[]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.headers[header::LOCATION], path("").as_str());
        assert_eq!(catalog.audit_count("report.create").unwrap(), 1);
        let stored = crate::reports::report_rows(&env.state, Some(IMAGE), 10, 0).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].verdict, "FAIL");

        let page = env.get(&operator, &path("")).await;
        assert!(page.body.contains(&stored[0].id), "{}", page.body);
        assert!(
            page.body
                .contains("Made from the same SBOM, advisories and policy")
        );

        // A new policy revision makes the stored report stale, and the page says so.
        let ctx = crate::auth::AuditContext {
            request_id: None,
            source: "test".into(),
        };
        // Its waiver of CVE-2024-1004 has expired: the finding fails by default, and the row
        // says the waiver matched without deciding.
        let strict = "apiVersion: stella.policy/v1\nname: strict\ndefaultAction: fail\nrules:
  - name: waive-six
    match:
      cve: CVE-2024-1004
    action: ignore
    until: 2025-01-01
    justification: accepted risk
";
        let saved =
            crate::reports::create_policy_revision(&env.state, strict.as_bytes(), "amy", &ctx)
                .unwrap();
        let page = env.get(&operator, &path("")).await;
        assert!(page.body.contains("Made from an older SBOM, kit or policy"));
        assert!(page.body.contains(&saved.digest));
        assert!(
            page.body
                .contains("href=\"/console/policies/1\">revision 1</a>")
        );
        let waived = row(&rows(&page.body), "CVE-2024-1004").to_owned();
        assert!(waived.contains("<code>default</code>"), "{waived}");
        assert!(waived.contains("also matched: ") && waived.contains("waive-six"));
    }
}
