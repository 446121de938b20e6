//! Fuzz target: the nodejs source parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::sources::SourceKind::NodejsSecurityWg.parse("fuzz", data);
});
