//! Fuzzes public-key (SubjectPublicKeyInfo DER) parsing used for trusted roots and enrolment.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = stella_hsm::PublicKey::from_spki_der(data); });
