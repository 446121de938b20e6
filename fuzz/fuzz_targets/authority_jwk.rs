//! Fuzzes the public-JWK parser (EC P-256 / OKP Ed25519, private members refused).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_authority::PublicJwk::from_slice(data);
});
