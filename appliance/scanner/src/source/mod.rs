//! Where images come from: the [`ImageSource`] trait and its implementations
//! (OCI layout directory, OCI archive, `docker save` archive).
//!
//! A source only hands out raw bytes; it never trusts them. Digest and size
//! checks happen in [`crate::image`] and [`crate::scan`] through
//! [`crate::digest::VerifyingReader`], so a new source (for example a registry
//! client speaking the Distribution v2 API) only needs to implement three
//! methods and gets verification for free.

mod archive;
mod layout;
pub mod registry;

use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use archive::TarArchiveSource;
pub use layout::OciLayoutSource;
pub use registry::{Credentials, ImageReference, RegistrySource, Transport};

use crate::digest::Digest;
use crate::error::ScanError;

/// The document a source starts from.
#[derive(Debug, Clone)]
pub enum SourceEntry {
    /// An OCI image index (a layout's `index.json`) or an image manifest
    /// (for example fetched from a registry by tag); told apart by content.
    Oci {
        /// The raw document.
        bytes: Vec<u8>,
        /// Its digest when it is itself content-addressed (a registry manifest);
        /// `None` for a layout's `index.json`.
        digest: Option<Digest>,
    },
    /// The `manifest.json` of a `docker save` archive.
    Docker {
        /// The raw document.
        bytes: Vec<u8>,
    },
}

/// A place images are read from. Implementations return unverified bytes;
/// the caller verifies every blob against its digest and size.
pub trait ImageSource: Sync {
    /// A short human description for messages (`oci-layout:/path`, ...).
    fn describe(&self) -> String;

    /// The starting document.
    fn entry(&self) -> Result<SourceEntry, ScanError>;

    /// Opens the blob named `digest` (content still to be verified by the caller).
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, ScanError>;

    /// Opens a file by its path inside the source. Only `docker save`
    /// archives, whose legacy layers are named by path, need this.
    fn open_path(&self, path: &str) -> Result<Box<dyn Read + '_>, ScanError> {
        Err(ScanError::BlobNotFound {
            digest: path.to_owned(),
            source_name: self.describe(),
        })
    }
}

/// Opens `path` as whichever local source it is: a directory holding an OCI
/// layout, or a tar archive holding an OCI layout or a `docker save` image.
pub fn open_local(path: &Path) -> Result<Box<dyn ImageSource>, ScanError> {
    let metadata =
        std::fs::metadata(path).map_err(|e| ScanError::from_io(path.display().to_string(), e))?;
    if metadata.is_dir() {
        return Ok(Box::new(OciLayoutSource::open(path)?));
    }
    let file = File::open(path).map_err(|e| ScanError::from_io(path.display().to_string(), e))?;
    Ok(Box::new(TarArchiveSource::open(
        file,
        path.display().to_string(),
    )?))
}

/// How to reach registries when an image argument is a reference.
#[derive(Debug, Clone, Default)]
pub struct RegistryAccess {
    /// Registries (`host[:port]`) that may be spoken to over plain HTTP
    /// (`--insecure-registry`, repeatable). All others use HTTPS.
    pub insecure_registries: Vec<String>,
    /// Credentials for the registry or its token service.
    pub credentials: Option<Credentials>,
}

/// Opens what `stella scan IMAGE` names: an existing local path (OCI layout
/// directory, OCI archive, `docker save` archive), otherwise a registry
/// reference `host[:port]/repo[:tag|@digest]`. Nothing is fetched yet.
pub fn open_image(image: &str, access: &RegistryAccess) -> Result<Box<dyn ImageSource>, ScanError> {
    let path = Path::new(image);
    if path.exists() {
        return open_local(path);
    }
    let reference = ImageReference::parse(image)?;
    let transport = if access.insecure_registries.contains(&reference.registry) {
        Transport::InsecureHttp
    } else {
        Transport::Https
    };
    Ok(Box::new(RegistrySource::new(
        reference,
        transport,
        access.credentials.clone(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_image_tells_paths_from_references() {
        let layout = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/scanner/fixture-oci"
        );
        let access = RegistryAccess {
            insecure_registries: vec!["127.0.0.1:5000".into()],
            credentials: None,
        };
        assert!(
            open_image(layout, &access)
                .unwrap()
                .describe()
                .starts_with("oci-layout:")
        );
        let source = open_image("127.0.0.1:5000/team/app:1", &access).unwrap();
        assert_eq!(source.describe(), "registry:127.0.0.1:5000/team/app:1");
        assert!(open_image("no/such/path-or-ref", &access).is_err());
    }
}
