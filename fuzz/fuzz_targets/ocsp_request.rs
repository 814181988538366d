//! `ocsp_request`: the body is `jpki_fuzzing::ocsp_request` (crates/fuzzing), which also replays fuzz/regressions/ocsp_request/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::ocsp_request(data));
