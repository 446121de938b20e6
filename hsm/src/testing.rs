//! Test support for every crate that tests against SoftHSM2 (feature `test-support`, never in
//! the daemon): a fresh token per test, in a child process.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, when the module is initialised, and a PKCS#11 module is
//! initialised once per process; setting the variable in-process would need `unsafe`. So each
//! SoftHSM test re-runs itself (`--exact NAME`) in a child whose environment names a fresh
//! configuration and token directory, and the parent asserts that the child ran and passed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Pkcs11Settings, initialize_token};

/// Debian's SoftHSM2 module (package `softhsm2`).
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CHILD_MARKER: &str = "STELLA_SOFTHSM_CHILD";
/// Label of the test token.
pub const TOKEN: &str = "stella-test";
/// User PIN of the test token.
pub const USER_PIN: &str = "user-pin-1234";
/// Security-officer PIN of the test token.
pub const SO_PIN: &str = "so-pin-5678";

/// Prints a SKIP line to the process's stderr directly, past libtest's output capture.
pub fn loud_skip(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// In the parent: runs `test_name` in a child with a fresh SoftHSM token and returns `None`.
/// In the child: initialises the token and returns the settings to open it. Without SoftHSM2
/// the test is skipped loudly, or fails when `CI` is set.
pub fn softhsm_token(test_name: &str) -> Option<Pkcs11Settings> {
    if std::env::var_os(CHILD_MARKER).is_some() {
        initialize_token(Path::new(SOFTHSM_MODULE), TOKEN, SO_PIN, USER_PIN).unwrap();
        return Some(Pkcs11Settings {
            module: PathBuf::from(SOFTHSM_MODULE),
            token: TOKEN.to_owned(),
            pin: USER_PIN.to_owned(),
        });
    }
    if !Path::new(SOFTHSM_MODULE).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{SOFTHSM_MODULE} is missing: install Debian package softhsm2 (CI is set, so this fails)"
        );
        loud_skip(&format!(
            "SKIP {test_name}: {SOFTHSM_MODULE} is missing; install Debian package softhsm2"
        ));
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = write_softhsm_conf(dir.path());
    let output = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD_MARKER, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child run of {test_name} failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let _ = writeln!(std::io::stdout(), "{stdout}");
    // Loud SKIP lines of the child (e.g. a missing python) must reach the parent's output.
    for line in stderr.lines().filter(|line| line.starts_with("SKIP")) {
        loud_skip(line);
    }
    None
}

/// Writes a SoftHSM2 configuration with its own token directory under `dir`.
pub fn write_softhsm_conf(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    conf
}
