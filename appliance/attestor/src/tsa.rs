//! A local RFC 3161 timestamp authority whose key stays in the HSM.
//!
//! Rekor v2 entries have no integrated time, so bundles carry an RFC 3161 timestamp over the
//! signature (what Sigstore verifiers timestamp-check). The TSA has a two-certificate chain,
//! both made with the timestamping key: a self-signed TSA root and a TSA leaf with the critical
//! `timeStamping` extended key usage that stock verifiers (rfc3161-client, OpenSSL) demand.

use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyIdMethod, KeyUsagePurpose, PublicKeyData, SerialNumber, SignatureAlgorithm, SigningKey,
};
use sha2::{Digest as _, Sha256};
use stella_hsm::{KeyAlgorithm, Signer};
use stella_signer::Clock;
use time::{Duration, OffsetDateTime};

use crate::AttestorError;
use crate::der::{
    self, GENERALIZED_TIME, INTEGER, OCTET_STRING, SEQUENCE, cons, oid, set_of, tlv, uint,
};

pub(crate) const OID_SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
pub(crate) const OID_SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
pub(crate) const OID_TST_INFO: &[u64] = &[1, 2, 840, 113549, 1, 9, 16, 1, 4];
pub(crate) const OID_CONTENT_TYPE: &[u64] = &[1, 2, 840, 113549, 1, 9, 3];
pub(crate) const OID_MESSAGE_DIGEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 4];
pub(crate) const OID_SIGNING_CERTIFICATE_V2: &[u64] = &[1, 2, 840, 113549, 1, 9, 16, 2, 47];
pub(crate) const OID_ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
const OID_EXTENDED_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
const OID_KP_TIME_STAMPING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 8];
/// TSA policy: anyPolicy (2.5.29.32.0); the appliance has no registered policy arc.
pub const TSA_POLICY_OID: &[u64] = &[2, 5, 29, 32, 0];

/// The timestamping key in the HSM as an rcgen signing key.
struct HsmKey<'a> {
    signer: &'a dyn Signer,
    error: Mutex<Option<String>>,
}

impl PublicKeyData for HsmKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.signer.key().public_key.raw_public_key()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for HsmKey<'_> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.signer.sign(message).map_err(|error| {
            if let Ok(mut slot) = self.error.lock() {
                *slot = Some(error.to_string());
            }
            rcgen::Error::RemoteKeyError
        })
    }
}

/// A timestamp authority: the HSM key, its certificate chain (leaf first) and a clock.
pub struct TimestampAuthority {
    signer: Arc<dyn Signer>,
    chain: Vec<Vec<u8>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TimestampAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimestampAuthority")
            .field("key_id", &self.signer.key().public_key.key_id())
            .finish()
    }
}

fn key_identifier(spki: &[u8]) -> Vec<u8> {
    Sha256::digest(spki)[..20].to_vec()
}

fn cert_error(what: &str, error: rcgen::Error, key: &HsmKey<'_>) -> AttestorError {
    let hsm = key.error.lock().ok().and_then(|slot| slot.clone());
    AttestorError::Der {
        what: "TSA certificate",
        reason: format!(
            "{what}: {error}{}",
            hsm.map(|h| format!(": {h}")).unwrap_or_default()
        ),
    }
}

impl TimestampAuthority {
    /// Makes the TSA's certificate chain (two HSM signatures), valid for `validity` from
    /// `not_before`. Persist [`Self::chain_der`] and reopen with [`Self::with_chain`].
    pub fn create(
        signer: Arc<dyn Signer>,
        clock: Arc<dyn Clock>,
        organization: &str,
        not_before: OffsetDateTime,
        validity: Duration,
    ) -> Result<Self, AttestorError> {
        if signer.algorithm() != KeyAlgorithm::EcdsaP256 {
            return Err(AttestorError::WrongKeyAlgorithm {
                label: signer.key().label.to_string(),
                found: signer.algorithm().to_string(),
                expected: KeyAlgorithm::EcdsaP256.to_string(),
                purpose: "the timestamping key",
            });
        }
        let spki = signer.key().public_key.spki_der().to_vec();
        let serial = |salt: u8| {
            let mut bytes = Sha256::digest([&spki[..], &[salt]].concat())[..16].to_vec();
            bytes[0] = (bytes[0] & 0x7f) | 0x01;
            SerialNumber::from_slice(&bytes)
        };
        let key = HsmKey {
            signer: signer.as_ref(),
            error: Mutex::new(None),
        };
        let mut root_params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, organization);
        name.push(DnType::CommonName, "Stella Ops Appliance TSA Root");
        root_params.distinguished_name = name;
        root_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root_params.not_before = not_before;
        root_params.not_after = not_before + validity;
        root_params.serial_number = Some(serial(0));
        root_params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(&spki));
        let root = root_params
            .self_signed(&key)
            .map_err(|error| cert_error("self-signing the TSA root", error, &key))?;

        let mut leaf_params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, organization);
        name.push(DnType::CommonName, "Stella Ops Appliance TSA");
        leaf_params.distinguished_name = name;
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.not_before = not_before;
        leaf_params.not_after = not_before + validity;
        leaf_params.serial_number = Some(serial(1));
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(&spki));
        let mut eku = CustomExtension::from_oid_content(
            OID_EXTENDED_KEY_USAGE,
            cons(SEQUENCE, &[&oid(OID_KP_TIME_STAMPING)]),
        );
        eku.set_criticality(true);
        leaf_params.custom_extensions = vec![eku];
        let leaf = leaf_params
            .signed_by(&key, &Issuer::from_params(&root_params, &key))
            .map_err(|error| cert_error("issuing the TSA certificate", error, &key))?;
        Ok(TimestampAuthority {
            signer,
            chain: vec![leaf.der().to_vec(), root.der().to_vec()],
            clock,
        })
    }

    /// Reopens the TSA with a chain made by [`Self::create`]; refuses a leaf for another key.
    pub fn with_chain(
        signer: Arc<dyn Signer>,
        clock: Arc<dyn Clock>,
        chain: Vec<Vec<u8>>,
    ) -> Result<Self, AttestorError> {
        let leaf = chain.first().ok_or_else(|| AttestorError::Der {
            what: "TSA chain",
            reason: "empty".into(),
        })?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(leaf).map_err(|error| AttestorError::Der {
                what: "TSA certificate",
                reason: error.to_string(),
            })?;
        if parsed.public_key().raw != signer.key().public_key.spki_der() {
            return Err(AttestorError::Der {
                what: "TSA certificate",
                reason: "does not hold the timestamping key".into(),
            });
        }
        Ok(TimestampAuthority {
            signer,
            chain,
            clock,
        })
    }

    /// The chain, leaf first, DER (for the trusted root's `timestampAuthorities`).
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// Timestamps `message` (for Sigstore bundles: the signature bytes) and returns a DER
    /// `TimeStampResp` with status granted.
    pub fn timestamp(&self, message: &[u8]) -> Result<Vec<u8>, AttestorError> {
        let now = self.clock.now();
        self.timestamp_at(&Sha256::digest(message).into(), now)
    }

    /// Timestamps a SHA-256 `digest` at `time` (whole seconds).
    pub fn timestamp_at(
        &self,
        digest: &[u8; 32],
        time: OffsetDateTime,
    ) -> Result<Vec<u8>, AttestorError> {
        let time = time
            .replace_nanosecond(0)
            .map_err(|error| AttestorError::Der {
                what: "timestamp time",
                reason: error.to_string(),
            })?;
        let gen_time = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            time.year(),
            u8::from(time.month()),
            time.day(),
            time.hour(),
            time.minute(),
            time.second()
        );
        let sha256 = cons(SEQUENCE, &[&oid(OID_SHA256)]);
        let serial = Sha256::digest([&digest[..], gen_time.as_bytes()].concat());
        let mut serial = serial[..16].to_vec();
        serial[0] &= 0x7f;
        let tst_info = cons(
            SEQUENCE,
            &[
                &uint(&[1]),
                &oid(TSA_POLICY_OID),
                &cons(SEQUENCE, &[&sha256, &tlv(OCTET_STRING, digest)]),
                &uint(&serial),
                &tlv(GENERALIZED_TIME, gen_time.as_bytes()),
            ],
        );
        let leaf = &self.chain[0];
        let (_, parsed) =
            x509_parser::parse_x509_certificate(leaf).map_err(|error| AttestorError::Der {
                what: "TSA certificate",
                reason: error.to_string(),
            })?;
        let issuer = parsed.tbs_certificate.issuer.as_raw();
        let leaf_serial = parsed.tbs_certificate.raw_serial();
        let attribute =
            |arcs: &[u64], value: Vec<u8>| cons(SEQUENCE, &[&oid(arcs), &set_of(vec![value])]);
        let ess_cert_id = cons(SEQUENCE, &[&tlv(OCTET_STRING, &Sha256::digest(leaf))]);
        let signed_attributes = vec![
            attribute(OID_CONTENT_TYPE, oid(OID_TST_INFO)),
            attribute(
                OID_MESSAGE_DIGEST,
                tlv(OCTET_STRING, &Sha256::digest(&tst_info)),
            ),
            attribute(
                OID_SIGNING_CERTIFICATE_V2,
                cons(SEQUENCE, &[&cons(SEQUENCE, &[&ess_cert_id])]),
            ),
        ];
        let attributes_set = set_of(signed_attributes);
        let signature = self.signer.sign(&attributes_set)?;
        let mut attributes_implicit = attributes_set.clone();
        attributes_implicit[0] = 0xa0;
        let signer_info = cons(
            SEQUENCE,
            &[
                &uint(&[1]),
                &cons(SEQUENCE, &[issuer, &tlv(INTEGER, leaf_serial)]),
                &sha256,
                &attributes_implicit,
                &cons(SEQUENCE, &[&oid(OID_ECDSA_SHA256)]),
                &tlv(OCTET_STRING, &signature),
            ],
        );
        let signed_data = cons(
            SEQUENCE,
            &[
                &uint(&[3]),
                &set_of(vec![sha256.clone()]),
                &cons(
                    SEQUENCE,
                    &[
                        &oid(OID_TST_INFO),
                        &tlv(0xa0, &tlv(OCTET_STRING, &tst_info)),
                    ],
                ),
                &tlv(0xa0, leaf),
                &set_of(vec![signer_info]),
            ],
        );
        let token = cons(SEQUENCE, &[&oid(OID_SIGNED_DATA), &tlv(0xa0, &signed_data)]);
        let status = cons(SEQUENCE, &[&uint(&[0])]);
        Ok(cons(SEQUENCE, &[&status, &token]))
    }
}

/// What a verified timestamp says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    /// The time the TSA asserted.
    pub time: OffsetDateTime,
    /// The SHA-256 message imprint.
    pub digest: [u8; 32],
}

/// Verifies a DER `TimeStampResp` against a TSA certificate chain (leaf first): status granted,
/// the CMS signature by the leaf over the signed attributes, the message digest attribute,
/// the leaf's issuance by the chain's root, and that the imprint is SHA-256 of `message`.
pub fn verify_timestamp(
    response: &[u8],
    message: &[u8],
    chain: &[Vec<u8>],
) -> Result<VerifiedTimestamp, AttestorError> {
    let bad = |reason: String| AttestorError::Der {
        what: "RFC 3161 timestamp",
        reason,
    };
    let (resp, rest) = der::expect(response, SEQUENCE, "TimeStampResp")?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after TimeStampResp".into()));
    }
    let parts = der::children(resp.content, "TimeStampResp")?;
    let [status, token] = parts.as_slice() else {
        return Err(bad("TimeStampResp has no token".into()));
    };
    let status_fields = der::children(status.content, "PKIStatusInfo")?;
    if status.tag != SEQUENCE || token.tag != SEQUENCE {
        return Err(bad("TimeStampResp fields are not SEQUENCEs".into()));
    }
    if status_fields.len() != 1 || status_fields[0].raw != uint(&[0]).as_slice() {
        return Err(bad("status is not granted".into()));
    }
    let token_fields = der::children(token.content, "ContentInfo")?;
    let [content_type, explicit] = token_fields.as_slice() else {
        return Err(bad("ContentInfo malformed".into()));
    };
    if content_type.raw != oid(OID_SIGNED_DATA) || explicit.tag != 0xa0 {
        return Err(bad("token is not SignedData".into()));
    }
    let signed_data = only(explicit.content, SEQUENCE, "SignedData")?;
    let fields = der::children(signed_data.content, "SignedData")?;
    let encap = fields
        .get(2)
        .ok_or_else(|| bad("SignedData too short".into()))?;
    let signer_infos = fields.last().ok_or_else(|| bad("no signerInfos".into()))?;
    if encap.tag != SEQUENCE || signer_infos.tag != der::SET {
        return Err(bad("SignedData fields have unexpected tags".into()));
    }
    let encap_fields = der::children(encap.content, "EncapsulatedContentInfo")?;
    let [e_type, e_explicit] = encap_fields.as_slice() else {
        return Err(bad("EncapsulatedContentInfo malformed".into()));
    };
    if e_type.raw != oid(OID_TST_INFO) || e_explicit.tag != 0xa0 {
        return Err(bad("content is not TSTInfo".into()));
    }
    let tst_octets = only(e_explicit.content, OCTET_STRING, "eContent")?;
    let tst_info = tst_octets.content;
    let infos = der::children(signer_infos.content, "SignerInfos")?;
    let [info] = infos.as_slice() else {
        return Err(bad("expected exactly one SignerInfo".into()));
    };
    if info.tag != SEQUENCE {
        return Err(bad("SignerInfo is not a SEQUENCE".into()));
    }
    let info_fields = der::children(info.content, "SignerInfo")?;
    let attributes = info_fields
        .iter()
        .find(|f| f.tag == 0xa0)
        .ok_or_else(|| bad("SignerInfo has no signed attributes".into()))?;
    let signature = info_fields
        .last()
        .filter(|f| f.tag == OCTET_STRING)
        .ok_or_else(|| bad("SignerInfo has no signature".into()))?;
    // Every unsigned field must be exactly what a token by the trusted leaf carries, so no byte
    // of the token can change without failing (CMS leaves these outside the signature).
    let leaf_der_for_sid = chain
        .first()
        .ok_or_else(|| bad("TSA chain is empty".into()))?;
    let (_, sid_leaf) = x509_parser::parse_x509_certificate(leaf_der_for_sid)
        .map_err(|error| bad(format!("TSA certificate: {error}")))?;
    let sha256 = cons(SEQUENCE, &[&oid(OID_SHA256)]);
    let expected_sid = cons(
        SEQUENCE,
        &[
            sid_leaf.tbs_certificate.issuer.as_raw(),
            &tlv(INTEGER, sid_leaf.tbs_certificate.raw_serial()),
        ],
    );
    let fixed = fields.len() == 5
        && fields[0].raw == uint(&[3]).as_slice()
        && fields[1].raw == set_of(vec![sha256.clone()]).as_slice()
        && fields[3].tag == 0xa0
        && info_fields.len() == 6
        && info_fields[0].raw == uint(&[1]).as_slice()
        && info_fields[1].raw == expected_sid.as_slice()
        && info_fields[2].raw == sha256.as_slice()
        && info_fields[3].tag == 0xa0
        && info_fields[4].raw == cons(SEQUENCE, &[&oid(OID_ECDSA_SHA256)]).as_slice();
    if !fixed {
        return Err(bad(
            "SignedData or SignerInfo fields differ from a token of the trusted TSA".into(),
        ));
    }
    let mut attributes_set = attributes.raw.to_vec();
    attributes_set[0] = der::SET;
    let leaf_der = chain
        .first()
        .ok_or_else(|| bad("TSA chain is empty".into()))?;
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|error| bad(format!("TSA certificate: {error}")))?;
    let leaf_key = stella_hsm::PublicKey::from_spki_der(leaf.public_key().raw)?;
    leaf_key
        .verify(&attributes_set, signature.content)
        .map_err(|_| bad("CMS signature does not verify with the TSA certificate".into()))?;
    // The signed attributes must bind the TSTInfo through messageDigest.
    let expected_digest = cons(
        SEQUENCE,
        &[
            &oid(OID_MESSAGE_DIGEST),
            &set_of(vec![tlv(OCTET_STRING, &Sha256::digest(tst_info))]),
        ],
    );
    let found = der::children(attributes.content, "signed attributes")?
        .iter()
        .any(|a| a.raw == expected_digest.as_slice());
    if !found {
        return Err(bad(
            "messageDigest attribute does not match the TSTInfo".into()
        ));
    }
    // The token must name the trusted leaf: signingCertificateV2 holds its SHA-256, and any
    // certificates it embeds must include it.
    let ess = cons(
        SEQUENCE,
        &[
            &oid(OID_SIGNING_CERTIFICATE_V2),
            &set_of(vec![cons(
                SEQUENCE,
                &[&cons(
                    SEQUENCE,
                    &[&cons(
                        SEQUENCE,
                        &[&tlv(OCTET_STRING, &Sha256::digest(leaf_der))],
                    )],
                )],
            )]),
        ],
    );
    if !der::children(attributes.content, "signed attributes")?
        .iter()
        .any(|a| a.raw == ess.as_slice())
    {
        return Err(bad(
            "signingCertificateV2 does not name the trusted TSA certificate".into(),
        ));
    }
    if let Some(certificates) = fields.get(3).filter(|f| f.tag == 0xa0) {
        let embedded = der::children(certificates.content, "certificates")?;
        if !embedded.iter().any(|c| c.raw == leaf_der.as_slice()) {
            return Err(bad(
                "embedded certificates do not include the trusted TSA certificate".into(),
            ));
        }
    }
    if let Some(root_der) = chain.last() {
        let (_, root) = x509_parser::parse_x509_certificate(root_der)
            .map_err(|error| bad(format!("TSA root: {error}")))?;
        let root_key = stella_hsm::PublicKey::from_spki_der(root.public_key().raw)?;
        root_key
            .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
            .map_err(|_| bad("TSA certificate is not issued by the TSA root".into()))?;
    }
    let tst = only(tst_info, SEQUENCE, "TSTInfo")?;
    let tst_fields = der::children(tst.content, "TSTInfo")?;
    let imprint = tst_fields
        .get(2)
        .ok_or_else(|| bad("TSTInfo too short".into()))?;
    let imprint_fields = der::children(imprint.content, "MessageImprint")?;
    let [algorithm, hashed] = imprint_fields.as_slice() else {
        return Err(bad("MessageImprint malformed".into()));
    };
    if algorithm.content.get(..oid(OID_SHA256).len()) != Some(&oid(OID_SHA256)[..]) {
        return Err(bad("imprint is not SHA-256".into()));
    }
    let digest: [u8; 32] = hashed
        .content
        .try_into()
        .map_err(|_| bad("imprint is not 32 bytes".into()))?;
    if digest != <[u8; 32]>::from(Sha256::digest(message)) {
        return Err(bad("timestamp is over another message".into()));
    }
    let gen_time = tst_fields
        .get(4)
        .filter(|f| f.tag == GENERALIZED_TIME)
        .ok_or_else(|| bad("TSTInfo has no genTime".into()))?;
    let time =
        parse_generalized_time(gen_time.content).ok_or_else(|| bad("genTime malformed".into()))?;
    let validity = leaf.validity();
    if time.unix_timestamp() < validity.not_before.timestamp()
        || time.unix_timestamp() > validity.not_after.timestamp()
    {
        return Err(bad(
            "genTime is outside the TSA certificate's validity".into()
        ));
    }
    Ok(VerifiedTimestamp { time, digest })
}

/// Exactly one TLV of `tag` and nothing after it.
fn only<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<der::Tlv<'a>, AttestorError> {
    let (value, rest) = der::expect(input, tag, what)?;
    if !rest.is_empty() {
        return Err(AttestorError::Der {
            what,
            reason: "trailing bytes".into(),
        });
    }
    Ok(value)
}

fn parse_generalized_time(bytes: &[u8]) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.len() != 15 || !text.ends_with('Z') || !text[..14].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        number(0..4)? as i32,
        time::Month::try_from(number(4..6)? as u8).ok()?,
        number(6..8)? as u8,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        number(8..10)? as u8,
        number(10..12)? as u8,
        number(12..14)? as u8,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc())
}
