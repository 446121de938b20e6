//! YubiHSM 2 backend against the `yubihsm` crate's MockHSM: signing and export refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use stella_hsm::{
    KeyAlgorithm, KeyLabel, KeyRole, KeySource, KeyState, YubiHsmKeySource, init_appliance_keys,
};
use yubihsm::{Capability, Client, Connector, Credentials, Domain, asymmetric, object, wrap};

fn mock() -> (Client, YubiHsmKeySource) {
    let connector = Connector::mockhsm();
    let admin = Client::open(connector.clone(), Credentials::default(), true).unwrap();
    let client = Client::open(connector, Credentials::default(), true).unwrap();
    (admin, YubiHsmKeySource::from_client(client, 1).unwrap())
}

#[test]
fn yubihsm_p256_and_ed25519_sign_and_verify() {
    let (_admin, source) = mock();
    for (label, algorithm) in [
        ("p256-key", KeyAlgorithm::EcdsaP256),
        ("ed-key", KeyAlgorithm::Ed25519),
    ] {
        let label = KeyLabel::new(label).unwrap();
        let info = source.generate_key(&label, algorithm).unwrap();
        let signer = source.signer(&label).unwrap();
        assert!(!signer.dev_signed());
        let signature = signer.sign(b"yubihsm message").unwrap();
        info.public_key
            .verify(b"yubihsm message", &signature)
            .unwrap();
        assert!(info.public_key.verify(b"tampered", &signature).is_err());
        assert_eq!(source.find_key(&label).unwrap().unwrap(), info);
    }
    assert_eq!(source.list_keys().unwrap().len(), 2);
}

#[test]
fn yubihsm_generated_keys_cannot_be_exported_even_wrapped() {
    let (admin, source) = mock();
    let label = KeyLabel::new("secret").unwrap();
    source
        .generate_key(&label, KeyAlgorithm::EcdsaP256)
        .unwrap();
    assert!(source.protection(&label).unwrap().is_non_extractable());

    let wrap_id = 0x0010;
    admin
        .generate_wrap_key(
            wrap_id,
            object::Label::from_bytes(b"wrap").unwrap(),
            Domain::DOM1,
            Capability::EXPORT_WRAPPED | Capability::IMPORT_WRAPPED,
            Capability::all(),
            wrap::Algorithm::Aes128Ccm,
        )
        .unwrap();
    let ours = admin
        .list_objects(&[object::Filter::Label(
            object::Label::from_bytes(b"secret").unwrap(),
        )])
        .unwrap()[0]
        .object_id;
    assert!(
        admin
            .export_wrapped(wrap_id, object::Type::AsymmetricKey, ours)
            .is_err()
    );

    // Control: a key made exportable is exported by the same device, so the refusal above is real.
    let exportable = 0x0020;
    admin
        .generate_asymmetric_key(
            exportable,
            object::Label::from_bytes(b"exportable").unwrap(),
            Domain::DOM1,
            Capability::SIGN_ECDSA | Capability::EXPORTABLE_UNDER_WRAP,
            asymmetric::Algorithm::EcP256,
        )
        .unwrap();
    admin
        .export_wrapped(wrap_id, object::Type::AsymmetricKey, exportable)
        .unwrap();
    assert!(
        !source
            .protection(&KeyLabel::new("exportable").unwrap())
            .unwrap()
            .is_non_extractable()
    );
}

#[test]
fn yubihsm_ceremony_is_idempotent() {
    let (_admin, source) = mock();
    let first = init_appliance_keys(&source).unwrap();
    assert!(
        first
            .keys
            .iter()
            .all(|entry| entry.state == KeyState::Created)
    );
    let second = init_appliance_keys(&source).unwrap();
    assert!(
        second
            .keys
            .iter()
            .all(|entry| entry.state == KeyState::Existing)
    );
    assert_eq!(
        first.entry(KeyRole::Attestation).unwrap().key_id,
        second.entry(KeyRole::Attestation).unwrap().key_id
    );
}

#[test]
fn yubihsm_http_connector_opens_from_config() {
    // A MockHSM served by the yubihsm crate's own connector server on loopback, so the
    // production path (HTTP connector, password-derived credentials, [hsm] parsing) runs.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server_config = yubihsm::HttpConfig {
        addr: "127.0.0.1".to_owned(),
        port,
        timeout_ms: 5000,
    };
    let server =
        yubihsm::connector::http::Server::new(&server_config, Connector::mockhsm()).unwrap();
    std::thread::spawn(move || server.run());

    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("password");
    std::fs::write(&pin_file, "password\n").unwrap();
    let config: stella_hsm::HsmConfig = toml::from_str(&format!(
        "backend = \"yubihsm\"\nconnector = \"http\"\nurl = \"http://127.0.0.1:{port}\"\nauth_key_id = 1\npin_file = \"{}\"\n",
        pin_file.display()
    ))
    .unwrap();
    let source = stella_hsm::open_key_source(&config).unwrap();
    let inventory = init_appliance_keys(source.as_ref()).unwrap();
    assert!(inventory.is_complete());
    stella_hsm::check_ready(source.as_ref()).unwrap();

    std::fs::write(&pin_file, "wrong password\n").unwrap();
    let error = stella_hsm::open_key_source(&config).err().unwrap();
    assert!(error.to_string().contains("YubiHSM 2"), "{error}");
}
