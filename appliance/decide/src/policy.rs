//! The policy DSL (YAML): matchers and actions per seed §4.3, parsed with line:column errors,
//! a canonical form and its SHA-256 digest. The format is specified in `docs/policy.md`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::severity::Level;
use crate::vex::VexConfig;

/// The built-in policy used when none is given (`docs/policy.md`, "Default policy").
pub const DEFAULT_POLICY_YAML: &str = include_str!("default-policy.yaml");

/// Upper bound on a policy document; policies are small, and this keeps the parser's work bounded.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// Why a policy could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The document is not a valid policy; `line` and `column` are 1-based when known.
    #[error("policy {origin}:{line}:{column}: {message}")]
    Parse {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The document is larger than [`MAX_POLICY_BYTES`].
    #[error("policy {origin}: {size} bytes is more than the {max} allowed")]
    TooLarge {
        origin: String,
        size: usize,
        max: usize,
    },
    #[error("policy {origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// A glob pattern (`*`, `?`, `[...]`, `{a,b}`), kept with its text.
#[derive(Clone)]
pub struct Pattern {
    text: String,
    matcher: globset::GlobMatcher,
}

impl Pattern {
    pub fn new(text: &str) -> Result<Self, String> {
        let glob = globset::GlobBuilder::new(text)
            .literal_separator(false)
            .build()
            .map_err(|e| format!("bad glob {text:?}: {e}"))?;
        Ok(Self {
            text: text.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    pub fn is_match(&self, candidate: &str) -> bool {
        self.matcher.is_match(candidate)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParseVisitor(Pattern::new, "a glob pattern"))
    }
}

/// Reads a scalar and checks it inside the visitor, so the YAML parser attaches the scalar's own
/// line and column to the error (a check after deserialising would point at the enclosing map).
struct ParseVisitor<T>(fn(&str) -> Result<T, String>, &'static str);

impl<T> serde::de::Visitor<'_> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<T, E> {
        (self.0)(value).map_err(E::custom)
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<T, E> {
        (self.0)(&value.to_string()).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<T, E> {
        (self.0)(&value.to_string()).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<T, E> {
        (self.0)(&value.to_string()).map_err(E::custom)
    }
}

macro_rules! deserialize_by_parsing {
    ($type:ty, $parse:expr, $what:literal) => {
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(ParseVisitor($parse, $what))
            }
        }
    };
}

/// One pattern or a list of them (any may match).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Patterns {
    One(Pattern),
    Many(Vec<Pattern>),
}

impl Patterns {
    pub fn any(&self, candidate: &str) -> bool {
        match self {
            Patterns::One(p) => p.is_match(candidate),
            Patterns::Many(ps) => ps.iter().any(|p| p.is_match(candidate)),
        }
    }

    fn normalize(&mut self) {
        if let Patterns::Many(list) = self {
            list.sort_by(|a, b| a.text.cmp(&b.text));
            list.dedup();
        }
    }
}

/// A comparison operator of a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = ">")]
    Above,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "==")]
    Equal,
}

fn split_comparison(text: &str) -> (Comparison, &str) {
    let text = text.trim();
    for (prefix, comparison) in [
        (">=", Comparison::AtLeast),
        ("<=", Comparison::AtMost),
        ("==", Comparison::Equal),
        (">", Comparison::Above),
        ("<", Comparison::Below),
        ("=", Comparison::Equal),
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return (comparison, rest.trim());
        }
    }
    (Comparison::Equal, text)
}

fn holds<T: PartialOrd>(comparison: Comparison, value: T, bound: T) -> bool {
    match comparison {
        Comparison::AtLeast => value >= bound,
        Comparison::Above => value > bound,
        Comparison::AtMost => value <= bound,
        Comparison::Below => value < bound,
        Comparison::Equal => value == bound,
    }
}

/// `severity: ">=high"` (or `high`, meaning exactly high).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(into = "String")]
pub struct SeverityThreshold {
    pub comparison: Comparison,
    pub level: Level,
}

impl SeverityThreshold {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (comparison, rest) = split_comparison(text);
        Ok(Self {
            comparison,
            level: rest.parse()?,
        })
    }
}

deserialize_by_parsing!(
    SeverityThreshold,
    SeverityThreshold::parse,
    "a severity such as \">=high\""
);

impl From<SeverityThreshold> for String {
    fn from(value: SeverityThreshold) -> String {
        format!(
            "{}{}",
            comparison_text(value.comparison),
            value.level.as_str()
        )
    }
}

fn comparison_text(comparison: Comparison) -> &'static str {
    match comparison {
        Comparison::AtLeast => ">=",
        Comparison::Above => ">",
        Comparison::AtMost => "<=",
        Comparison::Below => "<",
        Comparison::Equal => "==",
    }
}

impl SeverityThreshold {
    pub fn holds(&self, level: Level) -> bool {
        holds(self.comparison, level, self.level)
    }
}

/// `epss: ">=0.5"`: a bound on the EPSS probability (0..1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(into = "String")]
pub struct EpssThreshold {
    pub comparison: Comparison,
    pub score: f64,
}

impl EpssThreshold {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (comparison, rest) = split_comparison(text);
        let score = rest
            .parse::<f64>()
            .map_err(|_| format!("EPSS bound {text:?} is not a number"))?;
        if !(0.0..=1.0).contains(&score) {
            return Err(format!("EPSS bound {score} is outside 0..1"));
        }
        let comparison = if rest.len() == text.trim().len() {
            Comparison::AtLeast
        } else {
            comparison
        };
        Ok(Self { comparison, score })
    }
}

deserialize_by_parsing!(
    EpssThreshold,
    EpssThreshold::parse,
    "an EPSS bound such as \">=0.5\""
);

impl From<EpssThreshold> for String {
    fn from(value: EpssThreshold) -> String {
        format!("{}{}", comparison_text(value.comparison), value.score)
    }
}

impl EpssThreshold {
    pub fn holds(&self, score: f64) -> bool {
        holds(self.comparison, score, self.score)
    }
}

/// An expiry: a date (`2026-12-31`, valid through that day, UTC) or an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Until {
    text: String,
    /// First second at which the waiver no longer applies.
    expires_at: i64,
}

deserialize_by_parsing!(
    Until,
    Until::parse,
    "a date (YYYY-MM-DD) or an RFC 3339 time"
);

impl Until {
    pub fn parse(text: &str) -> Result<Self, String> {
        use time::format_description::well_known::Rfc3339;
        let trimmed = text.trim();
        if let Ok(moment) = time::OffsetDateTime::parse(trimmed, &Rfc3339) {
            return Ok(Self {
                text: trimmed.to_owned(),
                expires_at: moment.unix_timestamp(),
            });
        }
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::Date::parse(trimmed, &format).map_err(|_| {
            format!("`until` {text:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time")
        })?;
        let expires = date.midnight().assume_utc().unix_timestamp() + 86_400;
        Ok(Self {
            text: trimmed.to_owned(),
            expires_at: expires,
        })
    }
}

impl From<Until> for String {
    fn from(value: Until) -> String {
        value.text
    }
}

impl Until {
    /// Whether the waiver has expired at `now` (seconds since the epoch).
    pub fn expired(&self, now: u64) -> bool {
        i64::try_from(now).unwrap_or(i64::MAX) >= self.expires_at
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The conditions of a rule; every condition given must hold (lists: any element).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cve: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by_entrypoint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<SeverityThreshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epss: Option<EpssThreshold>,
    /// VEX consensus status (`not_affected`, `affected`, `fixed`, `under_investigation`, `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vex_status: Option<Patterns>,
}

/// What a rule does to the findings it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    Fail,
    Warn,
    Defer,
    Ignore,
    #[serde(rename = "requireVEX")]
    RequireVex,
    Escalate,
}

/// `requireVEX{vendors, justifications}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequireVex {
    #[serde(default)]
    pub vendors: Vec<String>,
    #[serde(default)]
    pub justifications: Vec<String>,
}

/// `escalate{severity, kev, epss}`: fail when any trigger given holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Escalate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<SeverityThreshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epss: Option<EpssThreshold>,
}

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, try_from = "RawRule")]
pub struct Rule {
    pub name: String,
    #[serde(default, rename = "match")]
    pub matcher: Match,
    pub action: ActionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Until>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    #[serde(
        default,
        rename = "requireVEX",
        skip_serializing_if = "Option::is_none"
    )]
    pub require_vex: Option<RequireVex>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<Escalate>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default, rename = "match")]
    matcher: Match,
    action: ActionKind,
    #[serde(default)]
    until: Option<Until>,
    #[serde(default)]
    justification: Option<String>,
    #[serde(default, rename = "requireVEX")]
    require_vex: Option<RequireVex>,
    #[serde(default)]
    escalate: Option<Escalate>,
}

impl TryFrom<RawRule> for Rule {
    type Error = String;
    fn try_from(raw: RawRule) -> Result<Self, String> {
        let name = &raw.name;
        if name.trim().is_empty() {
            return Err("rule name is empty".into());
        }
        if raw.action == ActionKind::Ignore
            && raw
                .justification
                .as_deref()
                .is_none_or(|j| j.trim().is_empty())
        {
            return Err(format!("rule {name:?}: `ignore` needs a `justification`"));
        }
        if raw.until.is_some() && !matches!(raw.action, ActionKind::Ignore | ActionKind::Defer) {
            return Err(format!(
                "rule {name:?}: `until` is only for `ignore` and `defer`"
            ));
        }
        if raw.require_vex.is_some() != (raw.action == ActionKind::RequireVex) {
            return Err(format!(
                "rule {name:?}: `requireVEX` settings go with `action: requireVEX` and only with it"
            ));
        }
        if raw.escalate.is_some() != (raw.action == ActionKind::Escalate) {
            return Err(format!(
                "rule {name:?}: `escalate` settings go with `action: escalate` and only with it"
            ));
        }
        if let Some(escalate) = &raw.escalate
            && escalate.severity.is_none()
            && escalate.kev.is_none()
            && escalate.epss.is_none()
        {
            return Err(format!(
                "rule {name:?}: `escalate` needs severity, kev or epss"
            ));
        }
        Ok(Rule {
            name: raw.name,
            matcher: raw.matcher,
            action: raw.action,
            until: raw.until,
            justification: raw.justification,
            require_vex: raw.require_vex,
            escalate: raw.escalate,
        })
    }
}

/// The action when no rule decides a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum DefaultAction {
    #[default]
    Fail,
    Warn,
}

/// Licence constraints on components.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Licences {
    /// When not empty, every component needs a licence matching one of these.
    #[serde(default)]
    pub allow: Vec<Pattern>,
    /// A component whose licence matches one of these is a violation.
    #[serde(default)]
    pub deny: Vec<Pattern>,
    /// Whether violations fail the report or only warn.
    #[serde(default)]
    pub action: DefaultAction,
}

/// A whole policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// Format version: `stella.policy/v1`.
    pub api_version: String,
    pub name: String,
    #[serde(default)]
    pub vex: VexConfig,
    #[serde(default)]
    pub default_action: DefaultAction,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub licences: Licences,
}

pub const API_VERSION: &str = "stella.policy/v1";

impl Policy {
    /// Parses a policy document; errors carry the 1-based line and column.
    pub fn parse(origin: &str, bytes: &[u8]) -> Result<Policy, PolicyError> {
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                origin: origin.to_owned(),
                size: bytes.len(),
                max: MAX_POLICY_BYTES,
            });
        }
        let mut policy: Policy = serde_yaml_ng::from_slice(bytes).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let message = e.to_string();
            // The library appends " at line L column C"; the position is reported separately.
            let message = match message.find(" at line ") {
                Some(index) => message[..index].to_owned(),
                None => message,
            };
            PolicyError::Parse {
                origin: origin.to_owned(),
                line,
                column,
                message,
            }
        })?;
        let invalid = |message: String| PolicyError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        if policy.api_version != API_VERSION {
            return Err(invalid(format!(
                "apiVersion {:?} is not {API_VERSION:?}",
                policy.api_version
            )));
        }
        let mut names = std::collections::BTreeSet::new();
        for rule in &policy.rules {
            if !names.insert(rule.name.clone()) {
                return Err(invalid(format!("rule name {:?} is used twice", rule.name)));
            }
        }
        for (provider, weight) in &policy.vex.trust {
            if !weight.is_finite() || *weight < 0.0 {
                return Err(invalid(format!(
                    "vex.trust[{provider:?}] = {weight} is not a weight >= 0"
                )));
            }
        }
        policy.normalize();
        Ok(policy)
    }

    /// The built-in default policy.
    pub fn default_policy() -> Result<Policy, PolicyError> {
        Policy::parse("(default)", DEFAULT_POLICY_YAML.as_bytes())
    }

    /// Sorts the lists whose order has no meaning (rule order does have meaning and is kept).
    fn normalize(&mut self) {
        self.vex.justifications.sort();
        self.vex.justifications.dedup();
        for rule in &mut self.rules {
            let m = &mut rule.matcher;
            for patterns in [
                &mut m.image,
                &mut m.repo,
                &mut m.env,
                &mut m.purl,
                &mut m.cve,
                &mut m.vendor,
                &mut m.source,
                &mut m.path,
                &mut m.layer_digest,
                &mut m.vex_status,
            ]
            .into_iter()
            .flatten()
            {
                patterns.normalize();
            }
            if let Some(require) = &mut rule.require_vex {
                require.vendors.sort();
                require.vendors.dedup();
                require.justifications.sort();
                require.justifications.dedup();
            }
        }
        self.licences.allow.sort_by(|a, b| a.text.cmp(&b.text));
        self.licences.allow.dedup();
        self.licences.deny.sort_by(|a, b| a.text.cmp(&b.text));
        self.licences.deny.dedup();
    }

    /// The canonical form: RFC 8785 JSON of the normalised policy.
    pub fn canonical_json(&self) -> Result<String, PolicyError> {
        serde_json_canonicalizer::to_string(self).map_err(|e| PolicyError::Invalid {
            origin: self.name.clone(),
            message: format!("canonical form: {e}"),
        })
    }

    /// `sha256:` + hex SHA-256 of the canonical form.
    pub fn digest(&self) -> Result<String, PolicyError> {
        let canonical = self.canonical_json()?;
        Ok(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        ))
    }

    /// Trust weights by provider, for display.
    pub fn trust(&self) -> &BTreeMap<String, f64> {
        &self.vex.trust
    }
}
