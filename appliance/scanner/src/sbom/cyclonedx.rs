//! CycloneDX 1.6 JSON: the image BOM (with BOM-Links to per-layer fragment BOMs)
//! and the layer fragment BOMs.

use serde_json::{Map, Value, json};

use super::{LicenseForm, TOOL_NAME, TOOL_VERSION, classify_license, image_serial, layer_serial};
use crate::ScanResult;
use crate::result::Component;

fn licenses_json(licenses: &[String]) -> Option<Value> {
    if licenses.is_empty() {
        return None;
    }
    let forms: Vec<LicenseForm> = licenses.iter().map(|l| classify_license(l)).collect();
    // CycloneDX allows either license objects or exactly one expression.
    if let [LicenseForm::Expression(expression)] = forms.as_slice() {
        return Some(json!([{ "expression": expression }]));
    }
    let items: Vec<Value> = forms
        .into_iter()
        .map(|form| match form {
            LicenseForm::Id(id) => json!({ "license": { "id": id } }),
            LicenseForm::Expression(text) | LicenseForm::Name(text) => {
                json!({ "license": { "name": text } })
            }
        })
        .collect();
    Some(Value::Array(items))
}

fn property(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

pub(crate) fn component_json(component: &Component) -> Value {
    let mut object = Map::new();
    object.insert("type".into(), json!(component.kind.as_str()));
    object.insert("bom-ref".into(), json!(component.bom_ref));
    object.insert("name".into(), json!(component.name));
    if !component.version.is_empty() {
        object.insert("version".into(), json!(component.version));
    }
    if let Some(purl) = &component.purl {
        object.insert("purl".into(), json!(purl));
    }
    if let Some(licenses) = licenses_json(&component.licenses) {
        object.insert("licenses".into(), licenses);
    }
    if let Some(sha) = component.properties.get("stella:sha256") {
        object.insert(
            "hashes".into(),
            json!([{ "alg": "SHA-256", "content": sha }]),
        );
    }
    let mut properties = vec![
        property("stella:ecosystem", &component.ecosystem),
        property("stella:layerDigest", component.layer.as_str()),
        property("stella:layerIndex", &component.layer_index.to_string()),
    ];
    for (key, value) in &component.properties {
        properties.push(property(key, value));
    }
    object.insert("properties".into(), Value::Array(properties));
    let occurrences: Vec<Value> = component
        .evidence
        .iter()
        .map(|location| json!({ "location": location }))
        .collect();
    object.insert("evidence".into(), json!({ "occurrences": occurrences }));
    Value::Object(object)
}

fn tools() -> Value {
    json!({ "components": [{ "type": "application", "name": TOOL_NAME, "version": TOOL_VERSION }] })
}

fn image_component(result: &ScanResult, extra: &[(String, String)]) -> Value {
    let mut properties = vec![
        property("stella:imageId", result.image.image_id.as_str()),
        property("stella:platform", &result.image.platform),
    ];
    // The manifest digest is left out on purpose: it depends on how the image
    // was delivered (a `docker save` archive has none); the image id does not.
    for layer in &result.layers {
        properties.push(property(
            &format!("stella:layer:{}", layer.index),
            layer.diff_id.as_str(),
        ));
    }
    if let Some(distro) = &result.distro {
        let name = match &distro.version_id {
            Some(version) => format!("{}-{version}", distro.id),
            None => distro.id.clone(),
        };
        properties.push(property("stella:distro", &name));
    }
    for (name, value) in extra {
        properties.push(property(name, value));
    }
    json!({
        "type": "container",
        "bom-ref": format!("image:{}", result.image.image_id),
        "name": result.image.name,
        "version": result.image.image_id.as_str(),
        "hashes": [{ "alg": "SHA-256", "content": result.image.image_id.hex() }],
        "properties": properties,
    })
}

/// The image BOM (inventory view).
pub fn image_bom(result: &ScanResult) -> Value {
    image_bom_of(result, &result.components, &image_serial(result), &[])
}

/// The usage view: the components of the usage closure (each with `stella:usedByEntrypoint`),
/// and the entry chains as properties of the image component (docs/scanner.md, Usage view).
pub fn usage_bom(result: &ScanResult, usage: &crate::usage::Usage) -> Value {
    let view = super::UsageView::new(result, usage);
    image_bom_of(result, &view.components, &view.serial, &view.properties)
}

fn image_bom_of(
    result: &ScanResult,
    components_in: &[Component],
    serial: &str,
    extra: &[(String, String)],
) -> Value {
    let components: Vec<Value> = components_in.iter().map(component_json).collect();
    let layer_links: Vec<Value> = result
        .layers
        .iter()
        .map(|layer| {
            json!({
                "type": "bom",
                "url": format!("{}/1", layer_serial(result, layer.index).replace("urn:uuid:", "urn:cdx:")),
                "comment": format!("layer {} fragment {}", layer.index, layer.diff_id),
            })
        })
        .collect();
    let image_ref = format!("image:{}", result.image.image_id);
    let depends_on: Vec<&str> = components_in.iter().map(|c| c.bom_ref.as_str()).collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": result.image.timestamp,
            "tools": tools(),
            "component": image_component(result, extra),
        },
        "components": components,
        "externalReferences": layer_links,
        "dependencies": [{ "ref": image_ref, "dependsOn": depends_on }],
    })
}

/// Layer `index`'s fragment BOM.
pub fn layer_bom(result: &ScanResult, index: usize) -> Value {
    let components: Vec<Value> = result
        .layer_components(index)
        .iter()
        .map(component_json)
        .collect();
    let diff_id = result
        .layers
        .get(index)
        .map(|l| l.diff_id.to_string())
        .unwrap_or_default();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": layer_serial(result, index),
        "version": 1,
        "metadata": {
            "timestamp": result.image.timestamp,
            "tools": tools(),
            "component": {
                "type": "file",
                "bom-ref": format!("layer:{diff_id}"),
                "name": format!("layer {index}"),
                "version": diff_id,
                "hashes": [{ "alg": "SHA-256", "content": diff_id.trim_start_matches("sha256:") }],
            },
        },
        "components": components,
    })
}
