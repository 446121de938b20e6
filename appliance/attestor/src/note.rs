//! C2SP signed notes and tlog checkpoints: the text form, the Ed25519 key id, signing through
//! the HSM and verification.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};
use stella_hsm::{KeyAlgorithm, Signer};

use crate::AttestorError;
use crate::merkle::Hash;

/// Signed-note signature type byte of Ed25519 keys (C2SP signed-note).
const ED25519_TYPE: u8 = 0x01;
/// The em dash that starts every signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Upper bound on a checkpoint's size, to bound work on untrusted input.
pub const MAX_CHECKPOINT_BYTES: usize = 64 * 1024;

/// `SHA-256(name || 0x0A || 0x01 || public key)`: the first 4 bytes are the signed-note key
/// hash; all 32 bytes are the log id a Rekor v2 log publishes (`logId.keyId`).
pub fn note_key_id(name: &str, ed25519_public_key: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519_TYPE]);
    hasher.update(ed25519_public_key);
    hasher.finalize().into()
}

/// The `vkey` line of a signed-note verifier key: `<name>+<hex key hash>+<base64(0x01 || key)>`.
pub fn verifier_key(name: &str, ed25519_public_key: &[u8]) -> String {
    let mut typed = vec![ED25519_TYPE];
    typed.extend_from_slice(ed25519_public_key);
    format!(
        "{name}+{}+{}",
        hex::encode(&note_key_id(name, ed25519_public_key)[..4]),
        STANDARD.encode(typed)
    )
}

/// A checkpoint's content: origin, tree size, root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (also the signing key's name).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: origin, decimal size, base64 root, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Parses a note body (the text before the blank line); extension lines are allowed and ignored.
    pub fn parse_body(body: &str) -> Result<Self, AttestorError> {
        let bad = |reason: &str| AttestorError::Checkpoint(format!("body: {reason}"));
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("empty origin"))?;
        let size_text = lines.next().ok_or_else(|| bad("missing tree size"))?;
        if size_text.is_empty()
            || !size_text.bytes().all(|b| b.is_ascii_digit())
            || (size_text.len() > 1 && size_text.starts_with('0'))
        {
            return Err(bad("tree size is not a canonical decimal"));
        }
        let size: u64 = size_text.parse().map_err(|_| bad("tree size overflows"))?;
        let root_text = lines.next().ok_or_else(|| bad("missing root hash"))?;
        let root: Hash = STANDARD
            .decode(root_text)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| bad("root hash is not base64 of 32 bytes"))?;
        if !body.ends_with('\n') {
            return Err(bad("does not end in a newline"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Signs checkpoints with the HSM-held Ed25519 key; the key's name is the log origin.
#[derive(Clone)]
pub struct CheckpointSigner {
    signer: Arc<dyn Signer>,
    origin: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("origin", &self.origin)
            .finish()
    }
}

impl CheckpointSigner {
    /// Wraps the checkpoint key (must be Ed25519) for the log named `origin`.
    pub fn new(signer: Arc<dyn Signer>, origin: &str) -> Result<Self, AttestorError> {
        if signer.algorithm() != KeyAlgorithm::Ed25519 {
            return Err(AttestorError::WrongKeyAlgorithm {
                label: signer.key().label.to_string(),
                found: signer.algorithm().to_string(),
                expected: KeyAlgorithm::Ed25519.to_string(),
                purpose: "the checkpoint key",
            });
        }
        if origin.is_empty() || origin.contains(['\n', ' ', '+']) {
            return Err(AttestorError::Checkpoint(format!(
                "origin {origin:?} must be non-empty without spaces, '+' or newlines"
            )));
        }
        Ok(CheckpointSigner {
            signer,
            origin: origin.to_owned(),
        })
    }

    /// The log origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8] {
        self.signer.key().public_key.raw_public_key()
    }

    /// The SPKI DER of the key (for the trusted root).
    pub fn spki_der(&self) -> &[u8] {
        self.signer.key().public_key.spki_der()
    }

    /// The log id: [`note_key_id`] of this key.
    pub fn log_id(&self) -> [u8; 32] {
        note_key_id(&self.origin, self.public_key())
    }

    /// Signs a checkpoint and returns the signed note text.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, AttestorError> {
        let body = checkpoint.body();
        let signature = self.signer.sign(body.as_bytes())?;
        let mut blob = self.log_id()[..4].to_vec();
        blob.extend_from_slice(&signature);
        Ok(format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            self.origin,
            STANDARD.encode(blob)
        ))
    }
}

/// Verifies a signed checkpoint note against the log key named `origin`; returns its content.
/// Other signatures (witness cosignatures) are ignored; the log's own must be present and valid.
pub fn verify_checkpoint(
    note: &str,
    origin: &str,
    ed25519_public_key: &[u8],
) -> Result<Checkpoint, AttestorError> {
    if note.len() > MAX_CHECKPOINT_BYTES {
        return Err(AttestorError::Checkpoint(format!(
            "{} bytes exceed {MAX_CHECKPOINT_BYTES}",
            note.len()
        )));
    }
    let (body_without_newline, signatures) = note
        .split_once("\n\n")
        .ok_or_else(|| AttestorError::Checkpoint("no blank line before the signatures".into()))?;
    let body = format!("{body_without_newline}\n");
    let checkpoint = Checkpoint::parse_body(&body)?;
    if checkpoint.origin != origin {
        return Err(AttestorError::Checkpoint(format!(
            "origin {:?} is not the log's origin {origin:?}",
            checkpoint.origin
        )));
    }
    let key_hash = &note_key_id(origin, ed25519_public_key)[..4];
    let array: [u8; 32] = ed25519_public_key
        .try_into()
        .map_err(|_| AttestorError::Checkpoint("log key is not 32 bytes".into()))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&array)
        .map_err(|error| AttestorError::Checkpoint(format!("log key: {error}")))?;
    if !signatures.ends_with('\n') {
        return Err(AttestorError::Checkpoint(
            "signature block does not end in a newline".into(),
        ));
    }
    for line in signatures.lines() {
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| AttestorError::Checkpoint(format!("bad signature line {line:?}")))?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or_else(|| AttestorError::Checkpoint(format!("bad signature line {line:?}")))?;
        let blob = STANDARD
            .decode(blob)
            .map_err(|_| AttestorError::Checkpoint(format!("signature of {name} is not base64")))?;
        if name != origin || blob.len() < 4 || &blob[..4] != key_hash {
            continue;
        }
        let signature = ed25519_dalek::Signature::from_slice(&blob[4..])
            .map_err(|_| AttestorError::Checkpoint("log signature is not 64 bytes".into()))?;
        key.verify_strict(body.as_bytes(), &signature)
            .map_err(|_| AttestorError::Checkpoint("log signature does not verify".into()))?;
        return Ok(checkpoint);
    }
    Err(AttestorError::Checkpoint(format!(
        "no signature by the log key {} ({})",
        hex::encode(key_hash),
        origin
    )))
}
