//! The plug-in interface: a key source hands out signers; nothing else touches key material.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{HsmError, KeyAlgorithm, KeyInfo, KeyLabel};

/// Whether software (non-HSM) keys may be used. A security switch, so an enum, not a bool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigningMode {
    /// Keys must live in an HSM; the software key file backend is refused.
    #[default]
    Production,
    /// Development: software keys are allowed and every signature is reported dev-signed.
    Dev,
}

/// Where a signature was made, so that attestations can record dev signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Provenance {
    /// Inside a hardware (or PKCS#11) security module; `backend` names it, e.g. `pkcs11:<token>`.
    Hsm { backend: String },
    /// With a software key from the development key directory.
    DevSoftware,
}

/// How well a private key is protected, as reported by its key source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyProtection {
    /// The key was generated inside the device (PKCS#11 `CKA_LOCAL`, YubiHSM origin "generated").
    pub generated_on_device: bool,
    /// The device would export the key, wrapped or in clear
    /// (PKCS#11 `CKA_EXTRACTABLE`, YubiHSM `exportable-under-wrap`).
    pub exportable: bool,
    /// Reading the private value was attempted and the device returned it.
    pub private_value_readable: bool,
}

impl KeyProtection {
    /// True when the key can never leave the device.
    pub fn is_non_extractable(&self) -> bool {
        self.generated_on_device && !self.exportable && !self.private_value_readable
    }
}

/// Something that signs bytes with one key.
pub trait Signer: Send + Sync {
    /// The key's label, algorithm and public key.
    fn key(&self) -> &KeyInfo;

    /// Signs `message`: ECDSA P-256 over SHA-256(message), DER-encoded; Ed25519 over the message.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, HsmError>;

    /// Where signatures are made.
    fn provenance(&self) -> Provenance;

    /// True when the signature was made with a development software key; attestations must say so.
    fn dev_signed(&self) -> bool {
        matches!(self.provenance(), Provenance::DevSoftware)
    }

    /// The key's algorithm.
    fn algorithm(&self) -> KeyAlgorithm {
        self.key().algorithm()
    }
}

/// A store of labelled keys that generates keys inside itself and hands out signers.
pub trait KeySource: Send + Sync {
    /// A short human name of the source, e.g. `pkcs11:/usr/lib/softhsm/libsofthsm2.so:stella`.
    fn name(&self) -> String;

    /// All signing keys of a supported algorithm, sorted by label.
    fn list_keys(&self) -> Result<Vec<KeyInfo>, HsmError>;

    /// The key under `label`, if any.
    fn find_key(&self, label: &KeyLabel) -> Result<Option<KeyInfo>, HsmError> {
        Ok(self
            .list_keys()?
            .into_iter()
            .find(|key| &key.label == label))
    }

    /// Generates a new key inside the source; fails with [`HsmError::KeyExists`] if the label is taken.
    fn generate_key(&self, label: &KeyLabel, algorithm: KeyAlgorithm) -> Result<KeyInfo, HsmError>;

    /// A signer for the key under `label`.
    fn signer(&self, label: &KeyLabel) -> Result<Arc<dyn Signer>, HsmError>;

    /// Reports (and for PKCS#11 actively probes) whether the private key can leave the source.
    fn protection(&self, label: &KeyLabel) -> Result<KeyProtection, HsmError>;
}
