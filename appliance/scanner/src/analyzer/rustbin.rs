//! Rust analyzer: the cargo-auditable `.dep-v0` section (zlib-compressed JSON
//! dependency list); a Rust binary without it becomes a `bin:{sha256}` component.

use std::io::Read;

use object::{Object, ObjectSection};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::{Analyzer, AnalyzerOutput, ComponentKind, FileInfo, FoundComponent, PurlSpec};

/// Reads Rust binaries.
#[derive(Debug, Clone, Copy)]
pub struct RustAnalyzer;

/// Largest decompressed `.dep-v0` accepted (cargo-auditable's own reader uses 8 MiB).
pub const MAX_AUDIT_JSON_BYTES: u64 = 8 << 20;

/// One package of the audit data.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditPackage {
    /// Crate name.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// `crates.io`, `git`, `local`, `registry` ...
    #[serde(default)]
    pub source: Option<String>,
    /// `build` or `runtime` (default).
    #[serde(default)]
    pub kind: Option<String>,
    /// Whether this is the root package.
    #[serde(default)]
    pub root: bool,
}

#[derive(Deserialize)]
struct AuditData {
    packages: Vec<AuditPackage>,
}

/// What a Rust binary revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustBinary {
    /// Not an object file or not built by rustc.
    NotRust,
    /// A Rust binary without audit data.
    Unaudited,
    /// The packages from `.dep-v0`.
    Audited(Vec<AuditPackage>),
}

/// Decodes a `.dep-v0` payload (zlib-compressed JSON).
pub fn parse_dep_v0(compressed: &[u8]) -> Result<Vec<AuditPackage>, String> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_AUDIT_JSON_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!(".dep-v0 is not valid zlib: {e}"))?;
    if json.len() as u64 > MAX_AUDIT_JSON_BYTES {
        return Err(format!(
            ".dep-v0 decompresses to more than {MAX_AUDIT_JSON_BYTES} bytes"
        ));
    }
    let data: AuditData =
        serde_json::from_slice(&json).map_err(|e| format!(".dep-v0 JSON: {e}"))?;
    Ok(data.packages)
}

fn looks_like_rustc_output(file: &object::File<'_>, bytes: &[u8]) -> bool {
    if let Some(comment) = file.section_by_name(".comment").and_then(|s| s.data().ok())
        && comment.windows(5).any(|w| w == b"rustc")
    {
        return true;
    }
    // Panic locations embed the standard library's source path.
    memchr::memmem::find(bytes, b"/rustc/").is_some()
}

/// Classifies a binary.
pub fn parse_rust_binary(bytes: &[u8]) -> Result<RustBinary, String> {
    let Ok(file) = object::File::parse(bytes) else {
        return Ok(RustBinary::NotRust);
    };
    if let Some(section) = file.section_by_name(".dep-v0") {
        let data = section
            .data()
            .map_err(|e| format!("section .dep-v0: {e}"))?;
        return parse_dep_v0(data).map(RustBinary::Audited);
    }
    if looks_like_rustc_output(&file, bytes) {
        return Ok(RustBinary::Unaudited);
    }
    Ok(RustBinary::NotRust)
}

impl Analyzer for RustAnalyzer {
    fn id(&self) -> &'static str {
        "rust"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        (file.is_executable() || file.path.ends_with(".exe")) && file.size >= 1024
    }
    fn analyze(&self, path: &str, bytes: &[u8]) -> AnalyzerOutput {
        if !super::gobinary::is_object_magic(bytes) {
            return AnalyzerOutput::default();
        }
        match parse_rust_binary(bytes) {
            Ok(RustBinary::NotRust) => AnalyzerOutput::default(),
            Ok(RustBinary::Unaudited) => {
                let sha = hex::encode(Sha256::digest(bytes));
                let name = path.rsplit('/').next().unwrap_or(path);
                let mut component = FoundComponent::new("binary", name, "", None);
                component.kind = ComponentKind::Application;
                component.properties.insert("stella:sha256".into(), sha);
                component
                    .properties
                    .insert("stella:language".into(), "rust".into());
                AnalyzerOutput {
                    components: vec![component],
                    ..AnalyzerOutput::default()
                }
            }
            Ok(RustBinary::Audited(packages)) => AnalyzerOutput {
                components: packages
                    .into_iter()
                    .map(|package| {
                        let purl =
                            PurlSpec::new("cargo", None, &package.name, Some(&package.version));
                        let mut component = FoundComponent::new(
                            "cargo",
                            &package.name,
                            &package.version,
                            Some(purl),
                        );
                        if package.root {
                            component.kind = ComponentKind::Application;
                        }
                        if let Some(kind) = package.kind {
                            component
                                .properties
                                .insert("stella:cargo.kind".into(), kind);
                        }
                        if let Some(source) = package.source {
                            component
                                .properties
                                .insert("stella:cargo.source".into(), source);
                        }
                        component
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
    use std::io::Write;

    #[test]
    fn decodes_dep_v0() {
        let json = br#"{"packages":[{"name":"app","version":"0.1.0","source":"local","root":true},{"name":"serde","version":"1.0.0","source":"crates.io","kind":"runtime","dependencies":[]}]}"#;
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(json).unwrap();
        let packages = parse_dep_v0(&encoder.finish().unwrap()).unwrap();
        assert_eq!(packages.len(), 2);
        assert!(packages[0].root);
        assert!(parse_dep_v0(b"garbage").is_err());
    }
}
