//! Fuzz target: the PE version resource parser (the `VS_VERSIONINFO` tree of an `RT_VERSION` resource).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::peversion::parse_version_info(data, &Default::default());
});
