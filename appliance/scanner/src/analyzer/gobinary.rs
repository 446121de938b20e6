//! Go analyzer: build info embedded in Go binaries (read with the `object`
//! crate): main module, dependencies with versions, and the toolchain as a
//! `pkg:golang/stdlib@VERSION` component so standard-library advisories match.

use object::{Object, ObjectSection};

use super::{Analyzer, AnalyzerOutput, ComponentKind, FileInfo, FoundComponent, PurlSpec};

/// Reads Go binaries.
#[derive(Debug, Clone, Copy)]
pub struct GoAnalyzer;

const MAGIC: &[u8] = b"\xff Go buildinf:";

/// One module line of the build info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoModule {
    /// Module path.
    pub path: String,
    /// Module version (`(devel)` for an unversioned main module).
    pub version: String,
}

/// Decoded Go build info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// Toolchain version (`go1.22.2`).
    pub go_version: String,
    /// Main package path.
    pub path: Option<String>,
    /// Main module.
    pub main: Option<GoModule>,
    /// Dependencies, replacements applied.
    pub deps: Vec<GoModule>,
    /// `build` settings (`GOOS`, `GOARCH`, `vcs.revision` ...), in order.
    pub settings: Vec<(String, String)>,
}

fn read_uvarint(data: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn read_bytes(data: &[u8], at: usize) -> Result<(&[u8], usize), String> {
    let rest = data.get(at..).ok_or("build info truncated")?;
    let (len, used) = read_uvarint(rest).ok_or("bad varint in build info")?;
    let len = usize::try_from(len).map_err(|_| "string length overflows")?;
    let start = at + used;
    let end = start.checked_add(len).ok_or("string length overflows")?;
    let bytes = data
        .get(start..end)
        .ok_or("build info string runs past the section")?;
    Ok((bytes, end))
}

/// Decodes build info from a blob that starts with (or contains, 16-byte aligned) the magic.
pub fn parse_buildinfo_blob(data: &[u8]) -> Result<Option<GoBuildInfo>, String> {
    let Some(offset) = (0..data.len())
        .step_by(16)
        .find(|&at| data.get(at..at + MAGIC.len()) == Some(MAGIC))
    else {
        return Ok(None);
    };
    let header = data
        .get(offset..offset + 32)
        .ok_or("build info header truncated")?;
    let flags = header.get(15).copied().unwrap_or(0);
    if flags & 0x2 == 0 {
        return Err("Go build info in the pre-1.18 pointer format is not supported".into());
    }
    let (go_version, next) = read_bytes(data, offset + 32)?;
    let go_version = String::from_utf8_lossy(go_version).into_owned();
    let (modinfo, _) = read_bytes(data, next)?;
    // modinfo is framed by 16-byte binary sentinels; strip them before decoding text.
    let modinfo = if modinfo.len() >= 33 && modinfo.get(modinfo.len() - 17) == Some(&b'\n') {
        modinfo.get(16..modinfo.len() - 16).unwrap_or_default()
    } else {
        modinfo
    };
    let modinfo = String::from_utf8_lossy(modinfo);
    let mut info = GoBuildInfo {
        go_version,
        path: None,
        main: None,
        deps: Vec::new(),
        settings: Vec::new(),
    };
    let mut last_was_main = false;
    for line in modinfo.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["path", path, ..] => info.path = Some((*path).to_owned()),
            ["mod", path, version, ..] => {
                info.main = Some(GoModule {
                    path: (*path).to_owned(),
                    version: (*version).to_owned(),
                });
                last_was_main = true;
            }
            ["dep", path, version, ..] => {
                info.deps.push(GoModule {
                    path: (*path).to_owned(),
                    version: (*version).to_owned(),
                });
                last_was_main = false;
            }
            ["=>", path, version, ..] => {
                let replacement = GoModule {
                    path: (*path).to_owned(),
                    version: (*version).to_owned(),
                };
                let target = if last_was_main {
                    info.main.as_mut()
                } else {
                    info.deps.last_mut()
                };
                if let Some(target) = target {
                    *target = replacement;
                }
            }
            ["build", setting, ..] => {
                if let Some((key, value)) = setting.split_once('=') {
                    info.settings.push((key.to_owned(), value.to_owned()));
                }
            }
            _ => {}
        }
    }
    Ok(Some(info))
}

/// Finds and decodes the build info of an ELF, PE or Mach-O binary.
/// `Ok(None)`: not an object file, or not a Go binary.
pub fn parse_go_binary(bytes: &[u8]) -> Result<Option<GoBuildInfo>, String> {
    let Ok(file) = object::File::parse(bytes) else {
        return Ok(None);
    };
    for name in [".go.buildinfo", "__go_buildinfo"] {
        if let Some(section) = file.section_by_name(name) {
            let data = section.data().map_err(|e| format!("section {name}: {e}"))?;
            return parse_buildinfo_blob(data);
        }
    }
    // PE and older layouts keep build info at the start of a data section.
    for section in file.sections() {
        if matches!(
            section.kind(),
            object::SectionKind::Data | object::SectionKind::ReadOnlyData
        ) && let Ok(data) = section.data()
            && let Some(info) = parse_buildinfo_blob(data)?
        {
            return Ok(Some(info));
        }
    }
    Ok(None)
}

fn module_purl(module: &GoModule) -> PurlSpec {
    let (namespace, name) = match module.path.rsplit_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, module.path.as_str()),
    };
    let version = (module.version != "(devel)" && !module.version.is_empty())
        .then_some(module.version.as_str());
    PurlSpec::new("golang", namespace, name, version)
}

pub(crate) fn is_object_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
        || bytes.starts_with(b"MZ")
        || bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
        || bytes.starts_with(&[0xce, 0xfa, 0xed, 0xfe])
        || bytes.starts_with(&[0xca, 0xfe, 0xba, 0xbe])
}

impl Analyzer for GoAnalyzer {
    fn id(&self) -> &'static str {
        "go"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        (file.is_executable() || file.path.ends_with(".exe")) && file.size >= 1024
    }
    fn analyze(&self, _path: &str, bytes: &[u8]) -> AnalyzerOutput {
        if !is_object_magic(bytes) {
            return AnalyzerOutput::default();
        }
        let info = match parse_go_binary(bytes) {
            Ok(Some(info)) => info,
            Ok(None) => return AnalyzerOutput::default(),
            Err(reason) => return AnalyzerOutput::unknown(reason),
        };
        let mut output = AnalyzerOutput::default();
        let toolchain = info
            .go_version
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        // GOPATH-mode builds (as Debian's dh-golang makes them) record only the
        // main package path, no `mod` line: the component then has no version.
        let main = info.main.clone().or_else(|| {
            info.path.as_ref().map(|path| GoModule {
                path: path.clone(),
                version: String::new(),
            })
        });
        if let Some(main) = &main {
            let version = if main.version == "(devel)" {
                ""
            } else {
                main.version.as_str()
            };
            let mut component =
                FoundComponent::new("golang", &main.path, version, Some(module_purl(main)));
            if info.main.is_none() {
                component
                    .properties
                    .insert("stella:go.mainFrom".into(), "path".into());
            }
            component.kind = ComponentKind::Application;
            for (key, value) in &info.settings {
                if matches!(
                    key.as_str(),
                    "GOOS" | "GOARCH" | "CGO_ENABLED" | "vcs.revision" | "vcs.time"
                ) {
                    component
                        .properties
                        .insert(format!("stella:go.{key}"), value.clone());
                }
            }
            component
                .properties
                .insert("stella:go.toolchain".into(), toolchain.clone());
            output.components.push(component);
        }
        for dep in &info.deps {
            output.components.push(FoundComponent::new(
                "golang",
                &dep.path,
                &dep.version,
                Some(module_purl(dep)),
            ));
        }
        if let Some(stdlib_version) = toolchain.strip_prefix("go") {
            let purl = PurlSpec::new("golang", None, "stdlib", Some(stdlib_version));
            let mut component = FoundComponent::new("golang", "stdlib", &toolchain, Some(purl));
            component.kind = ComponentKind::Framework;
            output.components.push(component);
        } else if !toolchain.is_empty() {
            output.unknowns.push(format!(
                "Go toolchain version {toolchain:?} is not a release; no stdlib component"
            ));
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varstr(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut len = s.len();
        while len >= 0x80 {
            out.push(u8::try_from(len & 0x7f).unwrap() | 0x80);
            len >>= 7;
        }
        out.push(u8::try_from(len).unwrap());
        out.extend_from_slice(s.as_bytes());
        out
    }

    #[test]
    fn decodes_inline_buildinfo() {
        let mut blob = MAGIC.to_vec();
        blob.push(8);
        blob.push(2);
        blob.resize(32, 0);
        blob.extend(varstr("go1.22.2"));
        let sentinel = "0123456789abcdef";
        let modinfo = format!(
            "{sentinel}path\texample.com/cmd/x\nmod\texample.com\t(devel)\t\ndep\tgolang.org/x/sys\tv0.1.0\th1:abc=\n=>\tgolang.org/x/sys\tv0.2.0\th1:def=\nbuild\tGOOS=linux\n{sentinel}"
        );
        blob.extend(varstr(&modinfo));
        let info = parse_buildinfo_blob(&blob).unwrap().unwrap();
        assert_eq!(info.go_version, "go1.22.2");
        assert_eq!(info.deps[0].version, "v0.2.0");
        assert_eq!(info.settings, vec![("GOOS".into(), "linux".into())]);
        assert_eq!(
            module_purl(&info.deps[0]).render().unwrap(),
            "pkg:golang/golang.org/x/sys@v0.2.0"
        );
    }

    #[test]
    fn truncated_buildinfo_is_an_error_not_a_panic() {
        let mut blob = MAGIC.to_vec();
        blob.push(8);
        blob.push(2);
        blob.resize(32, 0);
        blob.push(200);
        assert!(parse_buildinfo_blob(&blob).is_err());
        assert_eq!(parse_buildinfo_blob(b"nothing here").unwrap(), None);
    }
}
