//! `model_text`: the body is `jpki_fuzzing::model_text` (crates/fuzzing), which also replays fuzz/regressions/model_text/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::model_text(data));
