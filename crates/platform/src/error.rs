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
}
