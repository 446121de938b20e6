//! Fuzz target: the enrolment request parser and its self-signature check.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::licence::EnrolmentRequest::parse(data).map(|request| request.verify());
});
