//! Fuzz target: the Maven pom.properties parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::maven::parse_pom_properties(data);
});
