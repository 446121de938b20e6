//! Console: the policy editor. Viewers read the current policy (or the built-in default when
//! none is stored), its digest and the revision history; approvers (`policy.write`) edit it.
//! A save validates first: an invalid policy comes back in the editor as typed, with each error
//! at its line and column, and nothing is stored; a valid one becomes the next revision (the
//! same function as `POST /api/policies`, audited `policy.create`).

use askama::Template;
use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Extensions, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stella_authority::Scope;
use stella_decide::PolicyError;
use stella_decide::policy::DEFAULT_POLICY_YAML;

use super::view::{Column, PER_PAGE, Pager, Params, Sort, When, error_page, secure};
use super::{Chrome, render};
use crate::AppState;
use crate::auth::{AuditContext, RouteTable};
use crate::reports::{self, Broken, PolicyProblem, PolicyRevision, RevisionOrder};

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .console(
            Method::GET,
            "/console/policies",
            Some(Scope::ScannerRead),
            editor_page,
        )
        .console(
            Method::POST,
            "/console/policies",
            Some(Scope::PolicyWrite),
            save_policy,
        )
        .console(
            Method::GET,
            "/console/policies/{revision}",
            Some(Scope::ScannerRead),
            revision_page,
        )
}

const PATH: &str = "/console/policies";
/// The history's sortable columns: key and label.
const HISTORY_COLUMNS: [(&str, &str); 4] = [
    ("revision", "Revision"),
    ("name", "Name"),
    ("author", "Author"),
    ("saved", "Saved"),
];

/// One policy error, at its place in the text when the parser knows it.
struct ProblemLine {
    /// 1-based; 0 when the error has no position (a wrong apiVersion, duplicate rule names).
    line: usize,
    column: usize,
    message: String,
    /// The offending line of the submitted text.
    excerpt: String,
}

impl ProblemLine {
    fn of(error: &PolicyError, text: &str) -> Self {
        match error {
            PolicyError::Parse {
                line,
                column,
                message,
                ..
            } => Self {
                line: *line,
                column: *column,
                message: message.clone(),
                excerpt: line
                    .checked_sub(1)
                    .and_then(|i| text.lines().nth(i))
                    .unwrap_or("")
                    .to_owned(),
            },
            PolicyError::Invalid { message, .. } => Self::unplaced(message.clone()),
            other => Self::unplaced(other.to_string()),
        }
    }

    fn unplaced(message: String) -> Self {
        Self {
            line: 0,
            column: 0,
            message,
            excerpt: String::new(),
        }
    }
}

/// A revision in the history list.
struct HistoryRow {
    revision: i64,
    name: String,
    digest: String,
    author: String,
    created: Option<When>,
    created_text: String,
}

impl HistoryRow {
    fn of(row: &PolicyRevision, now: u64) -> Self {
        Self {
            revision: row.revision,
            name: row.name.clone(),
            digest: row.digest.clone(),
            author: row.created_by.clone(),
            created: When::parse(&row.created_at, now),
            created_text: row.created_at.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "policies.html")]
struct EditorPage {
    chrome: Chrome,
    /// The current revision; `None` when the default policy applies.
    current: Option<HistoryRow>,
    /// The default policy's digest, when it applies.
    default_digest: String,
    /// What the editor holds: the current policy, or the text just submitted.
    text: String,
    problems: Vec<ProblemLine>,
    /// The revision just saved, when the page follows a save.
    saved: Option<i64>,
    can_edit: bool,
    history: Vec<HistoryRow>,
    columns: Vec<Column>,
    pager: Pager,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct RevisionPage {
    chrome: Chrome,
    row: HistoryRow,
    text: String,
    is_current: bool,
}

fn broken_page(chrome: Chrome, broken: &Broken) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        chrome,
        format!("The stored policy cannot be read: {broken}."),
        "Check the daemon log and the data directory; then reload this page.",
        "/",
    )
}

/// The editor with `text` and `problems` (the current policy and none when `None`).
fn editor(
    state: &AppState,
    chrome: Chrome,
    params: &Params,
    submitted: Option<(String, Vec<ProblemLine>)>,
) -> Result<EditorPage, Broken> {
    let now = state.clock().now_unix();
    let current_row = reports::policy_revision(state, None)?;
    let (text, problems) = match submitted {
        Some(submitted) => submitted,
        None => {
            let text = match &current_row {
                Some(row) => {
                    String::from_utf8_lossy(&reports::policy_yaml(state, row)?).into_owned()
                }
                None => DEFAULT_POLICY_YAML.to_owned(),
            };
            (text, Vec::new())
        }
    };
    let default_digest = if current_row.is_none() {
        stella_decide::Policy::default_policy()
            .and_then(|p| p.digest())
            .map_err(|e| Broken(e.to_string()))?
    } else {
        String::new()
    };
    // The history's links drop `saved` (the notice belongs to the save only).
    let list = params.without("saved");
    let sort = Sort::new(&list, &HISTORY_COLUMNS, "-revision");
    let order = match sort.key.as_str() {
        "name" => RevisionOrder::Name,
        "author" => RevisionOrder::Author,
        "saved" => RevisionOrder::Saved,
        _ => RevisionOrder::Revision,
    };
    let total = reports::policy_revisions(state, 0, 0)?.0;
    let pager = Pager::new(&list, PATH, total, PER_PAGE);
    let range = pager.range();
    let (_, rows) =
        reports::policy_revisions_by(state, order, sort.descending, range.len(), range.start)?;
    let saved = params
        .get("saved")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| current_row.as_ref().is_some_and(|c| c.revision == *n));
    Ok(EditorPage {
        can_edit: chrome.can(Scope::PolicyWrite),
        chrome,
        current: current_row.as_ref().map(|r| HistoryRow::of(r, now)),
        default_digest,
        text,
        problems,
        saved,
        history: rows.iter().map(|r| HistoryRow::of(r, now)).collect(),
        columns: sort.columns(&list, PATH, &HISTORY_COLUMNS),
        pager,
    })
}

async fn editor_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("Policy", "policies");
    let params = Params::parse(query.as_deref());
    match editor(&state, chrome.clone(), &params, None) {
        Ok(page) => render(StatusCode::OK, &page),
        Err(broken) => broken_page(chrome, &broken),
    }
}

#[derive(Debug, Deserialize)]
struct PolicyForm {
    #[serde(default)]
    policy: String,
}

async fn save_policy(
    State(state): State<AppState>,
    chrome: Chrome,
    extensions: Extensions,
    Form(form): Form<PolicyForm>,
) -> Response {
    let chrome = chrome.page("Policy", "policies");
    let ctx = AuditContext::from_parts(&extensions);
    // Browsers submit a textarea with CRLF line ends; the revision keeps the text as typed.
    let text = form.policy.replace("\r\n", "\n");
    match reports::create_policy_revision(&state, text.as_bytes(), &chrome.user, &ctx) {
        Ok(stored) => {
            secure(Redirect::to(&format!("{PATH}?saved={}", stored.revision)).into_response())
        }
        Err(PolicyProblem::Invalid(error)) => {
            let problems = vec![ProblemLine::of(&error, &text)];
            match editor(
                &state,
                chrome.clone(),
                &Params::default(),
                Some((text, problems)),
            ) {
                Ok(page) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
                Err(broken) => broken_page(chrome, &broken),
            }
        }
        Err(PolicyProblem::Broken(broken)) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            chrome,
            format!("The policy was valid but could not be stored: {broken}."),
            "Check the daemon log and the data directory's disk; then save again.",
            PATH,
        ),
    }
}

async fn revision_page(
    State(state): State<AppState>,
    chrome: Chrome,
    Path(revision): Path<String>,
) -> Response {
    let chrome = chrome.page(format!("Policy revision {revision}"), "policies");
    let not_found = |chrome: Chrome| {
        error_page(
            StatusCode::NOT_FOUND,
            chrome,
            format!("There is no policy revision “{revision}”."),
            "Pick a revision from the history on the policy page.",
            PATH,
        )
    };
    let Ok(number) = revision.parse::<i64>() else {
        return not_found(chrome);
    };
    let found = reports::policy_revision(&state, Some(number)).and_then(|row| {
        let Some(row) = row else { return Ok(None) };
        let text = String::from_utf8_lossy(&reports::policy_yaml(&state, &row)?).into_owned();
        let newest = reports::policy_revision(&state, None)?.map(|r| r.revision);
        Ok(Some((row, text, newest == Some(number))))
    });
    match found {
        Ok(Some((row, text, is_current))) => render(
            StatusCode::OK,
            &RevisionPage {
                row: HistoryRow::of(&row, state.clock().now_unix()),
                chrome,
                text,
                is_current,
            },
        ),
        Ok(None) => not_found(chrome),
        Err(broken) => broken_page(chrome, &broken),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use stella_decide::Policy;

    use crate::console::testing::ConsoleEnv;

    pub(crate) const VALID: &str = "apiVersion: stella.policy/v1
name: team
defaultAction: warn
rules:
  - name: kev-fails
    match:
      kev: true
    action: fail
";

    /// Line 7 misspells `match`'s `kev` as `kevv`.
    pub(crate) const INVALID: &str = "apiVersion: stella.policy/v1
name: team
defaultAction: warn
rules:
  - name: kev-fails
    match:
      kevv: true
    action: fail
";

    fn revisions(env: &ConsoleEnv) -> i64 {
        env.state
            .stores()
            .catalog
            .connection()
            .query_row("SELECT count(*) FROM policy_revisions", [], |r| r.get(0))
            .unwrap()
    }

    /// How many `policy.create` audit records there are.
    fn audited(env: &ConsoleEnv) -> u64 {
        env.state
            .stores()
            .catalog
            .audit_count("policy.create")
            .unwrap()
    }

    #[tokio::test]
    async fn without_a_stored_policy_the_default_is_shown() {
        let env = ConsoleEnv::new();
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/policies").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        assert!(page.body.contains("No policy is stored yet"));
        let default = Policy::default_policy().unwrap();
        assert!(page.body.contains(&default.digest().unwrap()));
        assert!(page.body.contains("name: stella-default"));
        // Viewers read; the editor form is for approvers.
        assert!(!page.body.contains("<textarea"));
        assert!(page.body.contains("Approvers can edit the policy."));
        let approver = env.sign_in("amy", "approver");
        let page = env.get(&approver, "/console/policies").await;
        assert!(
            page.body
                .contains("<textarea id=\"policy\" name=\"policy\"")
        );
        assert!(page.body.contains("name=\"csrf\""));
    }

    #[tokio::test]
    async fn invalid_policy_shows_line_and_column_and_stores_nothing() {
        let env = ConsoleEnv::new();
        let approver = env.sign_in("amy", "approver");
        let page = env
            .post(&approver, "/console/policies", &[("policy", INVALID)])
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.body
        );
        page.assert_secure();
        assert!(
            page.body.contains(
                "<strong>Line 7, column 7:</strong> rules[0].match: unknown field `kevv`"
            ),
            "{}",
            page.body
        );
        assert!(page.body.contains("7 |       kevv: true"));
        assert!(page.body.contains("Fix the line and save again."));
        // The submitted text is kept in the editor, not replaced by the stored policy.
        assert!(
            page.body
                .contains("      kevv: true\n    action: fail\n</textarea>")
        );
        assert!(page.body.contains("aria-invalid=\"true\""));
        assert_eq!(revisions(&env), 0);
        assert_eq!(audited(&env), 0);

        // Errors without a position are listed as they are.
        let page = env
            .post(
                &approver,
                "/console/policies",
                &[("policy", "apiVersion: stella.policy/v0\nname: old\n")],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            page.body.contains("is not &#34;stella.policy/v1&#34;"),
            "{}",
            page.body
        );
        assert_eq!(revisions(&env), 0);
    }

    #[tokio::test]
    async fn valid_policy_becomes_the_next_revision_with_its_digest() {
        let env = ConsoleEnv::new();
        let approver = env.sign_in("amy", "approver");
        // CRLF as browsers send a textarea: stored with LF.
        let page = env
            .post(
                &approver,
                "/console/policies",
                &[("policy", &VALID.replace('\n', "\r\n"))],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.headers[header::LOCATION], "/console/policies?saved=1");
        assert_eq!(revisions(&env), 1);
        let digest = Policy::parse("t", VALID.as_bytes())
            .unwrap()
            .digest()
            .unwrap();

        let page = env.get(&approver, "/console/policies?saved=1").await;
        assert!(page.body.contains("Saved revision 1."), "{}", page.body);
        assert!(page.body.contains(&format!(
            "New policy digest <span class=\"mono\">{digest}</span>"
        )));
        assert!(page.body.contains(&format!("{VALID}</textarea>")));

        let second = VALID.replace("defaultAction: warn", "defaultAction: fail");
        let page = env
            .post(&approver, "/console/policies", &[("policy", &second)])
            .await;
        assert_eq!(page.headers[header::LOCATION], "/console/policies?saved=2");
        let second_digest = Policy::parse("t", second.as_bytes())
            .unwrap()
            .digest()
            .unwrap();
        assert_ne!(digest, second_digest);

        // History: both revisions, newest first, with author and time; each has its own page.
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/policies").await;
        let history = &page.body[page.body.find("id=\"h-history\"").unwrap()..];
        let two = history.find("href=\"/console/policies/2\"").unwrap();
        let one = history.find("href=\"/console/policies/1\"").unwrap();
        assert!(two < one);
        assert!(history.contains(&digest) && history.contains(&second_digest));
        assert!(history.contains("<td>amy</td>"));
        assert!(history.contains("just now"));
        let page = env.get(&viewer, "/console/policies/1").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&digest));
        assert!(page.body.contains("defaultAction: warn"));
        assert!(!page.body.contains(">current</span>"));
        let page = env.get(&viewer, "/console/policies/2").await;
        assert!(page.body.contains(">current</span>"));
        let page = env.get(&viewer, "/console/policies/9").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        let page = env.get(&viewer, "/console/policies/x").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);

        // The API serves what the console stored; both audited.
        let stored = crate::reports::policy_revision(&env.state, Some(1))
            .unwrap()
            .unwrap();
        assert_eq!(
            crate::reports::policy_yaml(&env.state, &stored).unwrap(),
            VALID.as_bytes()
        );
        assert_eq!(stored.created_by, "amy");
        assert_eq!(audited(&env), 2);
    }

    #[tokio::test]
    async fn a_large_policy_saves_from_the_editor() {
        let env = ConsoleEnv::new();
        let approver = env.sign_in("amy", "approver");
        // Well past the 16 KiB of other forms; the API takes up to 1 MiB, so does the editor.
        let large = format!(
            "{}{VALID}",
            "# padding comment line for a large policy\n".repeat(1_500)
        );
        assert!(large.len() > 60_000);
        let page = env
            .post(&approver, "/console/policies", &[("policy", &large)])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(revisions(&env), 1);
    }

    /// Saves a minimal policy called `name` as `author`.
    fn save_revision(env: &ConsoleEnv, name: &str, author: &str) {
        let ctx = crate::auth::AuditContext {
            request_id: None,
            source: "test".into(),
        };
        let text = format!("apiVersion: stella.policy/v1\nname: {name}\n");
        crate::reports::create_policy_revision(&env.state, text.as_bytes(), author, &ctx).unwrap();
    }

    #[tokio::test]
    async fn history_is_paginated_newest_first() {
        let env = ConsoleEnv::new();
        for n in 1..=51 {
            save_revision(&env, &format!("p{n}"), "amy");
        }
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/policies").await;
        assert!(page.body.contains("Revisions 1–50 of 51"), "{}", page.body);
        assert!(page.body.contains("name: p51"));
        assert!(page.body.contains("href=\"/console/policies/51\""));
        assert!(!page.body.contains("href=\"/console/policies/1\""));
        let page = env.get(&viewer, "/console/policies?page=2").await;
        assert!(page.body.contains("Revisions 51–51 of 51"));
        assert!(page.body.contains("href=\"/console/policies/1\""));
    }

    #[tokio::test]
    async fn history_sorts_by_each_column() {
        let env = ConsoleEnv::new();
        for (name, author) in [("beta", "cy"), ("alpha", "bo"), ("gamma", "al")] {
            save_revision(&env, name, author);
        }
        let viewer = env.sign_in("val", "viewer");
        let get = |query: &'static str| {
            let (env, viewer) = (&env, viewer.clone());
            async move {
                env.get(&viewer, &format!("/console/policies{query}"))
                    .await
                    .body
            }
        };
        // Sort links keep the list's parameters but not the save notice.
        assert!(get("?saved=3").await.contains(
            r#"<th scope="col" aria-sort="descending"><a href="/console/policies?sort=revision">Revision</a></th>"#
        ));
        assert!(get("?sort=name").await.contains(
            r#"<th scope="col" aria-sort="ascending"><a href="/console/policies?sort=-name">Name</a></th>"#
        ));
        let (a, b, g) = ("<td>alpha</td>", "<td>beta</td>", "<td>gamma</td>");
        for (query, expected) in [
            ("?saved=3", [g, a, b]),
            ("?sort=name", [a, b, g]),
            ("?sort=-author", [b, a, g]),
            ("?sort=revision", [b, a, g]),
            ("?sort=saved", [b, a, g]),
            ("?sort=digest", [g, a, b]),
        ] {
            let body = get(query).await;
            let history = body.split("id=\"h-history\"").nth(1).unwrap();
            assert_eq!(
                crate::kits::tests::order(history, &[a, b, g]),
                expected,
                "{query}"
            );
        }
    }

    #[tokio::test]
    async fn policy_edits_need_the_approver_role_and_csrf() {
        let env = ConsoleEnv::new();
        for role in ["viewer", "operator"] {
            let cookie = env.sign_in(role, role);
            let page = env
                .post(&cookie, "/console/policies", &[("policy", VALID)])
                .await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{role}");
        }
        let approver = env.sign_in("amy", "approver");
        let no_csrf = env
            .send(
                Request::builder()
                    .method(Method::POST)
                    .uri("/console/policies")
                    .header(header::HOST, "stella.test")
                    .header(header::COOKIE, &approver)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(
                        serde_urlencoded::to_string([("policy", VALID), ("csrf", "wrong")])
                            .unwrap(),
                    ))
                    .unwrap(),
            )
            .await;
        assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
        assert_eq!(revisions(&env), 0);
        let admin = env.sign_in("root", "admin");
        let page = env
            .post(&admin, "/console/policies", &[("policy", VALID)])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(revisions(&env), 1);
    }

    #[tokio::test]
    async fn policy_text_is_escaped_in_editor_history_and_revision() {
        let env = ConsoleEnv::new();
        let approver = env.sign_in("amy", "approver");
        let attack = "</textarea><script>alert(1)</script>";
        // Invalid: comes back in the editor.
        let invalid = format!("{attack}\n");
        let page = env
            .post(&approver, "/console/policies", &[("policy", &invalid)])
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!page.body.contains("<script>alert(1)"), "{}", page.body);
        assert!(!page.body.contains("</textarea><script>"));
        assert!(
            page.body
                .contains("&#60;/textarea&#62;&#60;script&#62;alert(1)&#60;/script&#62;")
        );
        // Valid, with the payload as its name and in a comment: stored and shown escaped.
        let valid = format!(
            "# {attack}\napiVersion: stella.policy/v1\nname: \"{attack}\"\ndefaultAction: warn\n"
        );
        let page = env
            .post(&approver, "/console/policies", &[("policy", &valid)])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        for path in ["/console/policies", "/console/policies/1"] {
            let page = env.get(&approver, path).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                !page.body.contains("<script>alert(1)"),
                "{path}: {}",
                page.body
            );
            assert!(
                page.body
                    .contains("&#60;/textarea&#62;&#60;script&#62;alert(1)&#60;/script&#62;"),
                "{path}"
            );
        }
    }
}
