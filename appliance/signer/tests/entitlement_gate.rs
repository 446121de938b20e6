//! The entitlement gate: one test per refusal, plus the licence that passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use stella_signer::{
    Entitlement, EntitlementRefusal, GateContext, RevocationList, SIGNING_QUOTA, SemVer,
    VendorSignature, check_entitlement,
};
use support::fixtures::{NOW, VENDOR_KEY, licence};

const KEY: &str = "8f4c0a3bde3c5e1f2a9b7c6d5e4f30211234567890abcdef1234567890abcdef";

struct World {
    trusted: BTreeSet<String>,
    revocations: RevocationList,
    version: SemVer,
    release_year: u16,
    used: u64,
}

impl World {
    fn new() -> Self {
        World {
            trusted: BTreeSet::from([VENDOR_KEY.to_owned()]),
            revocations: RevocationList::default(),
            version: SemVer::new(2, 3, 1),
            release_year: 2026,
            used: 0,
        }
    }

    fn check(
        &self,
        entitlement: Option<&Entitlement>,
    ) -> Result<stella_signer::Entitled, EntitlementRefusal> {
        let context = GateContext {
            now: NOW,
            installation_key_sha256: KEY,
            trusted_vendor_keys: &self.trusted,
            revocations: &self.revocations,
            running_version: &self.version,
            running_release_year: self.release_year,
            signatures_used: self.used,
        };
        check_entitlement(entitlement, &context)
    }
}

fn refusal(world: &World, entitlement: Option<&Entitlement>) -> EntitlementRefusal {
    world.check(entitlement).expect_err("the gate must refuse")
}

#[test]
fn a_valid_licence_is_entitled() {
    let entitled = World::new().check(Some(&licence(KEY))).unwrap();
    assert_eq!(entitled.licence_id(), "lic-0123456789abcdef0123");
    assert_eq!(entitled.customer(), "CUST-ACME");
    assert_eq!(entitled.plan(), "pro");
}

#[test]
fn no_proof_is_refused() {
    let refusal = refusal(&World::new(), None);
    assert_eq!(refusal, EntitlementRefusal::NoProof);
    assert_eq!(refusal.code(), "no-proof");
    assert!(refusal.to_string().contains("community mode"));
}

#[test]
fn expired_licence_is_refused() {
    let mut expired = licence(KEY);
    expired.expires = NOW;
    let refusal = refusal(&World::new(), Some(&expired));
    assert_eq!(refusal.code(), "expired");
    assert!(
        refusal.to_string().contains("2026-11-29T06:00:00Z"),
        "{refusal}"
    );
}

#[test]
fn revoked_licence_is_refused() {
    let mut world = World::new();
    world.revocations.revoked = BTreeMap::from([(
        "lic-0123456789abcdef0123".to_owned(),
        "2026-11-01T00:00:00Z".to_owned(),
    )]);
    let refusal = refusal(&world, Some(&licence(KEY)));
    assert_eq!(refusal.code(), "revoked");
    assert!(refusal.to_string().contains("2026-11-01T00:00:00Z"));
}

#[test]
fn licence_bound_to_another_installation_key_is_refused() {
    let other = licence(&"00".repeat(32));
    let refusal = refusal(&World::new(), Some(&other));
    assert_eq!(refusal.code(), "bound-to-another-key");
    assert!(refusal.to_string().contains(KEY));
}

#[test]
fn licence_signed_by_an_unknown_vendor_key_is_refused() {
    let mut foreign = licence(KEY);
    foreign.vendor_key_id = "someone-else".to_owned();
    let refusal = refusal(&World::new(), Some(&foreign));
    assert_eq!(
        refusal,
        EntitlementRefusal::UnknownVendorKey {
            licence_id: foreign.licence_id.clone(),
            key_id: "someone-else".to_owned()
        }
    );
}

#[test]
fn licence_with_a_bad_vendor_signature_is_refused() {
    let mut forged = licence(KEY);
    forged.vendor_signature = VendorSignature::Failed("signature mismatch".to_owned());
    assert_eq!(
        refusal(&World::new(), Some(&forged)).code(),
        "bad-vendor-signature"
    );
}

#[test]
fn running_version_above_max_version_is_refused() {
    let mut world = World::new();
    world.version = SemVer::new(3, 0, 0);
    let refusal = refusal(&world, Some(&licence(KEY)));
    assert_eq!(refusal.code(), "version-too-new");
    assert!(refusal.to_string().contains("2.9.0") && refusal.to_string().contains("3.0.0"));
    world.version = SemVer::new(2, 9, 0);
    world.check(Some(&licence(KEY))).unwrap();
}

#[test]
fn release_after_valid_release_year_is_refused() {
    let mut world = World::new();
    world.release_year = 2028;
    assert_eq!(
        refusal(&world, Some(&licence(KEY))).code(),
        "release-year-too-new"
    );
    world.release_year = 2027;
    world.check(Some(&licence(KEY))).unwrap();
}

#[test]
fn spent_signing_quota_is_refused() {
    let mut world = World::new();
    world.used = 99;
    world.check(Some(&licence(KEY))).unwrap();
    world.used = 100;
    let refusal = refusal(&world, Some(&licence(KEY)));
    assert_eq!(refusal.code(), "quota-spent");
    assert!(refusal.to_string().contains(SIGNING_QUOTA));
    let mut unlimited = licence(KEY);
    unlimited.quotas.clear();
    world.check(Some(&unlimited)).unwrap();
}

#[test]
fn refusals_serialise_with_their_code_for_the_api() {
    let json = serde_json::to_value(refusal(&World::new(), None)).unwrap();
    assert_eq!(json["code"], "no-proof");
}
