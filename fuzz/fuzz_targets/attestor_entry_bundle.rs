//! Fuzzes the entry-bundle decoder (tile/entries/N).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = stella_attestor::parse_bundle(data); });
