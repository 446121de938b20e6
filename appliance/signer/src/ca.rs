//! The HSM-held certificate authority: a self-signed root and short-lived, Fulcio-style leaf
//! certificates (identity SAN, OIDC-issuer extensions, code-signing EKU, embedded SCT).

use std::sync::{Arc, Mutex};

use rand_core::{OsRng, RngCore as _};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData, SanType,
    SerialNumber, SignatureAlgorithm, SigningKey,
};
use sha2::{Digest as _, Sha256};
use stella_hsm::{KeyAlgorithm, PublicKey, Signer};
use time::{Duration, OffsetDateTime};

use crate::sct::{SCT_LIST_OID, sct_list_extension_content};
use crate::{Clock, CtLog, SignerError};

/// Sigstore OIDC issuer (v2), a DER UTF8String: 1.3.6.1.4.1.57264.1.8.
pub const OIDC_ISSUER_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];
/// Sigstore OIDC issuer (legacy), raw bytes: 1.3.6.1.4.1.57264.1.1.
pub const OIDC_ISSUER_LEGACY_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];

/// Who signed: the leaf certificate's SAN, matched by `sigstore verify --cert-identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningIdentity {
    /// A URI SAN, e.g. `https://appliance.example/signer`.
    Uri(String),
    /// An e-mail (rfc822Name) SAN.
    Email(String),
}

impl SigningIdentity {
    fn text(&self) -> &str {
        match self {
            SigningIdentity::Uri(text) | SigningIdentity::Email(text) => text,
        }
    }
}

/// Names and lifetimes of the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaProfile {
    /// Root common name, e.g. `Stella Ops Appliance Root CA`.
    pub common_name: String,
    /// Organisation (the installation's name).
    pub organization: String,
    /// Start of the root's validity; fixed so the root's TBS is reproducible.
    pub root_not_before: OffsetDateTime,
    /// Root lifetime (default 10 years).
    pub root_validity: Duration,
    /// Leaf lifetime (default 10 minutes, like Fulcio).
    pub leaf_validity: Duration,
}

impl CaProfile {
    /// A profile with the default lifetimes.
    pub fn new(common_name: &str, organization: &str, root_not_before: OffsetDateTime) -> Self {
        CaProfile {
            common_name: common_name.to_owned(),
            organization: organization.to_owned(),
            root_not_before,
            root_validity: Duration::days(3653),
            leaf_validity: Duration::minutes(10),
        }
    }
}

/// A certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
    /// Serial number, lower-case hex.
    pub serial_hex: String,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// Whether an SCT is embedded.
    pub sct_embedded: bool,
}

fn rcgen_algorithm(algorithm: KeyAlgorithm) -> &'static SignatureAlgorithm {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
    }
}

/// RFC 7093 method 1: the first 160 bits of SHA-256 of the SPKI.
fn key_identifier(key: &PublicKey) -> Vec<u8> {
    Sha256::digest(key.spki_der())[..20].to_vec()
}

/// A public key rcgen can put into a certificate.
struct PublicOnly<'a>(&'a PublicKey);

impl PublicKeyData for PublicOnly<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.raw_public_key()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        rcgen_algorithm(self.0.algorithm())
    }
}

/// The CA key in the HSM as an rcgen remote key; keeps the HSM's error for the report.
struct HsmCaKey<'a> {
    signer: &'a dyn Signer,
    error: Mutex<Option<String>>,
}

impl PublicKeyData for HsmCaKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.signer.key().public_key.raw_public_key()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        rcgen_algorithm(self.signer.algorithm())
    }
}

impl SigningKey for HsmCaKey<'_> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.signer.sign(message).map_err(|error| {
            if let Ok(mut slot) = self.error.lock() {
                *slot = Some(error.to_string());
            }
            rcgen::Error::RemoteKeyError
        })
    }
}

/// Records the TBSCertificate rcgen asks to be signed, signs nothing: that TBS (without the
/// SCT extension) is exactly the precertificate TBS of RFC 6962 §3.2.
struct TbsCapture<'a> {
    ca_key: &'a PublicKey,
    tbs: Mutex<Option<Vec<u8>>>,
}

impl PublicKeyData for TbsCapture<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.ca_key.raw_public_key()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        rcgen_algorithm(self.ca_key.algorithm())
    }
}

impl SigningKey for TbsCapture<'_> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let mut slot = self.tbs.lock().map_err(|_| rcgen::Error::RemoteKeyError)?;
        *slot = Some(message.to_vec());
        Ok(vec![0])
    }
}

/// The appliance CA: its key never leaves the HSM; rcgen builds the certificates.
pub struct CertificateAuthority {
    signer: Arc<dyn Signer>,
    params: CertificateParams,
    root: IssuedCertificate,
    leaf_validity: Duration,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("root_serial", &self.root.serial_hex)
            .finish()
    }
}

impl CertificateAuthority {
    /// Builds the CA and self-signs its root (one HSM signature). Persist [`Self::root`]'s DER
    /// and reopen with [`Self::with_root`], so the published trust root stays byte-identical.
    pub fn new(signer: Arc<dyn Signer>, profile: &CaProfile) -> Result<Self, SignerError> {
        let params = Self::root_params(&signer, profile)?;
        let key = HsmCaKey {
            signer: signer.as_ref(),
            error: Mutex::new(None),
        };
        let certificate = params
            .self_signed(&key)
            .map_err(|error| certificate_error(&profile.common_name, error, &key))?;
        let root = IssuedCertificate {
            der: certificate.der().to_vec(),
            pem: certificate.pem(),
            serial_hex: params
                .serial_number
                .as_ref()
                .map(|s| hex::encode(s.to_bytes()))
                .unwrap_or_default(),
            not_before: params.not_before,
            not_after: params.not_after,
            sct_embedded: false,
        };
        Ok(CertificateAuthority {
            signer,
            params,
            root,
            leaf_validity: profile.leaf_validity,
        })
    }

    /// Reopens the CA with a root certificate made earlier by [`Self::new`] with the same
    /// key and profile; refuses a root that does not hold this CA key.
    pub fn with_root(
        signer: Arc<dyn Signer>,
        profile: &CaProfile,
        root_der: &[u8],
    ) -> Result<Self, SignerError> {
        let params = Self::root_params(&signer, profile)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(root_der).map_err(|error| {
            SignerError::Certificate {
                subject: profile.common_name.clone(),
                reason: format!("stored root is not DER X.509: {error}"),
            }
        })?;
        if parsed.public_key().raw != signer.key().public_key.spki_der() {
            return Err(SignerError::Certificate {
                subject: profile.common_name.clone(),
                reason: format!(
                    "stored root does not hold the CA key {}",
                    signer.key().public_key.key_id()
                ),
            });
        }
        let root = IssuedCertificate {
            der: root_der.to_vec(),
            pem: pem_encode(root_der),
            serial_hex: hex::encode(parsed.raw_serial()),
            not_before: params.not_before,
            not_after: params.not_after,
            sct_embedded: false,
        };
        Ok(CertificateAuthority {
            signer,
            params,
            root,
            leaf_validity: profile.leaf_validity,
        })
    }

    fn root_params(
        signer: &Arc<dyn Signer>,
        profile: &CaProfile,
    ) -> Result<CertificateParams, SignerError> {
        if signer.algorithm() != KeyAlgorithm::EcdsaP256 {
            return Err(SignerError::WrongKeyAlgorithm {
                label: signer.key().label.to_string(),
                found: signer.algorithm().to_string(),
                expected: KeyAlgorithm::EcdsaP256.to_string(),
                purpose: "the CA key",
            });
        }
        let public_key = &signer.key().public_key;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, profile.organization.as_str());
        name.push(DnType::CommonName, profile.common_name.as_str());
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.not_before = profile.root_not_before;
        params.not_after = profile.root_not_before + profile.root_validity;
        // Derived, not random: the root's TBS is a pure function of key and profile.
        let mut serial = Sha256::digest(public_key.spki_der())[..16].to_vec();
        serial[0] &= 0x7f;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(public_key));
        Ok(params)
    }

    /// The root certificate.
    pub fn root(&self) -> &IssuedCertificate {
        &self.root
    }

    /// The CA's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.signer.key().public_key
    }

    /// Issues a short-lived leaf certificate for `subject_key` (the attestation key).
    ///
    /// `dev_signed` puts `DEV-SIGNED` into the subject's organisation, so a development
    /// signature can never pass for a production one. With `ct_log`, an SCT over the
    /// precertificate is embedded (RFC 6962 §3.2).
    #[allow(clippy::too_many_arguments)]
    pub fn issue_leaf(
        &self,
        subject_key: &PublicKey,
        identity: &SigningIdentity,
        oidc_issuer: &str,
        dev_signed: bool,
        clock: &dyn Clock,
        ct_log: Option<&CtLog>,
    ) -> Result<IssuedCertificate, SignerError> {
        let subject = identity.text().to_owned();
        let fail = |reason: String| SignerError::Certificate {
            subject: subject.clone(),
            reason,
        };
        let san_text = rcgen::string::Ia5String::try_from(identity.text())
            .map_err(|error| fail(format!("identity is not IA5 (ASCII): {error}")))?;
        let now = clock
            .now()
            .replace_nanosecond(0)
            .map_err(|error| fail(error.to_string()))?;

        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        if dev_signed {
            name.push(
                DnType::OrganizationName,
                "DEV-SIGNED (software key, not for production)",
            );
        }
        params.distinguished_name = name;
        params.subject_alt_names = vec![match identity {
            SigningIdentity::Uri(_) => SanType::URI(san_text),
            SigningIdentity::Email(_) => SanType::Rfc822Name(san_text),
        }];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.not_before = now;
        params.not_after = now + self.leaf_validity;
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(subject_key));
        let mut serial = [0u8; 16];
        OsRng.fill_bytes(&mut serial);
        serial[0] = (serial[0] & 0x7f) | 0x01;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.custom_extensions = vec![
            CustomExtension::from_oid_content(
                OIDC_ISSUER_LEGACY_OID,
                oidc_issuer.as_bytes().to_vec(),
            ),
            CustomExtension::from_oid_content(OIDC_ISSUER_OID, der_utf8_string(oidc_issuer)),
        ];

        // Issuer parameters carry the CA's key identifier (method PreSpecified), so the leaf's
        // AKI equals the root's SKI.
        let leaf_key = PublicOnly(subject_key);
        let sct_embedded = if let Some(ct_log) = ct_log {
            let capture = TbsCapture {
                ca_key: self.public_key(),
                tbs: Mutex::new(None),
            };
            params
                .signed_by(&leaf_key, &Issuer::from_params(&self.params, &capture))
                .map_err(|error| fail(format!("building the precertificate: {error}")))?;
            let tbs = capture
                .tbs
                .lock()
                .ok()
                .and_then(|mut slot| slot.take())
                .ok_or_else(|| {
                    fail("rcgen did not ask to sign the precertificate TBS".to_owned())
                })?;
            let issuer_key_hash: [u8; 32] = Sha256::digest(self.public_key().spki_der()).into();
            // Whole seconds: verifiers that turn the timestamp into a float (sigstore-python
            // via `datetime.timestamp()`) then reproduce it exactly.
            let timestamp_ms = u64::try_from(now.unix_timestamp())
                .map_err(|_| fail("clock is before 1970".to_owned()))?
                .saturating_mul(1000);
            let sct = ct_log.issue_sct(&issuer_key_hash, &tbs, timestamp_ms)?;
            // Last extension: removing it yields exactly the TBS the SCT signed.
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    SCT_LIST_OID,
                    sct_list_extension_content(&[sct])?,
                ));
            true
        } else {
            false
        };

        let key = HsmCaKey {
            signer: self.signer.as_ref(),
            error: Mutex::new(None),
        };
        let certificate = params
            .signed_by(&leaf_key, &Issuer::from_params(&self.params, &key))
            .map_err(|error| certificate_error(&subject, error, &key))?;
        Ok(IssuedCertificate {
            der: certificate.der().to_vec(),
            pem: certificate.pem(),
            serial_hex: hex::encode(serial),
            not_before: params.not_before,
            not_after: params.not_after,
            sct_embedded,
        })
    }
}

fn certificate_error(subject: &str, error: rcgen::Error, key: &HsmCaKey<'_>) -> SignerError {
    let hsm = key.error.lock().ok().and_then(|slot| slot.clone());
    SignerError::Certificate {
        subject: subject.to_owned(),
        reason: match hsm {
            Some(hsm) => format!("{error}: {hsm}"),
            None => error.to_string(),
        },
    }
}

fn pem_encode(der: &[u8]) -> String {
    p256::pkcs8::der::pem::encode_string("CERTIFICATE", p256::pkcs8::LineEnding::LF, der)
        .unwrap_or_default()
}

/// DER UTF8String (tag 12).
fn der_utf8_string(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = vec![0x0c];
    if bytes.len() < 0x80 {
        out.push(bytes.len() as u8);
    } else {
        let length = bytes.len().to_be_bytes();
        let first = length
            .iter()
            .position(|byte| *byte != 0)
            .unwrap_or(length.len() - 1);
        out.push(0x80 | (length.len() - first) as u8);
        out.extend_from_slice(&length[first..]);
    }
    out.extend_from_slice(bytes);
    out
}
