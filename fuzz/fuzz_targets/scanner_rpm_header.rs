//! Fuzz target: the rpm header parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::rpm::parse_header(data);
});
