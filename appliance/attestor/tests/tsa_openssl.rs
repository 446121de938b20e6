//! The RFC 3161 tokens of the HSM-backed TSA, checked by an independent implementation:
//! `openssl ts -verify` (Debian package `openssl`) accepts them and rejects a changed byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use stella_attestor::{TimestampAuthority, verify_timestamp};
use stella_hsm::{KeyRole, KeySource, Pkcs11KeySource, init_appliance_keys};
use stella_signer::FixedClock;
use support::fixtures::NOW;
use support::softhsm_token;

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn openssl_verify(dir: &Path, response: &[u8]) -> (bool, String) {
    std::fs::write(dir.join("response.der"), response).unwrap();
    let output = Command::new("openssl")
        .args(["ts", "-verify", "-in"])
        .arg(dir.join("response.der"))
        .arg("-data")
        .arg(dir.join("message"))
        .arg("-CAfile")
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("leaf.pem"))
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn openssl_accepts_the_timestamps_and_rejects_changes() {
    let Some(settings) = softhsm_token("openssl_accepts_the_timestamps_and_rejects_changes") else {
        return;
    };
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl missing (CI is set)"
        );
        eprintln!("SKIP openssl ts interop: install Debian package openssl");
        return;
    }
    let source = Pkcs11KeySource::open(&settings).unwrap();
    init_appliance_keys(&source).unwrap();
    let tsa = TimestampAuthority::create(
        source
            .signer(&KeyRole::Timestamping.label().unwrap())
            .unwrap(),
        Arc::new(FixedClock(NOW)),
        "ACME test appliance",
        NOW - time::Duration::days(1),
        time::Duration::days(3653),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let message = b"the signature bytes a Sigstore bundle timestamps";
    std::fs::write(dir.path().join("message"), message).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), pem(&tsa.chain_der()[0])).unwrap();
    std::fs::write(dir.path().join("root.pem"), pem(&tsa.chain_der()[1])).unwrap();
    let response = tsa.timestamp(message).unwrap();
    let verified = verify_timestamp(&response, message, tsa.chain_der()).unwrap();
    assert_eq!(verified.time, NOW);
    let (ok, text) = openssl_verify(dir.path(), &response);
    assert!(
        ok && text.contains("Verification: OK"),
        "openssl rejected the token:\n{text}"
    );
    // Reopening the TSA with its persisted chain yields tokens that verify the same way.
    let reopened = TimestampAuthority::with_chain(
        source
            .signer(&KeyRole::Timestamping.label().unwrap())
            .unwrap(),
        Arc::new(FixedClock(NOW)),
        tsa.chain_der().to_vec(),
    )
    .unwrap();
    assert!(openssl_verify(dir.path(), &reopened.timestamp(message).unwrap()).0);
    // Another message, and a changed byte of the signed TSTInfo (its genTime), are rejected.
    assert!(!openssl_verify(dir.path(), &tsa.timestamp(b"another message").unwrap()).0);
    let at = response.windows(8).position(|w| w == b"20261129").unwrap() + 9;
    let mut changed = response.clone();
    changed[at] ^= 1;
    let (ok, text) = openssl_verify(dir.path(), &changed);
    assert!(!ok, "openssl accepted a changed genTime:\n{text}");
    assert!(verify_timestamp(&changed, message, tsa.chain_der()).is_err());
}
