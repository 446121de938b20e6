//! OCI image layout directory source (`oci-layout`, `index.json`, `blobs/sha256/...`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{ImageSource, SourceEntry};
use crate::digest::Digest;
use crate::error::ScanError;

/// An OCI image layout on disk.
#[derive(Debug)]
pub struct OciLayoutSource {
    root: PathBuf,
}

impl OciLayoutSource {
    /// Opens the layout at `root`; checks the `oci-layout` marker file.
    pub fn open(root: &Path) -> Result<OciLayoutSource, ScanError> {
        let marker = root.join("oci-layout");
        let bytes = std::fs::read(&marker)
            .map_err(|e| ScanError::from_io(marker.display().to_string(), e))?;
        check_layout_marker(&bytes, &marker.display().to_string())?;
        Ok(OciLayoutSource {
            root: root.to_path_buf(),
        })
    }
}

/// Checks that an `oci-layout` file declares a layout version we understand.
pub(crate) fn check_layout_marker(bytes: &[u8], what: &str) -> Result<(), ScanError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ScanError::InvalidImage {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    match value.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some("1.0.0") => Ok(()),
        other => Err(ScanError::InvalidImage {
            what: what.to_owned(),
            reason: format!("unsupported imageLayoutVersion {other:?}"),
        }),
    }
}

impl ImageSource for OciLayoutSource {
    fn describe(&self) -> String {
        format!("oci-layout:{}", self.root.display())
    }

    fn entry(&self) -> Result<SourceEntry, ScanError> {
        let path = self.root.join("index.json");
        let bytes =
            std::fs::read(&path).map_err(|e| ScanError::from_io(path.display().to_string(), e))?;
        Ok(SourceEntry::Oci {
            bytes,
            digest: None,
        })
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, ScanError> {
        // The digest type guarantees 64 hex characters, so the path cannot escape.
        let path = self.root.join("blobs").join("sha256").join(digest.hex());
        match File::open(&path) {
            Ok(file) => Ok(Box::new(std::io::BufReader::new(file))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ScanError::BlobNotFound {
                digest: digest.to_string(),
                source_name: self.describe(),
            }),
            Err(e) => Err(ScanError::from_io(path.display().to_string(), e)),
        }
    }
}
