//! The card. Key pairs are generated here and never leave: the authority only ever receives the
//! public halves (a CSR-like request) and writes certificates back.
//!
//! This is the card as the authority issue needs it: a file holding two RSA-2048 key pairs, the
//! certificates, and PIN verifiers. The byte-compatible APDU state machine (JPKI AP, PIN counters,
//! private keys encrypted at rest, integrity protection) replaces this representation in the card
//! issue; until then the file is written atomically with mode 0600 and its keys are NOT encrypted.

pub mod apdu;
mod error;
pub mod file;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use jpki_model::{AuthPin, CertKind, SignPassword};
use serde::{Deserialize, Serialize};
use std::path::Path;
use zeroize::Zeroizing;

pub use error::CardError;

const FORMAT: u32 = 0;
const PIN_ITERATIONS: u32 = 10_000;

/// A card with its two key slots.
#[derive(Serialize, Deserialize)]
pub struct Card {
    format: u32,
    card_id: Option<String>,
    auth: Slot,
    sign: Slot,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("card_id", &self.card_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Slot {
    /// PKCS#8, base64. Never leaves the card through any method of this type.
    private_key: Zeroizing<String>,
    certificate: Option<String>,
    pin_salt: String,
    pin_verifier: String,
}

fn rng_fill(b: &mut [u8]) -> Result<(), CardError> {
    aws_lc_rs::rand::fill(b).map_err(|_| CardError::Crypto("random generator failed".into()))
}

impl Slot {
    fn new(secret: &[u8]) -> Result<Self, CardError> {
        let key = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| CardError::Crypto("RSA key generation failed".into()))?;
        let der = AsDer::<Pkcs8V1Der<'_>>::as_der(&key)
            .map_err(|_| CardError::Crypto("key export failed".into()))?;
        let mut salt = [0u8; 16];
        rng_fill(&mut salt)?;
        Ok(Self {
            private_key: Zeroizing::new(B64.encode(der.as_ref())),
            certificate: None,
            pin_salt: B64.encode(salt),
            pin_verifier: B64.encode(verifier(&salt, secret)),
        })
    }

    fn regenerate(&mut self) -> Result<(), CardError> {
        let key = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| CardError::Crypto("RSA key generation failed".into()))?;
        let der = AsDer::<Pkcs8V1Der<'_>>::as_der(&key)
            .map_err(|_| CardError::Crypto("key export failed".into()))?;
        self.private_key = Zeroizing::new(B64.encode(der.as_ref()));
        self.certificate = None;
        Ok(())
    }

    fn public_key(&self) -> Result<Vec<u8>, CardError> {
        let der = Zeroizing::new(
            B64.decode(self.private_key.as_bytes())
                .map_err(|_| CardError::Damaged("key slot".into()))?,
        );
        let key = KeyPair::from_pkcs8(&der).map_err(|_| CardError::Damaged("key slot".into()))?;
        Ok(key
            .public_key()
            .as_der()
            .map_err(|_| CardError::Crypto("public key export failed".into()))?
            .as_ref()
            .to_vec())
    }
}

fn verifier(salt: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let iterations = std::num::NonZeroU32::new(PIN_ITERATIONS).unwrap_or(std::num::NonZeroU32::MIN);
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        secret,
        &mut out,
    );
    out
}

impl Card {
    /// A new card: both key pairs are generated on it, protected by the auth PIN and the
    /// signing password.
    pub fn manufacture(auth_pin: &AuthPin, sign_password: &SignPassword) -> Result<Self, CardError> {
        Ok(Self {
            format: FORMAT,
            card_id: None,
            auth: Slot::new(auth_pin.as_bytes())?,
            sign: Slot::new(sign_password.as_bytes())?,
        })
    }

    fn slot(&self, kind: CertKind) -> &Slot {
        match kind {
            CertKind::Signature => &self.sign,
            CertKind::Authentication => &self.auth,
        }
    }

    fn slot_mut(&mut self, kind: CertKind) -> &mut Slot {
        match kind {
            CertKind::Signature => &mut self.sign,
            CertKind::Authentication => &mut self.auth,
        }
    }

    /// The DER SubjectPublicKeyInfo of the key pair of `kind`: all the authority ever sees.
    pub fn public_key(&self, kind: CertKind) -> Result<Vec<u8>, CardError> {
        self.slot(kind).public_key()
    }

    /// Generates a new key pair in the slot of `kind` (renewal); its certificate is cleared.
    pub fn regenerate_key(&mut self, kind: CertKind) -> Result<(), CardError> {
        self.slot_mut(kind).regenerate()
    }

    /// Writes the card identifier and the certificates the authority issued.
    pub fn install(&mut self, card_id: &str, kind: CertKind, cert_der: &[u8]) {
        self.card_id = Some(card_id.to_owned());
        self.slot_mut(kind).certificate = Some(B64.encode(cert_der));
    }

    /// The card identifier, once issued.
    pub fn card_id(&self) -> Option<&str> {
        self.card_id.as_deref()
    }

    /// The certificate in slot `kind`, if any.
    pub fn certificate(&self, kind: CertKind) -> Result<Option<Vec<u8>>, CardError> {
        self.slot(kind)
            .certificate
            .as_ref()
            .map(|c| {
                B64.decode(c)
                    .map_err(|_| CardError::Damaged("certificate slot".into()))
            })
            .transpose()
    }

    /// Checks a PIN or password against the slot of `kind` (no counters yet: the card issue adds them).
    pub fn check_secret(&self, kind: CertKind, secret: &[u8]) -> Result<bool, CardError> {
        let s = self.slot(kind);
        let salt = B64
            .decode(&s.pin_salt)
            .map_err(|_| CardError::Damaged("PIN salt".into()))?;
        let want = B64
            .decode(&s.pin_verifier)
            .map_err(|_| CardError::Damaged("PIN verifier".into()))?;
        Ok(aws_lc_rs::constant_time::verify_slices_are_equal(&verifier(&salt, secret), &want).is_ok())
    }

    /// Reads a card file.
    pub fn load(path: &Path) -> Result<Self, CardError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(CardError::io(path))?);
        let card: Self = serde_json::from_slice(&bytes)
            .map_err(|e| CardError::Damaged(format!("{}: not a card file ({e})", path.display())))?;
        if card.format != FORMAT {
            return Err(CardError::Damaged(format!(
                "{}: card format {} not supported",
                path.display(),
                card.format
            )));
        }
        Ok(card)
    }

    /// Writes the card file atomically with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), CardError> {
        let json = Zeroizing::new(serde_json::to_vec(self).map_err(|e| CardError::Crypto(e.to_string()))?);
        file::write_atomically(path, &json, 0o600).map_err(CardError::io(path))
    }
}
