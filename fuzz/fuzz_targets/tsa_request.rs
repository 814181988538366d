//! `tsa_request`: the body is `jpki_fuzzing::tsa_request` (crates/fuzzing), which also replays fuzz/regressions/tsa_request/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::tsa_request(data));
