//! Sigstore bundle v0.3 export, and the appliance's TrustedRoot, SigningConfig v0.2 and
//! ClientTrustConfig documents (what `sigstore --trust-config` reads).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use stella_signer::SignedAttestation;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::rekor::{HashedRekord, TransparencyLogEntry};
use crate::{AttestorError, TimestampAuthority, TransparencyLog};

/// Media type of Sigstore bundles v0.3.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Media type of the TrustedRoot.
pub const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
/// Media type of the SigningConfig v0.2.
pub const SIGNING_CONFIG_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.signingconfig.v0.2+json";
/// Media type of the ClientTrustConfig.
pub const CLIENT_TRUST_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";

/// Everything a verifier must trust, as published by the appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustMaterial {
    /// The appliance's public base URL (e.g. `https://stella.example`); API paths hang off it.
    pub base_url: String,
    /// The operator name for the signing config.
    pub operator: String,
    /// Organisation written into the subjects of the trusted root.
    pub organization: String,
    /// DER of the CA root certificate.
    pub ca_root_der: Vec<u8>,
    /// Common name of the CA root.
    pub ca_common_name: String,
    /// SPKI DER of the CT log key (P-256).
    pub ct_log_spki: Vec<u8>,
    /// The log origin (checkpoint key name).
    pub log_origin: String,
    /// SPKI DER of the checkpoint key (Ed25519).
    pub log_spki: Vec<u8>,
    /// Log id (signed-note key id, 32 bytes).
    pub log_id: [u8; 32],
    /// TSA chain, leaf first.
    pub tsa_chain: Vec<Vec<u8>>,
    /// Start of validity of every key listed.
    pub valid_from: OffsetDateTime,
}

fn rfc3339(time: OffsetDateTime) -> Result<String, AttestorError> {
    time.format(&Rfc3339).map_err(|error| AttestorError::Json {
        what: "timestamp",
        reason: error.to_string(),
    })
}

impl TrustMaterial {
    /// Gathers the trust material from the appliance's parts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        base_url: &str,
        organization: &str,
        ca: &stella_signer::CertificateAuthority,
        ca_common_name: &str,
        ct_log: &stella_signer::CtLog,
        log: &TransparencyLog,
        tsa: &TimestampAuthority,
        valid_from: OffsetDateTime,
    ) -> Self {
        TrustMaterial {
            base_url: base_url.trim_end_matches('/').to_owned(),
            operator: organization.to_owned(),
            organization: organization.to_owned(),
            ca_root_der: ca.root().der.clone(),
            ca_common_name: ca_common_name.to_owned(),
            ct_log_spki: ct_log.public_key().spki_der().to_vec(),
            log_origin: log.signer().origin().to_owned(),
            log_spki: log.signer().spki_der().to_vec(),
            log_id: log.signer().log_id(),
            tsa_chain: tsa.chain_der().to_vec(),
            valid_from,
        }
    }

    /// The Sigstore TrustedRoot (`trusted_root.json`).
    pub fn trusted_root(&self) -> Result<Value, AttestorError> {
        let start = rfc3339(self.valid_from)?;
        Ok(json!({
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [{
                "baseUrl": format!("{}/api/v2", self.base_url),
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": STANDARD.encode(&self.log_spki),
                    "keyDetails": "PKIX_ED25519",
                    "validFor": {"start": start}
                },
                "logId": {"keyId": STANDARD.encode(self.log_id)}
            }],
            "certificateAuthorities": [{
                "subject": {"organization": self.organization, "commonName": self.ca_common_name},
                "uri": format!("{}/api/ca", self.base_url),
                "certChain": {"certificates": [{"rawBytes": STANDARD.encode(&self.ca_root_der)}]},
                "validFor": {"start": start}
            }],
            "ctlogs": [{
                "baseUrl": format!("{}/api/ct", self.base_url),
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": STANDARD.encode(&self.ct_log_spki),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start}
                },
                "logId": {"keyId": STANDARD.encode(Sha256::digest(&self.ct_log_spki))}
            }],
            "timestampAuthorities": [{
                "subject": {"organization": self.organization, "commonName": "Stella Ops Appliance TSA"},
                "uri": format!("{}/api/v1/timestamp", self.base_url),
                "certChain": {"certificates": self.tsa_chain.iter()
                    .map(|der| json!({"rawBytes": STANDARD.encode(der)})).collect::<Vec<_>>()},
                "validFor": {"start": start}
            }]
        }))
    }

    /// The Sigstore SigningConfig v0.2 (`signing_config.json`).
    pub fn signing_config(&self) -> Result<Value, AttestorError> {
        let start = rfc3339(self.valid_from)?;
        let service = |path: &str, version: u32| {
            json!({
                "url": format!("{}{path}", self.base_url),
                "majorApiVersion": version,
                "validFor": {"start": start},
                "operator": self.operator,
            })
        };
        Ok(json!({
            "mediaType": SIGNING_CONFIG_MEDIA_TYPE,
            "caUrls": [service("/api/ca", 1)],
            "oidcUrls": [],
            "rekorTlogUrls": [service("", 2)],
            "tsaUrls": [service("/api/v1/timestamp", 1)],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"}
        }))
    }

    /// The ClientTrustConfig (`trust-config.json`) holding both documents.
    pub fn client_trust_config(&self) -> Result<Value, AttestorError> {
        Ok(json!({
            "mediaType": CLIENT_TRUST_CONFIG_MEDIA_TYPE,
            "trustedRoot": self.trusted_root()?,
            "signingConfig": self.signing_config()?,
        }))
    }

    /// Parses trust material back from a TrustedRoot JSON (what `stella verify --trust-root` reads).
    pub fn from_trusted_root(bytes: &[u8]) -> Result<Self, AttestorError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|error| AttestorError::Json {
            what: "trusted root",
            reason: error.to_string(),
        })?;
        // A ClientTrustConfig is accepted too.
        let root = if value["mediaType"] == CLIENT_TRUST_CONFIG_MEDIA_TYPE {
            &value["trustedRoot"]
        } else {
            &value
        };
        if root["mediaType"] != TRUSTED_ROOT_MEDIA_TYPE {
            return Err(AttestorError::Json {
                what: "trusted root",
                reason: "mediaType is not a TrustedRoot v0.1".into(),
            });
        }
        let b64 = |v: &Value, what: &'static str| -> Result<Vec<u8>, AttestorError> {
            v.as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or_else(|| AttestorError::Json {
                    what,
                    reason: "missing or not base64".into(),
                })
        };
        let tlog = &root["tlogs"][0];
        let log_id: [u8; 32] = b64(&tlog["logId"]["keyId"], "tlog logId")?
            .try_into()
            .map_err(|_| AttestorError::Json {
                what: "tlog logId",
                reason: "not 32 bytes".into(),
            })?;
        let valid_from = tlog["publicKey"]["validFor"]["start"]
            .as_str()
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let ca = &root["certificateAuthorities"][0];
        let tsa_chain = root["timestampAuthorities"][0]["certChain"]["certificates"]
            .as_array()
            .map(|certs| {
                certs
                    .iter()
                    .map(|c| b64(&c["rawBytes"], "TSA certificate"))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let base_url = tlog["baseUrl"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches("/api/v2")
            .to_owned();
        Ok(TrustMaterial {
            base_url,
            operator: ca["subject"]["organization"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            organization: ca["subject"]["organization"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            ca_root_der: b64(
                &ca["certChain"]["certificates"][0]["rawBytes"],
                "CA certificate",
            )?,
            ca_common_name: ca["subject"]["commonName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            ct_log_spki: b64(&root["ctlogs"][0]["publicKey"]["rawBytes"], "CT log key")?,
            log_origin: String::new(),
            log_spki: b64(&tlog["publicKey"]["rawBytes"], "tlog key")?,
            log_id,
            tsa_chain,
            valid_from,
        })
    }
}

/// A logged, timestamped attestation as a Sigstore bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedBundle {
    /// The bundle JSON (`NAME.sigstore.json`).
    pub json: Vec<u8>,
    /// The log entry (log index for the audit record and `{logIndex}` responses).
    pub entry: TransparencyLogEntry,
}

/// Logs a signed attestation (hashedrekord over the DSSE PAE), timestamps its signature and
/// returns the Sigstore bundle v0.3.
pub fn export_bundle(
    signed: &SignedAttestation,
    log: &TransparencyLog,
    tsa: &TimestampAuthority,
) -> Result<ExportedBundle, AttestorError> {
    let rekord = HashedRekord::for_dsse(&signed.envelope, &signed.certificate.der)?;
    let timestamp = tsa.timestamp(&rekord.signature)?;
    let entry = log.append(&rekord)?;
    let bundle = json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "certificate": {"rawBytes": STANDARD.encode(&signed.certificate.der)},
            "tlogEntries": [entry],
            "timestampVerificationData": {
                "rfc3161Timestamps": [{"signedTimestamp": STANDARD.encode(&timestamp)}]
            }
        },
        "dsseEnvelope": {
            "payload": signed.envelope.payload,
            "payloadType": signed.envelope.payload_type,
            "signatures": signed.envelope.signatures.iter()
                .map(|s| json!({"sig": s.sig, "keyid": s.keyid})).collect::<Vec<_>>()
        }
    });
    let json = serde_json::to_vec_pretty(&bundle).map_err(|error| AttestorError::Json {
        what: "bundle",
        reason: error.to_string(),
    })?;
    Ok(ExportedBundle { json, entry })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_trusted_root_of_the_fuzz_target_parses_and_garbage_does_not() {
        let minimal = br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[{"logId":{"keyId":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"publicKey":{"rawBytes":""}}],"certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":""}]}}],"ctlogs":[{"publicKey":{"rawBytes":""}}]}"#;
        let trust = TrustMaterial::from_trusted_root(minimal).unwrap();
        assert_eq!(trust.log_id, [0u8; 32]);
        for garbage in [
            &b"{}"[..],
            b"[]",
            b"",
            br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
        ] {
            assert!(TrustMaterial::from_trusted_root(garbage).is_err());
            assert!(crate::verify_bundle(garbage, None, &trust).is_err());
        }
    }
}
