//! SPDX 2.3 JSON: the image document (with ExternalDocumentRefs to the per-layer
//! fragment documents) and the layer fragment documents.

use serde_json::{Map, Value, json};
use sha1::{Digest as _, Sha1};

use super::{LicenseForm, TOOL_NAME, TOOL_VERSION, classify_license, short_hash, stable_uuid};
use crate::ScanResult;
use crate::result::Component;

const NAMESPACE_BASE: &str = "https://stella-ops.invalid/spdx";

fn tool() -> String {
    format!("Tool: {TOOL_NAME}-{TOOL_VERSION}")
}

fn spdx_id(component: &Component) -> String {
    format!(
        "SPDXRef-Package-{}-{}",
        sanitize(&component.ecosystem),
        short_hash(&component.bom_ref)
    )
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Licence handling: expressions go in as they are; other text becomes a
/// `LicenseRef-` with its text in `hasExtractedLicensingInfos`.
#[derive(Default)]
struct ExtractedLicences {
    refs: std::collections::BTreeMap<String, String>,
}

impl ExtractedLicences {
    fn declared(&mut self, licenses: &[String]) -> String {
        if licenses.is_empty() {
            return "NOASSERTION".into();
        }
        let parts: Vec<String> = licenses
            .iter()
            .map(|license| match classify_license(license) {
                LicenseForm::Id(id) => id,
                LicenseForm::Expression(expression) => format!("({expression})"),
                LicenseForm::Name(name) => {
                    let id = format!("LicenseRef-{}", short_hash(&name));
                    self.refs.insert(id.clone(), name);
                    id
                }
            })
            .collect();
        if parts.len() == 1 {
            parts.into_iter().next().unwrap_or_default()
        } else {
            parts.join(" AND ")
        }
    }

    fn json(&self) -> Vec<Value> {
        self.refs
            .iter()
            .map(|(id, text)| json!({ "licenseId": id, "extractedText": text, "name": text }))
            .collect()
    }
}

fn package_json(component: &Component, timestamp: &str, licences: &mut ExtractedLicences) -> Value {
    let mut object = Map::new();
    object.insert("SPDXID".into(), json!(spdx_id(component)));
    object.insert("name".into(), json!(component.name));
    if !component.version.is_empty() {
        object.insert("versionInfo".into(), json!(component.version));
    }
    object.insert("downloadLocation".into(), json!("NOASSERTION"));
    object.insert("filesAnalyzed".into(), json!(false));
    object.insert("licenseConcluded".into(), json!("NOASSERTION"));
    object.insert(
        "licenseDeclared".into(),
        json!(licences.declared(&component.licenses)),
    );
    object.insert("copyrightText".into(), json!("NOASSERTION"));
    object.insert(
        "primaryPackagePurpose".into(),
        json!(match component.kind {
            crate::ComponentKind::Library => "LIBRARY",
            crate::ComponentKind::Application => "APPLICATION",
            crate::ComponentKind::Framework => "FRAMEWORK",
        }),
    );
    if let Some(purl) = &component.purl {
        object.insert(
            "externalRefs".into(),
            json!([{ "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl }]),
        );
    }
    if let Some(sha) = component.properties.get("stella:sha256") {
        object.insert(
            "checksums".into(),
            json!([{ "algorithm": "SHA256", "checksumValue": sha }]),
        );
    }
    object.insert(
        "sourceInfo".into(),
        json!(format!("evidence: {}", component.evidence.join(", "))),
    );
    let mut annotations = vec![
        annotation(
            timestamp,
            &format!("stella:layerDigest={}", component.layer),
        ),
        annotation(
            timestamp,
            &format!("stella:layerIndex={}", component.layer_index),
        ),
    ];
    for (key, value) in &component.properties {
        annotations.push(annotation(timestamp, &format!("{key}={value}")));
    }
    object.insert("annotations".into(), Value::Array(annotations));
    Value::Object(object)
}

fn annotation(timestamp: &str, comment: &str) -> Value {
    json!({ "annotationDate": timestamp, "annotationType": "OTHER", "annotator": tool(), "comment": comment })
}

fn namespace(kind: &str, what: &str) -> String {
    format!("{NAMESPACE_BASE}/{kind}/{}", stable_uuid(what))
}

fn layer_namespace(result: &ScanResult, index: usize) -> String {
    let diff_id = result
        .layers
        .get(index)
        .map(|l| l.diff_id.to_string())
        .unwrap_or_default();
    namespace("layer", &format!("layer:{diff_id}"))
}

fn document(
    name: String,
    namespace: String,
    timestamp: &str,
    root: Value,
    components: &[Component],
    external: Vec<Value>,
    extra_relationships: Vec<Value>,
) -> Value {
    let mut licences = ExtractedLicences::default();
    let root_id = root
        .get("SPDXID")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let mut packages = vec![root];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": root_id,
    })];
    for component in components {
        packages.push(package_json(component, timestamp, &mut licences));
        relationships.push(json!({
            "spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": spdx_id(component),
        }));
    }
    relationships.extend(extra_relationships);
    let mut object = Map::new();
    object.insert("spdxVersion".into(), json!("SPDX-2.3"));
    object.insert("dataLicense".into(), json!("CC0-1.0"));
    object.insert("SPDXID".into(), json!("SPDXRef-DOCUMENT"));
    object.insert("name".into(), json!(name));
    object.insert("documentNamespace".into(), json!(namespace));
    object.insert(
        "creationInfo".into(),
        json!({ "created": timestamp, "creators": [tool()], "licenseListVersion": ::spdx::license_version() }),
    );
    object.insert("documentDescribes".into(), json!([root_id]));
    object.insert("packages".into(), Value::Array(packages));
    object.insert("relationships".into(), Value::Array(relationships));
    if !external.is_empty() {
        object.insert("externalDocumentRefs".into(), Value::Array(external));
    }
    let extracted = licences.json();
    if !extracted.is_empty() {
        object.insert("hasExtractedLicensingInfos".into(), Value::Array(extracted));
    }
    Value::Object(object)
}

/// The image document; `layer_documents` are the serialised layer documents
/// (their SHA-1 goes into the ExternalDocumentRefs).
pub fn image_document(result: &ScanResult, layer_documents: &[Vec<u8>]) -> Value {
    let image_id = result.image.image_id.to_string();
    image_document_of(
        result,
        layer_documents,
        &result.components,
        namespace("image", &image_id),
        &[],
    )
}

/// The usage-view document: the closure's packages; the entry chains as annotations of the
/// image package.
pub fn usage_document(
    result: &ScanResult,
    usage: &crate::usage::Usage,
    layer_documents: &[Vec<u8>],
) -> Value {
    let view = super::UsageView::new(result, usage);
    image_document_of(
        result,
        layer_documents,
        &view.components,
        namespace("usage", &format!("usage:{}", result.image.image_id)),
        &view.properties,
    )
}

fn image_document_of(
    result: &ScanResult,
    layer_documents: &[Vec<u8>],
    components: &[Component],
    document_namespace: String,
    extra: &[(String, String)],
) -> Value {
    let mut root_annotations = vec![annotation(
        &result.image.timestamp,
        &format!("stella:platform={}", result.image.platform),
    )];
    for (name, value) in extra {
        root_annotations.push(annotation(
            &result.image.timestamp,
            &format!("{name}={value}"),
        ));
    }
    let image_id = result.image.image_id.to_string();
    let root = json!({
        "SPDXID": "SPDXRef-Image",
        "name": result.image.name,
        "versionInfo": image_id,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{ "algorithm": "SHA256", "checksumValue": result.image.image_id.hex() }],
        "annotations": root_annotations,
    });
    let mut external = Vec::new();
    let mut relationships = Vec::new();
    for (layer, bytes) in result.layers.iter().zip(layer_documents) {
        let reference = format!("DocumentRef-layer-{}", layer.index);
        external.push(json!({
            "externalDocumentId": reference,
            "spdxDocument": layer_namespace(result, layer.index),
            "checksum": { "algorithm": "SHA1", "checksumValue": hex::encode(Sha1::digest(bytes)) },
        }));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": format!("{reference}:SPDXRef-Layer"),
            "comment": format!("layer {} {}", layer.index, layer.diff_id),
        }));
    }
    document(
        format!("image {}", result.image.name),
        document_namespace,
        &result.image.timestamp,
        root,
        components,
        external,
        relationships,
    )
}

/// Layer `index`'s fragment document.
pub fn layer_document(result: &ScanResult, index: usize) -> Value {
    let diff_id = result.layers.get(index).map(|l| l.diff_id.clone());
    let diff_text = diff_id.as_ref().map(|d| d.to_string()).unwrap_or_default();
    let root = json!({
        "SPDXID": "SPDXRef-Layer",
        "name": format!("layer {index}"),
        "versionInfo": diff_text,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "ARCHIVE",
        "checksums": [{ "algorithm": "SHA256", "checksumValue": diff_text.trim_start_matches("sha256:") }],
    });
    document(
        format!("layer {diff_text}"),
        layer_namespace(result, index),
        &result.image.timestamp,
        root,
        &result.layer_components(index),
        Vec::new(),
        Vec::new(),
    )
}
