//! Fuzzes every version scheme: two versions and a requirement split from arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    stella_decide::version::compare_all_schemes(data);
});
