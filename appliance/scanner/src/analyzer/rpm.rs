//! rpm analyzer: the SQLite rpm database (`rpmdb.sqlite`, rpm ≥ 4.16: Fedora,
//! RHEL 9, openSUSE) read with rusqlite from bytes, and the rpm header format
//! parsed in pure Rust. BerkeleyDB (`Packages`) and NDB (`Packages.db`) databases
//! are reported as unknowns: not supported.

use rusqlite::{Connection, MAIN_DB, OpenFlags};

use super::{Analyzer, AnalyzerOutput, FileInfo, FoundComponent, OwnedFiles, PurlSpec};

/// Reads the rpm database.
#[derive(Debug, Clone, Copy)]
pub struct RpmAnalyzer;

/// Most index entries accepted in one header (rpm's own limit is 0xffff).
pub const MAX_HEADER_ENTRIES: usize = 0xffff;
/// Largest header data store accepted (rpm's own limit is 256 MiB).
pub const MAX_HEADER_DATA: usize = 256 << 20;

const TAG_NAME: i32 = 1000;
const TAG_VERSION: i32 = 1001;
const TAG_RELEASE: i32 = 1002;
const TAG_EPOCH: i32 = 1003;
const TAG_VENDOR: i32 = 1011;
const TAG_LICENSE: i32 = 1014;
const TAG_ARCH: i32 = 1022;
const TAG_SOURCERPM: i32 = 1044;
const TAG_DIRINDEXES: i32 = 1116;
const TAG_BASENAMES: i32 = 1117;
const TAG_DIRNAMES: i32 = 1118;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// One installed rpm package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpmPackage {
    /// `NAME`.
    pub name: String,
    /// `VERSION`.
    pub version: String,
    /// `RELEASE`.
    pub release: String,
    /// `EPOCH`, when set.
    pub epoch: Option<u32>,
    /// `ARCH`.
    pub arch: Option<String>,
    /// `LICENSE`.
    pub license: Option<String>,
    /// `SOURCERPM`.
    pub source_rpm: Option<String>,
    /// `VENDOR`.
    pub vendor: Option<String>,
    /// Owned files (root-relative), from `DIRNAMES`/`BASENAMES`/`DIRINDEXES`.
    pub files: Vec<String>,
}

struct IndexEntry {
    tag: i32,
    kind: u32,
    offset: usize,
    count: usize,
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn strings_at(data: &[u8], offset: usize, count: usize) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(count.min(4096));
    let mut at = offset;
    for _ in 0..count {
        let rest = data.get(at..).ok_or("string offset past the data store")?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("unterminated string in header")?;
        out.push(String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned());
        at += end + 1;
    }
    Ok(out)
}

/// Parses an rpm header blob as stored in the database (index count, data
/// length, index entries, data store; no lead, no header magic).
pub fn parse_header(blob: &[u8]) -> Result<RpmPackage, String> {
    let index_count = be_u32(blob, 0).ok_or("header shorter than 8 bytes")? as usize;
    let data_length = be_u32(blob, 4).ok_or("header shorter than 8 bytes")? as usize;
    if index_count > MAX_HEADER_ENTRIES || data_length > MAX_HEADER_DATA {
        return Err(format!(
            "header too large ({index_count} entries, {data_length} data bytes)"
        ));
    }
    let data_start = 8 + index_count * 16;
    let data = blob
        .get(data_start..data_start + data_length)
        .ok_or("header data store runs past the blob")?;
    let mut entries = Vec::with_capacity(index_count);
    for i in 0..index_count {
        let at = 8 + i * 16;
        let field = |k: usize| be_u32(blob, at + 4 * k).ok_or("index entry truncated");
        entries.push(IndexEntry {
            tag: field(0)? as i32,
            kind: field(1)?,
            offset: field(2)? as usize,
            count: field(3)? as usize,
        });
    }
    let find = |tag: i32| entries.iter().find(|e| e.tag == tag);
    let string = |tag: i32| -> Result<Option<String>, String> {
        match find(tag) {
            Some(e) if e.kind == TYPE_STRING || e.kind == TYPE_I18NSTRING => {
                Ok(strings_at(data, e.offset, 1)?.into_iter().next())
            }
            Some(e) => Err(format!("tag {tag} has type {} (expected a string)", e.kind)),
            None => Ok(None),
        }
    };
    let string_array = |tag: i32| -> Result<Vec<String>, String> {
        match find(tag) {
            Some(e) if e.kind == TYPE_STRING_ARRAY => {
                if e.count > data.len() {
                    return Err(format!(
                        "tag {tag}: count {} exceeds the data store",
                        e.count
                    ));
                }
                strings_at(data, e.offset, e.count)
            }
            Some(e) => Err(format!(
                "tag {tag} has type {} (expected a string array)",
                e.kind
            )),
            None => Ok(Vec::new()),
        }
    };
    let int32_array = |tag: i32| -> Result<Vec<u32>, String> {
        match find(tag) {
            Some(e) if e.kind == TYPE_INT32 => {
                if e.count > data.len() / 4 {
                    return Err(format!(
                        "tag {tag}: count {} exceeds the data store",
                        e.count
                    ));
                }
                (0..e.count)
                    .map(|i| {
                        be_u32(data, e.offset + 4 * i)
                            .ok_or_else(|| format!("tag {tag} runs past the data store"))
                    })
                    .collect()
            }
            Some(e) => Err(format!("tag {tag} has type {} (expected int32)", e.kind)),
            None => Ok(Vec::new()),
        }
    };
    let name = string(TAG_NAME)?
        .filter(|n| !n.is_empty())
        .ok_or("header has no NAME")?;
    let version = string(TAG_VERSION)?.ok_or_else(|| format!("package {name}: no VERSION"))?;
    let release = string(TAG_RELEASE)?.unwrap_or_default();
    let dirnames = string_array(TAG_DIRNAMES)?;
    let basenames = string_array(TAG_BASENAMES)?;
    let dirindexes = int32_array(TAG_DIRINDEXES)?;
    let mut files = Vec::with_capacity(basenames.len());
    for (basename, dirindex) in basenames.iter().zip(dirindexes.iter()) {
        let dir = dirnames
            .get(*dirindex as usize)
            .ok_or_else(|| format!("package {name}: dir index {dirindex} out of range"))?;
        files.push(
            format!("{dir}{basename}")
                .trim_start_matches('/')
                .to_owned(),
        );
    }
    Ok(RpmPackage {
        epoch: int32_array(TAG_EPOCH)?.first().copied(),
        arch: string(TAG_ARCH)?,
        license: string(TAG_LICENSE)?,
        source_rpm: string(TAG_SOURCERPM)?,
        vendor: string(TAG_VENDOR)?,
        name,
        version,
        release,
        files,
    })
}

/// Reads every header of an `rpmdb.sqlite` held in memory. Per-package
/// problems are returned beside the packages.
pub fn parse_rpmdb_sqlite(bytes: &[u8]) -> Result<(Vec<RpmPackage>, Vec<String>), String> {
    if !bytes.starts_with(b"SQLite format 3\0") {
        return Err("not an SQLite database".into());
    }
    let mut image = bytes.to_vec();
    // A WAL-mode database cannot be deserialised; switch its header to
    // rollback-journal mode (bytes 18 and 19), which changes nothing else.
    if let Some(header) = image.get_mut(18..20)
        && header == [2, 2]
    {
        header.copy_from_slice(&[1, 1]);
    }
    let mut connection = Connection::open_in_memory_with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| format!("sqlite: {e}"))?;
    let length = image.len();
    connection
        .deserialize_read_exact(MAIN_DB, image.as_slice(), length, true)
        .map_err(|e| format!("sqlite: {e}"))?;
    let mut statement = connection
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(|e| format!("rpmdb has no readable Packages table: {e}"))?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .map_err(|e| format!("sqlite: {e}"))?;
    let mut packages = Vec::new();
    let mut problems = Vec::new();
    for row in rows {
        match row {
            Ok((hnum, blob)) => match parse_header(&blob) {
                Ok(package) => packages.push(package),
                Err(reason) => problems.push(format!("header #{hnum}: {reason}")),
            },
            Err(e) => problems.push(format!("sqlite row: {e}")),
        }
    }
    Ok((packages, problems))
}

impl Analyzer for RpmAnalyzer {
    fn id(&self) -> &'static str {
        "rpm"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        let Some(dir) = file
            .path
            .strip_prefix("var/lib/rpm/")
            .or_else(|| file.path.strip_prefix("usr/lib/sysimage/rpm/"))
        else {
            return false;
        };
        matches!(dir, "rpmdb.sqlite" | "Packages" | "Packages.db")
    }
    fn analyze(&self, path: &str, bytes: &[u8]) -> AnalyzerOutput {
        if !path.ends_with("rpmdb.sqlite") {
            return AnalyzerOutput::unknown(
                "rpm BerkeleyDB (Packages) and NDB (Packages.db) databases are not supported; only rpmdb.sqlite",
            );
        }
        let (packages, problems) = match parse_rpmdb_sqlite(bytes) {
            Ok(parsed) => parsed,
            Err(reason) => return AnalyzerOutput::unknown(reason),
        };
        let mut output = AnalyzerOutput {
            unknowns: problems,
            ..AnalyzerOutput::default()
        };
        for package in packages {
            if package.name == "gpg-pubkey" {
                continue; // Imported signing keys, not software.
            }
            let version_release = if package.release.is_empty() {
                package.version.clone()
            } else {
                format!("{}-{}", package.version, package.release)
            };
            let display_version = match package.epoch {
                Some(epoch) => format!("{epoch}:{version_release}"),
                None => version_release.clone(),
            };
            let mut purl = PurlSpec::new("rpm", None, &package.name, Some(&version_release));
            if let Some(arch) = &package.arch {
                purl = purl.qualifier("arch", arch);
            }
            if let Some(epoch) = package.epoch {
                purl = purl.qualifier("epoch", &epoch.to_string());
            }
            if let Some(source) = &package.source_rpm {
                purl = purl.qualifier("upstream", source);
            }
            let mut component =
                FoundComponent::new("rpm", &package.name, &display_version, Some(purl));
            component.licenses.extend(package.license.clone());
            if let Some(source) = &package.source_rpm {
                component
                    .properties
                    .insert("stella:sourcePackage".into(), source.clone());
            }
            if let Some(vendor) = &package.vendor {
                component
                    .properties
                    .insert("stella:vendor".into(), vendor.clone());
            }
            output.owned_files.push(OwnedFiles {
                package: package.name.clone(),
                files: package.files,
            });
            output.components.push(component);
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a header blob from (tag, type, payload, count) entries.
    fn header(entries: &[(i32, u32, Vec<u8>, u32)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, payload, count) in entries {
            if *kind == TYPE_INT32 {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
            }
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&count.to_be_bytes());
            data.extend_from_slice(payload);
        }
        let mut blob = (entries.len() as u32).to_be_bytes().to_vec();
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    #[test]
    fn parses_a_header() {
        let blob = header(&[
            (TAG_NAME, TYPE_STRING, b"bash\0".to_vec(), 1),
            (TAG_VERSION, TYPE_STRING, b"5.2.15\0".to_vec(), 1),
            (TAG_RELEASE, TYPE_STRING, b"3.el9\0".to_vec(), 1),
            (TAG_EPOCH, TYPE_INT32, 1u32.to_be_bytes().to_vec(), 1),
            (TAG_DIRNAMES, TYPE_STRING_ARRAY, b"/usr/bin/\0".to_vec(), 1),
            (TAG_BASENAMES, TYPE_STRING_ARRAY, b"bash\0sh\0".to_vec(), 2),
            (
                TAG_DIRINDEXES,
                TYPE_INT32,
                [0u32.to_be_bytes(), 0u32.to_be_bytes()].concat(),
                2,
            ),
        ]);
        let package = parse_header(&blob).unwrap();
        assert_eq!((package.name.as_str(), package.epoch), ("bash", Some(1)));
        assert_eq!(package.files, vec!["usr/bin/bash", "usr/bin/sh"]);
    }

    #[test]
    fn hostile_headers_are_errors() {
        assert!(parse_header(b"").is_err());
        assert!(parse_header(&[0xff; 8]).is_err());
        let blob = header(&[(TAG_BASENAMES, TYPE_STRING_ARRAY, b"a\0".to_vec(), 1_000_000)]);
        assert!(parse_header(&blob).is_err());
        let blob = header(&[(TAG_NAME, TYPE_STRING, b"unterminated".to_vec(), 1)]);
        assert!(parse_header(&blob).is_err());
        assert!(parse_rpmdb_sqlite(b"SQLite format 3\0garbage").is_err());
    }
}
