//! Fuzzes the `POST /api/v2/log/entries` body and canonicalized-body parsers.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = stella_attestor::HashedRekord::from_request_json(data); let _ = stella_attestor::HashedRekord::from_canonical_body(data); });
