//! Fuzzes DPoP proof validation (JWS framing, header, embedded JWK, claims) with arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_authority::verify_proof_bytes(data);
});
