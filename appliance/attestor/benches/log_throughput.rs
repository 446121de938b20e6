//! Benchmark: appends per second through the log with batched checkpoints signed on SoftHSM
//! (8 concurrent appenders, group commit) against a baseline of one append per batch in the
//! same run; inclusion-proof time at 1M entries; log bytes per entry.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the module is initialised, so the bench re-runs itself
//! in a child whose environment points at a fresh token directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest as _, Sha256};
use stella_attestor::merkle::{SubtreeHashes as _, inclusion_proof, leaf_hash, verify_inclusion};
use stella_attestor::{CheckpointSigner, HashedRekord, TransparencyLog};
use stella_hsm::{
    KeyRole, KeySource, Pkcs11KeySource, Pkcs11Settings, init_appliance_keys, initialize_token,
};
use stella_signer::{AttestationSigner, CaProfile, FixedClock, SigningIdentity};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CHILD: &str = "STELLA_ATTESTOR_BENCH_CHILD";

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Perfect subtrees of a 1M-leaf tree held as levels, like the log keeps them.
struct Levels(Vec<Vec<[u8; 32]>>);
impl stella_attestor::merkle::SubtreeHashes for Levels {
    fn perfect(&self, level: u32, index: u64) -> Result<[u8; 32], stella_attestor::AttestorError> {
        Ok(self.0[level as usize][index as usize])
    }
}

fn child(work: &Path) {
    initialize_token(Path::new(MODULE), "bench", "so-pin-1", "user-pin-1").unwrap();
    let source = Pkcs11KeySource::open(&Pkcs11Settings {
        module: PathBuf::from(MODULE),
        token: "bench".into(),
        pin: "user-pin-1".into(),
    })
    .unwrap();
    init_appliance_keys(&source).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let signer = AttestationSigner::from_key_source(
        &source,
        &CaProfile::new("Bench CA", "Bench", now - time::Duration::days(1)),
        None,
        Arc::new(FixedClock(now)),
        SigningIdentity::Uri("https://bench.test/signer".into()),
        "https://bench.test/oidc",
    )
    .unwrap();
    let certificate = signer
        .certificate_authority()
        .issue_leaf(
            &source
                .find_key(&KeyRole::Attestation.label().unwrap())
                .unwrap()
                .unwrap()
                .public_key,
            &SigningIdentity::Uri("https://bench.test/signer".into()),
            "https://bench.test/oidc",
            false,
            &FixedClock(now),
            signer.ct_log(),
        )
        .unwrap()
        .der;
    let attestation = source
        .signer(&KeyRole::Attestation.label().unwrap())
        .unwrap();
    let entries: Vec<HashedRekord> = (0..2000u32)
        .map(|n| {
            let message = format!("bench entry {n}");
            HashedRekord {
                digest: Sha256::digest(message.as_bytes()).into(),
                signature: attestation.sign(message.as_bytes()).unwrap(),
                certificate_der: certificate.clone(),
            }
        })
        .collect();
    let checkpoint = || {
        CheckpointSigner::new(
            source
                .signer(&KeyRole::TlogCheckpoint.label().unwrap())
                .unwrap(),
            "bench.test/log",
        )
        .unwrap()
    };
    // Baseline: one entry per batch (one checkpoint signature and fsync set per entry).
    let baseline_log = TransparencyLog::open(&work.join("baseline"), checkpoint()).unwrap();
    let started = Instant::now();
    for entry in &entries[..200] {
        baseline_log
            .append_batch(std::slice::from_ref(entry))
            .unwrap();
    }
    let baseline = 200.0 / started.elapsed().as_secs_f64();
    // Batched: concurrent appenders (like concurrent HTTP requests), group commit.
    let entries = Arc::new(entries);
    let mut last_dir = work.join("batched-8");
    let mut last_count = 0usize;
    for appenders in [8usize, 32, 64] {
        let dir = work.join(format!("batched-{appenders}"));
        let log = Arc::new(TransparencyLog::open(&dir, checkpoint()).unwrap());
        let started = Instant::now();
        let threads: Vec<_> = (0..appenders)
            .map(|t| {
                let log = log.clone();
                let entries = entries.clone();
                std::thread::spawn(move || {
                    for entry in entries.iter().skip(t).step_by(appenders) {
                        log.append(entry).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let rate = entries.len() as f64 / started.elapsed().as_secs_f64();
        println!(
            "appends/s, {appenders:>2} appenders, group commit: {rate:>6.0}  (x{:.1} baseline; target >= 200)",
            rate / baseline
        );
        last_dir = dir;
        last_count = entries.len();
    }
    println!("appends/s, one entry per checkpoint (baseline): {baseline:.0}");
    let bytes = dir_bytes(&last_dir);
    let body = entries[0].canonical_body().unwrap().len();
    println!(
        "log bytes per entry (tiles, bundles, checkpoints): {:.0} (entry body alone: {body})",
        bytes as f64 / last_count as f64
    );
}

fn main() {
    if let Some(work) = std::env::var_os(CHILD) {
        child(Path::new(&work));
        return;
    }
    // Inclusion proofs at 1M entries (no HSM needed), against recomputing the root as baseline.
    let size: u64 = 1 << 20;
    let mut levels = vec![
        (0..size)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect::<Vec<_>>(),
    ];
    while levels.last().unwrap().len() > 1 {
        let below = levels.last().unwrap();
        levels.push(
            below
                .chunks(2)
                .map(|p| stella_attestor::merkle::node_hash(&p[0], &p[1]))
                .collect(),
        );
    }
    let levels = Levels(levels);
    let root = levels.range(0, size).unwrap();
    let started = Instant::now();
    let rounds = 10_000u64;
    for i in 0..rounds {
        let index = (i * 104_729) % size;
        let proof = inclusion_proof(&levels, index, size).unwrap();
        verify_inclusion(index, size, &levels.0[0][index as usize], &proof, &root).unwrap();
    }
    let per_proof = started.elapsed().as_secs_f64() / rounds as f64;
    let started = Instant::now();
    let _ = stella_attestor::merkle::root_of(&levels.0[0]);
    let recompute = started.elapsed().as_secs_f64();
    println!(
        "inclusion proof + verify at 1M entries: {:.1} µs (target <= 1 ms); recomputing the root: {:.1} ms (x{:.0})",
        per_proof * 1e6,
        recompute * 1e3,
        recompute / per_proof
    );
    if !Path::new(MODULE).exists() {
        eprintln!("SKIP append benchmark: {MODULE} missing (Debian package softhsm2)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tokens = work.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = work.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD, work.path())
        .status()
        .unwrap();
    assert!(status.success());
}
