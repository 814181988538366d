//! Certificates read back (`jpki cert show`, verifiers), including the JPKI subjectAltName, and the
//! platform's fast reader of a presented certificate's core (`POST /v1/certificates/validity`):
//! never a panic, and where both readers accept, they agree.
#![no_main]
use jpki_pki::x509::{CertCore, ParsedCert};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = jpki_pki::CertificateInfo::from_der(data);
    let _ = jpki_pki::JpkiSan::from_der(data);
    if let (Ok(core), Ok(full)) = (CertCore::from_der(data), ParsedCert::from_der(data)) {
        assert_eq!(core.serial, full.serial.as_slice());
        assert_eq!(core.issuer_der, full.issuer_der.as_slice());
        assert_eq!((core.not_before, core.not_after), (full.not_before, full.not_after));
    }
});
