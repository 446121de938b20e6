//! Fuzz target: the jar/war/ear reader (nested archives included).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::maven::parse_java_archive(data);
});
