//! Fuzz target: the debian_list source parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::sources::SourceKind::DebianDsa.parse("fuzz", data);
});
