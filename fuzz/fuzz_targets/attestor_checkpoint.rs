//! Fuzzes the signed-note checkpoint parser and verifier.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = std::str::from_utf8(data).map(|note| stella_attestor::verify_checkpoint(note, "fuzz.example/log", &[0x3b; 32])); });
