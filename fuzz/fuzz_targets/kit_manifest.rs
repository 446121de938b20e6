//! Fuzz target: the manifest.json parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::Manifest::parse(data);
});
