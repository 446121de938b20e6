//! Fuzzes the C2SP tile path parser of the attestor.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = std::str::from_utf8(data).map(stella_attestor::TileId::parse); });
