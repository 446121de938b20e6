//! CycloneDX VEX (`vulnerabilities[].analysis` + `affects[].ref`), bom-refs resolved to purls.

use std::collections::BTreeMap;

use super::{Parsed, str_at};
use crate::vex::{VexClaim, VexFormat, VexStatus, justification_from_cyclonedx};

fn collect_components(node: &serde_json::Value, refs: &mut BTreeMap<String, String>) {
    for component in node
        .get("components")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(bom_ref) = str_at(component, "/bom-ref") {
            let identity = str_at(component, "/purl")
                .or(str_at(component, "/cpe"))
                .unwrap_or(bom_ref);
            refs.insert(bom_ref.to_string(), identity.to_string());
        }
        collect_components(component, refs);
    }
}

pub fn parse(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            parsed.error(origin, None, format!("invalid JSON: {e}"));
            return parsed;
        }
    };
    if str_at(&value, "/bomFormat") != Some("CycloneDX") {
        parsed.error(origin, None, "bomFormat is not CycloneDX");
        return parsed;
    }
    let mut refs = BTreeMap::new();
    if let Some(component) = value.pointer("/metadata/component") {
        if let Some(bom_ref) = str_at(component, "/bom-ref") {
            let identity = str_at(component, "/purl")
                .or(str_at(component, "/cpe"))
                .unwrap_or(bom_ref);
            refs.insert(bom_ref.to_string(), identity.to_string());
        }
        collect_components(component, &mut refs);
    }
    collect_components(&value, &mut refs);
    let document = str_at(&value, "/serialNumber")
        .unwrap_or(origin)
        .to_string();
    let provider = str_at(&value, "/metadata/manufacturer/name")
        .or(str_at(&value, "/metadata/manufacture/name"))
        .or(str_at(&value, "/metadata/supplier/name"))
        .or(str_at(&value, "/metadata/authors/0/name"))
        .or(str_at(&value, "/metadata/component/publisher"))
        .or(str_at(&value, "/metadata/component/supplier/name"))
        .map(str::to_string)
        .unwrap_or_else(|| format!("unknown ({})", super::file_stem(origin)));
    let document_time = str_at(&value, "/metadata/timestamp").map(str::to_string);
    let Some(vulnerabilities) = value
        .get("vulnerabilities")
        .and_then(serde_json::Value::as_array)
    else {
        parsed.error(origin, None, "no `vulnerabilities` (not a VEX document)");
        return parsed;
    };
    for (index, vulnerability) in vulnerabilities.iter().enumerate() {
        let where_ = format!("{origin}#vulnerability{index}");
        let Some(id) = str_at(vulnerability, "/id") else {
            parsed.error(&where_, None, "vulnerability without id");
            continue;
        };
        let Some(state) = str_at(vulnerability, "/analysis/state") else {
            parsed.error(
                &where_,
                Some(id),
                "vulnerability without analysis.state (not a VEX statement)",
            );
            continue;
        };
        let status = match state {
            "not_affected" | "false_positive" => VexStatus::NotAffected,
            "exploitable" => VexStatus::Affected,
            "resolved" | "resolved_with_pedigree" => VexStatus::Fixed,
            "in_triage" => VexStatus::UnderInvestigation,
            other => {
                parsed.error(
                    &where_,
                    Some(id),
                    format!("unknown analysis.state {other:?}"),
                );
                continue;
            }
        };
        let justification =
            str_at(vulnerability, "/analysis/justification").map(justification_from_cyclonedx);
        let detail = str_at(vulnerability, "/analysis/detail").map(str::to_string);
        let responses = super::string_list(vulnerability.pointer("/analysis/response"));
        let action = match (&detail, responses.is_empty()) {
            (_, true) => None,
            (Some(detail), false) if status == VexStatus::Affected => {
                Some(format!("{}: {detail}", responses.join(", ")))
            }
            (_, false) => Some(responses.join(", ")),
        };
        let timestamp = str_at(vulnerability, "/analysis/lastUpdated")
            .or(str_at(vulnerability, "/analysis/firstIssued"))
            .or(str_at(vulnerability, "/updated"))
            .map(str::to_string)
            .or_else(|| document_time.clone());
        let affects = vulnerability
            .get("affects")
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        if affects.is_empty() {
            parsed.error(&where_, Some(id), "vulnerability without affects");
            continue;
        }
        for affect in affects {
            let Some(reference) = str_at(&affect, "/ref") else {
                parsed.error(&where_, Some(id), "affects entry without ref");
                continue;
            };
            let product = refs
                .get(reference)
                .cloned()
                .unwrap_or_else(|| reference.to_string());
            parsed.vex_claims.push(VexClaim {
                product,
                subcomponents: Vec::new(),
                vulnerability: id.to_string(),
                status,
                justification: justification.clone(),
                impact_statement: if status == VexStatus::NotAffected {
                    detail.clone()
                } else {
                    None
                },
                action_statement: action.clone(),
                provider: provider.clone(),
                timestamp: timestamp.clone(),
                format: VexFormat::CyclonedxVex,
                document: document.clone(),
            });
        }
    }
    parsed.keep_valid(origin)
}

#[cfg(test)]
mod tests {
    use crate::vex::{VexFormat, VexStatus};

    /// The CycloneDX VEX example (case 4, from the CycloneDX bom-examples): one analysed
    /// vulnerability becomes one normalised claim.
    #[test]
    fn case_4_becomes_a_not_affected_claim() {
        let bytes = include_bytes!("../../../tests/data/sources/cyclonedx-vex/case-4-vex.json");
        let parsed = super::parse("case-4-vex.json", bytes);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let claims = &parsed.vex_claims;
        assert_eq!(claims.len(), 1, "{claims:#?}");
        let claim = &claims[0];
        assert_eq!(claim.vulnerability, "CVE-2020-25649");
        assert_eq!(claim.status, VexStatus::NotAffected);
        assert_eq!(claim.format, VexFormat::CyclonedxVex);
        assert_eq!(claim.product, "acme-product");
        // CycloneDX's `code_not_reachable` is OpenVEX's `vulnerable_code_not_in_execute_path`.
        assert_eq!(
            claim.justification.as_deref(),
            Some("vulnerable_code_not_in_execute_path")
        );
        assert_eq!(
            claim.action_statement.as_deref(),
            Some("will_not_fix, update")
        );
        assert_eq!(claim.timestamp.as_deref(), Some("2022-01-13T00:00:00Z"));
    }
}
