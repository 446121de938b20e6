//! os-release analyzer: the distribution identity (`ID`, `VERSION_ID`) used as the
//! namespace and `distro` qualifier of OS package purls.

use super::{Analyzer, AnalyzerOutput, Distro, FileInfo};

/// Reads `/etc/os-release` and `/usr/lib/os-release`.
#[derive(Debug, Clone, Copy)]
pub struct OsReleaseAnalyzer;

/// Parses an os-release file (`KEY=value`, optionally quoted). Returns `None` without `ID`.
pub fn parse_os_release(bytes: &[u8]) -> Option<Distro> {
    let text = String::from_utf8_lossy(bytes);
    let mut id = None;
    let mut version_id = None;
    let mut pretty_name = None;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value)
            .to_owned();
        match key.trim() {
            "ID" => id = Some(value),
            "VERSION_ID" => version_id = Some(value),
            "PRETTY_NAME" => pretty_name = Some(value),
            _ => {}
        }
    }
    let id = id.filter(|id| {
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    })?;
    Some(Distro {
        id,
        version_id,
        pretty_name,
    })
}

impl Analyzer for OsReleaseAnalyzer {
    fn id(&self) -> &'static str {
        "os-release"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        matches!(file.path, "etc/os-release" | "usr/lib/os-release") && file.size < 64 * 1024
    }
    fn analyze(&self, _path: &str, bytes: &[u8]) -> AnalyzerOutput {
        match parse_os_release(bytes) {
            Some(distro) => AnalyzerOutput {
                distro: Some(distro),
                ..AnalyzerOutput::default()
            },
            None => AnalyzerOutput::unknown("os-release has no valid ID"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_values() {
        let distro = parse_os_release(
            b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        )
        .unwrap();
        assert_eq!(distro.id, "debian");
        assert_eq!(distro.version_id.as_deref(), Some("12"));
        assert!(parse_os_release(b"ID=\"bad/../id\"").is_none());
    }
}
