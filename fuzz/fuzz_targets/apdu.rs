//! `apdu`: the body is `jpki_fuzzing::apdu` (crates/fuzzing), which also replays fuzz/regressions/apdu/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::apdu(data));
