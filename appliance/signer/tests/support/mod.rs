//! Test support: a SoftHSM2 token per test (from `stella_hsm::testing`) and the signer fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unused_imports)]

pub use stella_hsm::testing::{
    SO_PIN, SOFTHSM_MODULE, TOKEN, USER_PIN, softhsm_token, write_softhsm_conf,
};

/// Test fixtures shared by the signer tests.
pub mod fixtures {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use stella_signer::{
        Entitled, Entitlement, GateContext, RevocationList, SIGNING_QUOTA, SemVer, VendorSignature,
        check_entitlement,
    };
    use time::OffsetDateTime;
    use time::macros::datetime;

    pub const NOW: OffsetDateTime = datetime!(2026-11-29 06:00:00 UTC);
    pub const VENDOR_KEY: &str = "vendor-key-2026";

    /// `tests/data/signer/<name>` at the repository root.
    pub fn data(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/signer")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// A licence that passes the gate for `installation_key_sha256` at [`NOW`].
    pub fn licence(installation_key_sha256: &str) -> Entitlement {
        Entitlement {
            licence_id: "lic-0123456789abcdef0123".to_owned(),
            customer: "CUST-ACME".to_owned(),
            plan: "pro".to_owned(),
            quotas: BTreeMap::from([(SIGNING_QUOTA.to_owned(), 100)]),
            valid_release_year: Some(2027),
            max_version: Some(SemVer::new(2, 9, 0)),
            expires: NOW + time::Duration::days(30),
            installation_key_sha256: installation_key_sha256.to_owned(),
            vendor_key_id: VENDOR_KEY.to_owned(),
            vendor_signature: VendorSignature::Verified,
        }
    }

    /// Runs the gate for a valid licence and returns the proof.
    pub fn entitled(installation_key_sha256: &str) -> Entitled {
        let trusted = BTreeSet::from([VENDOR_KEY.to_owned()]);
        let revocations = RevocationList::default();
        let version = SemVer::new(2, 3, 1);
        let context = GateContext {
            now: NOW,
            installation_key_sha256,
            trusted_vendor_keys: &trusted,
            revocations: &revocations,
            running_version: &version,
            running_release_year: 2026,
            signatures_used: 0,
        };
        check_entitlement(Some(&licence(installation_key_sha256)), &context).unwrap()
    }
}
