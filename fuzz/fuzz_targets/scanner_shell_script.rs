//! Fuzz target: the entrypoint shell-script parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::usage::shell::parse_bytes(data);
});
