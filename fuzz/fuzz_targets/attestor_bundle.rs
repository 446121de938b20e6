//! Fuzzes Sigstore bundle parsing and verification of the attestor (untrusted bundle JSON).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = stella_attestor::parse_bundle(data); let _ = stella_attestor::HashedRekord::from_request_json(data); });
