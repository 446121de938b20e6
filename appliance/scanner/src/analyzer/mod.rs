//! The analyzer interface, the facts analyzers produce, and the one table that lists them.
//!
//! An analyzer is asked about each file of a layer (`wants`), and given the
//! bytes of the files it wants (`analyze`). Analyzers do no I/O: parsers take
//! bytes and return data. Each analyzer's version is part of the layer-cache
//! key, so bumping a version invalidates exactly the fragments it contributed to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod apk;
pub mod dotnet;
pub mod dpkg;
pub mod entry;
pub mod gobinary;
pub mod maven;
pub mod native;
pub mod npm;
pub mod osrelease;
pub mod peversion;
pub mod python;
pub mod rpm;
pub mod rustbin;

/// What an analyzer may look at before deciding whether it wants a file.
#[derive(Debug, Clone, Copy)]
pub struct FileInfo<'a> {
    /// Root-relative path (`var/lib/dpkg/status`).
    pub path: &'a str,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
}

impl FileInfo<'_> {
    /// Whether any execute bit is set.
    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// A package URL before the distro namespace is known: OS analyzers leave
/// `namespace` empty and the composer fills it from `/etc/os-release`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PurlSpec {
    /// purl type (`deb`, `maven`, `npm`, ...).
    pub ty: String,
    /// purl namespace (Maven group, npm scope, distro), if any.
    pub namespace: Option<String>,
    /// purl name.
    pub name: String,
    /// purl version.
    pub version: Option<String>,
    /// purl qualifiers, sorted.
    pub qualifiers: BTreeMap<String, String>,
}

impl PurlSpec {
    /// A purl of type `ty` named `name`.
    pub fn new(ty: &str, namespace: Option<&str>, name: &str, version: Option<&str>) -> PurlSpec {
        PurlSpec {
            ty: ty.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            version: version.map(str::to_owned),
            qualifiers: BTreeMap::new(),
        }
    }

    /// Adds a qualifier.
    pub fn qualifier(mut self, key: &str, value: &str) -> PurlSpec {
        if !value.is_empty() {
            self.qualifiers.insert(key.to_owned(), value.to_owned());
        }
        self
    }

    /// Renders the purl with the `packageurl` crate (which does the
    /// percent-encoding and normalisation); qualifiers come out sorted.
    pub fn render(&self) -> Result<String, String> {
        let mut purl = packageurl::PackageUrl::new(self.ty.as_str(), self.name.as_str())
            .map_err(|e| e.to_string())?;
        if let Some(namespace) = &self.namespace {
            purl.with_namespace(namespace.as_str())
                .map_err(|e| e.to_string())?;
        }
        if let Some(version) = &self.version {
            purl.with_version(version.as_str())
                .map_err(|e| e.to_string())?;
        }
        for (key, value) in &self.qualifiers {
            purl.add_qualifier(key.as_str(), value.as_str())
                .map_err(|e| e.to_string())?;
        }
        Ok(purl.to_string())
    }
}

/// The kind of a component, as CycloneDX names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentKind {
    /// A library or package.
    Library,
    /// An application (a main Go module, a binary).
    Application,
    /// A language runtime or standard library.
    Framework,
}

impl ComponentKind {
    /// The CycloneDX `type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Library => "library",
            ComponentKind::Application => "application",
            ComponentKind::Framework => "framework",
        }
    }
}

/// A component as an analyzer finds it in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundComponent {
    /// Component name as its ecosystem spells it.
    pub name: String,
    /// Version as its ecosystem spells it (empty when the ecosystem has none).
    pub version: String,
    /// Package URL parts; `None` for unidentified binaries (`bin:` components).
    pub purl: Option<PurlSpec>,
    /// Ecosystem tag (`deb`, `apk`, `maven`, `npm`, `pypi`, `golang`, `nuget`, `cargo`, `binary`).
    pub ecosystem: String,
    /// CycloneDX kind.
    pub kind: ComponentKind,
    /// Declared licences, verbatim.
    pub licenses: Vec<String>,
    /// Evidence locations inside the file (for example `app.war!/WEB-INF/lib/x.jar!/META-INF/.../pom.properties`);
    /// empty means the file itself.
    pub evidence: Vec<String>,
    /// Extra facts (source package, architecture, toolchain ...), sorted by key.
    pub properties: BTreeMap<String, String>,
    /// Root-relative paths where the component's own files are deployed beside the manifest
    /// that lists it (a .NET package's runtime assemblies). A native file found there belongs
    /// to this component and becomes its evidence, instead of an unidentified `bin:` component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deploys: Vec<String>,
}

impl FoundComponent {
    /// A library component with no licences, evidence or properties yet.
    pub fn new(
        ecosystem: &str,
        name: &str,
        version: &str,
        purl: Option<PurlSpec>,
    ) -> FoundComponent {
        FoundComponent {
            name: name.to_owned(),
            version: version.to_owned(),
            purl,
            ecosystem: ecosystem.to_owned(),
            kind: ComponentKind::Library,
            licenses: Vec::new(),
            evidence: Vec::new(),
            properties: BTreeMap::new(),
            deploys: Vec::new(),
        }
    }
}

/// Files a package says it owns (dpkg `info/*.list`, apk `F:`/`R:` lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedFiles {
    /// The owning package's name.
    pub package: String,
    /// Root-relative paths. Stored as one newline-joined string: a base
    /// image's fragment holds 10^5 of them and warm scans decode it.
    #[serde(with = "newline_joined")]
    pub files: Vec<String>,
}

mod newline_joined {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        files: &[String],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&files.join("\n"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<String>, D::Error> {
        let joined = String::deserialize(deserializer)?;
        if joined.is_empty() {
            return Ok(Vec::new());
        }
        Ok(joined.split('\n').map(str::to_owned).collect())
    }
}

/// Distribution identity from `os-release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distro {
    /// `ID` (`debian`, `alpine`, `ubuntu`).
    pub id: String,
    /// `VERSION_ID`, if present.
    pub version_id: Option<String>,
    /// `PRETTY_NAME`, if present.
    pub pretty_name: Option<String>,
}

/// What one analyzer returns for one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalyzerOutput {
    /// Components found.
    pub components: Vec<FoundComponent>,
    /// Reasons the file (or part of it) could not be understood.
    pub unknowns: Vec<String>,
    /// Package file ownership facts.
    pub owned_files: Vec<OwnedFiles>,
    /// Distribution identity, from os-release files.
    pub distro: Option<Distro>,
    /// Linkage facts of a native object file.
    pub native: Option<native::NativeFacts>,
    /// What a script or program file says about what it runs.
    pub script: Option<entry::ScriptFacts>,
    /// A Java archive's manifest entry point.
    pub jar: Option<entry::JarFacts>,
}

impl AnalyzerOutput {
    /// An output holding only an unknown.
    pub fn unknown(reason: impl Into<String>) -> AnalyzerOutput {
        AnalyzerOutput {
            unknowns: vec![reason.into()],
            ..AnalyzerOutput::default()
        }
    }
}

/// An unknown produced by an analyzer, with the analyzer's id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnknownReason {
    /// The analyzer that could not parse the file.
    pub analyzer: String,
    /// Why.
    pub reason: String,
}

/// All analyzers' results for one path of one layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathResult {
    /// Components, with the analyzer id that found them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<FoundComponent>,
    /// Unknowns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<UnknownReason>,
    /// Ownership facts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owned_files: Vec<OwnedFiles>,
    /// Distro facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
    /// Native linkage facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<native::NativeFacts>,
    /// Script facts (shell text, shebang, Python imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<entry::ScriptFacts>,
    /// Java archive manifest facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jar: Option<entry::JarFacts>,
}

impl PathResult {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
            && self.unknowns.is_empty()
            && self.owned_files.is_empty()
            && self.distro.is_none()
            && self.native.is_none()
            && self.script.is_none()
            && self.jar.is_none()
    }

    /// Adds one analyzer's output.
    pub fn merge(&mut self, analyzer: &str, output: AnalyzerOutput) {
        self.components
            .extend(output.components.into_iter().map(|mut component| {
                component
                    .properties
                    .insert("stella:foundBy".into(), analyzer.to_owned());
                component
            }));
        self.unknowns
            .extend(output.unknowns.into_iter().map(|reason| UnknownReason {
                analyzer: analyzer.to_owned(),
                reason,
            }));
        self.owned_files.extend(output.owned_files);
        if output.distro.is_some() {
            self.distro = output.distro;
        }
        if output.native.is_some() {
            self.native = output.native;
        }
        if output.script.is_some() {
            self.script = output.script;
        }
        if output.jar.is_some() {
            self.jar = output.jar;
        }
    }

    /// The same result seen through a hard link: evidence inside the file at
    /// `from` (`from!/member`) is renamed to sit inside `to`.
    pub fn relocated(&self, from: &str, to: &str) -> PathResult {
        let mut result = self.clone();
        let prefix = format!("{from}!/");
        for component in &mut result.components {
            for evidence in &mut component.evidence {
                if let Some(rest) = evidence.strip_prefix(&prefix) {
                    *evidence = format!("{to}!/{rest}");
                }
            }
        }
        // Archive analyzers name the archive (and members) at the start of their reasons.
        for unknown in &mut result.unknowns {
            if let Some(rest) = unknown.reason.strip_prefix(from)
                && (rest.starts_with(':') || rest.starts_with("!/"))
            {
                unknown.reason = format!("{to}{rest}");
            }
        }
        result
    }
}

/// An analyzer of one ecosystem.
pub trait Analyzer: Send + Sync {
    /// Unique id (`dpkg`, `apk`, `java`, ...).
    fn id(&self) -> &'static str;
    /// Version of this analyzer's logic; part of the layer-cache key.
    fn version(&self) -> u32;
    /// Whether the analyzer wants the file's bytes.
    fn wants(&self, file: &FileInfo<'_>) -> bool;
    /// Parses the file. Never panics; problems become unknowns.
    fn analyze(&self, path: &str, bytes: &[u8]) -> AnalyzerOutput;
}

/// Every analyzer, in a fixed order. This is the one table.
pub fn registry() -> Vec<Box<dyn Analyzer>> {
    vec![
        Box::new(osrelease::OsReleaseAnalyzer),
        Box::new(dpkg::DpkgAnalyzer),
        Box::new(apk::ApkAnalyzer),
        Box::new(rpm::RpmAnalyzer),
        Box::new(maven::JavaAnalyzer),
        Box::new(npm::NodeAnalyzer),
        Box::new(python::PythonAnalyzer),
        Box::new(gobinary::GoAnalyzer),
        Box::new(dotnet::DotnetAnalyzer),
        Box::new(rustbin::RustAnalyzer),
        Box::new(native::NativeAnalyzer),
        Box::new(entry::EntryAnalyzer),
    ]
}

/// The analyzer part of the layer-cache key: `id@version` of every analyzer, in table order.
pub fn analyzer_key(analyzers: &[Box<dyn Analyzer>]) -> String {
    analyzers
        .iter()
        .map(|a| format!("{}@{}", a.id(), a.version()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits an RFC 822-style block (`Key: value` lines, continuation lines
/// starting with whitespace) into fields, in order. Shared by dpkg and
/// Python METADATA.
pub(crate) fn rfc822_fields(block: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzer_ids_are_unique() {
        let analyzers = registry();
        let mut ids: Vec<&str> = analyzers.iter().map(|a| a.id()).collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate analyzer id in registry()");
    }

    #[test]
    fn purl_rendering_encodes_and_sorts() {
        let purl = PurlSpec::new("npm", Some("@types"), "node", Some("1.0.0"))
            .qualifier("z", "1")
            .qualifier("a", "2");
        assert_eq!(
            purl.render().unwrap(),
            "pkg:npm/%40types/node@1.0.0?a=2&z=1"
        );
    }
}
