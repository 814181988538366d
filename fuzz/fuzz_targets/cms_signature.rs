//! `cms_signature`: the body is `jpki_fuzzing::cms_signature` (crates/fuzzing), which also replays fuzz/regressions/cms_signature/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::cms_signature(data));
