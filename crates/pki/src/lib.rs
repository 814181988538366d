//! X.509 for the JPKI profile: the authority's keys, the two roots (one per CA key generation, with
//! the link certificates of RFC 4210 §4.4 between generations, see [`cert`]), signature and
//! user-authentication certificates, the JPKI subjectAltName, and CRLs (the ARL lists revoked link
//! certificates).
//!
//! Pure building and reading of DER; no storage, no clock (callers pass times), no network.
//! Signing uses aws-lc-rs; encodings use RustCrypto's `der`, `spki` and `x509-cert`.

pub mod cert;
pub mod crl;
pub mod endpoints;
mod error;
pub mod inspect;
pub mod key;
pub mod name;
pub mod ocsp;
pub mod oid;
pub mod path;
pub mod revocation;
pub mod san;
pub mod time;
pub mod tlv;
pub mod x509;

pub use cert::{CustomSpec, EndEntitySpec, Issuer, RootSpec, extensions, issue_root};
pub use crl::{CrlEntry, CrlScope, CrlSpec};
pub use endpoints::Endpoints;
pub use error::PkiError;
pub use inspect::{CertificateInfo, subject_public_key_der, verify_signed_by, verify_signed_by_key};
pub use key::{KeyType, SigningKey, SubjectPublicKey, decrypt_pkcs8_pem, encrypt_pkcs8_pem};
pub use ocsp::{
    CertId, CertIdHash, CertStatus, IssuerHashes, OcspRequest, OcspResponseStatus, Responder, SingleStatus,
};
pub use san::JpkiSan;

/// PEM-encodes DER under `label` ("CERTIFICATE", "X509 CRL", …).
pub fn to_pem(label: &'static str, der: &[u8]) -> Result<String, PkiError> {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).map_err(|e| PkiError::Der {
        what: "PEM",
        source: e.into(),
    })
}
