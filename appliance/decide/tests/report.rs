//! Reports end to end: verdicts, rules, VEX, KEV/EPSS, waivers and the clock, usage-gated
//! policy, licences, and byte-identical canonical JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use stella_core::FixedClock;
use stella_decide::report::{FindingVerdict, Verdict};
use stella_decide::{Component, MemorySource, Policy, Report, Snapshot, Subject, evaluate};
use stella_importer::VexClaim;
use stella_importer::model::{EpssEntry, KevEntry};
use stella_importer::vex::{VexFormat, VexStatus};

const JAN_2026: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const JAN_2027: u64 = 1_798_761_600; // 2027-01-01T00:00:00Z

fn subject() -> Subject {
    Subject {
        image: Some("registry.local/team/app:1.4".into()),
        image_digest: Some(format!("sha256:{}", "a".repeat(64))),
        repo: Some("registry.local/team/app".into()),
        env: Some("prod".into()),
        sbom_digest: format!("sha256:{}", "b".repeat(64)),
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        kit_id: "stella-kit-2026-11-29".into(),
        sequence: 42,
    }
}

fn components() -> Vec<Component> {
    vec![
        common::debian("libcurl4", "curl", "7.74.0-1.3+deb11u5", "11"),
        common::debian("libapr1", "apr", "1.7.0-6+deb11u2", "11"),
        common::language("PyPI", "pypi", "urllib3", "1.26.4"),
        common::language("npm", "npm", "bassmaster", "1.5.1"),
    ]
}

fn policy(text: &str) -> Policy {
    Policy::parse("test.yaml", text.as_bytes()).unwrap()
}

fn run(
    components: &[Component],
    source: &MemorySource,
    vex: &[VexClaim],
    policy: &Policy,
    now: u64,
) -> Report {
    evaluate(
        &subject(),
        components,
        source,
        vex,
        policy,
        &FixedClock(now),
        &snapshot(),
    )
    .unwrap()
}

#[test]
fn same_inputs_give_byte_identical_reports() {
    let source = common::e2e_source();
    let policy = Policy::default_policy().unwrap();
    let a = run(&components(), &source, &[], &policy, JAN_2026);
    let mut shuffled = components();
    shuffled.reverse();
    let b = run(&shuffled, &common::e2e_source(), &[], &policy, JAN_2026);
    let json_a = a.to_canonical_json().unwrap();
    assert_eq!(json_a, b.to_canonical_json().unwrap());
    assert!(!a.findings.is_empty());
    // The clock is an input: another evaluation time is another report.
    let c = run(&components(), &source, &[], &policy, JAN_2027);
    assert_ne!(json_a, c.to_canonical_json().unwrap());
}

#[test]
fn json_form_carries_the_documented_fields() {
    let source = common::e2e_source();
    let policy = Policy::default_policy().unwrap();
    let report = run(&components(), &source, &[], &policy, JAN_2026);
    let json: serde_json::Value =
        serde_json::from_str(&report.to_canonical_json().unwrap()).unwrap();
    assert_eq!(json["schema"], "stella.report/v1");
    assert!(json["verdict"] == "PASS" || json["verdict"] == "FAIL");
    assert_eq!(json["advisories"]["kitId"], "stella-kit-2026-11-29");
    assert_eq!(json["advisories"]["sequence"], 42);
    assert_eq!(
        json["subject"]["sbomDigest"],
        format!("sha256:{}", "b".repeat(64))
    );
    assert_eq!(json["policy"]["digest"], policy.digest().unwrap());
    assert_eq!(json["evaluatedAt"], "2026-01-01T00:00:00Z");
    for level in ["critical", "high", "medium", "low", "none", "unknown"] {
        assert!(json["counts"]["bySeverity"][level].is_u64(), "{level}");
    }
    let findings = json["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for finding in findings {
        assert!(finding["component"]["purl"].is_string());
        assert!(finding["advisory"]["id"].is_string());
        assert!(finding["advisory"]["aliases"].is_array());
        assert!(finding.get("layerDigest").is_some());
        assert!(finding["usedByEntrypoint"].is_boolean());
        assert!(finding["vex"]["status"].is_string());
        assert!(finding["decision"]["verdict"].is_string());
        assert!(finding["decision"]["rule"].is_string());
        assert!(finding["severity"]["level"].is_string());
        assert!(finding.get("kev").is_some() && finding.get("epss").is_some());
    }
}

#[test]
fn kev_and_epss_are_recorded_and_drive_the_default_policy() {
    let mut source = common::e2e_source();
    source.add_kev(KevEntry {
        cve: "CVE-2023-23916".into(),
        date_added: "2023-03-01".into(),
        due_date: None,
        ransomware: Some("Unknown".into()),
        vendor: None,
        product: None,
        name: None,
    });
    source.add_epss(EpssEntry {
        cve: "CVE-2023-23916".into(),
        score: 0.12,
        percentile: 0.9,
        date: None,
    });
    let components = vec![common::debian(
        "libcurl4",
        "curl",
        "7.74.0-1.3+deb11u5",
        "11",
    )];
    let report = run(
        &components,
        &source,
        &[],
        &Policy::default_policy().unwrap(),
        JAN_2026,
    );
    assert_eq!(report.verdict, Verdict::Fail);
    let finding = &report.findings[0];
    assert_eq!(finding.advisory.id, "CVE-2023-23916");
    assert_eq!(finding.kev.as_ref().unwrap().date_added, "2023-03-01");
    assert_eq!(finding.epss.as_ref().unwrap().score, 0.12);
    assert_eq!(finding.decision.rule, "known-exploited-fails");
    assert_eq!(finding.fixed_version.as_deref(), Some("7.74.0-1.3+deb11u7"));
    assert_eq!(
        finding.layer_digest.as_deref(),
        Some(&*format!("sha256:{}", "1".repeat(64)))
    );
}

const WAIVER: &str = r#"
apiVersion: stella.policy/v1
name: waiver
defaultAction: fail
rules:
  - name: waive-curl-cve
    match: { cve: CVE-2023-23916, purl: "pkg:deb/debian/libcurl4@*" }
    action: ignore
    until: 2026-12-31
    justification: service never uses libcurl with HTTP/2 content decoding
"#;

#[test]
fn a_waiver_applies_until_its_date_and_then_stops() {
    let source = common::e2e_source();
    let components = vec![common::debian(
        "libcurl4",
        "curl",
        "7.74.0-1.3+deb11u5",
        "11",
    )];
    let policy = policy(WAIVER);
    let before = run(&components, &source, &[], &policy, JAN_2026);
    assert_eq!(before.verdict, Verdict::Pass);
    assert_eq!(before.findings[0].decision.verdict, FindingVerdict::Ignore);
    assert_eq!(before.findings[0].decision.rule, "waive-curl-cve");

    let after = run(&components, &source, &[], &policy, JAN_2027);
    assert_eq!(after.verdict, Verdict::Fail);
    let decision = &after.findings[0].decision;
    assert_eq!(decision.rule, "default");
    assert!(
        decision.trace.iter().any(|t| t.contains("expired")),
        "{decision:?}"
    );
}

const USAGE_GATED: &str = r#"
apiVersion: stella.policy/v1
name: usage-gated
defaultAction: warn
rules:
  - name: fail-only-if-used
    match: { usedByEntrypoint: true }
    action: fail
"#;

#[test]
fn usage_gated_policy_passes_when_the_component_is_outside_the_usage_closure() {
    let source = common::e2e_source();
    let policy = policy(USAGE_GATED);
    let mut component = common::debian("libcurl4", "curl", "7.74.0-1.3+deb11u5", "11");

    component.used_by_entrypoint = false;
    let unused = run(
        std::slice::from_ref(&component),
        &source,
        &[],
        &policy,
        JAN_2026,
    );
    assert_eq!(unused.verdict, Verdict::Pass);
    assert_eq!(unused.findings[0].decision.verdict, FindingVerdict::Warn);
    assert!(!unused.findings[0].used_by_entrypoint);

    component.used_by_entrypoint = true;
    let used = run(
        std::slice::from_ref(&component),
        &source,
        &[],
        &policy,
        JAN_2026,
    );
    assert_eq!(used.verdict, Verdict::Fail);
    assert_eq!(used.findings[0].decision.rule, "fail-only-if-used");
    assert_ne!(unused.policy.digest, "");
}

fn node_vex(status: VexStatus, provider: &str) -> VexClaim {
    VexClaim {
        product: "pkg:npm/bassmaster".into(),
        subcomponents: vec![],
        vulnerability: "CVE-2014-7205".into(),
        status,
        justification: Some("vulnerable_code_not_in_execute_path".into()),
        impact_statement: None,
        action_statement: None,
        provider: provider.into(),
        timestamp: Some("2024-01-01T00:00:00Z".into()),
        format: VexFormat::Openvex,
        document: format!("upload:{provider}"),
    }
}

const REQUIRE_VEX: &str = r#"
apiVersion: stella.policy/v1
name: require-vex
defaultAction: fail
rules:
  - name: npm-needs-vendor-vex
    match: { purl: "pkg:npm/*" }
    action: requireVEX
    requireVEX:
      vendors: [hapi maintainers]
      justifications: [vulnerable_code_not_in_execute_path]
"#;

#[test]
fn vex_not_affected_clears_a_finding_and_requirevex_checks_who_said_it() {
    let source = common::e2e_source();
    let components = vec![common::language("npm", "npm", "bassmaster", "1.5.1")];
    let default_policy = policy(&WAIVER.replace("waive-curl-cve", "unrelated"));

    let cleared = run(
        &components,
        &source,
        &[node_vex(VexStatus::NotAffected, "someone")],
        &default_policy,
        JAN_2026,
    );
    assert_eq!(cleared.verdict, Verdict::Pass);
    assert_eq!(cleared.findings[0].decision.rule, "vex");
    assert_eq!(cleared.findings[0].vex.status, Some(VexStatus::NotAffected));

    let strict = policy(REQUIRE_VEX);
    let wrong_vendor = run(
        &components,
        &source,
        &[node_vex(VexStatus::NotAffected, "someone")],
        &strict,
        JAN_2026,
    );
    assert_eq!(wrong_vendor.verdict, Verdict::Fail);
    assert_eq!(
        wrong_vendor.findings[0].decision.rule,
        "npm-needs-vendor-vex"
    );

    let right_vendor = run(
        &components,
        &source,
        &[node_vex(VexStatus::NotAffected, "hapi maintainers")],
        &strict,
        JAN_2026,
    );
    assert_eq!(right_vendor.verdict, Verdict::Pass);
    assert_eq!(
        right_vendor.findings[0].decision.rule,
        "npm-needs-vendor-vex"
    );
}

#[test]
fn escalate_fails_findings_that_reach_a_trigger() {
    let text = r#"
apiVersion: stella.policy/v1
name: escalate
defaultAction: warn
rules:
  - name: prod-kev
    match: { env: prod }
    action: escalate
    escalate: { kev: true }
"#;
    let mut source = common::e2e_source();
    let components = vec![common::language("npm", "npm", "bassmaster", "1.5.1")];
    let quiet = run(&components, &source, &[], &policy(text), JAN_2026);
    assert_eq!(quiet.verdict, Verdict::Pass);
    source.add_kev(KevEntry {
        cve: "CVE-2014-7205".into(),
        date_added: "2024-01-01".into(),
        due_date: None,
        ransomware: None,
        vendor: None,
        product: None,
        name: None,
    });
    let escalated = run(&components, &source, &[], &policy(text), JAN_2026);
    assert_eq!(escalated.verdict, Verdict::Fail);
    assert!(escalated.findings[0].decision.reason.contains("KEV"));
}

#[test]
fn denied_licences_fail_the_report() {
    let text = r#"
apiVersion: stella.policy/v1
name: licences
defaultAction: warn
licences:
  deny: ["AGPL-*"]
  action: fail
"#;
    let source = MemorySource::new();
    let mut agpl = common::language("npm", "npm", "left-pad", "1.0.0");
    agpl.licences = vec!["AGPL-3.0-only".into()];
    let mut dual = common::language("npm", "npm", "dual", "1.0.0");
    dual.licences = vec!["(AGPL-3.0-only OR MIT)".into()];
    let report = run(&[agpl, dual], &source, &[], &policy(text), JAN_2026);
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(report.licences.len(), 1, "{:?}", report.licences);
    assert!(report.licences[0].purl.contains("left-pad"));
}

/// Chunks of components and of matches go to different threads; the report must not depend on
/// how many. Components repeat under distinct purls and layers, in shuffled order, so that
/// several chunks hold matches and the final order comes from the sort, not the input.
#[test]
fn report_is_the_same_on_one_thread_and_on_several() {
    let source = common::e2e_source();
    let mut many = Vec::new();
    for copy in 0..700 {
        for mut component in components() {
            let separator = if component.purl.contains('?') {
                '&'
            } else {
                '?'
            };
            component.purl = format!("{}{separator}copy={}", component.purl, (copy * 7919) % 700);
            component.layer_digest = Some(format!("sha256:{:064x}", copy % 3));
            component.used_by_entrypoint = copy % 2 == 0;
            many.push(component);
        }
    }
    let policy = Policy::default_policy().unwrap();
    let with = |components: &[Component], threads: usize| {
        stella_decide::evaluate_with_threads(
            &subject(),
            components,
            &source,
            &[],
            &policy,
            &FixedClock(JAN_2026),
            &snapshot(),
            threads,
        )
        .unwrap()
        .to_canonical_json()
        .unwrap()
    };
    let one = with(&many, 1);
    assert!(
        one.matches("\"advisory\"").count() > 2_000,
        "too few findings to split"
    );
    assert_eq!(with(&many, 3), one);
    assert_eq!(with(&many, 8), one);
    // The same components in reverse order give the same bytes.
    many.reverse();
    assert_eq!(with(&many, 2), one);
}
