//! Resolving an image from a source: index -> platform manifest -> config -> layers,
//! with every small document verified against its digest before it is parsed.

use std::fmt;
use std::io::Read;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use crate::digest::{Digest, VerifyKind, VerifyingReader};
use crate::error::ScanError;
use crate::source::{ImageSource, SourceEntry};

/// Largest index, manifest or config document accepted.
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;
/// Deepest chain of nested indexes followed.
const MAX_INDEX_DEPTH: usize = 4;

/// A target platform: `os/arch[/variant]`, default `linux/amd64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// CPU architecture in GOARCH terms (`amd64`, `arm64`).
    pub architecture: String,
    /// CPU variant (`v8`), when given.
    pub variant: Option<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl Platform {
    /// Parses `os/arch` or `os/arch/variant`.
    pub fn parse(text: &str) -> Result<Platform, ScanError> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |s: &&str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        };
        match parts.as_slice() {
            [os, arch] if valid(os) && valid(arch) => Ok(Platform {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: None,
            }),
            [os, arch, variant] if valid(os) && valid(arch) && valid(variant) => Ok(Platform {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: Some((*variant).to_owned()),
            }),
            _ => Err(ScanError::InvalidPlatform(text.to_owned())),
        }
    }

    fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        match (&self.variant, variant) {
            (None, _) => true,
            (Some(wanted), Some(have)) => wanted == have,
            // arm64 without a variant means v8.
            (Some(wanted), None) => self.architecture == "arm64" && wanted == "v8",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Where a layer blob lives in the source.
#[derive(Debug, Clone)]
pub struct BlobRef {
    /// The blob's digest (for uncompressed `docker save` layers: the diff_id).
    pub digest: Digest,
    /// The size from the descriptor, when there is one.
    pub size: Option<u64>,
    /// A path inside a `docker save` archive, for legacy layers named by path.
    pub path: Option<String>,
}

/// One layer of a resolved image.
#[derive(Debug, Clone)]
pub struct LayerRef {
    /// Digest of the uncompressed layer tar (config `rootfs.diff_ids`); the layer's identity
    /// in results and cache keys, the same whichever way the image was delivered.
    pub diff_id: Digest,
    /// The (possibly compressed) blob.
    pub blob: BlobRef,
    /// Media type from the manifest, informational only: compression is sniffed.
    pub media_type: String,
}

/// An image resolved to its config and layers.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The image id: digest of the config blob. Stable across intake paths
    /// (layout, archive, `docker save`, registry), so it seeds SBOM identities.
    pub image_id: Digest,
    /// Digest of the image manifest, when the source has one.
    pub manifest_digest: Option<Digest>,
    /// The parsed config.
    pub config: ImageConfiguration,
    /// Layers, bottom first.
    pub layers: Vec<LayerRef>,
    /// The image's platform as its config states it.
    pub platform: Platform,
}

/// Reads a whole small blob, verifying its digest (and size when known).
pub(crate) fn read_verified_blob(
    source: &dyn ImageSource,
    digest: &Digest,
    size: Option<u64>,
) -> Result<Vec<u8>, ScanError> {
    if let Some(size) = size
        && size > MAX_DOCUMENT_BYTES
    {
        return Err(ScanError::LimitExceeded {
            what: format!("blob {digest}"),
            limit: format!("{MAX_DOCUMENT_BYTES} bytes for a document"),
        });
    }
    let reader = source.open_blob(digest)?;
    read_verified(reader, digest, size)
}

fn read_verified(
    reader: Box<dyn Read + '_>,
    digest: &Digest,
    size: Option<u64>,
) -> Result<Vec<u8>, ScanError> {
    let mut verifying = VerifyingReader::new(reader, digest.clone(), size, VerifyKind::Blob);
    let mut bytes = Vec::new();
    (&mut verifying)
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ScanError::from_io(digest.to_string(), e))?;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(ScanError::LimitExceeded {
            what: format!("blob {digest}"),
            limit: format!("{MAX_DOCUMENT_BYTES} bytes for a document"),
        });
    }
    verifying.finish()?;
    Ok(bytes)
}

fn invalid(what: impl Into<String>, reason: impl fmt::Display) -> ScanError {
    ScanError::InvalidImage {
        what: what.into(),
        reason: reason.to_string(),
    }
}

fn descriptor_digest(descriptor: &Descriptor, what: &str) -> Result<Digest, ScanError> {
    Digest::parse(descriptor.digest().as_ref()).map_err(|e| invalid(what, e))
}

fn is_index_media_type(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || media_type.to_string() == "application/vnd.docker.distribution.manifest.list.v2+json"
}

fn platform_of(descriptor: &Descriptor) -> Option<(String, String, Option<String>)> {
    descriptor.platform().as_ref().map(|p| {
        (
            p.os().to_string(),
            p.architecture().to_string(),
            p.variant().clone(),
        )
    })
}

/// Resolves the image in `source` for `platform`.
pub fn resolve(source: &dyn ImageSource, platform: &Platform) -> Result<ResolvedImage, ScanError> {
    match source.entry()? {
        SourceEntry::Oci { bytes, digest } => {
            resolve_oci_document(source, platform, bytes, digest, 0)
        }
        SourceEntry::Docker { bytes } => resolve_docker(source, &bytes),
    }
}

fn resolve_oci_document(
    source: &dyn ImageSource,
    platform: &Platform,
    bytes: Vec<u8>,
    digest: Option<Digest>,
    depth: usize,
) -> Result<ResolvedImage, ScanError> {
    let what = digest
        .as_ref()
        .map(|d| d.to_string())
        .unwrap_or_else(|| "index.json".to_owned());
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| invalid(&what, e))?;
    let is_manifest = value.get("layers").is_some() || value.get("config").is_some();
    if is_manifest {
        return resolve_manifest(source, &bytes, digest);
    }
    if depth >= MAX_INDEX_DEPTH {
        return Err(invalid(
            &what,
            format!("indexes nested deeper than {MAX_INDEX_DEPTH}"),
        ));
    }
    let index = ImageIndex::from_reader(bytes.as_slice()).map_err(|e| invalid(&what, e))?;
    let manifests = index.manifests();
    let chosen = choose_manifest(manifests, platform, &what)?;
    let child_digest = descriptor_digest(chosen, &what)?;
    let child = read_verified_blob(source, &child_digest, Some(chosen.size()))?;
    if is_index_media_type(chosen.media_type()) {
        return resolve_oci_document(source, platform, child, Some(child_digest), depth + 1);
    }
    resolve_oci_document(source, platform, child, Some(child_digest), depth + 1)
}

fn choose_manifest<'a>(
    manifests: &'a [Descriptor],
    platform: &Platform,
    what: &str,
) -> Result<&'a Descriptor, ScanError> {
    // Attestation manifests (unknown/unknown) are never images to scan.
    let candidates: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| platform_of(d).is_none_or(|(os, arch, _)| os != "unknown" && arch != "unknown"))
        .collect();
    let with_platform: Vec<&&Descriptor> = candidates
        .iter()
        .filter(|d| d.platform().is_some())
        .collect();
    if with_platform.is_empty() {
        // A single-image layout: its index lists the manifest without a platform.
        return match candidates.as_slice() {
            [only] => Ok(only),
            [] => Err(invalid(what, "index lists no manifests")),
            _ => Err(invalid(
                what,
                "index lists several manifests and none carries a platform",
            )),
        };
    }
    for descriptor in &with_platform {
        if let Some((os, arch, variant)) = platform_of(descriptor)
            && platform.matches(&os, &arch, variant.as_deref())
        {
            return Ok(descriptor);
        }
    }
    let available: Vec<String> = with_platform
        .iter()
        .filter_map(|d| platform_of(d))
        .map(|(os, arch, variant)| match variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        })
        .collect();
    Err(ScanError::PlatformNotFound {
        wanted: platform.to_string(),
        available: available.join(", "),
    })
}

fn resolve_manifest(
    source: &dyn ImageSource,
    bytes: &[u8],
    digest: Option<Digest>,
) -> Result<ResolvedImage, ScanError> {
    let what = digest
        .as_ref()
        .map(|d| format!("manifest {d}"))
        .unwrap_or_else(|| "manifest".to_owned());
    let manifest = ImageManifest::from_reader(bytes).map_err(|e| invalid(&what, e))?;
    let config_digest = descriptor_digest(manifest.config(), &what)?;
    let config_bytes = read_verified_blob(source, &config_digest, Some(manifest.config().size()))?;
    let config = parse_config(&config_bytes, &config_digest)?;
    let diff_ids = diff_ids(&config, &config_digest)?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(invalid(
            &what,
            format!(
                "{} layers but config {config_digest} lists {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (descriptor, diff_id) in manifest.layers().iter().zip(diff_ids) {
        layers.push(LayerRef {
            diff_id,
            blob: BlobRef {
                digest: descriptor_digest(descriptor, &what)?,
                size: Some(descriptor.size()),
                path: None,
            },
            media_type: descriptor.media_type().to_string(),
        });
    }
    Ok(ResolvedImage {
        image_id: config_digest,
        manifest_digest: digest,
        platform: config_platform(&config),
        config,
        layers,
    })
}

fn parse_config(bytes: &[u8], digest: &Digest) -> Result<ImageConfiguration, ScanError> {
    ImageConfiguration::from_reader(bytes).map_err(|e| invalid(format!("config {digest}"), e))
}

fn config_platform(config: &ImageConfiguration) -> Platform {
    Platform {
        os: config.os().to_string(),
        architecture: config.architecture().to_string(),
        variant: config.variant().clone(),
    }
}

fn diff_ids(config: &ImageConfiguration, digest: &Digest) -> Result<Vec<Digest>, ScanError> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d).map_err(|e| invalid(format!("config {digest}"), e)))
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    layers: Vec<String>,
}

/// `blobs/sha256/<hex>` or `<hex>.json` -> digest named by the path.
fn digest_from_path(path: &str) -> Option<Digest> {
    let file = path.rsplit('/').next()?;
    let hex_part = file.strip_suffix(".json").unwrap_or(file);
    Digest::parse(&format!("sha256:{hex_part}")).ok()
}

fn resolve_docker(source: &dyn ImageSource, bytes: &[u8]) -> Result<ResolvedImage, ScanError> {
    let what = "manifest.json";
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(bytes).map_err(|e| invalid(what, e))?;
    let entry = match entries.as_slice() {
        [only] => only,
        [] => return Err(invalid(what, "lists no image")),
        _ => {
            return Err(invalid(
                what,
                "holds several images; save one image per archive",
            ));
        }
    };
    let config_digest = digest_from_path(&entry.config).ok_or_else(|| {
        invalid(
            what,
            format!(
                "config path {:?} does not name a sha256 digest",
                entry.config
            ),
        )
    })?;
    let config_bytes = read_verified(source.open_path(&entry.config)?, &config_digest, None)?;
    let config = parse_config(&config_bytes, &config_digest)?;
    let diff_ids = diff_ids(&config, &config_digest)?;
    if diff_ids.len() != entry.layers.len() {
        return Err(invalid(
            what,
            format!(
                "{} layers but config {config_digest} lists {} diff_ids",
                entry.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
        // Newer archives name layers by blob digest; legacy ones store the
        // uncompressed tar as `<id>/layer.tar`, whose digest is the diff_id.
        let digest = if path.starts_with("blobs/sha256/") {
            digest_from_path(path).ok_or_else(|| invalid(what, format!("layer path {path:?}")))?
        } else {
            diff_id.clone()
        };
        layers.push(LayerRef {
            diff_id,
            blob: BlobRef {
                digest,
                size: None,
                path: Some(path.clone()),
            },
            media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
        });
    }
    Ok(ResolvedImage {
        image_id: config_digest,
        manifest_digest: None,
        platform: config_platform(&config),
        config,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert!(p.matches("linux", "arm64", None));
        assert!(!p.matches("linux", "arm64", Some("v9")));
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//x").is_err());
        assert_eq!(Platform::default().to_string(), "linux/amd64");
    }
}
