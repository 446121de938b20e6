//! The image and diff pages over images scanned through the real pipeline (the test image of
//! [`crate::console::scans::fixtures`] and the committed scanner fixture).

use axum::http::{StatusCode, header};

use crate::console::scans::fixtures::{
    DEB_PACKAGES, HOSTILE_LABEL, scan_path, scanned_test_image, scanner_fixtures,
    two_scanned_images,
};
use crate::console::testing::{ConsoleEnv, cells};

/// The component names on a page, in table order.
fn names(body: &str) -> Vec<String> {
    let Some(table) = body.split("<table class=\"components\">").nth(1) else {
        return Vec::new();
    };
    let table = table.split("</table>").next().unwrap_or("");
    table
        .split("<tr><td>")
        .skip(1)
        .map(|row| row.split("</td>").next().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn labels_are_escaped_on_the_image_page() {
    let env = ConsoleEnv::new();
    let (_dir, digest) = scanned_test_image(&env).await;
    let viewer = env.sign_in("val", "viewer");
    let page = env.get(&viewer, &format!("/console/images/{digest}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_secure();
    assert!(HOSTILE_LABEL.contains("<script>"));
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert"));
    assert!(page.body.contains("org.example.note"));
    assert!(page.body.contains("console test image 0"));
}

#[tokio::test]
async fn image_page_searches_filters_sorts_pages_and_toggles_the_view() {
    let env = ConsoleEnv::new();
    let (_dir, digest) = scanned_test_image(&env).await;
    let viewer = env.sign_in("val", "viewer");
    let path = format!("/console/images/{digest}");

    let page = env.get(&viewer, &path).await;
    let total = DEB_PACKAGES + 2;
    // Facts: digest, platform, both layers with their sizes, the findings link.
    assert!(page.body.contains(&digest));
    assert!(page.body.contains("linux/amd64"));
    assert!(page.body.contains("application/vnd.oci.image.layer.v1.tar"));
    assert!(page.body.contains(" KiB</td>"), "{}", page.body);
    assert!(page.body.contains(&format!("href=\"{path}/findings\"")));
    assert!(
        page.body.contains(&format!("1–50 of {total}")),
        "{}",
        page.body
    );
    assert!(page.body.contains("Page 1 of 2"));
    // Sorted by name: left-pad, oldlib, pkg00 …
    let shown = names(&page.body);
    assert_eq!(shown.len(), 50);
    assert_eq!(&shown[..3], ["left-pad", "oldlib", "pkg00"]);
    assert!(page.body.contains("pkg:npm/left-pad@1.0.0"));
    // The type filter lists the ecosystems with counts.
    assert!(page.body.contains(&format!("deb ({DEB_PACKAGES})")));
    assert!(page.body.contains("npm (2)"));

    // The layer table pages and sorts apart from the components, bottom layer first.
    let layer_order = |body: &str| cells(body, "<h2 id=\"layers\">", "<tr><td class=\"num\">", "<");
    assert!(page.body.contains("Layers 1–2 of 2"), "{}", page.body);
    assert_eq!(layer_order(&page.body), ["0", "1"]);
    let page = env
        .get(&viewer, &format!("{path}?page=2&layer_sort=-index"))
        .await;
    assert_eq!(layer_order(&page.body), ["1", "0"]);
    assert_eq!(names(&page.body).len(), total - 50);
    assert!(page.body.contains(&format!(
        "href=\"{path}?layer_sort=index&#38;page=2#layers\""
    )));
    let page = env.get(&viewer, &format!("{path}?sort=-name")).await;
    assert_eq!(names(&page.body)[0], format!("pkg{:02}", DEB_PACKAGES - 1));
    assert!(page.body.contains("aria-sort=\"descending\""));

    // Search by name or purl, case-insensitive; filters by type and layer.
    let page = env.get(&viewer, &format!("{path}?q=LEFT")).await;
    assert_eq!(names(&page.body), ["left-pad"]);
    let page = env.get(&viewer, &format!("{path}?q=pkg%3Anpm")).await;
    assert_eq!(names(&page.body), ["left-pad", "oldlib"]);
    let page = env
        .get(&viewer, &format!("{path}?type=npm&sort=-name"))
        .await;
    assert_eq!(names(&page.body), ["oldlib", "left-pad"]);
    let page = env.get(&viewer, &format!("{path}?layer=1")).await;
    assert_eq!(names(&page.body), ["left-pad", "oldlib"]);
    let page = env.get(&viewer, &format!("{path}?layer=0&q=pkg1")).await;
    assert_eq!(names(&page.body).len(), 10);
    let page = env.get(&viewer, &format!("{path}?type=npm&layer=0")).await;
    assert!(page.body.contains("No component matches these filters"));
    // Sorting by layer keeps the filter.
    let page = env
        .get(&viewer, &format!("{path}?type=deb&sort=-layer"))
        .await;
    assert!(
        page.body.contains("sort=layer&#38;type=deb"),
        "{}",
        page.body
    );

    // The entry chain: the script step with its line, then why it stops.
    assert!(
        page.body
            .contains("<span class=\"at\">/app/start.sh:3</span>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<li class=\"unresolved\">"));
    assert!(page.body.contains("missing-tool"));
    // The usage view: the entrypoint's script uses no catalogued component here.
    let page = env.get(&viewer, &format!("{path}?view=usage")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("aria-current=\"page\" class=\"current\">Usage")
    );
    assert!(names(&page.body).is_empty());
    assert!(
        page.body
            .contains("The entrypoint uses no catalogued component")
    );
    assert!(
        page.body
            .contains("<input type=\"hidden\" name=\"view\" value=\"usage\">")
    );
}

#[tokio::test]
async fn the_scanner_fixture_shows_its_components_and_usage() {
    let env = ConsoleEnv::new();
    let digest = scan_path(&env, &scanner_fixtures().join("fixture-oci")).await;
    let viewer = env.sign_in("val", "viewer");
    let path = format!("/console/images/{digest}");
    let page = env.get(&viewer, &format!("{path}?q=gosu")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        names(&page.body).iter().any(|n| n == "gosu"),
        "{}",
        page.body
    );
    let all = env.get(&viewer, &path).await;
    let usage = env.get(&viewer, &format!("{path}?view=usage")).await;
    // The usage view is a subset of the inventory, and every row in it is used.
    let (all, used) = (names(&all.body), names(&usage.body));
    assert!(used.iter().all(|n| all.contains(n)), "{used:?} vs {all:?}");
    assert_eq!(
        usage.body.matches("<span class=\"badge used\">").count(),
        used.len()
    );
}

#[tokio::test]
async fn sbom_downloads_are_the_stored_bytes() {
    let env = ConsoleEnv::new();
    let (_dir, digest) = scanned_test_image(&env).await;
    let viewer = env.sign_in("val", "viewer");
    let page = env.get(&viewer, &format!("/console/images/{digest}")).await;
    for (view, kind) in [("inventory", "sbom"), ("usage", "usage-sbom")] {
        for (format, content_type, extension) in [
            ("cdx-json", "application/vnd.cyclonedx+json", "cdx.json"),
            ("cdx-pb", "application/x.vnd.cyclonedx+protobuf", "cdx.pb"),
            ("spdx-json", "application/spdx+json", "spdx.json"),
        ] {
            let href = format!("/console/images/{digest}/sbom?format={format}&view={view}");
            assert!(
                page.body.contains(&href.replace('&', "&#38;")),
                "no link {href}"
            );
            let stored = env
                .state
                .stores()
                .artifact(&digest, kind, format)
                .unwrap()
                .unwrap();
            let response = env
                .send(
                    axum::http::Request::builder()
                        .uri(&href)
                        .header(header::HOST, "stella.test")
                        .header(header::COOKIE, &viewer)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await;
            assert_eq!(response.status, StatusCode::OK);
            assert_eq!(response.headers[header::CONTENT_TYPE], content_type);
            let short = &digest["sha256:".len().."sha256:".len() + 12];
            assert_eq!(
                response.headers[header::CONTENT_DISPOSITION],
                format!("attachment; filename=\"{short}-{view}.{extension}\"").as_str()
            );
            assert_eq!(response.headers["x-content-type-options"], "nosniff");
            // Page::body is lossy UTF-8; compare the protobuf through it the same way.
            assert_eq!(response.body, String::from_utf8_lossy(&stored));
        }
    }
    let page = env
        .get(
            &viewer,
            &format!("/console/images/{digest}/sbom?format=xml&view=usage"),
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body
            .contains("format is one of cdx-json, cdx-pb, spdx-json")
    );
}

#[tokio::test]
async fn unknown_images_say_what_to_do() {
    let env = ConsoleEnv::new();
    let viewer = env.sign_in("val", "viewer");
    let page = env
        .get(
            &viewer,
            &format!("/console/images/sha256:{}", "0".repeat(64)),
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.body.contains("Start a scan of the image"),
        "{}",
        page.body
    );
    let page = env.get(&viewer, "/console/images/%3Cb%3E").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("is not an image digest"));
    assert!(!page.body.contains("<b>"));
}

#[tokio::test]
async fn diff_page_attributes_changes_to_the_new_layer() {
    let env = ConsoleEnv::new();
    let viewer = env.sign_in("val", "viewer");
    let page = env.get(&viewer, "/console/diff").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_secure();
    assert!(page.body.contains("Fewer than two images are scanned"));

    let (_dir, old, new) = two_scanned_images(&env).await;
    let page = env.get(&viewer, "/console/diff").await;
    // Both pickers list both images.
    assert_eq!(
        page.body
            .matches(&format!("<option value=\"{old}\""))
            .count(),
        2
    );
    assert_eq!(
        page.body
            .matches(&format!("<option value=\"{new}\""))
            .count(),
        2
    );

    let page = env
        .get(&viewer, &format!("/console/diff?old={old}&new={new}"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("1 added, 1 removed, 1 changed."),
        "{}",
        page.body
    );
    // One change table: a row per change, with its kind, versions and layer.
    let changes = |body: &str| {
        cells(
            body,
            "<table class=\"diff-changes\">",
            "<tr class=\"change-",
            "</tr>",
        )
    };
    let rows = changes(&page.body);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    // Sorted by name: left-pad, newlib, oldlib.
    assert!(rows[0].starts_with("changed\">") && rows[0].contains("<td>left-pad</td>"));
    assert!(rows[0].contains("1.0.0</td><td class=\"mono\">1.1.0</td><td class=\"num\">1</td>"));
    assert!(rows[1].starts_with("added\">") && rows[1].contains("<td>newlib</td>"));
    assert!(rows[1].contains("<td class=\"mono\"></td><td class=\"mono\">"));
    assert!(rows[2].starts_with("removed\">") && rows[2].contains("<td>oldlib</td>"));
    assert!(rows[2].ends_with("</td><td class=\"mono\"></td><td class=\"num\">1</td>"));
    assert!(page.body.contains("Changes 1–3 of 3"));
    // Sorted by kind, descending: removed, changed, added.
    let base = format!("/console/diff?new={new}&old={old}");
    let page = env.get(&viewer, &format!("{base}&sort=-change")).await;
    let kinds = cells(
        &page.body,
        "<table class=\"diff-changes\">",
        "<tr class=\"change-",
        "\"",
    );
    assert_eq!(kinds, ["removed", "changed", "added"]);
    // Filtered to one kind, with a link that removes the filter.
    let page = env.get(&viewer, &format!("{base}&change=added")).await;
    let rows = changes(&page.body);
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains("<td>newlib</td>"));
    assert!(page.body.contains("aria-label=\"Remove filter added\""));
    let page = env.get(&viewer, &format!("{base}&change=nonsense")).await;
    assert_eq!(
        changes(&page.body).len(),
        3,
        "an unknown kind filters nothing"
    );
    let page = env
        .get(&viewer, &format!("/console/diff?old={old}&new={new}"))
        .await;
    // The selects keep the choice.
    assert!(
        page.body
            .contains(&format!("<option value=\"{old}\" selected>"))
    );

    // One image named (the image page's "compare" link): the other is asked for.
    let page = env.get(&viewer, &format!("/console/diff?new={new}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Pick the old image to compare with"));
    assert!(
        page.body
            .contains(&format!("<option value=\"{new}\" selected>"))
    );
    let image = env.get(&viewer, &format!("/console/images/{new}")).await;
    assert!(
        image
            .body
            .contains(&format!("href=\"/console/diff?new={new}\""))
    );
    let page = env.get(&viewer, &format!("/console/diff?old={old}")).await;
    assert!(page.body.contains("Pick the new image to compare with"));
    let page = env
        .get(
            &viewer,
            &format!("/console/diff?old={old}&new=sha256:{}", "1".repeat(64)),
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("scan the image first"), "{}", page.body);
}

#[tokio::test]
async fn the_diff_pickers_list_the_newest_images_and_keep_a_named_older_one() {
    use stella_store::rusqlite::params;
    let env = ConsoleEnv::new();
    let viewer = env.sign_in("val", "viewer");
    let digest = |n: usize| format!("sha256:{n:064x}");
    {
        let conn = env.state.stores().catalog.connection();
        for n in 0..201 {
            let at = format!("2026-01-01T00:{:02}:{:02}Z", n / 60, n % 60);
            conn.execute(
                "INSERT INTO images (digest, reference, config, created_at) VALUES (?1, ?2, NULL, ?3)",
                params![digest(n), format!("registry.local/app:{n}"), at],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO artifacts (kind, format, digest, size, image_digest, created_at) \
                 VALUES ('sbom', 'cdx-json', ?1, 2, ?2, ?3)",
                params![digest(1000 + n), digest(n), at],
            )
            .unwrap();
        }
    }
    let page = env.get(&viewer, "/console/diff").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("The lists hold the newest 200 scanned images")
    );
    // The oldest (image 0) is left out of the lists, unless the URL names it.
    let option = format!("<option value=\"{}\"", digest(0));
    assert!(!page.body.contains(&option));
    assert!(
        page.body
            .contains(&format!("<option value=\"{}\"", digest(200)))
    );
    let page = env
        .get(&viewer, &format!("/console/diff?old={}", digest(0)))
        .await;
    assert_eq!(page.body.matches(&option).count(), 2, "{}", page.body);
}
