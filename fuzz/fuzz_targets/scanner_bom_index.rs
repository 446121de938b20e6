//! Fuzz target: the BOM-Index sidecar reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::bomindex::read(data);
});
