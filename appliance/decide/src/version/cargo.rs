//! SemVer 2.0 ordering (OSV `SEMVER` ranges) and Cargo requirements, via the `semver` crate.

use std::cmp::Ordering;

use super::{VersionError, VersionScheme};

/// crates.io: SemVer 2.0 ordering and Cargo's `VersionReq` syntax.
#[derive(Debug, Clone, Copy)]
pub struct Cargo;

/// Plain SemVer 2.0 ordering for OSV `SEMVER` ranges of any ecosystem; a leading `v` is allowed.
#[derive(Debug, Clone, Copy)]
pub struct SemVer;

pub(crate) fn parse(scheme: &'static str, version: &str) -> Result<semver::Version, VersionError> {
    let text = version.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    semver::Version::parse(text).map_err(|e| VersionError::new(scheme, version, e.to_string()))
}

/// SemVer precedence: build metadata does not take part (the crate's `Ord` uses it as a tie-break).
pub(crate) fn precedence(a: &semver::Version, b: &semver::Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

impl VersionScheme for Cargo {
    fn id(&self) -> &'static str {
        "cargo"
    }

    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(precedence(&parse("cargo", a)?, &parse("cargo", b)?))
    }

    fn satisfies(&self, version: &str, requirement: &str) -> Result<bool, VersionError> {
        let requirement_parsed = semver::VersionReq::parse(requirement)
            .map_err(|e| VersionError::new("cargo", requirement, e.to_string()))?;
        Ok(requirement_parsed.matches(&parse("cargo", version)?))
    }
}

impl VersionScheme for SemVer {
    fn id(&self) -> &'static str {
        "semver"
    }

    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(precedence(&parse("semver", a)?, &parse("semver", b)?))
    }
}
