//! Fuzz target: the .NET deps.json parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::dotnet::parse_deps_json(data);
});
