//! The offline-kit contract: format, content model, canonical encoding, signing and verification.
//!
//! Both sides use this crate: `stella-kit` (connected side) parses sources and writes kits with
//! [`writer::write_kit`]; the appliance checks them with [`verify::verify_kit`] and loads the
//! resulting [`verify::VerifiedKit`] into its stores. The crate does no network I/O and links no
//! store, web or async runtime.

pub mod canonical;
pub mod error;
pub mod keyupdate;
pub mod licence;
pub mod manifest;
pub mod merge;
pub mod model;
pub mod signing;
pub mod sources;
pub mod state;
pub mod verify;
pub mod vex;
pub mod writer;

pub use error::{KitError, RecordError, SourceError};
pub use manifest::{ContentKind, KitKind, Manifest, Sha256Hex};
pub use model::{Advisory, EpssEntry, KevEntry};
pub use signing::{KeyProtection, SigningKey, TrustedKeys, generate_key_pair};
pub use verify::{
    ChannelHead, Clock, FixedClock, Freshness, Limits, SystemClock, VerifiedKit, check_sequence,
    freshness, read_manifest_unverified, verify_kit,
};
pub use vex::VexClaim;
pub use writer::{BuiltKit, KitContents, KitParams, RemovedKey, write_kit, write_kit_owned};
