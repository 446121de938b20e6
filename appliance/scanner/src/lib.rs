//! Scanner: image intake, layer filesystem, analyzers, SBOM composition.
//!
//! Entry point: [`scan`] takes an [`ImageSource`] (OCI layout directory, OCI
//! archive, `docker save` archive; see [`source::open_local`]), resolves the
//! image for a platform, analyses each layer once (or reuses its cached
//! [`LayerFragment`]), merges the layers the way a container runtime does and
//! returns a [`ScanResult`], which renders deterministic CycloneDX 1.6 and
//! SPDX 2.3 JSON. The scanner never reads the clock and never opens a socket.

pub mod analyzer;
pub mod bomindex;
pub mod diff;
pub mod digest;
pub mod error;
pub mod fixture;
pub mod fragment;
pub mod fs;
pub mod image;
pub mod layer;
mod result;
pub mod sbom;
mod scan;
pub mod source;
pub mod usage;

pub use analyzer::{Analyzer, ComponentKind, Distro};
pub use digest::Digest;
pub use error::ScanError;
pub use fragment::{FragmentKey, LayerCache, LayerFragment, MemoryLayerCache, NoCache};
pub use fs::MergedView;
pub use image::{Platform, ResolvedImage};
pub use result::{
    Binary, Component, ImageInfo, LayerInfo, RuntimeConfig, ScanResult, ScanSummary, Unknown,
};
pub use scan::{scan, scan_path};
pub use source::{
    Credentials, ImageReference, ImageSource, OciLayoutSource, RegistryAccess, RegistrySource,
    TarArchiveSource, Transport, open_image, open_local,
};

/// Limits applied to untrusted image content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest file whose bytes are handed to analyzers (default 128 MiB);
    /// larger wanted files become unknowns.
    pub max_file_bytes: u64,
    /// Most tar entries in one layer (default 1,000,000).
    pub max_layer_entries: usize,
    /// Longest entry path in bytes (default 4096, Linux's `PATH_MAX`).
    pub max_path_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 128 << 20,
            max_layer_entries: 1_000_000,
            max_path_bytes: 4096,
        }
    }
}

/// How to scan.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Which manifest of a multi-platform index to scan (default `linux/amd64`).
    pub platform: Platform,
    /// `SOURCE_DATE_EPOCH` (seconds) for SBOM timestamps; when `None` the image
    /// config's `created` is used, and when that is absent the Unix epoch.
    /// The scanner never reads the clock (nor the environment): callers pass this.
    pub source_date_epoch: Option<i64>,
    /// A name for the image in SBOMs (for example the registry reference).
    /// When `None` the image id is used, so that the same image gives the same
    /// SBOM whichever way it was delivered.
    pub image_name: Option<String>,
    /// Limits on untrusted content.
    pub limits: Limits,
    /// How many layers are read and analysed at once; 0 (the default) and 1
    /// mean one at a time. More helps on idle multi-core machines and costs
    /// peak memory; on an oversubscribed machine it is slower (see
    /// docs/scanner.md, Benchmark). Results do not depend on it.
    pub parallel_layers: usize,
}

/// Something that happened during a scan, for progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The image was resolved: id and number of layers.
    Resolved {
        /// The image id (config digest).
        image_id: Digest,
        /// Number of layers.
        layers: usize,
        /// Sum of the layer blob sizes, when known.
        total_bytes: Option<u64>,
    },
    /// A layer is being processed.
    LayerStarted {
        /// Index, bottom = 0.
        index: usize,
        /// The layer's diff_id.
        diff_id: Digest,
        /// Whether its fragment came from the cache.
        reused: bool,
    },
    /// Compressed bytes read from the source.
    BytesRead(u64),
    /// A layer is done.
    LayerFinished {
        /// Index, bottom = 0.
        index: usize,
    },
}

/// Receives progress events (a progress bar, metrics ...). Must be cheap.
pub trait Progress: Sync {
    /// Called for every event.
    fn on_event(&self, event: &ProgressEvent);
}

/// Discards progress events.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn on_event(&self, _event: &ProgressEvent) {}
}
