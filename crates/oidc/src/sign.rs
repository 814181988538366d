//! Sign transactions (the `sign` scope): a relying party asks the person to sign a document's
//! SHA-256 with their signature key, the person approves on the provider's page with the signing
//! password (through their card agent), and the relying party fetches the signature and the
//! signature certificate.
//!
//! 1. [`SignTransactions::open`]: an authenticated client names the digest, a description the
//!    person will see, a registered redirect URI, its `state` and, optionally, the `sub` it knows
//!    the person by (then nobody else can sign). It gets a transaction id and the page's URL.
//! 2. The person opens the page ([`SignTransactions::pending`]); the card signs through the agent;
//!    the provider checks the certificate and the signature and records them
//!    ([`SignTransactions::complete`]), or the person declines ([`SignTransactions::decline`]).
//! 3. The client fetches the outcome ([`SignTransactions::outcome`]): pending, declined, or the
//!    signature with its certificate.
//!
//! Transactions live in memory for [`TRANSACTION_LIFETIME`].
use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use time::{Duration, OffsetDateTime};

use crate::OidcError;

/// How long a transaction waits and its outcome stays fetchable.
pub const TRANSACTION_LIFETIME: Duration = Duration::minutes(10);
/// The longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// Transactions kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

/// What the relying party asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// Its client_id.
    pub client_id: String,
    /// Its name.
    pub client_name: String,
    /// Where the person's browser goes afterwards.
    pub redirect_uri: String,
    /// Returned with the redirect.
    pub state: String,
    /// The SHA-256 to sign.
    pub digest: [u8; 32],
    /// What the person is shown.
    pub description: String,
    /// The signer the relying party expects (its pairwise `sub`), if any.
    pub sub: Option<String>,
}

/// How a transaction ended (or not yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutcome {
    /// Waiting for the person.
    Pending,
    /// The person declined (or the signature could not be checked).
    Declined,
    /// Signed.
    Signed {
        /// The PKCS#1 v1.5 signature over the digest.
        signature: Vec<u8>,
        /// The signature certificate (DER).
        certificate: Vec<u8>,
        /// When.
        at: OffsetDateTime,
    },
}

#[derive(Debug)]
struct Transaction {
    request: SignRequest,
    outcome: SignOutcome,
    expires: OffsetDateTime,
}

/// The open sign transactions.
#[derive(Debug, Default)]
pub struct SignTransactions {
    all: Mutex<HashMap<String, Transaction>>,
}

/// Reads the `digest` parameter: base64url (no padding) of 32 bytes.
pub fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
}

/// Checks a description: 1 to [`MAX_DESCRIPTION_CHARS`] characters, no control characters.
pub fn check_description(text: &str) -> Result<(), String> {
    if text.trim().is_empty() || text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!("description: 1 to {MAX_DESCRIPTION_CHARS} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("description: no control characters".into());
    }
    Ok(())
}

impl SignTransactions {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a transaction; its id (unguessable: it is also what the person's page is named by).
    pub fn open(&self, request: SignRequest, now: OffsetDateTime) -> Result<String, OidcError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| OidcError::Key("no randomness".into()))?;
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut all = self.all.lock().map_err(|_| OidcError::Poisoned)?;
        if all.len() >= SWEEP_AT {
            all.retain(|_, t| t.expires > now);
        }
        if all.len() >= crate::login::MAX_PENDING {
            return Err(OidcError::Busy);
        }
        all.insert(
            id.clone(),
            Transaction {
                request,
                outcome: SignOutcome::Pending,
                expires: now + TRANSACTION_LIFETIME,
            },
        );
        Ok(id)
    }

    /// The request of transaction `id` while it waits for the person.
    pub fn pending(&self, id: &str, now: OffsetDateTime) -> Option<SignRequest> {
        let all = self.all.lock().ok()?;
        match all.get(id) {
            Some(t) if t.expires > now && t.outcome == SignOutcome::Pending => Some(t.request.clone()),
            _ => None,
        }
    }

    fn finish(&self, id: &str, outcome: SignOutcome, now: OffsetDateTime) -> Option<SignRequest> {
        let mut all = self.all.lock().ok()?;
        match all.get_mut(id) {
            Some(t) if t.expires > now && t.outcome == SignOutcome::Pending => {
                t.outcome = outcome;
                Some(t.request.clone())
            }
            _ => None,
        }
    }

    /// Records the checked signature of transaction `id`; its request (for the redirect), or
    /// `None` if it is not waiting.
    pub fn complete(
        &self,
        id: &str,
        signature: Vec<u8>,
        certificate: Vec<u8>,
        now: OffsetDateTime,
    ) -> Option<SignRequest> {
        self.finish(
            id,
            SignOutcome::Signed {
                signature,
                certificate,
                at: now,
            },
            now,
        )
    }

    /// The person declined transaction `id`; its request, or `None` if it is not waiting.
    pub fn decline(&self, id: &str, now: OffsetDateTime) -> Option<SignRequest> {
        self.finish(id, SignOutcome::Declined, now)
    }

    /// The outcome of transaction `id` for the client `client_id` (`None`: no such transaction
    /// of this client, or expired).
    pub fn outcome(&self, id: &str, client_id: &str, now: OffsetDateTime) -> Option<SignOutcome> {
        let all = self.all.lock().ok()?;
        match all.get(id) {
            Some(t) if t.expires > now && t.request.client_id == client_id => Some(t.outcome.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request() -> SignRequest {
        SignRequest {
            client_id: "bank".into(),
            client_name: "Bank".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            state: "s".into(),
            digest: [7; 32],
            description: "Loan contract".into(),
            sub: None,
        }
    }

    #[test]
    fn a_transaction_is_signed_once_and_only_its_client_sees_the_outcome() {
        let t = SignTransactions::new();
        let now = OffsetDateTime::now_utc();
        let id = t.open(request(), now).unwrap();
        assert_eq!(t.outcome(&id, "bank", now), Some(SignOutcome::Pending));
        assert!(t.pending(&id, now).is_some());
        assert!(t.complete(&id, vec![1], vec![2], now).is_some());
        assert!(t.complete(&id, vec![3], vec![4], now).is_none(), "signed once");
        assert!(t.decline(&id, now).is_none());
        assert!(
            matches!(t.outcome(&id, "bank", now), Some(SignOutcome::Signed { signature, .. }) if signature == [1])
        );
        assert_eq!(t.outcome(&id, "shop", now), None, "another client");
        assert_eq!(
            t.outcome(&id, "bank", now + TRANSACTION_LIFETIME),
            None,
            "expired"
        );
        let declined = t.open(request(), now).unwrap();
        assert!(t.decline(&declined, now).is_some());
        assert_eq!(t.outcome(&declined, "bank", now), Some(SignOutcome::Declined));
    }

    #[test]
    fn digests_and_descriptions() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        assert_eq!(parse_digest(&b64.encode([9u8; 32])), Some([9; 32]));
        assert_eq!(parse_digest(&b64.encode([9u8; 31])), None);
        assert_eq!(parse_digest("not base64!"), None);
        assert!(check_description("住宅ローン契約書").is_ok());
        assert!(check_description(" ").is_err());
        assert!(check_description("a\u{0}b").is_err());
        assert!(check_description(&"x".repeat(201)).is_err());
    }
}
