//! FIRST EPSS scores: the daily CSV (`#model_version:…,score_date:…` then `cve,epss,percentile`)
//! and the `CVE;epss;percentile` form without header.

use super::Parsed;
use crate::model::{EpssEntry, check_probability, is_cve};

pub fn parse(origin: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            parsed.error(
                origin,
                None,
                "EPSS file is not UTF-8 text (gzip must be decompressed first)",
            );
            return parsed;
        }
    };
    let mut date: Option<String> = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(position) = comment.find("score_date:") {
                let value = &comment[position + "score_date:".len()..];
                let value = value.split(',').next().unwrap_or("").trim();
                date = Some(value.get(..10).unwrap_or(value).to_string());
            }
            continue;
        }
        if line.eq_ignore_ascii_case("cve,epss,percentile") {
            continue;
        }
        let separator = if line.contains(';') { ';' } else { ',' };
        let fields: Vec<&str> = line.split(separator).map(str::trim).collect();
        let where_ = format!("{origin}:{}", number + 1);
        let [cve, score, percentile] = fields.as_slice() else {
            parsed.error(
                &where_,
                None,
                format!("expected 3 fields, found {}", fields.len()),
            );
            continue;
        };
        if !is_cve(cve) {
            parsed.error(&where_, Some(cve), "not a CVE id");
            continue;
        }
        let (Ok(score), Ok(percentile)) = (score.parse::<f64>(), percentile.parse::<f64>()) else {
            parsed.error(&where_, Some(cve), "score or percentile is not a number");
            continue;
        };
        if let Err(reason) = check_probability(cve, score, percentile) {
            parsed.error(&where_, Some(cve), reason);
            continue;
        }
        parsed.epss.push(EpssEntry {
            cve: (*cve).into(),
            score,
            percentile,
            date: date.clone(),
        });
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_and_nan_is_refused() {
        let daily = "#model_version:v2025.03.14,score_date:2025-08-20T12:55:00Z\ncve,epss,percentile\nCVE-2021-44228,0.94358,0.99961\n";
        let parsed = parse("d.csv", daily.as_bytes());
        assert_eq!(parsed.epss.len(), 1);
        assert_eq!(parsed.epss[0].date.as_deref(), Some("2025-08-20"));
        let semi =
            "CVE-2021-44228;0.999990000;1.000000000\nCVE-2021-1;NaN;0.5\nCVE-2021-44229;2;0.5\n";
        let parsed = parse("s.csv", semi.as_bytes());
        assert_eq!(parsed.epss.len(), 1);
        assert_eq!(parsed.errors.len(), 2);
    }
}
