//! The one error type of this crate.

/// What went wrong while building, signing or reading PKI objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A DER structure could not be encoded or decoded.
    #[error("{what}: malformed DER ({source})")]
    Der {
        /// Which object was being encoded or decoded.
        what: &'static str,
        /// The encoder's own error.
        source: der::Error,
    },
    /// A key could not be generated, parsed or used.
    #[error("{0}")]
    Key(String),
    /// The passphrase does not open the encrypted private key.
    #[error("the passphrase does not decrypt the authority key (wrong passphrase or damaged key file)")]
    WrongPassphrase,
    /// A certificate does not have the shape this profile expects.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A date cannot be represented in a certificate.
    #[error("{what}: {when} cannot be represented in X.509 (years 1950 to 9999)")]
    Time {
        /// Which field.
        what: &'static str,
        /// The date-time that did not fit.
        when: String,
    },
    /// A URL used in a certificate is not acceptable.
    #[error("public URL: {0}")]
    Url(String),
    /// An OCSP request or response is not acceptable (one line saying what is wrong).
    #[error("OCSP: {0}")]
    Ocsp(String),
}

impl PkiError {
    pub(crate) fn der(what: &'static str) -> impl FnOnce(der::Error) -> Self {
        move |source| Self::Der { what, source }
    }
}
