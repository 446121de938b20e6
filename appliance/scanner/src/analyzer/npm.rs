//! Node analyzer: `node_modules/**/package.json` (scoped packages included;
//! no lockfile needed).

use super::{Analyzer, AnalyzerOutput, FileInfo, FoundComponent, PurlSpec};

/// Reads installed npm packages.
#[derive(Debug, Clone, Copy)]
pub struct NodeAnalyzer;

/// An installed npm package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmPackage {
    /// Full name, with scope (`@types/node`).
    pub name: String,
    /// Version.
    pub version: String,
    /// Declared licences.
    pub licenses: Vec<String>,
}

/// Whether `path` is the manifest of a package directly under a `node_modules`
/// directory (`.../node_modules/NAME/package.json` or `.../node_modules/@SCOPE/NAME/package.json`).
pub fn is_package_manifest(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let parts: Vec<&str> = dir.split('/').collect();
    match parts.as_slice() {
        [.., "node_modules", name] => !name.starts_with('@') && !name.starts_with('.'),
        [.., "node_modules", scope, name] => scope.starts_with('@') && !name.starts_with('.'),
        _ => false,
    }
}

/// Parses a `package.json`.
pub fn parse_package_json(bytes: &[u8]) -> Result<NpmPackage, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let name = value
        .get("name")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or("package.json has no name")?;
    let version = value
        .get("version")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or("package.json has no version")?;
    let mut licenses = Vec::new();
    match value.get("license") {
        Some(serde_json::Value::String(s)) => licenses.push(s.clone()),
        Some(serde_json::Value::Object(o)) => {
            if let Some(t) = o.get("type").and_then(|t| t.as_str()) {
                licenses.push(t.to_owned());
            }
        }
        _ => {}
    }
    if let Some(serde_json::Value::Array(items)) = value.get("licenses") {
        for item in items {
            match item {
                serde_json::Value::String(s) => licenses.push(s.clone()),
                serde_json::Value::Object(o) => {
                    if let Some(t) = o.get("type").and_then(|t| t.as_str()) {
                        licenses.push(t.to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(NpmPackage {
        name: name.to_owned(),
        version: version.to_owned(),
        licenses,
    })
}

impl Analyzer for NodeAnalyzer {
    fn id(&self) -> &'static str {
        "node"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        is_package_manifest(file.path)
    }
    fn analyze(&self, _path: &str, bytes: &[u8]) -> AnalyzerOutput {
        let package = match parse_package_json(bytes) {
            Ok(package) => package,
            Err(reason) => return AnalyzerOutput::unknown(reason),
        };
        let (namespace, short_name) = match package.name.split_once('/') {
            Some((scope, name)) if scope.starts_with('@') => (Some(scope), name),
            _ => (None, package.name.as_str()),
        };
        let purl = PurlSpec::new("npm", namespace, short_name, Some(&package.version));
        let mut component = FoundComponent::new("npm", &package.name, &package.version, Some(purl));
        component.licenses = package.licenses;
        AnalyzerOutput {
            components: vec![component],
            ..AnalyzerOutput::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths() {
        assert!(is_package_manifest("usr/lib/node_modules/npm/package.json"));
        assert!(is_package_manifest(
            "app/node_modules/@types/node/package.json"
        ));
        assert!(is_package_manifest(
            "app/node_modules/a/node_modules/b/package.json"
        ));
        assert!(!is_package_manifest("app/node_modules/a/lib/package.json"));
        assert!(!is_package_manifest("app/package.json"));
    }

    #[test]
    fn scoped_purl() {
        let out = NodeAnalyzer.analyze(
            "x/node_modules/@scope/p/package.json",
            br#"{"name":"@scope/p","version":"1.2.3","license":{"type":"MIT"}}"#,
        );
        let purl = out.components[0].purl.as_ref().unwrap().render().unwrap();
        assert_eq!(purl, "pkg:npm/%40scope/p@1.2.3");
        assert_eq!(out.components[0].licenses, vec!["MIT"]);
        assert_eq!(NodeAnalyzer.analyze("p", b"{").unknowns.len(), 1);
    }
}
