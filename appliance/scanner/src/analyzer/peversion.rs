//! PE version resources for the native analyzer: finds the `RT_VERSION` resource through
//! `object`'s resource directory API and reads its `VS_VERSIONINFO` tree (the fixed file info and
//! the first `StringFileInfo` string table) with a bounded parser.
//!
//! The tree is a nest of `{wLength, wValueLength, wType, szKey, padding, value, padding,
//! children}` nodes (UTF-16 keys, every node aligned on 4 bytes from the start of the resource).
//! Every length is checked against the node that holds it, so a hostile file can neither read
//! outside the resource nor make the parser loop: each child advances the cursor by at least
//! 8 bytes, the depth is fixed (`VS_VERSIONINFO` → `StringFileInfo` → table → string) and
//! [`VersionInfoLimits`] caps what is kept. Naming a component from the strings follows Syft's
//! PE cataloger (`findName`/`findVersion` in `syft/pkg/cataloger/dotnet`).

use std::collections::BTreeMap;

use object::LittleEndian as LE;
use object::read::pe::{ImageNtHeaders, PeFile, ResourceDirectoryEntryData, ResourceNameOrId};
use serde::{Deserialize, Serialize};

/// Resource type id of version resources (`RT_VERSION`).
pub const RT_VERSION: u16 = 16;

/// `VS_FIXEDFILEINFO.dwSignature`.
const FIXED_FILE_INFO_SIGNATURE: u32 = 0xFEEF_04BD;

/// Size of `VS_FIXEDFILEINFO`.
const FIXED_FILE_INFO_LEN: usize = 52;

/// Size of a node header (`wLength`, `wValueLength`, `wType`).
const NODE_HEADER_LEN: usize = 6;

/// Bounds on what a version resource may make the parser keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionInfoLimits {
    /// Most nodes visited in the whole tree (default 1024; a real resource has about 20).
    pub max_nodes: usize,
    /// Most strings kept from the string table (default 128).
    pub max_strings: usize,
    /// Longest key, in UTF-16 units (default 128).
    pub max_key_units: usize,
    /// Longest string value, in UTF-16 units (default 4096).
    pub max_value_units: usize,
}

impl Default for VersionInfoLimits {
    fn default() -> Self {
        VersionInfoLimits {
            max_nodes: 1024,
            max_strings: 128,
            max_key_units: 128,
            max_value_units: 4096,
        }
    }
}

/// Why a version resource could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VersionInfoError {
    /// The resource directory leading to `RT_VERSION` is malformed.
    #[error("PE resource directory: {0}")]
    Directory(String),
    /// A node header or key does not fit in the bytes that hold it.
    #[error("VS_VERSIONINFO truncated at byte {offset}: {what}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset from the start of the resource.
        offset: usize,
    },
    /// A node's `wLength` is larger than its parent (or the resource) leaves room for.
    #[error("VS_VERSIONINFO node at byte {offset} claims {length} bytes, only {available} left")]
    Length {
        /// Offset of the node.
        offset: usize,
        /// Its `wLength`.
        length: usize,
        /// Bytes left in the parent.
        available: usize,
    },
    /// The root is not a `VS_VERSION_INFO` node or its fixed file info is malformed.
    #[error("not a VS_VERSIONINFO resource: {0}")]
    NotVersionInfo(String),
    /// A [`VersionInfoLimits`] bound was exceeded.
    #[error("VS_VERSIONINFO exceeds the limit of {limit} {what}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

/// What a PE version resource says about the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeVersionInfo {
    /// `VS_FIXEDFILEINFO` file version (`1.2.3.4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_file_version: Option<String>,
    /// `VS_FIXEDFILEINFO` product version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_product_version: Option<String>,
    /// Key of the string table the strings come from (`040904b0`: language and code page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The table's strings by key (`CompanyName`, `ProductName`, `FileVersion`,
    /// `ProductVersion`, `OriginalFilename`, …), values without the terminating NUL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub strings: BTreeMap<String, String>,
}

fn u16_at(block: &[u8], offset: usize) -> Option<u16> {
    let bytes = block.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes([bytes[0], bytes[1]]))
}

fn u32_at(block: &[u8], offset: usize) -> Option<u32> {
    let bytes = block.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn align4(offset: usize) -> usize {
    offset.saturating_add(3) & !3
}

/// UTF-16LE units from `start` up to the first NUL or `end`, at most `max_units` of them.
fn utf16_until_nul(
    block: &[u8],
    start: usize,
    end: usize,
    max_units: usize,
    what: &'static str,
) -> Result<(String, usize), VersionInfoError> {
    let mut units = Vec::new();
    let mut offset = start;
    while offset + 2 <= end {
        let unit = u16_at(block, offset).ok_or(VersionInfoError::Truncated { what, offset })?;
        offset += 2;
        if unit == 0 {
            return Ok((String::from_utf16_lossy(&units), offset));
        }
        if units.len() >= max_units {
            return Err(VersionInfoError::Limit {
                what,
                limit: max_units,
            });
        }
        units.push(unit);
    }
    Ok((String::from_utf16_lossy(&units), offset))
}

/// One node of the tree: its key, value bytes and the byte range of its children.
struct Node<'a> {
    key: String,
    value: &'a [u8],
    value_start: usize,
    children: std::ops::Range<usize>,
    end: usize,
}

struct Reader<'a> {
    block: &'a [u8],
    limits: VersionInfoLimits,
    nodes: usize,
}

impl<'a> Reader<'a> {
    /// Reads the node at `start`, which must end by `parent_end`. `Ok(None)` for zero padding.
    fn node(
        &mut self,
        start: usize,
        parent_end: usize,
    ) -> Result<Option<Node<'a>>, VersionInfoError> {
        let header = |offset| {
            u16_at(self.block, offset)
                .map(usize::from)
                .ok_or(VersionInfoError::Truncated {
                    what: "node header",
                    offset,
                })
        };
        let length = header(start)?;
        if length == 0 {
            return Ok(None);
        }
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(VersionInfoError::Limit {
                what: "nodes",
                limit: self.limits.max_nodes,
            });
        }
        let available = parent_end.saturating_sub(start);
        if length < NODE_HEADER_LEN || length > available {
            return Err(VersionInfoError::Length {
                offset: start,
                length,
                available,
            });
        }
        let end = start + length;
        let value_length = header(start + 2)?;
        let is_text = header(start + 4)? == 1;
        let (key, after_key) = utf16_until_nul(
            self.block,
            start + NODE_HEADER_LEN,
            end,
            self.limits.max_key_units,
            "key characters",
        )?;
        let value_start = align4(after_key).min(end);
        // Text lengths count UTF-16 units; some resource compilers write bytes instead, so a
        // text value is cut to the node rather than trusted.
        let value_bytes = if is_text {
            value_length.saturating_mul(2)
        } else {
            value_length
        };
        let value_end = value_start.saturating_add(value_bytes).min(end);
        Ok(Some(Node {
            key,
            value: &self.block[value_start..value_end],
            value_start,
            children: align4(value_end).min(end)..end,
            end,
        }))
    }

    /// The children of a node, in order.
    fn children(
        &mut self,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<Node<'a>>, VersionInfoError> {
        let mut children = Vec::new();
        let mut cursor = range.start;
        while cursor + NODE_HEADER_LEN <= range.end {
            let Some(child) = self.node(cursor, range.end)? else {
                break;
            };
            // A node is at least 6 bytes long, so the cursor moves on by at least 8.
            cursor = align4(child.end);
            children.push(child);
        }
        Ok(children)
    }
}

fn fixed_version(most: u32, least: u32) -> String {
    format!(
        "{}.{}.{}.{}",
        most >> 16,
        most & 0xffff,
        least >> 16,
        least & 0xffff
    )
}

/// Parses a `VS_VERSIONINFO` resource (the bytes of an `RT_VERSION` resource).
pub fn parse_version_info(
    block: &[u8],
    limits: &VersionInfoLimits,
) -> Result<PeVersionInfo, VersionInfoError> {
    let mut reader = Reader {
        block,
        limits: *limits,
        nodes: 0,
    };
    let root = reader
        .node(0, block.len())?
        .ok_or_else(|| VersionInfoError::NotVersionInfo("zero-length root node".into()))?;
    if root.key != "VS_VERSION_INFO" {
        return Err(VersionInfoError::NotVersionInfo(format!(
            "root key is {:?}",
            root.key
        )));
    }
    let mut info = PeVersionInfo::default();
    if !root.value.is_empty() {
        if root.value.len() < FIXED_FILE_INFO_LEN {
            return Err(VersionInfoError::Truncated {
                what: "VS_FIXEDFILEINFO",
                offset: root.value_start,
            });
        }
        let field = |index: usize| u32_at(root.value, index * 4).unwrap_or(0);
        if field(0) != FIXED_FILE_INFO_SIGNATURE {
            return Err(VersionInfoError::NotVersionInfo(format!(
                "VS_FIXEDFILEINFO signature {:#010x}",
                field(0)
            )));
        }
        info.fixed_file_version = Some(fixed_version(field(2), field(3)));
        info.fixed_product_version = Some(fixed_version(field(4), field(5)));
    }
    for file_info in reader.children(root.children.clone())? {
        if file_info.key != "StringFileInfo" {
            continue;
        }
        // The first table (usually the only one) names the file; other languages repeat it.
        let tables = reader.children(file_info.children.clone())?;
        let Some(table) = tables.into_iter().next() else {
            continue;
        };
        for string in reader.children(table.children.clone())? {
            if info.strings.len() >= limits.max_strings {
                return Err(VersionInfoError::Limit {
                    what: "strings",
                    limit: limits.max_strings,
                });
            }
            let (value, _) = utf16_until_nul(
                block,
                string.value_start,
                string.end,
                limits.max_value_units,
                "value characters",
            )?;
            info.strings.entry(string.key).or_insert(value);
        }
        info.language = Some(table.key);
        break;
    }
    Ok(info)
}

/// The bytes of the first `RT_VERSION` resource of a PE file (first name, first language), if
/// it has one. The walk is three levels deep by construction, so a resource directory whose
/// entries point back at themselves ends in an error, never a loop.
pub fn version_resource<'data, Pe: ImageNtHeaders>(
    file: &PeFile<'data, Pe>,
    data: &'data [u8],
) -> Result<Option<&'data [u8]>, VersionInfoError> {
    let directory_error = |e: object::Error| VersionInfoError::Directory(e.to_string());
    let sections = file.section_table();
    let Some(directory) = file
        .data_directories()
        .resource_directory(data, &sections)
        .map_err(|e| {
            VersionInfoError::Directory(format!(
                "the .rsrc data directory does not fit in the file: {e}"
            ))
        })?
    else {
        return Ok(None);
    };
    let root = directory.root().map_err(directory_error)?;
    let Some(version_type) = root
        .entries
        .iter()
        .find(|entry| matches!(entry.name_or_id(), ResourceNameOrId::Id(RT_VERSION)))
    else {
        return Ok(None);
    };
    let mut entry = version_type;
    // Type → name → language: the first two levels must be tables, the last a data entry.
    for level in ["RT_VERSION name", "RT_VERSION language"] {
        let ResourceDirectoryEntryData::Table(table) =
            entry.data(directory).map_err(directory_error)?
        else {
            return Err(VersionInfoError::Directory(format!(
                "{level} level is a data entry, not a table"
            )));
        };
        entry = table
            .entries
            .first()
            .ok_or_else(|| VersionInfoError::Directory(format!("{level} table has no entries")))?;
    }
    let ResourceDirectoryEntryData::Data(resource) =
        entry.data(directory).map_err(directory_error)?
    else {
        return Err(VersionInfoError::Directory(
            "RT_VERSION entry is a table, not data (a looping resource tree)".into(),
        ));
    };
    let rva = resource.offset_to_data.get(LE);
    let size = usize::try_from(resource.size.get(LE)).unwrap_or(usize::MAX);
    let bytes = sections.pe_data_at(data, rva).ok_or_else(|| {
        VersionInfoError::Directory(format!("RT_VERSION data RVA {rva:#x} is not in the file"))
    })?;
    let bytes = bytes.get(..size).ok_or_else(|| {
        VersionInfoError::Directory(format!(
            "RT_VERSION data of {size} bytes runs past its section ({} bytes left)",
            bytes.len()
        ))
    })?;
    Ok(Some(bytes))
}

/// The text of a version string as Syft normalises it: whitespace runs collapsed to one
/// space, control characters dropped, trimmed.
fn space_normalize(value: &str) -> String {
    value
        .split(|c: char| c.is_whitespace() || c == '\u{a0}' || c.is_control())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The leading words of a version string up to the first word without a digit once a digit
/// was seen (`4.7.4076.0 built by: X` → `4.7.4076.0`; `1, 0, 0, 0` stays).
fn extract_version(value: &str) -> String {
    let mut out = String::new();
    for word in value.split_whitespace() {
        let has_digit = |s: &str| s.chars().any(|c| c.is_ascii_digit());
        if has_digit(&out) && !has_digit(word) {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Numeric segments of a `v?N(.N)*` version with an optional `-pre`/`+build` tail.
fn numeric_segments(version: &str) -> Option<Vec<u64>> {
    let version = version.strip_prefix('v').unwrap_or(version);
    let core = version.split(['-', '+']).next()?;
    core.split('.').map(|part| part.parse().ok()).collect()
}

/// The greater of two versions when both parse and differ; `None` when equal or the product
/// version does not parse (then the punctuation rule decides).
fn greater_version(product: &str, file: &str) -> Option<String> {
    let product_segments = numeric_segments(product)?;
    let Some(file_segments) = numeric_segments(file) else {
        return Some(product.to_owned());
    };
    let width = product_segments.len().max(file_segments.len());
    let pad = |segments: &[u64]| {
        let mut padded = segments.to_vec();
        padded.resize(width, 0);
        padded
    };
    match pad(&product_segments).cmp(&pad(&file_segments)) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Less => Some(file.to_owned()),
        std::cmp::Ordering::Greater => Some(product.to_owned()),
    }
}

impl PeVersionInfo {
    fn string(&self, key: &str) -> String {
        self.strings
            .get(key)
            .map(|value| space_normalize(value))
            .unwrap_or_default()
    }

    fn is_microsoft(&self) -> bool {
        ["CompanyName", "ProductName"]
            .iter()
            .any(|key| self.string(key).to_lowercase().contains("microsoft"))
    }

    /// The component name Syft gives the file: `ProductName`, else `FileDescription`,
    /// `InternalName`, `OriginalFilename` (Microsoft files: `FileDescription` first and
    /// `ProductName` last, since theirs is "Microsoft® Windows® Operating System").
    pub fn component_name(&self) -> Option<String> {
        let keys: [&str; 4] = if self.is_microsoft() {
            [
                "FileDescription",
                "InternalName",
                "OriginalFilename",
                "ProductName",
            ]
        } else {
            [
                "ProductName",
                "FileDescription",
                "InternalName",
                "OriginalFilename",
            ]
        };
        keys.iter()
            .map(|key| self.string(key))
            .find(|value| !value.is_empty())
    }

    /// The component version Syft gives the file: the greater of the `ProductVersion` and
    /// `FileVersion` strings when both parse as versions, else the more detailed one; the
    /// fixed product version when the table has neither.
    pub fn component_version(&self) -> Option<String> {
        let product = extract_version(&self.string("ProductVersion"));
        let file = extract_version(&self.string("FileVersion"));
        let has_digit = |s: &str| s.chars().any(|c| c.is_ascii_digit());
        // Runs of `.`/`,`: how detailed a version is (`1.2.3` has 2, `1, 0, 0` has 2).
        let punctuation = |s: &str| {
            s.split(|c: char| c != '.' && c != ',')
                .filter(|run| !run.is_empty())
                .count()
        };
        let chosen = if let Some(greater) = greater_version(&product, &file) {
            greater
        } else if has_digit(&product) && punctuation(&product) >= punctuation(&file) {
            product
        } else if has_digit(&file) && punctuation(&file) > 0 {
            file
        } else if has_digit(&product) {
            product
        } else if has_digit(&file) {
            file
        } else {
            product
        };
        if chosen.is_empty() {
            self.fixed_product_version
                .clone()
                .or_else(|| self.fixed_file_version.clone())
        } else {
            Some(chosen)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(strings: &[(&str, &str)]) -> PeVersionInfo {
        PeVersionInfo {
            strings: strings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..PeVersionInfo::default()
        }
    }

    #[test]
    fn names_follow_syft() {
        let vendor = info(&[
            ("ProductName", " Acme\u{a0} Tool\t"),
            ("FileDescription", "x"),
        ]);
        assert_eq!(vendor.component_name().as_deref(), Some("Acme Tool"));
        let microsoft = info(&[
            ("CompanyName", "Microsoft Corporation"),
            ("ProductName", "Microsoft® Windows® Operating System"),
            ("FileDescription", "Notepad"),
        ]);
        assert_eq!(microsoft.component_name().as_deref(), Some("Notepad"));
        assert_eq!(info(&[]).component_name(), None);
    }

    #[test]
    fn versions_follow_syft() {
        let version = |p: &str, f: &str| {
            info(&[("ProductVersion", p), ("FileVersion", f)]).component_version()
        };
        assert_eq!(version("1.2.0", "1.2.3.4").as_deref(), Some("1.2.3.4"));
        assert_eq!(version("2.0", "1.9.9.9").as_deref(), Some("2.0"));
        assert_eq!(
            version("4.7.4076.0 built by: NET472REL1LAST_B", "").as_deref(),
            Some("4.7.4076.0")
        );
        assert_eq!(version("1, 0, 0, 0", "1").as_deref(), Some("1, 0, 0, 0"));
        assert_eq!(version("Release 73", "").as_deref(), Some("Release 73"));
        let fixed = PeVersionInfo {
            fixed_product_version: Some("3.0.0.0".into()),
            ..PeVersionInfo::default()
        };
        assert_eq!(fixed.component_version().as_deref(), Some("3.0.0.0"));
    }
}
