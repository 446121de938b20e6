//! Builds small OCI image layouts from bytes and host files, deterministically (tar headers
//! with mtime 0, uid/gid 0; uncompressed layers). Used by tests and benchmarks that make
//! fixture images from real files of the machine (`/usr/bin/python3.11` and its libraries).

use std::fs;
use std::io;
use std::path::Path;

use crate::digest::Digest;
use crate::result::RuntimeConfig;

/// One layer being built, as a tar in memory.
pub struct LayerBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder::new()
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> LayerBuilder {
        LayerBuilder {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// Adds a regular file (root-relative path).
    pub fn file(&mut self, path: &str, bytes: &[u8], mode: u32) -> io::Result<&mut Self> {
        let mut header = header(tar::EntryType::Regular, mode, bytes.len() as u64);
        self.builder
            .append_data(&mut header, path.trim_start_matches('/'), bytes)?;
        Ok(self)
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<&mut Self> {
        let mut header = header(tar::EntryType::Symlink, 0o777, 0);
        self.builder
            .append_link(&mut header, path.trim_start_matches('/'), target)?;
        Ok(self)
    }

    /// Adds a whiteout deleting `path` from the layers below.
    pub fn whiteout(&mut self, path: &str) -> io::Result<&mut Self> {
        let path = path.trim_start_matches('/');
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let whiteout = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&whiteout, b"", 0o644)
    }

    /// Copies a host file (symlinks on the host followed) to `path`, keeping its mode.
    pub fn host_file(&mut self, path: &str, host: &Path) -> io::Result<&mut Self> {
        use std::os::unix::fs::PermissionsExt;
        let bytes = fs::read(host)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", host.display())))?;
        let mode = fs::metadata(host)?.permissions().mode() & 0o7777;
        self.file(path, &bytes, mode)
    }

    /// The layer tar.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        self.builder.into_inner()
    }
}

/// Writes an OCI image layout with the given layers (uncompressed tars) and runtime config to
/// `dir`; returns the image id (config digest).
pub fn write_oci_layout(
    dir: &Path,
    runtime: &RuntimeConfig,
    layers: &[Vec<u8>],
) -> io::Result<Digest> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in layers {
        let digest = Digest::of_bytes(layer);
        fs::write(blobs.join(digest.hex()), layer)?;
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest.as_str(), "size": layer.len()}));
        diff_ids.push(digest.as_str().to_owned());
    }
    let mut config = serde_json::Map::new();
    if !runtime.entrypoint.is_empty() {
        config.insert("Entrypoint".into(), serde_json::json!(runtime.entrypoint));
    }
    if !runtime.cmd.is_empty() {
        config.insert("Cmd".into(), serde_json::json!(runtime.cmd));
    }
    if !runtime.env.is_empty() {
        config.insert("Env".into(), serde_json::json!(runtime.env));
    }
    if let Some(dir) = &runtime.working_dir {
        config.insert("WorkingDir".into(), serde_json::json!(dir));
    }
    if let Some(user) = &runtime.user {
        config.insert("User".into(), serde_json::json!(user));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids}}))?;
    let config_digest = Digest::of_bytes(&config);
    fs::write(blobs.join(config_digest.hex()), &config)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.as_str(), "size": config.len()},
        "layers": descriptors}))?;
    let manifest_digest = Digest::of_bytes(&manifest);
    fs::write(blobs.join(manifest_digest.hex()), &manifest)?;
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": manifest_digest.as_str(), "size": manifest.len()}]}))?,
    )?;
    Ok(config_digest)
}
