//! Policy values: certificate kinds, revocation reasons and the card's secrets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ModelError;
use crate::error::Shown;

/// The two certificates on a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CertKind {
    /// The signature certificate (署名用電子証明書): carries the basic four information.
    Signature,
    /// The user-authentication certificate (利用者証明用電子証明書): carries no personal data.
    Authentication,
}

impl CertKind {
    /// Both kinds.
    pub const ALL: [CertKind; 2] = [CertKind::Signature, CertKind::Authentication];

    /// The short name used on the command line and in storage: `"sign"` or `"auth"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signature => "sign",
            Self::Authentication => "auth",
        }
    }
}

impl FromStr for CertKind {
    type Err = ModelError;

    /// Accepts `"sign"` or `"auth"`.
    fn from_str(s: &str) -> Result<Self, ModelError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ModelError::NotOneOf {
                field: "certificate kind",
                found: Shown::new(s),
                expected: "sign, auth",
            })
    }
}

impl fmt::Display for CertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CertKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CertKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::deserialize_via_str(deserializer)
    }
}

/// A revocation reason, with the RFC 5280 CRLReason codes (7 is unused by the RFC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum RevocationReason {
    /// 0, unspecified.
    Unspecified = 0,
    /// 1, keyCompromise: the card was lost or stolen, or the key is otherwise exposed.
    KeyCompromise = 1,
    /// 2, cACompromise.
    CaCompromise = 2,
    /// 3, affiliationChanged: name or address changed (signature certificate).
    AffiliationChanged = 3,
    /// 4, superseded: replaced on renewal or reissue.
    Superseded = 4,
    /// 5, cessationOfOperation: e.g. death or moving abroad.
    CessationOfOperation = 5,
    /// 6, certificateHold: suspended.
    CertificateHold = 6,
    /// 8, removeFromCRL (delta CRLs only).
    RemoveFromCrl = 8,
    /// 9, privilegeWithdrawn.
    PrivilegeWithdrawn = 9,
    /// 10, aACompromise.
    AaCompromise = 10,
}

impl RevocationReason {
    /// All reasons, in code order.
    pub const ALL: [RevocationReason; 10] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::RemoveFromCrl,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    const EXPECTED: &'static str = "unspecified, key-compromise, ca-compromise, affiliation-changed, superseded, \
        cessation-of-operation, certificate-hold, remove-from-crl, privilege-withdrawn, aa-compromise";

    /// The RFC 5280 CRLReason code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reason for an RFC 5280 CRLReason code; `None` for 7 and codes above 10.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The kebab-case name used on the command line and in storage (`"key-compromise"`).
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "key-compromise",
            Self::CaCompromise => "ca-compromise",
            Self::AffiliationChanged => "affiliation-changed",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessation-of-operation",
            Self::CertificateHold => "certificate-hold",
            Self::RemoveFromCrl => "remove-from-crl",
            Self::PrivilegeWithdrawn => "privilege-withdrawn",
            Self::AaCompromise => "aa-compromise",
        }
    }

    /// The name as spelled in RFC 5280's ASN.1 (`"keyCompromise"`, `"cACompromise"`).
    pub fn rfc_name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }
}

impl FromStr for RevocationReason {
    type Err = ModelError;

    /// Accepts the [`cli_name`](Self::cli_name)s.
    fn from_str(s: &str) -> Result<Self, ModelError> {
        Self::ALL
            .into_iter()
            .find(|r| r.cli_name() == s)
            .ok_or_else(|| ModelError::NotOneOf {
                field: "reason",
                found: Shown::new(s),
                expected: Self::EXPECTED,
            })
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cli_name())
    }
}

impl Serialize for RevocationReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.cli_name())
    }
}

impl<'de> Deserialize<'de> for RevocationReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::deserialize_via_str(deserializer)
    }
}

/// Secret plumbing shared by the PIN and password types: byte access, constant-time equality and a
/// `Debug` that never shows the value.
macro_rules! secret_impls {
    ($ty:ident) => {
        impl $ty {
            /// The secret as ASCII bytes, as sent to the card.
            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }
        }

        impl PartialEq for $ty {
            /// Constant-time comparison of the bytes; only a difference in length shows in the
            /// timing.
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $ty {}

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($ty), "(****)"))
            }
        }
    };
}

/// Checks a 4-digit PIN; the error never repeats the input.
fn four_digits(field: &'static str, s: &str) -> Result<String, ModelError> {
    if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_owned())
    } else {
        Err(ModelError::Invalid {
            field,
            reason: "must be exactly 4 digits",
        })
    }
}

/// The user-authentication PIN (利用者証明用パスワード): exactly 4 ASCII digits.
///
/// Zeroized on drop, compared in constant time, never displayed or serialized.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AuthPin(String);

impl FromStr for AuthPin {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, ModelError> {
        four_digits("auth PIN", s).map(Self)
    }
}

secret_impls!(AuthPin);

/// The card-face assist PIN (券面事項入力補助用暗証番号): exactly 4 ASCII digits.
///
/// Zeroized on drop, compared in constant time, never displayed or serialized.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AssistPin(String);

impl FromStr for AssistPin {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, ModelError> {
        four_digits("assist PIN", s).map(Self)
    }
}

secret_impls!(AssistPin);

/// The signature-certificate password (署名用電子証明書パスワード): 6 to 16 characters of A-Z and 0-9.
///
/// Lowercase a-z input is uppercased first, as JPKI client software does, so `"abc123"` and
/// `"ABC123"` are the same password. Zeroized on drop, compared in constant time, never displayed
/// or serialized.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SignPassword(String);

impl FromStr for SignPassword {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, ModelError> {
        // Build the value first so a rejected candidate is wiped when dropped.
        let candidate = Self(s.to_ascii_uppercase());
        let ok = (6..=16).contains(&candidate.0.len())
            && candidate
                .0
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(candidate)
        } else {
            Err(ModelError::Invalid {
                field: "signing password",
                reason: "must be 6 to 16 characters of A-Z and 0-9",
            })
        }
    }
}

secret_impls!(SignPassword);
