//! The scan pipeline: resolve, analyse or reuse each layer's fragment, compose.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::analyzer::{analyzer_key, registry};
use crate::error::ScanError;
use crate::fragment::{FragmentKey, LayerCache, LayerFragment};
use crate::image::{LayerRef, resolve};
use crate::layer::{AnalysisContext, FileStats, analyse_layer_blob};
use crate::result::{LayerInfo, compose};
use crate::source::{ImageSource, open_local};
use crate::{Progress, ProgressEvent, ScanOptions, ScanResult};

/// One analysed layer (by index), or why it failed.
type LayerOutcome = (usize, Result<(LayerFragment, FileStats), ScanError>);

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
    let keys: Vec<FragmentKey> = image
        .layers
        .iter()
        .map(|layer| FragmentKey {
            diff_id: layer.diff_id.clone(),
            analyzers: key_text.clone(),
        })
        .collect();
    // First every cached fragment (a corrupt or foreign entry is not fatal:
    // the layer is analysed again) ...
    let mut fragments: Vec<Option<LayerFragment>> = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let cached = cache
            .get(key)?
            .and_then(|bytes| LayerFragment::from_bytes(key, &bytes).ok());
        if cached.is_some() {
            progress.on_event(&ProgressEvent::LayerStarted {
                index,
                diff_id: key.diff_id.clone(),
                reused: true,
            });
            progress.on_event(&ProgressEvent::LayerFinished { index });
        }
        fragments.push(cached);
    }
    let reused: Vec<bool> = fragments.iter().map(Option::is_some).collect();
    // ... then the misses, several layers at a time. Each layer's fragment
    // depends on that layer only, so the order of work does not matter.
    let misses: Vec<usize> = (0..fragments.len()).filter(|&i| !reused[i]).collect();
    let context = AnalysisContext {
        analyzers: &analyzers,
        analyzer_key: &key_text,
        limits: &options.limits,
        file_cache: cache,
    };
    let workers = options.parallel_layers.min(misses.len()).max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let outcomes: Mutex<Vec<LayerOutcome>> = Mutex::new(Vec::new());
    let work = || {
        loop {
            let position = next.fetch_add(1, Ordering::SeqCst);
            let Some(&index) = misses.get(position) else {
                break;
            };
            if failed.load(Ordering::SeqCst) {
                break;
            }
            let (Some(layer), Some(key)) = (image.layers.get(index), keys.get(index)) else {
                break;
            };
            progress.on_event(&ProgressEvent::LayerStarted {
                index,
                diff_id: layer.diff_id.clone(),
                reused: false,
            });
            let mut stats = FileStats::default();
            let outcome =
                analyse_layer(source, layer, &context, &mut stats, progress).and_then(|fragment| {
                    cache.put(key, &fragment.to_bytes()?)?;
                    Ok((fragment, stats))
                });
            if outcome.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            progress.on_event(&ProgressEvent::LayerFinished { index });
            if let Ok(mut outcomes) = outcomes.lock() {
                outcomes.push((index, outcome));
            }
        }
    };
    if workers <= 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(work);
            }
        });
    }
    let mut outcomes = outcomes
        .into_inner()
        .map_err(|_| ScanError::Cache("a layer worker panicked".into()))?;
    // Report the failure of the lowest layer, whatever finished first.
    outcomes.sort_by_key(|(index, _)| *index);
    let mut file_stats = FileStats::default();
    for (index, outcome) in outcomes {
        let (fragment, stats) = outcome?;
        file_stats.analysed += stats.analysed;
        file_stats.reused += stats.reused;
        if let Some(slot) = fragments.get_mut(index) {
            *slot = Some(fragment);
        }
    }
    let mut complete = Vec::with_capacity(fragments.len());
    let mut layer_infos = Vec::with_capacity(fragments.len());
    for (index, (fragment, layer)) in fragments.into_iter().zip(&image.layers).enumerate() {
        let fragment = fragment.ok_or_else(|| ScanError::LayerRead {
            layer: layer.diff_id.to_string(),
            reason: "layer was not analysed (an earlier layer failed)".into(),
        })?;
        layer_infos.push(LayerInfo {
            index,
            diff_id: layer.diff_id.clone(),
            blob_digest: layer.blob.digest.clone(),
            reused: reused.get(index).copied().unwrap_or(false),
        });
        complete.push(fragment);
    }
    let mut result = compose(&image, options, layer_infos, complete);
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
