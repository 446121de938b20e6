//! Fuzzes the RFC 3161 TimeStampResp parser (DER, CMS SignedData, TSTInfo).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = stella_attestor::verify_timestamp(data, b"message", &[]); });
