//! Fuzzes the DSSE envelope parser (untrusted envelopes handed to the signer or verifier).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = stella_signer::Envelope::from_json(data, stella_signer::Limits::default()); });
