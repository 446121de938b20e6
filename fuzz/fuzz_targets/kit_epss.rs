//! Fuzz target: the epss source parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::sources::SourceKind::Epss.parse("fuzz", data);
});
