//! Japanese eras (元号), the certificate's `EYYYYMMDD` birth date and 照合番号B.

use std::fmt;

use subtle::ConstantTimeEq;
use time::Date;
use time::macros::date;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ModelError;

/// A Japanese era since the Meiji restoration, with its first day in the Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Era {
    /// 明治, from 1868-01-25.
    Meiji,
    /// 大正, from 1912-07-30.
    Taisho,
    /// 昭和, from 1926-12-25.
    Showa,
    /// 平成, from 1989-01-08.
    Heisei,
    /// 令和, from 2019-05-01.
    Reiwa,
}

impl Era {
    /// All eras, oldest first.
    pub const ALL: [Era; 5] = [Era::Meiji, Era::Taisho, Era::Showa, Era::Heisei, Era::Reiwa];

    /// The first day of the era (Gregorian).
    pub fn start(self) -> Date {
        match self {
            Self::Meiji => date!(1868 - 01 - 25),
            Self::Taisho => date!(1912 - 07 - 30),
            Self::Showa => date!(1926 - 12 - 25),
            Self::Heisei => date!(1989 - 01 - 08),
            Self::Reiwa => date!(2019 - 05 - 01),
        }
    }

    /// The era a date falls in; `None` before 1868-01-25.
    pub fn of(date: Date) -> Option<Era> {
        Self::ALL.into_iter().rev().find(|era| era.start() <= date)
    }

    /// The era digit used in the certificate's birth date: 1 Meiji, 2 Taishō, 3 Shōwa, 4 Heisei,
    /// 5 Reiwa.
    pub fn digit(self) -> u8 {
        self as u8 + 1
    }

    /// The era's name in Japanese (明治, 大正, 昭和, 平成, 令和).
    pub fn name_ja(self) -> &'static str {
        match self {
            Self::Meiji => "明治",
            Self::Taisho => "大正",
            Self::Showa => "昭和",
            Self::Heisei => "平成",
            Self::Reiwa => "令和",
        }
    }

    /// The era and the year within it (the first, partial, year is 1): 1980-02-17 is (Shōwa, 55),
    /// 1989-01-07 is (Shōwa, 64) and 1989-01-08 is (Heisei, 1). `None` before Meiji.
    pub fn year_of(date: Date) -> Option<(Era, i32)> {
        Self::of(date).map(|era| (era, date.year() - era.start().year() + 1))
    }

    /// Same as [`cert_birth_date`].
    pub fn cert_birth_date(date: Date) -> String {
        cert_birth_date(date)
    }

    /// Same as [`collation_birth`].
    pub fn collation_birth(date: Date) -> Option<String> {
        collation_birth(date)
    }
}

impl fmt::Display for Era {
    /// The Japanese name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_ja())
    }
}

/// The birth date as carried in the signature certificate, `EYYYYMMDD`: the era digit (`0` when
/// unknown, i.e. before Meiji) followed by the GREGORIAN date. 1980-02-17 gives `"319800217"`.
pub fn cert_birth_date(date: Date) -> String {
    let era = Era::of(date).map_or(0, Era::digit);
    format!(
        "{era}{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The birth date as era-year `YYMMDD`, as used in 照合番号B: 1980-02-17 (Shōwa 55) gives
/// `"550217"`. `None` before Meiji or when the era year exceeds 99.
pub fn collation_birth(date: Date) -> Option<String> {
    let (_, year) = Era::year_of(date).filter(|&(_, year)| year <= 99)?;
    Some(format!("{year:02}{:02}{:02}", u8::from(date.month()), date.day()))
}

/// 照合番号B, the 14-digit access code of the card-face AP: the birth date as era-year `YYMMDD`,
/// the card's expiry year (4 digits, Gregorian) and the 4-digit security code printed on the card.
///
/// It unlocks personal data, so it is zeroized on drop, compared in constant time (only the length
/// can leak) and masked entirely in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CollationNumberB(String);

impl CollationNumberB {
    /// Builds the code. Fails when the birth date is before Meiji (or its era year exceeds 99),
    /// the expiry year is not 1000..=9999, or the security code is not exactly 4 ASCII digits.
    /// Example: 1980-02-17, 2035, `"2285"` gives `"55021720352285"`.
    pub fn new(birth: Date, card_expiry_year: i32, security_code: &str) -> Result<Self, ModelError> {
        let Some(birth_part) = collation_birth(birth) else {
            return Err(match Era::of(birth) {
                None => ModelError::BeforeMeiji {
                    field: "birth date",
                    date: birth,
                },
                Some(_) => ModelError::Invalid {
                    field: "birth date",
                    reason: "era year is above 99 and does not fit in 照合番号B",
                },
            });
        };
        if !(1000..=9999).contains(&card_expiry_year) {
            return Err(ModelError::OutOfRange {
                field: "card expiry year",
                found: i64::from(card_expiry_year),
                min: 1000,
                max: 9999,
            });
        }
        if security_code.len() != 4 || !security_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ModelError::Invalid {
                field: "security code",
                reason: "must be exactly 4 digits",
            });
        }
        Ok(Self(format!("{birth_part}{card_expiry_year}{security_code}")))
    }

    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 14 digits as ASCII bytes, as sent to the card.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl PartialEq for CollationNumberB {
    /// Constant-time comparison of the bytes; only a length difference shows in the timing.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for CollationNumberB {}

impl fmt::Debug for CollationNumberB {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CollationNumberB(**************)")
    }
}
