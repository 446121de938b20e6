//! Console: the diff of two scanned images — a form picking both from the scanned images, then
//! the components added, removed and changed, each attributed to the layer of the new image that
//! caused it, and the per-layer summary. Same diff as `GET /api/diff`
//! ([`crate::scans::diff_images`]).

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use stella_authority::Scope;
use stella_scanner::diff::ImageDiff;

use super::super::scans::store_error;
use super::super::view::Params;
use super::super::{Chrome, render};
use crate::AppState;
use crate::auth::RouteTable;
use crate::scans::diff_images;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.console(
        Method::GET,
        "/console/diff",
        Some(Scope::ScannerRead),
        diff_page,
    )
}

/// A scanned image in the pickers.
#[derive(Debug, Clone)]
struct ImageChoice {
    digest: String,
    label: String,
}

#[derive(Template)]
#[template(path = "diff.html")]
struct DiffPage {
    chrome: Chrome,
    images: Vec<ImageChoice>,
    old: String,
    new: String,
    diff: Option<ImageDiff>,
    /// Why the diff could not be made, and what to do.
    problem: Option<String>,
}

impl DiffPage {
    fn short(digest: &str) -> &str {
        digest
            .strip_prefix("sha256:")
            .and_then(|hex| hex.get(..12))
            .unwrap_or(digest)
    }

    fn label_of<'a>(&'a self, digest: &'a str) -> &'a str {
        self.images
            .iter()
            .find(|image| image.digest == digest)
            .map_or(digest, |image| image.label.as_str())
    }
}

/// The scanned images that have a stored SBOM, newest first.
fn scanned_images(state: &AppState) -> Result<Vec<ImageChoice>, stella_store::rusqlite::Error> {
    let conn = state.stores().catalog.connection();
    let mut stmt = conn.prepare(
        "SELECT i.digest, i.reference FROM images i WHERE EXISTS \
         (SELECT 1 FROM artifacts a WHERE a.image_digest = i.digest AND a.kind = 'sbom' \
          AND a.format = 'cdx-json') ORDER BY i.created_at DESC, i.rowid DESC",
    )?;
    let images = stmt
        .query_map([], |r| {
            let digest: String = r.get(0)?;
            let reference: Option<String> = r.get(1)?;
            let label = format!(
                "{} ({})",
                reference.unwrap_or_else(|| "unnamed".to_owned()),
                DiffPage::short(&digest)
            );
            Ok(ImageChoice { digest, label })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(images)
}

async fn diff_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("Diff", "diff");
    let params = Params::parse(query.as_deref());
    let images = match scanned_images(&state) {
        Ok(images) => images,
        Err(err) => {
            return store_error(chrome, "The list of scanned images", err, "/console/scans");
        }
    };
    let old = params.get("old").unwrap_or("").to_owned();
    let new = params.get("new").unwrap_or("").to_owned();
    let (diff, problem, status) = match (old.is_empty(), new.is_empty()) {
        (true, true) => (None, None, StatusCode::OK),
        (false, false) => match diff_images(&state, &old, &new) {
            Ok(diff) => (Some(diff), None, StatusCode::OK),
            Err((status, problem)) => (
                None,
                Some(format!(
                    "{problem}. Pick two images from the lists; only scanned images can be \
                     compared."
                )),
                status,
            ),
        },
        _ => (
            None,
            Some("Pick both an old and a new image.".to_owned()),
            StatusCode::BAD_REQUEST,
        ),
    };
    render(
        status,
        &DiffPage {
            chrome,
            images,
            old,
            new,
            diff,
            problem,
        },
    )
}
