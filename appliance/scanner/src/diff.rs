//! Image diff: components added, removed and changed (version or content) between two images,
//! each attributed to the layer of the new image that caused it, and a per-layer summary.
//!
//! Input is either two [`ScanResult`]s (the CLI: scanned with one layer cache, so layers the
//! images share are analysed once) or two stored CycloneDX image SBOMs (the API: components
//! carry `stella:layerIndex`, the image its `stella:layer:N` diff_ids). Components are matched
//! by (ecosystem, name); a removal is attributed to the new layer that last wrote or deleted
//! the component's evidence path when the merged view is at hand, else to the first layer of the
//! new image that the old one does not share.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ScanResult;
use crate::layer::EntryKind;

/// A component as the diff sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffComponent {
    /// bom-ref.
    pub bom_ref: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Ecosystem.
    pub ecosystem: String,
    /// Index of the introducing layer in its image.
    pub layer_index: usize,
    /// Evidence paths.
    #[serde(skip)]
    pub evidence: Vec<String>,
}

/// One image's side of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffSide {
    /// Image id.
    pub image_id: String,
    /// Layer diff_ids, bottom first.
    pub layers: Vec<String>,
    /// Components.
    pub components: Vec<DiffComponent>,
}

impl DiffSide {
    /// From a scan.
    pub fn from_scan(result: &ScanResult) -> DiffSide {
        DiffSide {
            image_id: result.image.image_id.to_string(),
            layers: result
                .layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect(),
            components: result
                .components
                .iter()
                .map(|c| DiffComponent {
                    bom_ref: c.bom_ref.clone(),
                    name: c.name.clone(),
                    version: c.version.clone(),
                    ecosystem: c.ecosystem.clone(),
                    layer_index: c.layer_index,
                    evidence: c.evidence.clone(),
                })
                .collect(),
        }
    }

    /// From a stella CycloneDX image SBOM (JSON). Errors name what is missing.
    pub fn from_cyclonedx(bytes: &[u8]) -> Result<DiffSide, String> {
        let doc: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("SBOM is not JSON: {e}"))?;
        let image = &doc["metadata"]["component"];
        let image_id = image["version"]
            .as_str()
            .ok_or("SBOM has no metadata.component.version (image id)")?
            .to_owned();
        let props = |value: &serde_json::Value| -> BTreeMap<String, String> {
            value["properties"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| {
                            Some((
                                p["name"].as_str()?.to_owned(),
                                p["value"].as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let image_props = props(image);
        let mut layers = Vec::new();
        while let Some(layer) = image_props.get(&format!("stella:layer:{}", layers.len())) {
            layers.push(layer.clone());
        }
        let mut components = Vec::new();
        for component in doc["components"].as_array().into_iter().flatten() {
            let p = props(component);
            components.push(DiffComponent {
                bom_ref: component["bom-ref"]
                    .as_str()
                    .ok_or("component without bom-ref")?
                    .to_owned(),
                name: component["name"].as_str().unwrap_or_default().to_owned(),
                version: component["version"].as_str().unwrap_or_default().to_owned(),
                ecosystem: p.get("stella:ecosystem").cloned().unwrap_or_default(),
                layer_index: p
                    .get("stella:layerIndex")
                    .and_then(|i| i.parse().ok())
                    .ok_or("component without stella:layerIndex")?,
                evidence: Vec::new(),
            });
        }
        Ok(DiffSide {
            image_id,
            layers,
            components,
        })
    }
}

/// An added or removed component with the layer it is attributed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The component.
    #[serde(flatten)]
    pub component: DiffComponent,
    /// Index of the new image's layer that caused it (`None`: a layer the new image dropped).
    pub layer: Option<usize>,
    /// That layer's diff_id (or the dropped old layer's).
    pub layer_digest: String,
}

/// A component whose version (or content, for `bin:` components) changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionChange {
    /// Ecosystem.
    pub ecosystem: String,
    /// Name.
    pub name: String,
    /// Old version.
    pub old_version: String,
    /// New version.
    pub new_version: String,
    /// Old bom-ref.
    pub old_ref: String,
    /// New bom-ref.
    pub new_ref: String,
    /// Index of the new image's layer that introduced the new version.
    pub layer: usize,
    /// Its diff_id.
    pub layer_digest: String,
}

/// What changed in one layer of the new image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerSummary {
    /// Index in the new image (`None` for a layer of the old image that the new one dropped).
    pub index: Option<usize>,
    /// diff_id.
    pub diff_id: String,
    /// Whether the old image has the same layer at the same position (with the same layers
    /// below it): such a layer causes no change and its analysis is shared through the cache.
    pub shared: bool,
    /// Components added by it.
    pub added: usize,
    /// Components removed by it.
    pub removed: usize,
    /// Components changed by it.
    pub changed: usize,
}

/// The diff of two images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDiff {
    /// Old image id.
    pub old_image: String,
    /// New image id.
    pub new_image: String,
    /// Added components, sorted by (ecosystem, name, version).
    pub added: Vec<Change>,
    /// Removed components.
    pub removed: Vec<Change>,
    /// Changed components.
    pub changed: Vec<VersionChange>,
    /// Per layer of the new image (then dropped old layers).
    pub layers: Vec<LayerSummary>,
}

/// Which new layer removed a path, from the new image's merged view and fragments: the layer
/// that last wrote the path (rewrote a package database), else the highest layer holding a
/// whiteout or opaque marker over it.
fn removing_layer(new: &ScanResult, path: &str) -> Option<usize> {
    let path = path
        .split("!/")
        .next()
        .unwrap_or(path)
        .trim_start_matches('/');
    if let Some(entry) = new.view.get(path) {
        return Some(entry.layer);
    }
    for (index, fragment) in new.fragments.iter().enumerate().rev() {
        for entry in &fragment.entries {
            let covers = path == entry.path || path.starts_with(&format!("{}/", entry.path));
            if covers && matches!(entry.kind, EntryKind::Whiteout | EntryKind::Opaque) {
                return Some(index);
            }
        }
    }
    None
}

/// Diffs two images. `new_scan` (the new image's scan, when at hand) refines the attribution
/// of removals.
pub fn diff(old: &DiffSide, new: &DiffSide, new_scan: Option<&ScanResult>) -> ImageDiff {
    // The shared prefix: layers equal at the same position from the bottom.
    let shared = old
        .layers
        .iter()
        .zip(&new.layers)
        .take_while(|(a, b)| a == b)
        .count();
    let first_new = shared.min(new.layers.len().saturating_sub(1));
    let key = |c: &DiffComponent| (c.ecosystem.clone(), c.name.clone());
    let mut old_by: BTreeMap<(String, String), Vec<&DiffComponent>> = BTreeMap::new();
    for c in &old.components {
        old_by.entry(key(c)).or_default().push(c);
    }
    let mut new_by: BTreeMap<(String, String), Vec<&DiffComponent>> = BTreeMap::new();
    for c in &new.components {
        new_by.entry(key(c)).or_default().push(c);
    }
    let keys: BTreeSet<&(String, String)> = old_by.keys().chain(new_by.keys()).collect();
    let layer_digest =
        |side: &DiffSide, index: usize| side.layers.get(index).cloned().unwrap_or_default();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    let attribute_removal = |c: &DiffComponent| -> (Option<usize>, String) {
        let from_view = new_scan.and_then(|scan| {
            c.evidence
                .iter()
                .filter_map(|e| removing_layer(scan, e))
                .min()
                .filter(|layer| *layer >= shared)
        });
        match from_view {
            Some(layer) => (Some(layer), layer_digest(new, layer)),
            None if new.layers.len() > shared => (Some(first_new), layer_digest(new, first_new)),
            // The new image is a prefix of the old one: the dropped layer "caused" it.
            None => (None, layer_digest(old, c.layer_index)),
        }
    };
    for k in keys {
        let olds = old_by.get(k).cloned().unwrap_or_default();
        let news = new_by.get(k).cloned().unwrap_or_default();
        let old_refs: BTreeSet<&str> = olds.iter().map(|c| c.bom_ref.as_str()).collect();
        let new_refs: BTreeSet<&str> = news.iter().map(|c| c.bom_ref.as_str()).collect();
        let gone: Vec<&DiffComponent> = olds
            .iter()
            .copied()
            .filter(|c| !new_refs.contains(c.bom_ref.as_str()))
            .collect();
        let came: Vec<&DiffComponent> = news
            .iter()
            .copied()
            .filter(|c| !old_refs.contains(c.bom_ref.as_str()))
            .collect();
        if let ([before], [after]) = (gone.as_slice(), came.as_slice()) {
            changed.push(VersionChange {
                ecosystem: after.ecosystem.clone(),
                name: after.name.clone(),
                old_version: before.version.clone(),
                new_version: after.version.clone(),
                old_ref: before.bom_ref.clone(),
                new_ref: after.bom_ref.clone(),
                layer: after.layer_index,
                layer_digest: layer_digest(new, after.layer_index),
            });
            continue;
        }
        for c in came {
            added.push(Change {
                component: c.clone(),
                layer: Some(c.layer_index),
                layer_digest: layer_digest(new, c.layer_index),
            });
        }
        for c in gone {
            let (layer, digest) = attribute_removal(c);
            removed.push(Change {
                component: c.clone(),
                layer,
                layer_digest: digest,
            });
        }
    }
    let mut layers: Vec<LayerSummary> = new
        .layers
        .iter()
        .enumerate()
        .map(|(index, diff_id)| LayerSummary {
            index: Some(index),
            diff_id: diff_id.clone(),
            shared: index < shared,
            added: added.iter().filter(|c| c.layer == Some(index)).count(),
            removed: removed.iter().filter(|c| c.layer == Some(index)).count(),
            changed: changed.iter().filter(|c| c.layer == index).count(),
        })
        .collect();
    for diff_id in old.layers.iter().skip(shared) {
        if !new.layers.contains(diff_id) {
            layers.push(LayerSummary {
                index: None,
                diff_id: diff_id.clone(),
                shared: false,
                added: 0,
                removed: removed
                    .iter()
                    .filter(|c| c.layer.is_none() && &c.layer_digest == diff_id)
                    .count(),
                changed: 0,
            });
        }
    }
    ImageDiff {
        old_image: old.image_id.clone(),
        new_image: new.image_id.clone(),
        added,
        removed,
        changed,
        layers,
    }
}

impl ImageDiff {
    /// A plain-text report: one line per change, then the per-layer summary.
    pub fn to_text(&self) -> String {
        let mut out = format!("diff {} -> {}\n", self.old_image, self.new_image);
        let at = |layer: Option<usize>| match layer {
            Some(i) => format!("layer {i}"),
            None => "dropped layer".to_owned(),
        };
        for c in &self.added {
            out.push_str(&format!(
                "+ {} {} {} ({})\n",
                c.component.ecosystem,
                c.component.name,
                c.component.version,
                at(c.layer)
            ));
        }
        for c in &self.removed {
            out.push_str(&format!(
                "- {} {} {} ({})\n",
                c.component.ecosystem,
                c.component.name,
                c.component.version,
                at(c.layer)
            ));
        }
        for c in &self.changed {
            out.push_str(&format!(
                "~ {} {} {} -> {} ({})\n",
                c.ecosystem,
                c.name,
                c.old_version,
                c.new_version,
                at(Some(c.layer))
            ));
        }
        for layer in &self.layers {
            out.push_str(&format!(
                "{} {}{}: +{} -{} ~{}\n",
                at(layer.index),
                layer.diff_id,
                if layer.shared { " (shared)" } else { "" },
                layer.added,
                layer.removed,
                layer.changed
            ));
        }
        out
    }
}
