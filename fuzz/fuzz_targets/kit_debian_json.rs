//! Fuzz target: the debian_json source parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::sources::SourceKind::DebianJson.parse("fuzz", data);
});
