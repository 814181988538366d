//! `certificate`: the body is `jpki_fuzzing::certificate` (crates/fuzzing), which also replays fuzz/regressions/certificate/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::certificate(data));
