//! Release integrity: the running binary's minisign signature is checked before signing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Cursor;
use std::sync::Arc;

use stella_hsm::{FileKeySource, KeyRole, KeySource, SigningMode, init_appliance_keys};
use stella_signer::{
    AttestationSigner, CaProfile, FixedClock, Predicate, RELEASE_OVERRIDE_ANNOTATION,
    ReleaseIntegrity, ReleasePolicy, Sha256Digest, SignerError, SigningIdentity, StatementBuilder,
    check_release,
};
use support::fixtures::{NOW, data, entitled};

const BINARY: &[u8] = b"\x7fELF pretend this is the stella binary";

fn release_key() -> (minisign::KeyPair, String) {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let public = pair.pk.to_base64();
    (pair, public)
}

fn sign(pair: &minisign::KeyPair, data: &[u8]) -> String {
    minisign::sign(
        Some(&pair.pk),
        &pair.sk,
        Cursor::new(data),
        Some("stella 2.3.1"),
        None,
    )
    .unwrap()
    .into_string()
}

#[test]
fn a_correctly_signed_binary_verifies() {
    let (pair, public) = release_key();
    let outcome = check_release(
        BINARY,
        Some(&sign(&pair, BINARY)),
        &ReleasePolicy::Enforce {
            release_public_key: public,
        },
    )
    .unwrap();
    assert!(
        matches!(outcome, ReleaseIntegrity::Verified { ref key_id } if key_id.len() == 16),
        "{outcome:?}"
    );
}

#[test]
fn a_modified_binary_is_refused() {
    let (pair, public) = release_key();
    let signature = sign(&pair, BINARY);
    let mut modified = BINARY.to_vec();
    modified[5] ^= 1;
    let error = check_release(
        &modified,
        Some(&signature),
        &ReleasePolicy::Enforce {
            release_public_key: public,
        },
    )
    .unwrap_err();
    assert!(matches!(error, SignerError::ReleaseIntegrity(_)), "{error}");
}

#[test]
fn a_signature_by_another_key_or_none_is_refused() {
    let (pair, _) = release_key();
    let (_, other_public) = release_key();
    let policy = ReleasePolicy::Enforce {
        release_public_key: other_public,
    };
    assert!(check_release(BINARY, Some(&sign(&pair, BINARY)), &policy).is_err());
    let error = check_release(BINARY, None, &policy).unwrap_err();
    assert!(error.to_string().contains(".minisig"), "{error}");
    assert!(check_release(BINARY, Some("garbage"), &policy).is_err());
}

#[test]
fn a_dev_override_is_recorded_in_every_attestation() {
    assert_eq!(
        check_release(BINARY, None, &ReleasePolicy::NotConfigured).unwrap(),
        ReleaseIntegrity::NotConfigured
    );
    let outcome = check_release(BINARY, None, &ReleasePolicy::DevOverride).unwrap();
    assert_eq!(outcome, ReleaseIntegrity::DevOverride);

    let dir = tempfile::tempdir().unwrap();
    let source = FileKeySource::open(dir.path(), SigningMode::Dev).unwrap();
    init_appliance_keys(&source).unwrap();
    let mut signer = AttestationSigner::from_key_source(
        &source,
        &CaProfile::new("Root", "Org", NOW - time::Duration::days(1)),
        None,
        Arc::new(FixedClock(NOW)),
        SigningIdentity::Uri("https://appliance.stella.test/signer".to_owned()),
        "https://appliance.stella.test/oidc",
    )
    .unwrap();
    signer.set_release_integrity(outcome);
    let sbom = data("cyclonedx-valid-license-id-1.6.json");
    let statement = StatementBuilder::new("registry.example/app", Sha256Digest::of(b"image"))
        .sbom_subject("inventory.cdx.json", &sbom)
        .build(Predicate::CycloneDx(serde_json::from_slice(&sbom).unwrap()))
        .unwrap();
    let identity = source
        .find_key(&KeyRole::InstallationIdentity.label().unwrap())
        .unwrap()
        .unwrap();
    let signed = signer
        .sign_statement(statement, &entitled(&identity.public_key.key_id()))
        .unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&signed.statement_json).unwrap();
    for subject in payload["subject"].as_array().unwrap() {
        assert_eq!(subject["annotations"][RELEASE_OVERRIDE_ANNOTATION], true);
    }
    assert_eq!(signed.audit_record().release, ReleaseIntegrity::DevOverride);
}
