//! End-to-end signing through each key backend: statement → DSSE → leaf certificate with SCT,
//! plus the independent check by python securesystemslib + cryptography.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;

use stella_hsm::{
    FileKeySource, KeyRole, KeySource, Pkcs11KeySource, SigningMode, YubiHsmKeySource,
    init_appliance_keys,
};
use stella_signer::{
    AttestationSigner, CaProfile, CertificateAuthority, DEV_SIGNED_ANNOTATION, Envelope,
    FixedClock, IN_TOTO_PAYLOAD_TYPE, OIDC_ISSUER_OID, PolicyReport, Predicate, SCT_LIST_OID,
    Sha256Digest, SignedAttestation, SignerError, SigningIdentity, StatementBuilder,
};
use support::fixtures::{NOW, data, entitled};
use support::softhsm_token;

const IDENTITY: &str = "https://appliance.stella.test/signer";
const OIDC_ISSUER: &str = "https://appliance.stella.test/oidc";

fn profile() -> CaProfile {
    CaProfile::new(
        "Stella Ops Appliance Root CA",
        "ACME test appliance",
        NOW - time::Duration::days(1),
    )
}

fn signer_for(source: &dyn KeySource) -> AttestationSigner {
    init_appliance_keys(source).unwrap();
    AttestationSigner::from_key_source(
        source,
        &profile(),
        None,
        Arc::new(FixedClock(NOW)),
        SigningIdentity::Uri(IDENTITY.to_owned()),
        OIDC_ISSUER,
    )
    .unwrap()
}

fn image() -> Sha256Digest {
    Sha256Digest::of(b"example image manifest")
}

fn cyclonedx_statement() -> stella_signer::Statement {
    let sbom = data("cyclonedx-valid-license-id-1.6.json");
    StatementBuilder::new("registry.example/app", image())
        .sbom_subject("inventory.cdx.json", &sbom)
        .build(Predicate::CycloneDx(serde_json::from_slice(&sbom).unwrap()))
        .unwrap()
}

fn installation_key(source: &dyn KeySource) -> String {
    source
        .find_key(&KeyRole::InstallationIdentity.label().unwrap())
        .unwrap()
        .unwrap()
        .public_key
        .key_id()
}

fn oid_string(oid: &[u64]) -> String {
    oid.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// Checks the attestation with the crate's own verifier and x509-parser.
fn check_signed(signed: &SignedAttestation, signer: &AttestationSigner, source: &dyn KeySource) {
    let attestation_key = source
        .find_key(&KeyRole::Attestation.label().unwrap())
        .unwrap()
        .unwrap()
        .public_key;
    assert_eq!(
        signed.envelope.verify(&attestation_key).unwrap(),
        signed.statement_json
    );
    assert_eq!(signed.envelope.payload_type, IN_TOTO_PAYLOAD_TYPE);
    let (_, leaf) = x509_parser::parse_x509_certificate(&signed.certificate.der).unwrap();
    let ca_key = signer.certificate_authority().public_key();
    ca_key
        .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
        .unwrap();
    assert_eq!(leaf.public_key().raw, attestation_key.spki_der());
    assert_eq!(leaf.validity().not_before.timestamp(), NOW.unix_timestamp());
    assert_eq!(
        leaf.validity().not_after.timestamp(),
        NOW.unix_timestamp() + 600
    );
    assert_eq!(
        hex::encode(leaf.raw_serial()),
        signed.certificate.serial_hex
    );
    let oids: Vec<String> = leaf
        .extensions()
        .iter()
        .map(|ext| ext.oid.to_id_string())
        .collect();
    assert!(oids.contains(&oid_string(OIDC_ISSUER_OID)), "{oids:?}");
    assert_eq!(
        oids.last().unwrap(),
        &oid_string(SCT_LIST_OID),
        "the SCT list must be the last extension"
    );
    let (_, root) =
        x509_parser::parse_x509_certificate(&signer.certificate_authority().root().der).unwrap();
    ca_key
        .verify(root.tbs_certificate.as_ref(), &root.signature_value.data)
        .unwrap();
    assert_eq!(leaf.issuer(), root.subject());
}

#[test]
fn softhsm_attestations_verify_here_and_in_python() {
    let Some(settings) = softhsm_token("softhsm_attestations_verify_here_and_in_python") else {
        return;
    };
    let source = Pkcs11KeySource::open(&settings).unwrap();
    let signer = signer_for(&source);
    let signed = signer
        .sign_statement(cyclonedx_statement(), &entitled(&installation_key(&source)))
        .unwrap();
    check_signed(&signed, &signer, &source);
    assert!(!signed.dev_signed);
    assert_eq!(signed.licence_id, "lic-0123456789abcdef0123");

    // A second envelope over the same statement with the Ed25519 (checkpoint) key.
    let ed_signer = source
        .signer(&KeyRole::TlogCheckpoint.label().unwrap())
        .unwrap();
    let ed_envelope = Envelope::sign(
        IN_TOTO_PAYLOAD_TYPE,
        &signed.statement_json,
        ed_signer.as_ref(),
    )
    .unwrap();
    ed_envelope.verify(&ed_signer.key().public_key).unwrap();

    // Reopening the CA from the stored root keeps the root byte-identical.
    let ca_signer = source
        .signer(&KeyRole::CertificateAuthority.label().unwrap())
        .unwrap();
    let root_der = signer.certificate_authority().root().der.clone();
    let reopened = CertificateAuthority::with_root(ca_signer, &profile(), &root_der).unwrap();
    assert_eq!(reopened.root().der, root_der);

    let attestation_key = source
        .find_key(&KeyRole::Attestation.label().unwrap())
        .unwrap()
        .unwrap()
        .public_key;
    run_python_interop(
        &[
            (&signed.envelope, &attestation_key, "ecdsa-sha2-nistp256"),
            (&ed_envelope, &ed_signer.key().public_key, "ed25519"),
        ],
        &signed,
        &signer,
    );
}

fn run_python_interop(
    envelopes: &[(&Envelope, &stella_hsm::PublicKey, &str)],
    signed: &SignedAttestation,
    signer: &AttestationSigner,
) {
    let python = match std::env::var_os("STELLA_TEST_PYTHON") {
        Some(python) => python,
        None if std::env::var_os("CI").is_some() => {
            panic!(
                "STELLA_TEST_PYTHON is not set (a python with securesystemslib and cryptography); CI is set, so this fails"
            )
        }
        None => {
            eprintln!(
                "SKIP python interop: set STELLA_TEST_PYTHON to a python with securesystemslib and cryptography"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for (index, (envelope, key, scheme)) in envelopes.iter().enumerate() {
        let path = dir.path().join(format!("envelope-{index}.json"));
        std::fs::write(&path, envelope.to_json().unwrap()).unwrap();
        cases.push(serde_json::json!({
            "envelope": path, "public_key_pem": key.to_pem(), "keyid": key.key_id(), "scheme": scheme,
        }));
    }
    let leaf = dir.path().join("leaf.der");
    let root = dir.path().join("root.der");
    std::fs::write(&leaf, &signed.certificate.der).unwrap();
    std::fs::write(&root, &signer.certificate_authority().root().der).unwrap();
    let manifest = serde_json::json!({
        "envelopes": cases,
        "chain": {
            "leaf_der": leaf, "root_der": root, "identity": IDENTITY, "oidc_issuer": OIDC_ISSUER,
            "leaf_keyid": signed.key_id,
            "ct_public_key_pem": signer.ct_log().unwrap().public_key().to_pem(),
        },
    });
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/verify_attestations.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(&manifest_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("ALL OK"),
        "python interop failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn yubihsm_attestation_signs_and_verifies() {
    let client = yubihsm::Client::open(
        yubihsm::Connector::mockhsm(),
        yubihsm::Credentials::default(),
        true,
    )
    .unwrap();
    let source = YubiHsmKeySource::from_client(client, 1).unwrap();
    let signer = signer_for(&source);
    let report = PolicyReport {
        image_digest: image(),
        stellaops_version: "2.3.1 (2026.11)".to_owned(),
        license_id: "lic-0123456789abcdef0123".to_owned(),
        customer_id: "CUST-ACME".to_owned(),
        plan: "pro".to_owned(),
        policy_digest: Sha256Digest::of(b"policy"),
        views: vec!["inventory".to_owned(), "usage".to_owned()],
        created: PolicyReport::format_created(NOW).unwrap(),
        report: serde_json::json!({"verdict": "pass"}),
    };
    let statement = StatementBuilder::new("registry.example/app", image())
        .build(Predicate::PolicyReport(Box::new(report)))
        .unwrap();
    let signed = signer
        .sign_statement(statement, &entitled(&installation_key(&source)))
        .unwrap();
    check_signed(&signed, &signer, &source);
    let payload: serde_json::Value = serde_json::from_slice(&signed.statement_json).unwrap();
    assert_eq!(
        payload["predicateType"],
        "https://stella-ops.org/attestations/policy-report/1"
    );
    assert_eq!(payload["predicate"]["created"], "2026-11-29T06:00:00Z");
    assert_eq!(payload["predicate"]["image_digest"], image().to_string());
    let audit = signed.audit_record();
    assert_eq!(
        audit.image_digest.as_deref(),
        Some(image().to_string().as_str())
    );
    assert_eq!(
        audit.policy_digest,
        Some(Sha256Digest::of(b"policy").to_string())
    );
    assert_eq!(audit.certificate_serial, signed.certificate.serial_hex);
    assert_eq!(audit.licence_id, "lic-0123456789abcdef0123");
    assert_eq!(audit.signed_at, "2026-11-29T06:00:00Z");
}

#[test]
fn dev_key_files_stamp_every_attestation() {
    let dir = tempfile::tempdir().unwrap();
    let source = FileKeySource::open(dir.path(), SigningMode::Dev).unwrap();
    let signer = signer_for(&source);
    assert!(signer.dev_signed());
    let spdx = data("vexctl-sbom.spdx.json");
    let statement = StatementBuilder::new("registry.example/app", image())
        .sbom_subject("sbom.spdx.json", &spdx)
        .build(Predicate::Spdx(serde_json::from_slice(&spdx).unwrap()))
        .unwrap();
    let signed = signer
        .sign_statement(statement, &entitled(&installation_key(&source)))
        .unwrap();
    check_signed(&signed, &signer, &source);
    assert!(signed.dev_signed);
    let status = signer.status();
    assert!(status.dev_signed);
    assert_eq!(status.attestation_key_id, signed.key_id);
    assert_eq!(status.ct_log_id.unwrap().len(), 64);
    let payload: serde_json::Value = serde_json::from_slice(&signed.statement_json).unwrap();
    for subject in payload["subject"].as_array().unwrap() {
        assert_eq!(subject["annotations"][DEV_SIGNED_ANNOTATION], true);
    }
    let (_, leaf) = x509_parser::parse_x509_certificate(&signed.certificate.der).unwrap();
    assert!(
        leaf.subject().to_string().contains("DEV-SIGNED"),
        "{}",
        leaf.subject()
    );
}

#[test]
fn statements_are_byte_identical_for_the_same_input() {
    let first = cyclonedx_statement().to_canonical_json().unwrap();
    let second = cyclonedx_statement().to_canonical_json().unwrap();
    assert_eq!(first, second);
    let value: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(value["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(value["subject"][0]["digest"]["sha256"], image().hex());
    assert_eq!(
        value["subject"][1]["digest"]["sha256"],
        Sha256Digest::of(&data("cyclonedx-valid-license-id-1.6.json")).hex()
    );
}

#[test]
fn a_stored_root_of_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = FileKeySource::open(dir.path(), SigningMode::Dev).unwrap();
    let signer = signer_for(&source);
    let root_der = signer.certificate_authority().root().der.clone();
    let other = source
        .signer(&KeyRole::Timestamping.label().unwrap())
        .unwrap();
    let error = CertificateAuthority::with_root(other, &profile(), &root_der).unwrap_err();
    assert!(
        error.to_string().contains("does not hold the CA key"),
        "{error}"
    );
}

#[test]
fn an_ed25519_attestation_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = FileKeySource::open(dir.path(), SigningMode::Dev).unwrap();
    let signer = signer_for(&source);
    let ed = source
        .signer(&KeyRole::TlogCheckpoint.label().unwrap())
        .unwrap();
    let ca_signer = source
        .signer(&KeyRole::CertificateAuthority.label().unwrap())
        .unwrap();
    let ca = CertificateAuthority::with_root(
        ca_signer,
        &profile(),
        &signer.certificate_authority().root().der,
    )
    .unwrap();
    let error = AttestationSigner::new(
        ed,
        ca,
        None,
        Arc::new(FixedClock(NOW)),
        SigningIdentity::Email("signer@stella.test".to_owned()),
        OIDC_ISSUER,
    )
    .unwrap_err();
    assert!(
        matches!(error, SignerError::WrongKeyAlgorithm { .. }),
        "{error}"
    );
}
