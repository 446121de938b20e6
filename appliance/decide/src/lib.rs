//! The decider: components x advisories x VEX x policy -> an explained PASS/FAIL report.
//!
//! Entry point: [`evaluate`]. Inputs are the decider's own [`Component`] type (the scanner's
//! output is converted at the edge), an [`AdvisorySource`] (the feed store's `Generation`, or a
//! [`MemorySource`]), uploaded VEX claims, a [`Policy`], a clock and the advisories
//! [`Snapshot`]. The crate does no I/O of its own and reads time only through the clock.

pub mod component;
pub mod matching;
pub mod policy;
pub mod report;
pub mod sbom;
pub mod severity;
pub mod source;
pub mod version;
pub mod vex;

pub use component::Component;
pub use policy::{Policy, PolicyError};
pub use report::{
    DecideError, Decision, Finding, FindingVerdict, Report, Snapshot, Subject, Verdict, evaluate,
    evaluate_with_threads,
};
pub use sbom::{SbomError, SbomInput, SbomLimits, components_from_cyclonedx};
pub use source::{AdvisorySource, FactsCache, MemorySource, SourceError};
pub use vex::{VexConfig, VexDecision};

/// Parses a policy from bytes (fuzz entry point); see [`Policy::parse`].
pub fn parse_policy(bytes: &[u8]) -> Result<Policy, PolicyError> {
    Policy::parse("(input)", bytes)
}
