//! Signer: in-toto statements, DSSE envelopes, short-lived certificates, entitlement gate.
//!
//! Only this crate signs attestations, and it signs only through a [`stella_hsm::Signer`]:
//! the CA key, the attestation key and the CT log key stay in the HSM. The flow is
//! [`StatementBuilder`] → [`check_entitlement`] (which yields the [`Entitled`] proof
//! [`AttestationSigner::sign_statement`] requires) → DSSE envelope signed by the attestation
//! key + a ten-minute leaf certificate for that key, issued by the HSM-held CA with an
//! embedded SCT from the appliance-local CT log key.

mod ca;
mod clock;
mod dsse;
mod enrolment;
mod entitlement;
mod error;
mod release;
mod request;
mod sct;
mod service;
mod statement;

pub use ca::{
    CaProfile, CertificateAuthority, IssuedCertificate, OIDC_ISSUER_LEGACY_OID, OIDC_ISSUER_OID,
    SigningIdentity,
};
pub use clock::{Clock, FixedClock, SystemClock};
pub use dsse::{DsseSignature, Envelope, IN_TOTO_PAYLOAD_TYPE, Limits, pae};
pub use enrolment::{ENROLMENT_FORMAT, enrolment_request};
pub use entitlement::{
    Entitled, Entitlement, EntitlementRefusal, GateContext, RevocationList, SIGNING_QUOTA, SemVer,
    VendorSignature, check_entitlement,
};
pub use error::SignerError;
pub use release::{ReleaseIntegrity, ReleasePolicy, check_release};
pub use request::{PredicateKind, RequestLimits, RequestSubject, SignRequest};
pub use sct::{CtLog, SCT_LIST_OID};
pub use service::{
    AttestationSigner, AuditRecord, DEV_SIGNED_ANNOTATION, RELEASE_OVERRIDE_ANNOTATION,
    SignedAttestation,
};
pub use statement::{
    CYCLONEDX_PREDICATE_TYPE, POLICY_REPORT_PREDICATE_TYPE, PolicyReport, Predicate,
    SPDX_PREDICATE_TYPE, STATEMENT_TYPE, Sha256Digest, Statement, StatementBuilder, Subject,
};
