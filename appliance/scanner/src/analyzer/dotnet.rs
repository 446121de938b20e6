//! .NET analyzer: NuGet packages listed in `*.deps.json`, with the runtime assemblies each
//! package puts beside it, so that those DLLs are attributed to the package instead of becoming
//! unidentified `bin:` components (what Syft's `dotnet-deps` cataloger does with PE files).

use std::collections::{BTreeMap, BTreeSet};

use super::{Analyzer, AnalyzerOutput, FileInfo, FoundComponent, PurlSpec};

/// Reads .NET dependency manifests.
#[derive(Debug, Clone, Copy)]
pub struct DotnetAnalyzer;

/// A `"type": "package"` library of a `deps.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepsPackage {
    pub name: String,
    pub version: String,
    /// Its runtime assets (`runtime` and `runtimeTargets` keys of every target), as the
    /// manifest writes them (`lib/net6.0/Newtonsoft.Json.dll`), sorted and unique.
    pub assets: Vec<String>,
}

/// Parses a `deps.json`: returns `(name, version)` of every `"type": "package"` library, sorted.
pub fn parse_deps_json(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    Ok(parse_deps(bytes)?
        .into_iter()
        .map(|p| (p.name, p.version))
        .collect())
}

/// Parses a `deps.json`: every `"type": "package"` library with its runtime assets, sorted by
/// name and version.
pub fn parse_deps(bytes: &[u8]) -> Result<Vec<DepsPackage>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let libraries = value
        .get("libraries")
        .and_then(|l| l.as_object())
        .ok_or("deps.json has no libraries object")?;
    // "targets": { framework: { "NAME/VERSION": { "runtime": { asset: {} }, ... } } }
    let mut assets: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for target in value
        .get("targets")
        .and_then(|t| t.as_object())
        .into_iter()
        .flat_map(|t| t.values())
        .filter_map(|t| t.as_object())
    {
        for (key, entry) in target {
            for kind in ["runtime", "runtimeTargets"] {
                if let Some(listed) = entry.get(kind).and_then(|r| r.as_object()) {
                    assets
                        .entry(key.as_str())
                        .or_default()
                        .extend(listed.keys().cloned());
                }
            }
        }
    }
    let mut packages = Vec::new();
    for (key, library) in libraries {
        if library.get("type").and_then(|t| t.as_str()) != Some("package") {
            continue;
        }
        let (name, version) = key
            .split_once('/')
            .ok_or_else(|| format!("library key {key:?} is not NAME/VERSION"))?;
        packages.push(DepsPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            assets: assets
                .get(key.as_str())
                .map(|a| a.iter().cloned().collect())
                .unwrap_or_default(),
        });
    }
    packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(packages)
}

/// Where a published app holds `asset` of a package, given its `deps.json` at `deps_path`: the
/// file name beside the manifest (`dotnet publish` flattens `lib/…` assets), and for
/// `runtimes/…` assets also the path under the app directory (portable apps keep it).
fn deployed_paths(deps_path: &str, asset: &str) -> Vec<String> {
    let dir = deps_path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let join = |rest: &str| {
        if dir.is_empty() {
            rest.to_owned()
        } else {
            format!("{dir}/{rest}")
        }
    };
    let file = asset.rsplit('/').next().unwrap_or(asset);
    let mut paths = vec![join(file)];
    if asset.starts_with("runtimes/") && !asset.split('/').any(|part| part == "..") {
        paths.push(join(asset));
    }
    paths
}

impl Analyzer for DotnetAnalyzer {
    fn id(&self) -> &'static str {
        "dotnet"
    }
    fn version(&self) -> u32 {
        // 2: runtime assemblies are recorded for attribution.
        2
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        file.path.ends_with(".deps.json")
    }
    fn analyze(&self, path: &str, bytes: &[u8]) -> AnalyzerOutput {
        match parse_deps(bytes) {
            Ok(packages) => AnalyzerOutput {
                components: packages
                    .into_iter()
                    .map(|package| {
                        let purl =
                            PurlSpec::new("nuget", None, &package.name, Some(&package.version));
                        let mut found = FoundComponent::new(
                            "nuget",
                            &package.name,
                            &package.version,
                            Some(purl),
                        );
                        let deployed: BTreeSet<String> = package
                            .assets
                            .iter()
                            .flat_map(|asset| deployed_paths(path, asset))
                            .collect();
                        found.deploys = deployed.into_iter().collect();
                        found
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

    #[test]
    fn runtime_assets_become_deployed_paths_beside_the_manifest() {
        let deps = br#"{
          "targets": { ".NETCoreApp,Version=v8.0": {
            "App/1.0.0": { "runtime": { "App.dll": {} } },
            "Newtonsoft.Json/13.0.3": { "runtime": { "lib/net6.0/Newtonsoft.Json.dll": {} } },
            "SQLite/3.13.0": { "runtimeTargets": {
              "runtimes/linux-x64/native/libsqlite3.so": { "rid": "linux-x64" } } },
            "Meta/1.0.0": {}
          } },
          "libraries": {
            "App/1.0.0": { "type": "project" },
            "Newtonsoft.Json/13.0.3": { "type": "package" },
            "SQLite/3.13.0": { "type": "package" },
            "Meta/1.0.0": { "type": "package" }
          }
        }"#;
        let packages = parse_deps(deps).unwrap();
        assert_eq!(packages.len(), 3);
        assert_eq!(packages[1].assets, ["lib/net6.0/Newtonsoft.Json.dll"]);
        let output = DotnetAnalyzer.analyze("app/App.deps.json", deps);
        let deploys = |name: &str| {
            output
                .components
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.deploys.clone())
                .unwrap()
        };
        assert!(deploys("Meta").is_empty());
        assert_eq!(deploys("Newtonsoft.Json"), ["app/Newtonsoft.Json.dll"]);
        assert_eq!(
            deploys("SQLite"),
            [
                "app/libsqlite3.so",
                "app/runtimes/linux-x64/native/libsqlite3.so"
            ]
        );
        // A manifest at the root, and an asset path climbing out of the app is only flattened.
        assert_eq!(
            deployed_paths("App.deps.json", "runtimes/../../etc/x.so"),
            ["x.so"]
        );
    }
}
