//! Console: advisory search over the current feed generation's tantivy index (by id, alias,
//! related id, package and free text), with facet counts per ecosystem, channel and KEV over the
//! whole result set as filter links, and one advisory's page: aliases, affected packages with
//! ranges and fixed versions, severities, KEV and EPSS, references, VEX statements, and the
//! channel and kit it came from. Viewers and up.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use stella_authority::Scope;
use stella_decide::severity::{self, Level};
use stella_feeds::{
    FacetCount, Generation, QueryProblem, SEARCH_FIELDS, SearchOrder, SearchPage, SearchRequest,
    SnippetPart,
};
use stella_importer::Advisory;
use stella_importer::model::{DistroStatus, RangeEvent, Reference};

use super::view::{Column, ListKeys, PER_PAGE, Pager, Params, Sort, When, error_page};
use super::{Chrome, render};
use crate::AppState;
use crate::auth::RouteTable;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .console(Method::GET, PATH, Some(Scope::ScannerRead), advisories_page)
        .console(
            Method::GET,
            "/console/advisories/{id}",
            Some(Scope::ScannerRead),
            advisory_page,
        )
}

const PATH: &str = "/console/advisories";

/// Sortable columns of the search results; without `sort` they are ranked by relevance.
const HIT_COLUMNS: [(&str, &str); 2] = [("id", "Id"), ("severity", "Severity")];

/// `/console/advisories/{id}` with the id percent-encoded as one path segment.
pub(super) fn advisory_href(id: &str) -> String {
    format!("{PATH}/{}", path_segment(id))
}

/// Percent-encodes everything but unreserved characters (and ':'), so an id stays one path
/// segment whatever it holds.
pub(super) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Channel → "kit KIT-ID (sequence N)" of the channel's head, the kit whose load made the
/// channel's records current.
pub(super) fn kit_labels(state: &AppState) -> BTreeMap<String, String> {
    let now = state.clock().now_unix();
    match state.feeds().freshness(&state.stores().catalog, now, 0) {
        Ok(heads) => heads
            .into_iter()
            .map(|h| {
                (
                    h.channel,
                    format!("kit {} (sequence {})", h.kit_id, h.sequence),
                )
            })
            .collect(),
        Err(err) => {
            tracing::warn!(%err, "channel heads unreadable");
            BTreeMap::new()
        }
    }
}

/// The page shown before the first kit: what to do about it.
pub(super) fn no_kit(chrome: Chrome, what: &str) -> Response {
    error_page(
        StatusCode::OK,
        chrome,
        format!("No kit imported yet: there are no {what} to show."),
        "Import an offline kit at /console/kits (operators), then come back here.",
        "/console/kits",
    )
}

/// An error page for a feed store that failed.
pub(super) fn store_failed(chrome: Chrome, err: impl std::fmt::Display) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        chrome,
        format!("The feed store cannot be read: {err}."),
        "Check the daemon log and the data directory's disk, then reload this page.",
        "/",
    )
}

/// A filter link with its count.
struct FacetLink {
    label: String,
    count: u64,
    href: String,
    active: bool,
}

struct FacetGroup {
    name: &'static str,
    links: Vec<FacetLink>,
}

/// A filter in force, with the link that removes it.
struct ActiveFilter {
    label: String,
    clear: String,
}

struct HitRow {
    id: String,
    href: String,
    aliases: Vec<String>,
    packages: String,
    ecosystems: String,
    channel: String,
    level: &'static str,
    cvss: String,
    kev: bool,
    snippet: Vec<SnippetPart>,
}

/// A query that did not parse: what is wrong, what to do, and a ready-made fix.
struct Problem {
    what: String,
    fix: String,
    quoted: Option<String>,
}

#[derive(Template)]
#[template(path = "advisories.html")]
struct SearchView {
    chrome: Chrome,
    q: String,
    ecosystem: String,
    channel: String,
    kev: String,
    problem: Option<Problem>,
    filters: Vec<ActiveFilter>,
    facets: Vec<FacetGroup>,
    hits: Vec<HitRow>,
    pager: Pager,
    fields: String,
    columns: Vec<Column>,
    /// How the hits are ordered, for the caption.
    order: &'static str,
    /// The link back to relevance order, when sorted by a column.
    by_relevance: Option<String>,
    /// A sort was asked for and the index cannot sort.
    unsortable: bool,
    /// The `sort` parameter, kept by the search form.
    sort: String,
}

fn explain(problem: &QueryProblem, q: &str, params: &Params) -> Problem {
    let words: String = q.chars().filter(|c| *c != '"').collect();
    let quoted = Some(params.href(PATH, "q", &format!("\"{words}\"")));
    match problem {
        QueryProblem::UnknownField { field } => Problem {
            what: format!("“{field}:” looks like a field name, and there is no field “{field}”."),
            fix: format!(
                "Quote the text to search for it as written, or remove the ':'. Fields you can \
                 name: {}.",
                SEARCH_FIELDS.join(", ")
            ),
            quoted,
        },
        QueryProblem::NotANumber { field } => Problem {
            what: format!("“{field}:” takes a number."),
            fix: "Write kev:1 (listed in KEV) or kev:0, cvss:[7 TO 10] for a score range — or \
                  use the filter links."
                .to_owned(),
            quoted: None,
        },
        QueryProblem::OnlyExclusions => Problem {
            what: "The query only excludes words (-word); there is nothing to search for."
                .to_owned(),
            fix: "Add a word to search for, or clear the query to list every advisory.".to_owned(),
            quoted: None,
        },
        QueryProblem::Syntax { detail } => Problem {
            what: format!("The query does not parse: {detail}."),
            fix: "Quotes or brackets may be unbalanced, or an operator (AND, OR, +, -, :) has \
                  nothing to act on. Quote the text to search for it as written, or remove the \
                  operator."
                .to_owned(),
            quoted,
        },
        _ => Problem {
            what: format!("The query cannot be used: {problem}."),
            fix: "Quote the text to search for it as written.".to_owned(),
            quoted,
        },
    }
}

fn facet_group(
    name: &'static str,
    key: &str,
    current: &str,
    counts: &[FacetCount],
    params: &Params,
) -> FacetGroup {
    FacetGroup {
        name,
        links: counts
            .iter()
            .map(|f| {
                // The active value's link removes the filter again.
                let active = f.value == current;
                FacetLink {
                    label: f.value.clone(),
                    count: f.count,
                    href: params.href(PATH, key, if active { "" } else { &f.value }),
                    active,
                }
            })
            .collect(),
    }
}

/// The level a CVSS score falls in, `unknown` without one.
fn level_of(cvss: f64) -> &'static str {
    if cvss > 0.0 {
        Level::from_score(cvss).as_str()
    } else {
        Level::Unknown.as_str()
    }
}

/// Up to four items, then "+ N more".
fn some_of(items: &[String]) -> String {
    let unique: BTreeSet<&String> = items.iter().collect();
    let mut shown: Vec<&str> = unique.iter().take(4).map(|s| s.as_str()).collect();
    let more = unique.len().saturating_sub(4);
    let more_text = format!("+ {more} more");
    if more > 0 {
        shown.push(&more_text);
    }
    shown.join(", ")
}

fn hit_rows(page: SearchPage) -> Vec<HitRow> {
    page.hits
        .into_iter()
        .map(|h| {
            let hit = h.hit;
            HitRow {
                href: advisory_href(&hit.id),
                level: level_of(hit.cvss),
                cvss: if hit.cvss > 0.0 {
                    format!("{:.1}", hit.cvss)
                } else {
                    String::new()
                },
                packages: some_of(&hit.packages),
                ecosystems: hit.ecosystems.join(", "),
                id: hit.id,
                aliases: hit.aliases,
                channel: hit.channel,
                kev: hit.kev,
                snippet: h.snippet,
            }
        })
        .collect()
}

async fn advisories_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("Advisories", "advisories");
    let Some(generation) = state.feeds().current() else {
        return no_kit(chrome, "advisories");
    };
    let params = Params::parse(query.as_deref());
    let q = params.get("q").unwrap_or("").trim().to_owned();
    let ecosystem = params.get("ecosystem").unwrap_or("").to_owned();
    let channel = params.get("channel").unwrap_or("").to_owned();
    let kev = params.get("kev").unwrap_or("").to_owned();
    let sort = Sort::new(&params, &HIT_COLUMNS, "relevance");
    let requested_page = params
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let request = SearchRequest {
        query: q.clone(),
        ecosystem: (!ecosystem.is_empty()).then(|| ecosystem.clone()),
        channel: (!channel.is_empty()).then(|| channel.clone()),
        kev: match kev.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
        order: match (sort.key.as_str(), sort.descending) {
            ("id", descending) => SearchOrder::Id { descending },
            ("severity", descending) => SearchOrder::Severity { descending },
            _ => SearchOrder::Relevance,
        },
        offset: (requested_page - 1).saturating_mul(PER_PAGE),
        limit: PER_PAGE,
    };
    let requested_order = request.order;
    let searched = tokio::task::spawn_blocking(move || search(&generation, request)).await;
    let (found, problem) = match searched {
        Ok(Ok(Ok(page))) => (Some(page), None),
        Ok(Ok(Err(problem))) => (None, Some(explain(&problem, &q, &params))),
        Ok(Err(err)) => return store_failed(chrome, err),
        Err(err) => return store_failed(chrome, err),
    };
    let total = found.as_ref().map_or(0, |p| p.total);
    let pager = Pager::new(&params, PATH, total, PER_PAGE);
    let order = found.as_ref().map_or(requested_order, |p| p.order);
    let mut facets = Vec::new();
    if let Some(counts) = found.as_ref().and_then(|p| p.facets.as_ref()) {
        facets.push(facet_group(
            "Ecosystem",
            "ecosystem",
            &ecosystem,
            &counts.ecosystems,
            &params,
        ));
        facets.push(facet_group(
            "Channel",
            "channel",
            &channel,
            &counts.channels,
            &params,
        ));
        let kev_counts = [
            FacetCount {
                value: "yes".into(),
                count: counts.kev,
            },
            FacetCount {
                value: "no".into(),
                count: counts.not_kev,
            },
        ];
        facets.push(facet_group(
            "In CISA KEV",
            "kev",
            &kev,
            &kev_counts,
            &params,
        ));
    }
    let filters = [
        ("ecosystem", "ecosystem", &ecosystem),
        ("channel", "channel", &channel),
        ("kev", "in KEV", &kev),
    ]
    .into_iter()
    .filter(|(_, _, value)| !value.is_empty())
    .map(|(key, label, value)| ActiveFilter {
        label: format!("{label}: {value}"),
        clear: params.href(PATH, key, ""),
    })
    .collect();
    render(
        StatusCode::OK,
        &SearchView {
            chrome,
            q,
            ecosystem,
            channel,
            kev,
            problem,
            filters,
            facets,
            hits: found.map(hit_rows).unwrap_or_default(),
            pager,
            fields: SEARCH_FIELDS.join(", "),
            columns: sort.columns(&params, PATH, &HIT_COLUMNS),
            order: match order {
                SearchOrder::Relevance => "best match first",
                SearchOrder::Id { descending: false } => "by id",
                SearchOrder::Id { descending: true } => "by id, Z to A",
                SearchOrder::Severity { descending: true } => "highest CVSS first",
                SearchOrder::Severity { descending: false } => "lowest CVSS first",
            },
            by_relevance: (order != SearchOrder::Relevance).then(|| params.href(PATH, "sort", "")),
            unsortable: order != requested_order,
            sort: params.get("sort").unwrap_or("").to_owned(),
        },
    )
}

/// Runs `request`; a page number past the end shows the last page, as the pager does.
fn search(
    generation: &Generation,
    mut request: SearchRequest,
) -> Result<Result<SearchPage, QueryProblem>, stella_feeds::FeedError> {
    let page = match generation.search_page(&request)? {
        Ok(page) => page,
        Err(problem) => return Ok(Err(problem)),
    };
    if page.hits.is_empty() && page.total > 0 && request.offset >= page.total {
        request.offset = (page.total - 1) / PER_PAGE * PER_PAGE;
        return generation.search_page(&request);
    }
    Ok(Ok(page))
}

/// A link to another advisory page, or plain text.
struct IdLink {
    text: String,
    href: String,
}

fn id_links<'a>(ids: impl IntoIterator<Item = &'a String>) -> Vec<IdLink> {
    ids.into_iter()
        .map(|id| IdLink {
            text: id.clone(),
            href: advisory_href(id),
        })
        .collect()
}

struct AffectedRow {
    ecosystem: String,
    package: String,
    purl: String,
    ranges: Vec<String>,
    requirements: Vec<String>,
    versions: String,
    fixed: String,
    releases: Vec<ReleaseRow>,
}

struct ReleaseRow {
    release: String,
    status: &'static str,
    fixed: String,
}

struct SeverityRow {
    kind: String,
    vector: String,
    score: String,
    source: String,
}

struct ReferenceRow {
    kind: String,
    url: String,
    /// Only `http(s)://` URLs become links; anything else (a `javascript:` URL among them)
    /// is shown as text.
    link: bool,
}

struct RecordView {
    id: String,
    channel: String,
    kit: String,
    aliases: Vec<IdLink>,
    related: Vec<IdLink>,
    summary: String,
    details: String,
    level: &'static str,
    cvss: String,
    severities: Vec<SeverityRow>,
    kev: Option<String>,
    epss: Option<String>,
    affected: Vec<AffectedRow>,
    references: Vec<ReferenceRow>,
    /// Published and modified, in UTC with their age when they parse as RFC 3339, else as the
    /// source wrote them.
    dates: Vec<(&'static str, Option<When>, String)>,
    withdrawn: String,
}

#[derive(Clone)]
pub(super) struct ClaimRow {
    pub product: String,
    pub product_href: String,
    pub vulnerability: String,
    pub vulnerability_href: String,
    pub provider: String,
    pub status: &'static str,
    pub justification: String,
    pub impact: String,
    pub action: String,
    pub when: Option<When>,
    pub timestamp: String,
    pub source: String,
    /// The claim's outcome in the consensus, on the VEX page.
    pub outcome: String,
}

impl ClaimRow {
    pub(super) fn new(
        channel: &str,
        claim: &stella_importer::VexClaim,
        kits: &BTreeMap<String, String>,
        now: u64,
    ) -> Self {
        let kit = kits.get(channel).map(String::as_str).unwrap_or("");
        Self {
            product: claim.product.clone(),
            product_href: Params::default().href("/console/vex", "product", &claim.product),
            vulnerability: claim.vulnerability.clone(),
            vulnerability_href: advisory_href(&claim.vulnerability),
            provider: claim.provider.clone(),
            status: stella_decide::vex::status_name(claim.status),
            justification: claim.justification.clone().unwrap_or_default(),
            impact: claim.impact_statement.clone().unwrap_or_default(),
            action: claim.action_statement.clone().unwrap_or_default(),
            when: claim.timestamp.as_deref().and_then(|t| When::parse(t, now)),
            timestamp: claim.timestamp.clone().unwrap_or_default(),
            source: format!("channel {channel}, {kit}; document {}", claim.document),
            outcome: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "advisory.html")]
struct AdvisoryView {
    chrome: Chrome,
    records: Vec<RecordView>,
    /// The id asked for is an alias of these records, not their id.
    alias_of: bool,
    claims: Vec<ClaimRow>,
    /// The shared claims table shows each claim's consensus outcome (the VEX page does).
    with_outcome: bool,
    claim_columns: Vec<Column>,
    claim_caption: String,
    claim_pager: Pager,
}

/// Sortable columns of an advisory's VEX statements.
const CLAIM_COLUMNS: [(&str, &str); 5] = [
    ("product", "Product"),
    ("vulnerability", "Vulnerability"),
    ("issuer", "Issuer"),
    ("status", "Status"),
    ("when", "When"),
];

/// The statements are the advisory page's one list; its links return to the table.
const CLAIM_LIST: ListKeys = ListKeys {
    page: "page",
    sort: "sort",
    anchor: Some("vex"),
};

fn range_text(range: &stella_importer::model::Range) -> String {
    let events: Vec<String> = range
        .events
        .iter()
        .map(|e| match e {
            RangeEvent::Introduced(v) => format!("introduced {v}"),
            RangeEvent::Fixed(v) => format!("fixed {v}"),
            RangeEvent::LastAffected(v) => format!("last affected {v}"),
            RangeEvent::Limit(v) => format!("limit {v}"),
        })
        .collect();
    let kind = serde_json::to_value(range.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let repo = range
        .repo
        .as_ref()
        .map(|r| format!(" in {r}"))
        .unwrap_or_default();
    format!("{kind}{repo}: {}", events.join(", "))
}

fn reference_row(reference: &Reference) -> ReferenceRow {
    let lower = reference.url.trim().to_ascii_lowercase();
    ReferenceRow {
        kind: reference.kind.clone(),
        url: reference.url.clone(),
        link: lower.starts_with("https://") || lower.starts_with("http://"),
    }
}

fn record_view(
    generation: &Generation,
    channel: &str,
    advisory: &Advisory,
    kits: &BTreeMap<String, String>,
    now: u64,
) -> Result<RecordView, stella_feeds::FeedError> {
    let severity = severity::of_advisory(advisory);
    // KEV and EPSS from the advisory, else from the catalogs by its CVE ids.
    let cves: Vec<&String> = std::iter::once(&advisory.id)
        .chain(&advisory.aliases)
        .filter(|id| stella_importer::model::is_cve(id))
        .collect();
    let mut kev = advisory.kev.as_ref().map(|k| {
        format!(
            "listed since {}{}{}",
            k.date_added,
            k.due_date
                .as_ref()
                .map(|d| format!(", remediation due {d}"))
                .unwrap_or_default(),
            k.ransomware
                .as_ref()
                .map(|r| format!(", ransomware use: {r}"))
                .unwrap_or_default()
        )
    });
    let mut epss = advisory.epss.as_ref().map(|e| (e.score, e.percentile));
    for cve in &cves {
        if kev.is_none()
            && let Some(entry) = generation.kev(cve)?
        {
            kev = Some(format!(
                "listed since {} ({})",
                entry.date_added,
                entry.name.unwrap_or_default()
            ));
        }
        if epss.is_none()
            && let Some(entry) = generation.epss(cve)?
        {
            epss = Some((entry.score, entry.percentile));
        }
    }
    let affected = advisory
        .affected
        .iter()
        .map(|a| AffectedRow {
            ecosystem: a.ecosystem.clone(),
            package: a.package.clone(),
            purl: a.purl.clone().unwrap_or_default(),
            ranges: a.ranges.iter().map(range_text).collect(),
            requirements: a
                .requirements
                .iter()
                .map(|r| format!("{:?}: {}", r.meaning, r.expression).to_lowercase())
                .collect(),
            versions: some_of(&a.versions),
            fixed: a.fixed.join(", "),
            releases: a
                .distro
                .iter()
                .map(|d| ReleaseRow {
                    release: d.release.clone(),
                    status: match d.status {
                        DistroStatus::Fixed => "fixed",
                        DistroStatus::NotAffected => "not affected",
                        DistroStatus::Unfixed => "unfixed",
                        DistroStatus::EndOfLife => "end of life",
                    },
                    fixed: d.fixed_version.clone().unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    let dates = [
        ("Published", &advisory.published),
        ("Modified", &advisory.modified),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.clone().map(|v| (label, When::parse(&v, now), v)))
    .collect();
    Ok(RecordView {
        id: advisory.id.clone(),
        channel: channel.to_owned(),
        kit: kits.get(channel).cloned().unwrap_or_default(),
        aliases: id_links(&advisory.aliases),
        related: id_links(&advisory.related),
        summary: advisory.summary.clone().unwrap_or_default(),
        details: advisory.details.clone().unwrap_or_default(),
        level: severity.level.as_str(),
        cvss: severity.cvss.map(|s| format!("{s:.1}")).unwrap_or_default(),
        severities: advisory
            .severities
            .iter()
            .map(|s| SeverityRow {
                kind: s.kind.clone(),
                vector: s.vector.clone(),
                score: s.score.map(|s| format!("{s:.1}")).unwrap_or_default(),
                source: s.source.clone(),
            })
            .collect(),
        kev,
        epss: epss.map(|(score, percentile)| {
            format!(
                "{:.2} % chance of exploitation in 30 days (percentile {:.3})",
                score * 100.0,
                percentile * 100.0
            )
        }),
        affected,
        references: advisory.references.iter().map(reference_row).collect(),
        dates,
        withdrawn: advisory.withdrawn.clone().unwrap_or_default(),
    })
}

/// What the detail page found: see [`load_advisory`].
struct Found {
    records: Vec<RecordView>,
    alias_of: bool,
    claims: Vec<ClaimRow>,
}

/// What the detail page shows: the records with this id (one per channel), else those it is an
/// alias of, and the VEX claims about the id and its aliases.
fn load_advisory(
    state: &AppState,
    generation: &Generation,
    id: &str,
) -> Result<Option<Found>, stella_feeds::FeedError> {
    let found = generation.advisories_by_alias(id)?;
    let exact: Vec<&(String, Advisory)> = found.iter().filter(|(_, a)| a.id == id).collect();
    let alias_of = exact.is_empty();
    let chosen: Vec<&(String, Advisory)> = if alias_of {
        found.iter().collect()
    } else {
        exact
    };
    if chosen.is_empty() {
        return Ok(None);
    }
    let kits = kit_labels(state);
    let now = state.clock().now_unix();
    let records = chosen
        .iter()
        .map(|(channel, advisory)| record_view(generation, channel, advisory, &kits, now))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ids: BTreeSet<&String> = BTreeSet::new();
    for (_, advisory) in &chosen {
        ids.insert(&advisory.id);
        ids.extend(&advisory.aliases);
    }
    let mut seen = BTreeSet::new();
    let mut claims = Vec::new();
    for vulnerability in ids {
        for (channel, claim) in generation.vex_claims_with_channel(vulnerability)? {
            if seen.insert((channel.clone(), claim.key())) {
                claims.push(ClaimRow::new(&channel, &claim, &kits, now));
            }
        }
    }
    Ok(Some(Found {
        records,
        alias_of,
        claims,
    }))
}

async fn advisory_page(
    State(state): State<AppState>,
    chrome: Chrome,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let chrome = chrome.page(id.clone(), "advisories");
    let Some(generation) = state.feeds().current() else {
        return no_kit(chrome, "advisories");
    };
    let lookup = {
        let id = id.clone();
        let generation: Arc<Generation> = generation;
        tokio::task::spawn_blocking(move || load_advisory(&state, &generation, &id)).await
    };
    match lookup {
        Ok(Ok(Some(Found {
            records,
            alias_of,
            mut claims,
        }))) => {
            let path = advisory_href(&id);
            let sort = Sort::of_list(&params, &CLAIM_COLUMNS, "product", CLAIM_LIST);
            sort.apply(&mut claims, |c, key| {
                let first = match key {
                    "vulnerability" => c.vulnerability.clone(),
                    "issuer" => c.provider.clone(),
                    "status" => c.status.to_owned(),
                    // RFC 3339 UTC timestamps order as text; statements without one first.
                    "when" => c.timestamp.clone(),
                    _ => String::new(),
                };
                (
                    first,
                    c.product.clone(),
                    c.provider.clone(),
                    c.source.clone(),
                )
            });
            let claim_pager = Pager::of_list(&params, &path, claims.len(), PER_PAGE, CLAIM_LIST);
            render(
                StatusCode::OK,
                &AdvisoryView {
                    chrome,
                    records,
                    alias_of,
                    claims: claim_pager.slice(&claims),
                    with_outcome: false,
                    claim_columns: sort.columns(&params, &path, &CLAIM_COLUMNS),
                    claim_caption: format!("Statements {}", claim_pager.summary()),
                    claim_pager,
                },
            )
        }
        Ok(Ok(None)) => error_page(
            StatusCode::NOT_FOUND,
            chrome,
            format!("No advisory has the id or alias {id} in the current feed generation."),
            "Search for it (a package name or words from its summary also work), or import a \
             newer kit if it was published recently.",
            params_href_q(&id),
        ),
        Ok(Err(err)) => store_failed(chrome, err),
        Err(err) => store_failed(chrome, err),
    }
}

fn params_href_q(q: &str) -> String {
    Params::default().href(PATH, "q", q)
}

#[cfg(test)]
pub(super) mod tests {
    use axum::http::StatusCode;
    use stella_importer::model::{
        Affected, DistroRelease, DistroStatus, KevEntry, KevFlag, Range, RangeEvent, RangeKind,
        Reference, Severity,
    };
    use stella_importer::vex::{VexFormat, VexStatus};
    use stella_importer::writer::KitContents;
    use stella_importer::{Advisory, EpssEntry, VexClaim};

    use crate::console::testing::{ConsoleEnv, signed_kit};

    pub(in crate::console) fn advisory(
        id: &str,
        ecosystem: &str,
        package: &str,
        summary: &str,
    ) -> Advisory {
        let mut advisory = Advisory::new(id, format!("osv:{id}"));
        advisory.summary = Some(summary.to_owned());
        advisory.affected.push(Affected {
            ecosystem: ecosystem.into(),
            package: package.into(),
            purl: Some(format!("pkg:{}/{package}", ecosystem.to_lowercase())),
            ranges: vec![Range {
                kind: RangeKind::Ecosystem,
                events: vec![
                    RangeEvent::Introduced("0".into()),
                    RangeEvent::Fixed("2.31.0".into()),
                ],
                repo: None,
            }],
            requirements: Vec::new(),
            versions: Vec::new(),
            fixed: vec!["2.31.0".into()],
            distro: Vec::new(),
            source: format!("osv:{id}"),
        });
        advisory
    }

    pub(in crate::console) fn claim(
        product: &str,
        vulnerability: &str,
        provider: &str,
        status: VexStatus,
        timestamp: &str,
    ) -> VexClaim {
        VexClaim {
            product: product.into(),
            subcomponents: Vec::new(),
            vulnerability: vulnerability.into(),
            status,
            justification: (status == VexStatus::NotAffected)
                .then(|| "vulnerable_code_not_present".into()),
            impact_statement: None,
            action_statement: None,
            provider: provider.into(),
            timestamp: Some(timestamp.into()),
            format: VexFormat::Openvex,
            document: format!("{provider}-vex-1"),
        }
    }

    /// The small real-shaped feed every console advisory/VEX test loads: 60 PyPI advisories
    /// (for paging), a CVE with a GHSA alias, a Debian record with a DSA related id, a KEV
    /// entry, EPSS, hostile text, and VEX claims from two vendors that disagree.
    pub(in crate::console) fn contents() -> KitContents {
        let mut advisories = Vec::new();
        for n in 0..60 {
            advisories.push(advisory(
                &format!("PYSEC-2024-{n:03}"),
                "PyPI",
                &format!("pkg{n}"),
                "Denial of service through crafted input",
            ));
        }
        let mut log4j = advisory(
            "CVE-2021-44228",
            "Maven",
            "org.apache.logging.log4j:log4j-core",
            "Remote code execution via JNDI lookups in log messages",
        );
        log4j.aliases.insert("GHSA-jfh8-c2jp-5v3q".into());
        log4j.published = Some("2021-12-10T00:00:00Z".into());
        log4j.modified = Some("December 2021".into());
        log4j.severities.push(Severity {
            kind: "CVSS_V3".into(),
            vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H".into(),
            score: Some(10.0),
            source: "nvd:CVE-2021-44228".into(),
        });
        log4j.kev = Some(KevFlag {
            date_added: "2021-12-10".into(),
            due_date: Some("2021-12-24".into()),
            ransomware: Some("Known".into()),
        });
        log4j.references = vec![
            Reference {
                kind: "ADVISORY".into(),
                url: "https://logging.apache.org/log4j/2.x/security.html".into(),
                source: "osv:GHSA-jfh8-c2jp-5v3q".into(),
            },
            Reference {
                kind: "WEB".into(),
                url: "javascript:alert(document.cookie)".into(),
                source: "osv:GHSA-jfh8-c2jp-5v3q".into(),
            },
        ];
        let mut openssl = advisory(
            "CVE-2023-0286",
            "Debian",
            "openssl",
            "X.400 address type confusion in X.509 GeneralName",
        );
        openssl.related.insert("DSA-5343-1".into());
        openssl.affected[0].distro = vec![DistroRelease {
            release: "bullseye".into(),
            status: DistroStatus::Fixed,
            fixed_version: Some("1.1.1n-0+deb11u4".into()),
        }];
        let hostile = advisory(
            "CVE-2024-6666",
            "npm",
            "evil-pkg",
            "<script>alert(1)</script> in evil-pkg",
        );
        advisories.extend([log4j, openssl, hostile]);
        let mut hostile_claim = claim(
            "pkg:npm/evil-pkg",
            "CVE-2024-6666",
            "Evil Corp",
            VexStatus::NotAffected,
            "2024-05-01T00:00:00Z",
        );
        hostile_claim.justification = Some("<script>alert(2)</script>".into());
        hostile_claim.impact_statement = Some("<script>alert(3)</script>".into());
        KitContents {
            advisories,
            vex_claims: vec![
                claim(
                    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                    "CVE-2021-44228",
                    "Apache",
                    VexStatus::Affected,
                    "2021-12-10T00:00:00Z",
                ),
                claim(
                    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                    "CVE-2021-44228",
                    "Vendor A",
                    VexStatus::NotAffected,
                    "2021-12-11T00:00:00Z",
                ),
                claim(
                    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                    "CVE-2021-44228",
                    "Vendor B",
                    VexStatus::NotAffected,
                    "2021-12-12T00:00:00Z",
                ),
                claim(
                    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                    "CVE-2021-45046",
                    "Apache",
                    VexStatus::Fixed,
                    "2021-12-14T00:00:00Z",
                ),
                hostile_claim,
            ],
            kev: vec![KevEntry {
                cve: "CVE-2021-44228".into(),
                date_added: "2021-12-10".into(),
                due_date: None,
                ransomware: None,
                vendor: Some("Apache".into()),
                product: Some("Log4j".into()),
                name: Some("Apache Log4j2 RCE".into()),
            }],
            epss: vec![EpssEntry {
                cve: "CVE-2021-44228".into(),
                score: 0.97565,
                percentile: 0.99996,
                date: Some("2024-10-01".into()),
            }],
            ..KitContents::default()
        }
    }

    /// Builds a kit of `contents` on channel `stable`, signs it with a fresh key and loads it
    /// into `env`; returns the kit id.
    pub(in crate::console) fn load(env: &ConsoleEnv, contents: &KitContents) -> String {
        let kit = signed_kit(contents);
        let options = stella_feeds::ImportOptions {
            trusted_keys: stella_importer::TrustedKeys::from_texts([kit.public_key.as_str()])
                .unwrap(),
            limits: stella_importer::Limits::default(),
            dry_run: false,
            audit_dry_run: false,
            actor: "test".into(),
            origin: "console-test.kit".into(),
            request_id: None,
            quarantine_dir: None,
        };
        let outcome = env
            .state
            .feeds()
            .import(
                &env.state.stores().catalog,
                &kit.archive,
                &options,
                env.state.clock().as_ref(),
            )
            .unwrap();
        assert!(
            matches!(outcome, stella_feeds::ImportOutcome::Loaded(_)),
            "{outcome:?}"
        );
        kit.kit_id
    }

    fn loaded() -> (ConsoleEnv, String, String) {
        let env = ConsoleEnv::new();
        let kit = load(&env, &contents());
        let viewer = env.sign_in("val", "viewer");
        (env, viewer, kit)
    }

    /// The advisory ids of a search result page, in order.
    fn result_ids(body: &str) -> Vec<String> {
        body.split("<td class=\"mono\"><a href=\"/console/advisories/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn before_a_kit_the_page_says_where_to_import_one() {
        let env = ConsoleEnv::new();
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/advisories").await;
        assert_eq!(page.status, StatusCode::OK);
        page.assert_secure();
        assert!(page.body.contains("No kit imported yet"), "{}", page.body);
        assert!(page.body.contains("/console/kits"));
        let anonymous = env.get("", "/console/advisories").await;
        assert_ne!(anonymous.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn search_finds_by_id_alias_related_package_and_text() {
        let (env, viewer, _) = loaded();
        let search = |q: &str| {
            let path = format!("/console/advisories?q={}", super::path_segment(q));
            let env = &env;
            let viewer = viewer.clone();
            async move { env.get(&viewer, &path).await }
        };
        let page = search("CVE-2023-0286").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        assert_eq!(result_ids(&page.body), ["CVE-2023-0286"]);
        // The GHSA alias and the DSA related id find the CVE record.
        assert_eq!(
            result_ids(&search("GHSA-jfh8-c2jp-5v3q").await.body),
            ["CVE-2021-44228"]
        );
        assert_eq!(
            result_ids(&search("DSA-5343-1").await.body),
            ["CVE-2023-0286"]
        );
        // Package name.
        let page = search("log4j-core").await;
        assert_eq!(result_ids(&page.body), ["CVE-2021-44228"]);
        assert!(page.body.contains("badge kev"), "{}", page.body);
        assert!(page.body.contains("10.0"));
        // Free text, every word required, matched words marked.
        let page = search("jndi lookups").await;
        assert_eq!(result_ids(&page.body), ["CVE-2021-44228"]);
        assert!(page.body.contains("<mark>JNDI</mark>"), "{}", page.body);
        let page = search("nothing-matches-this").await;
        assert!(page.body.contains("No advisory matches"), "{}", page.body);
    }

    #[tokio::test]
    async fn facets_count_the_whole_result_and_filters_narrow() {
        let (env, viewer, _) = loaded();
        let page = env.get(&viewer, "/console/advisories").await;
        // 63 advisories; 60 PyPI (more than one page) counted, not just the 50 shown.
        assert!(page.body.contains("1–50 of 63"), "{}", page.body);
        assert!(
            page.body
                .contains("href=\"/console/advisories?ecosystem=PyPI\">PyPI</a> <span class=\"count\">60</span>"),
            "{}",
            page.body
        );
        assert!(
            page.body
                .contains(">yes</a> <span class=\"count\">1</span>")
        );
        assert!(
            page.body
                .contains(">no</a> <span class=\"count\">62</span>")
        );
        assert!(
            page.body
                .contains(">stable</a> <span class=\"count\">63</span>")
        );

        let page = env.get(&viewer, "/console/advisories?kev=yes").await;
        assert_eq!(result_ids(&page.body), ["CVE-2021-44228"]);
        assert!(page.body.contains("in KEV: yes"));
        let page = env
            .get(&viewer, "/console/advisories?ecosystem=Debian&q=openssl")
            .await;
        assert_eq!(result_ids(&page.body), ["CVE-2023-0286"]);
        let page = env
            .get(&viewer, "/console/advisories?ecosystem=npm&q=openssl")
            .await;
        assert!(result_ids(&page.body).is_empty());
        // Facet counts follow the query.
        let page = env.get(&viewer, "/console/advisories?q=denial").await;
        assert!(page.body.contains("1–50 of 60"), "{}", page.body);
        assert!(!page.body.contains(">Maven</a>"));
    }

    #[tokio::test]
    async fn results_are_paginated() {
        let (env, viewer, _) = loaded();
        let first = env.get(&viewer, "/console/advisories?ecosystem=PyPI").await;
        let second = env
            .get(&viewer, "/console/advisories?ecosystem=PyPI&page=2")
            .await;
        assert!(second.body.contains("51–60 of 60"), "{}", second.body);
        assert!(
            first
                .body
                .contains("href=\"/console/advisories?ecosystem=PyPI&amp;page=2\"")
                || first
                    .body
                    .contains("href=\"/console/advisories?ecosystem=PyPI&#38;page=2\""),
            "{}",
            first.body
        );
        let (a, b) = (result_ids(&first.body), result_ids(&second.body));
        assert_eq!((a.len(), b.len()), (50, 10));
        assert!(a.iter().all(|id| !b.contains(id)));
        // Past the end shows the last page.
        let far = env
            .get(&viewer, "/console/advisories?ecosystem=PyPI&page=9")
            .await;
        assert_eq!(result_ids(&far.body), b);
    }

    #[tokio::test]
    async fn results_sort_by_id_or_severity_across_pages() {
        let (env, viewer, _) = loaded();
        let get = |query: &'static str| env.get(&viewer, query);
        let page = get("/console/advisories?ecosystem=PyPI").await;
        assert!(page.body.contains("best match first"), "{}", page.body);
        assert!(page.body.contains(
            "<th scope=\"col\" aria-sort=\"none\"><a href=\"/console/advisories?ecosystem=PyPI&#38;sort=id\">Id</a></th>"
        ));
        // By id: every page in order, the pages joined in order too.
        let first = get("/console/advisories?ecosystem=PyPI&sort=id").await;
        let second = get("/console/advisories?ecosystem=PyPI&sort=id&page=2").await;
        assert!(first.body.contains("aria-sort=\"ascending\""));
        assert!(first.body.contains(", by id"), "{}", first.body);
        let ids: Vec<String> = result_ids(&first.body)
            .into_iter()
            .chain(result_ids(&second.body))
            .collect();
        assert_eq!(ids.len(), 60);
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let reversed = get("/console/advisories?ecosystem=PyPI&sort=-id").await;
        assert_eq!(result_ids(&reversed.body)[0], sorted[59]);
        // By severity: the critical Log4j record before anything unscored.
        let page = get("/console/advisories?sort=-severity").await;
        assert!(page.body.contains("highest CVSS first"));
        let levels: Vec<&str> = page
            .body
            .split("<span class=\"badge sev-")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert_eq!(levels.first(), Some(&"critical"), "{levels:?}");
        let rank = |level: &str| {
            ["critical", "high", "medium", "low", "none", "unknown"]
                .iter()
                .position(|l| *l == level)
                .unwrap_or_else(|| panic!("level {level}"))
        };
        assert!(
            levels.windows(2).all(|w| rank(w[0]) <= rank(w[1])),
            "{levels:?}"
        );
        // The link back to relevance order, and the search form keeps the sort.
        assert!(
            page.body
                .contains("<a href=\"/console/advisories\">best match first</a>")
        );
        assert!(
            page.body
                .contains("<input type=\"hidden\" name=\"sort\" value=\"-severity\">")
        );
    }

    #[tokio::test]
    async fn query_syntax_errors_are_explained() {
        let (env, viewer, _) = loaded();
        let page = env.get(&viewer, "/console/advisories?q=note%3A+jndi").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains("there is no field “note”"),
            "{}",
            page.body
        );
        assert!(page.body.contains("Quote the text"));
        assert!(
            page.body.contains("remove the &#39;:&#39;") || page.body.contains("remove the ':'")
        );
        let page = env.get(&viewer, "/console/advisories?q=%28jndi").await;
        assert!(page.body.contains("does not parse"), "{}", page.body);
        let page = env.get(&viewer, "/console/advisories?q=kev%3Ayes").await;
        assert!(page.body.contains("takes a number"), "{}", page.body);
    }

    #[tokio::test]
    async fn advisory_page_shows_everything_known_about_it() {
        let (env, viewer, kit) = loaded();
        let page = env.get(&viewer, "/console/advisories/CVE-2021-44228").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        let body = &page.body;
        for expected in [
            "GHSA-jfh8-c2jp-5v3q",
            "org.apache.logging.log4j:log4j-core",
            "introduced 0, fixed 2.31.0",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
            "listed since 2021-12-10, remediation due 2021-12-24",
            "97.56 % chance of exploitation in 30 days (percentile 99.996)",
            "channel stable",
            &kit,
            "Vendor A",
            "not_affected",
            "vulnerable_code_not_present",
        ] {
            assert!(body.contains(expected), "{expected} missing: {body}");
        }
        // Dates in UTC with their age; one the source did not write as RFC 3339, as written.
        assert!(
            body.contains("<dt>Published</dt><dd><time datetime=\"2021-12-10T00:00:00Z\""),
            "{body}"
        );
        assert!(body.contains("<dt>Modified</dt><dd>December 2021</dd>"));
        assert!(body.contains("<a href=\"https://logging.apache.org/log4j/2.x/security.html\""));
        assert!(!body.contains("href=\"javascript:"), "{body}");
        assert!(body.contains("javascript:alert(document.cookie)"));
        // Distro releases.
        let page = env.get(&viewer, "/console/advisories/CVE-2023-0286").await;
        assert!(page.body.contains("bullseye"));
        assert!(page.body.contains("1.1.1n-0+deb11u4"));
        // An alias shows the record it belongs to.
        let page = env
            .get(&viewer, "/console/advisories/GHSA-jfh8-c2jp-5v3q")
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("is an alias of"), "{}", page.body);
        let page = env.get(&viewer, "/console/advisories/CVE-1999-0001").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn an_advisorys_vex_statements_are_sorted_and_paged() {
        let env = ConsoleEnv::new();
        load(&env, &contents());
        let viewer = env.sign_in("val", "viewer");
        let issuers = |body: &str| -> Vec<&str> {
            let table = &body[body
                .find("<table class=\"vex-claims\">")
                .expect("statements")..];
            let mut found: Vec<(usize, &str)> = ["Apache", "Vendor A", "Vendor B"]
                .into_iter()
                .filter_map(|issuer| {
                    table
                        .find(&format!("<td>{issuer}</td>"))
                        .map(|at| (at, issuer))
                })
                .collect();
            found.sort();
            found.into_iter().map(|(_, issuer)| issuer).collect()
        };
        let path = "/console/advisories/CVE-2021-44228";
        let page = env.get(&viewer, path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("Statements 1–3 of 3"), "{}", page.body);
        assert!(page.body.contains("aria-label=\"Pages of VEX statements\""));
        // By product, then issuer.
        assert_eq!(issuers(&page.body), ["Apache", "Vendor A", "Vendor B"]);
        assert!(
            page.body
                .contains(&format!("<a href=\"{path}?sort=-product#vex\">Product</a>"))
        );
        let page = env.get(&viewer, &format!("{path}?sort=-issuer")).await;
        assert_eq!(issuers(&page.body), ["Vendor B", "Vendor A", "Apache"]);
        let page = env.get(&viewer, &format!("{path}?sort=-when")).await;
        assert_eq!(issuers(&page.body), ["Vendor B", "Vendor A", "Apache"]);
        let page = env.get(&viewer, &format!("{path}?sort=status")).await;
        assert_eq!(issuers(&page.body)[0], "Apache", "affected sorts first");
    }

    #[tokio::test]
    async fn hostile_advisory_text_is_escaped() {
        let (env, viewer, _) = loaded();
        for path in [
            "/console/advisories?q=evil-pkg",
            "/console/advisories/CVE-2024-6666",
        ] {
            let page = env.get(&viewer, path).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            assert!(
                page.body.contains("&#60;script&#62;alert(1)"),
                "{}",
                page.body
            );
            assert!(!page.body.contains("<script>alert"), "{}", page.body);
        }
        let page = env.get(&viewer, "/console/advisories/CVE-2024-6666").await;
        assert!(page.body.contains("&#60;script&#62;alert(2)"));
        assert!(page.body.contains("&#60;script&#62;alert(3)"));
    }
}
