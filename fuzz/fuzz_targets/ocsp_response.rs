//! `ocsp_response`: the body is `jpki_fuzzing::ocsp_response` (crates/fuzzing), which also replays fuzz/regressions/ocsp_response/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::ocsp_response(data));
