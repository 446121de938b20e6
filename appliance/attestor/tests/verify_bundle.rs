//! `verify_bundle`, offline: an exported bundle verifies with its claims, and each kind of
//! tampering fails with its own reason (one test per case).
#![allow(clippy::unwrap_used, clippy::expect_used, unused_mut)]

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::Digest as _;
use stella_attestor::{TrustMaterial, VerifyError, export_bundle, verify_bundle};
use stella_hsm::{KeyRole, KeySource, Pkcs11KeySource};
use support::appliance::{IDENTITY, OIDC_ISSUER, build};
use support::fixtures::{entitled, sbom_statement};
use support::softhsm_token;

/// Signs, logs and timestamps the SBOM statement; returns bundle, artefact and trust root
/// (the trust root re-read from its published JSON, as `stella verify --trust-root` does).
fn fixture(name: &str) -> Option<(Value, Vec<u8>, TrustMaterial)> {
    fixture_with_late_timestamp(name).map(|(bundle, sbom, trust, _)| (bundle, sbom, trust))
}

/// As [`fixture`], plus a genuine TSA timestamp over the signature made an hour after the
/// ten-minute leaf certificate expired.
fn fixture_with_late_timestamp(name: &str) -> Option<(Value, Vec<u8>, TrustMaterial, String)> {
    let settings = softhsm_token(name)?;
    let source = Pkcs11KeySource::open(&settings).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let parts = build(&source, &dir.path().join("log"));
    let (sbom, statement) = sbom_statement();
    let installation = source
        .find_key(&KeyRole::InstallationIdentity.label().unwrap())
        .unwrap()
        .unwrap()
        .public_key
        .key_id();
    // Distinct entries before ours (each signing has a fresh ECDSA signature).
    for _ in 0..3 {
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
    let published = serde_json::to_vec(&parts.trust.trusted_root().unwrap()).unwrap();
    let trust = TrustMaterial::from_trusted_root(&published).unwrap();
    let signature = STANDARD.decode(&signed.envelope.signatures[0].sig).unwrap();
    let late = parts
        .tsa
        .timestamp_at(
            &sha2::Sha256::digest(&signature).into(),
            support::fixtures::NOW + time::Duration::hours(1),
        )
        .unwrap();
    Some((
        serde_json::from_slice(&exported.json).unwrap(),
        sbom,
        trust,
        STANDARD.encode(late),
    ))
}

fn flip(bundle: &mut Value, pointer: &str, at: usize) {
    let field = bundle.pointer_mut(pointer).unwrap();
    let mut bytes = STANDARD.decode(field.as_str().unwrap()).unwrap();
    let at = at % bytes.len();
    bytes[at] ^= 0x01;
    *field = Value::String(STANDARD.encode(bytes));
}

fn run(
    bundle: &Value,
    artifact: &[u8],
    trust: &TrustMaterial,
) -> Result<stella_attestor::Verified, VerifyError> {
    verify_bundle(&serde_json::to_vec(bundle).unwrap(), Some(artifact), trust)
}

#[test]
fn exported_bundle_verifies_with_claims() {
    let Some((bundle, sbom, trust)) = fixture("exported_bundle_verifies_with_claims") else {
        return;
    };
    let verified = run(&bundle, &sbom, &trust).unwrap();
    assert_eq!(verified.identity, IDENTITY);
    assert_eq!(verified.oidc_issuer, OIDC_ISSUER);
    assert_eq!(verified.log_index, 3);
    assert_eq!(verified.predicate_type, "https://cyclonedx.org/bom");
    assert!(
        verified
            .subjects
            .iter()
            .any(|(name, _)| name == "sbom.cdx.json")
    );
    assert_eq!(verified.signed_at, support::fixtures::NOW);
    // Without the artefact it verifies too; with another artefact it does not.
    verify_bundle(&serde_json::to_vec(&bundle).unwrap(), None, &trust).unwrap();
    assert!(matches!(
        run(&bundle, b"other", &trust),
        Err(VerifyError::ArtifactMismatch(_))
    ));
}

macro_rules! tamper_case {
    ($name:ident, $expected:pat, |$bundle:ident, $trust:ident| $mutate:block) => {
        #[test]
        fn $name() {
            let Some((mut $bundle, sbom, mut $trust)) = fixture(stringify!($name)) else { return };
            run(&$bundle, &sbom, &$trust).unwrap();
            $mutate
            let result = run(&$bundle, &sbom, &$trust);
            assert!(matches!(result, $expected), "{}: got {result:?}", stringify!($name));
        }
    };
}

tamper_case!(
    payload_byte_fails_dsse,
    Err(VerifyError::DsseSignature(_)),
    |bundle, trust| {
        flip(&mut bundle, "/dsseEnvelope/payload", 30);
    }
);
tamper_case!(
    signature_byte_fails_dsse,
    Err(VerifyError::DsseSignature(_)),
    |bundle, trust| {
        flip(&mut bundle, "/dsseEnvelope/signatures/0/sig", 20);
    }
);
tamper_case!(
    foreign_root_fails_chain,
    Err(VerifyError::CertificateChain(_)),
    |bundle, trust| {
        // Trust the TSA root instead of the appliance CA: the leaf no longer chains.
        trust.ca_root_der = trust.tsa_chain[1].clone();
    }
);
tamper_case!(
    foreign_ct_key_fails_sct,
    Err(VerifyError::Sct(_)),
    |bundle, trust| {
        let tsa_leaf = trust.tsa_chain[0].clone();
        let (_, cert) = x509_parser::parse_x509_certificate(&tsa_leaf).unwrap();
        trust.ct_log_spki = cert.public_key().raw.to_vec();
    }
);
tamper_case!(
    proof_hash_byte_fails_inclusion,
    Err(VerifyError::InclusionProof(_)),
    |bundle, trust| {
        flip(
            &mut bundle,
            "/verificationMaterial/tlogEntries/0/inclusionProof/hashes/0",
            5,
        );
    }
);
tamper_case!(
    log_index_fails_inclusion,
    Err(VerifyError::InclusionProof(_)),
    |bundle, trust| {
        let proof = bundle
            .pointer_mut("/verificationMaterial/tlogEntries/0/inclusionProof")
            .unwrap();
        proof["logIndex"] = Value::String("2".into());
        bundle["verificationMaterial"]["tlogEntries"][0]["logIndex"] = Value::String("2".into());
    }
);
tamper_case!(
    body_byte_fails_entry_match,
    Err(VerifyError::LogEntryMismatch(_)),
    |bundle, trust| {
        flip(
            &mut bundle,
            "/verificationMaterial/tlogEntries/0/canonicalizedBody",
            40,
        );
    }
);
tamper_case!(
    checkpoint_byte_fails_checkpoint,
    Err(VerifyError::Checkpoint(_)),
    |bundle, trust| {
        let field = bundle
            .pointer_mut("/verificationMaterial/tlogEntries/0/inclusionProof/checkpoint/envelope")
            .unwrap();
        let text = field.as_str().unwrap().to_owned();
        let at = text.len() - 12;
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        *field = Value::String(String::from_utf8(bytes).unwrap());
    }
);
tamper_case!(
    root_and_checkpoint_mismatch_fails_checkpoint,
    Err(VerifyError::Checkpoint(_)),
    |bundle, trust| {
        // A different log key in the trusted root (the CT key is P-256, so use a fresh id).
        trust.log_id[0] ^= 1;
    }
);
tamper_case!(
    timestamp_byte_fails_timestamp,
    Err(VerifyError::Timestamp(_)),
    |bundle, trust| {
        let field =
            "/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0/signedTimestamp";
        let bytes = STANDARD
            .decode(bundle.pointer(field).unwrap().as_str().unwrap())
            .unwrap();
        // A byte of the genTime inside the signed TSTInfo.
        let at = bytes.windows(8).position(|w| w == b"20261129").unwrap() + 9;
        flip(&mut bundle, field, at);
    }
);
tamper_case!(
    timestamp_certificate_byte_fails_timestamp,
    Err(VerifyError::Timestamp(_)),
    |bundle, trust| {
        let field =
            "/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0/signedTimestamp";
        let bytes = STANDARD
            .decode(bundle.pointer(field).unwrap().as_str().unwrap())
            .unwrap();
        // A byte inside the embedded TSA certificate (its subject common name).
        let at = bytes.windows(8).position(|w| w == b"Stella O").unwrap() + 2;
        flip(&mut bundle, field, at);
    }
);
tamper_case!(
    foreign_tsa_fails_timestamp,
    Err(VerifyError::Timestamp(_)),
    |bundle, trust| {
        trust.tsa_chain = vec![trust.ca_root_der.clone(), trust.ca_root_der.clone()];
    }
);

#[test]
fn timestamp_after_certificate_expiry_fails_validity() {
    let Some((mut bundle, sbom, trust, late)) =
        fixture_with_late_timestamp("timestamp_after_certificate_expiry_fails_validity")
    else {
        return;
    };
    run(&bundle, &sbom, &trust).unwrap();
    *bundle
        .pointer_mut(
            "/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0/signedTimestamp",
        )
        .unwrap() = Value::String(late);
    let result = run(&bundle, &sbom, &trust);
    assert!(
        matches!(result, Err(VerifyError::TimeOutsideValidity(_))),
        "got {result:?}"
    );
}

#[test]
fn single_bit_flips_never_panic_and_almost_never_pass() {
    let Some((bundle, sbom, trust)) = fixture("single_bit_flips_never_panic_and_almost_never_pass")
    else {
        return;
    };
    let bytes = serde_json::to_vec(&bundle).unwrap();
    let keyid = bundle["dsseEnvelope"]["signatures"][0]["keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    let keyid_at = bytes
        .windows(keyid.len())
        .position(|w| w == keyid.as_bytes())
        .unwrap();
    let mut passed = Vec::new();
    for at in (0..bytes.len()).step_by(4) {
        let mut changed = bytes.clone();
        changed[at] ^= 0x01;
        if verify_bundle(&changed, Some(&sbom), &trust).is_ok() {
            passed.push(at);
        }
    }
    // The DSSE keyid is an unsigned hint (as in Sigstore); every other byte matters.
    let outside_keyid: Vec<_> = passed
        .iter()
        .filter(|at| !(keyid_at - 9..keyid_at + keyid.len() + 1).contains(*at))
        .collect();
    for at in outside_keyid
        .iter()
        .take(3)
        .chain(outside_keyid.iter().rev().take(1))
    {
        let lo = at.saturating_sub(60);
        eprintln!(
            "context of {at}: {}",
            String::from_utf8_lossy(&bytes[lo..**at + 10])
        );
    }
    assert!(
        outside_keyid.is_empty(),
        "flips at {outside_keyid:?} still verify"
    );
}
