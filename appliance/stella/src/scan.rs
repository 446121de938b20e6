//! `stella scan IMAGE [--view inventory|usage]`: scan an image standalone (no daemon) and write its SBOM. The layer cache
//! lives in the data directory's blob store when this process can take the data directory;
//! when a daemon holds it, the scan runs with an in-memory cache and says so.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context as _;
use stella_scanner::{
    MemoryLayerCache, Platform, Progress, ProgressEvent, RegistryAccess, ScanOptions,
};
use stella_store::{StoreError, Stores};
use stella_web::StoreCache;

#[derive(clap::Args, Debug)]
pub(crate) struct ScanArgs {
    /// OCI layout directory, OCI archive, `docker save` archive, or `registry/repo:tag|@digest`.
    image: String,
    /// SBOM format.
    #[arg(long, default_value = "cdx-json", value_parser = ["cdx-json", "cdx-pb", "spdx-json"])]
    format: String,
    /// SBOM view: `inventory` (everything installed) or `usage` (what the entrypoint runs and
    /// loads, with the entry chain; docs/scanner.md).
    #[arg(long, default_value = "inventory", value_parser = ["inventory", "usage"])]
    view: String,
    /// Write the SBOM here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Platform of a multi-platform image.
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

/// A progress bar on stderr, only when stderr is a terminal.
struct Bar(Option<Mutex<indicatif::ProgressBar>>);

impl Bar {
    fn new() -> Self {
        Self(std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            Mutex::new(bar)
        }))
    }
}

impl Progress for Bar {
    fn on_event(&self, event: &ProgressEvent) {
        let Some(bar) = &self.0 else { return };
        let bar = bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            ProgressEvent::Resolved {
                layers,
                total_bytes,
                ..
            } => {
                bar.set_length(total_bytes.unwrap_or(0));
                bar.set_message(format!("{layers} layers"));
            }
            ProgressEvent::LayerStarted { index, reused, .. } => {
                bar.set_message(format!(
                    "layer {} {}",
                    index + 1,
                    if *reused { "(cached)" } else { "" }
                ));
            }
            ProgressEvent::BytesRead(n) => bar.inc(*n),
            _ => {}
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .finish_and_clear();
        }
    }
}

pub(crate) fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let config = crate::serve::load_config(args.config.as_deref(), args.data_dir)?;
    let source = stella_scanner::open_image(
        &args.image,
        &RegistryAccess {
            insecure_registries: args.insecure_registries,
            credentials: None,
        },
    )?;
    let options = ScanOptions {
        platform: Platform::parse(&args.platform)?,
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse().ok()),
        // Layers are read and analysed in parallel up to the core count; the SBOM does not depend
        // on it (docs/scanner.md).
        parallel_layers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..ScanOptions::default()
    };
    let progress = Bar::new();
    let result = match Stores::open(&config.storage.data_dir) {
        Ok(stores) => stella_scanner::scan(
            source.as_ref(),
            &options,
            &StoreCache(&stores.blobs),
            &progress,
        )?,
        Err(StoreError::Locked { .. }) => {
            eprintln!("stella: the daemon holds the data dir; scanning without its layer cache");
            stella_scanner::scan(
                source.as_ref(),
                &options,
                &MemoryLayerCache::default(),
                &progress,
            )?
        }
        Err(e) => return Err(e.into()),
    };
    drop(progress);
    let usage = (args.view == "usage").then(|| stella_scanner::usage::analyse(&result));
    let sbom = result.render_sbom(&args.format, usage.as_ref())?;
    match &args.output {
        Some(path) => std::fs::write(path, &sbom)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().write_all(&sbom)?,
    }
    eprintln!("stella: {}: {}", args.image, result.summary);
    if let Some(usage) = &usage {
        eprintln!(
            "stella: usage view: {} of {} components used by the entrypoint",
            usage.components.len(),
            result.components.len()
        );
        for chain in &usage.chains {
            eprintln!("stella: entry chain: {}", chain.describe());
        }
    }
    Ok(ExitCode::SUCCESS)
}
