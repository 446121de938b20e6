//! An appliance-local certificate-transparency "log" that issues embedded SCTs (RFC 6962 §3.2)
//! for the CA's leaf certificates, signed by an HSM-held P-256 key.
//!
//! Sigstore clients require an SCT in every signing certificate and verify it against a CT
//! log key in the trusted root (`ctlogs`). The appliance therefore lists this key there; the
//! log id is SHA-256 of the key's SPKI DER, as RFC 6962 §3.2 defines.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use stella_hsm::{KeyAlgorithm, PublicKey, Signer};

use crate::SignerError;

/// OID of the embedded SCT list extension (1.3.6.1.4.1.11129.2.4.2).
pub const SCT_LIST_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];
/// TLS `HashAlgorithm.sha256`.
const HASH_SHA256: u8 = 4;
/// TLS `SignatureAlgorithm.ecdsa`.
const SIGNATURE_ECDSA: u8 = 3;

/// Issues SCTs with a P-256 key held in the HSM.
#[derive(Clone)]
pub struct CtLog {
    signer: Arc<dyn Signer>,
}

impl std::fmt::Debug for CtLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CtLog")
            .field("log_id", &hex::encode(self.log_id()))
            .finish()
    }
}

impl CtLog {
    /// Wraps the CT log key (it must be ECDSA P-256, as Sigstore's verifiers expect).
    pub fn new(signer: Arc<dyn Signer>) -> Result<Self, SignerError> {
        if signer.algorithm() != KeyAlgorithm::EcdsaP256 {
            return Err(SignerError::WrongKeyAlgorithm {
                label: signer.key().label.to_string(),
                found: signer.algorithm().to_string(),
                expected: KeyAlgorithm::EcdsaP256.to_string(),
                purpose: "the CT log key",
            });
        }
        Ok(CtLog { signer })
    }

    /// The log's public key (publish it in the trusted root's `ctlogs`).
    pub fn public_key(&self) -> &PublicKey {
        &self.signer.key().public_key
    }

    /// RFC 6962 LogID: SHA-256 of the log key's SPKI DER.
    pub fn log_id(&self) -> [u8; 32] {
        Sha256::digest(self.public_key().spki_der()).into()
    }

    /// Signs a precertificate entry and returns the serialized `SignedCertificateTimestamp`.
    ///
    /// `tbs_certificate` is the DER TBSCertificate of the final certificate without the SCT
    /// list extension; `issuer_key_hash` is SHA-256 of the issuer's SPKI DER.
    pub fn issue_sct(
        &self,
        issuer_key_hash: &[u8; 32],
        tbs_certificate: &[u8],
        timestamp_ms: u64,
    ) -> Result<Vec<u8>, SignerError> {
        let tbs_length = u32::try_from(tbs_certificate.len())
            .ok()
            .filter(|length| *length < (1 << 24))
            .ok_or_else(|| SignerError::Certificate {
                subject: "precertificate".to_owned(),
                reason: format!(
                    "TBSCertificate of {} bytes exceeds 2^24-1",
                    tbs_certificate.len()
                ),
            })?;
        let mut signed = Vec::with_capacity(tbs_certificate.len() + 64);
        signed.push(0); // sct_version v1
        signed.push(0); // signature_type certificate_timestamp
        signed.extend_from_slice(&timestamp_ms.to_be_bytes());
        signed.extend_from_slice(&1u16.to_be_bytes()); // entry_type precert_entry
        signed.extend_from_slice(issuer_key_hash);
        signed.extend_from_slice(&tbs_length.to_be_bytes()[1..]);
        signed.extend_from_slice(tbs_certificate);
        signed.extend_from_slice(&0u16.to_be_bytes()); // no CtExtensions
        let signature = self.signer.sign(&signed)?;
        let signature_length =
            u16::try_from(signature.len()).map_err(|_| SignerError::Certificate {
                subject: "SCT".to_owned(),
                reason: "signature longer than 65535 bytes".to_owned(),
            })?;

        let mut sct = Vec::with_capacity(signature.len() + 48);
        sct.push(0); // sct_version v1
        sct.extend_from_slice(&self.log_id());
        sct.extend_from_slice(&timestamp_ms.to_be_bytes());
        sct.extend_from_slice(&0u16.to_be_bytes()); // no CtExtensions
        sct.push(HASH_SHA256);
        sct.push(SIGNATURE_ECDSA);
        sct.extend_from_slice(&signature_length.to_be_bytes());
        sct.extend_from_slice(&signature);
        Ok(sct)
    }
}

/// The extnValue contents of the SCT list extension: a DER OCTET STRING holding the TLS
/// `SignedCertificateTimestampList` (u16 total length, then u16-length-prefixed SCTs).
pub(crate) fn sct_list_extension_content(scts: &[Vec<u8>]) -> Result<Vec<u8>, SignerError> {
    let too_long = || SignerError::Certificate {
        subject: "SCT list".to_owned(),
        reason: "longer than 65535 bytes".to_owned(),
    };
    let mut list = Vec::new();
    for sct in scts {
        list.extend_from_slice(
            &u16::try_from(sct.len())
                .map_err(|_| too_long())?
                .to_be_bytes(),
        );
        list.extend_from_slice(sct);
    }
    let mut tls = u16::try_from(list.len())
        .map_err(|_| too_long())?
        .to_be_bytes()
        .to_vec();
    tls.extend_from_slice(&list);
    let mut der = vec![0x04];
    der.extend_from_slice(&der_length(tls.len()));
    der.extend_from_slice(&tls);
    Ok(der)
}

fn der_length(length: usize) -> Vec<u8> {
    if length < 0x80 {
        return vec![length as u8];
    }
    let bytes = length.to_be_bytes();
    let first = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len() - 1);
    let mut out = vec![0x80 | (bytes.len() - first) as u8];
    out.extend_from_slice(&bytes[first..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der_length(5), [5]);
        assert_eq!(der_length(0x80), [0x81, 0x80]);
        assert_eq!(der_length(0x1234), [0x82, 0x12, 0x34]);
    }
}
