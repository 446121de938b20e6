//! VEX consensus: the claims about one (product, vulnerability) weighed by provider trust and
//! gated by justification, with every claim kept and the winner explained.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stella_importer::VexClaim;
use stella_importer::vex::VexStatus;

/// The VEX part of a policy: who is trusted how much, and which justifications count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VexConfig {
    /// Trust weight per provider (exact provider name as the document gives it). Weight 0
    /// means "ignore this provider".
    #[serde(default)]
    pub trust: BTreeMap<String, f64>,
    /// Weight of providers not listed in `trust`.
    #[serde(default = "default_weight")]
    pub default_weight: f64,
    /// Justifications that make a `not_affected` claim acceptable (OpenVEX vocabulary). An
    /// empty list accepts any justification, including none.
    #[serde(default)]
    pub justifications: Vec<String>,
}

fn default_weight() -> f64 {
    1.0
}

impl Default for VexConfig {
    fn default() -> Self {
        Self {
            trust: BTreeMap::new(),
            default_weight: 1.0,
            justifications: Vec::new(),
        }
    }
}

/// What happened to one claim in the consensus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimOutcome {
    /// Its status is the consensus status.
    Won,
    /// Its status lost the weighted vote.
    Outvoted,
    /// The same provider said something newer about the same product and vulnerability.
    Superseded,
    /// The provider's trust weight is 0.
    Untrusted,
    /// A `not_affected` claim without an accepted justification.
    JustificationRejected,
}

/// One claim as the decision lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimRecord {
    pub provider: String,
    pub status: VexStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    pub product: String,
    pub document: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub weight: f64,
    pub outcome: ClaimOutcome,
}

/// The consensus for one (product, vulnerability).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VexDecision {
    /// The consensus status; `None` (written `"none"`) when no usable claim exists.
    #[serde(with = "status_or_none")]
    pub status: Option<VexStatus>,
    /// Justification of the heaviest winning claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// Providers of the winning claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Whether accepted claims disagreed.
    pub conflict: bool,
    /// Every claim considered, in a stable order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimRecord>,
    /// One sentence: which claims won and why.
    pub explanation: String,
}

impl VexDecision {
    fn none() -> Self {
        Self {
            status: None,
            justification: None,
            providers: Vec::new(),
            conflict: false,
            claims: Vec::new(),
            explanation: "no VEX claim about this component and vulnerability".into(),
        }
    }
}

/// The OpenVEX wire name of a status (`not_affected`, ...).
pub fn status_name(status: VexStatus) -> &'static str {
    match status {
        VexStatus::NotAffected => "not_affected",
        VexStatus::Affected => "affected",
        VexStatus::Fixed => "fixed",
        VexStatus::UnderInvestigation => "under_investigation",
    }
}

/// Tie-break order when weights are equal: the more cautious status wins.
fn caution(status: VexStatus) -> u8 {
    match status {
        VexStatus::Affected => 3,
        VexStatus::UnderInvestigation => 2,
        VexStatus::Fixed => 1,
        VexStatus::NotAffected => 0,
    }
}

/// A purl split into the parts that identify a package (type, namespace, name) and its version.
fn purl_parts(text: &str) -> Option<(String, Option<String>, String, Option<String>)> {
    let purl = packageurl::PackageUrl::from_str(text).ok()?;
    Some((
        purl.ty().to_ascii_lowercase(),
        purl.namespace().map(str::to_owned),
        purl.name().to_owned(),
        purl.version().map(|v| v.trim_start_matches('v').to_owned()),
    ))
}

use std::str::FromStr;

/// Whether a claim's product (or one of its subcomponents) names the component's purl. A product
/// without a version names every version.
pub fn claim_applies(claim: &VexClaim, component_purl: &str) -> bool {
    let Some((ty, namespace, name, version)) = purl_parts(component_purl) else {
        return claim.product == component_purl;
    };
    let names = |product: &str| match purl_parts(product) {
        Some((pty, pnamespace, pname, pversion)) => {
            pty == ty
                && pnamespace == namespace
                && pname == name
                && match (&pversion, &version) {
                    (Some(pv), Some(v)) => pv == v,
                    (Some(_), None) => false,
                    (None, _) => true,
                }
        }
        None => product == component_purl,
    };
    if claim.subcomponents.is_empty() {
        names(&claim.product)
    } else {
        claim.subcomponents.iter().any(|s| names(s))
    }
}

/// Weighs the claims that apply to `component_purl` about any of `vulnerability_ids`.
pub fn consensus(claims: &[&VexClaim], config: &VexConfig) -> VexDecision {
    if claims.is_empty() {
        return VexDecision::none();
    }
    let mut sorted: Vec<&VexClaim> = claims.to_vec();
    sorted.sort();
    sorted.dedup();
    // Newest claim per (provider, product, vulnerability): timestamps are RFC 3339 and compare
    // as text; a claim without a timestamp is older than one with.
    let mut newest: BTreeMap<(&str, &str, &str), &VexClaim> = BTreeMap::new();
    for claim in &sorted {
        let key = (
            claim.provider.as_str(),
            claim.product.as_str(),
            claim.vulnerability.as_str(),
        );
        match newest.get(&key) {
            Some(current) if current.timestamp >= claim.timestamp => {}
            _ => {
                newest.insert(key, claim);
            }
        }
    }
    let mut records = Vec::new();
    let mut totals: BTreeMap<VexStatus, f64> = BTreeMap::new();
    let mut accepted: Vec<(usize, &VexClaim)> = Vec::new();
    for claim in &sorted {
        let weight = config
            .trust
            .get(&claim.provider)
            .copied()
            .unwrap_or(config.default_weight);
        let key = (
            claim.provider.as_str(),
            claim.product.as_str(),
            claim.vulnerability.as_str(),
        );
        let is_newest = newest.get(&key).is_some_and(|n| std::ptr::eq(*n, *claim));
        let outcome = if !is_newest {
            ClaimOutcome::Superseded
        } else if weight <= 0.0 {
            ClaimOutcome::Untrusted
        } else if claim.status == VexStatus::NotAffected
            && !config.justifications.is_empty()
            && !claim
                .justification
                .as_ref()
                .is_some_and(|j| config.justifications.contains(j))
        {
            ClaimOutcome::JustificationRejected
        } else {
            *totals.entry(claim.status).or_insert(0.0) += weight;
            accepted.push((records.len(), claim));
            ClaimOutcome::Outvoted
        };
        records.push(ClaimRecord {
            provider: claim.provider.clone(),
            status: claim.status,
            justification: claim.justification.clone(),
            product: claim.product.clone(),
            document: claim.document.clone(),
            timestamp: claim.timestamp.clone(),
            weight,
            outcome,
        });
    }
    let winner = totals
        .iter()
        .max_by(|a, b| {
            a.1.partial_cmp(b.1)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| caution(*a.0).cmp(&caution(*b.0)))
        })
        .map(|(status, weight)| (*status, *weight));
    let Some((status, weight)) = winner else {
        let reasons: Vec<String> = records
            .iter()
            .map(|r| format!("{} ({:?})", r.provider, r.outcome))
            .collect();
        return VexDecision {
            claims: records,
            explanation: format!("no claim was usable: {}", reasons.join(", ")),
            ..VexDecision::none()
        };
    };
    let mut providers = Vec::new();
    let mut justification: Option<(f64, String)> = None;
    for (index, claim) in &accepted {
        if claim.status == status {
            records[*index].outcome = ClaimOutcome::Won;
            providers.push(claim.provider.clone());
            let w = records[*index].weight;
            if let Some(j) = &claim.justification
                && justification.as_ref().is_none_or(|(best, _)| w > *best)
            {
                justification = Some((w, j.clone()));
            }
        }
    }
    providers.sort();
    providers.dedup();
    let conflict = totals.len() > 1;
    let others: Vec<String> = totals
        .iter()
        .filter(|(s, _)| **s != status)
        .map(|(s, w)| format!("{} {w}", status_name(*s)))
        .collect();
    let rejected = records
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                ClaimOutcome::JustificationRejected | ClaimOutcome::Untrusted
            )
        })
        .count();
    let explanation = format!(
        "{} by {} with trust weight {weight}{}{}",
        status_name(status),
        providers.join(", "),
        if others.is_empty() {
            String::new()
        } else {
            format!(" against {}", others.join(", "))
        },
        if rejected == 0 {
            String::new()
        } else {
            format!(
                "; {rejected} claim(s) not counted (untrusted provider or justification not accepted by policy)"
            )
        }
    );
    VexDecision {
        status: Some(status),
        justification: justification.map(|(_, j)| j),
        providers,
        conflict,
        claims: records,
        explanation,
    }
}

/// `Option<VexStatus>` as a string that is `"none"` for `None`.
mod status_or_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use stella_importer::vex::VexStatus;

    pub fn serialize<S: Serializer>(status: &Option<VexStatus>, s: S) -> Result<S::Ok, S::Error> {
        match status {
            Some(status) => status.serialize(s),
            None => s.serialize_str("none"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<VexStatus>, D::Error> {
        let text = String::deserialize(d)?;
        if text == "none" {
            return Ok(None);
        }
        VexStatus::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(&text)).map(Some)
    }
}
