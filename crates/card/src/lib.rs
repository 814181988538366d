//! The My Number card as software: an ISO/IEC 7816-4 card with the JPKI, text-assist, card-face,
//! 住基 and common applications, byte-compatible with the real card for the commands public
//! clients send (docs/CARD.md).
//!
//! - [`apdu`]: the command/response byte format.
//! - [`VirtualCard`]: the card as a pure state machine, APDU bytes in, response bytes out.
//! - [`CardFile`]: the card kept in an encrypted, integrity-protected file, each state change on
//!   disk before its answer leaves the card.
//! - [`layout`] and [`face`]: the contents of the applications' files, which the authority
//!   writes at issuance and clients read.
//!
//! Key pairs are generated on the card and no command reads a private key.

pub mod apdu;
mod error;
pub mod face;
pub mod file;
pub mod layout;
mod machine;
mod rsa;
mod state;
mod store;

pub use error::CardError;
pub use machine::{ATR, HolderSecrets, Personalization, VirtualCard, jpki_ef, management_response, tag};
pub use rsa::{SHA256_DIGEST_INFO_PREFIX, sha256, sha256_digest_info};
pub use state::{Ap, Format, KeySlot, Secret};
pub use store::{CardFile, DEVICE_KEY_ENV, DeviceKey};

/// Fills `buf` from the system's secure random generator.
pub(crate) fn random(buf: &mut [u8]) -> Result<(), CardError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CardError::Crypto("random generator failed".into()))
}
