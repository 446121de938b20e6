//! Development key-file backend: refused outside dev mode; every signer reports dev-signed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use stella_hsm::{
    FileKeySource, HsmError, KeyAlgorithm, KeyLabel, KeySource, KeyState, Provenance, SigningMode,
    init_appliance_keys,
};

#[test]
fn file_backend_needs_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        FileKeySource::open(dir.path(), SigningMode::Production),
        Err(HsmError::DevModeRequired)
    ));
}

#[test]
fn file_backend_signs_marks_dev_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let source = FileKeySource::open(dir.path(), SigningMode::Dev).unwrap();
    for (label, algorithm) in [
        ("p256-key", KeyAlgorithm::EcdsaP256),
        ("ed-key", KeyAlgorithm::Ed25519),
    ] {
        let label = KeyLabel::new(label).unwrap();
        let info = source.generate_key(&label, algorithm).unwrap();
        let signer = source.signer(&label).unwrap();
        assert!(signer.dev_signed());
        assert_eq!(signer.provenance(), Provenance::DevSoftware);
        let signature = signer.sign(b"dev").unwrap();
        info.public_key.verify(b"dev", &signature).unwrap();
        assert!(!source.protection(&label).unwrap().is_non_extractable());
    }
    let reopened = FileKeySource::open(dir.path(), SigningMode::Dev).unwrap();
    assert_eq!(reopened.list_keys().unwrap(), source.list_keys().unwrap());
    let inventory = init_appliance_keys(&reopened).unwrap();
    assert!(
        inventory
            .keys
            .iter()
            .all(|entry| entry.state == KeyState::Created)
    );
}

#[test]
fn file_backend_names_a_corrupt_key_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.pem"), "not a key").unwrap();
    let source = FileKeySource::open(dir.path(), SigningMode::Dev).unwrap();
    let error = source
        .signer(&KeyLabel::new("broken").unwrap())
        .err()
        .unwrap();
    assert!(error.to_string().contains("broken.pem"), "{error}");
}
