//! NVD CVE API 2.0 JSON (`{"format":"NVD_CVE","version":"2.0","vulnerabilities":[{"cve":{…}}]}`).

use super::{Parsed, str_at};
use crate::model::{Advisory, Affected, Range, RangeEvent, RangeKind, Reference, Severity};

pub fn parse(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            parsed.error(origin, None, format!("invalid JSON: {e}"));
            return parsed;
        }
    };
    let Some(items) = value
        .get("vulnerabilities")
        .and_then(serde_json::Value::as_array)
    else {
        parsed.error(
            origin,
            None,
            "no `vulnerabilities` array (expected NVD CVE API 2.0)",
        );
        return parsed;
    };
    for (index, item) in items.iter().enumerate() {
        let Some(cve) = item.get("cve") else {
            parsed.error(
                &format!("{origin}#{index}"),
                None,
                "entry without `cve` object",
            );
            continue;
        };
        match convert(cve) {
            Ok(advisory) => parsed.advisories.push(advisory),
            Err(reason) => parsed.error(&format!("{origin}#{index}"), str_at(cve, "/id"), reason),
        }
    }
    parsed.keep_valid(origin)
}

fn convert(cve: &serde_json::Value) -> Result<Advisory, String> {
    let id = str_at(cve, "/id").ok_or("cve without id")?;
    let source = format!("nvd:{id}");
    let mut advisory = Advisory::new(id, &source);
    advisory.published = str_at(cve, "/published").map(str::to_string);
    advisory.modified = str_at(cve, "/lastModified").map(str::to_string);
    if str_at(cve, "/vulnStatus") == Some("Rejected") {
        advisory.withdrawn = advisory
            .modified
            .clone()
            .or_else(|| Some("rejected".into()));
    }
    if let Some(descriptions) = cve
        .get("descriptions")
        .and_then(serde_json::Value::as_array)
    {
        advisory.details = descriptions
            .iter()
            .find(|d| d.get("lang").and_then(serde_json::Value::as_str) == Some("en"))
            .and_then(|d| str_at(d, "/value"))
            .map(str::to_string);
    }
    for (key, kind) in [
        ("cvssMetricV40", "CVSS_V4"),
        ("cvssMetricV31", "CVSS_V3"),
        ("cvssMetricV30", "CVSS_V3"),
        ("cvssMetricV2", "CVSS_V2"),
    ] {
        for metric in cve
            .pointer(&format!("/metrics/{key}"))
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            let vector = str_at(metric, "/cvssData/vectorString")
                .ok_or_else(|| format!("{key} without vectorString"))?;
            let score = metric
                .pointer("/cvssData/baseScore")
                .and_then(serde_json::Value::as_f64);
            let by = str_at(metric, "/source").unwrap_or("nvd");
            advisory.severities.push(Severity {
                kind: kind.into(),
                vector: vector.into(),
                score,
                source: format!("{source} ({by})"),
            });
        }
    }
    for reference in cve
        .get("references")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(url) = str_at(reference, "/url") {
            advisory.references.push(Reference {
                kind: "WEB".into(),
                url: url.into(),
                source: source.clone(),
            });
        }
    }
    for configuration in cve
        .get("configurations")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        for node in configuration
            .get("nodes")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            for cpe_match in node
                .get("cpeMatch")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
            {
                if cpe_match
                    .get("vulnerable")
                    .and_then(serde_json::Value::as_bool)
                    != Some(true)
                {
                    continue;
                }
                let criteria = str_at(cpe_match, "/criteria").ok_or("cpeMatch without criteria")?;
                let mut events = Vec::new();
                let mut fixed = Vec::new();
                if let Some(v) = str_at(cpe_match, "/versionStartIncluding") {
                    events.push(RangeEvent::Introduced(v.into()));
                }
                if let Some(v) = str_at(cpe_match, "/versionStartExcluding") {
                    // OSV events cannot say "after X"; the limit event marks the excluded bound.
                    events.push(RangeEvent::Limit(v.into()));
                }
                if let Some(v) = str_at(cpe_match, "/versionEndExcluding") {
                    events.push(RangeEvent::Fixed(v.into()));
                    fixed.push(v.to_string());
                }
                if let Some(v) = str_at(cpe_match, "/versionEndIncluding") {
                    events.push(RangeEvent::LastAffected(v.into()));
                }
                advisory.affected.push(Affected {
                    ecosystem: "CPE".into(),
                    package: criteria.into(),
                    purl: None,
                    ranges: if events.is_empty() {
                        Vec::new()
                    } else {
                        vec![Range {
                            kind: RangeKind::Cpe,
                            events,
                            repo: None,
                        }]
                    },
                    requirements: Vec::new(),
                    versions: Vec::new(),
                    fixed,
                    distro: Vec::new(),
                    source: source.clone(),
                });
            }
        }
    }
    Ok(advisory)
}
