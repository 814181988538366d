//! The OpenID Connect provider of openjpki, as protocol logic without I/O: "log in with the card"
//! the way the Digital Authentication App (デジタル認証アプリ) offers it to relying parties. The
//! HTTP server (`jpki serve`) hands requests to [`Provider`] and proves possession of the card
//! before [`Provider::grant`]; see docs/LOGIN.md.
//!
//! - [`provider`]: authorization requests, codes, the token endpoint with client authentication
//!   (private_key_jwt, client_secret_basic), ID tokens, userinfo, discovery.
//! - [`pkce`]: RFC 7636 S256.
//! - [`sign`]: sign transactions (the `sign` scope).
//! - [`login`]: the card challenge, the statement the card signs, logins waiting between pages.
//! - [`keys`]: the ID-token signing keys (ES256, RS256) and the JWKS.
pub mod keys;
pub mod login;
pub mod pkce;
pub mod provider;
pub mod sign;

/// The JWK set type relying parties' keys come in.
pub use jsonwebtoken::jwk::JwkSet;
pub use keys::{SigningAlg, SigningKeys, check_client_jwks, generate_pkcs8};
pub use login::{CardChallenge, Logins, origin_of, statement, statement_digest};
pub use provider::{
    AuthorizationRequest, AuthorizeError, Client, ClientAuth, Clients, Config, Provider, Subject, TokenError,
    UserClaims,
};
use serde::{Deserialize, Serialize};
pub use sign::{SignOutcome, SignRequest, SignTransactions};

/// What went wrong inside the provider (protocol refusals are [`AuthorizeError`] and
/// [`TokenError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// A signing key is unusable, or signing failed.
    #[error("OpenID Connect signing key: {0}")]
    Key(String),
    /// Something a client registered is unusable (names what and why).
    #[error("{0}")]
    Input(String),
    /// Too many logins or transactions are in progress.
    #[error("too many logins in progress; try again in a few minutes")]
    Busy,
    /// A thread panicked while holding the provider's state.
    #[error("the OpenID Connect provider's state was lost (a thread panicked)")]
    Poisoned,
}

/// A scope the provider offers, in the order consent pages list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// `openid`: log in; the relying party gets its pairwise `sub` only.
    OpenId,
    /// `name`: the name on the card.
    Name,
    /// `address`: the address on the card.
    Address,
    /// `birthdate`: the birth date.
    Birthdate,
    /// `gender`: the sex on the card.
    Gender,
    /// `sign`: a signature with the signature key (sign transactions).
    Sign,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Self; 6] = [
        Self::OpenId,
        Self::Name,
        Self::Address,
        Self::Birthdate,
        Self::Gender,
        Self::Sign,
    ];

    /// Its name in a scope parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenId => "openid",
            Self::Name => "name",
            Self::Address => "address",
            Self::Birthdate => "birthdate",
            Self::Gender => "gender",
            Self::Sign => "sign",
        }
    }

    /// From its name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// One of the four facts (released only after the signature certificate's password).
    pub fn is_personal(self) -> bool {
        matches!(self, Self::Name | Self::Address | Self::Birthdate | Self::Gender)
    }
}
