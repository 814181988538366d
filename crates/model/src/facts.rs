//! The basic four information (基本4情報): name, address, birth date and sex, as recorded in the
//! resident register and carried in the signature certificate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month};

use crate::ModelError;
use crate::error::Shown;

/// The 47 prefectures, in JIS X 0401 code order (北海道 = 01 … 沖縄県 = 47).
pub const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

/// Trims surrounding whitespace (including U+3000) and checks a register text field.
fn validate_text(field: &'static str, max: usize, s: &str) -> Result<String, ModelError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ModelError::Empty { field });
    }
    if let Some((i, c)) = s.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(ModelError::ControlCharacter {
            field,
            position: i + 1,
            code: u32::from(c),
        });
    }
    let found = s.chars().count();
    if found > max {
        return Err(ModelError::TooLong { field, found, max });
    }
    Ok(s.to_owned())
}

/// One ASCII `'0'`/`'1'` per character: `'1'` when the character has no Shift_JIS (CP932, i.e.
/// JIS X 0208 plus vendor extensions) encoding. Such characters are 外字 that the register has to
/// substitute; the certificate carries these flags next to the name and address.
fn substitution_flags(s: &str) -> String {
    let mut buf = [0u8; 4];
    s.chars()
        .map(|c| {
            let (_, _, unmappable) = encoding_rs::SHIFT_JIS.encode(c.encode_utf8(&mut buf));
            if unmappable { '1' } else { '0' }
        })
        .collect()
}

/// `as_str`, `substitution_flags`, `Display`, `FromStr` and serde (as the string) for a text field.
macro_rules! register_text {
    ($ty:ident, $field:literal, $max:literal) => {
        impl $ty {
            /// Maximum length in characters (Unicode scalar values).
            pub const MAX_CHARS: usize = $max;

            /// The text, trimmed.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// One ASCII `'0'` or `'1'` per character, `'1'` marking a character that cannot be
            /// encoded in Shift_JIS (JIS X 0208 / CP932) and so needs substitution (外字) in the
            /// register. Goes into the certificate's substitute-character-flag attribute.
            pub fn substitution_flags(&self) -> String {
                substitution_flags(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = ModelError;

            /// Trims surrounding whitespace; rejects empty text, control characters and text
            /// longer than [`MAX_CHARS`](Self::MAX_CHARS).
            fn from_str(s: &str) -> Result<Self, ModelError> {
                validate_text($field, Self::MAX_CHARS, s).map(Self)
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

/// A person's name as registered: 1 to 100 characters, no control characters, surrounding
/// whitespace trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

register_text!(Name, "name", 100);

/// An address as registered: 1 to 200 characters, no control characters, surrounding whitespace
/// trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address(String);

register_text!(Address, "address", 200);

/// Municipality names that the suffix rule of [`Address::city`] would cut short, because a 市,
/// 町, 村 or 郡 occurs inside them and is not followed by another suffix character.
const CITY_EXCEPTIONS: [&str; 7] = [
    "四日市市",
    "廿日市市",
    "野々市市",
    "東村山市",
    "武蔵村山市",
    "田村市",
    "大和郡山市",
];

/// District (郡) names with a 市 or 村 inside them.
const DISTRICT_EXCEPTIONS: [&str; 6] = ["余市郡", "高市郡", "北村山郡", "西村山郡", "東村山郡", "田村郡"];

impl Address {
    /// The prefecture the address starts with, one of [`PREFECTURES`], or `None`.
    pub fn prefecture(&self) -> Option<&str> {
        PREFECTURES
            .into_iter()
            .find(|p| self.0.starts_with(p))
            .map(|p| &self.0[..p.len()])
    }

    /// The municipality following the prefecture: everything up to and including the first 市, 区,
    /// 町 or 村 that ends a name of at least two characters (`"千葉県市川市八幡"` gives `"市川市"`,
    /// `"神奈川県横浜市中区"` gives `"横浜市"`). When a 郡 comes first, the city runs through the
    /// following 町 or 村 (`"北海道虻田郡倶知安町"` gives `"虻田郡倶知安町"`).
    ///
    /// This is a heuristic over the text, not a lookup of the municipality code: a 町 or 村
    /// directly followed by 町, 村 or 市 is extended over it (大町市, 玉村町), and a few names with
    /// an inner suffix character are known (四日市市, 東村山市, 大和郡山市, 余市郡, …). `None` when
    /// there is no known prefecture or no suffix.
    pub fn city(&self) -> Option<&str> {
        let rest = &self.0[self.prefecture()?.len()..];
        if let Some(city) = CITY_EXCEPTIONS.into_iter().find(|c| rest.starts_with(c)) {
            return Some(&rest[..city.len()]);
        }
        let (end, suffix) = match DISTRICT_EXCEPTIONS.into_iter().find(|d| rest.starts_with(d)) {
            Some(district) => (district.len(), '郡'),
            None => municipality_end(rest, &['市', '区', '町', '村', '郡'])?,
        };
        if suffix != '郡' {
            return Some(&rest[..end]);
        }
        let (town_end, _) = municipality_end(&rest[end..], &['町', '村'])?;
        Some(&rest[..end + town_end])
    }
}

/// Byte end of the first name in `s` (at least two characters) ending in one of `suffixes`, and that
/// suffix. A 町 or 村 immediately followed by 町, 村 or 市 extends over that character.
fn municipality_end(s: &str, suffixes: &[char]) -> Option<(usize, char)> {
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if suffixes.contains(&c) {
            return Some(match chars.peek() {
                Some(&(j, next @ ('町' | '村' | '市'))) if matches!(c, '町' | '村') => {
                    (j + next.len_utf8(), next)
                }
                _ => (i + c.len_utf8(), c),
            });
        }
    }
    None
}

/// Sex, coded per JIS X 0303 (the code "0 unknown" is not used by the register).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Sex {
    /// Code 1.
    Male = 1,
    /// Code 2.
    Female = 2,
    /// Code 9.
    NotApplicable = 9,
}

impl Sex {
    const FIELD: &'static str = "sex code";
    const EXPECTED: &'static str = "1 (male), 2 (female), 9 (not applicable)";

    /// The JIS X 0303 code: 1, 2 or 9.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The code as the ASCII digit carried in the certificate: `'1'`, `'2'` or `'9'`.
    pub fn code_char(self) -> char {
        char::from(b'0' + self.code())
    }

    /// The sex for a JIS X 0303 code 1, 2 or 9.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Male),
            2 => Some(Self::Female),
            9 => Some(Self::NotApplicable),
            _ => None,
        }
    }
}

impl FromStr for Sex {
    type Err = ModelError;

    /// Accepts exactly `"1"`, `"2"` or `"9"`.
    fn from_str(s: &str) -> Result<Self, ModelError> {
        match s {
            "1" => Ok(Self::Male),
            "2" => Ok(Self::Female),
            "9" => Ok(Self::NotApplicable),
            _ => Err(ModelError::NotOneOf {
                field: Self::FIELD,
                found: Shown::new(s),
                expected: Self::EXPECTED,
            }),
        }
    }
}

impl Serialize for Sex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for Sex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = u8::deserialize(deserializer)?;
        Self::from_code(code).ok_or_else(|| {
            serde::de::Error::custom(ModelError::NotOneOf {
                field: Self::FIELD,
                found: Shown::new(&code.to_string()),
                expected: Self::EXPECTED,
            })
        })
    }
}

/// Parses a birth date written `YYYY-MM-DD`. The error tells a malformed text apart from a
/// well-formed date that does not exist (`2023-02-30`).
pub fn parse_birth_date(s: &str) -> Result<Date, ModelError> {
    parse_date("birth date", s)
}

/// Parses `YYYY-MM-DD` for the named field.
pub(crate) fn parse_date(field: &'static str, s: &str) -> Result<Date, ModelError> {
    let b = s.as_bytes();
    let well_formed = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9].iter().all(|&i| b[i].is_ascii_digit());
    if !well_formed {
        return Err(ModelError::DateFormat {
            field,
            input: Shown::new(s),
        });
    }
    let num =
        |range: std::ops::Range<usize>| b[range].iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    let date = Month::try_from(num(5..7) as u8)
        .and_then(|month| Date::from_calendar_date(i32::from(num(0..4)), month, num(8..10) as u8));
    date.map_err(|_| ModelError::NotADate {
        field,
        input: Shown::new(s),
    })
}

/// The basic four information (基本4情報) of a person as taken from the resident register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicFour {
    /// 氏名.
    pub name: Name,
    /// 住所.
    pub address: Address,
    /// 生年月日 (Gregorian).
    pub birth_date: Date,
    /// 性別.
    pub sex: Sex,
}
