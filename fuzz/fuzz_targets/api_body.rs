//! `api_body`: the body is `jpki_fuzzing::api_body` (crates/fuzzing), which also replays fuzz/regressions/api_body/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::api_body(data));
