//! Fuzz target: the layer tar reader (normalisation, whiteouts, all analyzers).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::layer::read_layer_tar_bytes(data);
});
