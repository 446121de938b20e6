//! The entitlement gate: a pure function deciding whether this installation may sign now.
//!
//! The kit importer verifies and installs licence and revocation documents; it converts a
//! verified licence into an [`Entitlement`] (recording which vendor key signed it and whether
//! that signature verified). The gate then checks it against the appliance's own facts in a
//! [`GateContext`]: the clock, the HSM installation key, the configured vendor keys, the
//! revocation list, the running version and the signing count. Each refusal is its own
//! variant with a stable code and a sentence the console shows next to the 403.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use semver::Version as SemVer;

/// Name of the quota the signer consumes (per quota period; absent = unlimited).
pub const SIGNING_QUOTA: &str = "signatures_per_month";

/// The outcome of verifying the vendor's signature over the licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "reason")]
pub enum VendorSignature {
    /// The signature verified with the key `vendor_key_id` names.
    Verified,
    /// The signature did not verify; the reason says why.
    Failed(String),
}

/// A licence (proof of entitlement) as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    /// Licence id.
    pub licence_id: String,
    /// Customer id.
    pub customer: String,
    /// Plan name.
    pub plan: String,
    /// Named quotas (see [`SIGNING_QUOTA`]).
    pub quotas: BTreeMap<String, u64>,
    /// Latest release year the licence covers, if limited.
    pub valid_release_year: Option<u16>,
    /// Highest appliance version the licence covers, if limited.
    pub max_version: Option<SemVer>,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Hex SHA-256 fingerprint of the installation key the licence is bound to.
    pub installation_key_sha256: String,
    /// Key id of the vendor key that signed the licence.
    pub vendor_key_id: String,
    /// Whether that signature verified.
    pub vendor_signature: VendorSignature,
}

/// Licence ids the vendor has revoked (from the newest revocation list a kit brought).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationList {
    /// Revoked licence id → revocation time (RFC 3339, informational).
    pub revoked: BTreeMap<String, String>,
}

/// What the appliance knows at signing time.
#[derive(Debug, Clone)]
pub struct GateContext<'a> {
    /// Now (from the signer's clock).
    pub now: OffsetDateTime,
    /// Hex SHA-256 fingerprint of this installation's identity key (from the HSM).
    pub installation_key_sha256: &'a str,
    /// Vendor key ids the appliance trusts (`[licence] vendor_keys`).
    pub trusted_vendor_keys: &'a BTreeSet<String>,
    /// Revoked licences.
    pub revocations: &'a RevocationList,
    /// Version of the running appliance.
    pub running_version: &'a SemVer,
    /// Release year of the running appliance.
    pub running_release_year: u16,
    /// Signatures already made in the current quota period.
    pub signatures_used: u64,
}

/// Why the gate refused to sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "kebab-case", tag = "code")]
#[non_exhaustive]
pub enum EntitlementRefusal {
    /// No licence is installed (community mode: scan and report, never sign).
    #[error(
        "no proof of entitlement is installed; this appliance runs in community mode and signs nothing"
    )]
    NoProof,
    /// The vendor signature over the licence did not verify.
    #[error("licence {licence_id}: the vendor signature does not verify: {reason}")]
    BadVendorSignature { licence_id: String, reason: String },
    /// The licence was signed by a key not in `[licence] vendor_keys`.
    #[error(
        "licence {licence_id} is signed by vendor key {key_id}, which is not in [licence] vendor_keys"
    )]
    UnknownVendorKey { licence_id: String, key_id: String },
    /// The licence is on the revocation list.
    #[error("licence {licence_id} was revoked at {revoked_at}")]
    Revoked {
        licence_id: String,
        revoked_at: String,
    },
    /// The licence has expired.
    #[error("licence {licence_id} expired at {expired}")]
    Expired { licence_id: String, expired: String },
    /// The licence belongs to another installation key.
    #[error(
        "licence {licence_id} is bound to installation key {licence_key}, but this appliance's key is {installation_key}"
    )]
    BoundToAnotherKey {
        licence_id: String,
        licence_key: String,
        installation_key: String,
    },
    /// The running version is above the licence's `max_version`.
    #[error(
        "licence {licence_id} covers versions up to {max_version}; this appliance runs {running}"
    )]
    VersionTooNew {
        licence_id: String,
        max_version: String,
        running: String,
    },
    /// The running release is from a later year than `valid_release_year`.
    #[error(
        "licence {licence_id} covers releases up to {valid_release_year}; this release is from {running_year}"
    )]
    ReleaseYearTooNew {
        licence_id: String,
        valid_release_year: u16,
        running_year: u16,
    },
    /// The plan's signing quota is used up.
    #[error("licence {licence_id}: the {quota} quota of {limit} is spent ({used} used)")]
    QuotaSpent {
        licence_id: String,
        quota: String,
        limit: u64,
        used: u64,
    },
}

impl EntitlementRefusal {
    /// A stable machine-readable code (the API's `reason` field).
    pub fn code(&self) -> &'static str {
        match self {
            EntitlementRefusal::NoProof => "no-proof",
            EntitlementRefusal::BadVendorSignature { .. } => "bad-vendor-signature",
            EntitlementRefusal::UnknownVendorKey { .. } => "unknown-vendor-key",
            EntitlementRefusal::Revoked { .. } => "revoked",
            EntitlementRefusal::Expired { .. } => "expired",
            EntitlementRefusal::BoundToAnotherKey { .. } => "bound-to-another-key",
            EntitlementRefusal::VersionTooNew { .. } => "version-too-new",
            EntitlementRefusal::ReleaseYearTooNew { .. } => "release-year-too-new",
            EntitlementRefusal::QuotaSpent { .. } => "quota-spent",
        }
    }
}

/// Proof that the gate passed; [`crate::AttestationSigner::sign_statement`] requires one.
/// Only [`check_entitlement`] makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitled {
    licence_id: String,
    customer: String,
    plan: String,
}

impl Entitled {
    /// The licence id (for the predicate and the audit log).
    pub fn licence_id(&self) -> &str {
        &self.licence_id
    }
    /// The customer id.
    pub fn customer(&self) -> &str {
        &self.customer
    }
    /// The plan.
    pub fn plan(&self) -> &str {
        &self.plan
    }
}

/// Decides whether signing is allowed. Pure: no clock, no I/O.
pub fn check_entitlement(
    entitlement: Option<&Entitlement>,
    context: &GateContext<'_>,
) -> Result<Entitled, EntitlementRefusal> {
    let Some(licence) = entitlement else {
        return Err(EntitlementRefusal::NoProof);
    };
    let licence_id = licence.licence_id.clone();
    if !context.trusted_vendor_keys.contains(&licence.vendor_key_id) {
        return Err(EntitlementRefusal::UnknownVendorKey {
            licence_id,
            key_id: licence.vendor_key_id.clone(),
        });
    }
    if let VendorSignature::Failed(reason) = &licence.vendor_signature {
        return Err(EntitlementRefusal::BadVendorSignature {
            licence_id,
            reason: reason.clone(),
        });
    }
    if let Some(revoked_at) = context.revocations.revoked.get(&licence.licence_id) {
        return Err(EntitlementRefusal::Revoked {
            licence_id,
            revoked_at: revoked_at.clone(),
        });
    }
    if context.now >= licence.expires {
        return Err(EntitlementRefusal::Expired {
            licence_id,
            expired: licence
                .expires
                .format(&Rfc3339)
                .unwrap_or_else(|_| licence.expires.to_string()),
        });
    }
    if !licence
        .installation_key_sha256
        .eq_ignore_ascii_case(context.installation_key_sha256)
    {
        return Err(EntitlementRefusal::BoundToAnotherKey {
            licence_id,
            licence_key: licence.installation_key_sha256.clone(),
            installation_key: context.installation_key_sha256.to_owned(),
        });
    }
    if let Some(max_version) = &licence.max_version
        && context.running_version > max_version
    {
        return Err(EntitlementRefusal::VersionTooNew {
            licence_id,
            max_version: max_version.to_string(),
            running: context.running_version.to_string(),
        });
    }
    if let Some(valid_release_year) = licence.valid_release_year
        && context.running_release_year > valid_release_year
    {
        return Err(EntitlementRefusal::ReleaseYearTooNew {
            licence_id,
            valid_release_year,
            running_year: context.running_release_year,
        });
    }
    if let Some(limit) = licence.quotas.get(SIGNING_QUOTA).copied()
        && context.signatures_used >= limit
    {
        return Err(EntitlementRefusal::QuotaSpent {
            licence_id,
            quota: SIGNING_QUOTA.to_owned(),
            limit,
            used: context.signatures_used,
        });
    }
    Ok(Entitled {
        licence_id,
        customer: licence.customer.clone(),
        plan: licence.plan.clone(),
    })
}
