//! The policy DSL: parse errors with line:column, digest invariance, the default policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use stella_decide::policy::{ActionKind, Policy, PolicyError};

const POLICY: &str = r#"
# A comment that must not change the digest.
apiVersion: stella.policy/v1
name: team-a
vex:
  trust:
    Red Hat Product Security: 1.0
    Node.js Security WG: 0.8
  defaultWeight: 0.5
  justifications: [vulnerable_code_not_present, component_not_present]
defaultAction: fail
rules:
  - name: kev
    match: { kev: true }
    action: fail
  - name: waive-openssl
    match:
      cve: CVE-2023-*
      purl: ["pkg:deb/debian/libssl*", "pkg:deb/debian/openssl*"]
    action: ignore
    until: 2026-12-31
    justification: not reachable from the service
  - name: escalate
    match: { env: prod }
    action: escalate
    escalate: { severity: ">=critical", epss: ">=0.9" }
  - name: need-vendor-vex
    match: { vendor: redhat }
    action: requireVEX
    requireVEX:
      vendors: [Red Hat Product Security]
      justifications: [vulnerable_code_not_present]
licences:
  deny: [AGPL-3.0-*]
"#;

/// The same policy with keys reordered, lists in another order and different comments.
const POLICY_REORDERED: &str = r#"
name: team-a   # trailing comment
apiVersion: stella.policy/v1
licences:
  deny: ["AGPL-3.0-*"]
defaultAction: fail
rules:
  - action: fail
    name: kev
    match:
      kev: true
  - justification: not reachable from the service
    until: 2026-12-31
    name: waive-openssl
    action: ignore
    match:
      purl: ["pkg:deb/debian/openssl*", "pkg:deb/debian/libssl*"]
      cve: CVE-2023-*
  - name: escalate
    escalate: { epss: ">=0.9", severity: ">=critical" }
    action: escalate
    match: { env: prod }
  - name: need-vendor-vex
    requireVEX:
      justifications: [vulnerable_code_not_present]
      vendors: [Red Hat Product Security]
    action: requireVEX
    match: { vendor: redhat }
vex:
  justifications: [component_not_present, vulnerable_code_not_present]
  defaultWeight: 0.5
  trust:
    Node.js Security WG: 0.8
    Red Hat Product Security: 1.0
"#;

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse("test.yaml", text.as_bytes())
}

#[test]
fn policy_parses_with_every_action() {
    let policy = parse(POLICY).unwrap();
    let actions: Vec<ActionKind> = policy.rules.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [
            ActionKind::Fail,
            ActionKind::Ignore,
            ActionKind::Escalate,
            ActionKind::RequireVex
        ]
    );
}

#[test]
fn digest_ignores_comments_key_order_and_set_order() {
    let a = parse(POLICY).unwrap();
    let b = parse(POLICY_REORDERED).unwrap();
    assert_eq!(a.digest().unwrap(), b.digest().unwrap());
    assert!(a.digest().unwrap().starts_with("sha256:"));
    assert_eq!(a.digest().unwrap().len(), "sha256:".len() + 64);
}

#[test]
fn digest_changes_when_meaning_changes() {
    let a = parse(POLICY).unwrap();
    let changed = parse(&POLICY.replace("2026-12-31", "2027-01-31")).unwrap();
    assert_ne!(a.digest().unwrap(), changed.digest().unwrap());
    // Rule order has meaning (first decisive rule wins), so it changes the digest.
    let swapped = POLICY.replace(
        "  - name: kev\n    match: { kev: true }\n    action: fail\n",
        "",
    );
    let swapped = swapped.replace(
        "licences:",
        "  - name: kev\n    match: { kev: true }\n    action: fail\nlicences:",
    );
    assert_ne!(
        a.digest().unwrap(),
        parse(&swapped).unwrap().digest().unwrap()
    );
}

fn position(error: PolicyError) -> (usize, usize, String) {
    match error {
        PolicyError::Parse {
            line,
            column,
            message,
            ..
        } => (line, column, message),
        other => panic!("expected a parse error, got {other}"),
    }
}

#[test]
fn unknown_matcher_points_at_its_line_and_column() {
    let text = "apiVersion: stella.policy/v1\nname: x\nrules:\n  - name: r\n    match:\n      cvee: CVE-1\n    action: fail\n";
    let (line, column, message) = position(parse(text).unwrap_err());
    assert_eq!((line, column), (6, 7), "{message}");
    assert!(message.contains("cvee"), "{message}");
}

#[test]
fn bad_severity_points_at_its_value() {
    let text = "apiVersion: stella.policy/v1\nname: x\nrules:\n  - name: r\n    match:\n      severity: \">=urgent\"\n    action: fail\n";
    let (line, _, message) = position(parse(text).unwrap_err());
    assert_eq!(line, 6, "{message}");
    assert!(message.contains("urgent"), "{message}");
}

#[test]
fn ignore_without_justification_is_refused_with_a_position() {
    let text =
        "apiVersion: stella.policy/v1\nname: x\nrules:\n  - name: waive\n    action: ignore\n";
    let (line, _, message) = position(parse(text).unwrap_err());
    assert!(line >= 4, "{line}: {message}");
    assert!(message.contains("justification"), "{message}");
}

#[test]
fn bad_yaml_reports_line_and_column() {
    let text = "apiVersion: stella.policy/v1\nname: [unclosed\n";
    let (line, column, _) = position(parse(text).unwrap_err());
    assert!(line >= 2 && column >= 1, "{line}:{column}");
}

#[test]
fn bad_until_is_refused() {
    let text = POLICY.replace("2026-12-31", "next tuesday");
    let (line, _, message) = position(parse(&text).unwrap_err());
    assert!(message.contains("next tuesday"), "{message}");
    assert_eq!(line, 21, "the line of `until:`");
}

#[test]
fn wrong_api_version_is_refused() {
    let text = POLICY.replace("stella.policy/v1", "stella.policy/v0");
    assert!(matches!(
        parse(&text).unwrap_err(),
        PolicyError::Invalid { .. }
    ));
}

#[test]
fn default_policy_parses_and_has_a_stable_digest() {
    let policy = Policy::default_policy().unwrap();
    assert_eq!(policy.name, "stella-default");
    assert_eq!(
        policy.digest().unwrap(),
        Policy::default_policy().unwrap().digest().unwrap()
    );
}

#[test]
fn until_expires_after_the_named_day() {
    let policy = parse(POLICY).unwrap();
    let until = policy.rules[1].until.as_ref().unwrap();
    // 2026-12-31T23:59:59Z still applies; 2027-01-01T00:00:00Z does not.
    assert!(!until.expired(1_798_761_599));
    assert!(until.expired(1_798_761_600));
}
