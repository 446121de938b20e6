//! The scan pipeline: resolve, analyse or reuse each layer's fragment, compose.

use std::path::Path;

use crate::analyzer::{analyzer_key, registry};
use crate::error::ScanError;
use crate::fragment::{FragmentKey, LayerCache, LayerFragment};
use crate::image::{LayerRef, resolve};
use crate::layer::{AnalysisContext, FileStats, analyse_layer_blob};
use crate::result::{LayerInfo, compose};
use crate::source::{ImageSource, open_local};
use crate::{Progress, ProgressEvent, ScanOptions, ScanResult};

/// Scans the image in `source`.
///
/// Each layer's fragment is looked up in `cache` under (diff_id, analyzer
/// versions); a hit means the layer blob is not even opened. Misses are read,
/// verified (blob digest and size, then the uncompressed diff_id) and analysed,
/// and their fragments stored.
pub fn scan(
    source: &dyn ImageSource,
    options: &ScanOptions,
    cache: &dyn LayerCache,
    progress: &dyn Progress,
) -> Result<ScanResult, ScanError> {
    let image = resolve(source, &options.platform)?;
    let total_bytes = image
        .layers
        .iter()
        .map(|l| l.blob.size)
        .sum::<Option<u64>>();
    progress.on_event(&ProgressEvent::Resolved {
        image_id: image.image_id.clone(),
        layers: image.layers.len(),
        total_bytes,
    });
    let analyzers = registry();
    let key_text = analyzer_key(&analyzers);
    let mut file_stats = FileStats::default();
    let mut fragments = Vec::with_capacity(image.layers.len());
    let mut layer_infos = Vec::with_capacity(image.layers.len());
    for (index, layer) in image.layers.iter().enumerate() {
        let key = FragmentKey {
            diff_id: layer.diff_id.clone(),
            analyzers: key_text.clone(),
        };
        // A corrupt or foreign cache entry is not fatal: the layer is analysed again.
        let cached = cache
            .get(&key)?
            .and_then(|bytes| LayerFragment::from_bytes(&key, &bytes).ok());
        let reused = cached.is_some();
        progress.on_event(&ProgressEvent::LayerStarted {
            index,
            diff_id: layer.diff_id.clone(),
            reused,
        });
        let fragment = match cached {
            Some(fragment) => fragment,
            None => {
                let context = AnalysisContext {
                    analyzers: &analyzers,
                    analyzer_key: &key_text,
                    limits: &options.limits,
                    file_cache: cache,
                };
                let fragment = analyse_layer(source, layer, &context, &mut file_stats, progress)?;
                cache.put(&key, &fragment.to_bytes()?)?;
                fragment
            }
        };
        progress.on_event(&ProgressEvent::LayerFinished { index });
        layer_infos.push(LayerInfo {
            index,
            diff_id: layer.diff_id.clone(),
            blob_digest: layer.blob.digest.clone(),
            reused,
        });
        fragments.push(fragment);
    }
    let mut result = compose(&image, options, layer_infos, fragments);
    result.summary.files_analysed = file_stats.analysed;
    result.summary.files_reused = file_stats.reused;
    Ok(result)
}

fn analyse_layer(
    source: &dyn ImageSource,
    layer: &LayerRef,
    context: &AnalysisContext<'_>,
    file_stats: &mut FileStats,
    progress: &dyn Progress,
) -> Result<LayerFragment, ScanError> {
    let raw = match &layer.blob.path {
        Some(path) => source.open_path(path)?,
        None => source.open_blob(&layer.blob.digest)?,
    };
    let on_bytes = |n: u64| progress.on_event(&ProgressEvent::BytesRead(n));
    analyse_layer_blob(raw, layer, context, file_stats, &on_bytes)
}

/// Scans a local image: an OCI layout directory, an OCI archive or a `docker save` archive.
pub fn scan_path(
    path: &Path,
    options: &ScanOptions,
    cache: &dyn LayerCache,
    progress: &dyn Progress,
) -> Result<ScanResult, ScanError> {
    let source = open_local(path)?;
    scan(source.as_ref(), options, cache, progress)
}
