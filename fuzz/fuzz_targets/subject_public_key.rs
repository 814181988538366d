//! The public key a card presents for certification (outside input to the authority).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = jpki_pki::SubjectPublicKey::from_der(data);
});
