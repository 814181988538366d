//! Certificates read back (`jpki cert show`, verifiers), including the JPKI subjectAltName.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = jpki_pki::CertificateInfo::from_der(data);
    let _ = jpki_pki::JpkiSan::from_der(data);
});
