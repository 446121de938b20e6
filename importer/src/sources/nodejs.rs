//! The Node.js security-wg database: npm ecosystem entries (`vuln/npm`), core entries
//! (`vuln/core`); dependency assessments (`vuln/deps`) are not advisories and are reported as dropped.

use super::{Parsed, cvss_kind, file_stem, lower_bound_version, str_at, string_list};
use crate::model::{
    Advisory, Affected, Reference, Requirement, RequirementMeaning, RequirementSyntax, Severity,
};

pub fn parse(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            parsed.error(origin, None, format!("invalid JSON: {e}"));
            return parsed;
        }
    };
    if value.get("module_name").is_some() {
        match npm_entry(&value) {
            Ok(advisory) => parsed.advisories.push(advisory),
            Err(reason) => parsed.error(
                origin,
                value.get("id").map(|id| id.to_string()).as_deref(),
                reason,
            ),
        }
    } else if value.get("vulnerable").is_some() {
        match core_entry(file_stem(origin), &value) {
            Ok(advisory) => parsed.advisories.push(advisory),
            Err(reason) => parsed.error(origin, None, reason),
        }
    } else if value.get("reason").is_some() {
        parsed.error(
            origin,
            None,
            "dependency assessment (vuln/deps), not an advisory",
        );
    } else {
        parsed.error(
            origin,
            None,
            "neither an npm entry (module_name) nor a core entry (vulnerable)",
        );
    }
    parsed.keep_valid(origin)
}

fn npm_entry(value: &serde_json::Value) -> Result<Advisory, String> {
    let number = value
        .get("id")
        .and_then(serde_json::Value::as_u64)
        .ok_or("npm entry without numeric id")?;
    let id = format!("NSWG-ECO-{number}");
    let source = format!("nodejs-security-wg:{id}");
    let module = str_at(value, "/module_name").ok_or("npm entry without module_name")?;
    let vulnerable =
        str_at(value, "/vulnerable_versions").ok_or("npm entry without vulnerable_versions")?;
    let mut advisory = Advisory::new(&id, &source);
    advisory.aliases.extend(string_list(value.get("cves")));
    advisory.summary = str_at(value, "/title").map(str::to_string);
    advisory.details = str_at(value, "/overview").map(str::to_string);
    advisory.published = str_at(value, "/publish_date")
        .or(str_at(value, "/created_at"))
        .map(str::to_string);
    advisory.modified = str_at(value, "/updated_at").map(str::to_string);
    if let Some(vector) = str_at(value, "/cvss_vector") {
        let score = value.get("cvss_score").and_then(serde_json::Value::as_f64);
        advisory.severities.push(Severity {
            kind: cvss_kind(vector).into(),
            vector: vector.into(),
            score,
            source: source.clone(),
        });
    }
    for url in string_list(value.get("references")) {
        advisory.references.push(Reference {
            kind: "WEB".into(),
            url,
            source: source.clone(),
        });
    }
    let mut requirements = vec![Requirement {
        meaning: RequirementMeaning::Vulnerable,
        syntax: RequirementSyntax::Npm,
        expression: vulnerable.into(),
    }];
    let mut fixed = Vec::new();
    if let Some(patched) = str_at(value, "/patched_versions") {
        fixed.extend(lower_bound_version(patched));
        requirements.push(Requirement {
            meaning: RequirementMeaning::Patched,
            syntax: RequirementSyntax::Npm,
            expression: patched.into(),
        });
    }
    advisory.affected.push(Affected {
        ecosystem: "npm".into(),
        package: module.into(),
        purl: Some(npm_purl(module)),
        ranges: Vec::new(),
        requirements,
        versions: Vec::new(),
        fixed,
        distro: Vec::new(),
        source,
    });
    Ok(advisory)
}

fn npm_purl(module: &str) -> String {
    match module
        .strip_prefix('@')
        .and_then(|rest| rest.split_once('/'))
    {
        Some((scope, name)) => format!("pkg:npm/%40{scope}/{name}"),
        None => format!("pkg:npm/{module}"),
    }
}

fn core_entry(stem: &str, value: &serde_json::Value) -> Result<Advisory, String> {
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("core entry file name {stem:?} is not a number"));
    }
    let id = format!("NSWG-COR-{stem}");
    let source = format!("nodejs-security-wg:{id}");
    let vulnerable = str_at(value, "/vulnerable").ok_or("core entry without vulnerable")?;
    let mut advisory = Advisory::new(&id, &source);
    advisory.aliases.extend(string_list(value.get("cve")));
    advisory.summary = str_at(value, "/description").map(str::to_string);
    advisory.details = str_at(value, "/overview").map(str::to_string);
    if let Some(severity) = str_at(value, "/severity") {
        advisory.severities.push(Severity {
            kind: "TEXT".into(),
            vector: severity.to_ascii_lowercase(),
            score: None,
            source: source.clone(),
        });
    }
    if let Some(url) = str_at(value, "/ref") {
        advisory.references.push(Reference {
            kind: "ADVISORY".into(),
            url: url.into(),
            source: source.clone(),
        });
    }
    let mut requirements = vec![Requirement {
        meaning: RequirementMeaning::Vulnerable,
        syntax: RequirementSyntax::Npm,
        expression: vulnerable.into(),
    }];
    if let Some(patched) = str_at(value, "/patched") {
        requirements.push(Requirement {
            meaning: RequirementMeaning::Patched,
            syntax: RequirementSyntax::Npm,
            expression: patched.into(),
        });
    }
    advisory.affected.push(Affected {
        ecosystem: "Node.js".into(),
        package: "node".into(),
        purl: None,
        ranges: Vec::new(),
        requirements,
        versions: Vec::new(),
        fixed: Vec::new(),
        distro: Vec::new(),
        source,
    });
    Ok(advisory)
}
