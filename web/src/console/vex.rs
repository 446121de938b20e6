//! Console: VEX statements by product. Without `product`, the products the loaded statements
//! cover (searchable, paginated); with it, the statements that apply to that product (as
//! `stella_decide` matches them: versionless statements cover every version) grouped by
//! vulnerability, each group with the consensus `stella_decide::vex::consensus` reaches under the
//! current policy. Viewers and up.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use stella_authority::Scope;
use stella_decide::vex::{ClaimOutcome, claim_applies, consensus, status_name};
use stella_feeds::VexProducts;
use stella_importer::VexClaim;

use super::advisories::{ClaimRow, advisory_href, kit_labels, no_kit, store_failed};
use super::view::{Column, PER_PAGE, Pager, Params, Sort, error_page};
use super::{Chrome, render};
use crate::AppState;
use crate::auth::RouteTable;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.console(Method::GET, PATH, Some(Scope::ScannerRead), vex_page)
}

const PATH: &str = "/console/vex";
/// Sortable columns of the products list.
const PRODUCT_COLUMNS: [(&str, &str); 3] = [
    ("product", "Product"),
    ("statements", "Statements"),
    ("vulnerabilities", "Vulnerabilities"),
];

struct ProductRow {
    product: String,
    href: String,
    claims: usize,
    vulnerabilities: usize,
}

#[derive(Template)]
#[template(path = "vex.html")]
struct ProductsView {
    chrome: Chrome,
    q: String,
    columns: Vec<Column>,
    rows: Vec<ProductRow>,
    pager: Pager,
}

/// Sortable columns of a product's vulnerability summary.
const VULNERABILITY_COLUMNS: [(&str, &str); 3] = [
    ("vulnerability", "Vulnerability"),
    ("consensus", "Consensus"),
    ("statements", "Statements"),
];

/// One vulnerability of a product: the consensus and the statements it weighed.
struct VulnerabilityGroup {
    vulnerability: String,
    /// The id of its section on the page.
    anchor: String,
    href: String,
    status: &'static str,
    conflict: bool,
    explanation: String,
    claims: Vec<ClaimRow>,
}

#[derive(Template)]
#[template(path = "vex_product.html")]
struct ProductView {
    chrome: Chrome,
    product: String,
    /// The summary table's sortable headers.
    columns: Vec<Column>,
    groups: Vec<VulnerabilityGroup>,
    pager: Pager,
    policy: String,
    with_outcome: bool,
    /// The statement tables of one vulnerability are not sortable: they show it whole.
    claim_columns: Vec<Column>,
    claim_caption: String,
}

async fn vex_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("VEX", "vex");
    let Some(generation) = state.feeds().current() else {
        return no_kit(chrome, "VEX statements");
    };
    let params = Params::parse(query.as_deref());
    let products = match tokio::task::spawn_blocking(move || generation.vex_products()).await {
        Ok(Ok(products)) => products,
        Ok(Err(err)) => return store_failed(chrome, err),
        Err(err) => return store_failed(chrome, err),
    };
    match params.get("product") {
        None => products_page(chrome, &params, &products),
        Some(product) => product_page(&state, chrome, &params, &products, product),
    }
}

fn products_page(chrome: Chrome, params: &Params, products: &VexProducts) -> Response {
    let q = params.get("q").unwrap_or("").trim().to_owned();
    let needle = q.to_lowercase();
    let matching: Vec<_> = products
        .iter()
        .filter(|(product, _)| needle.is_empty() || product.to_lowercase().contains(&needle))
        .collect();
    let mut rows: Vec<ProductRow> = matching
        .iter()
        .map(|(product, claims)| {
            let mut vulnerabilities: Vec<&str> = claims
                .iter()
                .map(|(_, c)| c.vulnerability.as_str())
                .collect();
            vulnerabilities.sort_unstable();
            vulnerabilities.dedup();
            ProductRow {
                href: Params::default().href(PATH, "product", product),
                product: (*product).clone(),
                claims: claims.len(),
                vulnerabilities: vulnerabilities.len(),
            }
        })
        .collect();
    let sort = Sort::new(params, &PRODUCT_COLUMNS, "product");
    sort.apply(&mut rows, |row, key| match key {
        "statements" => (row.claims, row.product.clone()),
        "vulnerabilities" => (row.vulnerabilities, row.product.clone()),
        _ => (0, row.product.clone()),
    });
    let columns = sort.columns(params, PATH, &PRODUCT_COLUMNS);
    let pager = Pager::new(params, PATH, rows.len(), PER_PAGE);
    let rows = rows.drain(pager.range()).collect::<Vec<_>>();
    let chrome = chrome.page("VEX statements by product", "vex");
    render(
        StatusCode::OK,
        &ProductsView {
            chrome,
            q,
            columns,
            rows,
            pager,
        },
    )
}

/// The part of a purl that names the package (no version, qualifiers or subpath): every product
/// key a statement about `product` can sit under starts with it.
fn package_prefix(product: &str) -> &str {
    let end = product.find(['?', '#']).unwrap_or(product.len());
    let head = &product[..end];
    match head.rfind('@') {
        Some(at) if !head[at..].contains('/') => &head[..at],
        _ => head,
    }
}

fn outcome_text(outcome: ClaimOutcome, weight: f64) -> String {
    match outcome {
        ClaimOutcome::Won => format!("won (weight {weight})"),
        ClaimOutcome::Outvoted => format!("outvoted (weight {weight})"),
        ClaimOutcome::Superseded => "superseded by the issuer's newer statement".to_owned(),
        ClaimOutcome::Untrusted => "not counted: issuer has trust weight 0".to_owned(),
        ClaimOutcome::JustificationRejected => {
            "not counted: justification not accepted by the policy".to_owned()
        }
    }
}

fn product_page(
    state: &AppState,
    chrome: Chrome,
    params: &Params,
    products: &VexProducts,
    product: &str,
) -> Response {
    let chrome = chrome.page(format!("VEX for {product}"), "vex");
    let (policy, revision) = match crate::reports::load_policy(state, None) {
        Ok(found) => found,
        Err(problem) => {
            let err = match problem {
                crate::reports::ReportProblem::Broken(broken) => broken.to_string(),
                other => format!("{other:?}"),
            };
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                chrome,
                format!(
                    "The current policy cannot be loaded, so no consensus can be shown: {err}."
                ),
                "Check the policy page and the daemon log.",
                "/console/policies",
            );
        }
    };
    // Statements that apply to the product, once each (a statement covering two subcomponents
    // sits under both), grouped by vulnerability.
    let prefix = package_prefix(product);
    let mut by_vulnerability: BTreeMap<&str, Vec<(&str, &Arc<VexClaim>)>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for (_, claims) in products
        .range::<str, _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        ))
        .take_while(|(key, _)| key.starts_with(prefix))
    {
        for (channel, claim) in claims {
            if claim_applies(claim, product) && seen.insert(Arc::as_ptr(claim)) {
                by_vulnerability
                    .entry(claim.vulnerability.as_str())
                    .or_default()
                    .push((channel.as_str(), claim));
            }
        }
    }
    if by_vulnerability.is_empty() {
        return error_page(
            StatusCode::NOT_FOUND,
            chrome,
            format!("No VEX statement in the loaded kits covers {product}."),
            "Pick a product from the list (search it by name); a statement about a versioned \
             product does not cover other versions.",
            PATH,
        );
    }
    let kits = kit_labels(state);
    let now = state.clock().now_unix();
    let mut groups: Vec<VulnerabilityGroup> = by_vulnerability
        .into_iter()
        .enumerate()
        .map(|(n, (vulnerability, claims))| {
            let refs: Vec<&VexClaim> = claims.iter().map(|(_, c)| c.as_ref()).collect();
            let decision = consensus(&refs, &policy.vex);
            let claims = claims
                .iter()
                .map(|(channel, claim)| {
                    let mut row = ClaimRow::new(channel, claim, &kits, now);
                    if let Some(record) = decision.claims.iter().find(|r| {
                        r.provider == claim.provider
                            && r.document == claim.document
                            && r.product == claim.product
                            && r.status == claim.status
                            && r.timestamp == claim.timestamp
                            && r.justification == claim.justification
                    }) {
                        row.outcome = outcome_text(record.outcome, record.weight);
                    }
                    row
                })
                .collect();
            VulnerabilityGroup {
                vulnerability: vulnerability.to_owned(),
                // Ids are unique on the page whatever characters the vulnerability id holds.
                anchor: format!("vuln-{n}"),
                href: advisory_href(vulnerability),
                status: decision.status.map_or("none", status_name),
                conflict: decision.conflict,
                explanation: decision.explanation,
                claims,
            }
        })
        .collect();
    let sort = Sort::new(params, &VULNERABILITY_COLUMNS, "vulnerability");
    sort.apply(&mut groups, |g, key| {
        let status = if key == "consensus" { g.status } else { "" };
        let count = if key == "statements" {
            g.claims.len()
        } else {
            0
        };
        (status, count, g.vulnerability.clone())
    });
    let pager = Pager::new(params, PATH, groups.len(), PER_PAGE);
    let range = pager.range();
    groups.truncate(range.end);
    groups.drain(..range.start);
    render(
        StatusCode::OK,
        &ProductView {
            chrome,
            product: product.to_owned(),
            columns: sort.columns(params, PATH, &VULNERABILITY_COLUMNS),
            groups,
            pager,
            policy: match revision {
                Some(n) => format!("policy revision {n}"),
                None => "the default policy (no revision stored yet)".to_owned(),
            },
            with_outcome: true,
            claim_columns: Vec::new(),
            claim_caption: String::new(),
        },
    )
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::package_prefix;
    use crate::console::advisories::path_segment;
    use crate::console::advisories::tests::{contents, load};
    use crate::console::testing::{ConsoleEnv, cells};

    const LOG4J: &str = "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1";

    #[test]
    fn package_prefix_drops_version_and_qualifiers() {
        assert_eq!(
            package_prefix("pkg:npm/%40scope/name@1.2?arch=x#sub"),
            "pkg:npm/%40scope/name"
        );
        assert_eq!(package_prefix("pkg:npm/@scope/name"), "pkg:npm/@scope/name");
        assert_eq!(
            package_prefix("cpe:/a:redhat:rhel:8"),
            "cpe:/a:redhat:rhel:8"
        );
    }

    #[tokio::test]
    async fn products_are_listed_searched_and_empty_before_a_kit() {
        let env = ConsoleEnv::new();
        let viewer = env.sign_in("val", "viewer");
        let page = env.get(&viewer, "/console/vex").await;
        assert!(page.body.contains("No kit imported yet"), "{}", page.body);
        load(&env, &contents());
        let page = env.get(&viewer, "/console/vex").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.assert_secure();
        assert!(page.body.contains(LOG4J), "{}", page.body);
        assert!(page.body.contains("pkg:npm/evil-pkg"));
        assert!(page.body.contains("1–2 of 2"));
        // Sorted by product name by default; each column sorts both ways.
        let order = |body: &str| body.find(LOG4J).unwrap() < body.find("pkg:npm/evil-pkg").unwrap();
        assert!(order(&page.body) == (LOG4J < "pkg:npm/evil-pkg"));
        assert!(page.body.contains("aria-sort=\"ascending\""));
        let page = env.get(&viewer, "/console/vex?sort=-product").await;
        assert!(order(&page.body) == (LOG4J > "pkg:npm/evil-pkg"));
        assert!(page.body.contains("aria-sort=\"descending\""));
        let ascending = env.get(&viewer, "/console/vex?sort=statements").await;
        let descending = env.get(&viewer, "/console/vex?sort=-statements").await;
        assert_ne!(order(&ascending.body), order(&descending.body));
        let page = env.get(&viewer, "/console/vex?q=LOG4J").await;
        assert!(page.body.contains("1–1 of 1"), "{}", page.body);
        assert!(!page.body.contains("evil-pkg"));
        let page = env.get(&viewer, "/console/vex?q=nothing").await;
        assert!(page.body.contains("No product matches"), "{}", page.body);
    }

    #[tokio::test]
    async fn product_page_shows_statements_and_decides_consensus() {
        let env = ConsoleEnv::new();
        let kit = load(&env, &contents());
        let viewer = env.sign_in("val", "viewer");
        let page = env
            .get(
                &viewer,
                &format!("/console/vex?product={}", path_segment(LOG4J)),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let body = &page.body;
        // Two vendors say not_affected against Apache's affected: weight 2 against 1 under the
        // default policy (every provider weighs 1).
        let log4j = body
            .split(">CVE-2021-44228</a></h2>")
            .nth(1)
            .expect("a section for CVE-2021-44228");
        let section = log4j.split("<section").next().unwrap();
        assert!(
            section.contains("Consensus: <strong class=\"vex-status\">not_affected</strong>"),
            "{section}"
        );
        assert!(section.contains("conflict"), "{section}");
        assert!(section.contains("Vendor A"));
        assert!(section.contains("outvoted (weight 1)"), "{section}");
        assert!(section.contains("won (weight 1)"));
        assert!(section.contains(&kit));
        assert!(body.contains("2021-12-10 00:00 UTC"));
        assert!(body.contains("the default policy"));
        let fixed = body
            .split(">CVE-2021-45046</a></h2>")
            .nth(1)
            .expect("a section for CVE-2021-45046");
        assert!(fixed.contains("Consensus: <strong class=\"vex-status\">fixed</strong>"));
        // The summary lists the vulnerabilities, by id by default, each linking to its section.
        let summary = |body: &str| {
            cells(
                body,
                "<table class=\"vex-summary\">",
                "<tr><td class=\"mono\"><a href=\"#vuln-",
                "<",
            )
        };
        assert_eq!(summary(body), ["0\">CVE-2021-44228", "1\">CVE-2021-45046"]);
        assert!(body.contains("Vulnerabilities 1–2 of 2"), "{body}");
        // By consensus, descending: not_affected before fixed; the anchors stay.
        let page = env
            .get(
                &viewer,
                &format!(
                    "/console/vex?product={}&sort=-consensus",
                    path_segment(LOG4J)
                ),
            )
            .await;
        assert_eq!(
            summary(&page.body),
            ["0\">CVE-2021-44228", "1\">CVE-2021-45046"]
        );
        let page = env
            .get(
                &viewer,
                &format!(
                    "/console/vex?product={}&sort=consensus",
                    path_segment(LOG4J)
                ),
            )
            .await;
        assert_eq!(
            summary(&page.body),
            ["1\">CVE-2021-45046", "0\">CVE-2021-44228"]
        );
        assert!(page.body.contains("aria-sort=\"ascending\""));
        // Another version of the product: the versioned statements do not cover it.
        let page = env
            .get(
                &viewer,
                "/console/vex?product=pkg%3Amaven%2Forg.apache.logging.log4j%2Flog4j-core%402.17.0",
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn consensus_follows_the_current_policy_revision() {
        let env = ConsoleEnv::new();
        load(&env, &contents());
        let viewer = env.sign_in("val", "viewer");
        let ctx = crate::auth::AuditContext {
            request_id: None,
            source: "test".into(),
        };
        // Apache's word now outweighs both vendors together.
        let trusting = "apiVersion: stella.policy/v1\nname: trust-apache\nvex:\n  trust:\n    \
                        Apache: 5\ndefaultAction: warn\nrules: []\n";
        crate::reports::create_policy_revision(&env.state, trusting.as_bytes(), "amy", &ctx)
            .unwrap();
        let page = env
            .get(
                &viewer,
                &format!("/console/vex?product={}", path_segment(LOG4J)),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let section = page
            .body
            .split(">CVE-2021-44228</a></h2>")
            .nth(1)
            .unwrap()
            .split("<section")
            .next()
            .unwrap();
        assert!(
            section.contains("Consensus: <strong class=\"vex-status\">affected</strong>"),
            "{section}"
        );
        assert!(section.contains("won (weight 5)"), "{section}");
        assert!(page.body.contains("policy revision 1"));
    }

    #[tokio::test]
    async fn hostile_statement_text_is_escaped() {
        let env = ConsoleEnv::new();
        load(&env, &contents());
        let viewer = env.sign_in("val", "viewer");
        let page = env
            .get(&viewer, "/console/vex?product=pkg%3Anpm%2Fevil-pkg")
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body.contains("&#60;script&#62;alert(2)"),
            "{}",
            page.body
        );
        assert!(page.body.contains("&#60;script&#62;alert(3)"));
        assert!(!page.body.contains("<script>alert"));
    }
}
