//! Fuzz target: the apk installed-database parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::apk::parse_installed(data);
});
