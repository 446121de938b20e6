//! Console: the diff of two scanned images — a form picking both from the scanned images, then
//! one table of the components added, removed and changed (filtered by kind, sorted, paged),
//! each attributed to the layer of the new image that caused it, and the per-layer summary. Same diff as `GET /api/diff`
//! ([`crate::scans::diff_images`]).

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use stella_authority::Scope;
use stella_scanner::diff::{Change, ImageDiff, LayerSummary};

use super::super::scans::store_error;
use super::super::view::{Column, ListKeys, PER_PAGE, Pager, Params, Sort};
use super::super::{Chrome, render};
use crate::AppState;
use crate::auth::RouteTable;
use crate::scans::diff_images;

const PATH: &str = "/console/diff";

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.console(Method::GET, PATH, Some(Scope::ScannerRead), diff_page)
}

/// A scanned image in the pickers.
#[derive(Debug, Clone)]
struct ImageChoice {
    digest: String,
    label: String,
}

/// One row of the change table: an added, removed or changed component.
#[derive(Debug, Clone)]
struct ChangeRow {
    /// `added`, `removed` or `changed`.
    kind: &'static str,
    ecosystem: String,
    name: String,
    old_version: String,
    new_version: String,
    /// The new image's layer that caused it; `None` for a layer the new image dropped.
    layer: Option<usize>,
}

impl ChangeRow {
    fn rows(diff: &ImageDiff) -> Vec<Self> {
        let one = |kind, change: &Change| {
            let version = change.component.version.clone();
            let (old_version, new_version) = if kind == "added" {
                (String::new(), version)
            } else {
                (version, String::new())
            };
            Self {
                kind,
                ecosystem: change.component.ecosystem.clone(),
                name: change.component.name.clone(),
                old_version,
                new_version,
                layer: change.layer,
            }
        };
        let added = diff.added.iter().map(|c| one("added", c));
        let removed = diff.removed.iter().map(|c| one("removed", c));
        let changed = diff.changed.iter().map(|c| Self {
            kind: "changed",
            ecosystem: c.ecosystem.clone(),
            name: c.name.clone(),
            old_version: c.old_version.clone(),
            new_version: c.new_version.clone(),
            layer: Some(c.layer),
        });
        added.chain(removed).chain(changed).collect()
    }

    /// The sort key of this row for the column `key`; ties fall to type, name and versions.
    fn key(&self, key: &str) -> (String, Option<usize>, [String; 4]) {
        let first = match key {
            "change" => self.kind.to_owned(),
            "type" => self.ecosystem.clone(),
            _ => String::new(),
        };
        // Dropped layers (`None`) sort after every layer of the new image.
        let layer = (key == "layer").then(|| self.layer.unwrap_or(usize::MAX));
        let rest = [
            self.ecosystem.clone(),
            self.name.clone(),
            self.old_version.clone(),
            self.new_version.clone(),
        ];
        (first, layer, rest)
    }
}

/// Sortable columns of the change table (the page's main list).
const CHANGE_COLUMNS: [(&str, &str); 4] = [
    ("change", "Change"),
    ("type", "Type"),
    ("name", "Name"),
    ("layer", "Layer"),
];

/// The kinds of change, for the filter links.
const KINDS: [(&str, &str); 3] = [
    ("added", "added"),
    ("removed", "removed"),
    ("changed", "changed"),
];

/// The per-layer table: a second list on the page.
const LAYER_LIST: ListKeys = ListKeys {
    page: "layer_page",
    sort: "layer_sort",
    anchor: Some("by-layer"),
};

/// Sortable columns of the per-layer table.
const LAYER_COLUMNS: [(&str, &str); 4] = [
    ("layer", "Layer"),
    ("added", "Added"),
    ("removed", "Removed"),
    ("changed", "Changed"),
];

/// A filter link of the change table, with its count.
struct KindLink {
    label: &'static str,
    count: usize,
    href: String,
    active: bool,
}

/// The diff as the page shows it.
struct DiffView {
    old_image: String,
    new_image: String,
    added: usize,
    removed: usize,
    changed: usize,
    kinds: Vec<KindLink>,
    /// The kind filter in force, if any, and the link that removes it.
    kind_filter: Option<(String, String)>,
    columns: Vec<Column>,
    rows: Vec<ChangeRow>,
    pager: Pager,
    layer_columns: Vec<Column>,
    layers: Vec<LayerSummary>,
    layer_pager: Pager,
}

impl DiffView {
    fn new(diff: &ImageDiff, params: &Params) -> Self {
        let path = PATH;
        let kind = params
            .get("change")
            .filter(|k| KINDS.iter().any(|(key, _)| key == k));
        let mut rows = ChangeRow::rows(diff);
        let kinds = KINDS
            .iter()
            .map(|(key, label)| {
                let active = kind == Some(*key);
                KindLink {
                    label,
                    count: rows.iter().filter(|r| r.kind == *key).count(),
                    href: params.href(path, "change", if active { "" } else { key }),
                    active,
                }
            })
            .collect();
        rows.retain(|r| kind.is_none_or(|k| r.kind == k));
        let sort = Sort::new(params, &CHANGE_COLUMNS, "name");
        sort.apply(&mut rows, |row, key| row.key(key));
        let pager = Pager::new(params, path, rows.len(), PER_PAGE);

        let mut layers = diff.layers.clone();
        let layer_sort = Sort::of_list(params, &LAYER_COLUMNS, "layer", LAYER_LIST);
        layer_sort.apply(&mut layers, |l, key| {
            let count = match key {
                "added" => l.added,
                "removed" => l.removed,
                "changed" => l.changed,
                _ => 0,
            };
            (count, l.index.unwrap_or(usize::MAX), l.diff_id.clone())
        });
        let layer_pager = Pager::of_list(params, path, layers.len(), PER_PAGE, LAYER_LIST);
        Self {
            old_image: diff.old_image.clone(),
            new_image: diff.new_image.clone(),
            added: diff.added.len(),
            removed: diff.removed.len(),
            changed: diff.changed.len(),
            kinds,
            kind_filter: kind.map(|k| (k.to_owned(), params.href(path, "change", ""))),
            columns: sort.columns(params, path, &CHANGE_COLUMNS),
            rows: pager.slice(&rows),
            pager,
            layer_columns: layer_sort.columns(params, path, &LAYER_COLUMNS),
            layers: layer_pager.slice(&layers),
            layer_pager,
        }
    }
}

#[derive(Template)]
#[template(path = "diff.html")]
struct DiffPage {
    chrome: Chrome,
    images: Vec<ImageChoice>,
    /// More images are scanned than the pickers list.
    more_images: bool,
    old: String,
    new: String,
    diff: Option<DiffView>,
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

/// The most images the pickers list: the newest ones. Older images are compared from their own
/// page's "compare" link, which names them in the URL.
const PICKER_IMAGES: i64 = 200;

/// The scanned images that have a stored SBOM, newest first (at most [`PICKER_IMAGES`]), and
/// whether there are more.
fn scanned_images(
    state: &AppState,
) -> Result<(Vec<ImageChoice>, bool), stella_store::rusqlite::Error> {
    let conn = state.stores().catalog.connection();
    let mut stmt = conn.prepare(
        "SELECT i.digest, i.reference FROM images i WHERE EXISTS \
         (SELECT 1 FROM artifacts a WHERE a.image_digest = i.digest AND a.kind = 'sbom' \
          AND a.format = 'cdx-json') ORDER BY i.created_at DESC, i.rowid DESC LIMIT ?1",
    )?;
    let mut images = stmt
        .query_map([PICKER_IMAGES + 1], |r| {
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
    let more = images.len() as i64 > PICKER_IMAGES;
    images.truncate(PICKER_IMAGES as usize);
    Ok((images, more))
}

async fn diff_page(
    State(state): State<AppState>,
    chrome: Chrome,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("Diff", "diff");
    let params = Params::parse(query.as_deref());
    let (mut images, more_images) = match scanned_images(&state) {
        Ok(found) => found,
        Err(err) => {
            return store_error(chrome, "The list of scanned images", err, "/console/scans");
        }
    };
    let old = params.get("old").unwrap_or("").to_owned();
    let new = params.get("new").unwrap_or("").to_owned();
    // An image named in the URL stays choosable even when it is older than the pickers' list.
    for digest in [&old, &new] {
        if !digest.is_empty() && !images.iter().any(|i| &i.digest == digest) {
            images.push(ImageChoice {
                digest: digest.clone(),
                label: DiffPage::short(digest).to_owned(),
            });
        }
    }
    let (diff, problem, status) = match (old.is_empty(), new.is_empty()) {
        (true, true) => (None, None, StatusCode::OK),
        (false, false) => match diff_images(&state, &old, &new) {
            Ok(diff) => (Some(DiffView::new(&diff, &params)), None, StatusCode::OK),
            Err((status, problem)) => (
                None,
                Some(format!(
                    "{problem}. Pick two images from the lists; only scanned images can be \
                     compared."
                )),
                status,
            ),
        },
        // One image chosen (the image page's "compare" link names the new one): ask for the
        // other.
        (old_missing, _) => (
            None,
            Some(format!(
                "Pick the {} image to compare with, then Compare.",
                if old_missing { "old" } else { "new" }
            )),
            StatusCode::OK,
        ),
    };
    render(
        status,
        &DiffPage {
            chrome,
            images,
            more_images,
            old,
            new,
            diff,
            problem,
        },
    )
}
