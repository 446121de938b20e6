//! Release integrity: the signer checks the running binary's detached minisign signature
//! against the vendor release key before it signs anything.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::SignerError;

/// What the operator configured. A security switch, so an enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleasePolicy {
    /// No vendor release key is configured: nothing is checked.
    NotConfigured,
    /// Verify against this minisign public key (the base64 line of a `.pub` file).
    Enforce { release_public_key: String },
    /// Development: skip the check, and record the override in every attestation.
    DevOverride,
}

/// The outcome of the start-up check, recorded with every signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum ReleaseIntegrity {
    /// No release key configured.
    NotConfigured,
    /// The binary's signature verified with the minisign key `key_id`.
    Verified { key_id: String },
    /// The check was overridden for development.
    DevOverride,
}

/// Verifies `binary` against its detached minisign `signature` (the `.minisig` text).
/// Any failure under [`ReleasePolicy::Enforce`] is an error: the signer must not sign.
pub fn check_release(
    binary: &[u8],
    signature: Option<&str>,
    policy: &ReleasePolicy,
) -> Result<ReleaseIntegrity, SignerError> {
    let release_public_key = match policy {
        ReleasePolicy::NotConfigured => return Ok(ReleaseIntegrity::NotConfigured),
        ReleasePolicy::DevOverride => return Ok(ReleaseIntegrity::DevOverride),
        ReleasePolicy::Enforce { release_public_key } => release_public_key.trim(),
    };
    let fail = |reason: String| SignerError::ReleaseIntegrity(reason);
    let key = minisign_verify::PublicKey::from_base64(release_public_key)
        .map_err(|error| fail(format!("release public key is not a minisign key: {error}")))?;
    let signature =
        signature.ok_or_else(|| fail("the running binary has no .minisig signature".to_owned()))?;
    let signature = minisign_verify::Signature::decode(signature)
        .map_err(|error| fail(format!("release signature is malformed: {error}")))?;
    key.verify(binary, &signature, false).map_err(|error| {
        fail(format!(
            "the running binary does not verify with the release key: {error}"
        ))
    })?;
    Ok(ReleaseIntegrity::Verified {
        key_id: minisign_key_id(release_public_key)?,
    })
}

/// The key id as minisign prints it: 16 upper-case hex digits of the little-endian key number.
fn minisign_key_id(public_key_b64: &str) -> Result<String, SignerError> {
    let bytes = STANDARD.decode(public_key_b64).map_err(|error| {
        SignerError::ReleaseIntegrity(format!("release public key is not base64: {error}"))
    })?;
    let keynum: [u8; 8] = bytes
        .get(2..10)
        .and_then(|slice| slice.try_into().ok())
        .ok_or_else(|| {
            SignerError::ReleaseIntegrity("release public key is too short".to_owned())
        })?;
    Ok(format!("{:016X}", u64::from_le_bytes(keynum)))
}
