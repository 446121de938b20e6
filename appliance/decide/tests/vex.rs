//! VEX consensus with real documents (Red Hat CSAF VEX, the Node.js OpenVEX) parsed by the
//! importer: trust weights, justification gates, kept conflicts and explanations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use stella_decide::vex::{ClaimOutcome, VexConfig, claim_applies, consensus};
use stella_importer::VexClaim;
use stella_importer::sources::{csaf, openvex};
use stella_importer::vex::{VexFormat, VexStatus};

fn node_claims() -> Vec<VexClaim> {
    let parsed = openvex::parse("node.openvex.json", &common::read("vex/node.openvex.json"));
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.vex_claims
}

fn redhat_claims() -> Vec<VexClaim> {
    let parsed = csaf::parse(
        "CVE-2024-34500.json",
        &common::read("vex/CVE-2024-34500.json"),
    );
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.vex_claims
}

fn applicable<'a>(claims: &'a [VexClaim], purl: &str, vulnerability: &str) -> Vec<&'a VexClaim> {
    claims
        .iter()
        .filter(|c| c.vulnerability == vulnerability && claim_applies(c, purl))
        .collect()
}

fn ops_claim(status: VexStatus, justification: Option<&str>) -> VexClaim {
    VexClaim {
        product: "pkg:rpm/redhat/mediawiki".into(),
        subcomponents: vec![],
        vulnerability: "CVE-2024-34500".into(),
        status,
        justification: justification.map(str::to_owned),
        impact_statement: None,
        action_statement: None,
        provider: "Example Platform Team".into(),
        timestamp: Some("2024-06-01T00:00:00Z".into()),
        format: VexFormat::Openvex,
        document: "upload:platform-team-1".into(),
    }
}

#[test]
fn node_openvex_not_affected_applies_to_every_node_version() {
    let claims = node_claims();
    let purl = "pkg:nodejs/node@20.11.0";
    let found = applicable(&claims, purl, "CVE-2023-45853");
    assert_eq!(found.len(), 1);
    let decision = consensus(&found, &VexConfig::default());
    assert_eq!(decision.status, Some(VexStatus::NotAffected));
    assert_eq!(
        decision.justification.as_deref(),
        Some("vulnerable_code_not_present")
    );
    assert_eq!(decision.providers, ["Node.js Security WG"]);
    assert!(!decision.conflict);
    assert!(
        decision.explanation.contains("Node.js Security WG"),
        "{}",
        decision.explanation
    );
}

#[test]
fn node_openvex_fixed_applies_only_to_the_named_versions() {
    let claims = node_claims();
    // The document writes `pkg:nodejs/node@v18.16.1`; a component version without the `v` is
    // the same release.
    let fixed = applicable(&claims, "pkg:nodejs/node@18.16.1", "CVE-2023-30581");
    assert_eq!(
        consensus(&fixed, &VexConfig::default()).status,
        Some(VexStatus::Fixed)
    );
    assert!(applicable(&claims, "pkg:nodejs/node@18.16.0", "CVE-2023-30581").is_empty());
}

#[test]
fn justification_gate_rejects_not_affected_without_an_accepted_justification() {
    let claims = node_claims();
    let found = applicable(&claims, "pkg:nodejs/node@22.1.0", "CVE-2024-3156");
    let config = VexConfig {
        justifications: vec!["vulnerable_code_not_present".into()],
        ..VexConfig::default()
    };
    let decision = consensus(&found, &config);
    assert_eq!(decision.status, None);
    assert_eq!(decision.claims.len(), 1, "the rejected claim is kept");
    assert_eq!(
        decision.claims[0].outcome,
        ClaimOutcome::JustificationRejected
    );
    // The same claim counts when the policy accepts its justification.
    let accepting = VexConfig {
        justifications: vec!["vulnerable_code_not_in_execute_path".into()],
        ..VexConfig::default()
    };
    assert_eq!(
        consensus(&found, &accepting).status,
        Some(VexStatus::NotAffected)
    );
}

#[test]
fn redhat_csaf_claim_applies_to_the_source_rpm_of_any_version() {
    let claims = redhat_claims();
    let found = applicable(
        &claims,
        "pkg:rpm/redhat/mediawiki@1.40.0-1.el9?arch=src",
        "CVE-2024-34500",
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].provider, "Red Hat Product Security");
    assert_eq!(
        consensus(&found, &VexConfig::default()).status,
        Some(VexStatus::Affected)
    );
}

#[test]
fn conflicting_claims_are_kept_and_trust_weights_decide() {
    let redhat = redhat_claims();
    let ops = ops_claim(
        VexStatus::NotAffected,
        Some("vulnerable_code_not_in_execute_path"),
    );
    let purl = "pkg:rpm/redhat/mediawiki@1.40.0-1.el9?arch=src";
    let mut claims: Vec<&VexClaim> = applicable(&redhat, purl, "CVE-2024-34500");
    claims.push(&ops);
    assert!(claim_applies(&ops, purl));

    let trust = |redhat: f64, ops: f64| VexConfig {
        trust: BTreeMap::from([
            ("Red Hat Product Security".to_owned(), redhat),
            ("Example Platform Team".to_owned(), ops),
        ]),
        ..VexConfig::default()
    };
    let vendor_wins = consensus(&claims, &trust(1.0, 0.5));
    assert_eq!(vendor_wins.status, Some(VexStatus::Affected));
    assert!(vendor_wins.conflict);
    assert_eq!(vendor_wins.claims.len(), 2);
    let outcomes: Vec<(String, ClaimOutcome)> = vendor_wins
        .claims
        .iter()
        .map(|c| (c.provider.clone(), c.outcome))
        .collect();
    assert!(outcomes.contains(&("Red Hat Product Security".into(), ClaimOutcome::Won)));
    assert!(outcomes.contains(&("Example Platform Team".into(), ClaimOutcome::Outvoted)));
    assert!(
        vendor_wins.explanation.contains("against not_affected"),
        "{}",
        vendor_wins.explanation
    );

    let team_wins = consensus(&claims, &trust(1.0, 2.0));
    assert_eq!(team_wins.status, Some(VexStatus::NotAffected));
    assert_eq!(team_wins.providers, ["Example Platform Team"]);

    // Equal weights: the cautious status wins.
    assert_eq!(
        consensus(&claims, &trust(1.0, 1.0)).status,
        Some(VexStatus::Affected)
    );

    // Weight 0 ignores a provider entirely.
    let untrusted = consensus(&claims, &trust(0.0, 0.5));
    assert_eq!(untrusted.status, Some(VexStatus::NotAffected));
    assert!(
        untrusted
            .claims
            .iter()
            .any(|c| c.outcome == ClaimOutcome::Untrusted)
    );
}

#[test]
fn a_newer_claim_from_the_same_provider_supersedes_the_older() {
    let older = ops_claim(VexStatus::UnderInvestigation, None);
    let mut newer = ops_claim(VexStatus::NotAffected, Some("component_not_present"));
    newer.timestamp = Some("2024-07-01T00:00:00Z".into());
    let decision = consensus(&[&older, &newer], &VexConfig::default());
    assert_eq!(decision.status, Some(VexStatus::NotAffected));
    assert!(!decision.conflict);
    assert!(
        decision
            .claims
            .iter()
            .any(|c| c.outcome == ClaimOutcome::Superseded)
    );
}
