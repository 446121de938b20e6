//! Test support: SoftHSM2 tokens per test (child processes), the appliance parts, fixtures.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, when the module is initialised, and a PKCS#11 module is
//! initialised once per process; setting the variable in-process would need `unsafe`. So each
//! SoftHSM test re-runs itself (`--exact NAME`) in a child whose environment names a fresh
//! configuration and token directory, and the parent asserts that the child ran and passed.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};

/// Prints a SKIP line to the process's stderr directly, past libtest's output capture.
#[macro_export]
macro_rules! loud_skip {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
use std::process::Command;

use stella_hsm::{Pkcs11Settings, initialize_token};

/// Debian's SoftHSM2 module (package `softhsm2`).
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CHILD_MARKER: &str = "STELLA_SOFTHSM_CHILD";
pub const TOKEN: &str = "stella-test";
pub const USER_PIN: &str = "user-pin-1234";
pub const SO_PIN: &str = "so-pin-5678";

/// In the parent: runs `test_name` in a child with a fresh SoftHSM token and returns `None`.
/// In the child: initialises the token and returns the settings to open it.
pub fn softhsm_token(test_name: &str) -> Option<Pkcs11Settings> {
    if let Some(dir) = std::env::var_os(CHILD_MARKER) {
        initialize_token(Path::new(SOFTHSM_MODULE), TOKEN, SO_PIN, USER_PIN).unwrap();
        let _ = dir;
        return Some(Pkcs11Settings {
            module: PathBuf::from(SOFTHSM_MODULE),
            token: TOKEN.to_owned(),
            pin: USER_PIN.to_owned(),
        });
    }
    if !Path::new(SOFTHSM_MODULE).exists() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{SOFTHSM_MODULE} is missing: install Debian package softhsm2 (CI is set, so this fails)"
            );
        }
        loud_skip!(
            "SKIP {test_name}: {SOFTHSM_MODULE} is missing; install Debian package softhsm2"
        );
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
    println!("{stdout}");
    // Loud SKIP lines of the child (e.g. a missing python) must reach the parent's output.
    for line in stderr.lines().filter(|line| line.starts_with("SKIP")) {
        loud_skip!("{line}");
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

/// Test fixtures shared by the signer tests.
pub mod fixtures {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use stella_signer::{
        Entitled, Entitlement, GateContext, Predicate, RevocationList, SIGNING_QUOTA, SemVer,
        Sha256Digest, Statement, StatementBuilder, VendorSignature, check_entitlement,
    };
    use time::OffsetDateTime;
    use time::macros::datetime;

    pub const NOW: OffsetDateTime = datetime!(2026-11-29 06:00:00 UTC);
    pub const VENDOR_KEY: &str = "vendor-key-2026";

    /// `tests/data/attestor/<name>` at the repository root.
    pub fn data(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/attestor")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// A licence that passes the gate for `installation_key_sha256` at [`NOW`].
    pub fn licence(installation_key_sha256: &str) -> Entitlement {
        Entitlement {
            licence_id: "lic-0123456789abcdef0123".to_owned(),
            customer: "CUST-ACME".to_owned(),
            plan: "pro".to_owned(),
            quotas: BTreeMap::from([(SIGNING_QUOTA.to_owned(), 100)]),
            valid_release_year: Some(2027),
            max_version: Some(SemVer::new(2, 9, 0)),
            expires: NOW + time::Duration::days(30),
            installation_key_sha256: installation_key_sha256.to_owned(),
            vendor_key_id: VENDOR_KEY.to_owned(),
            vendor_signature: VendorSignature::Verified,
        }
    }

    /// The SBOM artefact the test attestations cover, and a statement for it.
    pub fn sbom_statement() -> (Vec<u8>, Statement) {
        let sbom = data("sbom.cdx.json");
        let statement =
            StatementBuilder::new("registry.example/app", Sha256Digest::of(b"image manifest"))
                .sbom_subject("sbom.cdx.json", &sbom)
                .build(Predicate::CycloneDx(serde_json::from_slice(&sbom).unwrap()))
                .unwrap();
        (sbom, statement)
    }

    /// Runs the gate for a valid licence and returns the proof.
    pub fn entitled(installation_key_sha256: &str) -> Entitled {
        let trusted = BTreeSet::from([VENDOR_KEY.to_owned()]);
        let revocations = RevocationList::default();
        let version = SemVer::new(2, 3, 1);
        let context = GateContext {
            now: NOW,
            installation_key_sha256,
            trusted_vendor_keys: &trusted,
            revocations: &revocations,
            running_version: &version,
            running_release_year: 2026,
            signatures_used: 0,
        };
        check_entitlement(Some(&licence(installation_key_sha256)), &context).unwrap()
    }
}

/// The appliance's signing parts on one key source.
pub mod appliance {
    use std::path::Path;
    use std::sync::Arc;

    use stella_attestor::{CheckpointSigner, TimestampAuthority, TransparencyLog, TrustMaterial};
    use stella_hsm::{KeyRole, KeySource, init_appliance_keys};
    use stella_signer::{AttestationSigner, CaProfile, FixedClock, SigningIdentity};

    use super::fixtures::NOW;

    pub const IDENTITY: &str = "https://appliance.stella.test/signer";
    pub const OIDC_ISSUER: &str = "https://appliance.stella.test/oidc";
    pub const ORIGIN: &str = "appliance.stella.test/log";
    pub const ORGANIZATION: &str = "ACME test appliance";
    pub const CA_NAME: &str = "Stella Ops Appliance Root CA";

    pub struct Parts {
        pub signer: AttestationSigner,
        pub log: TransparencyLog,
        pub tsa: TimestampAuthority,
        pub trust: TrustMaterial,
    }

    pub fn checkpoint_signer(source: &dyn KeySource) -> CheckpointSigner {
        CheckpointSigner::new(
            source
                .signer(&KeyRole::TlogCheckpoint.label().unwrap())
                .unwrap(),
            ORIGIN,
        )
        .unwrap()
    }

    pub fn build(source: &dyn KeySource, log_dir: &Path) -> Parts {
        init_appliance_keys(source).unwrap();
        let clock = Arc::new(FixedClock(NOW));
        let profile = CaProfile::new(CA_NAME, ORGANIZATION, NOW - time::Duration::days(1));
        let signer = AttestationSigner::from_key_source(
            source,
            &profile,
            None,
            clock.clone(),
            SigningIdentity::Uri(IDENTITY.to_owned()),
            OIDC_ISSUER,
        )
        .unwrap();
        let log = TransparencyLog::open(log_dir, checkpoint_signer(source)).unwrap();
        let tsa = TimestampAuthority::create(
            source
                .signer(&KeyRole::Timestamping.label().unwrap())
                .unwrap(),
            clock,
            ORGANIZATION,
            NOW - time::Duration::days(1),
            time::Duration::days(3653),
        )
        .unwrap();
        let trust = TrustMaterial::new(
            "https://appliance.stella.test",
            ORGANIZATION,
            signer.certificate_authority(),
            CA_NAME,
            signer.ct_log().unwrap(),
            &log,
            &tsa,
            NOW - time::Duration::days(1),
        );
        Parts {
            signer,
            log,
            tsa,
            trust,
        }
    }
}
