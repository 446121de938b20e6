//! PKCS#11 backend against SoftHSM2: signing, non-extractable keys, the ceremony, named errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use stella_hsm::{
    BackendKind, HsmConfig, HsmError, KeyAlgorithm, KeyLabel, KeyRole, KeySource, KeyState,
    Pkcs11KeySource, Pkcs11Settings, Provenance, SigningMode, init_appliance_keys, key_status,
    open_key_source,
};
use support::{SOFTHSM_MODULE, TOKEN, softhsm_token};

#[test]
fn pkcs11_p256_and_ed25519_sign_and_verify() {
    let Some(settings) = softhsm_token("pkcs11_p256_and_ed25519_sign_and_verify") else {
        return;
    };
    let source = Pkcs11KeySource::open(&settings).unwrap();
    for (label, algorithm) in [
        ("p256-key", KeyAlgorithm::EcdsaP256),
        ("ed-key", KeyAlgorithm::Ed25519),
    ] {
        let label = KeyLabel::new(label).unwrap();
        let info = source.generate_key(&label, algorithm).unwrap();
        assert_eq!(info.algorithm(), algorithm);
        let signer = source.signer(&label).unwrap();
        assert!(!signer.dev_signed());
        assert_eq!(
            signer.provenance(),
            Provenance::Hsm {
                backend: format!("pkcs11:{TOKEN}")
            }
        );
        let message = b"stella ops pkcs11 message";
        let signature = signer.sign(message).unwrap();
        info.public_key.verify(message, &signature).unwrap();
        assert!(
            info.public_key
                .verify(b"another message", &signature)
                .is_err()
        );
        if algorithm == KeyAlgorithm::EcdsaP256 {
            // DER, as X.509 and Sigstore expect, and over SHA-256 of the message.
            p256::ecdsa::Signature::from_der(&signature).unwrap();
        } else {
            assert_eq!(signature.len(), 64);
        }
        assert!(matches!(
            source.generate_key(&label, algorithm),
            Err(HsmError::KeyExists { .. })
        ));
    }
    let labels: Vec<_> = source
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|key| key.label.to_string())
        .collect();
    assert_eq!(labels, ["ed-key", "p256-key"]);
    // A second source on the same token (same process) sees the same keys.
    let again = Pkcs11KeySource::open(&settings).unwrap();
    assert_eq!(again.list_keys().unwrap().len(), 2);
}

#[test]
fn pkcs11_private_keys_cannot_be_exported() {
    let Some(settings) = softhsm_token("pkcs11_private_keys_cannot_be_exported") else {
        return;
    };
    let source = Pkcs11KeySource::open(&settings).unwrap();
    let label = KeyLabel::new("secret").unwrap();
    source
        .generate_key(&label, KeyAlgorithm::EcdsaP256)
        .unwrap();
    let protection = source.protection(&label).unwrap();
    assert!(protection.is_non_extractable(), "{protection:?}");

    // Independently of the crate: read CKA_VALUE, flip CKA_EXTRACTABLE, wrap under an AES key.
    let context = cryptoki::context::Pkcs11::new(SOFTHSM_MODULE).unwrap();
    let _ = context.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let slot = context
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|slot| context.get_token_info(*slot).unwrap().label().trim_end() == TOKEN)
        .unwrap();
    let session = context.open_rw_session(slot).unwrap();
    let _ = session.login(UserType::User, Some(&AuthPin::from(settings.pin.clone())));
    let private = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"secret".to_vec()),
        ])
        .unwrap()[0];
    let value = session.get_attributes(private, &[AttributeType::Value]);
    assert!(
        !matches!(&value, Ok(attributes) if attributes.iter().any(|a| matches!(a, Attribute::Value(_)))),
        "the token returned the private value: {value:?}"
    );
    assert!(
        session
            .update_attributes(private, &[Attribute::Extractable(true)])
            .is_err()
    );
    let wrapping = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Token(false),
            ],
        )
        .unwrap();
    let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, wrapping, private);
    assert!(
        wrapped.is_err(),
        "the token wrapped (exported) a non-extractable key"
    );
}

#[test]
fn pkcs11_ceremony_is_idempotent_through_config() {
    let Some(settings) = softhsm_token("pkcs11_ceremony_is_idempotent_through_config") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{}\n", settings.pin)).unwrap();
    let config: HsmConfig = toml::from_str(&format!(
        "backend = \"pkcs11\"\nmodule = \"{SOFTHSM_MODULE}\"\ntoken = \"{TOKEN}\"\npin_file = \"{}\"\n",
        pin_file.display()
    ))
    .unwrap();
    let source = open_key_source(&config).unwrap();

    assert!(
        stella_hsm::check_ready(source.as_ref()).is_err(),
        "ready without keys"
    );
    let before = key_status(source.as_ref()).unwrap();
    assert!(
        before
            .keys
            .iter()
            .all(|entry| entry.state == KeyState::Missing)
    );
    assert!(!before.is_complete());

    let first = init_appliance_keys(source.as_ref()).unwrap();
    assert!(first.is_complete());
    assert!(
        first
            .keys
            .iter()
            .all(|entry| entry.state == KeyState::Created)
    );
    assert!(
        first
            .keys
            .iter()
            .all(|entry| entry.protection.unwrap().is_non_extractable())
    );
    assert_eq!(
        first.entry(KeyRole::TlogCheckpoint).unwrap().algorithm,
        KeyAlgorithm::Ed25519
    );

    let second = init_appliance_keys(source.as_ref()).unwrap();
    assert!(
        second
            .keys
            .iter()
            .all(|entry| entry.state == KeyState::Existing)
    );
    let ids = |inventory: &stella_hsm::KeyInventory| -> Vec<_> {
        inventory
            .keys
            .iter()
            .map(|entry| entry.key_id.clone().unwrap())
            .collect()
    };
    assert_eq!(ids(&first), ids(&second));
    assert_eq!(source.list_keys().unwrap().len(), KeyRole::ALL.len());
    assert!(
        stella_hsm::check_ready(source.as_ref())
            .unwrap()
            .is_complete()
    );
}

#[test]
fn pkcs11_signer_recovers_after_the_token_drops_the_login() {
    let Some(settings) = softhsm_token("pkcs11_signer_recovers_after_the_token_drops_the_login")
    else {
        return;
    };
    let source = Pkcs11KeySource::open(&settings).unwrap();
    let label = KeyLabel::new("recover").unwrap();
    let info = source
        .generate_key(&label, KeyAlgorithm::EcdsaP256)
        .unwrap();
    let signer = source.signer(&label).unwrap();
    signer.sign(b"before").unwrap();

    // Login state is per application: logging out through any session logs out all of them,
    // as a device reset or another tool would.
    let context = cryptoki::context::Pkcs11::new(SOFTHSM_MODULE).unwrap();
    let slot = context
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|slot| context.get_token_info(*slot).unwrap().label().trim_end() == TOKEN)
        .unwrap();
    let other = context.open_rw_session(slot).unwrap();
    other.logout().unwrap();
    assert!(
        other
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .unwrap()
            .is_empty()
    );

    let signature = signer.sign(b"after").unwrap();
    info.public_key.verify(b"after", &signature).unwrap();
    assert_eq!(source.list_keys().unwrap().len(), 1);
    assert_eq!(
        other
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn pkcs11_ceremony_refuses_a_key_of_the_wrong_algorithm() {
    let Some(settings) = softhsm_token("pkcs11_ceremony_refuses_a_key_of_the_wrong_algorithm")
    else {
        return;
    };
    let source = Pkcs11KeySource::open(&settings).unwrap();
    source
        .generate_key(
            &KeyRole::CertificateAuthority.label().unwrap(),
            KeyAlgorithm::Ed25519,
        )
        .unwrap();
    let error = init_appliance_keys(&source).unwrap_err();
    assert!(
        matches!(error, HsmError::AlgorithmMismatch { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("stella-ca"), "{error}");
}

#[test]
fn pkcs11_wrong_pin_and_unknown_token_are_named_errors() {
    let Some(settings) = softhsm_token("pkcs11_wrong_pin_and_unknown_token_are_named_errors")
    else {
        return;
    };
    let wrong_pin = Pkcs11Settings {
        pin: "0000".to_owned(),
        ..settings.clone()
    };
    let error = Pkcs11KeySource::open(&wrong_pin).unwrap_err();
    assert!(error.to_string().contains("C_Login"), "{error}");
    let unknown = Pkcs11Settings {
        token: "nope".to_owned(),
        ..settings.clone()
    };
    let error = Pkcs11KeySource::open(&unknown).unwrap_err();
    assert!(matches!(error, HsmError::TokenNotFound { .. }), "{error}");
    assert!(error.to_string().contains("stella-test"), "{error}");
    let missing = Pkcs11Settings {
        module: Path::new("/nonexistent/libpkcs11.so").to_path_buf(),
        ..settings
    };
    assert!(
        Pkcs11KeySource::open(&missing)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/libpkcs11.so")
    );
}

#[test]
fn config_rejects_unknown_keys_and_inconsistent_backends() {
    let error = toml::from_str::<HsmConfig>("backend = \"pkcs11\"\nmodul = \"x\"\n").unwrap_err();
    assert!(error.to_string().contains("modul"), "{error}");
    let file: HsmConfig = toml::from_str("backend = \"file\"\nkey_dir = \"/tmp/k\"\n").unwrap();
    assert!(matches!(file.validate(), Err(HsmError::DevModeRequired)));
    let dev: HsmConfig =
        toml::from_str("backend = \"file\"\nmode = \"dev\"\nkey_dir = \"/tmp/k\"\n").unwrap();
    assert_eq!(dev.mode, SigningMode::Dev);
    dev.validate().unwrap();
    let missing: HsmConfig =
        toml::from_str("backend = \"pkcs11\"\ntoken = \"t\"\npin_file = \"/p\"\n").unwrap();
    assert!(
        missing
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`module`")
    );
    let yubi: HsmConfig = toml::from_str(
        "backend = \"yubihsm\"\nconnector = \"http\"\nurl = \"http://127.0.0.1:12345\"\nauth_key_id = 1\npin_file = \"/p\"\n",
    )
    .unwrap();
    assert_eq!(yubi.backend, BackendKind::Yubihsm);
    yubi.validate().unwrap();
    let mixed = HsmConfig {
        module: Some("/m.so".into()),
        ..yubi
    };
    assert!(mixed.validate().unwrap_err().to_string().contains("module"));
}
