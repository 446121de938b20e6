//! Python analyzer: installed distributions' `*.dist-info/METADATA` and `*.egg-info/PKG-INFO`.

use super::{Analyzer, AnalyzerOutput, FileInfo, FoundComponent, PurlSpec, rfc822_fields};

/// Reads installed Python distributions.
#[derive(Debug, Clone, Copy)]
pub struct PythonAnalyzer;

/// Core metadata of one distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonMetadata {
    /// `Name`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `License-Expression` (PEP 639), else a short `License` field.
    pub licenses: Vec<String>,
}

/// PEP 503 normalisation: lower case, runs of `-`, `_`, `.` become one `-`.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_dash {
                out.push('-');
            }
            last_dash = true;
        } else {
            out.extend(c.to_lowercase());
            last_dash = false;
        }
    }
    out
}

/// Parses core metadata (the header block before the first blank line).
pub fn parse_metadata(bytes: &[u8]) -> Result<PythonMetadata, String> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let header = text.split("\n\n").next().unwrap_or_default();
    let fields = rfc822_fields(header);
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let name = get("Name").ok_or("METADATA has no Name")?;
    let version = get("Version").ok_or("METADATA has no Version")?;
    let mut licenses = Vec::new();
    if let Some(expression) = get("License-Expression") {
        licenses.push(expression);
    } else if let Some(license) = get("License") {
        // The free-text License field often holds the whole licence text; only a
        // short single-line value is a declaration.
        if !license.contains('\n') && license.len() <= 100 && license != "UNKNOWN" {
            licenses.push(license);
        }
    }
    Ok(PythonMetadata {
        name,
        version,
        licenses,
    })
}

impl Analyzer for PythonAnalyzer {
    fn id(&self) -> &'static str {
        "python"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        let mut parts = file.path.rsplit('/');
        match (parts.next(), parts.next()) {
            (Some("METADATA"), Some(dir)) => dir.ends_with(".dist-info"),
            (Some("PKG-INFO"), Some(dir)) => dir.ends_with(".egg-info"),
            _ => false,
        }
    }
    fn analyze(&self, _path: &str, bytes: &[u8]) -> AnalyzerOutput {
        match parse_metadata(bytes) {
            Ok(metadata) => {
                let purl = PurlSpec::new(
                    "pypi",
                    None,
                    &normalise_name(&metadata.name),
                    Some(&metadata.version),
                );
                let mut component =
                    FoundComponent::new("pypi", &metadata.name, &metadata.version, Some(purl));
                component.licenses = metadata.licenses;
                AnalyzerOutput {
                    components: vec![component],
                    ..AnalyzerOutput::default()
                }
            }
            Err(reason) => AnalyzerOutput::unknown(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metadata_and_normalises() {
        let m = parse_metadata(b"Metadata-Version: 2.1\nName: Foo_Bar.baz\nVersion: 1.0\nLicense: MIT\n\nLicense: not-a-header\n").unwrap();
        assert_eq!(m.licenses, vec!["MIT"]);
        assert_eq!(normalise_name(&m.name), "foo-bar-baz");
        assert!(parse_metadata(b"Name: x\n").is_err());
    }
}
