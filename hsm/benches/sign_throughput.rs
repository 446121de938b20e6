//! Signatures per second through SoftHSM2 (PKCS#11) for P-256 and Ed25519, with the software
//! key backend measured in the same run as the baseline. Run: `cargo bench -p stella-hsm`.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the module is initialised, so the bench re-runs itself
//! in a child process whose environment points at a fresh token directory.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use stella_hsm::{
    FileKeySource, KeyAlgorithm, KeyLabel, KeySource, Pkcs11KeySource, Pkcs11Settings, SigningMode,
    initialize_token,
};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CHILD: &str = "STELLA_BENCH_CHILD";
const MEASURE_FOR: Duration = Duration::from_millis(1500);

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        return match run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("bench failed: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if !Path::new(MODULE).exists() {
        eprintln!("SKIP sign_throughput: {MODULE} is missing; install Debian package softhsm2");
        return ExitCode::SUCCESS;
    }
    match parent() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bench failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parent() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )?;
    let status = Command::new(std::env::current_exe()?)
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD, "1")
        .env("STELLA_BENCH_KEYS", dir.path().join("software-keys"))
        .status()?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn rate(source: &dyn KeySource, label: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let signer = source.signer(&KeyLabel::new(label)?)?;
    // A DSSE PAE of a small in-toto statement is a few hundred bytes.
    let message = vec![0x5a_u8; 512];
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < MEASURE_FOR || count < 50 {
        let signature = signer.sign(&message)?;
        std::hint::black_box(signature);
        count += 1;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    initialize_token(Path::new(MODULE), "bench", "so-pin-5678", "user-pin-1234")?;
    let hsm = Pkcs11KeySource::open(&Pkcs11Settings {
        module: MODULE.into(),
        token: "bench".to_owned(),
        pin: "user-pin-1234".to_owned(),
    })?;
    let key_dir = std::env::var_os("STELLA_BENCH_KEYS").ok_or("STELLA_BENCH_KEYS is not set")?;
    let software = FileKeySource::open(Path::new(&key_dir), SigningMode::Dev)?;
    println!(
        "{:<10} {:>18} {:>22} {:>8}",
        "algorithm", "softhsm2 sig/s", "software (dev) sig/s", "ratio"
    );
    for (label, algorithm) in [
        ("bench-p256", KeyAlgorithm::EcdsaP256),
        ("bench-ed25519", KeyAlgorithm::Ed25519),
    ] {
        hsm.generate_key(&KeyLabel::new(label)?, algorithm)?;
        software.generate_key(&KeyLabel::new(label)?, algorithm)?;
        let through_hsm = rate(&hsm, label)?;
        let in_software = rate(&software, label)?;
        println!(
            "{:<10} {:>18.0} {:>22.0} {:>8.2}",
            algorithm.as_str(),
            through_hsm,
            in_software,
            through_hsm / in_software
        );
    }
    Ok(())
}
