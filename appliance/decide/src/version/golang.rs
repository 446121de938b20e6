//! Go module versions (golang.org/x/mod/semver): `v` prefix, `vMAJOR[.MINOR]` shorthands,
//! pseudo-versions (which are SemVer pre-releases) and `+incompatible`.

use std::cmp::Ordering;

use super::{VersionError, VersionScheme};

/// Go module ordering.
#[derive(Debug, Clone, Copy)]
pub struct Go;

/// Canonical form as `semver.Canonical` gives it, without the `v`; shorthands are only allowed
/// without pre-release or build parts, as in Go.
fn canonical(version: &str) -> Result<semver::Version, VersionError> {
    let error = |reason: &str| VersionError::new("go", version, reason);
    let text = version.trim();
    // OSV records of the Go database write versions without the `v`; accept both.
    let text = text.strip_prefix('v').unwrap_or(text);
    let core_end = text.find(['-', '+']).unwrap_or(text.len());
    let (core, tail) = text.split_at(core_end);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.iter().any(|p| {
        p.is_empty()
            || !p.bytes().all(|b| b.is_ascii_digit())
            || (p.len() > 1 && p.starts_with('0'))
    }) {
        return Err(error("not a Go module version"));
    }
    let full = match parts.len() {
        3 => text.to_owned(),
        1 | 2 if tail.is_empty() => {
            let mut padded = core.to_owned();
            for _ in parts.len()..3 {
                padded.push_str(".0");
            }
            padded
        }
        _ => return Err(error("not a Go module version")),
    };
    semver::Version::parse(&full).map_err(|e| VersionError::new("go", version, e.to_string()))
}

impl VersionScheme for Go {
    fn id(&self) -> &'static str {
        "go"
    }

    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(super::cargo::precedence(&canonical(a)?, &canonical(b)?))
    }
}
