//! The crate's single error type.

use std::fmt;

/// Why a value was rejected.
///
/// Every message is one line, in user terms, and starts with the name of the field that is wrong
/// (`"individual number: check digit is 7 but should be 8"`). Messages about secrets (PINs,
/// passwords, security codes) never repeat the value that was typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A fixed-length digit string has the wrong number of characters.
    #[error("{field}: {found} characters, must be exactly {expected} digits")]
    WrongLength {
        /// The field, in user terms.
        field: &'static str,
        /// How many characters were given.
        found: usize,
        /// How many digits the field has.
        expected: usize,
    },
    /// A character that should be an ASCII digit is not.
    #[error("{field}: character {ch:?} at position {position} is not a digit 0-9")]
    NotADigit {
        /// The field, in user terms.
        field: &'static str,
        /// 1-based character position.
        position: usize,
        /// The offending character.
        ch: char,
    },
    /// A digit value (not a character) is outside `0..=9`.
    #[error("{field}: value {value} at position {position} is not a digit 0-9")]
    DigitOutOfRange {
        /// The field, in user terms.
        field: &'static str,
        /// 1-based position.
        position: usize,
        /// The offending value.
        value: u8,
    },
    /// The check digit does not match the rest of the number.
    #[error("{field}: check digit is {found} but should be {expected}")]
    CheckDigit {
        /// The field, in user terms.
        field: &'static str,
        /// The check digit that was given.
        found: u8,
        /// The check digit computed from the other digits.
        expected: u8,
    },
    /// A required text is empty (after trimming).
    #[error("{field}: must not be empty")]
    Empty {
        /// The field, in user terms.
        field: &'static str,
    },
    /// A text is longer than allowed.
    #[error("{field}: {found} characters, at most {max} allowed")]
    TooLong {
        /// The field, in user terms.
        field: &'static str,
        /// How many characters were given.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// A text contains a control character.
    #[error("{field}: control character U+{code:04X} at position {position} is not allowed")]
    ControlCharacter {
        /// The field, in user terms.
        field: &'static str,
        /// 1-based character position.
        position: usize,
        /// The code point.
        code: u32,
    },
    /// A date is not written as `YYYY-MM-DD`.
    #[error("{field}: {input} is not in the form YYYY-MM-DD")]
    DateFormat {
        /// The field, in user terms.
        field: &'static str,
        /// The input, quoted when that helps reading.
        input: Shown,
    },
    /// A date is well-formed but does not exist (`2023-02-30`).
    #[error("{field}: {input} is not a date")]
    NotADate {
        /// The field, in user terms.
        field: &'static str,
        /// The input as given.
        input: Shown,
    },
    /// A date lies before the start of the Meiji era, so it has no Japanese era year.
    #[error("{field}: {date} is before the Meiji era (1868-01-25)")]
    BeforeMeiji {
        /// The field, in user terms.
        field: &'static str,
        /// The date.
        date: time::Date,
    },
    /// A number lies outside its allowed range.
    #[error("{field}: {found} is not between {min} and {max}")]
    OutOfRange {
        /// The field, in user terms.
        field: &'static str,
        /// The value given.
        found: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A value is not one of a fixed set of names or codes.
    #[error("{field}: {found} is not one of {expected}")]
    NotOneOf {
        /// The field, in user terms.
        field: &'static str,
        /// The input, quoted when that helps reading.
        found: Shown,
        /// The accepted values, as a readable list.
        expected: &'static str,
    },
    /// Any other rule, stated in `reason` (used for secrets, so the value is never shown).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, in user terms.
        field: &'static str,
        /// The rule that was broken.
        reason: &'static str,
    },
}

impl ModelError {
    /// The name of the field the error is about, as it appears at the start of the message.
    pub fn field(&self) -> &'static str {
        match self {
            Self::WrongLength { field, .. }
            | Self::NotADigit { field, .. }
            | Self::DigitOutOfRange { field, .. }
            | Self::CheckDigit { field, .. }
            | Self::Empty { field }
            | Self::TooLong { field, .. }
            | Self::ControlCharacter { field, .. }
            | Self::DateFormat { field, .. }
            | Self::NotADate { field, .. }
            | Self::BeforeMeiji { field, .. }
            | Self::OutOfRange { field, .. }
            | Self::NotOneOf { field, .. }
            | Self::Invalid { field, .. } => field,
        }
    }
}

/// User input echoed in an error message: shown as-is when it is short and plainly printable,
/// otherwise quoted (with escapes) and cut to 40 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    const MAX_CHARS: usize = 40;

    pub(crate) fn new(input: &str) -> Self {
        let plain = !input.is_empty() && input.chars().all(|c| !c.is_whitespace() && !c.is_control());
        let cut: String = input.chars().take(Self::MAX_CHARS).collect();
        let ellipsis = if cut.len() < input.len() { "…" } else { "" };
        if plain && ellipsis.is_empty() {
            Self(cut)
        } else {
            Self(format!("{cut:?}{ellipsis}"))
        }
    }

    /// The text as it appears in the message.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
