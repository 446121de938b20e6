//! Usage-view benchmark: builds a ~170 MB (uncompressed), 5-layer gzip image from this machine's
//! files (dpkg database and /etc, /usr/bin, /usr/lib/x86_64-linux-gnu, the Python 3.11 standard
//! library, python3.11 with its libraries + /usr/sbin + /usr/local/bin) with `python3 -m json.tool` as its entrypoint, and a
//! second image sharing its bottom 4 layers. Times, in process, best of three: the cold scan; the
//! usage closure (EntryTrace + ld.so closure + imports) and the BOM-Index build on the scan
//! result; the second image's scan with the first one's layers cached, plus the diff.
//!
//! `cargo run --release -p stella-scanner --example usage_bench [WORKDIR]`

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest as _, Sha256};
use stella_scanner::bomindex::BomIndex;
use stella_scanner::diff::{DiffSide, diff};
use stella_scanner::{MemoryLayerCache, NoProgress, ScanOptions, scan_path, usage};

const LAYER_BUDGET: u64 = 34 << 20;

fn walk(root: &Path, out: &mut Vec<PathBuf>) {
    if fs::symlink_metadata(root).is_ok_and(|m| !m.is_dir()) {
        out.push(root.to_path_buf());
        return;
    }
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, out);
        } else if meta.is_file() || meta.file_type().is_symlink() {
            out.push(path);
        }
    }
}

fn build_layer(roots: &[&str], extra: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut files = Vec::new();
    for root in roots {
        walk(Path::new(root), &mut files);
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut total = 0u64;
    for file in files {
        let Ok(meta) = fs::symlink_metadata(&file) else {
            continue;
        };
        if total + meta.len() > LAYER_BUDGET {
            continue;
        }
        let name = file.strip_prefix("/").unwrap_or(&file);
        if builder.append_path_with_name(&file, name).is_ok() {
            total += meta.len();
        }
    }
    if let Some((name, data)) = extra {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let _ = builder.append_data(&mut header, name, data);
    }
    builder.into_inner().unwrap_or_default()
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn write_image(dir: &Path, layers: &[Vec<u8>]) -> io::Result<()> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in layers {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(layer)?;
        let blob = encoder.finish()?;
        let digest = sha(&blob);
        fs::write(blobs.join(&digest[7..]), &blob)?;
        descriptors.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": blob.len()}));
        diff_ids.push(sha(layer));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Entrypoint": ["python3", "-m", "json.tool"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}}))?;
    fs::write(blobs.join(&sha(&config)[7..]), &config)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": descriptors}))?;
    fs::write(blobs.join(&sha(&manifest)[7..]), &manifest)?;
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len()}]}))?,
    )
}

fn best<T>(runs: Vec<(f64, T)>) -> (f64, T) {
    let mut runs = runs;
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs.into_iter().next().expect("three runs")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/stella-usage-bench".into()),
    );
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let roots: Vec<Vec<&str>> = vec![
        vec![
            "/etc",
            "/var/lib/dpkg/status",
            "/var/lib/dpkg/info",
            "/usr/lib/os-release",
            "/bin",
            "/lib",
            "/lib64",
            "/sbin",
            "/usr/lib64",
        ],
        vec!["/usr/bin"],
        vec!["/usr/lib/x86_64-linux-gnu"],
        vec!["/usr/lib/python3.11"],
        vec![
            "/usr/bin/python3",
            "/usr/bin/python3.11",
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libm.so.6",
            "/usr/lib/x86_64-linux-gnu/libz.so.1",
            "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13",
            "/usr/lib/x86_64-linux-gnu/libexpat.so.1",
            "/usr/lib/x86_64-linux-gnu/libexpat.so.1.8.10",
            "/usr/sbin",
            "/usr/local/bin",
        ],
    ];
    let layers: Vec<Vec<u8>> = roots.iter().map(|r| build_layer(r, None)).collect();
    let total: usize = layers.iter().map(Vec::len).sum();
    println!(
        "image: {} layers, {:.1} MiB uncompressed",
        layers.len(),
        total as f64 / 1048576.0
    );
    let image = work.join("image");
    write_image(&image, &layers)?;
    let mut changed_layers = layers.clone();
    changed_layers[4] = build_layer(&roots[4], Some(("etc/changed.txt", b"changed\n")));
    let changed = work.join("image-changed");
    write_image(&changed, &changed_layers)?;
    let options = ScanOptions::default();

    let mut colds = Vec::new();
    let mut usages = Vec::new();
    let mut indexes = Vec::new();
    let mut diffs = Vec::new();
    for _ in 0..3 {
        let cache = MemoryLayerCache::new();
        let start = Instant::now();
        let result = scan_path(&image, &options, &cache, &NoProgress)?;
        colds.push((start.elapsed().as_secs_f64(), result.summary.to_string()));

        let start = Instant::now();
        let usage = usage::analyse(&result);
        let chain = usage
            .chains
            .first()
            .map(|c| c.describe())
            .unwrap_or_default();
        usages.push((
            start.elapsed().as_secs_f64(),
            format!(
                "{} of {} components used, {} files, {} unresolved {:?}; {chain}",
                usage.components.len(),
                result.components.len(),
                usage.files.len(),
                usage.unresolved.len(),
                usage.unresolved.iter().take(3).collect::<Vec<_>>()
            ),
        ));

        let start = Instant::now();
        let bytes = BomIndex::build(&result, Some(&usage)).to_bytes();
        indexes.push((
            start.elapsed().as_secs_f64(),
            format!("{} bytes", bytes.len()),
        ));

        // The second image shares the bottom 4 of 5 layers, which are in the cache.
        let start = Instant::now();
        let new = scan_path(&changed, &options, &cache, &NoProgress)?;
        let result_diff = diff(
            &DiffSide::from_scan(&result),
            &DiffSide::from_scan(&new),
            Some(&new),
        );
        diffs.push((
            start.elapsed().as_secs_f64(),
            format!(
                "{}; +{} -{} ~{}",
                new.summary,
                result_diff.added.len(),
                result_diff.removed.len(),
                result_diff.changed.len()
            ),
        ));
    }
    let (cold, cold_note) = best(colds);
    let (usage_time, usage_note) = best(usages);
    let (index_time, index_note) = best(indexes);
    let (diff_time, diff_note) = best(diffs);
    println!("cold scan       {:8.1} ms  ({cold_note})", cold * 1000.0);
    println!(
        "usage closure   {:8.1} ms  ({usage_note})",
        usage_time * 1000.0
    );
    println!(
        "BOM-Index build {:8.1} ms  ({index_note})",
        index_time * 1000.0
    );
    println!(
        "usage + index   {:8.1} ms  = {:.1} % of the cold scan (target <= 10 %)",
        (usage_time + index_time) * 1000.0,
        (usage_time + index_time) / cold * 100.0
    );
    println!(
        "diff (scan of the 2nd image, 4/5 layers cached, + diff) {:8.1} ms = {:.1} % of the cold scan ({diff_note})",
        diff_time * 1000.0,
        diff_time / cold * 100.0
    );
    Ok(())
}
