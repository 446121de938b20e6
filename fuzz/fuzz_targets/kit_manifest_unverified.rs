//! Fuzz target: reading manifest.json and its signature out of an arbitrary kit.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::read_manifest_unverified(data, &stella_importer::Limits::default());
});
