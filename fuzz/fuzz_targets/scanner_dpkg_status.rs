//! Fuzz target: the dpkg status parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::dpkg::parse_status(data);
});
