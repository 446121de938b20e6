//! Java analyzer: jar/war/ear (and nested jars inside them) read for
//! `META-INF/maven/**/pom.properties` and `META-INF/MANIFEST.MF`.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use super::{Analyzer, AnalyzerOutput, FileInfo, FoundComponent, PurlSpec};

/// Reads Java archives.
#[derive(Debug, Clone, Copy)]
pub struct JavaAnalyzer;

/// Deepest nesting of archives inside archives that is opened.
pub const MAX_NESTING: usize = 3;
/// Largest single member read out of an archive (pom.properties, manifest, nested jar).
pub const MAX_MEMBER_BYTES: u64 = 64 << 20;
/// Most members looked at in one archive.
pub const MAX_MEMBERS: usize = 200_000;
/// Most bytes decompressed out of one top-level archive and everything nested
/// in it (defends against zip bombs of nested jars).
pub const MAX_INFLATED_BYTES: u64 = 512 << 20;

/// Maven coordinates from a `pom.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PomProperties {
    /// `groupId`.
    pub group_id: String,
    /// `artifactId`.
    pub artifact_id: String,
    /// `version`.
    pub version: String,
}

/// Parses a `pom.properties` (Java properties: `key=value` or `key: value`, `#` comments).
pub fn parse_pom_properties(bytes: &[u8]) -> Result<PomProperties, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']);
        if let Some(at) = split {
            let key = line.get(..at).unwrap_or_default().trim();
            let value = line.get(at + 1..).unwrap_or_default().trim();
            values.insert(key.to_owned(), value.to_owned());
        }
    }
    let take = |key: &str| {
        values
            .get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| format!("pom.properties has no {key}"))
    };
    Ok(PomProperties {
        group_id: take("groupId")?,
        artifact_id: take("artifactId")?,
        version: take("version")?,
    })
}

/// Parses `MANIFEST.MF` main attributes (continuation lines start with one space).
pub fn parse_manifest(bytes: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break; // End of the main section.
        }
        if let Some(rest) = line.strip_prefix(' ') {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(rest);
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    fields.into_iter().collect()
}

fn is_archive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        ".jar", ".war", ".ear", ".jpi", ".hpi", ".par", ".sar", ".rar",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
}

/// Analyses one Java archive's bytes; `location` names it in evidence paths.
pub fn analyze_archive(location: &str, bytes: &[u8], depth: usize, output: &mut AnalyzerOutput) {
    let mut budget = MAX_INFLATED_BYTES;
    analyze_archive_within(location, bytes, depth, &mut budget, output);
}

fn analyze_archive_within(
    location: &str,
    bytes: &[u8],
    depth: usize,
    budget: &mut u64,
    output: &mut AnalyzerOutput,
) {
    let mut archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(archive) => archive,
        Err(e) => {
            output
                .unknowns
                .push(format!("{location}: not a readable zip archive: {e}"));
            return;
        }
    };
    if archive.len() > MAX_MEMBERS {
        output.unknowns.push(format!(
            "{location}: {} members, more than the {MAX_MEMBERS} limit",
            archive.len()
        ));
        return;
    }
    let mut poms: Vec<(String, Vec<u8>)> = Vec::new();
    let mut manifest: Option<Vec<u8>> = None;
    // Nested archives are opened one at a time after this pass, so at most one
    // is held in memory per nesting level.
    let mut nested: Vec<(usize, String)> = Vec::new();
    for index in 0..archive.len() {
        let mut member = match archive.by_index(index) {
            Ok(member) => member,
            Err(e) => {
                output
                    .unknowns
                    .push(format!("{location}: member #{index}: {e}"));
                continue;
            }
        };
        let name = String::from_utf8_lossy(member.name_raw()).into_owned();
        let wanted_pom = name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties");
        let wanted_manifest = name.eq_ignore_ascii_case("META-INF/MANIFEST.MF");
        let wanted_nested = is_archive_name(&name) && depth < MAX_NESTING;
        if !(wanted_pom || wanted_manifest || wanted_nested) {
            continue;
        }
        if !(wanted_pom || wanted_manifest) {
            nested.push((index, name));
            continue;
        }
        if member.size() > MAX_MEMBER_BYTES {
            output.unknowns.push(format!(
                "{location}!/{name}: larger than {MAX_MEMBER_BYTES} bytes"
            ));
            continue;
        }
        let Some(data) = read_member(&mut member, location, &name, budget, output) else {
            continue;
        };
        if wanted_pom {
            poms.push((name, data));
        } else {
            manifest = Some(data);
        }
    }
    let manifest = manifest.map(|m| parse_manifest(&m)).unwrap_or_default();
    let licenses: Vec<String> = manifest
        .get("Bundle-License")
        .cloned()
        .into_iter()
        .collect();
    if poms.is_empty() {
        let name = manifest
            .get("Implementation-Title")
            .or_else(|| manifest.get("Bundle-SymbolicName"))
            .map(|n| n.split(';').next().unwrap_or_default().trim().to_owned());
        let version = manifest
            .get("Implementation-Version")
            .or_else(|| manifest.get("Bundle-Version"))
            .cloned();
        match (name, version) {
            (Some(name), Some(version)) if !name.is_empty() && !version.is_empty() => {
                // Without Maven coordinates there is no group: the component is
                // reported without a purl rather than with a guessed one.
                let mut component = FoundComponent::new("maven", &name, &version, None);
                component.licenses = licenses.clone();
                component
                    .evidence
                    .push(format!("{location}!/META-INF/MANIFEST.MF"));
                component
                    .properties
                    .insert("stella:identifiedBy".into(), "manifest".into());
                output.components.push(component);
            }
            _ if depth == 0 || nested.is_empty() => {
                output.unknowns.push(format!(
                    "{location}: no pom.properties and no name/version in MANIFEST.MF"
                ));
            }
            _ => {}
        }
    }
    for (member, data) in poms {
        match parse_pom_properties(&data) {
            Ok(pom) => {
                let purl = PurlSpec::new(
                    "maven",
                    Some(&pom.group_id),
                    &pom.artifact_id,
                    Some(&pom.version),
                );
                let mut component = FoundComponent::new(
                    "maven",
                    &format!("{}:{}", pom.group_id, pom.artifact_id),
                    &pom.version,
                    Some(purl),
                );
                component.licenses = licenses.clone();
                component.evidence.push(format!("{location}!/{member}"));
                output.components.push(component);
            }
            Err(reason) => output
                .unknowns
                .push(format!("{location}!/{member}: {reason}")),
        }
    }
    for (index, member_name) in nested {
        let data = match archive.by_index(index) {
            Ok(mut member) => {
                if member.size() > MAX_MEMBER_BYTES {
                    output.unknowns.push(format!(
                        "{location}!/{member_name}: larger than {MAX_MEMBER_BYTES} bytes"
                    ));
                    continue;
                }
                read_member(&mut member, location, &member_name, budget, output)
            }
            Err(e) => {
                output
                    .unknowns
                    .push(format!("{location}!/{member_name}: {e}"));
                None
            }
        };
        if let Some(data) = data {
            analyze_archive_within(
                &format!("{location}!/{member_name}"),
                &data,
                depth + 1,
                budget,
                output,
            );
        }
    }
}

/// Reads one member within the remaining inflation budget.
fn read_member<R: Read>(
    member: &mut R,
    location: &str,
    name: &str,
    budget: &mut u64,
    output: &mut AnalyzerOutput,
) -> Option<Vec<u8>> {
    let limit = MAX_MEMBER_BYTES.min(*budget);
    let mut data = Vec::new();
    if let Err(e) = member.take(limit + 1).read_to_end(&mut data) {
        output.unknowns.push(format!("{location}!/{name}: {e}"));
        return None;
    }
    if data.len() as u64 > limit {
        output.unknowns.push(format!(
            "{location}!/{name}: inflates past the {MAX_INFLATED_BYTES}-byte budget for one archive"
        ));
        *budget = 0;
        return None;
    }
    *budget -= data.len() as u64;
    Some(data)
}

/// Reads one Java archive held in memory (the fuzzing entry point).
pub fn parse_java_archive(bytes: &[u8]) -> AnalyzerOutput {
    let mut output = AnalyzerOutput::default();
    analyze_archive("archive.jar", bytes, 0, &mut output);
    output
}

impl Analyzer for JavaAnalyzer {
    fn id(&self) -> &'static str {
        "java"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        is_archive_name(file.path)
    }
    fn analyze(&self, path: &str, bytes: &[u8]) -> AnalyzerOutput {
        let mut output = AnalyzerOutput::default();
        analyze_archive(path, bytes, 0, &mut output);
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pom_properties_and_manifest() {
        let pom = parse_pom_properties(
            b"#Generated\nversion=1.5.0\ngroupId=commons-cli\nartifactId=commons-cli\n",
        )
        .unwrap();
        assert_eq!(pom.version, "1.5.0");
        assert!(parse_pom_properties(b"groupId=x\n").is_err());
        let manifest = parse_manifest(b"Manifest-Version: 1.0\r\nBundle-SymbolicName: org.ex\r\n ample;singleton:=true\r\n\r\nName: x\r\n");
        assert_eq!(
            manifest.get("Bundle-SymbolicName").unwrap(),
            "org.example;singleton:=true"
        );
        assert!(!manifest.contains_key("Name"));
    }

    #[test]
    fn garbage_is_an_unknown() {
        let output = JavaAnalyzer.analyze("app.jar", b"not a zip");
        assert!(output.components.is_empty());
        assert_eq!(output.unknowns.len(), 1);
    }
}
