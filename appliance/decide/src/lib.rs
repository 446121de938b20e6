//! The decider: components x advisories x VEX x policy -> an explained PASS/FAIL report.
pub mod version;
