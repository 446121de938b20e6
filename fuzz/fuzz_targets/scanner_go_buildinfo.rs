//! Fuzz target: the Go build-info reader (object parsing + buildinfo decoding).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::gobinary::parse_go_binary(data);
});
