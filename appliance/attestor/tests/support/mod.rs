//! Test support: a SoftHSM2 token per test (from `stella_hsm::testing`), the appliance parts,
//! fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unused_imports)]

pub use stella_hsm::testing::{
    SO_PIN, SOFTHSM_MODULE, TOKEN, USER_PIN, softhsm_token, write_softhsm_conf,
};

/// Prints a SKIP line to the process's stderr directly, past libtest's output capture.
#[macro_export]
macro_rules! loud_skip {
    ($($arg:tt)*) => {
        stella_hsm::testing::loud_skip(&format!($($arg)*))
    };
}

/// Test fixtures shared by the signer tests.
pub mod fixtures {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use stella_signer::{
        Entitled, Entitlement, GateContext, Predicate, RevocationList, SIGNING_QUOTA, SemVer,
        Sha256Digest, Statement, StatementBuilder, VendorSignature, check_entitlement,
    };
    use time::OffsetDateTime;
    use time::macros::datetime;

    pub const NOW: OffsetDateTime = datetime!(2026-11-29 06:00:00 UTC);
    pub const VENDOR_KEY: &str = "vendor-key-2026";

    /// `tests/data/attestor/<name>` at the repository root.
    pub fn data(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/attestor")
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

    /// The SBOM artefact the test attestations cover, and a statement for it.
    pub fn sbom_statement() -> (Vec<u8>, Statement) {
        let sbom = data("sbom.cdx.json");
        let statement =
            StatementBuilder::new("registry.example/app", Sha256Digest::of(b"image manifest"))
                .sbom_subject("sbom.cdx.json", &sbom)
                .build(Predicate::CycloneDx(serde_json::from_slice(&sbom).unwrap()))
                .unwrap();
        (sbom, statement)
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

/// The appliance's signing parts on one key source.
pub mod appliance {
    use std::path::Path;
    use std::sync::Arc;

    use stella_attestor::{CheckpointSigner, TimestampAuthority, TransparencyLog, TrustMaterial};
    use stella_hsm::{KeyRole, KeySource, init_appliance_keys};
    use stella_signer::{AttestationSigner, CaProfile, FixedClock, SigningIdentity};

    use super::fixtures::NOW;

    pub const IDENTITY: &str = "https://appliance.stella.test/signer";
    pub const OIDC_ISSUER: &str = "https://appliance.stella.test/oidc";
    pub const ORIGIN: &str = "appliance.stella.test/log";
    pub const ORGANIZATION: &str = "ACME test appliance";
    pub const CA_NAME: &str = "Stella Ops Appliance Root CA";

    pub struct Parts {
        pub signer: AttestationSigner,
        pub log: TransparencyLog,
        pub tsa: TimestampAuthority,
        pub trust: TrustMaterial,
    }

    pub fn checkpoint_signer(source: &dyn KeySource) -> CheckpointSigner {
        CheckpointSigner::new(
            source
                .signer(&KeyRole::TlogCheckpoint.label().unwrap())
                .unwrap(),
            ORIGIN,
        )
        .unwrap()
    }

    pub fn build(source: &dyn KeySource, log_dir: &Path) -> Parts {
        init_appliance_keys(source).unwrap();
        let clock = Arc::new(FixedClock(NOW));
        let profile = CaProfile::new(CA_NAME, ORGANIZATION, NOW - time::Duration::days(1));
        let signer = AttestationSigner::from_key_source(
            source,
            &profile,
            None,
            clock.clone(),
            SigningIdentity::Uri(IDENTITY.to_owned()),
            OIDC_ISSUER,
        )
        .unwrap();
        let log = TransparencyLog::open(log_dir, checkpoint_signer(source)).unwrap();
        let tsa = TimestampAuthority::create(
            source
                .signer(&KeyRole::Timestamping.label().unwrap())
                .unwrap(),
            clock,
            ORGANIZATION,
            NOW - time::Duration::days(1),
            time::Duration::days(3653),
        )
        .unwrap();
        let trust = TrustMaterial::new(
            "https://appliance.stella.test",
            ORGANIZATION,
            signer.certificate_authority(),
            CA_NAME,
            signer.ct_log().unwrap(),
            &log,
            &tsa,
            NOW - time::Duration::days(1),
        );
        Parts {
            signer,
            log,
            tsa,
            trust,
        }
    }
}
