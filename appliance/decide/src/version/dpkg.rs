//! Debian package versions (`[epoch:]upstream[-revision]`, `~` before everything) via `debversion`.

use std::cmp::Ordering;

use super::{VersionError, VersionScheme};

/// dpkg ordering, as `dpkg --compare-versions` does it.
#[derive(Debug, Clone, Copy)]
pub struct Dpkg;

pub(crate) fn parse(version: &str) -> Result<debversion::Version, VersionError> {
    let trimmed = version.trim();
    if trimmed.is_empty() {
        return Err(VersionError::new("dpkg", version, "empty version"));
    }
    // dpkg accepts an empty revision after a trailing hyphen ("0foo-" == "0foo").
    let trimmed = trimmed.strip_suffix('-').unwrap_or(trimmed);
    if let Some((epoch, _)) = trimmed.split_once(':')
        && (epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(VersionError::new("dpkg", version, "epoch is not a number"));
    }
    let upstream = trimmed.split_once(':').map_or(trimmed, |(_, rest)| rest);
    if upstream.is_empty() {
        return Err(VersionError::new("dpkg", version, "empty upstream version"));
    }
    if let Some(bad) = trimmed
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | '-' | ':')))
    {
        return Err(VersionError::new(
            "dpkg",
            version,
            format!("invalid character {bad:?}"),
        ));
    }
    // Split as dpkg's parseversion does (epoch up to the first colon, revision after the last
    // hyphen) and let `debversion` order the parts; this avoids its regex on the hot path.
    let (epoch, rest) = match trimmed.split_once(':') {
        Some((epoch, rest)) => {
            let epoch = epoch
                .parse::<u32>()
                .map_err(|e| VersionError::new("dpkg", version, format!("epoch: {e}")))?;
            (Some(epoch), rest)
        }
        None => (None, trimmed),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => (upstream, Some(revision.to_owned())),
        None => (rest, None),
    };
    Ok(debversion::Version {
        epoch,
        upstream_version: upstream.to_owned(),
        debian_revision: revision,
    })
}

impl VersionScheme for Dpkg {
    fn id(&self) -> &'static str {
        "dpkg"
    }

    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(parse(a)?.cmp(&parse(b)?))
    }
}
