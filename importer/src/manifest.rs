//! The kit manifest (`manifest.json`) and the checked types it is made of: paths and digests.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::KitError;

/// Format marker written into every manifest; the verifier refuses any other value.
pub const KIT_FORMAT: &str = "stella-kit/1";
/// Name of the manifest inside the kit; it is the first tar entry.
pub const MANIFEST_PATH: &str = "manifest.json";
/// Name of the detached minisign signature of the manifest inside the kit; the second tar entry.
pub const MANIFEST_SIG_PATH: &str = "manifest.json.minisig";

/// A SHA-256 digest: always exactly 64 lower-case hex characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn of(bytes: &[u8]) -> Self {
        Sha256Hex(hex::encode(Sha256::digest(bytes)))
    }

    pub fn from_hasher(hasher: Sha256) -> Self {
        Sha256Hex(hex::encode(hasher.finalize()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let hex_part = text.strip_prefix("sha256:").unwrap_or(text);
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!("{text:?} is not 64 lower-case hex characters"));
        }
        Ok(Sha256Hex(hex_part.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

impl Serialize for Sha256Hex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sha256Hex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Sha256Hex::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A path inside a kit: relative, `/`-separated, components of `[A-Za-z0-9._-]`, no `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KitPath(String);

impl KitPath {
    pub fn parse(text: &str) -> Result<Self, KitError> {
        let unsafe_path = |reason: &str| KitError::UnsafePath {
            path: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(unsafe_path("empty path"));
        }
        if text.len() > 200 {
            return Err(unsafe_path("longer than 200 bytes"));
        }
        if text.starts_with('/') {
            return Err(unsafe_path("absolute path"));
        }
        for component in text.split('/') {
            match component {
                "" => return Err(unsafe_path("empty path component")),
                "." => return Err(unsafe_path("`.` component")),
                ".." => return Err(unsafe_path("`..` component")),
                _ => {}
            }
            if !component
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(unsafe_path("characters outside [A-Za-z0-9._-]"));
            }
        }
        Ok(KitPath(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KitPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for KitPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KitPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        KitPath::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Full kits carry the whole state; delta kits carry changes against a named base kit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KitKind {
    Full,
    Delta,
}

/// What a content file holds; decides how its records are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    Advisories,
    VexClaims,
    Kev,
    Epss,
    Licences,
    Revocations,
    /// Signed kit-key rotation records.
    KeyUpdates,
    /// Delta kits only: keys of records removed since the base.
    Removed,
}

/// The base of a delta kit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitBase {
    pub kit_id: String,
    pub sequence: u64,
    pub manifest_sha256: Sha256Hex,
}

/// One content file of the kit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: KitPath,
    pub kind: ContentKind,
    pub sha256: Sha256Hex,
    pub size: u64,
    pub records: u64,
}

/// Records read and dropped per source, kept in the manifest for the import report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSummary {
    pub kind: String,
    /// The source's file name or URL (no directories of the build machine).
    pub name: String,
    pub sha256: Sha256Hex,
    pub records: u64,
    pub dropped: u64,
}

/// `manifest.json`: what the kit is, and every file in it with its hash and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub kit_id: String,
    pub channel: String,
    pub sequence: u64,
    pub kind: KitKind,
    /// RFC 3339 UTC, second precision.
    pub created: String,
    pub expires: String,
    /// Manifest digest of the previous kit on this channel (the base, for delta kits).
    #[serde(default)]
    pub previous_manifest_sha256: Option<Sha256Hex>,
    #[serde(default)]
    pub base: Option<KitBase>,
    /// Record counts per content kind.
    pub counts: BTreeMap<ContentKind, u64>,
    pub sources: Vec<SourceSummary>,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Parses `manifest.json` bytes (no signature check; see `verify_kit`) and validates it.
    pub fn parse(bytes: &[u8]) -> Result<Self, KitError> {
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| KitError::Manifest(format!("manifest.json: {e}")))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks the manifest's own consistency (format, channel name, unique paths, delta has a base).
    pub fn validate(&self) -> Result<(), KitError> {
        let bad = |reason: String| KitError::Manifest(reason);
        if self.format != KIT_FORMAT {
            return Err(bad(format!(
                "format is {:?}, expected {KIT_FORMAT:?}",
                self.format
            )));
        }
        if self.channel.is_empty()
            || self.channel.len() > 64
            || !self
                .channel
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(bad(format!(
                "channel {:?} is not a short [A-Za-z0-9._-] name",
                self.channel
            )));
        }
        let created = parse_time(&self.created).map_err(|e| bad(format!("created: {e}")))?;
        let expires = parse_time(&self.expires).map_err(|e| bad(format!("expires: {e}")))?;
        if expires <= created {
            return Err(bad(format!(
                "expires {} is not after created {}",
                self.expires, self.created
            )));
        }
        match (self.kind, &self.base) {
            (KitKind::Delta, None) => return Err(bad("delta kit without base".into())),
            (KitKind::Full, Some(_)) => return Err(bad("full kit with a base".into())),
            (KitKind::Delta, Some(base)) => {
                if base.sequence >= self.sequence {
                    return Err(bad(format!(
                        "base sequence {} is not below {}",
                        base.sequence, self.sequence
                    )));
                }
                if self.previous_manifest_sha256.as_ref() != Some(&base.manifest_sha256) {
                    return Err(bad(
                        "delta kit's previous digest differs from its base digest".into(),
                    ));
                }
            }
            (KitKind::Full, None) => {}
        }
        let mut seen = std::collections::BTreeSet::new();
        for file in &self.files {
            if file.path.as_str() == MANIFEST_PATH || file.path.as_str() == MANIFEST_SIG_PATH {
                return Err(bad(format!(
                    "{} may not be listed as a content file",
                    file.path
                )));
            }
            if !seen.insert(file.path.clone()) {
                return Err(bad(format!("{} is listed twice", file.path)));
            }
            if file.kind == ContentKind::Removed && self.kind == KitKind::Full {
                return Err(bad("a full kit cannot carry removals".into()));
            }
        }
        Ok(())
    }

    /// Expiry instant.
    pub fn expires_at(&self) -> Result<time::OffsetDateTime, KitError> {
        parse_time(&self.expires).map_err(|e| KitError::Manifest(format!("expires: {e}")))
    }
}

/// Parses RFC 3339.
pub fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{text:?} is not RFC 3339: {e}"))
}

/// Formats as RFC 3339 UTC with second precision (`2026-01-02T03:04:05Z`).
pub fn format_time(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kit_paths_reject_escapes() {
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "",
            "a/b c",
        ] {
            assert!(KitPath::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            KitPath::parse("advisories/0001.json").unwrap().as_str(),
            "advisories/0001.json"
        );
    }

    #[test]
    fn digests_are_strict() {
        assert!(Sha256Hex::parse(&"A".repeat(64)).is_err());
        assert!(Sha256Hex::parse(&"a".repeat(63)).is_err());
        assert_eq!(
            Sha256Hex::parse(&format!("sha256:{}", "a".repeat(64)))
                .unwrap()
                .as_str(),
            "a".repeat(64)
        );
    }

    #[test]
    fn time_round_trips_in_utc() {
        let at = parse_time("2026-01-02T05:04:05+02:00").unwrap();
        assert_eq!(format_time(at), "2026-01-02T03:04:05Z");
    }
}
