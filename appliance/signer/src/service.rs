//! The signing service the daemon calls: statement → DSSE envelope + short-lived certificate.

use std::sync::Arc;

use stella_hsm::{KeyAlgorithm, KeyRole, KeySource, Signer};

use crate::{
    CaProfile, CertificateAuthority, Clock, CtLog, Entitled, Envelope, IN_TOTO_PAYLOAD_TYPE,
    IssuedCertificate, ReleaseIntegrity, SignerError, SigningIdentity, Statement,
};

/// Annotation set on every subject of a statement signed with a development key.
pub const DEV_SIGNED_ANNOTATION: &str = "stella-ops.org/dev-signed";
/// Annotation set on every subject when the release-integrity check was overridden.
pub const RELEASE_OVERRIDE_ANNOTATION: &str = "stella-ops.org/release-check-overridden";

/// The result of one signing: what the attestor turns into a Sigstore bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAttestation {
    /// The signed DSSE envelope.
    pub envelope: Envelope,
    /// The exact statement bytes (the envelope's payload).
    pub statement_json: Vec<u8>,
    /// The short-lived leaf certificate for the attestation key.
    pub certificate: IssuedCertificate,
    /// The CA root (PEM) the leaf chains to.
    pub root_pem: String,
    /// Attestation key id (hex SHA-256 of its SPKI).
    pub key_id: String,
    /// Licence id that allowed the signing (audit).
    pub licence_id: String,
    /// True when any key involved is a development software key.
    pub dev_signed: bool,
    /// The release-integrity check in force when this was signed.
    pub release: ReleaseIntegrity,
}

/// What every signing leaves in the audit log (issue 8 item 7).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    /// Licence that allowed the signing.
    pub licence_id: String,
    /// `sha256:` digest of the first subject (the image).
    pub image_digest: Option<String>,
    /// The predicate's `policy_digest`, when it has one (policy reports).
    pub policy_digest: Option<String>,
    /// The statement's predicate type.
    pub predicate_type: Option<String>,
    /// Attestation key id.
    pub key_id: String,
    /// Leaf certificate serial (hex).
    pub certificate_serial: String,
    /// Leaf certificate validity start (RFC 3339).
    pub signed_at: String,
    /// Whether a development key signed.
    pub dev_signed: bool,
    /// The release-integrity check in force.
    pub release: ReleaseIntegrity,
    /// Transparency-log index, once the attestor has logged the envelope.
    pub log_index: Option<u64>,
}

impl SignedAttestation {
    /// The audit record of this signing (`log_index` is filled in by the attestor).
    pub fn audit_record(&self) -> AuditRecord {
        let statement: serde_json::Value =
            serde_json::from_slice(&self.statement_json).unwrap_or_default();
        let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
        AuditRecord {
            licence_id: self.licence_id.clone(),
            image_digest: text(&statement["subject"][0]["digest"]["sha256"])
                .map(|hex| format!("sha256:{hex}")),
            policy_digest: text(&statement["predicate"]["policy_digest"]),
            predicate_type: text(&statement["predicateType"]),
            key_id: self.key_id.clone(),
            certificate_serial: self.certificate.serial_hex.clone(),
            signed_at: self
                .certificate
                .not_before
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            dev_signed: self.dev_signed,
            release: self.release.clone(),
            log_index: None,
        }
    }
}

/// What `GET /api/signer/status` shows about the signer itself (the entitlement part comes
/// from the gate, the key part from `stella_hsm::key_status`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignerStatus {
    /// Attestation key id.
    pub attestation_key_id: String,
    /// Where the attestation key signs (`pkcs11:<token>`, `yubihsm`, `dev-software`).
    pub provenance: stella_hsm::Provenance,
    /// True when development software keys sign.
    pub dev_signed: bool,
    /// The release-integrity check in force.
    pub release: ReleaseIntegrity,
    /// The SAN identity of the leaf certificates.
    pub identity: String,
    /// The OIDC issuer written into the leaf certificates.
    pub oidc_issuer: String,
    /// Root certificate serial (hex) and end of validity (RFC 3339).
    pub root_serial: String,
    /// End of the root's validity.
    pub root_not_after: String,
    /// Hex CT log id, when SCTs are embedded.
    pub ct_log_id: Option<String>,
}

/// Signs statements with the attestation key, certifies that key per signing with the CA.
pub struct AttestationSigner {
    attestation: Arc<dyn Signer>,
    ca: CertificateAuthority,
    ct_log: Option<CtLog>,
    clock: Arc<dyn Clock>,
    identity: SigningIdentity,
    oidc_issuer: String,
    release: ReleaseIntegrity,
}

// The daemon shares one signer across request handlers.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AttestationSigner>();
};

impl std::fmt::Debug for AttestationSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationSigner")
            .field("key_id", &self.attestation.key().public_key.key_id())
            .field("identity", &self.identity)
            .field("oidc_issuer", &self.oidc_issuer)
            .finish()
    }
}

impl AttestationSigner {
    /// Assembles a signer from its parts. The attestation key must be ECDSA P-256: stock
    /// Sigstore verifiers only accept EC keys in signing certificates.
    pub fn new(
        attestation: Arc<dyn Signer>,
        ca: CertificateAuthority,
        ct_log: Option<CtLog>,
        clock: Arc<dyn Clock>,
        identity: SigningIdentity,
        oidc_issuer: &str,
    ) -> Result<Self, SignerError> {
        if attestation.algorithm() != KeyAlgorithm::EcdsaP256 {
            return Err(SignerError::WrongKeyAlgorithm {
                label: attestation.key().label.to_string(),
                found: attestation.algorithm().to_string(),
                expected: KeyAlgorithm::EcdsaP256.to_string(),
                purpose: "the attestation key",
            });
        }
        Ok(AttestationSigner {
            attestation,
            ca,
            ct_log,
            clock,
            identity,
            oidc_issuer: oidc_issuer.to_owned(),
            release: ReleaseIntegrity::NotConfigured,
        })
    }

    /// Opens the ceremony keys ([`KeyRole`] labels) of `source`. `root_der` is the persisted
    /// root certificate, if one was made before (else a new root is self-signed).
    pub fn from_key_source(
        source: &dyn KeySource,
        profile: &CaProfile,
        root_der: Option<&[u8]>,
        clock: Arc<dyn Clock>,
        identity: SigningIdentity,
        oidc_issuer: &str,
    ) -> Result<Self, SignerError> {
        let ca_signer = source.signer(&KeyRole::CertificateAuthority.label()?)?;
        let ca = match root_der {
            Some(root_der) => CertificateAuthority::with_root(ca_signer, profile, root_der)?,
            None => CertificateAuthority::new(ca_signer, profile)?,
        };
        let ct_log = CtLog::new(source.signer(&KeyRole::CtLog.label()?)?)?;
        let attestation = source.signer(&KeyRole::Attestation.label()?)?;
        AttestationSigner::new(attestation, ca, Some(ct_log), clock, identity, oidc_issuer)
    }

    /// The CA (root certificate, public key) for the trusted root.
    pub fn certificate_authority(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The CT log (public key, log id) for the trusted root.
    pub fn ct_log(&self) -> Option<&CtLog> {
        self.ct_log.as_ref()
    }

    /// Records the start-up release check ([`crate::check_release`]); a
    /// [`ReleaseIntegrity::DevOverride`] is then stamped on every attestation.
    pub fn set_release_integrity(&mut self, release: ReleaseIntegrity) {
        self.release = release;
    }

    /// The recorded release check.
    pub fn release_integrity(&self) -> &ReleaseIntegrity {
        &self.release
    }

    /// The signer's status for `GET /api/signer/status`.
    pub fn status(&self) -> SignerStatus {
        SignerStatus {
            attestation_key_id: self.attestation.key().public_key.key_id(),
            provenance: self.attestation.provenance(),
            dev_signed: self.attestation.dev_signed(),
            release: self.release.clone(),
            identity: match &self.identity {
                SigningIdentity::Uri(text) | SigningIdentity::Email(text) => text.clone(),
            },
            oidc_issuer: self.oidc_issuer.clone(),
            root_serial: self.ca.root().serial_hex.clone(),
            root_not_after: self
                .ca
                .root()
                .not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            ct_log_id: self.ct_log.as_ref().map(|log| hex::encode(log.log_id())),
        }
    }

    /// True when signatures are made with development software keys.
    pub fn dev_signed(&self) -> bool {
        self.attestation.dev_signed()
    }

    /// Signs `statement` for an entitled installation: DSSE over its canonical JSON, plus a
    /// fresh leaf certificate. Development keys stamp every subject with
    /// [`DEV_SIGNED_ANNOTATION`] and the certificate subject with `DEV-SIGNED`.
    pub fn sign_statement(
        &self,
        mut statement: Statement,
        entitled: &Entitled,
    ) -> Result<SignedAttestation, SignerError> {
        let dev_signed = self.attestation.dev_signed();
        if dev_signed {
            for subject in &mut statement.subject {
                subject.annotations.insert(
                    DEV_SIGNED_ANNOTATION.to_owned(),
                    serde_json::Value::Bool(true),
                );
            }
        }
        if self.release == ReleaseIntegrity::DevOverride {
            for subject in &mut statement.subject {
                subject.annotations.insert(
                    RELEASE_OVERRIDE_ANNOTATION.to_owned(),
                    serde_json::Value::Bool(true),
                );
            }
        }
        let statement_json = statement.to_canonical_json()?;
        let envelope = Envelope::sign(
            IN_TOTO_PAYLOAD_TYPE,
            &statement_json,
            self.attestation.as_ref(),
        )?;
        let certificate = self.ca.issue_leaf(
            &self.attestation.key().public_key,
            &self.identity,
            &self.oidc_issuer,
            dev_signed,
            self.clock.as_ref(),
            self.ct_log.as_ref(),
        )?;
        Ok(SignedAttestation {
            envelope,
            statement_json,
            certificate,
            root_pem: self.ca.root().pem.clone(),
            key_id: self.attestation.key().public_key.key_id(),
            licence_id: entitled.licence_id().to_owned(),
            dev_signed,
            release: self.release.clone(),
        })
    }
}
