//! Fuzzes the DPoP `htu` normaliser with arbitrary text.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = std::str::from_utf8(data).map(stella_authority::normalize_htu);
});
