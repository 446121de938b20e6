//! The console lint: every console GET page of the route table, fetched through the full router
//! by each role with data on every list and form, parsed as HTML (`scraper`, an HTML5 parser)
//! and checked against the rules of `docs/console.md`:
//!
//! - the security headers (CSP, framing, sniffing, referrer, caching);
//! - no parse errors, and no element HTML does not have (data shown unescaped: the fixtures
//!   carry markup in image labels, scan references and advisories);
//! - `<html lang>`, UTF-8 and viewport metas, one non-empty `<title>`, exactly one `<h1>`, the
//!   skip link as the first link and one `<main id="main">`;
//! - CSP compliance: no inline `<script>` or `<style>`, no `style=` or `on*=` attributes, no
//!   `javascript:` URLs, no assets (`src`, `<link href>`) or form actions on another origin;
//! - every POST form carries the session's CSRF token: a hidden `csrf` field, or `?csrf=` in the
//!   action for multipart forms (whose body is read after the access check), and posts to a
//!   route the signed-in role may use (pages hide the forms a role cannot use);
//! - keyboard and labels: every form has a submit button, every select options, no positive
//!   `tabindex`, every link a target and text, every button text, every image `alt`; every
//!   visible `<input>`, `<select>` and `<textarea>` has a label (`<label for>`, a wrapping
//!   `<label>`, `aria-label` or `aria-labelledby`); file inputs sit in multipart POST forms;
//! - `for`, `aria-*by` and `#fragment` links name existing ids; ids are unique, without spaces;
//! - every `<table>` has `<th scope>` header cells; a list (a table with a `<thead>`) is followed
//!   by a pager and has a sortable column, or is marked `complete` (a small set shown whole, at
//!   most a page of rows);
//! - every `<time>` has an RFC 3339 UTC `datetime`, shows UTC and is followed by its age;
//! - every error page (4xx, 5xx) has an alert saying what went wrong and what to do next.
//!
//! The pages the forms answer with and the signed-out login page are linted too. A console GET
//! route the lint does not fetch fails [`every_console_page_passes_the_lint`]: a new page gets
//! its URLs in [`Site::urls`]. Violations left to a page's owner are listed in [`KNOWN`].

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{Method, StatusCode, header};
use scraper::{CaseSensitivity::CaseSensitive, ElementRef, Html};
use stella_store::rusqlite::params;

use super::scans::fixtures::{HOSTILE_LABEL, two_scanned_images};
use super::testing::{CSRF, ConsoleEnv, Page};
use super::view::Params;
use crate::auth::{Access, Role};

/// A console with data on every page: two scanned images (and their diff), a findings image
/// with a stored report, an imported kit and a rejected one, a policy revision, an export with
/// its downloads, failed and interrupted scans, users, a client and their audit trail; and a
/// second console whose kit, uploaded and loaded through the console, has the advisory pages'
/// richer records (ranges, distro releases, references, aliases and related ids, hostile text,
/// conflicting VEX statements).
struct Site {
    env: ConsoleEnv,
    feeds: ConsoleEnv,
    /// Keeps the scanned images' files.
    _images: tempfile::TempDir,
    old: String,
    new: String,
    export: i64,
    done_scan: String,
    /// Responses to the forms, which are pages too: (what, expected status, page).
    posted: Vec<(String, StatusCode, Page)>,
}

impl Site {
    async fn build() -> Self {
        let env = crate::attest::testing::env_with_signing();
        let (images, old, new) = two_scanned_images(&env).await;
        super::findings::tests::import_kit(&env);
        super::findings::tests::store_scan(
            &env,
            super::findings::tests::IMAGE,
            &[("requests", true), ("urllib3", false), ("jinja2", false)],
        );
        let done_scan: String = env
            .state
            .stores()
            .catalog
            .connection()
            .query_row(
                "SELECT id FROM scans WHERE image_digest = ?1",
                [&new],
                |r| r.get(0),
            )
            .unwrap();
        super::scans::tests::insert_scan(
            &env,
            "scan-failed",
            HOSTILE_LABEL,
            "failed",
            super::testing::T0 - 600,
        );
        super::scans::tests::insert_scan(
            &env,
            "scan-interrupted",
            "registry.local/app:2",
            "running",
            super::testing::T0 - 60,
        );
        let export = Self::export(&env);
        let admin = env.sign_in("admin", "admin");
        let mut posted = Vec::new();
        let findings = format!("/console/images/{}/findings", super::findings::tests::IMAGE);
        let stored = env.post(&admin, &findings, &[]).await;
        assert_eq!(stored.status, StatusCode::SEE_OTHER, "{}", stored.body);
        let saved = env
            .post(
                &admin,
                "/console/policies",
                &[("policy", super::policies::tests::VALID)],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        type Form<'a> = (&'a str, StatusCode, &'a [(&'a str, &'a str)]);
        // Each form posted once to succeed and once to be refused: the refusals must say what
        // went wrong and what to do next.
        let forms: [Form; 6] = [
            (
                "/console/policies",
                StatusCode::UNPROCESSABLE_ENTITY,
                &[("policy", super::policies::tests::INVALID)],
            ),
            (
                "/console/users",
                StatusCode::BAD_REQUEST,
                &[("name", "not a name!"), ("role", "operator")],
            ),
            (
                "/console/clients",
                StatusCode::BAD_REQUEST,
                &[("client_id", "not an id!"), ("scopes", "scanner.read")],
            ),
            (
                "/account/password",
                StatusCode::BAD_REQUEST,
                &[
                    ("current", "x"),
                    ("new", "long-enough-1"),
                    ("confirm", "long-enough-2"),
                ],
            ),
            (
                "/console/users",
                StatusCode::CREATED,
                &[("name", "olga"), ("role", "operator")],
            ),
            (
                "/console/clients",
                StatusCode::CREATED,
                &[("client_id", "ci-runner"), ("scopes", "scanner.read")],
            ),
        ];
        for (path, status, fields) in forms {
            let page = env.post(&admin, path, fields).await;
            posted.push((format!("POST {path}"), status, page));
        }
        let rejected = env
            .send(crate::kits::tests::multipart(
                &admin,
                &format!("/console/kits?csrf={CSRF}"),
                &[("kit", "kit.tar.zst", b"not a kit")],
            ))
            .await;
        posted.push((
            "POST /console/kits (rejected)".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            rejected,
        ));
        let bundle = crate::attest::testing::signed_bundle(&env);
        let verified = env
            .send(crate::kits::tests::multipart(
                &admin,
                &format!("/console/attestations/verify?csrf={CSRF}"),
                &[
                    ("bundle", "sbom.cdx.json.sigstore.json", &bundle),
                    ("artifact", "sbom.cdx.json", crate::attest::testing::SBOM),
                ],
            ))
            .await;
        posted.push((
            "POST /console/attestations/verify".to_owned(),
            StatusCode::OK,
            verified,
        ));
        // The second console gets its kit through the console's two steps, whose pages are
        // linted too: the verification report with its load form, the load's result, and the
        // error pages of a malformed and an unknown staged id.
        let kit = super::testing::sample_kit();
        let feeds = ConsoleEnv::trusting(&kit.public_key);
        let operator = feeds.sign_in("admin", "admin");
        let verified = crate::kits::tests::upload(&feeds, &operator, &kit.archive).await;
        let staged = crate::kits::tests::staged_id(&verified.body);
        posted.push((
            "POST /console/kits (verified)".to_owned(),
            StatusCode::OK,
            verified,
        ));
        for (what, id, status) in [
            ("loaded", staged.as_str(), StatusCode::OK),
            ("loaded already", staged.as_str(), StatusCode::NOT_FOUND),
            ("not an id", "../x", StatusCode::BAD_REQUEST),
        ] {
            let page = feeds
                .post(&operator, "/console/kits/load", &[("staged", id)])
                .await;
            posted.push((format!("POST /console/kits/load ({what})"), status, page));
        }
        Self {
            env,
            feeds,
            _images: images,
            old,
            new,
            export,
            done_scan,
            posted,
        }
    }

    /// Stores an export whose artefact and bundle are in the blob store; returns its id.
    fn export(env: &ConsoleEnv) -> i64 {
        let stores = env.state.stores();
        let artifact = stores.blobs.put(crate::attest::testing::SBOM).unwrap();
        let bundle = stores.blobs.put(b"{\"mediaType\":\"bundle\"}").unwrap();
        let conn = stores.catalog.connection();
        conn.execute(
            "INSERT INTO exports (image_digest, format, view, name, artifact_digest,
                                  bundle_digest, log_index, created_at)
             VALUES (?1, 'cdx-json', 'inventory', ?2, ?3, ?4, 0, ?5)",
            params![
                super::findings::tests::IMAGE,
                "sbom.cdx.json",
                artifact.to_string(),
                bundle.to_string(),
                (super::testing::T0 - 60) as i64
            ],
        )
        .unwrap();
        conn.last_insert_rowid()
    }

    /// The URLs to fetch for each console GET route pattern, with the status an admin gets
    /// (error pages are pages too).
    fn urls(&self) -> BTreeMap<&'static str, Vec<(String, StatusCode)>> {
        let (old, new, image) = (&self.old, &self.new, super::findings::tests::IMAGE);
        let export = self.export;
        let ok = |path: &str| (path.to_owned(), StatusCode::OK);
        let not_found = |path: &str| (path.to_owned(), StatusCode::NOT_FOUND);
        BTreeMap::from([
            ("/", vec![ok("/")]),
            ("/account/password", vec![ok("/account/password")]),
            (
                "/console/scans",
                vec![
                    ok("/console/scans"),
                    ok("/console/scans?sort=-image&page=9"),
                ],
            ),
            (
                "/console/scans/{id}",
                vec![
                    ok(&format!("/console/scans/{}", self.done_scan)),
                    ok("/console/scans/scan-failed"),
                    ok("/console/scans/scan-interrupted"),
                    not_found("/console/scans/no-such-scan"),
                ],
            ),
            (
                "/console/images/{digest}",
                vec![
                    ok(&format!("/console/images/{new}")),
                    ok(&format!("/console/images/{new}?view=usage&sort=-layer")),
                    ok(&format!("/console/images/{new}?q=nothing-matches")),
                    ok(&format!("/console/images/{image}")),
                    not_found("/console/images/sha256:not-a-digest"),
                ],
            ),
            (
                "/console/images/{digest}/sbom",
                vec![ok(&format!("/console/images/{new}/sbom?format=cdx-json"))],
            ),
            (
                "/console/images/{digest}/findings",
                vec![
                    ok(&format!("/console/images/{image}/findings")),
                    ok(&format!(
                        "/console/images/{image}/findings?severity=critical&sort=-severity"
                    )),
                    ok(&format!(
                        "/console/images/{image}/findings?kev=yes&used=yes&decision=pass"
                    )),
                    ok(&format!("/console/images/{new}/findings")),
                ],
            ),
            (
                "/console/diff",
                vec![
                    ok("/console/diff"),
                    ok(&format!("/console/diff?old={old}&new={new}")),
                    ok(&format!("/console/diff?old={old}&new={old}")),
                ],
            ),
            (
                "/console/policies",
                vec![ok("/console/policies"), ok("/console/policies?saved=1")],
            ),
            (
                "/console/policies/{revision}",
                vec![ok("/console/policies/1"), not_found("/console/policies/99")],
            ),
            ("/console/kits", vec![ok("/console/kits")]),
            ("/console/attestations", vec![ok("/console/attestations")]),
            (
                "/console/attestations/{id}/{part}",
                vec![
                    ok(&format!("/console/attestations/{export}/artifact")),
                    ok(&format!("/console/attestations/{export}/bundle")),
                ],
            ),
            (
                "/console/audit",
                vec![
                    ok("/console/audit"),
                    ok("/console/audit?actor=nobody&since=1h"),
                ],
            ),
            ("/console/users", vec![ok("/console/users")]),
            ("/console/clients", vec![ok("/console/clients")]),
            (
                "/console/advisories",
                vec![
                    ok("/console/advisories"),
                    ok("/console/advisories?q=requests"),
                ],
            ),
            (
                "/console/advisories/{id}",
                vec![
                    ok("/console/advisories/CVE-2024-1001"),
                    ok("/console/advisories/GHSA-aaaa-bbbb-cccc"),
                    not_found("/console/advisories/CVE-1999-0001"),
                ],
            ),
            (
                "/console/vex",
                vec![
                    ok("/console/vex"),
                    ok(&Params::default().href("/console/vex", "product", "pkg:pypi/jinja2")),
                ],
            ),
        ])
    }

    /// The URLs to fetch on the second console (the advisory pages' own kit).
    fn feed_urls() -> BTreeMap<&'static str, Vec<(String, StatusCode)>> {
        let ok = |path: &str| (path.to_owned(), StatusCode::OK);
        let log4j = "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1";
        BTreeMap::from([
            (
                "/console/advisories",
                vec![
                    ok("/console/advisories"),
                    ok("/console/advisories?ecosystem=PyPI&page=2"),
                    ok("/console/advisories?kev=yes&q=log4j"),
                    ok("/console/advisories?q=evil-pkg"),
                    ok("/console/advisories?q=nothing-matches-this"),
                    ok("/console/advisories?q=severity%3A"),
                ],
            ),
            (
                "/console/advisories/{id}",
                vec![
                    ok("/console/advisories/CVE-2021-44228"),
                    ok("/console/advisories/GHSA-jfh8-c2jp-5v3q"),
                    ok("/console/advisories/CVE-2023-0286"),
                    ok("/console/advisories/CVE-2024-6666"),
                ],
            ),
            (
                "/console/vex",
                vec![
                    ok("/console/vex"),
                    ok("/console/vex?q=log4j"),
                    ok(&Params::default().href("/console/vex", "product", log4j)),
                    ok(&Params::default().href("/console/vex", "product", "pkg:npm/evil-pkg")),
                ],
            ),
        ])
    }
}

/// Violations known and left to their pages' owners: (route pattern, the problem's start).
/// Each must still occur; remove it when its page is fixed.
const KNOWN: &[(&str, &str)] = &[];

/// The most rows a table marked `complete` may show: a page's worth.
const COMPLETE_ROWS: usize = super::view::PER_PAGE;

/// Whether `problem` (`GET /path?query as role: problem`) is the known violation `known`.
fn is_known((pattern, start): &(&str, &str), problem: &str) -> bool {
    let Some((request, found)) = problem.split_once(": ") else {
        return false;
    };
    let path = request
        .strip_prefix("GET ")
        .and_then(|r| r.split([' ', '?']).next())
        .unwrap_or("");
    matches_pattern(pattern, path) && found.starts_with(start)
}

/// The console GET routes of the route table (session access).
fn console_get_routes() -> Vec<&'static str> {
    crate::route_table()
        .entries()
        .iter()
        .filter(|e| e.method == Method::GET && matches!(e.access, Access::Session { .. }))
        .map(|e| e.path)
        .collect()
}

/// Whether `path` (no query) matches the route pattern `pattern` (`{name}` is one segment).
fn matches_pattern(pattern: &str, path: &str) -> bool {
    let (pattern, path): (Vec<_>, Vec<_>) =
        (pattern.split('/').collect(), path.split('/').collect());
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(&path)
            .all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || p == s)
}

/// What is wrong with a response's security headers.
fn header_problems(page: &Page) -> Vec<String> {
    let expected = [
        (header::CONTENT_SECURITY_POLICY.as_str(), super::view::CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        (header::CACHE_CONTROL.as_str(), "no-store"),
    ];
    expected
        .iter()
        .filter(|(name, value)| {
            page.headers.get(*name).and_then(|v| v.to_str().ok()) != Some(*value)
        })
        .map(|(name, value)| format!("header {name} is not `{value}`"))
        .collect()
}

/// The elements a console page may use (HTML's, less the obsolete and embedding ones).
#[rustfmt::skip]
const HTML_ELEMENTS: &[&str] = &[
    "a", "abbr", "address", "article", "aside", "b", "blockquote", "body", "br", "button",
    "caption", "cite", "code", "col", "colgroup", "data", "dd", "del", "details", "dfn", "div",
    "dl", "dt", "em", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "head", "header", "hr", "html", "i", "img", "input", "ins", "kbd", "label",
    "legend", "li", "link", "main", "mark", "meta", "meter", "nav", "noscript", "ol", "optgroup",
    "option", "output", "p", "pre", "progress", "q", "s", "samp", "script", "search", "section",
    "select", "small", "span", "strong", "style", "sub", "summary", "sup", "table", "tbody", "td",
    "template", "textarea", "tfoot", "th", "thead", "time", "title", "tr", "u", "ul", "var",
    "wbr",
];

/// The elements of `doc` in document order.
fn elements(doc: &Html) -> Vec<ElementRef<'_>> {
    doc.root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
        .collect()
}

/// The elements of `all` called `name`.
fn named<'a>(all: &[ElementRef<'a>], name: &str) -> Vec<ElementRef<'a>> {
    all.iter()
        .filter(|e| e.value().name() == name)
        .copied()
        .collect()
}

fn attr<'a>(el: &ElementRef<'a>, name: &str) -> Option<&'a str> {
    el.value().attr(name)
}

/// A short description of an element for messages: `<input name="q" id="f-q">`.
fn describe(el: &ElementRef<'_>) -> String {
    let mut text = format!("<{}", el.value().name());
    for key in ["id", "name", "type", "href", "src", "action", "class"] {
        if let Some(value) = attr(el, key) {
            let value: String = value.chars().take(60).collect();
            text.push_str(&format!(" {key}=\"{value}\""));
        }
    }
    text.push('>');
    text
}

fn text_of(el: &ElementRef<'_>) -> String {
    el.text().collect::<String>().trim().to_owned()
}

/// Whether `url` leaves this origin.
fn external(url: &str) -> bool {
    let url = url.trim().to_ascii_lowercase();
    url.starts_with("http://") || url.starts_with("https://") || url.starts_with("//")
}

/// The `csrf` value in a form action's query, if any.
fn action_csrf(action: &str) -> Option<String> {
    let query = action.split_once('?')?.1;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v)
}

/// The scope a POST to `action` needs: `Ok(None)` for any signed-in user or a public route,
/// `Err` when no POST route matches.
fn post_scope(action: &str) -> Result<Option<stella_authority::Scope>, String> {
    let path = action.split(['?', '#']).next().unwrap_or("");
    crate::route_table()
        .entries()
        .iter()
        .find(|e| e.method == Method::POST && matches_pattern(e.path, path))
        .map(|e| match e.access {
            Access::Session { scope } => scope,
            _ => None,
        })
        .ok_or_else(|| format!("no POST route serves {path}"))
}

/// Every rule this module checks, on one HTML document. `csrf` is the session's token (`None`
/// before sign-in, where any non-empty token is accepted); `role` decides which forms may show.
fn lint_html(body: &str, csrf: Option<&str>, role: Option<Role>) -> Vec<String> {
    let doc = Html::parse_document(body);
    let all = elements(&doc);
    let named = |name: &str| named(&all, name);
    let mut problems: Vec<String> = doc
        .errors
        .iter()
        .map(|e| format!("HTML parse error: {e}"))
        .collect();

    // Structure.
    if attr(&doc.root_element(), "lang").is_none_or(|l| l.trim().is_empty()) {
        problems.push("<html> has no lang".to_owned());
    }
    let titles = named("title");
    if titles.len() != 1 || text_of(&titles[0]).is_empty() {
        problems.push(format!(
            "{} <title> elements (one, not empty)",
            titles.len()
        ));
    }
    let h1 = named("h1");
    if h1.len() != 1 {
        problems.push(format!("{} <h1> elements, not one", h1.len()));
    } else if text_of(&h1[0]).is_empty() {
        problems.push("the <h1> is empty".to_owned());
    }
    let metas = named("meta");
    if !metas
        .iter()
        .any(|m| attr(m, "charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8")))
    {
        problems.push("no <meta charset=\"utf-8\">".to_owned());
    }
    if !metas.iter().any(|m| attr(m, "name") == Some("viewport")) {
        problems.push("no <meta name=\"viewport\">".to_owned());
    }
    let mains = named("main");
    if mains.len() != 1 || attr(&mains[0], "id") != Some("main") {
        problems.push("not exactly one <main id=\"main\">".to_owned());
    }
    match named("a").first() {
        Some(first) if attr(first, "href") == Some("#main") => {}
        _ => problems.push("the first link is not the skip link to #main".to_owned()),
    }

    // Escaping: data shown unescaped makes elements HTML does not have.
    for el in &all {
        if !HTML_ELEMENTS.contains(&el.value().name()) {
            problems.push(format!(
                "unknown element {} (unescaped text?)",
                describe(el)
            ));
        }
    }

    // Ids: unique, and the ones referred to exist.
    let mut ids = BTreeSet::new();
    for el in &all {
        if let Some(id) = attr(el, "id") {
            if id.is_empty() || id.contains(char::is_whitespace) {
                problems.push(format!("id \"{id}\" is empty or has spaces"));
            } else if !ids.insert(id) {
                problems.push(format!("id \"{id}\" is used more than once"));
            }
        }
    }
    for el in &all {
        for key in ["aria-labelledby", "aria-describedby"] {
            for id in attr(el, key).unwrap_or("").split_whitespace() {
                if !ids.contains(id) {
                    problems.push(format!(
                        "{key}=\"{id}\" on {} names no element",
                        describe(el)
                    ));
                }
            }
        }
        if el.value().name() == "a"
            && let Some(fragment) = attr(el, "href").and_then(|h| h.strip_prefix('#'))
            && !fragment.is_empty()
            && !ids.contains(fragment)
        {
            problems.push(format!("link to #{fragment} names no element"));
        }
    }

    // CSP: nothing inline, nothing from elsewhere.
    for el in &all {
        let name = el.value().name();
        if name == "script" && attr(el, "src").is_none() {
            problems.push(format!("inline <script>: {:.80}", text_of(el)));
        }
        if name == "style" {
            problems.push("inline <style> element".to_owned());
        }
        for (key, value) in el.value().attrs() {
            if key == "style" {
                problems.push(format!("style attribute on {}", describe(el)));
            }
            if key.starts_with("on") {
                problems.push(format!("event attribute {key} on {}", describe(el)));
            }
            if value.trim().to_ascii_lowercase().starts_with("javascript:") {
                problems.push(format!("javascript: URL in {key} of {}", describe(el)));
            }
        }
        let asset = match name {
            "link" => attr(el, "href"),
            "form" => attr(el, "action"),
            _ => attr(el, "src"),
        };
        if asset.is_some_and(external) {
            problems.push(format!("{} loads from another origin", describe(el)));
        }
    }

    // Forms: the CSRF token, and only forms the role may use.
    for form in named("form") {
        if !attr(&form, "method").is_some_and(|m| m.eq_ignore_ascii_case("post")) {
            continue;
        }
        let action = attr(&form, "action").unwrap_or("");
        let token_ok = |value: &str| match csrf {
            Some(csrf) => value == csrf,
            None => !value.is_empty(),
        };
        let multipart =
            attr(&form, "enctype").is_some_and(|e| e.eq_ignore_ascii_case("multipart/form-data"));
        let in_action = action_csrf(action).is_some_and(|v| token_ok(&v));
        let in_field = form.descendants().filter_map(ElementRef::wrap).any(|el| {
            el.value().name() == "input"
                && attr(&el, "type") == Some("hidden")
                && attr(&el, "name") == Some("csrf")
                && attr(&el, "value").is_some_and(token_ok)
        });
        if multipart && !in_action {
            problems.push(format!(
                "multipart {} has no csrf= in its action (the body is read after the check)",
                describe(&form)
            ));
        } else if !multipart && !in_field && !in_action {
            problems.push(format!("{} has no csrf field", describe(&form)));
        }
        match (post_scope(action), role) {
            (Err(why), _) => problems.push(format!("{}: {why}", describe(&form))),
            (Ok(Some(scope)), Some(role)) if !role.scopes().contains(scope) => {
                problems.push(format!(
                    "{} shown to a {} but needs {scope:?}",
                    describe(&form),
                    role.as_str()
                ));
            }
            _ => {}
        }
    }

    // Labels.
    let label_for: BTreeSet<&str> = named("label")
        .iter()
        .filter_map(|l| attr(l, "for"))
        .collect();
    for target in &label_for {
        if !ids.contains(target) {
            problems.push(format!("<label for=\"{target}\"> names no element"));
        }
    }
    for el in &all {
        let name = el.value().name();
        let control = match name {
            "select" | "textarea" => true,
            "input" => !matches!(
                attr(el, "type").map(str::to_ascii_lowercase).as_deref(),
                Some("hidden" | "submit" | "reset" | "button" | "image")
            ),
            _ => false,
        };
        if !control {
            continue;
        }
        let labelled = attr(el, "id").is_some_and(|id| label_for.contains(id))
            || el
                .ancestors()
                .filter_map(ElementRef::wrap)
                .any(|a| a.value().name() == "label")
            || attr(el, "aria-label").is_some_and(|l| !l.trim().is_empty())
            || attr(el, "aria-labelledby").is_some_and(|l| !l.trim().is_empty());
        if !labelled {
            problems.push(format!("{} has no label", describe(el)));
        }
    }

    // Keyboard: the tab order is the document's, links go somewhere without script, every
    // form can be sent and every list offers a choice.
    for el in &all {
        if attr(el, "tabindex").and_then(|t| t.trim().parse::<i64>().ok()) > Some(0) {
            problems.push(format!("positive tabindex on {}", describe(el)));
        }
        let name = el.value().name();
        if name == "a" && attr(el, "href").is_none_or(|h| h.trim().is_empty() || h == "#") {
            problems.push(format!("{} goes nowhere: {}", describe(el), text_of(el)));
        }
        if name == "form" {
            let submits = el.descendants().filter_map(ElementRef::wrap).any(|c| {
                let kind = attr(&c, "type").map(str::to_ascii_lowercase);
                (c.value().name() == "button" && matches!(kind.as_deref(), None | Some("submit")))
                    || (c.value().name() == "input"
                        && matches!(kind.as_deref(), Some("submit" | "image")))
            });
            if !submits {
                problems.push(format!("{} has no submit button", describe(el)));
            }
        }
        if name == "select"
            && !el
                .descendants()
                .filter_map(ElementRef::wrap)
                .any(|o| o.value().name() == "option")
        {
            problems.push(format!("{} has no options", describe(el)));
        }
    }

    // Controls, links and images have names; files go in multipart POST forms.
    for el in &all {
        let named_by_aria = attr(el, "aria-label").is_some_and(|l| !l.trim().is_empty())
            || attr(el, "aria-labelledby").is_some();
        match el.value().name() {
            "button" | "a" if text_of(el).is_empty() && !named_by_aria => {
                problems.push(format!("{} has no text", describe(el)));
            }
            "img" if attr(el, "alt").is_none() => {
                problems.push(format!("{} has no alt", describe(el)));
            }
            "input" if attr(el, "type") == Some("file") => {
                let form = el
                    .ancestors()
                    .filter_map(ElementRef::wrap)
                    .find(|a| a.value().name() == "form");
                let multipart_post = form.is_some_and(|f| {
                    attr(&f, "method").is_some_and(|m| m.eq_ignore_ascii_case("post"))
                        && attr(&f, "enctype")
                            .is_some_and(|e| e.eq_ignore_ascii_case("multipart/form-data"))
                });
                if !multipart_post {
                    problems.push(format!("{} is not in a multipart POST form", describe(el)));
                }
            }
            _ => {}
        }
        if let Some(sort) = attr(el, "aria-sort")
            && !matches!(sort, "ascending" | "descending" | "none" | "other")
        {
            problems.push(format!("aria-sort=\"{sort}\" on {}", describe(el)));
        }
    }

    // Tables and times.
    for table in named("table") {
        let headers = table
            .descendants()
            .filter_map(ElementRef::wrap)
            .any(|e| e.value().name() == "th");
        if !headers {
            problems.push(format!("{} has no <th> header cells", describe(&table)));
        }
    }
    for th in named("th") {
        if !attr(&th, "scope").is_some_and(|s| matches!(s, "col" | "row" | "colgroup" | "rowgroup"))
        {
            problems.push(format!("<th> without scope: {}", text_of(&th)));
        }
    }
    for time in named("time") {
        use time::format_description::well_known::Rfc3339;
        match attr(&time, "datetime") {
            Some(at) if time::OffsetDateTime::parse(at, &Rfc3339).is_ok() => {
                if !at.ends_with('Z') || !text_of(&time).ends_with(" UTC") {
                    problems.push(format!("<time datetime=\"{at}\"> is not shown in UTC"));
                }
            }
            Some(at) => problems.push(format!("<time datetime=\"{at}\"> is not RFC 3339")),
            None => problems.push(format!("<time> without datetime: {}", text_of(&time))),
        }
        let age = time.next_siblings().find_map(ElementRef::wrap);
        if !age.is_some_and(|a| a.value().has_class("age", CaseSensitive)) {
            problems.push(format!(
                "<time> {} has no relative age after it",
                text_of(&time)
            ));
        }
    }
    // A list (a table with a header row) is paginated — followed by a pager — and sortable,
    // or marked `complete`: a small set shown whole.
    for table in named("table") {
        let has = |name: &str| {
            table
                .descendants()
                .filter_map(ElementRef::wrap)
                .any(|e| e.value().name() == name)
        };
        if !has("thead") {
            continue;
        }
        let caption = table
            .descendants()
            .filter_map(ElementRef::wrap)
            .find(|e| e.value().name() == "caption")
            .map(|c| text_of(&c))
            .unwrap_or_default();
        if table.value().has_class("complete", CaseSensitive) {
            let rows = table
                .descendants()
                .filter_map(ElementRef::wrap)
                .filter(|e| e.value().name() == "tr")
                .count();
            if rows > COMPLETE_ROWS + 1 {
                problems.push(format!(
                    "complete table \"{caption}\" has {rows} rows (more than {COMPLETE_ROWS}): \
                     paginate it"
                ));
            }
            continue;
        }
        // The table, or the scrolling box around it, comes right before the pager.
        let block = table
            .parent()
            .and_then(ElementRef::wrap)
            .filter(|p| p.value().has_class("scroll", CaseSensitive))
            .unwrap_or(table);
        let paged = block
            .next_siblings()
            .find_map(ElementRef::wrap)
            .is_some_and(|e| e.value().has_class("pager", CaseSensitive));
        if !paged {
            problems.push(format!(
                "list table \"{caption}\" has no pager after it and is not marked complete"
            ));
        }
        let sortable = table
            .descendants()
            .filter_map(ElementRef::wrap)
            .any(|e| e.value().name() == "th" && attr(&e, "aria-sort").is_some());
        if paged && !sortable {
            problems.push(format!(
                "paginated table \"{caption}\" has no sortable column"
            ));
        }
    }
    problems
}

/// Lints one response: `what` names it in messages. Downloads (not HTML) only need to succeed.
fn lint_page(
    what: &str,
    page: &Page,
    csrf: Option<&str>,
    role: Option<Role>,
    out: &mut Vec<String>,
    linted: &mut usize,
) {
    let html = page
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if page.status.is_server_error() {
        out.push(format!("{what}: status {}", page.status));
    }
    if !html {
        return;
    }
    *linted += 1;
    if page.status.is_client_error() || page.status.is_server_error() {
        let doc = Html::parse_document(&page.body);
        let advice = elements(&doc)
            .into_iter()
            .filter(|e| attr(e, "role") == Some("alert"))
            .any(|alert| {
                alert
                    .descendants()
                    .filter_map(ElementRef::wrap)
                    .filter(|p| p.value().name() == "p" && !text_of(p).is_empty())
                    .count()
                    >= 2
            });
        if !advice {
            out.push(format!(
                "{what}: the {} page has no alert saying what went wrong and what to do next",
                page.status
            ));
        }
    }
    let mut seen = BTreeMap::<String, usize>::new();
    for problem in header_problems(page)
        .into_iter()
        .chain(lint_html(&page.body, csrf, role))
    {
        *seen.entry(problem).or_default() += 1;
    }
    for (problem, times) in seen {
        let times = if times > 1 {
            format!(" (×{times})")
        } else {
            String::new()
        };
        out.push(format!("{what}: {problem}{times}"));
    }
}

#[tokio::test]
async fn every_console_page_passes_the_lint() {
    let site = Site::build().await;
    let urls = site.urls();
    let routes = console_get_routes();
    let missing: Vec<_> = routes.iter().filter(|r| !urls.contains_key(*r)).collect();
    assert!(
        missing.is_empty(),
        "console GET routes the lint does not fetch (add them to Site::urls): {missing:?}"
    );
    let stale: Vec<_> = urls.keys().filter(|u| !routes.contains(u)).collect();
    assert!(
        stale.is_empty(),
        "Site::urls lists routes that are gone: {stale:?}"
    );

    let mut problems = Vec::new();
    let mut fetched = 0;
    let mut linted = 0;
    for (env, urls) in [(&site.env, &urls), (&site.feeds, &Site::feed_urls())] {
        for role in Role::ALL {
            let cookie = env.sign_in(&format!("lint-{}", role.as_str()), role.as_str());
            for (pattern, paths) in urls {
                assert!(
                    routes.contains(pattern),
                    "{pattern} is not a console GET route"
                );
                for (path, status) in paths {
                    let bare = path.split('?').next().unwrap_or("");
                    assert!(matches_pattern(pattern, bare), "{path} is not {pattern}");
                    let page = env.get(&cookie, path).await;
                    if role == Role::Admin && page.status != *status {
                        problems.push(format!(
                            "GET {path} as admin: status {}, expected {status}",
                            page.status
                        ));
                    }
                    let what = format!("GET {path} as {}", role.as_str());
                    lint_page(
                        &what,
                        &page,
                        Some(CSRF),
                        Some(role),
                        &mut problems,
                        &mut linted,
                    );
                    fetched += 1;
                }
            }
        }
    }
    for (what, status, page) in &site.posted {
        if page.status != *status {
            problems.push(format!("{what}: status {}, expected {status}", page.status));
        }
        lint_page(
            &format!("{what} as admin"),
            page,
            Some(CSRF),
            Some(Role::Admin),
            &mut problems,
            &mut linted,
        );
    }
    let login = site.env.get("", "/login").await;
    lint_page(
        "GET /login (signed out)",
        &login,
        None,
        None,
        &mut problems,
        &mut linted,
    );
    // A failed sign-in: the form again, with its double-submit token, and the advice.
    let cookie = login
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .find(|c| c.starts_with("stella_login_csrf="))
        .expect("the login page sets its CSRF cookie")
        .to_owned();
    let token = cookie
        .split_once('=')
        .map(|(_, t)| t.to_owned())
        .unwrap_or_default();
    let failed = site
        .env
        .post_encoded(
            &cookie,
            "/login",
            format!("csrf={token}&username=nobody&password=wrong"),
        )
        .await;
    if failed.status != StatusCode::UNAUTHORIZED {
        problems.push(format!(
            "POST /login (wrong password): status {}",
            failed.status
        ));
    }
    lint_page(
        "POST /login (wrong password)",
        &failed,
        None,
        None,
        &mut problems,
        &mut linted,
    );
    assert!(fetched > 4 * routes.len(), "fetched {fetched} pages");
    // All but the downloads (two routes, three URLs, four roles) are HTML pages.
    assert!(linted >= fetched - 12, "linted {linted} of {fetched}");
    let mut unused: BTreeSet<_> = KNOWN.iter().collect();
    problems.retain(|problem| {
        let known = KNOWN.iter().find(|known| is_known(known, problem));
        if let Some(known) = known {
            unused.remove(known);
        }
        known.is_none()
    });
    assert!(
        unused.is_empty(),
        "known violations that no longer occur (remove them from KNOWN): {unused:?}"
    );
    assert!(
        problems.is_empty(),
        "{} console lint violations:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The lint itself finds each kind of violation in a page made to break every rule.
#[test]
fn the_lint_finds_each_kind_of_violation() {
    let broken = r##"<!doctype html><html><head><meta charset="latin1"></head><body>
<a href="/">first</a><a href="#nowhere">x</a>
<h1>One</h1><h1>Two</h1>
<script>alert(1)</script><style>p{}</style>
<img src="https://cdn.example/x.png" alt=""><script src="//cdn.example/x.js"></script>
<p style="color:red" onclick="x()"><a href="javascript:alert(1)">js</a></p>
<form method="post" action="/console/users"><input name="name"></form>
<form method="post" enctype="multipart/form-data" action="/console/kits">
<input type="hidden" name="csrf" value="test-csrf-token"></form>
<form method="post" action="/console/nothing-here"><input type="hidden" name="csrf" value="test-csrf-token"></form>
<label for="ghost">Ghost</label><select id="s"></select><textarea aria-describedby="none"></textarea>
<p id="dup"></p><p id="dup"></p><p id="a b">Header <injection> in requests</p>
<table><tr><td>1</td></tr></table>
<time>yesterday</time><time datetime="soon">soon</time> <span class="age">(now)</span>
<time datetime="2026-11-29T11:40:00+01:00">11:40</time> <span class="age">(1 h ago)</span>
<table><caption>Rows 1–2 of 2</caption><thead><tr><th scope="col">x</th></tr></thead></table><nav class="pager"></nav>
<div class="scroll"><table><caption>Layers</caption><thead><tr><th scope="col" aria-sort="none">n</th></tr></thead></table></div><p>no pager</p>
<button type="submit"></button><a>nowhere</a><p tabindex="2">x</p><img src="/console/static/x.png"><input type="file" id="f" aria-label="File">
<table><tr><th scope="col" aria-sort="up">x</th><th>y</th></tr></table><p><div>x</div></p></b>
</body></html>"##;
    let whole = "<tr><td>x</td></tr>".repeat(COMPLETE_ROWS + 1);
    let broken = broken.replace(
        "</body>",
        &format!(
            "<table class=\"complete\"><caption>Statements</caption><thead><tr>\
             <th scope=\"col\">s</th></tr></thead><tbody>{whole}</tbody></table></body>"
        ),
    );
    let problems = lint_html(&broken, Some(CSRF), Some(Role::Viewer));
    let expected = [
        "<html> has no lang",
        "0 <title> elements",
        "2 <h1> elements",
        "not exactly one <main",
        "the first link is not the skip link",
        "link to #nowhere names no element",
        "inline <script>: alert(1)",
        "inline <style> element",
        "<img src=\"https://cdn.example/x.png\"> loads from another origin",
        "<script src=\"//cdn.example/x.js\"> loads from another origin",
        "style attribute on <p>",
        "event attribute onclick on <p>",
        "javascript: URL in href",
        "<form action=\"/console/users\"> has no csrf field",
        "<form action=\"/console/users\"> shown to a viewer but needs",
        "multipart <form action=\"/console/kits\"> has no csrf= in its action",
        "<form action=\"/console/kits\"> shown to a viewer but needs",
        "no POST route serves /console/nothing-here",
        "<input name=\"name\"> has no label",
        "<select id=\"s\"> has no label",
        "<select id=\"s\"> has no options",
        "no <meta charset=\"utf-8\">",
        "no <meta name=\"viewport\">",
        "<a> goes nowhere: nowhere",
        "positive tabindex on <p>",
        "<form action=\"/console/users\"> has no submit button",
        "<form action=\"/console/kits\"> has no submit button",
        "<form action=\"/console/nothing-here\"> has no submit button",
        "<textarea> has no label",
        "<label for=\"ghost\"> names no element",
        "aria-describedby=\"none\" on <textarea> names no element",
        "id \"dup\" is used more than once",
        "id \"a b\" is empty or has spaces",
        "unknown element <injection> (unescaped text?)",
        "<table> has no <th> header cells",
        "<time> without datetime: yesterday",
        "<time datetime=\"soon\"> is not RFC 3339",
        "<time> yesterday has no relative age after it",
        "<time datetime=\"2026-11-29T11:40:00+01:00\"> is not shown in UTC",
        "paginated table \"Rows 1–2 of 2\" has no sortable column",
        "list table \"Layers\" has no pager after it and is not marked complete",
        "complete table \"Statements\" has 52 rows (more than 50): paginate it",
        "<button type=\"submit\"> has no text",
        "<img src=\"/console/static/x.png\"> has no alt",
        "<input id=\"f\" type=\"file\"> is not in a multipart POST form",
        "aria-sort=\"up\" on <th>",
        "<th> without scope: y",
        "HTML parse error",
    ];
    for want in expected {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "missing {want:?} in {problems:#?}"
        );
    }
    let parse_errors = problems
        .iter()
        .filter(|p| p.starts_with("HTML parse"))
        .count();
    assert_eq!(
        problems.len() - parse_errors,
        expected.len() - 1,
        "{problems:#?}"
    );
}
