//! Version ordering per ecosystem: one trait, one file per scheme, one table that lists them.
//!
//! Each scheme compares two version strings the way its ecosystem's own tool does (dpkg, rpm,
//! apk-tools, node-semver, Cargo, Go, PEP 440, Maven, NuGet) and is tested against that tool's
//! own reference cases in `tests/data/decide/versions/`.

use std::cmp::Ordering;

mod apk;
mod cargo;
pub(crate) mod dpkg;
mod golang;
mod maven;
mod npm;
mod nuget;
mod pep440;
mod rpm;

pub use apk::Apk;
pub use cargo::{Cargo, SemVer};
pub use dpkg::Dpkg;
pub use golang::Go;
pub use maven::Maven;
pub use npm::Npm;
pub use nuget::NuGet;
pub use pep440::Pep440;
pub use rpm::Rpm;

/// A version string that a scheme cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scheme} version {version:?}: {reason}")]
pub struct VersionError {
    /// The scheme's id (`dpkg`, `npm`, ...).
    pub scheme: &'static str,
    /// The version text as given.
    pub version: String,
    /// Why it could not be read.
    pub reason: String,
}

impl VersionError {
    pub(crate) fn new(scheme: &'static str, version: &str, reason: impl Into<String>) -> Self {
        Self {
            scheme,
            version: version.to_owned(),
            reason: reason.into(),
        }
    }
}

/// How one ecosystem orders its versions.
///
/// The required surface is one method; requirement syntaxes (npm ranges, Cargo requirements)
/// are optional and default to "not supported".
pub trait VersionScheme: Send + Sync {
    /// Stable id of the scheme (`dpkg`, `rpm`, `apk`, `npm`, `cargo`, `semver`, `go`, `pep440`,
    /// `maven`, `nuget`).
    fn id(&self) -> &'static str;

    /// Orders `a` against `b`; an error names the version that the scheme cannot read.
    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError>;

    /// Checks that `version` is a version of this scheme.
    fn validate(&self, version: &str) -> Result<(), VersionError> {
        self.compare(version, version).map(|_| ())
    }

    /// Whether `version` satisfies `requirement` in the scheme's native requirement syntax.
    fn satisfies(&self, version: &str, requirement: &str) -> Result<bool, VersionError> {
        let _ = version;
        Err(VersionError::new(
            self.id(),
            requirement,
            "this scheme has no requirement syntax",
        ))
    }
}

/// Every scheme, in one table. Ids are unique (tested).
pub static SCHEMES: &[&dyn VersionScheme] = &[
    &Dpkg, &Rpm, &Apk, &Npm, &Cargo, &SemVer, &Go, &Pep440, &Maven, &NuGet,
];

/// The scheme with this id.
pub fn scheme(id: &str) -> Option<&'static dyn VersionScheme> {
    SCHEMES.iter().copied().find(|scheme| scheme.id() == id)
}

/// The scheme that orders versions of an OSV ecosystem (`Debian:12`, `Alpine:v3.20`, `PyPI` ...).
///
/// Ecosystems may carry a release suffix after `:`; only the part before it chooses the scheme.
pub fn scheme_for_ecosystem(ecosystem: &str) -> Option<&'static dyn VersionScheme> {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    let id = match base {
        "Debian" | "Ubuntu" => "dpkg",
        "Alpine" | "Wolfi" | "Chainguard" => "apk",
        "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia" | "RPM" => "rpm",
        "npm" | "Node.js" => "npm",
        "crates.io" => "cargo",
        "Go" => "go",
        "PyPI" => "pep440",
        "Maven" => "maven",
        "NuGet" => "nuget",
        _ => return None,
    };
    scheme(id)
}

/// Splits a run of ASCII digits off the front of `text`.
pub(crate) fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Compares two runs of ASCII digits numerically, whatever their length.
pub(crate) fn compare_digit_runs(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Compares two versions with every scheme and checks a requirement with the schemes that have
/// one; the input is split at NUL bytes into `a`, `b` and a requirement. For fuzzing: it must
/// never panic, whatever the bytes. Returns how many comparisons succeeded.
pub fn compare_all_schemes(bytes: &[u8]) -> usize {
    let text = String::from_utf8_lossy(bytes);
    let mut parts = text.split('\0');
    let a = parts.next().unwrap_or("");
    let b = parts.next().unwrap_or("");
    let requirement = parts.next().unwrap_or("");
    let mut succeeded = 0;
    for scheme in SCHEMES {
        if scheme.compare(a, b).is_ok() {
            succeeded += 1;
        }
        if scheme.satisfies(a, requirement).is_ok() {
            succeeded += 1;
        }
    }
    succeeded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_ids_are_unique() {
        let mut ids: Vec<&str> = SCHEMES.iter().map(|s| s.id()).collect();
        let before = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), before);
    }

    #[test]
    fn odd_inputs_do_not_panic_any_scheme() {
        for input in [
            &b""[..],
            b"\0",
            b"1.0\0\xff\xfe",
            b"-\0-\0||",
            b"0:\0:\0^",
            b"1-\x00-1\0>=1 <2",
            "\u{0668}.\u{00e9}\0\u{1d7e4}".as_bytes(),
            b"1.0.0.0.0.0-a.b.c.0001\0999999999999999999999999999.1",
            b"~~~^^^\0___+++",
            b"v\0v1.2.3-\0^x",
        ] {
            compare_all_schemes(input);
        }
    }

    /// A cheap deterministic stand-in for the fuzz target: many short strings over the
    /// characters the schemes treat specially must never panic.
    #[test]
    fn generated_versions_do_not_panic_any_scheme() {
        let alphabet: Vec<char> = "0123456789.-_~^+:vxrpabcé |<>=*".chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut text = String::new();
            let length = next() % 14;
            for _ in 0..length {
                let pick = next() % (alphabet.len() as u64 + 2);
                match alphabet.get(pick as usize) {
                    Some(c) => text.push(*c),
                    None => text.push('\0'),
                }
            }
            compare_all_schemes(text.as_bytes());
        }
    }

    #[test]
    fn ecosystems_choose_their_scheme() {
        assert_eq!(
            scheme_for_ecosystem("Debian:12").map(|s| s.id()),
            Some("dpkg")
        );
        assert_eq!(
            scheme_for_ecosystem("Alpine:v3.20").map(|s| s.id()),
            Some("apk")
        );
        assert_eq!(scheme_for_ecosystem("PyPI").map(|s| s.id()), Some("pep440"));
        assert_eq!(
            scheme_for_ecosystem("crates.io").map(|s| s.id()),
            Some("cargo")
        );
        assert!(scheme_for_ecosystem("Hackage").is_none());
    }
}
