//! Scan benchmark: builds a ~200 MB (uncompressed) OCI image in 6 layers from real
//! files of this machine (dpkg database, /usr/bin, /usr/lib, /usr/share/java,
//! Python site-packages, node_modules), then times, each in a fresh child process
//! with its peak RSS: the floor (read + sha256 + gunzip + sha256 of every layer),
//! a cold scan, a warm scan (all layers cached) and a scan with one changed layer.
//!
//! `cargo run --release -p stella-scanner --example scan_bench [WORKDIR]`

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest as _, Sha256};
use stella_scanner::fragment::FileKey;
use stella_scanner::{FragmentKey, LayerCache, NoProgress, ScanError, ScanOptions, scan_path};

const LAYER_BUDGET: u64 = 34 << 20;

/// A directory-backed layer cache, so warm scans can run in another process:
/// one file per fragment, all per-file results in one `files.json`.
struct DirCache {
    dir: PathBuf,
    files: Mutex<Option<HashMap<String, String>>>,
}

impl DirCache {
    fn new(dir: &Path) -> DirCache {
        DirCache {
            dir: dir.to_path_buf(),
            files: Mutex::new(None),
        }
    }
    fn path(&self, key: &FragmentKey) -> PathBuf {
        self.dir
            .join(hex::encode(Sha256::digest(key.as_string().as_bytes())))
    }
    fn with_files<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, String>) -> T,
    ) -> Result<T, ScanError> {
        let mut guard = self
            .files
            .lock()
            .map_err(|_| ScanError::Cache("poisoned".into()))?;
        let files = guard.get_or_insert_with(|| {
            fs::read(self.dir.join("files.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default()
        });
        Ok(f(files))
    }
}

impl LayerCache for DirCache {
    fn get(&self, key: &FragmentKey) -> Result<Option<Vec<u8>>, ScanError> {
        match fs::read(self.path(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ScanError::Cache(e.to_string())),
        }
    }
    fn put(&self, key: &FragmentKey, bytes: &[u8]) -> Result<(), ScanError> {
        fs::create_dir_all(&self.dir).map_err(|e| ScanError::Cache(e.to_string()))?;
        fs::write(self.path(key), bytes).map_err(|e| ScanError::Cache(e.to_string()))
    }
    fn get_file(&self, key: &FileKey) -> Result<Option<Vec<u8>>, ScanError> {
        self.with_files(|files| files.get(&key.as_string()).map(|v| v.clone().into_bytes()))
    }
    fn put_files(&self, entries: &[(FileKey, Vec<u8>)]) -> Result<(), ScanError> {
        let encoded = self.with_files(|files| {
            for (key, bytes) in entries {
                files.insert(key.as_string(), String::from_utf8_lossy(bytes).into_owned());
            }
            serde_json::to_vec(files)
        })?;
        let encoded = encoded.map_err(|e| ScanError::Cache(e.to_string()))?;
        fs::create_dir_all(&self.dir).map_err(|e| ScanError::Cache(e.to_string()))?;
        fs::write(self.dir.join("files.json"), encoded).map_err(|e| ScanError::Cache(e.to_string()))
    }
}

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

fn build_layer(roots: &[&str], budget: u64, extra: Option<(&str, &[u8])>) -> (Vec<u8>, u64) {
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
        if total + meta.len() > budget {
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
    (builder.into_inner().unwrap_or_default(), total)
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

fn peak_rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Child modes print `seconds peak_rss_kib [summary]`.
fn child(mode: &str, image: &Path, cache: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let summary = match mode {
        "floor" => {
            let manifest_dir = image.join("blobs/sha256");
            let mut total = 0u64;
            for entry in fs::read_dir(&manifest_dir)? {
                let path = entry?.path();
                let mut blob = fs::File::open(&path)?;
                let mut head = [0u8; 2];
                blob.read_exact(&mut head)?;
                if head != [0x1f, 0x8b] {
                    continue;
                }
                // sha256 of the blob while gunzipping it, sha256 of the output.
                struct Hashing<R> {
                    inner: R,
                    hasher: Sha256,
                }
                impl<R: Read> Read for Hashing<R> {
                    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                        let n = self.inner.read(buf)?;
                        self.hasher.update(&buf[..n]);
                        Ok(n)
                    }
                }
                let file = io::BufReader::with_capacity(256 * 1024, fs::File::open(&path)?);
                let mut compressed = Hashing {
                    inner: file,
                    hasher: Sha256::new(),
                };
                let decoder =
                    flate2::bufread::MultiGzDecoder::new(io::BufReader::new(&mut compressed));
                let mut plain = Hashing {
                    inner: decoder,
                    hasher: Sha256::new(),
                };
                total += io::copy(&mut plain, &mut io::sink())?;
                std::hint::black_box(plain.hasher.finalize());
                std::hint::black_box(compressed.hasher.finalize());
            }
            format!("{total} uncompressed bytes")
        }
        _ => {
            let options = ScanOptions {
                parallel_layers: if mode == "scan-parallel" { 2 } else { 1 },
                ..ScanOptions::default()
            };
            let result = scan_path(image, &options, &DirCache::new(cache), &NoProgress)?;
            let scanned = start.elapsed();
            std::hint::black_box(result.to_cyclonedx_json()?);
            format!(
                "{}; scan {:.1} ms + CycloneDX JSON {:.1} ms",
                result.summary,
                scanned.as_secs_f64() * 1000.0,
                (start.elapsed() - scanned).as_secs_f64() * 1000.0
            )
        }
    };
    println!(
        "{:.3} {} {summary}",
        start.elapsed().as_secs_f64(),
        peak_rss_kib()
    );
    Ok(())
}

fn run(
    exe: &Path,
    mode: &str,
    image: &Path,
    cache: &Path,
) -> Result<(f64, u64, String), Box<dyn std::error::Error>> {
    let output = Command::new(exe)
        .arg("--child")
        .arg(mode)
        .arg(image)
        .arg(cache)
        .output()?;
    if !output.status.success() {
        return Err(format!("{mode}: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let text = String::from_utf8(output.stdout)?;
    let mut parts = text.trim().splitn(3, ' ');
    let seconds: f64 = parts.next().unwrap_or("0").parse()?;
    let rss: u64 = parts.next().unwrap_or("0").parse()?;
    Ok((seconds, rss, parts.next().unwrap_or("").to_owned()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let (Some(mode), Some(image), Some(cache)) = (args.get(2), args.get(3), args.get(4)) else {
            return Err("usage: --child MODE IMAGE CACHE".into());
        };
        return child(mode, Path::new(image), Path::new(cache));
    }
    let work = PathBuf::from(
        args.get(1)
            .cloned()
            .unwrap_or_else(|| "/tmp/stella-scan-bench".into()),
    );
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let site = "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages";
    let layer_roots: Vec<Vec<&str>> = vec![
        vec![
            "/etc",
            "/var/lib/dpkg/status",
            "/var/lib/dpkg/info",
            "/usr/lib/os-release",
        ],
        vec!["/usr/bin"],
        vec!["/usr/lib/x86_64-linux-gnu"],
        vec!["/usr/share/java", "/usr/lib/node_modules"],
        vec![site],
        vec!["/usr/sbin", "/usr/local/bin"],
    ];
    let mut layers = Vec::new();
    let mut sizes = BTreeMap::new();
    for (index, roots) in layer_roots.iter().enumerate() {
        let (layer, content) = build_layer(roots, LAYER_BUDGET, None);
        sizes.insert(index, (content, layer.len()));
        layers.push(layer);
    }
    let total: usize = layers.iter().map(Vec::len).sum();
    println!(
        "image: {} layers, {:.1} MiB uncompressed",
        layers.len(),
        total as f64 / 1048576.0
    );
    let image = work.join("image");
    write_image(&image, &layers)?;
    // The same image with its top layer changed.
    let changed_layers = {
        let mut changed = layers.clone();
        let (top, _) = build_layer(
            &layer_roots[5],
            LAYER_BUDGET,
            Some(("etc/changed.txt", b"changed\n")),
        );
        changed[5] = top;
        changed
    };
    let changed = work.join("image-changed");
    write_image(&changed, &changed_layers)?;
    let exe = std::env::current_exe()?;
    // The machine is shared: each figure is the best of three runs, floor and
    // cold scan interleaved so that both see the same load.
    let best = |runs: Vec<(f64, u64, String)>| {
        runs.into_iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or((0.0, 0, String::new()))
    };
    let mut floors = Vec::new();
    let mut colds = Vec::new();
    let mut sequential = Vec::new();
    for round in 0..3 {
        floors.push(run(&exe, "floor", &image, &work.join("unused"))?);
        let cache = work.join(format!("cache-{round}"));
        colds.push(run(&exe, "scan", &image, &cache)?);
        let cache = work.join(format!("cache-parallel-{round}"));
        sequential.push(run(&exe, "scan-parallel", &image, &cache)?);
    }
    let (floor, floor_rss, floor_note) = best(floors);
    let (cold, cold_rss, cold_note) = best(colds);
    let (seq, seq_rss, _) = best(sequential);
    let cache = work.join("cache-0");
    let warm = best(
        (0..3)
            .map(|_| run(&exe, "scan", &image, &cache))
            .collect::<Result<_, _>>()?,
    );
    let one = best(
        (0..3)
            .map(|round| {
                // A fresh copy of the warm cache each time, so the changed layer is analysed.
                let copy = work.join(format!("cache-changed-{round}"));
                let _ = fs::remove_dir_all(&copy);
                fs::create_dir_all(&copy)?;
                for entry in fs::read_dir(&cache)? {
                    let entry = entry?;
                    fs::copy(entry.path(), copy.join(entry.file_name()))?;
                }
                run(&exe, "scan", &changed, &copy)
            })
            .collect::<Result<_, Box<dyn std::error::Error>>>()?,
    );
    println!(
        "floor   {floor:8.3} s  peak RSS {:6} MiB  ({floor_note})",
        floor_rss / 1024
    );
    println!(
        "cold    {cold:8.3} s  peak RSS {:6} MiB  {:.2}x floor  ({cold_note})",
        cold_rss / 1024,
        cold / floor
    );
    println!(
        "cold, 2 layers at a time {seq:8.3} s  peak RSS {:6} MiB  {:.2}x floor",
        seq_rss / 1024,
        seq / floor
    );
    println!(
        "warm    {:8.1} ms peak RSS {:6} MiB  ({})",
        warm.0 * 1000.0,
        warm.1 / 1024,
        warm.2
    );
    println!(
        "1 layer {:8.3} s  peak RSS {:6} MiB  {:.2}x floor  ({})",
        one.0,
        one.1 / 1024,
        one.0 / floor,
        one.2
    );
    Ok(())
}
