//! NuGet package versions (NuGet.Versioning `VersionComparer.Default`): up to four numeric parts,
//! SemVer 2.0 pre-release labels compared case-insensitively, build metadata ignored.

use std::cmp::Ordering;

use super::{VersionError, VersionScheme, compare_digit_runs};

/// NuGet ordering.
#[derive(Debug, Clone, Copy)]
pub struct NuGet;

struct Parsed<'a> {
    numbers: [&'a str; 4],
    labels: Vec<&'a str>,
}

fn parse(version: &str) -> Result<Parsed<'_>, VersionError> {
    let error = |reason: &str| VersionError::new("nuget", version, reason);
    let text = version.trim();
    let text = text.split_once('+').map_or(text, |(before, _)| before);
    let (core, release) = match text.split_once('-') {
        Some((core, release)) => (core, Some(release)),
        None => (text, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return Err(error("expected one to four numeric parts"));
    }
    let mut numbers = ["0"; 4];
    for (slot, part) in numbers.iter_mut().zip(&parts) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error("a version part is not a number"));
        }
        *slot = part;
    }
    let labels = match release {
        Some(release) => {
            let labels: Vec<&str> = release.split('.').collect();
            if labels
                .iter()
                .any(|l| l.is_empty() || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            {
                return Err(error("bad pre-release label"));
            }
            labels
        }
        None => Vec::new(),
    };
    Ok(Parsed { numbers, labels })
}

fn compare_label(a: &str, b: &str) -> Ordering {
    let numeric_a = a.bytes().all(|c| c.is_ascii_digit());
    let numeric_b = b.bytes().all(|c| c.is_ascii_digit());
    match (numeric_a, numeric_b) {
        (true, true) => compare_digit_runs(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
    }
}

impl VersionScheme for NuGet {
    fn id(&self) -> &'static str {
        "nuget"
    }

    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        let (a, b) = (parse(a)?, parse(b)?);
        for (x, y) in a.numbers.iter().zip(&b.numbers) {
            let ordering = compare_digit_runs(x, y);
            if ordering != Ordering::Equal {
                return Ok(ordering);
            }
        }
        Ok(match (a.labels.is_empty(), b.labels.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (x, y) in a.labels.iter().zip(&b.labels) {
                    let ordering = compare_label(x, y);
                    if ordering != Ordering::Equal {
                        return Ok(ordering);
                    }
                }
                a.labels.len().cmp(&b.labels.len())
            }
        })
    }
}
