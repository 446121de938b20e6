//! Severity of an advisory: the highest CVSS base score among its vectors, and a qualitative level.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use stella_importer::model::Advisory;

/// Qualitative severity, ordered from lowest to highest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Unknown,
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Unknown,
        Level::None,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::None => "none",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// The CVSS v3/v4 qualitative band of a base score.
    pub fn from_score(score: f64) -> Level {
        if score >= 9.0 {
            Level::Critical
        } else if score >= 7.0 {
            Level::High
        } else if score >= 4.0 {
            Level::Medium
        } else if score > 0.0 {
            Level::Low
        } else {
            Level::None
        }
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "unknown" => Level::Unknown,
            "none" | "negligible" => Level::None,
            "low" => Level::Low,
            "medium" | "moderate" => Level::Medium,
            "high" | "important" => Level::High,
            "critical" => Level::Critical,
            other => {
                return Err(format!(
                    "unknown severity {other:?}; expected critical, high, medium, low, none or unknown"
                ));
            }
        })
    }
}

/// The severity recorded on a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeverityInfo {
    /// The highest of the CVSS band and the qualitative ratings.
    pub level: Level,
    /// The highest CVSS base score, if any vector or score was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<f64>,
    /// The vector that gave the highest score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
}

/// Computes the severity of an advisory from its `severities` list.
pub fn of_advisory(advisory: &Advisory) -> SeverityInfo {
    of_advisory_cached(advisory, &mut std::collections::HashMap::new())
}

/// [`of_advisory`] with a cache of base scores by vector: many advisories share a vector, and
/// scoring one is far slower than looking it up.
pub fn of_advisory_cached(
    advisory: &Advisory,
    scores: &mut std::collections::HashMap<String, Option<f64>>,
) -> SeverityInfo {
    let mut best: Option<(f64, String)> = None;
    let mut level = Level::Unknown;
    for severity in &advisory.severities {
        if severity.kind.eq_ignore_ascii_case("TEXT") {
            if let Ok(text_level) = severity.vector.parse::<Level>() {
                level = level.max(text_level);
            }
            continue;
        }
        let score = match severity.score {
            Some(score) => Some(score),
            None => match scores.get(&severity.vector) {
                Some(cached) => *cached,
                None => {
                    let scored = cvss::Cvss::from_str(&severity.vector)
                        .ok()
                        .map(|c| c.score());
                    scores.insert(severity.vector.clone(), scored);
                    scored
                }
            },
        };
        if let Some(score) = score
            && best.as_ref().is_none_or(|(b, _)| score > *b)
        {
            best = Some((score, severity.vector.clone()));
        }
    }
    if let Some((score, _)) = &best {
        level = level.max(Level::from_score(*score));
    }
    SeverityInfo {
        level,
        cvss: best.as_ref().map(|(s, _)| *s),
        vector: best.map(|(_, v)| v),
    }
}

#[cfg(test)]
mod tests {
    use stella_importer::model::Severity;

    use super::*;

    fn severity(kind: &str, vector: &str, score: Option<f64>) -> Severity {
        Severity {
            kind: kind.into(),
            vector: vector.into(),
            score,
            source: "test:1".into(),
        }
    }

    #[test]
    fn highest_cvss_is_scored_from_its_vector_and_banded() {
        let mut advisory = Advisory::new("CVE-2021-44228", "test:1");
        advisory.severities = vec![
            severity(
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
                None,
            ),
            severity(
                "CVSS_V3",
                "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
                None,
            ),
            severity("TEXT", "moderate", None),
        ];
        let info = of_advisory(&advisory);
        assert_eq!(info.cvss, Some(10.0));
        assert_eq!(info.level, Level::Critical);
        assert!(info.vector.unwrap().contains("S:C"));
    }

    #[test]
    fn qualitative_rating_counts_when_it_is_higher() {
        let mut advisory = Advisory::new("GHSA-x", "test:1");
        advisory.severities = vec![
            severity(
                "CVSS_V3",
                "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
                None,
            ),
            severity("TEXT", "high", None),
        ];
        let info = of_advisory(&advisory);
        assert_eq!(info.level, Level::High);
        assert!(info.cvss.unwrap() < 4.0);
        assert_eq!(
            of_advisory(&Advisory::new("X", "t:1")).level,
            Level::Unknown
        );
    }
}
