//! Fuzzes the `sha256:<hex>` digest parser with arbitrary text.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<stella_core::Digest>();
    }
});
