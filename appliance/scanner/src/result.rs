//! The scan result and its composition from per-layer fragments over the merged view.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ScanOptions;
use crate::analyzer::native::NativeFacts;
use crate::analyzer::{ComponentKind, Distro, FoundComponent, PathResult};
use crate::digest::Digest;
use crate::fragment::LayerFragment;
use crate::fs::MergedView;
use crate::image::ResolvedImage;
use crate::layer::EntryKind;

/// The scanned image's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// Image id: the config digest.
    pub image_id: Digest,
    /// Manifest digest, when the source had a manifest.
    pub manifest_digest: Option<Digest>,
    /// Display name (see [`ScanOptions::image_name`]).
    pub name: String,
    /// Platform from the config.
    pub platform: String,
    /// The SBOM timestamp (RFC 3339, UTC), derived from `SOURCE_DATE_EPOCH` or the config.
    pub timestamp: String,
}

/// One layer of the scanned image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerInfo {
    /// Index, bottom = 0.
    pub index: usize,
    /// diff_id: the layer's identity.
    pub diff_id: Digest,
    /// The blob it was delivered as (differs between intake paths).
    pub blob_digest: Digest,
    /// Whether the fragment came from the cache.
    pub reused: bool,
}

/// A component of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// Unique reference inside the SBOM: the purl, or `bin:<sha256>`, or `ECOSYSTEM:NAME@VERSION`.
    pub bom_ref: String,
    /// Name.
    pub name: String,
    /// Version (may be empty for unidentified binaries).
    pub version: String,
    /// Package URL, rendered by `packageurl`.
    pub purl: Option<String>,
    /// Ecosystem (`deb`, `apk`, `maven`, `npm`, `pypi`, `golang`, `nuget`, `cargo`, `binary`).
    pub ecosystem: String,
    /// CycloneDX type.
    pub kind: ComponentKind,
    /// Declared licences, verbatim.
    pub licenses: Vec<String>,
    /// Evidence paths (absolute in the image; `!/` separates archive members).
    pub evidence: Vec<String>,
    /// diff_id of the layer that introduced the component.
    pub layer: Digest,
    /// Index of that layer.
    pub layer_index: usize,
    /// Extra facts, sorted.
    pub properties: BTreeMap<String, String>,
}

/// A file that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Unknown {
    /// Absolute path in the image.
    pub path: String,
    /// diff_id of the layer holding the file.
    pub layer: Digest,
    /// The analyzer that failed.
    pub analyzer: String,
    /// Why.
    pub reason: String,
}

/// Counts for the one-line summary and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanSummary {
    /// Layers read and analysed in this scan.
    pub layers_analysed: usize,
    /// Layers whose cached fragment was reused.
    pub layers_reused: usize,
    /// Components per ecosystem.
    pub components_by_type: BTreeMap<String, usize>,
    /// Number of unknowns.
    pub unknowns: usize,
    /// Files handed to analyzers in this scan (layers analysed only).
    pub files_analysed: usize,
    /// Files whose results came from the per-file cache.
    pub files_reused: usize,
}

impl std::fmt::Display for ScanSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total: usize = self.components_by_type.values().sum();
        let by_type: Vec<String> = self
            .components_by_type
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        write!(
            f,
            "{total} components ({}); layers analysed {}, reused {}; files analysed {}, reused {}; {} unknowns",
            if by_type.is_empty() {
                "none".to_owned()
            } else {
                by_type.join(", ")
            },
            self.layers_analysed,
            self.layers_reused,
            self.files_analysed,
            self.files_reused,
            self.unknowns
        )
    }
}

/// How the image runs, from its config (`Entrypoint`, `Cmd`, `Env`, `WorkingDir`, `User`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env` (`NAME=value`).
    pub env: Vec<String>,
    /// `WorkingDir`, if set.
    pub working_dir: Option<String>,
    /// `User`, if set.
    pub user: Option<String>,
}

/// A native object file of the final filesystem and the component it is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binary {
    /// Root-relative path.
    pub path: String,
    /// Index of the layer holding it.
    pub layer_index: usize,
    /// bom-ref of the owning component: the OS package listing the file, else the component
    /// an analyzer found in it (Go, Rust), else the package whose manifest deploys it (.NET),
    /// else a `bin:{sha256}` component made for it.
    pub component: String,
    /// Its linkage facts.
    pub facts: NativeFacts,
}

/// Everything a scan found.
#[derive(Debug, Clone)]
pub struct ScanResult {
    /// The image.
    pub image: ImageInfo,
    /// Its layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// Components in the final filesystem, sorted by `bom_ref`.
    pub components: Vec<Component>,
    /// Unknowns in the final filesystem, sorted.
    pub unknowns: Vec<Unknown>,
    /// Distribution, from os-release.
    pub distro: Option<Distro>,
    /// The merged filesystem view (for EntryTrace and usage analysis).
    pub view: MergedView,
    /// Per-layer fragments, bottom first.
    pub fragments: Vec<LayerFragment>,
    /// The image's runtime configuration (for EntryTrace).
    pub runtime: RuntimeConfig,
    /// Native object files with their linkage facts, sorted by path.
    pub binaries: Vec<Binary>,
    /// Counts.
    pub summary: ScanSummary,
}

/// RFC 3339 UTC, seconds precision.
fn format_timestamp(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

fn derive_timestamp(options: &ScanOptions, image: &ResolvedImage) -> String {
    if let Some(epoch) = options.source_date_epoch {
        return format_timestamp(epoch);
    }
    image
        .config
        .created()
        .as_deref()
        .and_then(|c| {
            time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| format_timestamp(t.unix_timestamp()))
        .unwrap_or_else(|| format_timestamp(0))
}

fn same_component(a: &FoundComponent, b: &FoundComponent) -> bool {
    a.purl == b.purl && a.name == b.name && a.version == b.version && a.ecosystem == b.ecosystem
}

/// Looks up the result that applies to `path` in the final view (following a
/// hard link to its target when the link itself has none).
fn result_for<'a>(
    view: &MergedView,
    fragments: &'a [LayerFragment],
    path: &str,
) -> Option<(Cow<'a, PathResult>, usize)> {
    let entry = view.get(path)?;
    let own = fragments.get(entry.layer)?.results.get(path);
    match (&entry.kind, own) {
        (_, Some(result)) => Some((Cow::Borrowed(result), entry.layer)),
        (EntryKind::Hardlink { target }, None) => {
            let target_entry = view.get(target)?;
            fragments
                .get(target_entry.layer)?
                .results
                .get(target)
                .map(|r| (Cow::Owned(r.relocated(target, path)), target_entry.layer))
        }
        _ => None,
    }
}

/// Renders a found component's purl (adding the distro to OS packages), its
/// bom-ref and its evidence paths.
fn identify(
    found: &FoundComponent,
    absolute_path: &str,
    distro: Option<&Distro>,
) -> Result<(Option<String>, String, Vec<String>), String> {
    let purl = match &found.purl {
        Some(spec) => {
            let mut spec = spec.clone();
            if matches!(spec.ty.as_str(), "deb" | "apk" | "rpm")
                && let Some(distro) = distro
            {
                if spec.namespace.is_none() {
                    spec.namespace = Some(distro.id.clone());
                }
                let qualifier = match &distro.version_id {
                    Some(version) => format!("{}-{version}", distro.id),
                    None => distro.id.clone(),
                };
                spec.qualifiers.insert("distro".into(), qualifier);
            }
            let rendered = spec.render().map_err(|reason| {
                format!(
                    "cannot build a purl for {} {}: {reason}",
                    found.name, found.version
                )
            })?;
            Some(rendered)
        }
        None => None,
    };
    let bom_ref = match (&purl, found.properties.get("stella:sha256")) {
        (Some(purl), _) => purl.clone(),
        (None, Some(sha)) => format!("bin:{sha}"),
        (None, None) => format!("{}:{}@{}", found.ecosystem, found.name, found.version),
    };
    let evidence: Vec<String> = if found.evidence.is_empty() {
        vec![absolute_path.to_owned()]
    } else {
        found.evidence.iter().map(|e| format!("/{e}")).collect()
    };
    Ok((purl, bom_ref, evidence))
}

impl ScanResult {
    /// The components found in layer `index` on its own (before later layers
    /// change or delete anything): the content of that layer's fragment SBOM.
    pub fn layer_components(&self, index: usize) -> Vec<Component> {
        let Some(fragment) = self.fragments.get(index) else {
            return Vec::new();
        };
        let mut components: BTreeMap<String, Component> = BTreeMap::new();
        for (path, result) in &fragment.results {
            let absolute = format!("/{path}");
            for found in &result.components {
                let Ok((purl, bom_ref, evidence)) =
                    identify(found, &absolute, self.distro.as_ref())
                else {
                    continue;
                };
                let entry = components
                    .entry(bom_ref.clone())
                    .or_insert_with(|| Component {
                        bom_ref,
                        name: found.name.clone(),
                        version: found.version.clone(),
                        purl,
                        ecosystem: found.ecosystem.clone(),
                        kind: found.kind,
                        licenses: found.licenses.clone(),
                        evidence: Vec::new(),
                        layer: fragment.diff_id.clone(),
                        layer_index: index,
                        properties: found.properties.clone(),
                    });
                entry.evidence.extend(evidence);
                entry.evidence.sort();
                entry.evidence.dedup();
            }
        }
        components.into_values().collect()
    }
}

/// Path -> owning package for the files listed by package databases in the
/// final view, restricted to `only` when given.
fn owners(
    view: &MergedView,
    fragments: &[LayerFragment],
    only: Option<&BTreeSet<&str>>,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (path, _) in view.iter() {
        if let Some((result, _)) = result_for(view, fragments, path) {
            for owned in &result.owned_files {
                for file in &owned.files {
                    if only.is_some_and(|only| !only.contains(file.as_str())) {
                        continue;
                    }
                    map.entry(file.clone())
                        .or_insert_with(|| owned.package.clone());
                }
            }
        }
    }
    map
}

/// (listed path, package) for every file-list entry of an OS package in the final view whose
/// file name is in `names` (callers resolve the listed path through the view: Debian lists
/// `/lib/…` while merged-usr images hold `usr/lib/…`).
pub(crate) fn owned_entries(scan: &ScanResult, names: &BTreeSet<&str>) -> Vec<(String, String)> {
    owned_entries_in(&scan.view, &scan.fragments, names)
}

fn owned_entries_in(
    view: &MergedView,
    fragments: &[LayerFragment],
    names: &BTreeSet<&str>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, _) in view.iter() {
        if let Some((result, _)) = result_for(view, fragments, path) {
            for owned in &result.owned_files {
                for file in &owned.files {
                    let name = file.rsplit('/').next().unwrap_or(file);
                    if names.contains(name) {
                        out.push((file.clone(), owned.package.clone()));
                    }
                }
            }
        }
    }
    out
}

impl ScanResult {
    /// Path -> owning OS package, from dpkg `info/*.list`, apk and rpm file
    /// lists in the final view (computed on demand: it can hold 10^5 paths).
    pub fn file_owners(&self) -> BTreeMap<String, String> {
        owners(&self.view, &self.fragments, None)
    }
}

pub(crate) fn compose(
    image: &ResolvedImage,
    options: &ScanOptions,
    layers: Vec<LayerInfo>,
    fragments: Vec<LayerFragment>,
) -> ScanResult {
    let mut view = MergedView::new();
    for (index, fragment) in fragments.iter().enumerate() {
        view.apply_layer(index, &fragment.entries);
    }
    let diff_id_of = |index: usize| {
        fragments
            .get(index)
            .map(|f| f.diff_id.clone())
            .unwrap_or_else(|| image.image_id.clone())
    };

    // Distribution and file ownership first: OS package purls and binary
    // ownership depend on them.
    let mut distro = None;
    for candidate in ["etc/os-release", "usr/lib/os-release"] {
        let Ok(resolved) = view.resolve(candidate) else {
            continue;
        };
        if let Some((result, _)) = result_for(&view, &fragments, &resolved)
            && let Some(found) = &result.distro
        {
            distro = Some(found.clone());
            break;
        }
    }
    // Ownership is only needed here for paths holding an unidentified binary;
    // the full map is built on demand by `ScanResult::file_owners`.
    let binary_paths: BTreeSet<&str> = view
        .iter()
        .filter_map(|(path, _)| {
            let (result, _) = result_for(&view, &fragments, path)?;
            result
                .components
                .iter()
                .any(|c| c.ecosystem == "binary")
                .then_some(path.as_str())
        })
        .collect();
    let owned_binaries = if binary_paths.is_empty() {
        BTreeSet::new()
    } else {
        owners(&view, &fragments, Some(&binary_paths))
            .into_keys()
            .collect::<BTreeSet<String>>()
    };

    let mut components: BTreeMap<String, Component> = BTreeMap::new();
    let mut unknowns: BTreeSet<Unknown> = BTreeSet::new();
    // Native files: (path, layer, facts, first component found in the file).
    let mut natives: Vec<(String, usize, NativeFacts, Option<String>)> = Vec::new();
    // Files a component's manifest deploys beside it (FoundComponent::deploys): path -> bom-ref.
    let mut deployed: BTreeMap<String, String> = BTreeMap::new();
    for (path, entry) in view.iter() {
        let Some((result, result_layer)) = result_for(&view, &fragments, path) else {
            continue;
        };
        let mut first_component: Option<String> = None;
        let absolute = format!("/{path}");
        for unknown in &result.unknowns {
            unknowns.insert(Unknown {
                path: absolute.clone(),
                layer: diff_id_of(result_layer),
                analyzer: unknown.analyzer.clone(),
                reason: unknown.reason.clone(),
            });
        }
        for found in &result.components {
            if found.ecosystem == "binary" && owned_binaries.contains(path.as_str()) {
                // An OS package already accounts for this binary.
                continue;
            }
            // The introducing layer: walk back through the unbroken run of
            // layers that wrote this path while they still held the component.
            let mut introduced = result_layer;
            for &writer in entry.writers.iter().rev() {
                if writer >= result_layer {
                    continue;
                }
                let held = fragments
                    .get(writer)
                    .and_then(|f| f.results.get(path.as_str()))
                    .is_some_and(|r| r.components.iter().any(|c| same_component(c, found)));
                if !held {
                    break;
                }
                introduced = writer;
            }
            let (purl, bom_ref, evidence) = match identify(found, &absolute, distro.as_ref()) {
                Ok(identity) => identity,
                Err(reason) => {
                    unknowns.insert(Unknown {
                        path: absolute.clone(),
                        layer: diff_id_of(result_layer),
                        analyzer: found
                            .properties
                            .get("stella:foundBy")
                            .cloned()
                            .unwrap_or_default(),
                        reason,
                    });
                    continue;
                }
            };
            if first_component.is_none() {
                first_component = Some(bom_ref.clone());
            }
            for path in &found.deploys {
                deployed
                    .entry(path.clone())
                    .or_insert_with(|| bom_ref.clone());
            }
            match components.get_mut(&bom_ref) {
                Some(existing) => {
                    existing.evidence.extend(evidence);
                    existing.evidence.sort();
                    existing.evidence.dedup();
                    if introduced < existing.layer_index {
                        existing.layer_index = introduced;
                        existing.layer = diff_id_of(introduced);
                    }
                    for license in &found.licenses {
                        if !existing.licenses.contains(license) {
                            existing.licenses.push(license.clone());
                        }
                    }
                }
                None => {
                    components.insert(
                        bom_ref.clone(),
                        Component {
                            bom_ref,
                            name: found.name.clone(),
                            version: found.version.clone(),
                            purl,
                            ecosystem: found.ecosystem.clone(),
                            kind: found.kind,
                            licenses: found.licenses.clone(),
                            evidence,
                            layer: diff_id_of(introduced),
                            layer_index: introduced,
                            properties: found.properties.clone(),
                        },
                    );
                }
            }
        }
        if let Some(facts) = &result.native {
            natives.push((path.clone(), result_layer, facts.clone(), first_component));
        }
    }
    let binaries = attach_binaries(
        &view,
        &fragments,
        natives,
        &deployed,
        &mut components,
        &diff_id_of,
    );
    let components: Vec<Component> = components.into_values().collect();
    let unknowns: Vec<Unknown> = unknowns.into_iter().collect();
    let mut components_by_type = BTreeMap::new();
    for component in &components {
        *components_by_type
            .entry(component.ecosystem.clone())
            .or_insert(0) += 1;
    }
    let summary = ScanSummary {
        layers_analysed: layers.iter().filter(|l| !l.reused).count(),
        layers_reused: layers.iter().filter(|l| l.reused).count(),
        components_by_type,
        unknowns: unknowns.len(),
        files_analysed: 0,
        files_reused: 0,
    };
    ScanResult {
        image: ImageInfo {
            image_id: image.image_id.clone(),
            manifest_digest: image.manifest_digest.clone(),
            name: options
                .image_name
                .clone()
                .unwrap_or_else(|| image.image_id.to_string()),
            platform: image.platform.to_string(),
            timestamp: derive_timestamp(options, image),
        },
        layers,
        components,
        unknowns,
        distro,
        view,
        fragments,
        runtime: runtime_config(image),
        binaries,
        summary,
    }
}

fn runtime_config(image: &ResolvedImage) -> RuntimeConfig {
    let Some(config) = image.config.config() else {
        return RuntimeConfig::default();
    };
    RuntimeConfig {
        entrypoint: config.entrypoint().clone().unwrap_or_default(),
        cmd: config.cmd().clone().unwrap_or_default(),
        env: config.env().clone().unwrap_or_default(),
        working_dir: config.working_dir().clone().filter(|w| !w.is_empty()),
        user: config.user().clone().filter(|u| !u.is_empty()),
    }
}

/// Attaches each native file to its component: the OS package whose file list holds it, else
/// the first component an analyzer found in it, else the component whose manifest deploys it
/// there (`deployed`), else a new `bin:{sha256}` component.
fn attach_binaries(
    view: &MergedView,
    fragments: &[LayerFragment],
    natives: Vec<(String, usize, NativeFacts, Option<String>)>,
    deployed: &BTreeMap<String, String>,
    components: &mut BTreeMap<String, Component>,
    diff_id_of: &dyn Fn(usize) -> Digest,
) -> Vec<Binary> {
    if natives.is_empty() {
        return Vec::new();
    }
    let paths: BTreeSet<&str> = natives.iter().map(|(p, ..)| p.as_str()).collect();
    let names: BTreeSet<&str> = paths
        .iter()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .collect();
    // Listed paths resolved through the view (Debian lists `/lib/…` on merged-usr images).
    let mut owned: BTreeMap<String, String> = BTreeMap::new();
    for (listed, package) in owned_entries_in(view, fragments, &names) {
        let resolved = if paths.contains(listed.as_str()) {
            listed
        } else {
            match view.resolve(&listed) {
                Ok(resolved) if paths.contains(resolved.as_str()) => resolved,
                _ => continue,
            }
        };
        owned.entry(resolved).or_insert(package);
    }
    // OS package name -> bom-ref (one name can have several architectures: first wins, sorted).
    let mut by_package: BTreeMap<&str, &str> = BTreeMap::new();
    for component in components.values() {
        if matches!(component.ecosystem.as_str(), "deb" | "apk" | "rpm") {
            by_package
                .entry(component.name.as_str())
                .or_insert(component.bom_ref.as_str());
        }
    }
    let owner_refs: BTreeMap<String, String> = owned
        .into_iter()
        .filter_map(|(path, package)| {
            by_package
                .get(package.as_str())
                .map(|bom_ref| (path, (*bom_ref).to_owned()))
        })
        .collect();
    let mut binaries = Vec::with_capacity(natives.len());
    for (path, layer, facts, found_in_file) in natives {
        let component = match (owner_refs.get(&path), found_in_file, deployed.get(&path)) {
            (Some(owner), _, _) => owner.clone(),
            (None, Some(found), _) => found,
            (None, None, Some(package)) => {
                // The manifest's package accounts for the file: it is evidence of it.
                if let Some(entry) = components.get_mut(package) {
                    entry.evidence.push(format!("/{path}"));
                    entry.evidence.sort();
                    entry.evidence.dedup();
                }
                package.clone()
            }
            (None, None, None) => {
                let bom_ref = format!("bin:{}", facts.sha256);
                let file_name = path.rsplit('/').next().unwrap_or(&path);
                let absolute = format!("/{path}");
                let entry = components.entry(bom_ref.clone()).or_insert_with(|| {
                    let mut properties = BTreeMap::new();
                    properties.insert("stella:sha256".to_owned(), facts.sha256.clone());
                    properties.insert("stella:foundBy".to_owned(), "native".to_owned());
                    properties.insert("stella:native.format".to_owned(), facts.format.clone());
                    let (name, version) = binary_identity(&facts, file_name, &mut properties);
                    Component {
                        bom_ref: bom_ref.clone(),
                        name,
                        version,
                        purl: None,
                        ecosystem: "binary".to_owned(),
                        kind: if facts.kind == "shared-library" {
                            ComponentKind::Library
                        } else {
                            ComponentKind::Application
                        },
                        licenses: Vec::new(),
                        evidence: Vec::new(),
                        layer: diff_id_of(layer),
                        layer_index: layer,
                        properties,
                    }
                });
                entry.evidence.push(absolute);
                entry.evidence.sort();
                entry.evidence.dedup();
                if layer < entry.layer_index {
                    entry.layer_index = layer;
                    entry.layer = diff_id_of(layer);
                }
                bom_ref
            }
        };
        binaries.push(Binary {
            path,
            layer_index: layer,
            component,
            facts,
        });
    }
    binaries
}

/// Version-resource strings copied to a `bin:` component, with their property names (the keys
/// of Syft's PE metadata).
const PE_VERSION_PROPERTIES: &[(&str, &str)] = &[
    ("CompanyName", "stella:pe.companyName"),
    ("ProductName", "stella:pe.productName"),
    ("ProductVersion", "stella:pe.productVersion"),
    ("FileVersion", "stella:pe.fileVersion"),
    ("FileDescription", "stella:pe.fileDescription"),
    ("InternalName", "stella:pe.internalName"),
    ("OriginalFilename", "stella:pe.originalFilename"),
    ("LegalCopyright", "stella:pe.legalCopyright"),
];

/// Name and version of a `bin:` component: the file name and no version, unless a PE version
/// resource names the product (as Syft names PE files); its strings become properties.
fn binary_identity(
    facts: &NativeFacts,
    file_name: &str,
    properties: &mut BTreeMap<String, String>,
) -> (String, String) {
    let Some(pe) = &facts.pe_version else {
        return (file_name.to_owned(), String::new());
    };
    for (key, property) in PE_VERSION_PROPERTIES {
        if let Some(value) = pe.strings.get(*key) {
            properties.insert((*property).to_owned(), value.clone());
        }
    }
    if let Some(fixed) = &pe.fixed_file_version {
        properties.insert("stella:pe.fixedFileVersion".to_owned(), fixed.clone());
    }
    if let Some(fixed) = &pe.fixed_product_version {
        properties.insert("stella:pe.fixedProductVersion".to_owned(), fixed.clone());
    }
    (
        pe.component_name().unwrap_or_else(|| file_name.to_owned()),
        pe.component_version().unwrap_or_default(),
    )
}

impl ScanResult {
    /// The analyzer results for `path` in the final view (a hard link shares its target's).
    pub fn path_result(&self, path: &str) -> Option<Cow<'_, PathResult>> {
        result_for(&self.view, &self.fragments, path.trim_start_matches('/')).map(|(r, _)| r)
    }
}
