//! .NET analyzer: NuGet packages listed in `*.deps.json`.

use super::{Analyzer, AnalyzerOutput, FileInfo, FoundComponent, PurlSpec};

/// Reads .NET dependency manifests.
#[derive(Debug, Clone, Copy)]
pub struct DotnetAnalyzer;

/// Parses a `deps.json`: returns `(name, version)` of every `"type": "package"` library, sorted.
pub fn parse_deps_json(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let libraries = value
        .get("libraries")
        .and_then(|l| l.as_object())
        .ok_or("deps.json has no libraries object")?;
    let mut packages = Vec::new();
    for (key, library) in libraries {
        if library.get("type").and_then(|t| t.as_str()) != Some("package") {
            continue;
        }
        let (name, version) = key
            .split_once('/')
            .ok_or_else(|| format!("library key {key:?} is not NAME/VERSION"))?;
        packages.push((name.to_owned(), version.to_owned()));
    }
    packages.sort();
    Ok(packages)
}

impl Analyzer for DotnetAnalyzer {
    fn id(&self) -> &'static str {
        "dotnet"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        file.path.ends_with(".deps.json")
    }
    fn analyze(&self, _path: &str, bytes: &[u8]) -> AnalyzerOutput {
        match parse_deps_json(bytes) {
            Ok(packages) => AnalyzerOutput {
                components: packages
                    .into_iter()
                    .map(|(name, version)| {
                        let purl = PurlSpec::new("nuget", None, &name, Some(&version));
                        FoundComponent::new("nuget", &name, &version, Some(purl))
                    })
                    .collect(),
                ..AnalyzerOutput::default()
            },
            Err(reason) => AnalyzerOutput::unknown(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_packages_only() {
        let packages = parse_deps_json(
            br#"{"libraries":{"App/1.0.0":{"type":"project"},"Newtonsoft.Json/13.0.3":{"type":"package","sha512":"x"}}}"#,
        )
        .unwrap();
        assert_eq!(
            packages,
            vec![("Newtonsoft.Json".to_owned(), "13.0.3".to_owned())]
        );
        assert!(parse_deps_json(b"[]").is_err());
    }
}
