//! YubiHSM 2 backend (via the `yubihsm` crate): keys generated on the device without the
//! `exportable-under-wrap` capability, so they can never leave it.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use yubihsm::object::{self, Filter, Origin};
use yubihsm::{Capability, Client, Connector, Credentials, Domain, asymmetric};

use crate::{
    HsmError, KeyAlgorithm, KeyInfo, KeyLabel, KeyProtection, KeySource, Provenance, PublicKey,
    Signer,
};

/// Object ids this crate allocates for the keys it generates (0x0100..=0xfffe); lower ids are
/// left for authentication and wrap keys set up by the operator.
const FIRST_KEY_ID: object::Id = 0x0100;

/// How to reach the device and authenticate.
#[derive(Clone)]
pub struct YubiHsmSettings {
    /// The connector: HTTP (`yubihsm-connector`) or USB.
    pub connector: YubiHsmConnector,
    /// Authentication key object id.
    pub auth_key_id: object::Id,
    /// Password of the authentication key.
    pub password: String,
    /// Domain the generated keys belong to (1..=16).
    pub domain: u8,
}

impl std::fmt::Debug for YubiHsmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YubiHsmSettings")
            .field("connector", &self.connector)
            .field("auth_key_id", &self.auth_key_id)
            .field("password", &"<redacted>")
            .field("domain", &self.domain)
            .finish()
    }
}

/// A way to talk to a YubiHSM 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YubiHsmConnector {
    /// `yubihsm-connector` at `host:port`.
    Http { host: String, port: u16 },
    /// Directly over USB, optionally picking a device by serial number.
    Usb { serial: Option<String> },
}

fn yubi_error(operation: &'static str) -> impl Fn(yubihsm::client::Error) -> HsmError {
    move |source| HsmError::YubiHsm { operation, source }
}

fn domain_from_number(number: u8) -> Result<Domain, HsmError> {
    Domain::at(usize::from(number)).map_err(|error| {
        HsmError::Config(format!("YubiHSM domain {number} is not in 1..=16: {error}"))
    })
}

/// Keys on one YubiHSM 2 in one domain.
pub struct YubiHsmKeySource {
    client: Arc<Client>,
    domain: Domain,
}

impl std::fmt::Debug for YubiHsmKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YubiHsmKeySource")
            .field("domain", &self.domain)
            .finish()
    }
}

impl YubiHsmKeySource {
    /// Connects and authenticates.
    pub fn open(settings: &YubiHsmSettings) -> Result<Self, HsmError> {
        let connector = match &settings.connector {
            YubiHsmConnector::Http { host, port } => Connector::http(&yubihsm::HttpConfig {
                addr: host.clone(),
                port: *port,
                ..yubihsm::HttpConfig::default()
            }),
            YubiHsmConnector::Usb { serial } => usb_connector(serial.as_deref())?,
        };
        let credentials =
            Credentials::from_password(settings.auth_key_id, settings.password.as_bytes());
        let client =
            Client::open(connector, credentials, true).map_err(yubi_error("opening a session"))?;
        Self::from_client(client, settings.domain)
    }

    /// Wraps an already authenticated client (tests use the `yubihsm` crate's `mockhsm`).
    pub fn from_client(client: Client, domain: u8) -> Result<Self, HsmError> {
        Ok(YubiHsmKeySource {
            client: Arc::new(client),
            domain: domain_from_number(domain)?,
        })
    }

    fn object_id(&self, label: &KeyLabel) -> Result<Option<object::Id>, HsmError> {
        let wanted = object::Label::from_bytes(label.as_str().as_bytes()).map_err(|_| {
            HsmError::InvalidLabel {
                label: label.to_string(),
                reason: "longer than 40 bytes",
            }
        })?;
        let entries = self
            .client
            .list_objects(&[
                Filter::Type(object::Type::AsymmetricKey),
                Filter::Label(wanted),
            ])
            .map_err(yubi_error("listing objects"))?;
        Ok(entries.first().map(|entry| entry.object_id))
    }

    fn load(&self, id: object::Id, label: &KeyLabel) -> Result<KeyInfo, HsmError> {
        let public = self
            .client
            .get_public_key(id)
            .map_err(yubi_error("reading a public key"))?;
        let public_key = match public.algorithm {
            asymmetric::Algorithm::EcP256 => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&public.bytes);
                PublicKey::from_p256_sec1(label.as_str(), &point)?
            }
            asymmetric::Algorithm::Ed25519 => {
                PublicKey::from_ed25519_bytes(label.as_str(), &public.bytes)?
            }
            other => {
                return Err(HsmError::UnsupportedKey {
                    label: label.to_string(),
                    detail: format!("{other:?}"),
                });
            }
        };
        Ok(KeyInfo {
            label: label.clone(),
            public_key,
        })
    }

    fn require(&self, label: &KeyLabel) -> Result<object::Id, HsmError> {
        self.object_id(label)?.ok_or_else(|| HsmError::KeyNotFound {
            label: label.to_string(),
            source_name: self.name(),
        })
    }
}

#[cfg(feature = "yubihsm-usb")]
fn usb_connector(serial: Option<&str>) -> Result<Connector, HsmError> {
    let serial = serial
        .map(|text| {
            text.parse()
                .map_err(|_| HsmError::Config(format!("YubiHSM serial {text:?} is not a number")))
        })
        .transpose()?;
    Ok(Connector::usb(&yubihsm::UsbConfig {
        serial,
        ..yubihsm::UsbConfig::default()
    }))
}

#[cfg(not(feature = "yubihsm-usb"))]
fn usb_connector(_serial: Option<&str>) -> Result<Connector, HsmError> {
    Err(HsmError::NotCompiledIn(
        "YubiHSM USB (cargo feature `yubihsm-usb`)",
    ))
}

impl KeySource for YubiHsmKeySource {
    fn name(&self) -> String {
        format!("yubihsm:domain{:?}", self.domain)
    }

    fn list_keys(&self) -> Result<Vec<KeyInfo>, HsmError> {
        let entries = self
            .client
            .list_objects(&[Filter::Type(object::Type::AsymmetricKey)])
            .map_err(yubi_error("listing objects"))?;
        let mut keys = Vec::new();
        for entry in entries {
            let info = self
                .client
                .get_object_info(entry.object_id, object::Type::AsymmetricKey)
                .map_err(yubi_error("reading object info"))?;
            let text = String::from_utf8_lossy(info.label.as_ref())
                .trim_end_matches('\0')
                .to_owned();
            let Ok(label) = KeyLabel::new(&text) else {
                continue;
            };
            match self.load(entry.object_id, &label) {
                Ok(key) => keys.push(key),
                Err(HsmError::UnsupportedKey { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        keys.sort_by(|a, b| a.label.cmp(&b.label));
        Ok(keys)
    }

    fn find_key(&self, label: &KeyLabel) -> Result<Option<KeyInfo>, HsmError> {
        self.object_id(label)?
            .map(|id| self.load(id, label))
            .transpose()
    }

    fn generate_key(&self, label: &KeyLabel, algorithm: KeyAlgorithm) -> Result<KeyInfo, HsmError> {
        if self.object_id(label)?.is_some() {
            return Err(HsmError::KeyExists {
                label: label.to_string(),
                source_name: self.name(),
            });
        }
        let used: Vec<object::Id> = self
            .client
            .list_objects(&[])
            .map_err(yubi_error("listing objects"))?
            .into_iter()
            .map(|entry| entry.object_id)
            .collect();
        let id = (FIRST_KEY_ID..u16::MAX)
            .find(|id| !used.contains(id))
            .ok_or_else(|| HsmError::NoFreeObjectId {
                label: label.to_string(),
            })?;
        // No EXPORTABLE_UNDER_WRAP: the device will refuse to export the key, even wrapped.
        let (capability, yubi_algorithm) = match algorithm {
            KeyAlgorithm::EcdsaP256 => (Capability::SIGN_ECDSA, asymmetric::Algorithm::EcP256),
            KeyAlgorithm::Ed25519 => (Capability::SIGN_EDDSA, asymmetric::Algorithm::Ed25519),
        };
        let yubi_label = object::Label::from_bytes(label.as_str().as_bytes()).map_err(|_| {
            HsmError::InvalidLabel {
                label: label.to_string(),
                reason: "longer than 40 bytes",
            }
        })?;
        self.client
            .generate_asymmetric_key(id, yubi_label, self.domain, capability, yubi_algorithm)
            .map_err(yubi_error("generating a key"))?;
        self.load(id, label)
    }

    fn signer(&self, label: &KeyLabel) -> Result<Arc<dyn Signer>, HsmError> {
        let id = self.require(label)?;
        let key = self.load(id, label)?;
        Ok(Arc::new(YubiHsmSigner {
            client: Arc::clone(&self.client),
            id,
            key,
        }))
    }

    fn protection(&self, label: &KeyLabel) -> Result<KeyProtection, HsmError> {
        let id = self.require(label)?;
        let info = self
            .client
            .get_object_info(id, object::Type::AsymmetricKey)
            .map_err(yubi_error("reading object info"))?;
        Ok(KeyProtection {
            generated_on_device: info.origin == Origin::Generated,
            exportable: info
                .capabilities
                .contains(Capability::EXPORTABLE_UNDER_WRAP),
            // A YubiHSM never returns a private key in clear; the only export is wrapped.
            private_value_readable: false,
        })
    }
}

struct YubiHsmSigner {
    client: Arc<Client>,
    id: object::Id,
    key: KeyInfo,
}

impl Signer for YubiHsmSigner {
    fn key(&self) -> &KeyInfo {
        &self.key
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        match self.key.algorithm() {
            KeyAlgorithm::EcdsaP256 => self
                .client
                .sign_ecdsa_prehash_raw(self.id, Sha256::digest(message).to_vec())
                .map_err(yubi_error("ECDSA signing")),
            KeyAlgorithm::Ed25519 => Ok(self
                .client
                .sign_ed25519(self.id, message.to_vec())
                .map_err(yubi_error("Ed25519 signing"))?
                .to_bytes()
                .to_vec()),
        }
    }

    fn provenance(&self) -> Provenance {
        Provenance::Hsm {
            backend: "yubihsm".to_owned(),
        }
    }
}
