//! `consent_statement`: the body is `jpki_fuzzing::consent_statement` (crates/fuzzing), which also replays fuzz/regressions/consent_statement/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::consent_statement(data));
