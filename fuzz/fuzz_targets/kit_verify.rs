//! Fuzz target: verify_kit on an arbitrary kit (zstd, tar walker with limits, layout).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_importer::verify::verify_kit_for_fuzzing(data);
});
