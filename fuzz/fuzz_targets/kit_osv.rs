//! Fuzz target: the osv source parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::sources::SourceKind::Osv.parse("fuzz", data);
});
