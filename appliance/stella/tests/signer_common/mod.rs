//! An appliance with a signer for end-to-end tests: its own SoftHSM2 token, vendor and kit keys,
//! a configuration, `stella hsm init`, licence enrolment and kit import through the real binaries
//! (`signer.rs`, `browser.rs`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::authority_common::Daemon;
use crate::common::stella_kit;

pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

pub fn ok(output: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// One appliance under test: a SoftHSM token of its own, a vendor key, a kit key, a config.
pub struct Appliance {
    pub dir: tempfile::TempDir,
    pub softhsm_conf: PathBuf,
    pub config: PathBuf,
}

impl Appliance {
    /// `None` (after a loud SKIP) when SoftHSM2 is missing outside CI.
    pub fn new() -> Option<Appliance> {
        if !Path::new(SOFTHSM_MODULE).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{SOFTHSM_MODULE} is missing: install Debian package softhsm2"
            );
            eprintln!("SKIP signer tests: {SOFTHSM_MODULE} missing (Debian package softhsm2)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let softhsm_conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &softhsm_conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        ok(
            Command::new("softhsm2-util")
                .args([
                    "--init-token",
                    "--free",
                    "--label",
                    "stella",
                    "--so-pin",
                    "so-5678",
                    "--pin",
                    "user-1234",
                ])
                .env("SOFTHSM2_CONF", &softhsm_conf)
                .output()
                .unwrap(),
            "softhsm2-util --init-token",
        );
        std::fs::write(dir.path().join("pin"), "user-1234\n").unwrap();
        for key in ["vendor", "kitkey", "other-vendor"] {
            ok(
                Command::new(stella_kit())
                    .args(["keygen", "--unencrypted", "-o"])
                    .arg(dir.path().join(key))
                    .output()
                    .unwrap(),
                "stella-kit keygen",
            );
        }
        let config = dir.path().join("stella.toml");
        let path = |p: &str| dir.path().join(p).display().to_string();
        std::fs::write(
            &config,
            format!(
                "[kits]\ntrusted_keys = [{:?}]\n\n[hsm]\nbackend = \"pkcs11\"\nmodule = {SOFTHSM_MODULE:?}\ntoken = \"stella\"\npin_file = {:?}\n\n[licence]\nvendor_keys = [{:?}]\n",
                path("kitkey/kit.pub"),
                path("pin"),
                path("vendor/kit.pub"),
            ),
        )
        .unwrap();
        Some(Appliance {
            dir,
            softhsm_conf,
            config,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn data(&self) -> PathBuf {
        self.path("data")
    }

    pub fn stella(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_stella"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("SOFTHSM2_CONF", &self.softhsm_conf)
            .env_remove("STELLA_DATA")
            .output()
            .unwrap()
    }

    pub fn hsm_init(&self) -> String {
        let data = self.data().display().to_string();
        ok(
            self.stella(&["hsm", "init", "--data-dir", &data]),
            "stella hsm init",
        )
    }

    /// `stella licence request` → `stella-kit licence issue` with `extra` terms.
    pub fn licence(&self, name: &str, request: &Path, vendor: &str, extra: &[&str]) -> PathBuf {
        let out = self.path(name);
        ok(
            Command::new(stella_kit())
                .args(["licence", "issue", "--request"])
                .arg(request)
                .args(["--plan", "enterprise", "--customer", "acme", "--key"])
                .arg(self.path(&format!("{vendor}/kit.key")))
                .args(extra)
                .arg("-o")
                .arg(&out)
                .output()
                .unwrap(),
            "stella-kit licence issue",
        );
        out
    }

    pub fn enrol(&self) -> PathBuf {
        let request = self.path("req.json");
        ok(
            self.stella(&["licence", "request", "-o", &request.display().to_string()]),
            "stella licence request",
        );
        request
    }

    /// Builds a kit from `sources` (KIND=PATH) and imports it with `stella import`.
    pub fn import(&self, sequence: u64, sources: &[String]) {
        let kit = self.path(&format!("kit-{sequence}.tar.zst"));
        let mut build = Command::new(stella_kit());
        build.arg("build");
        for source in sources {
            build.args(["--source", source]);
        }
        ok(
            build
                .args(["--channel", "licences", "--sequence", &sequence.to_string()])
                .arg("--key")
                .arg(self.path("kitkey/kit.key"))
                .arg("-o")
                .arg(&kit)
                .output()
                .unwrap(),
            "stella-kit build",
        );
        let data = self.data().display().to_string();
        ok(
            self.stella(&["import", &kit.display().to_string(), "--data-dir", &data]),
            "stella import",
        );
    }

    pub fn serve(&self) -> Daemon {
        Daemon::start_env(
            &self.data(),
            &["--config", &self.config.display().to_string()],
            &[("SOFTHSM2_CONF", &self.softhsm_conf)],
        )
    }
}
