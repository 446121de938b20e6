//! The bar: stock sigstore-python 4.x verifies an exported attestation offline with the
//! appliance's trust-config.json, and rejects it after any single byte of the payload, the
//! signature, the inclusion proof or the checkpoint is changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use stella_attestor::export_bundle;
use stella_hsm::{KeyRole, KeySource, Pkcs11KeySource};
use support::appliance::{IDENTITY, OIDC_ISSUER, build};
use support::fixtures::{entitled, sbom_statement};
use support::softhsm_token;

/// The python with sigstore 4.x installed (`STELLA_TEST_PYTHON`); `None` means SKIP.
fn python() -> Option<PathBuf> {
    match std::env::var_os("STELLA_TEST_PYTHON") {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("CI").is_some() => {
            panic!(
                "STELLA_TEST_PYTHON is not set (CI is set, so this fails): point it at a python with sigstore 4.x"
            )
        }
        None => {
            // Written to the process's stderr directly, so libtest's capture cannot hide it.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP sigstore-python interop: STELLA_TEST_PYTHON is not set (python with `pip install 'sigstore>=4,<5'`)"
            );
            None
        }
    }
}

fn sigstore_verify(python: &Path, dir: &Path, bundle: &[u8]) -> (bool, String) {
    let bundle_path = dir.join("sbom.cdx.json.sigstore.json");
    std::fs::write(&bundle_path, bundle).unwrap();
    let output = Command::new(python)
        .args(["-m", "sigstore", "--trust-config"])
        .arg(dir.join("trust-config.json"))
        .args(["verify", "identity", "--offline", "--bundle"])
        .arg(&bundle_path)
        .args([
            "--cert-identity",
            IDENTITY,
            "--cert-oidc-issuer",
            OIDC_ISSUER,
        ])
        .arg(dir.join("sbom.cdx.json"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Flips one bit of byte `at` of the base64 field reached by `pointer`, keeping it base64.
fn flip_b64(bundle: &serde_json::Value, pointer: &str, at: usize) -> Vec<u8> {
    let mut value = bundle.clone();
    let field = value.pointer_mut(pointer).unwrap();
    let mut bytes = STANDARD.decode(field.as_str().unwrap()).unwrap();
    let at = at % bytes.len();
    bytes[at] ^= 0x01;
    *field = serde_json::Value::String(STANDARD.encode(bytes));
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn sigstore_python_verifies_offline_and_rejects_tampering() {
    let Some(python) = python() else { return };
    let Some(settings) = softhsm_token("sigstore_python_verifies_offline_and_rejects_tampering")
    else {
        return;
    };
    let version = Command::new(&python)
        .args(["-m", "sigstore", "--version"])
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    assert!(
        version.starts_with("sigstore 4."),
        "need sigstore-python 4.x, found {version:?}"
    );
    let source = Pkcs11KeySource::open(&settings).unwrap();
    let work = tempfile::tempdir().unwrap();
    let parts = build(&source, &work.path().join("log"));
    let (sbom, statement) = sbom_statement();
    let installation = source
        .find_key(&KeyRole::InstallationIdentity.label().unwrap())
        .unwrap()
        .unwrap()
        .public_key
        .key_id();
    // A few distinct entries before ours, so the proof is not trivial.
    for _ in 0..5 {
        let earlier = parts
            .signer
            .sign_statement(statement.clone(), &entitled(&installation))
            .unwrap();
        export_bundle(&earlier, &parts.log, &parts.tsa).unwrap();
    }
    let signed = parts
        .signer
        .sign_statement(statement, &entitled(&installation))
        .unwrap();
    let exported = export_bundle(&signed, &parts.log, &parts.tsa).unwrap();
    assert_eq!(exported.entry.log_index, "5");

    let dir = work.path();
    std::fs::write(dir.join("sbom.cdx.json"), &sbom).unwrap();
    std::fs::write(
        dir.join("trust-config.json"),
        serde_json::to_vec_pretty(&parts.trust.client_trust_config().unwrap()).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("trusted_root.json"),
        serde_json::to_vec_pretty(&parts.trust.trusted_root().unwrap()).unwrap(),
    )
    .unwrap();
    let (ok, text) = sigstore_verify(&python, dir, &exported.json);
    assert!(ok, "sigstore-python rejected the exported bundle:\n{text}");
    println!("sigstore-python accepted the bundle: {text}");

    // The identity policy is enforced: another identity or issuer is refused.
    for (flag, value) in [
        ("--cert-identity", "https://someone.else/signer"),
        ("--cert-oidc-issuer", "https://someone.else/oidc"),
    ] {
        let bundle_path = dir.join("sbom.cdx.json.sigstore.json");
        let (identity, issuer) = if flag == "--cert-identity" {
            (value, OIDC_ISSUER)
        } else {
            (IDENTITY, value)
        };
        let output = Command::new(&python)
            .args(["-m", "sigstore", "--trust-config"])
            .arg(dir.join("trust-config.json"))
            .args(["verify", "identity", "--offline", "--bundle"])
            .arg(&bundle_path)
            .args(["--cert-identity", identity, "--cert-oidc-issuer", issuer])
            .arg(dir.join("sbom.cdx.json"))
            .output()
            .unwrap();
        assert!(
            !output.status.success(),
            "sigstore-python accepted a wrong {flag}"
        );
    }

    let bundle: serde_json::Value = serde_json::from_slice(&exported.json).unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for at in [0usize, 17, 100, 1000] {
        cases.push((
            format!("payload byte {at}"),
            flip_b64(&bundle, "/dsseEnvelope/payload", at),
        ));
    }
    for at in [0usize, 10, 40, 70] {
        cases.push((
            format!("signature byte {at}"),
            flip_b64(&bundle, "/dsseEnvelope/signatures/0/sig", at),
        ));
    }
    let proof_hashes = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"]
        .as_array()
        .unwrap()
        .len();
    assert!(proof_hashes >= 2);
    for index in 0..proof_hashes {
        cases.push((
            format!("proof hash {index}"),
            flip_b64(
                &bundle,
                &format!("/verificationMaterial/tlogEntries/0/inclusionProof/hashes/{index}"),
                7,
            ),
        ));
    }
    cases.push((
        "proof root hash".into(),
        flip_b64(
            &bundle,
            "/verificationMaterial/tlogEntries/0/inclusionProof/rootHash",
            3,
        ),
    ));
    let checkpoint = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        ["checkpoint"]["envelope"]
        .as_str()
        .unwrap()
        .to_owned();
    // One byte each: in the origin, the size, the root hash and the signature.
    let size_at = checkpoint.find('\n').unwrap() + 1;
    let root_at = checkpoint[size_at..].find('\n').unwrap() + size_at + 5;
    let signature_at = checkpoint.len() - 10;
    for (what, at) in [
        ("origin", 2usize),
        ("size", size_at),
        ("root", root_at),
        ("signature", signature_at),
    ] {
        let mut bytes = checkpoint.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' {
            b'B'
        } else if bytes[at].is_ascii_digit() {
            b'0' + (bytes[at] - b'0' + 1) % 10
        } else {
            b'A'
        };
        let mut value = bundle.clone();
        *value
            .pointer_mut("/verificationMaterial/tlogEntries/0/inclusionProof/checkpoint/envelope")
            .unwrap() = serde_json::Value::String(String::from_utf8(bytes).unwrap());
        cases.push((
            format!("checkpoint {what} byte"),
            serde_json::to_vec(&value).unwrap(),
        ));
    }
    for (what, tampered) in &cases {
        let (ok, text) = sigstore_verify(&python, dir, tampered);
        assert!(
            !ok,
            "sigstore-python accepted a bundle with a changed {what}:\n{text}"
        );
    }
    println!(
        "sigstore-python rejected all {} tampered bundles",
        cases.len()
    );
}
