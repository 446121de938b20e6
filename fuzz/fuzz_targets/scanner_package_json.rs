//! Fuzz target: the npm package.json parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::npm::parse_package_json(data);
});
