//! `crl`: the body is `jpki_fuzzing::crl` (crates/fuzzing), which also replays fuzz/regressions/crl/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::crl(data));
