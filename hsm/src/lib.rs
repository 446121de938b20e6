//! Key sources that hand out signers; the only crate that touches key material.
//!
//! The interface is deliberately small and shaped like tough's `KeySource`: a [`KeySource`]
//! lists and generates keys by [`KeyLabel`] and hands out a [`Signer`]; a signer signs bytes
//! and exposes its public key. Backends:
//!
//! * [`Pkcs11KeySource`]: any PKCS#11 module (SoftHSM2 in tests, hardware HSMs in production);
//! * [`YubiHsmKeySource`]: YubiHSM 2 over the HTTP connector (or USB with the `yubihsm-usb` feature);
//! * [`FileKeySource`]: software keys in a directory, refused unless [`SigningMode::Dev`] is set,
//!   and every signature it makes reports [`Signer::dev_signed`].
//!
//! Signature formats are fixed by [`KeyAlgorithm`]: ECDSA P-256 signs SHA-256 of the message
//! and returns an ASN.1 DER signature (what Sigstore and X.509 expect); Ed25519 signs the
//! message itself (pure EdDSA) and returns the 64-byte signature.

mod ceremony;
mod config;
mod error;
mod file;
mod key;
mod pkcs11;
mod source;
#[cfg(feature = "test-support")]
pub mod testing;
mod yubi;

pub use ceremony::{
    InventoryEntry, KeyInventory, KeyRole, KeyState, check_ready, init_appliance_keys, key_status,
};
pub use config::{BackendKind, HsmConfig, YubiHsmConnectorKind, open_key_source};
pub use error::HsmError;
pub use file::FileKeySource;
pub use key::{KeyAlgorithm, KeyInfo, KeyLabel, PublicKey};
pub use pkcs11::{Pkcs11KeySource, Pkcs11Settings, initialize_token};
pub use source::{KeyProtection, KeySource, Provenance, Signer, SigningMode};
pub use yubi::{YubiHsmKeySource, YubiHsmSettings};
