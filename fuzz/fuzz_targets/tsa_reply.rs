//! `tsa_reply`: the body is `jpki_fuzzing::tsa_reply` (crates/fuzzing), which also replays fuzz/regressions/tsa_reply/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::tsa_reply(data));
