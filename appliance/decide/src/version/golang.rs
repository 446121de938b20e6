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
    let mut count = 0;
    for part in core.split('.') {
        count += 1;
        if part.is_empty()
            || !part.bytes().all(|b| b.is_ascii_digit())
            || (part.len() > 1 && part.starts_with('0'))
        {
            return Err(error("not a Go module version"));
        }
    }
    if count == 3 {
        // The common case: already canonical apart from the `v`; no copy needed.
        return semver::Version::parse(text)
            .map_err(|e| VersionError::new("go", version, e.to_string()));
    }
    let full = match count {
        1 | 2 if tail.is_empty() => {
            let mut padded = core.to_owned();
            for _ in count..3 {
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
