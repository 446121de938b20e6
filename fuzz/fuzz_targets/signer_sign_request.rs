//! Fuzzes the `POST /sign/dsse` request parser and statement construction.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(request) = stella_signer::SignRequest::from_json(data, stella_signer::RequestLimits::default()) {
        let _ = request.into_statement();
    }
});
