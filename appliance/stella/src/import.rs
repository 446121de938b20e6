//! `stella import KIT [--dry-run]`: verify an offline kit and load it. When a daemon holds the
//! data directory the kit goes through its admin socket; otherwise this process opens the
//! stores itself. Either way the same verification runs and the same report comes back.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{Value, json};
use stella_core::SystemClock;
use stella_feeds::{FeedStore, ImportError, ImportOptions};
use stella_store::{StoreError, Stores};

/// Exit codes of `stella import`, documented in `docs/importing.md`.
pub(crate) mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const NOT_FOUND: u8 = 3;
    pub const SIGNATURE: u8 = 4;
    pub const HASH: u8 = 5;
    pub const ROLLBACK: u8 = 6;
    pub const EXPIRED: u8 = 7;
    pub const VALIDATION: u8 = 8;
}

/// The exit code for a rejection reason code.
pub(crate) fn exit_code_for(reason: &str) -> u8 {
    match reason {
        "signature" | "unknown-key" | "key" => exit::SIGNATURE,
        "hash" | "size" | "missing-file" | "unlisted-file" => exit::HASH,
        "rollback" | "base-mismatch" => exit::ROLLBACK,
        "expired" => exit::EXPIRED,
        _ => exit::VALIDATION,
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct ImportArgs {
    /// The kit file (`kit-N.tar.zst`).
    kit: PathBuf,
    /// Verify and report without loading anything.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory holding the stores.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

pub(crate) fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = crate::serve::load_config(args.config.as_deref(), args.data_dir)?;
    let bytes = match std::fs::read(&args.kit) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("stella: error: kit {} not found", args.kit.display());
            return Ok(ExitCode::from(exit::NOT_FOUND));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read kit {}", args.kit.display())),
    };
    let origin = args
        .kit
        .file_name()
        .map_or_else(|| "kit".to_owned(), |n| n.to_string_lossy().into_owned());
    let data_dir = &config.storage.data_dir;
    let result = match Stores::open(data_dir) {
        Ok(stores) => import_here(&stores, &config, &bytes, &origin, args.dry_run)?,
        Err(StoreError::Locked { pid, .. }) => {
            eprintln!(
                "stella: data dir is held by the daemon (pid {}); importing through it",
                pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
            );
            import_via_daemon(data_dir, &bytes, &origin, args.dry_run)?
        }
        Err(e) => return Err(e.into()),
    };
    print_report(&result, args.json);
    let code = match result["outcome"].as_str() {
        Some("rejected") => exit_code_for(result["reason"].as_str().unwrap_or("")),
        Some(_) => exit::OK,
        None => exit::ERROR,
    };
    Ok(ExitCode::from(code))
}

fn import_here(
    stores: &Stores,
    config: &stella_core::Config,
    bytes: &[u8],
    origin: &str,
    dry_run: bool,
) -> anyhow::Result<Value> {
    let feeds = FeedStore::open(stores.dir(), &stores.catalog)?;
    let mut options = ImportOptions::from_config(&config.kits, stores.dir(), "cli", origin)?;
    options.dry_run = dry_run;
    match feeds.import(&stores.catalog, bytes, &options, &SystemClock) {
        Ok(outcome) => Ok(serde_json::to_value(outcome)?),
        Err(ImportError::Rejected(r)) => Ok(json!({
            "outcome": "rejected",
            "reason": r.reason,
            "error": r.message,
            "quarantined": r.quarantined,
        })),
        Err(ImportError::Feed(e)) => Err(e.into()),
    }
}

/// One HTTP/1.1 request over the admin socket.
fn import_via_daemon(
    data_dir: &Path,
    bytes: &[u8],
    origin: &str,
    dry_run: bool,
) -> anyhow::Result<Value> {
    let socket = crate::serve::admin_socket(data_dir);
    let mut stream = UnixStream::connect(&socket)
        .with_context(|| format!("cannot reach the daemon at {}", socket.display()))?;
    let origin: String = origin
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let head = format!(
        "POST /admin/import?dry_run={dry_run}&origin={origin} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(bytes)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("the daemon's answer has no HTTP head")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    serde_json::from_str(&body).with_context(|| format!("the daemon answered: {head}\n{body}"))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn print_report(result: &Value, as_json: bool) {
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(result).unwrap_or_default()
        );
        return;
    }
    let field = |name: &str| result[name].as_str().unwrap_or("").to_owned();
    match result["outcome"].as_str() {
        Some("rejected") => {
            println!("REJECTED ({}): {}", field("reason"), field("error"));
            if let Some(q) = result["quarantined"].as_str() {
                println!("  kit copied to quarantine: {q}");
            }
        }
        Some(outcome) => {
            let verdict = match outcome {
                "loaded" => "LOADED",
                "already-imported" => "ALREADY IMPORTED (nothing to do)",
                "verified" => "VERIFIED (dry run: nothing loaded)",
                other => other,
            };
            println!(
                "{verdict}: kit {} on channel {} sequence {}",
                field("kit_id"),
                field("channel"),
                result["sequence"]
            );
            println!(
                "  signed by key {}, manifest sha256:{}",
                field("key_id"),
                field("manifest_sha256")
            );
            println!(
                "  created {}, expires {}",
                field("created"),
                field("expires")
            );
            if let Some(records) = result["records"].as_object() {
                let list: Vec<String> = records.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("  records: {}", list.join(", "));
            }
            if let Some(generation) = result["generation"].as_u64() {
                println!("  now current: feed generation {generation}");
            }
        }
        None => println!("{result}"),
    }
}
