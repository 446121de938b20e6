//! The attestor as the daemon uses it: one data directory holding the log and the TSA's
//! certificate chain, opened from the HSM key source, exporting bundles and trust documents.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use stella_hsm::{KeyRole, KeySource};
use stella_signer::{AttestationSigner, Clock, SignedAttestation};
use time::OffsetDateTime;

use crate::log::write_atomic;
use crate::{
    AttestorError, CheckpointSigner, ExportedBundle, TimestampAuthority, TransparencyLog,
    TrustMaterial, export_bundle,
};

/// The TSA chain file inside the data directory (JSON array of base64 DER, leaf first).
pub const TSA_CHAIN_FILE: &str = "tsa-chain.json";
/// The log directory inside the data directory.
pub const LOG_DIR: &str = "log";

/// Names and URLs the attestor publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestorConfig {
    /// Log origin, e.g. `stella.example.internal/log` (no spaces or `+`).
    pub origin: String,
    /// The appliance's public base URL.
    pub base_url: String,
    /// Organisation (TSA subject, trusted-root subjects, signing-config operator).
    pub organization: String,
    /// The CA root's common name (as in the signer's `CaProfile`).
    pub ca_common_name: String,
    /// Start of validity of the published keys and of the TSA certificates.
    pub valid_from: OffsetDateTime,
}

/// Log + TSA + trust material, opened from one data directory.
#[derive(Debug)]
pub struct Attestor {
    log: TransparencyLog,
    tsa: TimestampAuthority,
    trust: TrustMaterial,
    data_dir: PathBuf,
}

impl Attestor {
    /// Opens (or creates) the attestor in `data_dir`: the log under `log/`, the TSA chain in
    /// `tsa-chain.json` (made once with the HSM timestamping key, then reused so the published
    /// trusted root stays byte-identical across restarts).
    pub fn open(
        data_dir: &Path,
        source: &dyn KeySource,
        signer: &AttestationSigner,
        clock: Arc<dyn Clock>,
        config: &AttestorConfig,
    ) -> Result<Self, AttestorError> {
        let checkpoint = CheckpointSigner::new(
            source.signer(&KeyRole::TlogCheckpoint.label()?)?,
            &config.origin,
        )?;
        let log = TransparencyLog::open(&data_dir.join(LOG_DIR), checkpoint)?;
        let timestamping = source.signer(&KeyRole::Timestamping.label()?)?;
        let chain_path = data_dir.join(TSA_CHAIN_FILE);
        let tsa = if chain_path.exists() {
            let bytes =
                std::fs::read(&chain_path).map_err(AttestorError::io(&chain_path, "reading"))?;
            let encoded: Vec<String> =
                serde_json::from_slice(&bytes).map_err(|error| AttestorError::Json {
                    what: "TSA chain",
                    reason: error.to_string(),
                })?;
            let chain = encoded
                .iter()
                .map(|text| STANDARD.decode(text))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| AttestorError::Json {
                    what: "TSA chain",
                    reason: error.to_string(),
                })?;
            TimestampAuthority::with_chain(timestamping, clock, chain)?
        } else {
            let tsa = TimestampAuthority::create(
                timestamping,
                clock,
                &config.organization,
                config.valid_from,
                time::Duration::days(3653),
            )?;
            let encoded: Vec<String> = tsa
                .chain_der()
                .iter()
                .map(|der| STANDARD.encode(der))
                .collect();
            let json =
                serde_json::to_vec_pretty(&encoded).map_err(|error| AttestorError::Json {
                    what: "TSA chain",
                    reason: error.to_string(),
                })?;
            write_atomic(&chain_path, &json)?;
            tsa
        };
        let ct_log = signer.ct_log().ok_or_else(|| {
            AttestorError::Entry(
                "the attestation signer has no CT log; Sigstore clients require embedded SCTs"
                    .into(),
            )
        })?;
        let trust = TrustMaterial::new(
            &config.base_url,
            &config.organization,
            signer.certificate_authority(),
            &config.ca_common_name,
            ct_log,
            &log,
            &tsa,
            config.valid_from,
        );
        Ok(Attestor {
            log,
            tsa,
            trust,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// The log (append, checkpoint, tiles, proofs).
    pub fn log(&self) -> &TransparencyLog {
        &self.log
    }

    /// The timestamp authority.
    pub fn tsa(&self) -> &TimestampAuthority {
        &self.tsa
    }

    /// The published trust material.
    pub fn trust(&self) -> &TrustMaterial {
        &self.trust
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Logs and timestamps a signed attestation and returns its Sigstore bundle.
    pub fn attest(&self, signed: &SignedAttestation) -> Result<ExportedBundle, AttestorError> {
        export_bundle(signed, &self.log, &self.tsa)
    }

    /// `trusted_root.json` bytes.
    pub fn trusted_root_json(&self) -> Result<Vec<u8>, AttestorError> {
        pretty(&self.trust.trusted_root()?)
    }

    /// `signing_config.json` bytes (SigningConfig v0.2).
    pub fn signing_config_json(&self) -> Result<Vec<u8>, AttestorError> {
        pretty(&self.trust.signing_config()?)
    }

    /// `trust-config.json` bytes (ClientTrustConfig for `sigstore --trust-config`).
    pub fn client_trust_config_json(&self) -> Result<Vec<u8>, AttestorError> {
        pretty(&self.trust.client_trust_config()?)
    }
}

fn pretty(value: &serde_json::Value) -> Result<Vec<u8>, AttestorError> {
    serde_json::to_vec_pretty(value).map_err(|error| AttestorError::Json {
        what: "trust document",
        reason: error.to_string(),
    })
}
