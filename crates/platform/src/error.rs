//! The one error type of the platform.
use jpki_pki::PkiError;

/// What went wrong, in the operator's terms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// Signing or checking a signature failed, or a key was unusable.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A record that cannot be appended where it was asked to go.
    #[error("access log: {0}")]
    Log(String),
    /// Bad input; the message names the field.
    #[error("{0}")]
    Input(String),
    /// A relying party (or other record) that does not exist.
    #[error("{0}: not found")]
    NotFound(String),
    /// The platform's database failed.
    #[error("platform database: {0}")]
    Db(#[from] jpki_db::DbError),
    /// The platform's database holds something this build cannot read.
    #[error("platform database: unreadable {0}")]
    Corrupt(String),
}
