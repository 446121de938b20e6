//! apk analyzer: Alpine's installed database `/lib/apk/db/installed`.

use super::{Analyzer, AnalyzerOutput, FileInfo, FoundComponent, OwnedFiles, PurlSpec};

/// Reads the apk database.
#[derive(Debug, Clone, Copy)]
pub struct ApkAnalyzer;

/// One package from `lib/apk/db/installed`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApkPackage {
    /// `P:`
    pub name: String,
    /// `V:`
    pub version: String,
    /// `A:`
    pub architecture: Option<String>,
    /// `L:`
    pub license: Option<String>,
    /// `o:` (origin, the source package).
    pub origin: Option<String>,
    /// Files from `F:` directory and `R:` file lines, root-relative.
    pub files: Vec<String>,
}

/// Parses the installed database; paragraphs without `P:` or `V:` are reported as problems.
pub fn parse_installed(bytes: &[u8]) -> (Vec<ApkPackage>, Vec<String>) {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let mut packages = Vec::new();
    let mut problems = Vec::new();
    for (index, paragraph) in text.split("\n\n").enumerate() {
        if paragraph.trim().is_empty() {
            continue;
        }
        let mut package = ApkPackage::default();
        let mut directory = String::new();
        for line in paragraph.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key {
                "P" => package.name = value.to_owned(),
                "V" => package.version = value.to_owned(),
                "A" => package.architecture = Some(value.to_owned()),
                "L" => package.license = Some(value.to_owned()),
                "o" => package.origin = Some(value.to_owned()),
                "F" => directory = value.trim_matches('/').to_owned(),
                "R" if !directory.is_empty() => package.files.push(format!("{directory}/{value}")),
                "R" => package.files.push(value.to_owned()),
                _ => {}
            }
        }
        if package.name.is_empty() || package.version.is_empty() {
            problems.push(format!("paragraph {}: missing P: or V:", index + 1));
            continue;
        }
        packages.push(package);
    }
    (packages, problems)
}

impl Analyzer for ApkAnalyzer {
    fn id(&self) -> &'static str {
        "apk"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        file.path == "lib/apk/db/installed"
    }
    fn analyze(&self, _path: &str, bytes: &[u8]) -> AnalyzerOutput {
        let (packages, problems) = parse_installed(bytes);
        let mut output = AnalyzerOutput {
            unknowns: problems,
            ..AnalyzerOutput::default()
        };
        for package in packages {
            let mut purl = PurlSpec::new("apk", None, &package.name, Some(&package.version));
            if let Some(arch) = &package.architecture {
                purl = purl.qualifier("arch", arch);
            }
            let mut component =
                FoundComponent::new("apk", &package.name, &package.version, Some(purl));
            if let Some(license) = &package.license {
                component.licenses.push(license.clone());
            }
            if let Some(origin) = &package.origin {
                component
                    .properties
                    .insert("stella:sourcePackage".into(), origin.clone());
            }
            output.owned_files.push(OwnedFiles {
                package: package.name.clone(),
                files: package.files,
            });
            output.components.push(component);
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_packages_and_files() {
        let (packages, problems) = parse_installed(
            b"C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\nP:nover\n\n",
        );
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].files, vec!["lib/ld-musl-x86_64.so.1"]);
        assert_eq!(problems.len(), 1);
    }
}
