//! `subject_public_key`: the body is `jpki_fuzzing::subject_public_key` (crates/fuzzing), which also replays fuzz/regressions/subject_public_key/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::subject_public_key(data));
