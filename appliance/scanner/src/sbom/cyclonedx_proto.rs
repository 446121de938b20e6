//! CycloneDX 1.6 Protobuf: the image BOM encoded with the messages generated
//! from the official `bom-1.6.proto`. Built from the same JSON document as the
//! JSON writer, so both formats always carry the same facts.

use prost::Message;
use serde_json::Value;

use super::cyclonedx_pb as pb;

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn items<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn classification(kind: &str) -> pb::Classification {
    match kind {
        "application" => pb::Classification::Application,
        "framework" => pb::Classification::Framework,
        "library" => pb::Classification::Library,
        "container" => pb::Classification::Container,
        "file" => pb::Classification::File,
        "operating-system" => pb::Classification::OperatingSystem,
        _ => pb::Classification::Null,
    }
}

fn timestamp(rfc3339: &str) -> Option<prost_types::Timestamp> {
    let parsed =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
            .ok()?;
    Some(prost_types::Timestamp {
        seconds: parsed.unix_timestamp(),
        nanos: 0,
    })
}

fn hashes(value: &Value) -> Vec<pb::Hash> {
    items(value, "hashes")
        .map(|hash| pb::Hash {
            alg: match hash.get("alg").and_then(Value::as_str) {
                Some("SHA-256") => pb::HashAlg::Sha256 as i32,
                _ => pb::HashAlg::Null as i32,
            },
            value: text(hash, "content").unwrap_or_default(),
        })
        .collect()
}

fn licenses(value: &Value) -> Vec<pb::LicenseChoice> {
    items(value, "licenses")
        .map(|choice| {
            let inner = if let Some(expression) = text(choice, "expression") {
                pb::license_choice::Choice::Expression(expression)
            } else {
                let license = choice.get("license").cloned().unwrap_or_default();
                let which = match (text(&license, "id"), text(&license, "name")) {
                    (Some(id), _) => pb::license::License::Id(id),
                    (None, name) => pb::license::License::Name(name.unwrap_or_default()),
                };
                pb::license_choice::Choice::License(pb::License {
                    license: Some(which),
                    ..pb::License::default()
                })
            };
            pb::LicenseChoice {
                choice: Some(inner),
                ..pb::LicenseChoice::default()
            }
        })
        .collect()
}

fn component(value: &Value) -> pb::Component {
    let occurrences: Vec<pb::EvidenceOccurrences> = value
        .get("evidence")
        .map(|evidence| {
            items(evidence, "occurrences")
                .map(|o| pb::EvidenceOccurrences {
                    location: text(o, "location").unwrap_or_default(),
                    ..pb::EvidenceOccurrences::default()
                })
                .collect()
        })
        .unwrap_or_default();
    pb::Component {
        r#type: classification(
            value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ) as i32,
        bom_ref: text(value, "bom-ref"),
        name: text(value, "name").unwrap_or_default(),
        version: text(value, "version").unwrap_or_default(),
        purl: text(value, "purl"),
        hashes: hashes(value),
        licenses: licenses(value),
        properties: items(value, "properties")
            .map(|p| pb::Property {
                name: text(p, "name").unwrap_or_default(),
                value: text(p, "value"),
            })
            .collect(),
        evidence: (!occurrences.is_empty()).then(|| pb::Evidence {
            occurrences,
            ..pb::Evidence::default()
        }),
        ..pb::Component::default()
    }
}

/// Converts a CycloneDX 1.6 JSON document (as written by this crate) to its Protobuf message.
pub fn from_json(document: &Value) -> pb::Bom {
    let metadata = document.get("metadata").cloned().unwrap_or_default();
    let tools = metadata.get("tools").map(|tools| pb::Tool {
        components: items(tools, "components").map(component).collect(),
        ..pb::Tool::default()
    });
    pb::Bom {
        spec_version: text(document, "specVersion").unwrap_or_default(),
        version: document
            .get("version")
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok()),
        serial_number: text(document, "serialNumber"),
        metadata: Some(pb::Metadata {
            timestamp: text(&metadata, "timestamp").as_deref().and_then(timestamp),
            tools,
            component: metadata.get("component").map(component),
            ..pb::Metadata::default()
        }),
        components: items(document, "components").map(component).collect(),
        external_references: items(document, "externalReferences")
            .map(|reference| pb::ExternalReference {
                r#type: match reference.get("type").and_then(Value::as_str) {
                    Some("bom") => pb::ExternalReferenceType::Bom as i32,
                    _ => pb::ExternalReferenceType::Other as i32,
                },
                url: text(reference, "url").unwrap_or_default(),
                comment: text(reference, "comment"),
                hashes: Vec::new(),
            })
            .collect(),
        dependencies: items(document, "dependencies")
            .map(|dependency| pb::Dependency {
                r#ref: text(dependency, "ref").unwrap_or_default(),
                dependencies: items(dependency, "dependsOn")
                    .filter_map(Value::as_str)
                    .map(|r| pb::Dependency {
                        r#ref: r.to_owned(),
                        ..pb::Dependency::default()
                    })
                    .collect(),
                provides: Vec::new(),
            })
            .collect(),
        ..pb::Bom::default()
    }
}

/// Encodes the message (prost writes fields in tag order: deterministic).
pub fn encode(document: &Value) -> Vec<u8> {
    from_json(document).encode_to_vec()
}
