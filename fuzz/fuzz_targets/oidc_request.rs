//! `oidc_request`: the body is `jpki_fuzzing::oidc_request` (crates/fuzzing), which also replays fuzz/regressions/oidc_request/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| jpki_fuzzing::oidc_request(data));
