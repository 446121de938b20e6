//! Drives the real `stella-kit` binary: keygen, build twice (byte-identical), the stock `minisign -V`
//! on both signatures, inspect with the right and a wrong key, tampering, and the licence flow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn stella_kit(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stella-kit"))
        .args(args)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", "1793491200")
        .env_remove("STELLA_KIT_PASSWORD")
        .output()
        .unwrap()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The Debian `minisign` tool, or None (a loud SKIP outside CI, a failure in CI).
fn minisign() -> Option<&'static str> {
    if Command::new("minisign").arg("-v").output().is_ok() {
        return Some("minisign");
    }
    if std::env::var_os("CI").is_some() {
        panic!("the `minisign` binary (Debian package minisign) is required in CI");
    }
    eprintln!(
        "SKIP: `minisign` not installed (apt-get install minisign); the interop check did not run"
    );
    None
}

fn build_args<'a>(out: &'a str, sources: &'a [String]) -> Vec<&'a str> {
    let mut args = vec![
        "build",
        "--channel",
        "stable",
        "--sequence",
        "3",
        "--expires",
        "30d",
        "--key",
        "keys/kit.key",
        "-o",
        out,
    ];
    for source in sources {
        args.push("--source");
        args.push(source);
    }
    args
}

#[test]
fn build_is_reproducible_and_stock_minisign_verifies_both_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&stella_kit(&["keygen", "-o", "keys", "--unencrypted"], d));
    assert!(
        stella_kit(&["keygen", "-o", "keys", "--unencrypted"], d)
            .status
            .code()
            == Some(2),
        "keygen must not overwrite"
    );
    let sources: Vec<String> = subset_specs()
        .iter()
        .map(|s| format!("{}={}", s.kind, s.location))
        .collect();
    let built = stella_kit(&build_args("kit-3.tar.zst", &sources), d);
    let summary = ok(&built);
    assert!(
        summary.contains("RECORDS") && summary.contains("nodejs-security-wg"),
        "{summary}"
    );
    // Not a terminal: no progress bar on stderr.
    assert!(
        built.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    ok(&stella_kit(&build_args("again.tar.zst", &sources), d));
    let first = std::fs::read(d.join("kit-3.tar.zst")).unwrap();
    assert_eq!(
        first,
        std::fs::read(d.join("again.tar.zst")).unwrap(),
        "two builds differ"
    );
    assert_eq!(
        std::fs::read(d.join("kit-3.tar.zst.minisig")).unwrap(),
        std::fs::read(d.join("again.tar.zst.minisig")).unwrap()
    );
    // SOURCE_DATE_EPOCH 1793491200 is 2026-11-01T00:00:00Z.
    let manifest = extract(&first, "manifest.json");
    assert!(String::from_utf8_lossy(&manifest).contains(r#""created":"2026-11-01T00:00:00Z""#));

    // inspect: verifies with the right key, refuses with another, reports tampering.
    let inspected = ok(&stella_kit(
        &["inspect", "kit-3.tar.zst", "--key", "keys/kit.pub"],
        d,
    ));
    assert!(
        inspected.contains("VERIFIED") && inspected.contains("sequence 3"),
        "{inspected}"
    );
    ok(&stella_kit(&["keygen", "-o", "other", "--unencrypted"], d));
    let wrong = stella_kit(&["inspect", "kit-3.tar.zst", "--key", "other/kit.pub"], d);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("unknown-key"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let unverified = stella_kit(&["inspect", "kit-3.tar.zst"], d);
    assert_eq!(unverified.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unverified.stderr).contains("NOT VERIFIED"));
    let mut tampered = first.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    std::fs::write(d.join("tampered.tar.zst"), &tampered).unwrap();
    assert!(
        !stella_kit(&["inspect", "tampered.tar.zst", "--key", "keys/kit.pub"], d)
            .status
            .success()
    );

    // The stock minisign tool verifies the sidecar over the archive and the in-kit signature
    // over manifest.json, and rejects the tampered archive.
    let Some(minisign) = minisign() else { return };
    let check = |file: &str, signature: &str| {
        Command::new(minisign)
            .args(["-V", "-p", "keys/kit.pub", "-m", file, "-x", signature])
            .current_dir(d)
            .output()
            .unwrap()
    };
    let archive = check("kit-3.tar.zst", "kit-3.tar.zst.minisig");
    assert!(
        archive.status.success(),
        "{}",
        String::from_utf8_lossy(&archive.stderr)
    );
    assert!(
        String::from_utf8_lossy(&archive.stdout).contains("stella-kit archive kit_id=stable-3-")
    );
    std::fs::write(d.join("manifest.json"), &manifest).unwrap();
    std::fs::write(
        d.join("manifest.json.minisig"),
        extract(&first, "manifest.json.minisig"),
    )
    .unwrap();
    let inner = check("manifest.json", "manifest.json.minisig");
    assert!(
        inner.status.success(),
        "{}",
        String::from_utf8_lossy(&inner.stderr)
    );
    assert!(String::from_utf8_lossy(&inner.stdout).contains("sequence=3"));
    std::fs::copy(
        d.join("kit-3.tar.zst.minisig"),
        d.join("tampered.tar.zst.minisig"),
    )
    .unwrap();
    assert!(
        !check("tampered.tar.zst", "tampered.tar.zst.minisig")
            .status
            .success()
    );
}

#[test]
fn password_protected_key_needs_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pw"), "s3cret\n").unwrap();
    ok(&stella_kit(
        &["keygen", "-o", "keys", "--password-file", "pw"],
        d,
    ));
    let secret = std::fs::read_to_string(d.join("keys/kit.key")).unwrap();
    assert!(secret.starts_with("untrusted comment:"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(d.join("keys/kit.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let source = format!(
        "kev={}",
        subsets()
            .join("kev/known_exploited_vulnerabilities.json")
            .display()
    );
    let sources = [source];
    let without = stella_kit(&build_args("k.tar.zst", &sources), d);
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("password"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let mut args = build_args("k.tar.zst", &sources);
    args.extend(["--password-file", "pw"]);
    ok(&stella_kit(&args, d));
    if let Some(minisign) = minisign() {
        // The encrypted secret key is in minisign's own format: the stock tool signs with it.
        std::fs::write(d.join("blob"), b"hello").unwrap();
        let mut child = Command::new(minisign)
            .args(["-S", "-s", "keys/kit.key", "-m", "blob"])
            .current_dir(d)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
        let signed = child.wait_with_output().unwrap();
        assert!(
            signed.status.success(),
            "{}",
            String::from_utf8_lossy(&signed.stderr)
        );
        let verified = Command::new(minisign)
            .args(["-V", "-p", "keys/kit.pub", "-m", "blob"])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(verified.status.success());
    }
}

#[test]
fn licence_issue_revoke_and_carry_in_a_kit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&stella_kit(
        &["keygen", "-o", "kitkeys", "--unencrypted"],
        d,
    ));
    ok(&stella_kit(&["keygen", "-o", "vendor", "--unencrypted"], d));
    let request = stella_importer::licence::ed25519_enrolment_request(
        &[5; 32],
        "appliance-0001",
        "2026-10-01T00:00:00Z",
    )
    .unwrap();
    std::fs::write(
        d.join("req.json"),
        serde_json::to_vec_pretty(&request).unwrap(),
    )
    .unwrap();
    let issue = |out: &str| {
        stella_kit(
            &[
                "licence",
                "issue",
                "--request",
                "req.json",
                "--plan",
                "enterprise",
                "--customer",
                "ACME Corp",
                "--expires",
                "365d",
                "--key",
                "vendor/kit.key",
                "--quota",
                "signatures_per_month=5000",
                "--valid-release-year",
                "2027",
                "-o",
                out,
            ],
            d,
        )
    };
    ok(&issue("licence.json"));
    ok(&issue("licence-again.json"));
    assert_eq!(
        std::fs::read(d.join("licence.json")).unwrap(),
        std::fs::read(d.join("licence-again.json")).unwrap()
    );
    let licence = stella_importer::licence::SignedLicence::parse(
        &std::fs::read(d.join("licence.json")).unwrap(),
    )
    .unwrap();
    let vendor = stella_importer::TrustedKeys::from_texts([std::fs::read_to_string(
        d.join("vendor/kit.pub"),
    )
    .unwrap()
    .as_str()])
    .unwrap();
    licence.verify(&vendor).unwrap();
    assert_eq!(licence.licence.appliance_id, "appliance-0001");
    assert_eq!(
        licence.licence.installation_key,
        request.request.installation_key
    );
    assert_eq!(licence.licence.quotas["signatures_per_month"], 5000);

    // A request whose self-signature does not verify is refused.
    let mut forged = request.clone();
    forged.request.appliance_id = "appliance-0002".into();
    std::fs::write(d.join("req.json"), serde_json::to_vec(&forged).unwrap()).unwrap();
    let refused = issue("forged.json");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("self-signature"));

    let id = licence.licence.licence_id.clone();
    ok(&stella_kit(
        &[
            "licence",
            "revoke",
            "--licence-id",
            &id,
            "--key",
            "vendor/kit.key",
            "-o",
            "revocations.json",
        ],
        d,
    ));
    ok(&stella_kit(
        &[
            "licence",
            "revoke",
            "--licence-id",
            "lic-other",
            "--list",
            "revocations.json",
            "--key",
            "vendor/kit.key",
            "-o",
            "revocations-2.json",
        ],
        d,
    ));
    let list = stella_importer::licence::SignedRevocationList::parse(
        &std::fs::read(d.join("revocations-2.json")).unwrap(),
    )
    .unwrap();
    list.verify(&vendor).unwrap();
    assert_eq!(list.list.sequence, 2);
    assert!(list.is_revoked(&id) && list.is_revoked("lic-other"));

    let out = ok(&stella_kit(
        &[
            "build",
            "--sequence",
            "1",
            "--key",
            "kitkeys/kit.key",
            "-o",
            "kit.tar.zst",
            "--source",
            "licence=licence.json",
            "--source",
            "revocations=revocations-2.json",
        ],
        d,
    ));
    assert!(
        out.contains("licences=1") && out.contains("revocations=1"),
        "{out}"
    );
    let kit_keys = stella_importer::TrustedKeys::from_texts([std::fs::read_to_string(
        d.join("kitkeys/kit.pub"),
    )
    .unwrap()
    .as_str()])
    .unwrap();
    let kit = stella_importer::verify_kit(
        std::fs::read(d.join("kit.tar.zst")).unwrap().as_slice(),
        &kit_keys,
        &stella_importer::FixedClock(time("2026-11-02T00:00:00Z")),
        &stella_importer::Limits::default(),
    )
    .unwrap();
    kit.licences[0].verify(&vendor).unwrap();
    kit.revocations[0].verify(&vendor).unwrap();
    assert!(kit.revocations[0].is_revoked(&kit.licences[0].licence.licence_id));
}

#[test]
fn kit_key_rotation_travels_in_a_kit_signed_by_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&stella_kit(&["keygen", "-o", "old", "--unencrypted"], d));
    ok(&stella_kit(&["keygen", "-o", "new", "--unencrypted"], d));
    let old_key = SigningKeyFile::read(&d.join("old"));
    ok(&stella_kit(
        &[
            "key-update",
            "--add",
            "new/kit.pub",
            "--remove-key-id",
            &old_key.key_id,
            "--sequence",
            "1",
            "--key",
            "old/kit.key",
            "-o",
            "update.json",
        ],
        d,
    ));
    let kev = format!("kev={}", subsets().join("kev").display());
    ok(&stella_kit(
        &[
            "build",
            "--sequence",
            "1",
            "--key",
            "old/kit.key",
            "-o",
            "kit-1.tar.zst",
            "--source",
            "key-update=update.json",
            "--source",
            &kev,
        ],
        d,
    ));
    ok(&stella_kit(
        &[
            "build",
            "--sequence",
            "2",
            "--key",
            "new/kit.key",
            "-o",
            "kit-2.tar.zst",
            "--source",
            &kev,
        ],
        d,
    ));
    ok(&stella_kit(
        &[
            "build",
            "--sequence",
            "3",
            "--key",
            "old/kit.key",
            "-o",
            "kit-3.tar.zst",
            "--source",
            &kev,
        ],
        d,
    ));

    // The appliance trusts only the old key at first.
    let clock = stella_importer::FixedClock(time("2026-11-02T00:00:00Z"));
    let limits = stella_importer::Limits::default();
    let mut trusted = stella_importer::TrustedKeys::from_texts([old_key.public.as_str()]).unwrap();
    let read = |name: &str| std::fs::read(d.join(name)).unwrap();
    assert_eq!(
        stella_importer::verify_kit(read("kit-2.tar.zst").as_slice(), &trusted, &clock, &limits)
            .unwrap_err()
            .reason(),
        "unknown-key"
    );
    let kit1 =
        stella_importer::verify_kit(read("kit-1.tar.zst").as_slice(), &trusted, &clock, &limits)
            .unwrap();
    assert_eq!(kit1.key_updates.len(), 1);
    trusted = kit1.key_updates[0].apply(&trusted, None).unwrap();
    // After the rotation the new key's kits verify and the old key's no longer do.
    stella_importer::verify_kit(read("kit-2.tar.zst").as_slice(), &trusted, &clock, &limits)
        .unwrap();
    assert_eq!(
        stella_importer::verify_kit(read("kit-3.tar.zst").as_slice(), &trusted, &clock, &limits)
            .unwrap_err()
            .reason(),
        "unknown-key"
    );
    // The same update cannot be replayed.
    assert!(kit1.key_updates[0].apply(&trusted, Some(1)).is_err());
    // A delta across the rotation: the base (old key) is accepted only with --base-key.
    let delta_args = [
        "build",
        "--sequence",
        "4",
        "--key",
        "new/kit.key",
        "-o",
        "kit-4.tar.zst",
        "--base",
        "kit-1.tar.zst",
        "--source",
        &kev,
    ];
    let refused = stella_kit(&delta_args, d);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not trusted"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let mut with_key = delta_args.to_vec();
    with_key.extend(["--base-key", "old/kit.pub"]);
    ok(&stella_kit(&with_key, d));
    let kit4 =
        stella_importer::verify_kit(read("kit-4.tar.zst").as_slice(), &trusted, &clock, &limits)
            .unwrap();
    assert_eq!(
        kit4.manifest.base.as_ref().unwrap().manifest_sha256,
        kit1.manifest_sha256
    );
    assert!(
        kit4.kev.is_empty(),
        "KEV unchanged since kit 1, so the delta carries none"
    );
    assert!(
        kit4.removed
            .iter()
            .any(|r| r.kind == stella_importer::ContentKind::KeyUpdates),
        "the update is not in this build's sources"
    );
}

struct SigningKeyFile {
    key_id: String,
    public: String,
}

impl SigningKeyFile {
    fn read(dir: &Path) -> Self {
        let key = stella_importer::SigningKey::from_minisign_file_contents(
            &std::fs::read_to_string(dir.join("kit.key")).unwrap(),
            None,
        )
        .unwrap();
        SigningKeyFile {
            key_id: key.key_id(),
            public: std::fs::read_to_string(dir.join("kit.pub")).unwrap(),
        }
    }
}
