//! Fuzzes the C2SP tile path parser (`GET /api/v2/tile/...`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = std::str::from_utf8(data).map(stella_attestor::TileId::parse); });
