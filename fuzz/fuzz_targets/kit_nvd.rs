//! Fuzz target: the nvd source parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::sources::SourceKind::Nvd.parse("fuzz", data);
});
