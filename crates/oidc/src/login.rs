//! Logging in with the card: the challenge the authorization page hands to the person's card agent,
//! the statement the card signs, and the logins waiting between the steps.
//!
//! 1. [`Logins::begin`]: a validated [`AuthorizationRequest`] gets a login id (`tx`, unguessable)
//!    and a 32-byte challenge; the page sends both, with the provider's origin, to the card agent.
//! 2. The agent shows the origin and the relying party, takes the PIN (and the signing password
//!    when personal data is asked for), and has the card sign [`statement_digest`] with the
//!    authentication key (and the signature key). The statement binds the provider's origin, so a
//!    signature made for one site is useless at another (as WebAuthn binds its origin).
//! 3. [`Logins::take_challenge`]: the provider checks the signatures against the challenge it issued
//!    (once: the login leaves this stage whatever the outcome), then
//!    [`Logins::await_consent`] keeps who logged in, under a **new** id that only the consent page
//!    (served to the browser that brought the card's answer) carries, until the person approves or
//!    declines ([`Logins::take_consent`]). The first id was in the authorization page, which whoever
//!    started the login saw: it must not also decide the consent.
//!
//! Logins live in memory for [`LOGIN_LIFETIME`], stored under the SHA-256 of their id.
use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use time::{Duration, OffsetDateTime};

use crate::OidcError;
use crate::provider::{AuthorizationRequest, Subject};

/// How long a person has from the authorization page to the consent decision.
pub const LOGIN_LIFETIME: Duration = Duration::minutes(10);

/// The domain separator of the statement a card signs to log in.
const STATEMENT_TAG: &[u8] = b"openjpki card login v1\0";

/// Logins kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;
/// Logins in progress at most: beyond, new ones are refused until some finish or expire.
pub const MAX_PENDING: usize = 100_000;

/// The statement a card signs to log in to `origin` (scheme://host[:port], as the browser shows
/// it) with `challenge`: a domain separator, the origin, a NUL, the challenge. The card signs its
/// SHA-256 ([`statement_digest`]) with PKCS#1 v1.5, so the signature verifies as an ordinary
/// sha256WithRSAEncryption signature over these bytes.
pub fn statement(origin: &str, challenge: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(STATEMENT_TAG.len() + origin.len() + 1 + challenge.len());
    s.extend_from_slice(STATEMENT_TAG);
    s.extend_from_slice(origin.as_bytes());
    s.push(0);
    s.extend_from_slice(challenge);
    s
}

/// The SHA-256 of [`statement`]: what the card agent hands to the card.
pub fn statement_digest(origin: &str, challenge: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &statement(origin, challenge)).as_ref(),
    );
    out
}

/// The origin (`scheme://host[:port]`) of an absolute http(s) URL, lowercased; `None` for
/// anything else.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.chars().any(|c| c.is_whitespace()) {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// What the authorization page sends to the card agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardChallenge {
    /// The login's id.
    pub tx: String,
    /// The challenge, base64url without padding.
    pub challenge: String,
}

#[derive(Debug)]
enum Stage {
    Card { challenge: [u8; 32] },
    Consent { subject: Box<Subject> },
}

#[derive(Debug)]
struct Login {
    request: AuthorizationRequest,
    stage: Stage,
    expires: OffsetDateTime,
}

/// Logins between the authorization page and the consent decision.
#[derive(Debug, Default)]
pub struct Logins {
    pending: Mutex<HashMap<[u8; 32], Login>>,
}

fn key(tx: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, tx.as_bytes()).as_ref());
    out
}

fn random<const N: usize>() -> Result<[u8; N], OidcError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| OidcError::Key("no randomness".into()))?;
    Ok(bytes)
}

impl Logins {
    /// No logins yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new login for `request`: its id and the challenge for the card.
    pub fn begin(
        &self,
        request: AuthorizationRequest,
        now: OffsetDateTime,
    ) -> Result<CardChallenge, OidcError> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let tx = b64.encode(random::<32>()?);
        let challenge = random::<32>()?;
        let mut pending = self.pending.lock().map_err(|_| OidcError::Poisoned)?;
        if pending.len() >= SWEEP_AT {
            pending.retain(|_, l| l.expires > now);
        }
        if pending.len() >= MAX_PENDING {
            return Err(OidcError::Busy);
        }
        pending.insert(
            key(&tx),
            Login {
                request,
                stage: Stage::Card { challenge },
                expires: now + LOGIN_LIFETIME,
            },
        );
        Ok(CardChallenge {
            tx,
            challenge: b64.encode(challenge),
        })
    }

    /// Login `tx` taken out if it is live and `at_stage` says it is at the expected stage; left
    /// in place otherwise.
    fn take(&self, tx: &str, now: OffsetDateTime, at_stage: fn(&Stage) -> bool) -> Option<Login> {
        let mut pending = self.pending.lock().ok()?;
        let k = key(tx);
        let live = pending
            .get(&k)
            .is_some_and(|l| l.expires > now && at_stage(&l.stage));
        if live { pending.remove(&k) } else { None }
    }

    /// The request and challenge of login `tx`, which waits for the card; the login is gone
    /// afterwards (a card answer is checked once). `None` if there is no such login, it is not
    /// waiting for the card, or it expired.
    pub fn take_challenge(&self, tx: &str, now: OffsetDateTime) -> Option<(AuthorizationRequest, [u8; 32])> {
        match self.take(tx, now, |s| matches!(s, Stage::Card { .. }))? {
            Login {
                request,
                stage: Stage::Card { challenge },
                ..
            } => Some((request, challenge)),
            _ => None,
        }
    }

    /// A login proved possession of the card as `subject`: it waits for the person's decision under
    /// the new id returned (for the consent page only).
    pub fn await_consent(
        &self,
        request: AuthorizationRequest,
        subject: Subject,
        now: OffsetDateTime,
    ) -> Result<String, OidcError> {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<32>()?);
        let mut pending = self.pending.lock().map_err(|_| OidcError::Poisoned)?;
        pending.insert(
            key(&id),
            Login {
                request,
                stage: Stage::Consent {
                    subject: Box::new(subject),
                },
                expires: now + LOGIN_LIFETIME,
            },
        );
        Ok(id)
    }

    /// The request and subject of login `tx`, which waits for the consent decision; gone
    /// afterwards. `None` if there is no such login at that stage, or it expired.
    pub fn take_consent(&self, tx: &str, now: OffsetDateTime) -> Option<(AuthorizationRequest, Subject)> {
        match self.take(tx, now, |s| matches!(s, Stage::Consent { .. }))? {
            Login {
                request,
                stage: Stage::Consent { subject },
                ..
            } => Some((request, *subject)),
            _ => None,
        }
    }

    /// The request and subject of login `tx` waiting for consent, left in place (to show the
    /// consent page again).
    pub fn peek_consent(&self, tx: &str, now: OffsetDateTime) -> Option<(AuthorizationRequest, Subject)> {
        let pending = self.pending.lock().ok()?;
        match pending.get(&key(tx)) {
            Some(Login {
                request,
                stage: Stage::Consent { subject },
                expires,
            }) if *expires > now => Some((request.clone(), (**subject).clone())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Scope;
    use crate::provider::UserClaims;

    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "bank".into(),
            client_name: "Bank".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            scopes: vec![Scope::OpenId],
            state: "s".into(),
            nonce: "n".into(),
            code_challenge: "c".into(),
        }
    }

    fn subject(now: OffsetDateTime) -> Subject {
        Subject {
            sub: "abc".into(),
            claims: UserClaims::default(),
            auth_time: now,
        }
    }

    #[test]
    fn a_login_goes_through_each_stage_once() {
        let logins = Logins::new();
        let now = OffsetDateTime::now_utc();
        let c = logins.begin(request(), now).unwrap();
        assert!(
            logins.take_consent(&c.tx, now).is_none(),
            "not at the consent stage yet"
        );
        let (req, challenge) = logins.take_challenge(&c.tx, now).unwrap();
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(challenge),
            c.challenge
        );
        assert!(
            logins.take_challenge(&c.tx, now).is_none(),
            "a challenge is answered once"
        );
        let consent = logins.await_consent(req, subject(now), now).unwrap();
        assert_ne!(consent, c.tx, "the consent is decided under a new id");
        assert!(
            logins.take_consent(&c.tx, now).is_none(),
            "the first id decides nothing"
        );
        assert!(logins.take_challenge(&consent, now).is_none());
        assert!(logins.peek_consent(&consent, now).is_some());
        assert_eq!(logins.take_consent(&consent, now).unwrap().1.sub, "abc");
        assert!(logins.take_consent(&consent, now).is_none(), "decided once");
    }

    #[test]
    fn logins_expire_and_unknown_ids_are_refused() {
        let logins = Logins::new();
        let now = OffsetDateTime::now_utc();
        let c = logins.begin(request(), now).unwrap();
        assert!(logins.take_challenge("other", now).is_none());
        assert!(logins.take_challenge(&c.tx, now + LOGIN_LIFETIME).is_none());
    }

    #[test]
    fn the_statement_binds_origin_and_challenge() {
        let a = statement_digest("https://a.example", &[1; 32]);
        assert_ne!(a, statement_digest("https://b.example", &[1; 32]));
        assert_ne!(a, statement_digest("https://a.example", &[2; 32]));
        // The separator keeps origin and challenge apart.
        assert_ne!(
            statement_digest("https://a.example", b"x"),
            statement_digest("https://a.example\0x", b"")
        );
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("HTTP://127.0.0.1:8080/oidc/x?y").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("https://Example.jp").as_deref(),
            Some("https://example.jp")
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("https://user@x"), None);
        assert_eq!(origin_of("https:///x"), None);
        assert_eq!(origin_of("/relative"), None);
    }
}
