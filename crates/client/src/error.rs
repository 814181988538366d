//! The one error type of the client.

/// What went wrong talking to a card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The card file could not be opened, read or written.
    #[error(transparent)]
    Card(#[from] jpki_card::CardError),
    /// The PC/SC service or reader failed (no pcscd, no such reader, card removed, …).
    #[error("PC/SC: {0}")]
    Reader(String),
    /// The vpcd connection failed.
    #[error("vpcd {addr}: {reason}")]
    Vpcd {
        /// host:port of pcscd's vpcd driver.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// The card answered a command with an error status word.
    #[error("{what}: card answered {sw:04X} ({meaning})")]
    Status {
        /// The operation, in the user's terms ("read the signature certificate").
        what: String,
        /// SW1 SW2.
        sw: u16,
        /// The status word's meaning.
        meaning: &'static str,
    },
    /// The card's answer was not what the JPKI interface defines.
    #[error("{0}")]
    Malformed(String),
    /// A PIN or password was refused; `tries_left` more attempts remain (0: now locked).
    #[error("{what}: wrong PIN or password ({tries_left} tries left)")]
    WrongSecret {
        /// Which secret.
        what: String,
        /// Remaining attempts.
        tries_left: u8,
    },
    /// The PIN or password is locked; only the authority can unblock it.
    #[error("{0}: locked after too many wrong attempts (the authority can unblock it: `jpki card unblock`)")]
    Locked(String),
}
