//! Evaluation and the report: SBOM components x advisories x VEX x policy -> verdict, with the
//! rule and the VEX decision behind every finding. The JSON form is specified in `docs/report.md`.

use std::collections::{BTreeMap, HashMap};
use stella_core::rfc3339;

use serde::{Deserialize, Serialize};
use stella_core::Clock;
use stella_importer::VexClaim;
use stella_importer::model::{Advisory, is_cve};
use stella_importer::vex::VexStatus;

use crate::component::Component;
use crate::matching::{self, Unknown};
use crate::policy::{ActionKind, DefaultAction, Match, Policy, PolicyError, Rule};
use crate::severity::{self, Level, SeverityInfo};
use crate::source::{AdvisorySource, SourceError};
use crate::vex::{self, VexDecision};

/// Report format id written into every report.
pub const REPORT_SCHEMA: &str = "stella.report/v1";

/// Why an evaluation failed (not a FAIL verdict: that is a successful evaluation).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecideError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("report encoding: {0}")]
    Encoding(String),
}

/// What is being judged: the image and where it runs. Feeds the `image`, `repo`, `env` matchers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// Image reference (`registry.local/team/app:1.4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Repository (`registry.local/team/app`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Environment (`prod`, `staging`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Digest of the SBOM the components came from.
    pub sbom_digest: String,
}

/// The advisory data the report was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub kit_id: String,
    pub sequence: u64,
}

/// The verdict of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
}

/// What the policy did with one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingVerdict {
    Fail,
    Warn,
    Defer,
    Ignore,
    Pass,
}

impl FindingVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingVerdict::Fail => "fail",
            FindingVerdict::Warn => "warn",
            FindingVerdict::Defer => "defer",
            FindingVerdict::Ignore => "ignore",
            FindingVerdict::Pass => "pass",
        }
    }
}

/// The decision on one finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub verdict: FindingVerdict,
    /// The rule that decided: a rule name, `vex` (VEX consensus cleared it) or `default`.
    pub rule: String,
    pub reason: String,
    /// Rules that matched but did not decide (expired waivers, escalations not triggered, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<String>,
}

/// A value shared by many findings (the same component or advisory appears in several), written
/// and read exactly like the value itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Shared<T>(pub std::sync::Arc<T>);

impl<T> Shared<T> {
    pub fn new(value: T) -> Self {
        Self(std::sync::Arc::new(value))
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (*self.0).serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Shared::new)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentRef {
    pub purl: String,
    pub name: String,
    pub version: String,
    pub ecosystem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdvisoryRef {
    pub id: String,
    pub aliases: Vec<String>,
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KevInfo {
    pub cve: String,
    pub date_added: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ransomware: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpssInfo {
    pub cve: String,
    pub score: f64,
    pub percentile: f64,
}

/// One (component, advisory) pair with everything that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub component: Shared<ComponentRef>,
    pub advisory: Shared<AdvisoryRef>,
    #[serde(default)]
    pub layer_digest: Option<String>,
    pub used_by_entrypoint: bool,
    #[serde(default)]
    pub fixed_version: Option<String>,
    pub severity: Shared<SeverityInfo>,
    #[serde(default)]
    pub kev: Option<Shared<KevInfo>>,
    #[serde(default)]
    pub epss: Option<Shared<EpssInfo>>,
    /// How the advisory matched (which release / range / requirement).
    #[serde(rename = "match")]
    pub match_reason: String,
    pub vex: VexDecision,
    pub decision: Decision,
}

/// A component whose licence the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenceViolation {
    pub purl: String,
    pub licences: Vec<String>,
    pub verdict: FindingVerdict,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    pub name: String,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub components: usize,
    pub findings: usize,
    /// Findings by severity level (every level present, zero included).
    pub by_severity: BTreeMap<String, usize>,
    /// Findings by decision verdict (every verdict present, zero included).
    pub by_decision: BTreeMap<String, usize>,
}

/// The report. Its canonical JSON ([`Report::to_canonical_json`]) is byte-identical for the
/// same inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema: String,
    pub verdict: Verdict,
    pub subject: Subject,
    pub advisories: Snapshot,
    pub policy: PolicyRef,
    /// The evaluation time from the clock (RFC 3339, UTC); waivers are judged against it.
    pub evaluated_at: String,
    pub counts: Counts,
    pub findings: Vec<Finding>,
    pub licences: Vec<LicenceViolation>,
    pub unknowns: Vec<Unknown>,
}

impl Report {
    /// RFC 8785 canonical JSON.
    pub fn to_canonical_json(&self) -> Result<String, DecideError> {
        serde_json_canonicalizer::to_string(self).map_err(|e| DecideError::Encoding(e.to_string()))
    }

    /// Exit status for `stella report`: 0 on PASS, 1 on FAIL.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
        }
    }
}

/// Facts about one finding that the policy matchers look at.
struct Facts<'a> {
    subject: &'a Subject,
    component: &'a Component,
    advisory: &'a Advisory,
    severity: Level,
    kev: bool,
    epss: Option<f64>,
    vex: &'a VexDecision,
}

fn vex_status_text(status: Option<VexStatus>) -> &'static str {
    status.map_or("none", vex::status_name)
}

fn opt_any(patterns: &Option<crate::policy::Patterns>, value: Option<&str>) -> bool {
    match patterns {
        None => true,
        Some(p) => value.is_some_and(|v| p.any(v)),
    }
}

fn vendor_of(component: &Component) -> Option<String> {
    packageurl_namespace(&component.purl)
}

fn packageurl_namespace(purl: &str) -> Option<String> {
    use std::str::FromStr;
    packageurl::PackageUrl::from_str(purl)
        .ok()
        .and_then(|p| p.namespace().map(str::to_owned))
}

fn matches(m: &Match, facts: &Facts<'_>) -> bool {
    let advisory = facts.advisory;
    let component = facts.component;
    opt_any(&m.image, facts.subject.image.as_deref())
        && opt_any(&m.repo, facts.subject.repo.as_deref())
        && opt_any(&m.env, facts.subject.env.as_deref())
        && opt_any(&m.purl, Some(&component.purl))
        && m.cve
            .as_ref()
            .is_none_or(|p| p.any(&advisory.id) || advisory.aliases.iter().any(|a| p.any(a)))
        && m.vendor
            .as_ref()
            .is_none_or(|p| vendor_of(component).is_some_and(|v| p.any(&v)))
        && m.source.as_ref().is_none_or(|p| {
            advisory
                .sources
                .iter()
                .any(|s| p.any(s.split(':').next().unwrap_or(s)))
        })
        && opt_any(&m.path, component.path.as_deref())
        && opt_any(&m.layer_digest, component.layer_digest.as_deref())
        && m.used_by_entrypoint
            .is_none_or(|u| u == component.used_by_entrypoint)
        && m.severity.is_none_or(|t| t.holds(facts.severity))
        && m.kev.is_none_or(|k| k == facts.kev)
        && m.epss
            .is_none_or(|t| facts.epss.is_some_and(|score| t.holds(score)))
        && opt_any(&m.vex_status, Some(vex_status_text(facts.vex.status)))
}

fn vex_clears(vex: &VexDecision) -> bool {
    matches!(
        vex.status,
        Some(VexStatus::NotAffected) | Some(VexStatus::Fixed)
    )
}

/// Whether the VEX decision meets a `requireVEX` rule.
fn vex_meets(rule: &Rule, vex: &VexDecision) -> bool {
    let Some(require) = &rule.require_vex else {
        return false;
    };
    if !vex_clears(vex) {
        return false;
    }
    let vendor_ok =
        require.vendors.is_empty() || vex.providers.iter().any(|p| require.vendors.contains(p));
    let justification_ok = vex.status != Some(VexStatus::NotAffected)
        || require.justifications.is_empty()
        || vex
            .justification
            .as_ref()
            .is_some_and(|j| require.justifications.contains(j));
    vendor_ok && justification_ok
}

fn decide(policy: &Policy, facts: &Facts<'_>, now: u64) -> Decision {
    let mut trace = Vec::new();
    // VEX first: a clearing consensus decides unless a matching requireVEX rule wants more.
    if vex_clears(facts.vex) {
        let require = policy
            .rules
            .iter()
            .find(|rule| rule.action == ActionKind::RequireVex && matches(&rule.matcher, facts));
        match require {
            Some(rule) if vex_meets(rule, facts.vex) => {
                return Decision {
                    verdict: FindingVerdict::Pass,
                    rule: rule.name.clone(),
                    reason: format!("VEX meets requireVEX: {}", facts.vex.explanation),
                    trace,
                };
            }
            Some(rule) => trace.push(format!(
                "VEX {} does not meet requireVEX of rule {}",
                vex_status_text(facts.vex.status),
                rule.name
            )),
            None => {
                return Decision {
                    verdict: FindingVerdict::Pass,
                    rule: "vex".into(),
                    reason: facts.vex.explanation.clone(),
                    trace,
                };
            }
        }
    }
    for rule in &policy.rules {
        if !matches(&rule.matcher, facts) {
            continue;
        }
        let decided = |verdict: FindingVerdict, reason: String, trace: Vec<String>| Decision {
            verdict,
            rule: rule.name.clone(),
            reason,
            trace,
        };
        match rule.action {
            ActionKind::Fail => {
                return decided(FindingVerdict::Fail, "matched a fail rule".into(), trace);
            }
            ActionKind::Warn => {
                return decided(FindingVerdict::Warn, "matched a warn rule".into(), trace);
            }
            ActionKind::Ignore | ActionKind::Defer => {
                if let Some(until) = &rule.until
                    && until.expired(now)
                {
                    trace.push(format!(
                        "rule {} expired at {} and no longer applies",
                        rule.name,
                        until.as_str()
                    ));
                    continue;
                }
                let verdict = if rule.action == ActionKind::Ignore {
                    FindingVerdict::Ignore
                } else {
                    FindingVerdict::Defer
                };
                let mut reason = rule.justification.clone().unwrap_or_default();
                if let Some(until) = &rule.until {
                    reason = format!("{reason} (until {})", until.as_str());
                }
                return decided(verdict, reason.trim().to_owned(), trace);
            }
            ActionKind::RequireVex => {
                return decided(
                    FindingVerdict::Fail,
                    "requires a VEX statement from an accepted vendor with an accepted justification; none found".into(),
                    trace,
                );
            }
            ActionKind::Escalate => {
                let Some(escalate) = &rule.escalate else {
                    continue;
                };
                let mut triggers = Vec::new();
                if escalate.kev == Some(true) && facts.kev {
                    triggers.push("in KEV".to_owned());
                }
                if let Some(t) = escalate.severity
                    && t.holds(facts.severity)
                {
                    triggers.push(format!("severity {}", facts.severity.as_str()));
                }
                if let (Some(t), Some(score)) = (escalate.epss, facts.epss)
                    && t.holds(score)
                {
                    triggers.push(format!("EPSS {score}"));
                }
                if triggers.is_empty() {
                    trace.push(format!(
                        "rule {} matched but no escalation trigger held",
                        rule.name
                    ));
                    continue;
                }
                return decided(
                    FindingVerdict::Fail,
                    format!("escalated: {}", triggers.join(", ")),
                    trace,
                );
            }
        }
    }
    let verdict = match policy.default_action {
        DefaultAction::Fail => FindingVerdict::Fail,
        DefaultAction::Warn => FindingVerdict::Warn,
    };
    Decision {
        verdict,
        rule: "default".into(),
        reason: format!("no rule decided; defaultAction is {}", verdict.as_str()),
        trace,
    }
}

/// Licence ids of one expression, as alternatives (`OR`) of conjunctions (`AND`).
fn licence_alternatives(expression: &str) -> Vec<Vec<String>> {
    let flat = expression.replace(['(', ')'], " ");
    flat.split(" OR ")
        .map(|alternative| {
            alternative
                .split(" AND ")
                .map(|id| id.split(" WITH ").next().unwrap_or(id).trim().to_owned())
                .filter(|id| !id.is_empty())
                .collect()
        })
        .collect()
}

fn licence_violation(policy: &Policy, component: &Component) -> Option<LicenceViolation> {
    let rules = &policy.licences;
    if rules.allow.is_empty() && rules.deny.is_empty() {
        return None;
    }
    let id_ok = |id: &str| {
        !rules.deny.iter().any(|p| p.is_match(id))
            && (rules.allow.is_empty() || rules.allow.iter().any(|p| p.is_match(id)))
    };
    let mut reasons = Vec::new();
    if component.licences.is_empty() {
        if rules.allow.is_empty() {
            return None;
        }
        reasons.push("no declared licence, and an allow list is set".to_owned());
    }
    for expression in &component.licences {
        let ok = licence_alternatives(expression)
            .iter()
            .any(|ids| !ids.is_empty() && ids.iter().all(|id| id_ok(id)));
        if !ok {
            reasons.push(format!("licence {expression:?} is not allowed"));
        }
    }
    if reasons.is_empty() {
        return None;
    }
    Some(LicenceViolation {
        purl: component.purl.clone(),
        licences: component.licences.clone(),
        verdict: match rules.action {
            DefaultAction::Fail => FindingVerdict::Fail,
            DefaultAction::Warn => FindingVerdict::Warn,
        },
        reason: reasons.join("; "),
    })
}

/// What a finding takes from its advisory alone.
pub(crate) struct AdvisoryFacts {
    /// Keeps the record alive while its address is the cache key.
    _record: std::sync::Arc<Advisory>,
    reference: Shared<AdvisoryRef>,
    severity: Shared<SeverityInfo>,
    kev: Option<Shared<KevInfo>>,
    epss: Option<Shared<EpssInfo>>,
    /// VEX claims from the source about the advisory id and every alias.
    claims: Vec<VexClaim>,
}

fn advisory_facts(
    record: &std::sync::Arc<Advisory>,
    source: &dyn AdvisorySource,
    scores: &mut HashMap<String, Option<f64>>,
) -> Result<AdvisoryFacts, SourceError> {
    let advisory = &**record;
    let ids: Vec<&str> = std::iter::once(advisory.id.as_str())
        .chain(advisory.aliases.iter().map(String::as_str))
        .collect();
    // KEV and EPSS: the advisory's own, else the feed's entry for any CVE id.
    let first_cve = ids
        .iter()
        .find(|id| is_cve(id))
        .map(|cve| (*cve).to_owned());
    let mut kev = advisory.kev.as_ref().and_then(|k| {
        first_cve.as_ref().map(|cve| KevInfo {
            cve: cve.clone(),
            date_added: k.date_added.clone(),
            ransomware: k.ransomware.clone(),
        })
    });
    let mut epss = advisory.epss.as_ref().and_then(|e| {
        first_cve.as_ref().map(|cve| EpssInfo {
            cve: cve.clone(),
            score: e.score,
            percentile: e.percentile,
        })
    });
    let mut claims = Vec::new();
    for id in &ids {
        claims.extend(source.vex_claims_for(id)?);
        if !is_cve(id) {
            continue;
        }
        if kev.is_none()
            && let Some(entry) = source.kev(id)?
        {
            kev = Some(KevInfo {
                cve: entry.cve,
                date_added: entry.date_added,
                ransomware: entry.ransomware,
            });
        }
        if let Some(entry) = source.epss(id)?
            && epss.as_ref().is_none_or(|e| entry.score > e.score)
        {
            epss = Some(EpssInfo {
                cve: entry.cve,
                score: entry.score,
                percentile: entry.percentile,
            });
        }
    }
    Ok(AdvisoryFacts {
        _record: std::sync::Arc::clone(record),
        reference: Shared::new(AdvisoryRef {
            id: advisory.id.clone(),
            aliases: advisory.aliases.iter().cloned().collect(),
            sources: advisory.sources.iter().cloned().collect(),
            summary: advisory.summary.clone(),
        }),
        severity: Shared::new(severity::of_advisory_cached(advisory, scores)),
        kev: kev.map(Shared::new),
        epss: epss.map(Shared::new),
        claims,
    })
}

/// Below this many matches per thread, findings are built on the calling thread.
const FINDINGS_PER_THREAD: usize = 1024;

/// Findings of one chunk of matches: VEX consensus, severity, KEV/EPSS and the policy decision.
#[allow(clippy::too_many_arguments)]
fn build_findings(
    chunk: Vec<matching::Match>,
    subject: &Subject,
    components: &[Component],
    source: &dyn AdvisorySource,
    uploaded: &BTreeMap<&str, Vec<&VexClaim>>,
    policy: &Policy,
    now: u64,
) -> Result<Vec<Finding>, DecideError> {
    // Everything that depends on the advisory alone is computed once per advisory.
    // Keyed by the shared record (not the id: records that share an id may differ before a kit
    // merges them); each cache entry holds its record, so an address is never reused.
    let mut per_advisory: HashMap<*const Advisory, std::sync::Arc<AdvisoryFacts>> = HashMap::new();
    let shared_facts = source.facts_cache();
    let mut component_refs: HashMap<usize, Shared<ComponentRef>> = HashMap::new();
    let mut scores: HashMap<String, Option<f64>> = HashMap::new();
    let mut findings = Vec::with_capacity(chunk.len());
    for matched in chunk {
        let component = &components[matched.component];
        let advisory = &*matched.advisory;
        let key = std::sync::Arc::as_ptr(&matched.advisory);
        let known = match per_advisory.entry(key) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                // Records the source holds (not merged here) may have facts from an earlier
                // evaluation in the source's cache.
                let cache = shared_facts.filter(|_| !matched.merged);
                let facts = match cache.and_then(|c| c.get(&matched.advisory)) {
                    Some(facts) => facts,
                    None => {
                        let facts = std::sync::Arc::new(advisory_facts(
                            &matched.advisory,
                            source,
                            &mut scores,
                        )?);
                        if let Some(cache) = cache {
                            cache.insert(&matched.advisory, facts.clone());
                        }
                        facts
                    }
                };
                entry.insert(facts)
            }
        };
        let known = &**known;
        let ids = std::iter::once(advisory.id.as_str())
            .chain(advisory.aliases.iter().map(String::as_str));
        let mut applicable: Vec<&VexClaim> = known
            .claims
            .iter()
            .filter(|c| vex::claim_applies(c, &component.purl))
            .collect();
        for id in ids {
            if let Some(claims) = uploaded.get(id) {
                applicable.extend(
                    claims
                        .iter()
                        .copied()
                        .filter(|c| vex::claim_applies(c, &component.purl)),
                );
            }
        }
        let vex_decision = vex::consensus(&applicable, &policy.vex);
        let severity = known.severity.clone();
        let kev = known.kev.clone();
        let epss = known.epss.clone();
        let facts = Facts {
            subject,
            component,
            advisory,
            severity: severity.level,
            kev: kev.is_some(),
            epss: epss.as_ref().map(|e| e.0.score),
            vex: &vex_decision,
        };
        let decision = decide(policy, &facts, now);
        let component_ref = component_refs
            .entry(matched.component)
            .or_insert_with(|| {
                Shared::new(ComponentRef {
                    purl: component.purl.clone(),
                    name: component.name.clone(),
                    version: component.version.clone(),
                    ecosystem: component.ecosystem.clone(),
                    source_name: component.source_name.clone(),
                    source_version: component.source_version.clone(),
                })
            })
            .clone();
        findings.push(Finding {
            component: component_ref,
            advisory: known.reference.clone(),
            layer_digest: component.layer_digest.clone(),
            used_by_entrypoint: component.used_by_entrypoint,
            fixed_version: matched.fixed_version,
            severity,
            kev,
            epss,
            match_reason: matched.reason,
            vex: vex_decision,
            decision,
        });
    }
    Ok(findings)
}

/// Evaluates components against advisories, VEX and policy.
///
/// `vex` holds claims from uploads; claims from the advisory source are added. The result is a
/// function of the arguments only: same inputs, byte-identical canonical JSON. The work is
/// spread over up to the core count of threads; [`evaluate_with_threads`] fixes the count.
pub fn evaluate(
    subject: &Subject,
    components: &[Component],
    source: &dyn AdvisorySource,
    vex_claims: &[VexClaim],
    policy: &Policy,
    clock: &dyn Clock,
    snapshot: &Snapshot,
) -> Result<Report, DecideError> {
    let threads = matching::threads_for(components.len(), COMPONENTS_PER_THREAD);
    evaluate_with_threads(
        subject, components, source, vex_claims, policy, clock, snapshot, threads,
    )
}

/// Below this many components per thread, evaluation stays on the calling thread.
const COMPONENTS_PER_THREAD: usize = 512;

/// [`evaluate`] on at most `threads` threads (1 = the calling thread only). The report does not
/// depend on the thread count.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_with_threads(
    subject: &Subject,
    components: &[Component],
    source: &dyn AdvisorySource,
    vex_claims: &[VexClaim],
    policy: &Policy,
    clock: &dyn Clock,
    snapshot: &Snapshot,
    threads: usize,
) -> Result<Report, DecideError> {
    let now = clock.now_unix();
    // Components are matched in report order (purl, then layer), so the findings come out
    // nearly sorted and the final sort only has to fix ties between layers of one purl.
    let mut order: Vec<usize> = (0..components.len()).collect();
    order.sort_by(|&a, &b| {
        (
            components[a].purl.as_str(),
            components[a].layer_digest.as_deref(),
            a,
        )
            .cmp(&(
                components[b].purl.as_str(),
                components[b].layer_digest.as_deref(),
                b,
            ))
    });
    let found = matching::match_in_order(components, &order, source, threads.max(1))?;
    let mut uploaded: BTreeMap<&str, Vec<&VexClaim>> = BTreeMap::new();
    for claim in vex_claims {
        uploaded
            .entry(claim.vulnerability.as_str())
            .or_default()
            .push(claim);
    }
    // Findings are built in chunks on up to the core count of threads (each with its own
    // caches) and concatenated in match order, then sorted: the result does not depend on the
    // thread count.
    let finding_threads = threads.max(1).min(matching::threads_for(
        found.matches.len(),
        FINDINGS_PER_THREAD,
    ));
    let matched_count = found.matches.len();
    let unknowns = found.unknowns;
    let parts = matching::in_owned_chunks(found.matches, finding_threads, |chunk| {
        build_findings(chunk, subject, components, source, &uploaded, policy, now)
    });
    let mut findings = Vec::with_capacity(matched_count);
    for part in parts {
        findings.extend(part?);
    }
    findings.sort_by(|a, b| {
        (
            a.component.purl.as_str(),
            a.advisory.id.as_str(),
            a.layer_digest.as_deref(),
        )
            .cmp(&(
                b.component.purl.as_str(),
                b.advisory.id.as_str(),
                b.layer_digest.as_deref(),
            ))
    });
    let mut licences: Vec<LicenceViolation> = components
        .iter()
        .filter_map(|c| licence_violation(policy, c))
        .collect();
    licences.sort();
    licences.dedup();
    let mut by_severity: BTreeMap<String, usize> = Level::ALL
        .iter()
        .map(|l| (l.as_str().to_owned(), 0))
        .collect();
    let mut by_decision: BTreeMap<String, usize> = [
        FindingVerdict::Fail,
        FindingVerdict::Warn,
        FindingVerdict::Defer,
        FindingVerdict::Ignore,
        FindingVerdict::Pass,
    ]
    .iter()
    .map(|v| (v.as_str().to_owned(), 0))
    .collect();
    for finding in &findings {
        if let Some(count) = by_severity.get_mut(finding.severity.level.as_str()) {
            *count += 1;
        }
        if let Some(count) = by_decision.get_mut(finding.decision.verdict.as_str()) {
            *count += 1;
        }
    }
    let failed = findings
        .iter()
        .any(|f| f.decision.verdict == FindingVerdict::Fail)
        || licences.iter().any(|l| l.verdict == FindingVerdict::Fail);
    Ok(Report {
        schema: REPORT_SCHEMA.into(),
        verdict: if failed { Verdict::Fail } else { Verdict::Pass },
        subject: subject.clone(),
        advisories: snapshot.clone(),
        policy: PolicyRef {
            name: policy.name.clone(),
            digest: policy.digest()?,
        },
        evaluated_at: rfc3339(now),
        counts: Counts {
            components: components.len(),
            findings: findings.len(),
            by_severity,
            by_decision,
        },
        findings,
        licences,
        unknowns,
    })
}
