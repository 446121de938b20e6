//! CISA Known Exploited Vulnerabilities catalog JSON.

use super::{Parsed, str_at};
use crate::model::{KevEntry, is_cve};

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
            "no `vulnerabilities` array (expected the KEV catalog)",
        );
        return parsed;
    };
    for (index, item) in items.iter().enumerate() {
        let cve = str_at(item, "/cveID");
        match (cve, str_at(item, "/dateAdded")) {
            (Some(cve), Some(date_added)) if is_cve(cve) => parsed.kev.push(KevEntry {
                cve: cve.into(),
                date_added: date_added.into(),
                due_date: str_at(item, "/dueDate").map(str::to_string),
                ransomware: str_at(item, "/knownRansomwareCampaignUse").map(str::to_string),
                vendor: str_at(item, "/vendorProject").map(str::to_string),
                product: str_at(item, "/product").map(str::to_string),
                name: str_at(item, "/vulnerabilityName").map(str::to_string),
            }),
            _ => parsed.error(
                &format!("{origin}#{index}"),
                cve,
                "entry needs a CVE id in cveID and a dateAdded",
            ),
        }
    }
    parsed
}
