//! The one error type of the card.

/// What went wrong with the card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The card file is unreadable or not a card.
    #[error("card: {0}")]
    Damaged(String),
    /// A cryptographic operation on the card failed.
    #[error("card: {0}")]
    Crypto(String),
    /// The card refused an operation (a value of the wrong format, an existing file, …).
    #[error("card: {0}")]
    Refused(String),
    /// Another process holds the card file.
    #[error("{0}: card file is in use by another process (is `jpki card plug` running?)")]
    InUse(String),
    /// Bytes that are not a well-formed APDU.
    #[error("APDU: {0}")]
    Apdu(&'static str),
    /// The card file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl CardError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
