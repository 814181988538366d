//! The one error type of this crate.

/// What went wrong while building or reading a signature, a time-stamp or a PDF.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigError {
    /// Input is not the structure it claims to be (garbage, truncated, wrong type).
    #[error("{what}: {detail}")]
    Malformed {
        /// Which object ("CMS signature", "time-stamp request", "PDF", …).
        what: &'static str,
        /// What is wrong with it, in one line.
        detail: String,
    },
    /// Input is well-formed but uses something this implementation does not support.
    #[error("{what}: {detail} is not supported")]
    Unsupported {
        /// Which object.
        what: &'static str,
        /// The unsupported feature.
        detail: String,
    },
    /// Input is larger than the limit for its kind.
    #[error("{what}: {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Which object.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The time-stamp authority refused or answered something unusable.
    #[error("time-stamp authority: {0}")]
    Tsa(String),
    /// A certificate or key operation of the PKI layer failed.
    #[error(transparent)]
    Pki(#[from] jpki_pki::PkiError),
    /// A signing or digest operation failed.
    #[error("{0}")]
    Crypto(String),
}

impl SigError {
    pub(crate) fn malformed(what: &'static str) -> impl FnOnce(der::Error) -> Self {
        move |e| Self::Malformed {
            what,
            detail: e.to_string(),
        }
    }
}
