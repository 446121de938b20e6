//! `stella diff OLD NEW [--json]`: scan two images (standalone, one layer cache, so the layers
//! they share are analysed once) and print the components added, removed and changed, each
//! attributed to the layer of NEW that caused it, with a per-layer summary.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use stella_scanner::diff::{DiffSide, diff};
use stella_scanner::{
    LayerCache, MemoryLayerCache, NoProgress, Platform, RegistryAccess, ScanOptions, ScanResult,
};
use stella_store::{StoreError, Stores};
use stella_web::StoreCache;

#[derive(clap::Args, Debug)]
pub(crate) struct DiffArgs {
    /// The old image (OCI layout, OCI or `docker save` archive, or registry reference).
    old: String,
    /// The new image.
    new: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Platform of multi-platform images.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// A registry (`host[:port]`) that may be spoken to over plain HTTP; repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory whose layer cache is used.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

fn scan_one(image: &str, args: &DiffArgs, cache: &dyn LayerCache) -> anyhow::Result<ScanResult> {
    let source = stella_scanner::open_image(
        image,
        &RegistryAccess {
            insecure_registries: args.insecure_registries.clone(),
            credentials: None,
        },
    )?;
    let options = ScanOptions {
        platform: Platform::parse(&args.platform)?,
        parallel_layers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..ScanOptions::default()
    };
    Ok(stella_scanner::scan(
        source.as_ref(),
        &options,
        cache,
        &NoProgress,
    )?)
}

pub(crate) fn run(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let config = crate::serve::load_config(args.config.as_deref(), args.data_dir.clone())?;
    let memory = MemoryLayerCache::default();
    let stores = match Stores::open(&config.storage.data_dir) {
        Ok(stores) => Some(stores),
        Err(StoreError::Locked { .. }) => {
            eprintln!(
                "stella: the daemon holds the data dir; diffing with an in-memory layer cache"
            );
            None
        }
        Err(e) => return Err(e.into()),
    };
    let store_cache = stores.as_ref().map(|s| StoreCache(&s.blobs));
    let cache: &dyn LayerCache = match &store_cache {
        Some(cache) => cache,
        None => &memory,
    };
    let old = scan_one(&args.old, &args, cache)?;
    let new = scan_one(&args.new, &args, cache)?;
    eprintln!("stella: old {}: {}", args.old, old.summary);
    eprintln!("stella: new {}: {}", args.new, new.summary);
    let result = diff(
        &DiffSide::from_scan(&old),
        &DiffSide::from_scan(&new),
        Some(&new),
    );
    let mut stdout = std::io::stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &result)?;
        writeln!(stdout)?;
    } else {
        stdout.write_all(result.to_text().as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
