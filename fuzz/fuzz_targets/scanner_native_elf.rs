//! Fuzz target: the native object reader (ELF dynamic section, version needs, PE imports and version resource, Mach-O load commands).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::native::parse_native(data);
});
