//! Attestor: a local Rekor v2 transparency log (C2SP tlog-tiles, signed-note checkpoints),
//! an RFC 3161 timestamp authority, Sigstore bundle v0.3 export and offline verification.
//!
//! Keys stay in the HSM: the checkpoint key (Ed25519) signs checkpoints and the timestamping
//! key (P-256) signs timestamps, both through [`stella_hsm::Signer`].
//!
//! The daemon's flow: [`Attestor::open`] (data dir, key source, the signer's CA and CT log) →
//! for each `stella_signer::SignedAttestation`, [`Attestor::attest`] logs a hashedrekord over
//! the DSSE PAE digest, timestamps the signature and returns the Sigstore bundle v0.3 →
//! [`Attestor::trusted_root_json`] / [`Attestor::client_trust_config_json`] publish the trust
//! documents. The log serves [`TransparencyLog::checkpoint`] and [`TransparencyLog::read_tile`];
//! [`verify_log`] is the monitor and [`verify_bundle`] the offline verifier.
//! Formats: `docs/transparency-log.md`, `docs/verify.md`.

mod attestor;
mod bundle;
mod der;
mod error;
mod log;
pub mod merkle;
mod note;
mod rekor;
mod tiles;
mod tsa;
mod verify;

pub use attestor::{Attestor, AttestorConfig, LOG_DIR, TSA_CHAIN_FILE};
pub use bundle::{
    BUNDLE_MEDIA_TYPE, CLIENT_TRUST_CONFIG_MEDIA_TYPE, ExportedBundle, SIGNING_CONFIG_MEDIA_TYPE,
    TRUSTED_ROOT_MEDIA_TYPE, TrustMaterial, export_bundle,
};
pub use error::AttestorError;
pub use log::{
    CHECKPOINT_FILE, CHECKPOINT_HISTORY_FILE, LogReport, MAX_BATCH, TransparencyLog, verify_log,
};
pub use note::{
    Checkpoint, CheckpointSigner, MAX_CHECKPOINT_BYTES, note_key_id, verifier_key,
    verify_checkpoint,
};
pub use rekor::{
    CheckpointEnvelope, HashedRekord, InclusionProof, KEY_DETAILS_P256, KindVersion, LogId,
    TransparencyLogEntry,
};
pub use tiles::{TILE_WIDTH, TileId, encode_bundle, encode_index, parse_bundle};
pub use tsa::{TSA_POLICY_OID, TimestampAuthority, VerifiedTimestamp, verify_timestamp};
pub use verify::{MAX_BUNDLE_BYTES, Verified, VerifyError, verify_bundle};
