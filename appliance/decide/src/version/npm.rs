//! npm versions and ranges with node-semver semantics, via the `nodejs-semver` crate.

use std::cmp::Ordering;

use super::{VersionError, VersionScheme};

/// node-semver ordering and `satisfies` (no `includePrerelease`, as the npm CLI and the Node.js
/// security-wg `vulnerable_versions` use it).
#[derive(Debug, Clone, Copy)]
pub struct Npm;

fn parse(version: &str) -> Result<nodejs_semver::Version, VersionError> {
    nodejs_semver::Version::parse(version.trim())
        .map_err(|_| VersionError::new("npm", version, "not a semantic version"))
}

impl VersionScheme for Npm {
    fn id(&self) -> &'static str {
        "npm"
    }

    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(parse(a)?.cmp(&parse(b)?))
    }

    fn satisfies(&self, version: &str, requirement: &str) -> Result<bool, VersionError> {
        let range = nodejs_semver::Range::parse(normalize_wildcards(requirement))
            .map_err(|_| VersionError::new("npm", requirement, "not an npm range"))?;
        Ok(range.satisfies(&parse(version)?))
    }
}

/// Rewrites the whole-wildcard forms that node-semver accepts and `nodejs-semver` does not:
/// `~x`, `^*`, `=X` (any version) and hyphen ranges whose upper end is a wildcard (`1.2 - x`,
/// which node-semver reads as `>=1.2.0`).
fn normalize_wildcards(requirement: &str) -> String {
    let is_wildcard = |token: &str| {
        let bare = token.trim_start_matches(['~', '^', '=', 'v']);
        matches!(bare, "x" | "X" | "*") && bare.len() < token.len()
    };
    let is_plain_wildcard = |token: &str| matches!(token, "x" | "X" | "*");
    requirement
        .split("||")
        .map(|alternative| {
            let tokens: Vec<&str> = alternative.split_whitespace().collect();
            if tokens.len() == 3 && tokens[1] == "-" && is_plain_wildcard(tokens[2]) {
                if is_plain_wildcard(tokens[0]) {
                    return "*".to_owned();
                }
                return format!(">={}", tokens[0]);
            }
            tokens
                .iter()
                .map(|token| if is_wildcard(token) { "*" } else { token })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(" || ")
}
