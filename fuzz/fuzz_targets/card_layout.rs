//! `card_layout`: the body is `jpki_fuzzing::card_layout` (crates/fuzzing), which also replays fuzz/regressions/card_layout/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::card_layout(data));
