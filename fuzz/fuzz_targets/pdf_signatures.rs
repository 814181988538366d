//! `pdf_signatures`: the body is `jpki_fuzzing::pdf_signatures` (crates/fuzzing), which also replays fuzz/regressions/pdf_signatures/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::pdf_signatures(data));
