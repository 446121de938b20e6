//! CSAF 2.0 documents with `vulnerabilities[].product_status` (the VEX profile): the product tree
//! is resolved to purls (else CPEs, else names), flags give justifications, threats the impact
//! statement and remediations the action statement.

use std::collections::BTreeMap;

use super::{Parsed, str_at};
use crate::vex::{VexClaim, VexFormat, VexStatus};

pub fn parse(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            parsed.error(origin, None, format!("invalid JSON: {e}"));
            return parsed;
        }
    };
    if str_at(&value, "/document/csaf_version").is_none() {
        parsed.error(origin, None, "no document.csaf_version (expected CSAF 2.0)");
        return parsed;
    }
    let Some(vulnerabilities) = value
        .get("vulnerabilities")
        .and_then(serde_json::Value::as_array)
    else {
        parsed.error(origin, None, "no `vulnerabilities` (not a VEX document)");
        return parsed;
    };
    let document = str_at(&value, "/document/tracking/id")
        .unwrap_or(origin)
        .to_string();
    let provider = str_at(&value, "/document/publisher/name")
        .unwrap_or("unknown")
        .to_string();
    let timestamp = str_at(&value, "/document/tracking/current_release_date").map(str::to_string);

    let mut products: BTreeMap<String, String> = BTreeMap::new();
    if let Some(tree) = value.get("product_tree") {
        collect_branches(tree, &mut products);
        for full in tree
            .get("full_product_names")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            add_product(full, &mut products);
        }
        // Relationships name a component installed on a platform; the claim is about the component.
        for relationship in tree
            .get("relationships")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(id) = str_at(relationship, "/full_product_name/product_id") else {
                continue;
            };
            let component =
                str_at(relationship, "/product_reference").and_then(|r| products.get(r).cloned());
            let identity = identity(
                relationship
                    .get("full_product_name")
                    .unwrap_or(&serde_json::Value::Null),
            )
            .or(component);
            if let Some(identity) = identity {
                products.insert(id.to_string(), identity);
            }
        }
    }
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for group in value
        .pointer("/product_tree/product_groups")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = str_at(group, "/group_id") {
            groups.insert(id.to_string(), super::string_list(group.get("product_ids")));
        }
    }
    let expand = |item: &serde_json::Value| -> Vec<String> {
        let mut ids = super::string_list(item.get("product_ids"));
        for group in super::string_list(item.get("group_ids")) {
            ids.extend(groups.get(&group).cloned().unwrap_or_default());
        }
        ids
    };

    for (index, vulnerability) in vulnerabilities.iter().enumerate() {
        let where_ = format!("{origin}#vulnerability{index}");
        let id = str_at(vulnerability, "/cve")
            .or_else(|| {
                vulnerability
                    .pointer("/ids/0/text")
                    .and_then(serde_json::Value::as_str)
            })
            .map(str::to_string);
        let Some(id) = id else {
            parsed.error(&where_, None, "vulnerability without cve or ids");
            continue;
        };
        let Some(status_map) = vulnerability
            .get("product_status")
            .and_then(serde_json::Value::as_object)
        else {
            parsed.error(&where_, Some(&id), "vulnerability without product_status");
            continue;
        };
        let mut justification: BTreeMap<String, String> = BTreeMap::new();
        for flag in vulnerability
            .get("flags")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(label) = str_at(flag, "/label") {
                for product in expand(flag) {
                    justification.insert(product, label.to_string());
                }
            }
        }
        let mut impact: BTreeMap<String, String> = BTreeMap::new();
        for threat in vulnerability
            .get("threats")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            if str_at(threat, "/category") == Some("impact")
                && let Some(details) = str_at(threat, "/details")
            {
                for product in expand(threat) {
                    impact.insert(product, details.to_string());
                }
            }
        }
        let mut action: BTreeMap<String, String> = BTreeMap::new();
        for remediation in vulnerability
            .get("remediations")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(details) = str_at(remediation, "/details") {
                for product in expand(remediation) {
                    action.entry(product).or_insert_with(|| details.to_string());
                }
            }
        }
        for (category, ids) in status_map {
            let status = match category.as_str() {
                "known_not_affected" => VexStatus::NotAffected,
                "fixed" | "first_fixed" => VexStatus::Fixed,
                "known_affected" | "first_affected" | "last_affected" => VexStatus::Affected,
                "under_investigation" => VexStatus::UnderInvestigation,
                "recommended" => continue,
                other => {
                    parsed.error(
                        &where_,
                        Some(&id),
                        format!("unknown product_status {other:?}"),
                    );
                    continue;
                }
            };
            for product_id in super::string_list(Some(ids)) {
                let product = products
                    .get(&product_id)
                    .cloned()
                    .unwrap_or_else(|| product_id.clone());
                parsed.vex_claims.push(VexClaim {
                    product,
                    subcomponents: Vec::new(),
                    vulnerability: id.clone(),
                    status,
                    justification: justification.get(&product_id).cloned(),
                    impact_statement: impact.get(&product_id).cloned(),
                    action_statement: if status == VexStatus::Affected {
                        action.get(&product_id).cloned()
                    } else {
                        None
                    },
                    provider: provider.clone(),
                    timestamp: timestamp.clone(),
                    format: VexFormat::Csaf,
                    document: document.clone(),
                });
            }
        }
    }
    parsed.keep_valid(origin)
}

fn identity(product: &serde_json::Value) -> Option<String> {
    str_at(product, "/product_identification_helper/purl")
        .or(str_at(product, "/product_identification_helper/cpe"))
        .map(str::to_string)
}

fn add_product(product: &serde_json::Value, products: &mut BTreeMap<String, String>) {
    if let Some(id) = str_at(product, "/product_id") {
        let name = identity(product)
            .or_else(|| str_at(product, "/name").map(str::to_string))
            .unwrap_or_else(|| id.to_string());
        products.insert(id.to_string(), name);
    }
}

fn collect_branches(node: &serde_json::Value, products: &mut BTreeMap<String, String>) {
    for branch in node
        .get("branches")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(product) = branch.get("product") {
            add_product(product, products);
        }
        collect_branches(branch, products);
    }
}
