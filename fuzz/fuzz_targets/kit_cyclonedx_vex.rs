//! Fuzz target: the cyclonedx_vex source parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::sources::SourceKind::CyclonedxVex.parse("fuzz", data);
});
