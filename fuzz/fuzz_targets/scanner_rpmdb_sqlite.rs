//! Fuzz target: the rpmdb.sqlite reader (SQLite deserialisation + headers).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stella_scanner::analyzer::rpm::parse_rpmdb_sqlite(data);
});
