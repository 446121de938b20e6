//! Tar archive source: an OCI archive (a tar of an OCI layout) or a `docker save` archive.
//!
//! The archive is indexed once (entry path -> data offset and size); blobs are
//! then read by seeking, so nothing is unpacked to disk.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::sync::Mutex;

use super::{ImageSource, SourceEntry};
use crate::digest::Digest;
use crate::error::ScanError;

/// Most entries an archive index may hold (defends against tar bombs of empty entries).
const MAX_ARCHIVE_ENTRIES: usize = 1_000_000;
/// Longest symlink chain followed inside an archive.
const MAX_LINK_HOPS: usize = 8;

#[derive(Debug, Clone)]
enum IndexedEntry {
    File { offset: u64, size: u64 },
    Link { target: String },
}

/// A tar archive holding an OCI layout (`oci-layout` + `index.json`) or a
/// `docker save` image (`manifest.json`).
#[derive(Debug)]
pub struct TarArchiveSource {
    name: String,
    file: Mutex<File>,
    entries: BTreeMap<String, IndexedEntry>,
}

fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

impl TarArchiveSource {
    /// Indexes the archive in `file`; `name` is used in messages.
    pub fn open(file: File, name: String) -> Result<TarArchiveSource, ScanError> {
        let mut entries = BTreeMap::new();
        {
            let mut archive = tar::Archive::new(BufReader::new(&file));
            let iter = archive
                .entries()
                .map_err(|e| ScanError::from_io(name.clone(), e))?;
            for entry in iter {
                let entry = entry.map_err(|e| ScanError::from_io(name.clone(), e))?;
                if entries.len() >= MAX_ARCHIVE_ENTRIES {
                    return Err(ScanError::LimitExceeded {
                        what: name.clone(),
                        limit: format!("{MAX_ARCHIVE_ENTRIES} archive entries"),
                    });
                }
                let raw_path = entry
                    .path()
                    .map_err(|e| ScanError::from_io(name.clone(), e))?;
                let path = normalise(&raw_path.to_string_lossy());
                let kind = entry.header().entry_type();
                if kind.is_file() {
                    entries.insert(
                        path,
                        IndexedEntry::File {
                            offset: entry.raw_file_position(),
                            size: entry.size(),
                        },
                    );
                } else if kind.is_symlink() || kind.is_hard_link() {
                    let target = entry
                        .link_name()
                        .map_err(|e| ScanError::from_io(name.clone(), e))?
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let target = if kind.is_symlink() {
                        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                        normalise(&format!("{parent}/{target}"))
                    } else {
                        normalise(&target)
                    };
                    entries.insert(path, IndexedEntry::Link { target });
                }
            }
        }
        Ok(TarArchiveSource {
            name,
            file: Mutex::new(file),
            entries,
        })
    }

    fn read_small(&self, path: &str, limit: u64) -> Result<Vec<u8>, ScanError> {
        let mut reader = self.open_path(path)?;
        let mut bytes = Vec::new();
        reader
            .by_ref()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ScanError::from_io(format!("{}:{path}", self.name), e))?;
        if bytes.len() as u64 > limit {
            return Err(ScanError::LimitExceeded {
                what: format!("{}:{path}", self.name),
                limit: format!("{limit} bytes"),
            });
        }
        Ok(bytes)
    }

    fn locate(&self, path: &str) -> Option<(u64, u64)> {
        let mut current = normalise(path);
        for _ in 0..MAX_LINK_HOPS {
            match self.entries.get(&current)? {
                IndexedEntry::File { offset, size } => return Some((*offset, *size)),
                IndexedEntry::Link { target } => current = target.clone(),
            }
        }
        None
    }
}

impl ImageSource for TarArchiveSource {
    fn describe(&self) -> String {
        format!("archive:{}", self.name)
    }

    fn entry(&self) -> Result<SourceEntry, ScanError> {
        // A layout inside the archive wins: newer `docker save` writes both.
        if self.entries.contains_key("index.json") {
            let marker = self.read_small("oci-layout", 1 << 16)?;
            super::layout::check_layout_marker(&marker, &format!("{}:oci-layout", self.name))?;
            let bytes = self.read_small("index.json", 4 << 20)?;
            return Ok(SourceEntry::Oci {
                bytes,
                digest: None,
            });
        }
        if self.entries.contains_key("manifest.json") {
            let bytes = self.read_small("manifest.json", 4 << 20)?;
            return Ok(SourceEntry::Docker { bytes });
        }
        Err(ScanError::InvalidImage {
            what: self.name.clone(),
            reason: "neither index.json (OCI archive) nor manifest.json (docker save) found".into(),
        })
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, ScanError> {
        self.open_path(&format!("blobs/sha256/{}", digest.hex()))
            .map_err(|e| match e {
                ScanError::BlobNotFound { .. } => ScanError::BlobNotFound {
                    digest: digest.to_string(),
                    source_name: self.describe(),
                },
                other => other,
            })
    }

    fn open_path(&self, path: &str) -> Result<Box<dyn Read + '_>, ScanError> {
        let (offset, size) = self.locate(path).ok_or_else(|| ScanError::BlobNotFound {
            digest: path.to_owned(),
            source_name: self.describe(),
        })?;
        Ok(Box::new(ArchiveSlice {
            source: self,
            position: offset,
            remaining: size,
        }))
    }
}

/// A window onto one entry's data; each read seeks, so several may be open.
struct ArchiveSlice<'a> {
    source: &'a TarArchiveSource,
    position: u64,
    remaining: u64,
}

impl Read for ArchiveSlice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let mut file = self
            .source
            .file
            .lock()
            .map_err(|_| std::io::Error::other("archive file lock poisoned"))?;
        file.seek(SeekFrom::Start(self.position))?;
        let target = buf.get_mut(..want).unwrap_or_default();
        let n = file.read(target)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "archive truncated inside an entry",
            ));
        }
        self.position += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}
