//! OpenVEX documents (v0.0.1 and v0.2.0; JSON or YAML) to normalised claims.

use super::{Parsed, json_or_yaml, str_at};
use crate::vex::{VexClaim, VexFormat, VexStatus};

pub fn parse(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let value = match json_or_yaml(bytes) {
        Ok(value) => value,
        Err(reason) => {
            parsed.error(origin, None, reason);
            return parsed;
        }
    };
    let Some(statements) = value
        .get("statements")
        .and_then(serde_json::Value::as_array)
    else {
        parsed.error(origin, None, "no `statements` array (expected OpenVEX)");
        return parsed;
    };
    let document = str_at(&value, "/@id").unwrap_or(origin).to_string();
    let author = str_at(&value, "/author");
    let document_time = str_at(&value, "/timestamp").map(str::to_string);
    for (index, statement) in statements.iter().enumerate() {
        let where_ = format!("{origin}#statement{index}");
        let vulnerability = match statement.get("vulnerability") {
            Some(serde_json::Value::String(name)) => Some(name.trim().to_string()),
            Some(object) => str_at(object, "/name")
                .or(str_at(object, "/@id"))
                .map(str::to_string),
            None => None,
        };
        let Some(vulnerability) = vulnerability else {
            parsed.error(&where_, None, "statement without vulnerability");
            continue;
        };
        let status = match str_at(statement, "/status") {
            Some("not_affected") => VexStatus::NotAffected,
            Some("affected") => VexStatus::Affected,
            Some("fixed") => VexStatus::Fixed,
            Some("under_investigation") => VexStatus::UnderInvestigation,
            other => {
                parsed.error(
                    &where_,
                    Some(&vulnerability),
                    format!("unknown status {other:?}"),
                );
                continue;
            }
        };
        let provider = str_at(statement, "/supplier")
            .or(author)
            .unwrap_or("unknown")
            .to_string();
        let products = statement
            .get("products")
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        if products.is_empty() {
            parsed.error(&where_, Some(&vulnerability), "statement without products");
            continue;
        }
        for product in products {
            let (name, subcomponents) = match &product {
                serde_json::Value::String(name) => (Some(name.trim().to_string()), Vec::new()),
                object => {
                    let name = str_at(object, "/identifiers/purl")
                        .or(str_at(object, "/@id"))
                        .map(str::to_string);
                    let subcomponents = object
                        .get("subcomponents")
                        .and_then(serde_json::Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|sub| {
                            str_at(sub, "/identifiers/purl")
                                .or(str_at(sub, "/@id"))
                                .map(str::to_string)
                        })
                        .collect();
                    (name, subcomponents)
                }
            };
            let Some(name) = name else {
                parsed.error(&where_, Some(&vulnerability), "product without @id");
                continue;
            };
            parsed.vex_claims.push(VexClaim {
                product: name,
                subcomponents,
                vulnerability: vulnerability.clone(),
                status,
                justification: str_at(statement, "/justification").map(str::to_string),
                impact_statement: str_at(statement, "/impact_statement").map(str::to_string),
                action_statement: str_at(statement, "/action_statement").map(str::to_string),
                provider: provider.clone(),
                timestamp: str_at(statement, "/timestamp")
                    .map(str::to_string)
                    .or_else(|| document_time.clone()),
                format: VexFormat::Openvex,
                document: document.clone(),
            });
        }
    }
    parsed.keep_valid(origin)
}
