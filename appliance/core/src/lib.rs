//! Shared vocabulary of the appliance: digests, the clock, and the configuration file.
//!
//! This crate does no I/O beyond reading the configuration file it is asked to read, and it
//! never reads the system clock except through [`SystemClock`].

pub mod clock;
pub mod config;
pub mod digest;

pub use clock::{Clock, FixedClock, SystemClock, rfc3339};
pub use config::{
    AuthConfig, Config, ConfigError, LicenceConfig, LogFormat, ReleaseCheck, SignerConfig,
    TlsConfig, TlsMode, key_text,
};
pub use digest::{Digest, DigestError};

/// The version of the appliance, as built.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The year this version was released; licences may limit the release years they cover.
pub const RELEASE_YEAR: u16 = 2026;
