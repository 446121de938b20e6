//! Fuzz target: the kev source parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::sources::SourceKind::Kev.parse("fuzz", data);
});
