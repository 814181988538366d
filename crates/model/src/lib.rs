//! The data model of openjpki: the numbers, personal facts, dates and policy values that every other
//! crate of the project speaks in.
//!
//! Everything here is validated on construction, so holding a value means it is well-formed:
//!
//! - [`number`]: the individual number (個人番号), corporate number (法人番号), resident record
//!   code (住民票コード), card ID and certificate serial numbers, with their check digits;
//! - [`facts`]: the basic four information (基本4情報: name, address, birth date, sex) as carried in the
//!   signature certificate, including the Shift_JIS substitution flags;
//! - [`era`]: Japanese eras, the certificate's `EYYYYMMDD` birth date and 照合番号B;
//! - [`validity`]: ages, card expiry and certificate validity, in JST civil dates;
//! - [`policy`]: certificate kinds, revocation reasons and the card's secrets (PINs and password).
//!
//! The crate is pure: it does no I/O, reads no clock and draws no randomness. Callers pass in dates
//! and random bytes. All failures are a [`ModelError`] whose message names the field at fault.
#![warn(missing_docs)]

pub mod era;
pub mod error;
pub mod facts;
pub mod number;
pub mod policy;
pub mod validity;

pub use era::{CollationNumberB, Era};
pub use error::ModelError;
pub use facts::{Address, BasicFour, Name, Sex, parse_birth_date};
pub use number::{CardId, CorporateNumber, IndividualNumber, ResidentRecordCode, Serial};
pub use policy::{AssistPin, AuthPin, CertKind, RevocationReason, SignPassword};

/// Deserializes a value from its string form through its `FromStr` implementation.
fn deserialize_via_str<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = ModelError>,
{
    let s = <String as serde::Deserialize<'de>>::deserialize(deserializer)?;
    s.parse().map_err(serde::de::Error::custom)
}
