//! dpkg analyzer: `/var/lib/dpkg/status`, distroless `status.d/*`, and
//! `info/*.list` file ownership. Records the source package and version.

use super::{
    Analyzer, AnalyzerOutput, FileInfo, FoundComponent, OwnedFiles, PurlSpec, rfc822_fields,
};

/// Reads the dpkg database.
#[derive(Debug, Clone, Copy)]
pub struct DpkgAnalyzer;

/// One installed package from a dpkg status paragraph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgPackage {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: Option<String>,
    /// Source package name (from `Source`, else the package name).
    pub source_name: String,
    /// Source version (from `Source: name (version)`, else the package version).
    pub source_version: String,
    /// `Maintainer`.
    pub maintainer: Option<String>,
}

/// Result of parsing a status file: packages plus per-paragraph problems.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DpkgStatus {
    /// Installed packages, in file order.
    pub packages: Vec<DpkgPackage>,
    /// Paragraphs that could not be read, with the reason.
    pub problems: Vec<String>,
}

/// Parses a dpkg `status` file (or a distroless `status.d` entry). Only
/// packages whose `Status` says `installed` are returned; a `status.d` entry
/// has no `Status` field and counts as installed.
pub fn parse_status(bytes: &[u8]) -> DpkgStatus {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let mut status = DpkgStatus::default();
    for (index, paragraph) in text.split("\n\n").enumerate() {
        if paragraph.trim().is_empty() {
            continue;
        }
        let fields = rfc822_fields(paragraph);
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.trim().to_owned())
        };
        let Some(name) = get("Package").filter(|n| !n.is_empty()) else {
            status
                .problems
                .push(format!("paragraph {}: no Package field", index + 1));
            continue;
        };
        if let Some(state) = get("Status")
            && state.split_whitespace().nth(2) != Some("installed")
        {
            continue;
        }
        let Some(version) = get("Version").filter(|v| !v.is_empty()) else {
            status.problems.push(format!(
                "paragraph {} (package {name}): no Version field",
                index + 1
            ));
            continue;
        };
        let (source_name, source_version) = match get("Source") {
            Some(source) => match source.split_once('(') {
                Some((source_name, rest)) => (
                    source_name.trim().to_owned(),
                    rest.trim_end_matches(')').trim().to_owned(),
                ),
                None => (source.trim().to_owned(), version.clone()),
            },
            None => (name.clone(), version.clone()),
        };
        status.packages.push(DpkgPackage {
            name,
            version,
            architecture: get("Architecture"),
            source_name,
            source_version,
            maintainer: get("Maintainer"),
        });
    }
    status
}

/// Parses `info/NAME[:ARCH].list`: the owning package and its files (root-relative).
pub fn parse_list(path: &str, bytes: &[u8]) -> Option<OwnedFiles> {
    let file_name = path.rsplit('/').next()?.strip_suffix(".list")?;
    let package = file_name.split(':').next()?.to_owned();
    let text = String::from_utf8_lossy(bytes);
    let files = text
        .lines()
        .map(|l| l.trim().trim_start_matches('/'))
        .filter(|l| !l.is_empty() && *l != ".")
        .map(str::to_owned)
        .collect();
    Some(OwnedFiles { package, files })
}

impl Analyzer for DpkgAnalyzer {
    fn id(&self) -> &'static str {
        "dpkg"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        let path = file.path;
        path == "var/lib/dpkg/status"
            || (path.starts_with("var/lib/dpkg/status.d/") && !path.ends_with(".md5sums"))
            || (path.starts_with("var/lib/dpkg/info/") && path.ends_with(".list"))
    }
    fn analyze(&self, path: &str, bytes: &[u8]) -> AnalyzerOutput {
        if path.ends_with(".list") {
            return match parse_list(path, bytes) {
                Some(owned) => AnalyzerOutput {
                    owned_files: vec![owned],
                    ..AnalyzerOutput::default()
                },
                None => AnalyzerOutput::unknown("dpkg list file name has no package"),
            };
        }
        let status = parse_status(bytes);
        let mut output = AnalyzerOutput {
            unknowns: status.problems,
            ..AnalyzerOutput::default()
        };
        for package in status.packages {
            let mut purl = PurlSpec::new("deb", None, &package.name, Some(&package.version));
            if let Some(arch) = &package.architecture {
                purl = purl.qualifier("arch", arch);
            }
            if package.source_name != package.name || package.source_version != package.version {
                let upstream = if package.source_version == package.version {
                    package.source_name.clone()
                } else {
                    format!("{}@{}", package.source_name, package.source_version)
                };
                purl = purl.qualifier("upstream", &upstream);
            }
            let mut component =
                FoundComponent::new("deb", &package.name, &package.version, Some(purl));
            component
                .properties
                .insert("stella:sourcePackage".into(), package.source_name.clone());
            component.properties.insert(
                "stella:sourceVersion".into(),
                package.source_version.clone(),
            );
            if let Some(arch) = package.architecture {
                component
                    .properties
                    .insert("stella:architecture".into(), arch);
            }
            output.components.push(component);
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_installed_packages_and_sources() {
        let status = parse_status(
            b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nArchitecture: amd64\nSource: glibc\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
Package: libx\nStatus: install ok installed\nVersion: 1.0-1+b1\nSource: x (1.0-1)\nDescription: a\n multi-line\n\n\
Package: broken\nStatus: install ok installed\n",
        );
        assert_eq!(status.packages.len(), 2);
        assert_eq!(status.packages[0].source_name, "glibc");
        assert_eq!(status.packages[0].source_version, "2.36-9");
        assert_eq!(status.packages[1].source_version, "1.0-1");
        assert_eq!(status.problems.len(), 1);
        assert!(status.problems[0].contains("broken"));
    }

    #[test]
    fn list_names_the_package_without_arch() {
        let owned = parse_list(
            "var/lib/dpkg/info/libc6:amd64.list",
            b"/.\n/usr/lib/x86_64-linux-gnu/libc.so.6\n",
        )
        .unwrap();
        assert_eq!(owned.package, "libc6");
        assert_eq!(owned.files, vec!["usr/lib/x86_64-linux-gnu/libc.so.6"]);
    }
}
