//! Fuzz target: the Python METADATA / PKG-INFO parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::python::parse_metadata(data);
});
