//! `card_transmit`: the body is `jpki_fuzzing::card_transmit` (crates/fuzzing), which also replays fuzz/regressions/card_transmit/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::card_transmit(data));
