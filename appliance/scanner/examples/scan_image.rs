//! Scans a local image (OCI layout dir, OCI archive, docker save archive) and prints CycloneDX JSON.
//! Usage: `cargo run -p stella-scanner --example scan_image -- PATH [cdx|spdx] [PLATFORM]`.

use std::io::Write;

use stella_scanner::{NoCache, NoProgress, Platform, ScanOptions, scan_path};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: scan_image PATH [cdx|spdx] [PLATFORM]")?;
    let format = args.next().unwrap_or_else(|| "cdx".into());
    let mut options = ScanOptions::default();
    if let Some(platform) = args.next() {
        options.platform = Platform::parse(&platform)?;
    }
    let result = scan_path(std::path::Path::new(&path), &options, &NoCache, &NoProgress)?;
    let bytes = if format == "spdx" {
        result.to_spdx_json()?
    } else {
        result.to_cyclonedx_json()?
    };
    std::io::stdout().write_all(&bytes)?;
    eprintln!("{}", result.summary);
    for unknown in &result.unknowns {
        eprintln!(
            "unknown: {} ({}): {}",
            unknown.path, unknown.analyzer, unknown.reason
        );
    }
    Ok(())
}
