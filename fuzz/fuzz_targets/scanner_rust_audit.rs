//! Fuzz target: the cargo-auditable binary reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::rustbin::parse_rust_binary(data);
});
