//! `card_answer`: the body is `jpki_fuzzing::card_answer` (crates/fuzzing), which also replays fuzz/regressions/card_answer/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::card_answer(data));
