//! Fuzzes the policy DSL parser (YAML) with arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_decide::parse_policy(data);
});
