//! Python package versions (PEP 440), via `pep440_rs`.

use std::cmp::Ordering;
use std::str::FromStr;

use super::{VersionError, VersionScheme};

/// PEP 440 ordering, as `packaging.version.Version` orders.
#[derive(Debug, Clone, Copy)]
pub struct Pep440;

fn parse(version: &str) -> Result<pep440_rs::Version, VersionError> {
    pep440_rs::Version::from_str(version.trim())
        .map_err(|e| VersionError::new("pep440", version, e.to_string()))
}

impl VersionScheme for Pep440 {
    fn id(&self) -> &'static str {
        "pep440"
    }

    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(parse(a)?.cmp(&parse(b)?))
    }
}
