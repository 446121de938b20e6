//! Console: one scanned image — facts (reference, digest, platform, layers with sizes, the
//! config's labels), the component table of the inventory or usage view with layer attribution
//! (search, filters, sorting, pages), the entry chain of the usage view, and SBOM downloads in
//! every format and view. Also the diff of two scanned images ([`diff`]). Everything is read from
//! the artefacts the scan stored; no layer is read again.

mod diff;

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stella_authority::Scope;
use stella_core::Digest;
use stella_store::rusqlite::{OptionalExtension, params};

use super::scans::store_error;
use super::view::{Column, ListKeys, PER_PAGE, Pager, Params, Sort, When, error_page, secure};
use super::{Chrome, render};
use crate::AppState;
use crate::auth::RouteTable;
use crate::scans::{FORMATS, IMAGE_CONFIG, stored_sbom};

pub(super) fn routes(table: RouteTable) -> RouteTable {
    let table = table
        .console(
            Method::GET,
            "/console/images/{digest}",
            Some(Scope::ScannerRead),
            image_page,
        )
        .console(
            Method::GET,
            "/console/images/{digest}/sbom",
            Some(Scope::ScannerRead),
            download_sbom,
        );
    diff::routes(table)
}

/// Sortable columns of the component table.
const COLUMNS: [(&str, &str); 5] = [
    ("name", "Name"),
    ("version", "Version"),
    ("type", "Type"),
    ("layer", "Layer"),
    ("used", "Used by entrypoint"),
];

/// The most unresolved names the page lists; the usage SBOM holds them all.
const UNRESOLVED_SHOWN: usize = 100;

/// The layer table: a second list on the page, with its own page and sort parameters.
const LAYER_LIST: ListKeys = ListKeys {
    page: "layer_page",
    sort: "layer_sort",
    anchor: Some("layers"),
};

/// Sortable columns of the layer table.
const LAYER_COLUMNS: [(&str, &str); 3] = [
    ("index", "#"),
    ("size", "Size"),
    ("components", "Components"),
];

/// The views: inventory (everything installed) and usage (what the entrypoint runs and loads).
const VIEWS: [(&str, &str); 2] = [("inventory", "Inventory"), ("usage", "Usage")];

/// A CycloneDX image SBOM as stella writes it, read for display: only what the page shows.
#[derive(Debug, Deserialize)]
struct Bom {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    components: Vec<BomComponent>,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    component: Option<MetaComponent>,
}

#[derive(Debug, Deserialize)]
struct MetaComponent {
    #[serde(default)]
    name: String,
    #[serde(default)]
    properties: Vec<Property>,
}

#[derive(Debug, Deserialize)]
struct BomComponent {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(rename = "bom-ref", default)]
    bom_ref: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    purl: Option<String>,
    #[serde(default)]
    properties: Vec<Property>,
}

#[derive(Debug, Deserialize)]
struct Property {
    name: String,
    #[serde(default)]
    value: String,
}

/// One row of the component table.
#[derive(Debug, Clone)]
pub(crate) struct ComponentRow {
    pub name: String,
    pub version: String,
    /// CycloneDX type (`library`, `application`, `operating-system`, …).
    pub kind: String,
    /// `deb`, `npm`, `pypi`, `maven`, `golang`, …
    pub ecosystem: String,
    pub purl: String,
    /// Index of the layer that introduced it.
    pub layer: usize,
    pub used: bool,
}

impl ComponentRow {
    fn of(component: BomComponent, used: impl Fn(&str) -> bool) -> Self {
        let mut ecosystem = String::new();
        let mut layer = 0;
        let mut used_here = false;
        for property in component.properties {
            match property.name.as_str() {
                "stella:ecosystem" => ecosystem = property.value,
                "stella:layerIndex" => layer = property.value.parse().unwrap_or(0),
                "stella:usedByEntrypoint" => used_here = property.value == "true",
                _ => {}
            }
        }
        Self {
            used: used_here || used(&component.bom_ref),
            name: component.name,
            version: component.version,
            kind: component.kind,
            ecosystem,
            purl: component.purl.unwrap_or_default(),
            layer,
        }
    }
}

/// A layer of the image.
#[derive(Debug, Clone)]
struct LayerRow {
    index: usize,
    diff_id: String,
    media_type: String,
    /// Blob size as the manifest states it; `None` when unknown.
    size: Option<u64>,
    /// Components of the shown view that this layer introduced.
    components: usize,
}

impl LayerRow {
    fn size_text(&self) -> String {
        self.size.map_or_else(|| "unknown".to_owned(), human_size)
    }
}

/// `12.3 MiB`, `4.0 KiB`, `512 B`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// One step of an entry chain: `kind` (`config`, `exec`, `run`, `source`, `shebang`,
/// `launcher`), where (`/path/script:LINE`, a program, `config`) and the command.
#[derive(Debug, Clone, Default)]
struct StepView {
    kind: String,
    at: String,
    argv: String,
}

/// One entry chain of the usage view.
#[derive(Debug, Clone, Default)]
struct ChainView {
    steps: Vec<StepView>,
    terminal: Option<String>,
    /// Why the chain could not be followed to its end.
    unresolved: Option<String>,
}

/// The entry chains from the usage SBOM's image properties (`stella:entrytrace:I:…`), what the
/// closure could not resolve (`stella:usage:unresolved:K`) and whether chains were left out.
fn entry_chains(properties: &[Property]) -> (Vec<ChainView>, Vec<String>, bool) {
    let mut chains: BTreeMap<usize, (BTreeMap<usize, StepView>, ChainView)> = BTreeMap::new();
    let mut unresolved: BTreeMap<usize, String> = BTreeMap::new();
    let mut truncated = false;
    for property in properties {
        if let Some(k) = property.name.strip_prefix("stella:usage:unresolved:") {
            if let Ok(k) = k.parse() {
                unresolved.insert(k, property.value.clone());
            }
            continue;
        }
        let Some(rest) = property.name.strip_prefix("stella:entrytrace:") else {
            continue;
        };
        if rest == "truncated" {
            truncated = property.value == "true";
            continue;
        }
        let mut parts = rest.splitn(3, ':');
        let (Some(Ok(i)), Some(field)) = (parts.next().map(str::parse::<usize>), parts.next())
        else {
            continue;
        };
        let (steps, chain) = chains.entry(i).or_default();
        match (field, parts.next().map(str::parse::<usize>)) {
            ("step", Some(Ok(j))) => {
                let mut words = property.value.splitn(3, ' ');
                steps.insert(
                    j,
                    StepView {
                        kind: words.next().unwrap_or_default().to_owned(),
                        at: words.next().unwrap_or_default().to_owned(),
                        argv: words.next().unwrap_or_default().to_owned(),
                    },
                );
            }
            ("terminal", None) => chain.terminal = Some(property.value.clone()),
            ("unresolved", None) => chain.unresolved = Some(property.value.clone()),
            _ => {}
        }
    }
    let chains = chains
        .into_values()
        .map(|(steps, mut chain)| {
            chain.steps = steps.into_values().collect();
            chain
        })
        .collect();
    (chains, unresolved.into_values().collect(), truncated)
}

/// Parses a stored CycloneDX image SBOM: the components as rows, the image component's name
/// and properties.
fn read_bom(
    bytes: &[u8],
    used: impl Fn(&str) -> bool,
) -> Result<(Vec<ComponentRow>, String, Vec<Property>), String> {
    let bom: Bom = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let rows = bom
        .components
        .into_iter()
        .map(|c| ComponentRow::of(c, &used))
        .collect();
    let (name, properties) = bom
        .metadata
        .component
        .map(|c| (c.name, c.properties))
        .unwrap_or_default();
    Ok((rows, name, properties))
}

/// A download link.
#[derive(Debug, Clone)]
struct Download {
    href: String,
    label: String,
}

/// A choice in a filter `<select>`.
#[derive(Debug, Clone)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// A link of the view toggle.
#[derive(Debug, Clone)]
struct ViewLink {
    href: String,
    label: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "image.html")]
struct ImagePage {
    chrome: Chrome,
    digest: String,
    reference: String,
    platform: String,
    scanned: Option<When>,
    /// The config's labels; `None` when the scan stored no config (scanned by an older version).
    labels: Option<Vec<(String, String)>>,
    entrypoint: String,
    layers: Vec<LayerRow>,
    layer_columns: Vec<Column>,
    layer_pager: Pager,
    view: &'static str,
    views: Vec<ViewLink>,
    q: String,
    types: Vec<Choice>,
    layer_choices: Vec<Choice>,
    filtered: bool,
    columns: Vec<Column>,
    rows: Vec<ComponentRow>,
    pager: Pager,
    chains: Vec<ChainView>,
    /// The first [`UNRESOLVED_SHOWN`] names the usage closure could not resolve.
    unresolved: Vec<String>,
    /// How many there are in all.
    unresolved_total: usize,
    truncated: bool,
    /// The usage view was stored (scans since the usage view exist).
    has_usage: bool,
    downloads: Vec<Download>,
}

fn bad_digest(chrome: Chrome, digest: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        chrome,
        format!("“{digest}” is not an image digest."),
        "An image digest is sha256: followed by 64 hex digits; open the image from the scans \
         list instead of typing its address.",
        "/console/scans",
    )
}

fn unreadable(chrome: Chrome, what: &str, err: impl std::fmt::Display) -> Response {
    store_error(
        chrome,
        &format!("The image's {what}"),
        err,
        "/console/scans",
    )
}

/// The catalog's facts about a scanned image: reference, platform, scan time, layers.
struct ImageFacts {
    reference: String,
    platform: String,
    created_at: String,
    layers: Vec<LayerRow>,
}

fn image_facts(
    state: &AppState,
    digest: &str,
) -> Result<Option<ImageFacts>, stella_store::rusqlite::Error> {
    let conn = state.stores().catalog.connection();
    let Some((reference, platform, created_at)) = conn
        .query_row(
            "SELECT reference, config, created_at FROM images WHERE digest = ?1",
            [digest],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        "SELECT il.position, il.layer_digest, l.media_type, l.size FROM image_layers il \
         JOIN layers l ON l.digest = il.layer_digest WHERE il.image_digest = ?1 \
         ORDER BY il.position",
    )?;
    let layers = stmt
        .query_map(params![digest], |r| {
            let size: i64 = r.get(3)?;
            Ok(LayerRow {
                index: r.get::<_, i64>(0)? as usize,
                diff_id: r.get(1)?,
                media_type: r.get(2)?,
                // Scans before sizes were recorded wrote 0.
                size: u64::try_from(size).ok().filter(|s| *s > 0),
                components: 0,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ImageFacts {
        reference,
        platform,
        created_at,
        layers,
    }))
}

/// Labels and the entrypoint + command from the stored image config.
fn config_facts(state: &AppState, digest: &str) -> Option<(Vec<(String, String)>, String)> {
    let bytes = state
        .stores()
        .artifact(digest, IMAGE_CONFIG.0, IMAGE_CONFIG.1)
        .ok()??;
    let config: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let runtime = &config["config"];
    let labels = runtime["Labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let words = |key: &str| -> Vec<String> {
        runtime[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut command = words("Entrypoint");
    command.extend(words("Cmd"));
    Some((labels, command.join(" ")))
}

async fn image_page(
    State(state): State<AppState>,
    chrome: Chrome,
    Path(digest): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let chrome = chrome.page("Image", "scans");
    if digest.parse::<Digest>().is_err() {
        return bad_digest(chrome, &digest);
    }
    let facts = match image_facts(&state, &digest) {
        Ok(Some(facts)) => facts,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                chrome,
                format!("No scanned image has the digest {digest}."),
                "Start a scan of the image on the scans page; its page appears when the scan \
                 finishes.",
                "/console/scans",
            );
        }
        Err(err) => return unreadable(chrome, "catalog entry", err),
    };
    let params = Params::parse(query.as_deref());
    let view = match params.get("view") {
        Some("usage") => "usage",
        _ => "inventory",
    };
    // The usage view's SBOM holds the entry chains; the inventory view's usedByEntrypoint comes
    // from the BOM-Index (docs/bom-index.md).
    let usage = match stored_sbom(&state, &digest, "cdx-json", "usage") {
        Ok(sbom) => match read_bom(&sbom.bytes, |_| true) {
            Ok(parsed) => Some(parsed),
            Err(err) => return unreadable(chrome, "usage SBOM", err),
        },
        Err((StatusCode::NOT_FOUND, _)) => None,
        Err((_, err)) => return unreadable(chrome, "usage SBOM", err),
    };
    let has_usage = usage.is_some();
    let (chains, unresolved, truncated) = usage
        .as_ref()
        .map(|(_, _, properties)| entry_chains(properties))
        .unwrap_or_default();
    let (mut rows, name) = if view == "usage" {
        usage
            .map(|(rows, name, _)| (rows, name))
            .unwrap_or_default()
    } else {
        let index = state
            .stores()
            .artifact(&digest, "bom-index", stella_scanner::bomindex::FORMAT)
            .ok()
            .flatten()
            .and_then(|bytes| stella_scanner::bomindex::read(&bytes).ok());
        let used = |bom_ref: &str| {
            index
                .as_ref()
                .is_some_and(|i| i.used_by_entrypoint(bom_ref))
        };
        match stored_sbom(&state, &digest, "cdx-json", "inventory") {
            Ok(sbom) => match read_bom(&sbom.bytes, used) {
                Ok((rows, name, _)) => (rows, name),
                Err(err) => return unreadable(chrome, "SBOM", err),
            },
            Err((_, err)) => return unreadable(chrome, "SBOM", err),
        }
    };
    let path = format!("/console/images/{digest}");
    let mut layers = facts.layers;
    let mut ecosystems: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &rows {
        *ecosystems.entry(row.ecosystem.as_str()).or_default() += 1;
        if let Some(layer) = layers.get_mut(row.layer) {
            layer.components += 1;
        }
    }
    let q = params.get("q").unwrap_or("").to_owned();
    let kind = params.get("type").unwrap_or("").to_owned();
    let layer = params.get("layer").and_then(|l| l.parse::<usize>().ok());
    let types = ecosystems
        .iter()
        .map(|(ecosystem, count)| Choice {
            value: (*ecosystem).to_owned(),
            label: format!("{ecosystem} ({count})"),
            selected: *ecosystem == kind,
        })
        .collect();
    let layer_choices = layers
        .iter()
        .map(|l| Choice {
            value: l.index.to_string(),
            label: format!("layer {} ({} components)", l.index, l.components),
            selected: layer == Some(l.index),
        })
        .collect();
    let needle = q.to_lowercase();
    rows.retain(|row| {
        (kind.is_empty() || row.ecosystem == kind)
            && layer.is_none_or(|l| row.layer == l)
            && (needle.is_empty()
                || row.name.to_lowercase().contains(&needle)
                || row.purl.to_lowercase().contains(&needle))
    });
    let layer_sort = Sort::of_list(&params, &LAYER_COLUMNS, "index", LAYER_LIST);
    layer_sort.apply(&mut layers, |l, key| match key {
        "size" => (l.size.unwrap_or(0), l.index),
        "components" => (l.components as u64, l.index),
        _ => (l.index as u64, 0),
    });
    let layer_pager = Pager::of_list(&params, &path, layers.len(), PER_PAGE, LAYER_LIST);
    let layers = layer_pager.slice(&layers);
    let sort = Sort::new(&params, &COLUMNS, "name");
    sort_rows(&mut rows, &sort);
    let pager = Pager::new(&params, &path, rows.len(), PER_PAGE);
    let range = pager.range();
    rows.truncate(range.end);
    rows.drain(..range.start);
    let views = VIEWS
        .iter()
        .map(|(key, label)| ViewLink {
            href: params.href(&path, "view", if *key == "inventory" { "" } else { key }),
            label,
            current: *key == view,
        })
        .collect();
    let digest_ref = digest.as_str();
    let downloads = VIEWS
        .iter()
        .flat_map(|(view, label)| {
            FORMATS.iter().map(move |format| Download {
                href: format!("/console/images/{digest_ref}/sbom?format={format}&view={view}"),
                label: format!("{label} · {}", format_label(format)),
            })
        })
        .collect();
    let (labels, entrypoint) = match config_facts(&state, &digest) {
        Some((labels, entrypoint)) => (Some(labels), entrypoint),
        None => (None, String::new()),
    };
    let reference = if facts.reference.is_empty() {
        name
    } else {
        facts.reference
    };
    let now = state.clock().now_unix();
    render(
        StatusCode::OK,
        &ImagePage {
            chrome: chrome.page(format!("Image {reference}"), "scans"),
            columns: sort.columns(&params, &path, &COLUMNS),
            filtered: !(q.is_empty() && kind.is_empty() && layer.is_none()),
            has_usage,
            scanned: When::parse(&facts.created_at, now),
            digest,
            reference,
            platform: facts.platform,
            labels,
            entrypoint,
            layers,
            layer_columns: layer_sort.columns(&params, &path, &LAYER_COLUMNS),
            layer_pager,
            view,
            views,
            q,
            types,
            layer_choices,
            rows,
            pager,
            chains,
            unresolved_total: unresolved.len(),
            unresolved: unresolved.into_iter().take(UNRESOLVED_SHOWN).collect(),
            truncated,
            downloads,
        },
    )
}

/// Orders the rows by the requested column (name, then version, as the tie-break), stable.
fn sort_rows(rows: &mut [ComponentRow], sort: &Sort) {
    use std::cmp::Ordering;
    let by_name = |a: &ComponentRow, b: &ComponentRow| -> Ordering {
        a.name.cmp(&b.name).then_with(|| a.version.cmp(&b.version))
    };
    match sort.key.as_str() {
        "version" => rows.sort_by(|a, b| a.version.cmp(&b.version).then_with(|| by_name(a, b))),
        "type" => rows.sort_by(|a, b| a.ecosystem.cmp(&b.ecosystem).then_with(|| by_name(a, b))),
        "layer" => rows.sort_by(|a, b| a.layer.cmp(&b.layer).then_with(|| by_name(a, b))),
        // Used components first when ascending: that is what one sorts by this column for.
        "used" => rows.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| by_name(a, b))),
        _ => rows.sort_by(by_name),
    }
    if sort.descending {
        rows.reverse();
    }
}

/// A format's name for people.
fn format_label(format: &str) -> &'static str {
    match format {
        "cdx-json" => "CycloneDX JSON",
        "cdx-pb" => "CycloneDX protobuf",
        "spdx-json" => "SPDX JSON",
        _ => "other",
    }
}

/// `GET /console/images/{digest}/sbom?format=&view=`: the stored SBOM's bytes, as a download.
async fn download_sbom(
    State(state): State<AppState>,
    chrome: Chrome,
    Path(digest): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let format = params.get("format").unwrap_or("cdx-json");
    let view = params.get("view").unwrap_or("inventory");
    match stored_sbom(&state, &digest, format, view) {
        Ok(sbom) => {
            let extension = match format {
                "cdx-pb" => "cdx.pb",
                "spdx-json" => "spdx.json",
                _ => "cdx.json",
            };
            // The digest parsed (stored_sbom checks it), so the name is plain ASCII.
            let short = digest.trim_start_matches("sha256:").get(..12).unwrap_or("");
            let disposition = format!("attachment; filename=\"{short}-{view}.{extension}\"");
            let mut response = sbom.bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(sbom.content_type),
            );
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            secure(response)
        }
        Err((status, problem)) => error_page(
            status,
            chrome.page("No SBOM", "scans"),
            format!("{problem}."),
            "Use the download links on the image's page; they list every stored format and view.",
            format!("/console/images/{digest}"),
        ),
    }
}

#[cfg(test)]
mod tests;
