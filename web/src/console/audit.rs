//! Console: the audit log, filtered by actor, action (prefix) and time, paginated and sortable.
//! Admins only.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use stella_authority::Scope;
use stella_store::rusqlite::params;

use super::view::{Column, Pager, Params, Sort, When, error_page};
use super::{Chrome, render};
use crate::AppState;
use crate::auth::RouteTable;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.console(
        Method::GET,
        "/console/audit",
        Some(Scope::Admin),
        audit_page,
    )
}

const PATH: &str = "/console/audit";
const COLUMNS: [(&str, &str); 4] = [
    ("at", "Time"),
    ("actor", "Actor"),
    ("action", "Action"),
    ("target", "Target"),
];

struct Row {
    when: When,
    actor: String,
    action: String,
    target: String,
    detail: String,
    request_id: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    actor: String,
    action: String,
    since: String,
    actions: Vec<String>,
    columns: Vec<Column>,
    rows: Vec<Row>,
    pager: Pager,
    filtered: bool,
}

/// Seconds in the `since` choices.
fn since_secs(since: &str) -> Option<u64> {
    match since {
        "1h" => Some(3600),
        "24h" => Some(86_400),
        "7d" => Some(7 * 86_400),
        "30d" => Some(30 * 86_400),
        _ => None,
    }
}

async fn audit_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("Audit log", "audit");
    let params = Params::parse(query.as_deref());
    let now = state.clock().now_unix();
    let actor = params.get("actor").unwrap_or("").to_owned();
    let action = params.get("action").unwrap_or("").to_owned();
    let since = params.get("since").unwrap_or("").to_owned();
    let after = since_secs(&since).map_or(0, |s| now.saturating_sub(s));
    let sort = Sort::new(&params, &COLUMNS, "-at");
    // The sort key is one of COLUMNS' keys (Sort rejects others), so it is safe in SQL.
    let order = format!(
        "{} {}, id {}",
        sort.key,
        if sort.descending { "DESC" } else { "ASC" },
        if sort.descending { "DESC" } else { "ASC" }
    );
    let filter = "WHERE (?1 = '' OR actor = ?1) AND (?2 = '' OR action = ?2 OR action LIKE ?2 || '.%') \
                  AND at >= ?3";
    let conn = state.stores().catalog.connection();
    let result = (|| -> Result<(usize, Vec<String>, Vec<Row>), stella_store::rusqlite::Error> {
        let total: i64 = conn.query_row(
            &format!("SELECT count(*) FROM audit_log {filter}"),
            params![actor, action, after as i64],
            |row| row.get(0),
        )?;
        let pager = Pager::new(&params, PATH, total as usize, super::view::PER_PAGE);
        let range = pager.range();
        let mut stmt = conn.prepare(&format!(
            "SELECT at, actor, action, target, detail, request_id FROM audit_log {filter} \
             ORDER BY {order} LIMIT ?4 OFFSET ?5"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    actor,
                    action,
                    after as i64,
                    (range.end - range.start) as i64,
                    range.start as i64
                ],
                |row| {
                    Ok(Row {
                        when: When::new(row.get::<_, i64>(0)? as u64, now),
                        actor: row.get(1)?,
                        action: row.get(2)?,
                        target: row.get(3)?,
                        detail: row.get(4)?,
                        request_id: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let mut stmt = conn.prepare("SELECT DISTINCT action FROM audit_log ORDER BY action")?;
        let actions = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((total as usize, actions, rows))
    })();
    drop(conn);
    let (total, actions, rows) = match result {
        Ok(found) => found,
        Err(err) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                chrome,
                format!("The audit log cannot be read: {err}."),
                "Check the daemon log and the data directory's disk; then reload this page.",
                "/",
            );
        }
    };
    let pager = Pager::new(&params, PATH, total, super::view::PER_PAGE);
    let columns = sort.columns(&params, PATH, &COLUMNS);
    let filtered = !(actor.is_empty() && action.is_empty() && since.is_empty());
    render(
        StatusCode::OK,
        &AuditPage {
            chrome,
            actor,
            action,
            since,
            actions,
            columns,
            rows,
            pager,
            filtered,
        },
    )
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use stella_store::AuditEvent;

    use crate::console::testing::{ConsoleEnv, T0, cells};

    fn record(env: &ConsoleEnv, at: u64, actor: &str, action: &str, target: &str) {
        env.state
            .stores()
            .catalog
            .audit(&AuditEvent {
                at,
                actor: actor.into(),
                action: action.into(),
                target: target.into(),
                detail: "{}".into(),
                request_id: None,
            })
            .unwrap();
    }

    #[tokio::test]
    async fn filters_paginates_escapes_and_is_admin_only() {
        let env = ConsoleEnv::new();
        for i in 0..60 {
            record(&env, T0 - 10 * 86_400 + i, "alice", "kit.import", "kit-a");
        }
        record(
            &env,
            T0 - 60,
            "bob",
            "scan.start",
            "<script>alert(1)</script>",
        );
        let admin = env.sign_in("root", "admin");

        let page = env.get(&admin, "/console/audit").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        assert!(page.body.contains("Page 1 of 2"), "{}", page.body);
        assert!(page.body.contains("1–50 of 61"));
        // askama escapes with numeric entities.
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
        );
        assert!(!page.body.contains("<script>alert"));
        assert!(page.body.contains("1 min ago"));

        let page = env.get(&admin, "/console/audit?actor=bob").await;
        assert!(page.body.contains("1–1 of 1"), "{}", page.body);
        let page = env.get(&admin, "/console/audit?since=24h").await;
        assert!(page.body.contains("1–1 of 1"));
        let page = env.get(&admin, "/console/audit?action=kit&page=2").await;
        assert!(page.body.contains("51–60 of 60"), "{}", page.body);
        let page = env.get(&admin, "/console/audit?actor=nobody").await;
        assert!(page.body.contains("No audit records match"));
        // The actor of each row, in order.
        let actors = |body: &str| cells(body, "<tbody>", "</span></td><td>", "<");
        // Newest first by default: bob's record, then alice's.
        let page = env.get(&admin, "/console/audit").await;
        assert_eq!(actors(&page.body)[..2], ["bob", "alice"]);
        // Sorting by actor ascending puts alice first, descending bob; an unknown key falls back
        // to time.
        let page = env.get(&admin, "/console/audit?sort=actor").await;
        assert!(page.body.contains("aria-sort=\"ascending\""));
        assert_eq!(actors(&page.body)[0], "alice");
        assert_eq!(actors(&page.body).len(), 50);
        let page = env.get(&admin, "/console/audit?sort=-actor").await;
        assert_eq!(actors(&page.body)[..2], ["bob", "alice"]);
        let page = env.get(&admin, "/console/audit?sort=actor&page=2").await;
        assert_eq!(actors(&page.body)[10], "bob", "the last row of page 2");
        let page = env.get(&admin, "/console/audit?sort=id;drop").await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(actors(&page.body)[0], "bob");

        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/audit").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    }
}
