//! The one error type of the authority.
use jpki_model::ModelError;
use jpki_pki::PkiError;

/// What went wrong, in the operator's terms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorityError {
    /// Bad input (a number, a name, a date …); the message names the field.
    #[error(transparent)]
    Input(#[from] ModelError),
    /// Building or signing a certificate or CRL failed, or a key was unusable.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The data directory has no authority yet.
    #[error("no authority in {0}: run `jpki init` first")]
    NotInitialised(String),
    /// `jpki init` on a directory that already holds an authority.
    #[error("an authority already exists in {0}")]
    AlreadyInitialised(String),
    /// A resident, card or certificate that does not exist.
    #[error("{what} {id}: not found")]
    NotFound {
        /// "resident", "card", "certificate".
        what: &'static str,
        /// The identifier given.
        id: String,
    },
    /// An individual number that is already assigned.
    #[error("individual number: already assigned to another resident")]
    NumberInUse,
    /// The operation is not allowed in the current state; the message says why.
    #[error("{0}")]
    State(String),
    /// The registry database failed (or could not be reached).
    #[error("registry: {0}")]
    Registry(#[from] jpki_db::DbError),
    /// The registry holds something it should not (damage or a newer schema).
    #[error("registry: {0}")]
    Corrupt(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl AuthorityError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
