//! Identifying numbers: individual number, corporate number, resident record code, card ID and
//! certificate serial numbers.
//!
//! The digit-string types keep their text form; they parse strictly (ASCII digits only, no spaces
//! or hyphens) and check their check digit where they have one.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// Parses exactly `N` ASCII digits into digit values `0..=9`.
fn parse_digits<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], ModelError> {
    let found = s.chars().count();
    if found != N {
        return Err(ModelError::WrongLength {
            field,
            found,
            expected: N,
        });
    }
    let mut digits = [0u8; N];
    for ((position, ch), digit) in s.chars().enumerate().zip(&mut digits) {
        if !ch.is_ascii_digit() {
            return Err(ModelError::NotADigit {
                field,
                position: position + 1,
                ch,
            });
        }
        *digit = ch as u8 - b'0';
    }
    Ok(digits)
}

/// Checks that every value of a digit array is `0..=9`.
fn check_digit_values(field: &'static str, digits: &[u8]) -> Result<(), ModelError> {
    match digits.iter().position(|&d| d > 9) {
        Some(i) => Err(ModelError::DigitOutOfRange {
            field,
            position: i + 1,
            value: digits[i],
        }),
        None => Ok(()),
    }
}

/// Writes digit values `0..=9` as ASCII text.
fn digits_to_string(digits: &[u8]) -> String {
    digits.iter().map(|&d| char::from(b'0' + d % 10)).collect()
}

/// Maps random bytes to digit values with `b % 10`. The bias is small (digits 0-5 come out with
/// probability 26/256, digits 6-9 with 25/256) and harmless for identifiers that are not secrets.
fn random_digits<const N: usize>(bytes: [u8; N]) -> [u8; N] {
    bytes.map(|b| b % 10)
}

/// Modulus-11 check digit, weights 2,3,4,5,6,7,2,3,… from the right; `0` when the remainder is 0 or 1.
fn mod11_check_digit(base: &[u8]) -> u8 {
    let sum: u32 = base
        .iter()
        .rev()
        .zip((2..=7).cycle())
        .map(|(&p, q)| u32::from(p) * q)
        .sum();
    let r = sum % 11;
    if r <= 1 { 0 } else { (11 - r) as u8 }
}

/// Writes `****…` for all but the last four characters of `s`.
fn write_masked(f: &mut fmt::Formatter<'_>, type_name: &str, s: &str) -> fmt::Result {
    let shown = s.len().saturating_sub(4);
    write!(f, "{type_name}({}{})", "*".repeat(shown), &s[shown..])
}

/// `as_str`, `Display`, `Serialize` and `Deserialize` (as the digit string) for a digit-string type.
macro_rules! digit_string_impls {
    ($ty:ident) => {
        impl $ty {
            /// The digits as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                crate::deserialize_via_str(deserializer)
            }
        }
    };
}

/// An individual number (個人番号, "My Number"): 12 ASCII digits, the last a check digit.
///
/// The check digit follows the 総務省令: over the first 11 digits, with weights 2,3,4,5,6,7,2,3,4,5,6
/// counted from the right, `r = Σ mod 11`, check digit `0` if `r <= 1`, else `11 - r`.
///
/// The number may only be used for tax, social security and disaster work and never alone to
/// authenticate anyone; `Debug` therefore masks all but the last four digits. `Display`,
/// [`as_str`](Self::as_str) and `Serialize` give the full number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndividualNumber(String);

impl IndividualNumber {
    const FIELD: &'static str = "individual number";

    /// The check digit for an 11-digit base given as digit values `0..=9` (not ASCII).
    pub fn check_digit(base: &[u8; 11]) -> u8 {
        mod11_check_digit(base)
    }

    /// Builds the number from its first 11 digits (values `0..=9`), appending the check digit.
    pub fn from_base(base: [u8; 11]) -> Result<Self, ModelError> {
        check_digit_values(Self::FIELD, &base)?;
        Ok(Self::from_valid_base(base))
    }

    /// Builds a valid number from 11 caller-supplied random bytes (each mapped to a digit with
    /// `b % 10`, a slight bias towards 0-5), appending the check digit.
    pub fn from_random_bytes(bytes: [u8; 11]) -> Self {
        Self::from_valid_base(random_digits(bytes))
    }

    fn from_valid_base(base: [u8; 11]) -> Self {
        let mut s = digits_to_string(&base);
        s.push(char::from(b'0' + Self::check_digit(&base)));
        Self(s)
    }
}

impl FromStr for IndividualNumber {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, ModelError> {
        let digits: [u8; 12] = parse_digits(Self::FIELD, s)?;
        let mut base = [0u8; 11];
        base.copy_from_slice(&digits[..11]);
        let expected = Self::check_digit(&base);
        if digits[11] != expected {
            return Err(ModelError::CheckDigit {
                field: Self::FIELD,
                found: digits[11],
                expected,
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for IndividualNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "IndividualNumber", &self.0)
    }
}

digit_string_impls!(IndividualNumber);

/// A corporate number (法人番号): 13 ASCII digits, the FIRST a check digit.
///
/// Per the 財務省令, over the 12-digit base with `Pn` the n-th digit from the right and `Qn` = 1 for
/// odd n, 2 for even n, the check digit is `9 − (Σ Pn·Qn mod 9)`. Corporate numbers are public, so
/// nothing is masked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CorporateNumber(String);

impl CorporateNumber {
    const FIELD: &'static str = "corporate number";

    /// The check digit for a 12-digit base given as digit values `0..=9` (not ASCII).
    pub fn check_digit(base: &[u8; 12]) -> u8 {
        let sum: u32 = base
            .iter()
            .rev()
            .zip([1, 2].into_iter().cycle())
            .map(|(&p, q)| u32::from(p) * q)
            .sum();
        (9 - sum % 9) as u8
    }

    /// Builds the number from its 12-digit base (values `0..=9`), prepending the check digit.
    pub fn from_base(base: [u8; 12]) -> Result<Self, ModelError> {
        check_digit_values(Self::FIELD, &base)?;
        let mut s = String::with_capacity(13);
        s.push(char::from(b'0' + Self::check_digit(&base)));
        s.push_str(&digits_to_string(&base));
        Ok(Self(s))
    }
}

impl FromStr for CorporateNumber {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, ModelError> {
        let digits: [u8; 13] = parse_digits(Self::FIELD, s)?;
        let mut base = [0u8; 12];
        base.copy_from_slice(&digits[1..]);
        let expected = Self::check_digit(&base);
        if digits[0] != expected {
            return Err(ModelError::CheckDigit {
                field: Self::FIELD,
                found: digits[0],
                expected,
            });
        }
        Ok(Self(s.to_owned()))
    }
}

digit_string_impls!(CorporateNumber);

/// A resident record code (住民票コード): 11 ASCII digits, 10 plus a check digit, held in the card's
/// 住基AP.
///
/// The public sources available to this project do not state the check-digit rule, so we use the
/// same modulus-11 scheme as [`IndividualNumber`] applied to the 10-digit base: weights
/// 2,3,4,5,6,7,2,3,4,5 from the right, `r = Σ mod 11`, check digit `0` if `r <= 1`, else `11 − r`.
/// `Debug` masks all but the last four digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResidentRecordCode(String);

impl ResidentRecordCode {
    const FIELD: &'static str = "resident record code";

    /// The check digit for a 10-digit base given as digit values `0..=9` (not ASCII).
    pub fn check_digit(base: &[u8; 10]) -> u8 {
        mod11_check_digit(base)
    }

    /// Builds a valid code from 10 caller-supplied random bytes (each mapped to a digit with
    /// `b % 10`), appending the check digit.
    pub fn from_random_bytes(bytes: [u8; 10]) -> Self {
        let base = random_digits(bytes);
        let mut s = digits_to_string(&base);
        s.push(char::from(b'0' + Self::check_digit(&base)));
        Self(s)
    }
}

impl FromStr for ResidentRecordCode {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, ModelError> {
        let digits: [u8; 11] = parse_digits(Self::FIELD, s)?;
        let mut base = [0u8; 10];
        base.copy_from_slice(&digits[..10]);
        let expected = Self::check_digit(&base);
        if digits[10] != expected {
            return Err(ModelError::CheckDigit {
                field: Self::FIELD,
                found: digits[10],
                expected,
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for ResidentRecordCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "ResidentRecordCode", &self.0)
    }
}

digit_string_impls!(ResidentRecordCode);

/// A card ID: 15 ASCII digits without a check digit, like the serial in the card's common-AP record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardId(String);

impl CardId {
    const FIELD: &'static str = "card ID";

    /// Builds an ID from 15 caller-supplied random bytes, each mapped to a digit with `b % 10`.
    pub fn from_random_bytes(bytes: [u8; 15]) -> Self {
        Self(digits_to_string(&random_digits(bytes)))
    }
}

impl FromStr for CardId {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, ModelError> {
        parse_digits::<15>(Self::FIELD, s)?;
        Ok(Self(s.to_owned()))
    }
}

digit_string_impls!(CardId);

/// A certificate serial number: a positive integer, stored as minimal big-endian bytes (no leading
/// zero bytes).
///
/// RFC 5280 §4.1.2.2 limits a serial to 20 octets as DER INTEGER content. That count includes the
/// `0x00` pad a DER INTEGER needs when the top bit of the magnitude is set, so the value must be
/// below 2^159: 20 magnitude bytes are accepted only when the first is `0x01..=0x7F`.
///
/// Ordering is numeric. `Display`, `Serialize` and [`to_hex`](Self::to_hex) give lowercase hex
/// without leading zeros.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    const FIELD: &'static str = "serial";
    /// Largest DER INTEGER content length allowed by RFC 5280.
    pub const MAX_DER_OCTETS: usize = 20;

    /// Builds a serial from big-endian bytes, read as an unsigned magnitude (not two's complement,
    /// so DER INTEGER content with its `0x00` pad is accepted as is). Leading zero bytes are
    /// ignored; the value must be non-zero and fit in 20 DER octets (see the type's documentation).
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let magnitude = &bytes[start..];
        if magnitude.is_empty() {
            return Err(ModelError::Invalid {
                field: Self::FIELD,
                reason: "must be a positive number, not zero",
            });
        }
        let serial = Self(magnitude.to_vec());
        if serial.der_len() > Self::MAX_DER_OCTETS {
            return Err(Self::too_long());
        }
        Ok(serial)
    }

    /// Builds a 16-byte serial for sharded issuance from 16 caller-supplied random bytes.
    ///
    /// Byte 0 is `0x40 | (random[0] & 0x3F)`, so the value is always positive, at least 2^126 and
    /// exactly 16 bytes long; bytes 1..3 are `shard` big-endian; bytes 3..16 are `random[3..16]`
    /// (104 random bits; `random[1]` and `random[2]` are unused).
    pub fn generate(random: [u8; 16], shard: u16) -> Self {
        let mut bytes = random;
        bytes[0] = 0x40 | (random[0] & 0x3F);
        bytes[1..3].copy_from_slice(&shard.to_be_bytes());
        Self(bytes.to_vec())
    }

    /// The shard of a serial made by [`generate`](Self::generate): bytes 1..3 when the serial is
    /// exactly 16 bytes with byte 0 in `0x40..=0x7F`, otherwise `None`.
    pub fn shard(&self) -> Option<u16> {
        match self.0.as_slice() {
            [0x40..=0x7F, hi, lo, ..] if self.0.len() == 16 => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        }
    }

    /// The minimal big-endian magnitude (never empty, first byte never zero).
    pub fn as_be_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The DER INTEGER content octets: the magnitude, with a leading `0x00` when its top bit is set
    /// so the integer stays positive.
    pub fn to_der_int_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.der_len());
        if self.needs_pad() {
            out.push(0);
        }
        out.extend_from_slice(&self.0);
        out
    }

    /// Lowercase hex of the integer without leading zeros (`0x0abc` gives `"abc"`).
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(self.0.len() * 2);
        for &b in &self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
        match s.strip_prefix('0') {
            Some(rest) => rest.to_owned(),
            None => s,
        }
    }

    fn too_long() -> ModelError {
        ModelError::Invalid {
            field: Self::FIELD,
            reason: "longer than the 20 octets RFC 5280 allows (at most 2^159 - 1)",
        }
    }

    fn needs_pad(&self) -> bool {
        self.0.first().is_some_and(|&b| b & 0x80 != 0)
    }

    fn der_len(&self) -> usize {
        self.0.len() + usize::from(self.needs_pad())
    }
}

impl FromStr for Serial {
    type Err = ModelError;

    /// Parses hex, case-insensitive, with an optional `0x` prefix; leading zeros are ignored.
    fn from_str(s: &str) -> Result<Self, ModelError> {
        let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ModelError::Invalid {
                field: Self::FIELD,
                reason: "must be hexadecimal digits 0-9 a-f, optionally prefixed with 0x",
            });
        }
        let digits = digits.trim_start_matches('0');
        if digits.len() > 2 * Self::MAX_DER_OCTETS {
            return Err(Self::too_long());
        }
        let nibble = |b: u8| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        let mut bytes = Vec::with_capacity(digits.len() / 2 + 1);
        let raw = digits.as_bytes();
        let (head, tail) = raw.split_at(raw.len() % 2);
        if let [b] = head {
            bytes.push(nibble(*b));
        }
        for pair in tail.chunks_exact(2) {
            bytes.push(nibble(pair[0]) << 4 | nibble(pair[1]));
        }
        Self::from_be_bytes(&bytes)
    }
}

impl Ord for Serial {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Serial {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial(0x{})", self.to_hex())
    }
}

impl Serialize for Serial {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Serial {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::deserialize_via_str(deserializer)
    }
}
