//! Pieces every console page shares: the chrome around a page, rendering with the security
//! headers, pagination, sortable columns, times, and error pages.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use stella_authority::Scope;

use crate::AppState;
use crate::auth::{Caller, CallerKind, SessionInfo};

/// The Content-Security-Policy of every console page: nothing but this origin's own stylesheet,
/// script and forms; no framing, no inline code.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One entry of the navigation bar.
#[derive(Debug, Clone)]
pub(crate) struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    /// `aria-current="page"` goes on the active entry.
    pub active: bool,
}

/// Navigation entries: (href, label, scope needed to see it, area key).
const NAV: &[(&str, &str, Option<Scope>, &str)] = &[
    ("/", "Dashboard", None, "dashboard"),
    ("/console/scans", "Scans", Some(Scope::ScannerRead), "scans"),
    ("/console/diff", "Diff", Some(Scope::ScannerRead), "diff"),
    (
        "/console/advisories",
        "Advisories",
        Some(Scope::ScannerRead),
        "advisories",
    ),
    ("/console/vex", "VEX", Some(Scope::ScannerRead), "vex"),
    (
        "/console/policies",
        "Policy",
        Some(Scope::ScannerRead),
        "policies",
    ),
    (
        "/console/kits",
        "Offline kits",
        Some(Scope::ScannerRead),
        "kits",
    ),
    (
        "/console/attestations",
        "Attestations",
        Some(Scope::ScannerRead),
        "attestations",
    ),
    ("/console/audit", "Audit log", Some(Scope::Admin), "audit"),
    ("/console/users", "Users", Some(Scope::Admin), "users"),
    (
        "/console/clients",
        "API clients",
        Some(Scope::Admin),
        "clients",
    ),
];

/// What surrounds every page: title, navigation, the signed-in user, the session's CSRF token
/// for forms, and the demo banner. Take it as a handler argument on console routes; set
/// [`Chrome::title`] and [`Chrome::area`] (which nav entry is active) before rendering.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub title: String,
    /// The user's name; empty on pages shown before sign-in.
    pub user: String,
    /// The user's role name.
    pub role: &'static str,
    /// The session's CSRF token; every form posts it as `csrf` (multipart forms in the action's
    /// query, `?csrf=`).
    pub csrf: String,
    /// The daemon runs `--demo`: every page says so.
    pub demo: bool,
    scopes: Option<stella_authority::ScopeSet>,
    area: &'static str,
}

impl Chrome {
    /// Chrome for pages shown before sign-in (no navigation).
    pub(crate) fn anonymous(state: &AppState, title: &str) -> Self {
        Self {
            title: title.to_owned(),
            user: String::new(),
            role: "",
            csrf: String::new(),
            demo: state.demo(),
            scopes: None,
            area: "",
        }
    }

    /// Sets the title and the active navigation area.
    pub(crate) fn page(mut self, title: impl Into<String>, area: &'static str) -> Self {
        self.title = title.into();
        self.area = area;
        self
    }

    /// Whether the signed-in user's role grants `scope` (to show or hide forms).
    pub(crate) fn can(&self, scope: Scope) -> bool {
        self.scopes.as_ref().is_some_and(|s| s.contains(scope))
    }

    /// The navigation entries this user may open.
    pub(crate) fn nav(&self) -> Vec<NavItem> {
        let Some(scopes) = &self.scopes else {
            return Vec::new();
        };
        NAV.iter()
            .filter(|(_, _, scope, _)| scope.is_none_or(|s| scopes.contains(s)))
            .map(|(href, label, _, area)| NavItem {
                href,
                label,
                active: *area == self.area,
            })
            .collect()
    }
}

impl FromRequestParts<AppState> for Chrome {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = parts.extensions.get::<SessionInfo>().cloned();
        let caller = parts.extensions.get::<Caller>().cloned();
        let (Some(session), Some(caller)) = (session, caller) else {
            // Only console routes (session access) take a Chrome.
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        let role = match caller.kind {
            CallerKind::User { role } => role.as_str(),
            CallerKind::Client { .. } => "client",
        };
        Ok(Self {
            title: String::new(),
            user: session.user().to_owned(),
            role,
            csrf: session.csrf().to_owned(),
            demo: state.demo(),
            scopes: Some(caller.scopes),
            area: "",
        })
    }
}

/// Renders `template` as an HTML response with the console's security headers.
pub(crate) fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => secure((status, Html(body)).into_response()),
        Err(err) => {
            tracing::error!(%err, "template failed to render");
            secure(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html(
                        "<!doctype html><title>Error</title><p>This page failed to render; \
                         the daemon log has the cause.</p>"
                            .to_owned(),
                    ),
                )
                    .into_response(),
            )
        }
    }
}

/// Adds the console's security headers to a response.
pub(crate) fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// An error page: what went wrong and what to do next.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub chrome: Chrome,
    /// What went wrong, in one sentence.
    pub problem: String,
    /// What the user can do about it.
    pub next: String,
    /// Where "back" goes.
    pub back: String,
}

/// Renders an error page.
pub(crate) fn error_page(
    status: StatusCode,
    chrome: Chrome,
    problem: impl Into<String>,
    next: impl Into<String>,
    back: impl Into<String>,
) -> Response {
    render(
        status,
        &ErrorPage {
            chrome,
            problem: problem.into(),
            next: next.into(),
            back: back.into(),
        },
    )
}

/// A page's query string as ordered pairs, for reading filters and building links that keep
/// them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses a raw query string; malformed pairs are dropped.
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
        Self(pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect())
    }

    /// A parameter's value, if given and non-empty.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// These parameters without `key`.
    pub(crate) fn without(&self, key: &str) -> Self {
        let mut pairs = self.0.clone();
        pairs.remove(key);
        Self(pairs)
    }

    /// `path?query` with `key` set to `value` (removed when empty) and `page` reset unless it is
    /// the key being set.
    pub(crate) fn href(&self, path: &str, key: &str, value: &str) -> String {
        self.list_href(path, key, value, MAIN_LIST)
    }

    /// Like [`Params::href`] for the list `list`: its page parameter is the one reset, and the
    /// link ends with its anchor.
    pub(crate) fn list_href(&self, path: &str, key: &str, value: &str, list: ListKeys) -> String {
        let mut pairs = self.0.clone();
        if key != list.page {
            pairs.remove(list.page);
        }
        if value.is_empty() {
            pairs.remove(key);
        } else {
            pairs.insert(key.to_owned(), value.to_owned());
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let mut href = path.to_owned();
        if !query.is_empty() {
            href.push('?');
            href.push_str(&query);
        }
        if let Some(anchor) = list.anchor {
            href.push('#');
            href.push_str(anchor);
        }
        href
    }
}

/// The query parameters one list of a page is paged and sorted by. A page's main list uses
/// `page` and `sort` ([`MAIN_LIST`]); a second list on the same page has its own, and an anchor
/// its links return to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListKeys {
    pub page: &'static str,
    pub sort: &'static str,
    /// The id of the list's section, appended to its links as `#anchor`.
    pub anchor: Option<&'static str>,
}

/// The keys of a page's main list.
pub(crate) const MAIN_LIST: ListKeys = ListKeys {
    page: "page",
    sort: "sort",
    anchor: None,
};

/// Default rows per page.
pub(crate) const PER_PAGE: usize = 50;

/// A page of a list: which rows to show and the links to the neighbours.
#[derive(Debug, Clone)]
pub(crate) struct Pager {
    /// 1-based page number.
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    pub per_page: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// The pager for `total` rows at `path`, reading `page` from `params`.
    pub(crate) fn new(params: &Params, path: &str, total: usize, per_page: usize) -> Self {
        Self::of_list(params, path, total, per_page, MAIN_LIST)
    }

    /// The pager of the list `list`, reading its page parameter.
    pub(crate) fn of_list(
        params: &Params,
        path: &str,
        total: usize,
        per_page: usize,
        list: ListKeys,
    ) -> Self {
        let per_page = per_page.max(1);
        let pages = total.div_ceil(per_page).max(1);
        let page = params
            .get(list.page)
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, pages);
        let link = |n: usize| params.list_href(path, list.page, &n.to_string(), list);
        Self {
            page,
            pages,
            total,
            per_page,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
        }
    }

    /// The index range of this page's rows.
    pub(crate) fn range(&self) -> std::ops::Range<usize> {
        let start = (self.page - 1) * self.per_page;
        start.min(self.total)..(start + self.per_page).min(self.total)
    }

    /// This page's rows of `rows` (which holds all `total` of them).
    pub(crate) fn slice<T: Clone>(&self, rows: &[T]) -> Vec<T> {
        rows.get(self.range())
            .map(<[T]>::to_vec)
            .unwrap_or_default()
    }

    /// "41–60 of 312", or "none".
    pub(crate) fn summary(&self) -> String {
        if self.total == 0 {
            return "none".to_owned();
        }
        let range = self.range();
        format!("{}–{} of {}", range.start + 1, range.end, self.total)
    }
}

/// A sortable column header.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub label: &'static str,
    /// Link that sorts by this column (toggling the direction when it is the current one).
    pub href: String,
    /// `ascending`, `descending` or `none`, for `aria-sort`.
    pub aria_sort: &'static str,
}

/// The requested sort: `?sort=key` ascending, `?sort=-key` descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sort {
    pub key: String,
    pub descending: bool,
    /// The list whose parameters the header links set.
    pub list: ListKeys,
}

impl Sort {
    /// Reads `sort` from `params`; `default` when absent or not one of `columns`' keys.
    pub(crate) fn new(params: &Params, columns: &[(&str, &str)], default: &str) -> Self {
        Self::of_list(params, columns, default, MAIN_LIST)
    }

    /// The sort of the list `list`, read from its sort parameter.
    pub(crate) fn of_list(
        params: &Params,
        columns: &[(&str, &str)],
        default: &str,
        list: ListKeys,
    ) -> Self {
        let raw = params.get(list.sort).unwrap_or(default);
        let (descending, key) = match raw.strip_prefix('-') {
            Some(key) => (true, key),
            None => (false, raw),
        };
        if columns.iter().any(|(k, _)| *k == key) {
            Self {
                key: key.to_owned(),
                descending,
                list,
            }
        } else {
            let descending = default.starts_with('-');
            Self {
                key: default.trim_start_matches('-').to_owned(),
                descending,
                list,
            }
        }
    }

    /// Header cells for `columns` (key, label), linking from `path` with `params` kept.
    pub(crate) fn columns(
        &self,
        params: &Params,
        path: &str,
        columns: &[(&str, &'static str)],
    ) -> Vec<Column> {
        columns
            .iter()
            .map(|(key, label)| {
                let current = self.key == *key;
                let value = if current && !self.descending {
                    format!("-{key}")
                } else {
                    (*key).to_owned()
                };
                Column {
                    label,
                    href: params.list_href(path, self.list.sort, &value, self.list),
                    aria_sort: match (current, self.descending) {
                        (false, _) => "none",
                        (true, false) => "ascending",
                        (true, true) => "descending",
                    },
                }
            })
            .collect()
    }

    /// The SQL `ORDER BY` clause for this sort: the expression `exprs` maps the key to (the
    /// first one when none does; they are the caller's constants, never request text), then
    /// `tiebreak`, both in this sort's direction.
    pub(crate) fn order_by(&self, exprs: &[(&str, &'static str)], tiebreak: &str) -> String {
        let expr = exprs
            .iter()
            .find(|(key, _)| *key == self.key)
            .or(exprs.first())
            .map_or(tiebreak, |(_, expr)| expr);
        let direction = if self.descending { "DESC" } else { "ASC" };
        format!("{expr} {direction}, {tiebreak} {direction}")
    }

    /// Orders `rows` by `key_of(row, self.key)`, then reverses if descending. Stable.
    pub(crate) fn apply<T, K: Ord>(&self, rows: &mut [T], key_of: impl Fn(&T, &str) -> K) {
        rows.sort_by_key(|row| key_of(row, &self.key));
        if self.descending {
            rows.reverse();
        }
    }
}

/// A moment shown as UTC with its age relative to now.
#[derive(Debug, Clone)]
pub(crate) struct When {
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
    /// `2026-11-29 11:40 UTC`.
    pub utc: String,
    /// `3 h ago`, `in 2 d`, `just now`.
    pub ago: String,
}

impl When {
    /// `unix` seen from `now`.
    pub(crate) fn new(unix: u64, now: u64) -> Self {
        let iso = stella_core::rfc3339(unix);
        let utc = format!(
            "{} UTC",
            iso.replacen('T', " ", 1)
                .trim_end_matches('Z')
                .get(..16)
                .unwrap_or(&iso)
        );
        Self {
            iso,
            utc,
            ago: age(unix, now),
        }
    }

    /// Parses an RFC 3339 timestamp as the catalog stores it; `None` when it does not parse.
    pub(crate) fn parse(rfc3339: &str, now: u64) -> Option<Self> {
        use time::format_description::well_known::Rfc3339;
        let t = time::OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?;
        Some(Self::new(u64::try_from(t.unix_timestamp()).ok()?, now))
    }
}

/// Relative age of `unix` seen from `now`.
pub(crate) fn age(unix: u64, now: u64) -> String {
    let (secs, future) = if unix > now {
        (unix - now, true)
    } else {
        (now - unix, false)
    };
    let span = match secs {
        0..60 => return "just now".to_owned(),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pager_pages_and_keeps_filters() {
        let params = Params::parse(Some("q=openssl&page=2&sort=-name"));
        let pager = Pager::new(&params, "/console/x", 120, 50);
        assert_eq!((pager.page, pager.pages), (2, 3));
        assert_eq!(pager.range(), 50..100);
        assert_eq!(pager.summary(), "51–100 of 120");
        assert_eq!(
            pager.prev.as_deref(),
            Some("/console/x?page=1&q=openssl&sort=-name")
        );
        assert_eq!(
            pager.next.as_deref(),
            Some("/console/x?page=3&q=openssl&sort=-name")
        );
        let last = Pager::new(&Params::parse(Some("page=99")), "/p", 120, 50);
        assert_eq!((last.page, last.next.is_none()), (3, true));
        assert_eq!(
            Pager::new(&Params::default(), "/p", 0, 50).summary(),
            "none"
        );
    }

    #[test]
    fn filter_links_reset_the_page() {
        let params = Params::parse(Some("q=a&page=4"));
        assert_eq!(
            params.href("/p", "severity", "high"),
            "/p?q=a&severity=high"
        );
        assert_eq!(params.href("/p", "q", ""), "/p");
    }

    #[test]
    fn sort_toggles_and_rejects_unknown_keys() {
        let cols = [("name", "Name"), ("version", "Version")];
        let params = Params::parse(Some("sort=name"));
        let sort = Sort::new(&params, &cols, "version");
        assert_eq!(sort.key, "name");
        let headers = sort.columns(&params, "/p", &cols);
        assert_eq!(headers[0].href, "/p?sort=-name");
        assert_eq!(headers[0].aria_sort, "ascending");
        assert_eq!(headers[1].aria_sort, "none");
        let bogus = Sort::new(&Params::parse(Some("sort=-evil")), &cols, "-version");
        assert_eq!((bogus.key.as_str(), bogus.descending), ("version", true));
        assert_eq!(
            bogus.order_by(&[("name", "n"), ("version", "v")], "id"),
            "v DESC, id DESC"
        );
        assert_eq!(sort.order_by(&[("name", "n")], "id"), "n ASC, id ASC");
        let mut rows = vec![3, 1, 2];
        bogus.apply(&mut rows, |r, _| *r);
        assert_eq!(rows, vec![3, 2, 1]);
    }

    #[test]
    fn a_second_list_keeps_the_first_lists_page_and_returns_to_its_anchor() {
        const LAYERS: ListKeys = ListKeys {
            page: "layer_page",
            sort: "layer_sort",
            anchor: Some("layers"),
        };
        let params = Params::parse(Some("page=2&layer_page=3&layer_sort=size"));
        let pager = Pager::of_list(&params, "/p", 200, 50, LAYERS);
        assert_eq!(pager.page, 3);
        assert_eq!(
            pager.next.as_deref(),
            Some("/p?layer_page=4&layer_sort=size&page=2#layers")
        );
        let cols = [("index", "#"), ("size", "Size")];
        let sort = Sort::of_list(&params, &cols, "index", LAYERS);
        assert_eq!(sort.key, "size");
        let headers = sort.columns(&params, "/p", &cols);
        // Sorting goes back to the list's first page; the main list keeps its page.
        assert_eq!(headers[1].href, "/p?layer_sort=-size&page=2#layers");
        assert_eq!(headers[0].href, "/p?layer_sort=index&page=2#layers");
        // The main list's sort is untouched by the second list's parameters.
        assert_eq!(Sort::new(&params, &cols, "index").key, "index");
    }

    #[test]
    fn times_are_utc_with_age() {
        let when = When::new(1_764_416_400, 1_764_416_400 + 3 * 3600);
        assert_eq!(when.utc, "2025-11-29 11:40 UTC");
        assert_eq!(when.ago, "3 h ago");
        assert_eq!(age(100, 100), "just now");
        assert_eq!(age(100 + 2 * 86_400, 100), "in 2 d");
        assert!(When::parse("2025-11-29T11:40:00Z", 0).is_some());
        assert!(When::parse("yesterday", 0).is_none());
    }
}
