//! ISO/IEC 7816-4 command and response APDUs: the byte format every client speaks to the card.
//!
//! A command is `CLA INS P1 P2 [Lc data] [Le]` in one of the seven cases of ISO/IEC 7816-3 §12.1:
//!
//! | case | bytes after the header | Nc | Ne |
//! |---|---|---|---|
//! | 1 | none | 0 | 0 |
//! | 2S | `Le` | 0 | `Le` (00 = 256) |
//! | 3S | `Lc data` (Lc 01–FF) | Lc | 0 |
//! | 4S | `Lc data Le` | Lc | `Le` (00 = 256) |
//! | 2E | `00 Le1 Le2` | 0 | `Le1Le2` (0000 = 65,536) |
//! | 3E | `00 Lc1 Lc2 data` (Lc 0001–FFFF) | Lc | 0 |
//! | 4E | `00 Lc1 Lc2 data Le1 Le2` | Lc | `Le1Le2` (0000 = 65,536) |
//!
//! Parsing is total: any byte string is either one of these or a [`CardError::Apdu`] that names
//! what is wrong; it never panics (`fuzz/fuzz_targets/apdu.rs`).

use crate::CardError;

/// A parsed command APDU, borrowing its data field from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// The command data field (Nc bytes; empty in cases 1 and 2).
    pub data: &'a [u8],
    /// Ne, the maximum number of response bytes expected (1–65,536), or `None` in cases 1 and 3.
    pub ne: Option<usize>,
    /// Whether the length fields were extended (cases 2E, 3E, 4E).
    pub extended: bool,
}

fn bad(reason: &'static str) -> CardError {
    CardError::Apdu(reason)
}

/// A short Le byte as Ne: 00 means 256.
fn short_ne(b: u8) -> usize {
    if b == 0 { 256 } else { usize::from(b) }
}

/// An extended Le as Ne: 0000 means 65,536.
fn extended_ne(hi: u8, lo: u8) -> usize {
    match u16::from_be_bytes([hi, lo]) {
        0 => 65_536,
        n => usize::from(n),
    }
}

impl<'a> Command<'a> {
    /// Parses one command APDU (the whole byte string; nothing may follow it).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CardError> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(bad("shorter than the 4-byte header CLA INS P1 P2"));
        };
        let header = |data, ne, extended| Self {
            cla: *cla,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data,
            ne,
            extended,
        };
        match body {
            // Case 1.
            [] => Ok(header(&[], None, false)),
            // Case 2S.
            [le] => Ok(header(&[], Some(short_ne(*le)), false)),
            // Case 2E.
            [0, hi, lo] => Ok(header(&[], Some(extended_ne(*hi, *lo)), true)),
            // Cases 3E and 4E.
            [0, hi, lo, rest @ ..] => {
                let nc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if nc == 0 {
                    return Err(bad("extended Lc is 0000"));
                }
                match rest.len().checked_sub(nc) {
                    Some(0) => Ok(header(rest, None, true)),
                    Some(2) => {
                        let (data, le) = rest.split_at(nc);
                        Ok(header(data, Some(extended_ne(le[0], le[1])), true))
                    }
                    _ => Err(bad("extended Lc disagrees with the length of the data field")),
                }
            }
            // Cases 3S and 4S (a leading 00 that does not fit an extended case is an error).
            [0, ..] => Err(bad("a 00 length byte followed by a length that fits no case")),
            [lc, rest @ ..] => {
                let nc = usize::from(*lc);
                match rest.len().checked_sub(nc) {
                    Some(0) => Ok(header(rest, None, false)),
                    Some(1) => {
                        let (data, le) = rest.split_at(nc);
                        Ok(header(data, Some(short_ne(le[0])), false))
                    }
                    _ => Err(bad("Lc disagrees with the length of the data field")),
                }
            }
        }
    }

    /// Encodes the command: short length fields when Nc ≤ 255 and Ne ≤ 256 (unless `extended`
    /// is set), extended otherwise; a command with neither data nor Ne is always case 1. Fails when Nc exceeds 65,535 or Ne is 0 or above 65,536.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CardError> {
        let nc = self.data.len();
        if nc > 65_535 {
            return Err(bad("data field longer than 65,535 bytes"));
        }
        if let Some(ne) = self.ne
            && (ne == 0 || ne > 65_536)
        {
            return Err(bad("Ne must be 1 to 65,536"));
        }
        // Case 1 has no length field to extend.
        let extended = (self.extended || nc > 255 || self.ne.is_some_and(|ne| ne > 256))
            && (nc > 0 || self.ne.is_some());
        let mut out = Vec::with_capacity(4 + 3 + nc + 2);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        // The truncating casts below keep the low bytes: 256 → 00 and 65,536 → 0000, as encoded.
        let low8 = |n: usize| (n & 0xFF) as u8;
        let be16 = |n: usize| [((n >> 8) & 0xFF) as u8, (n & 0xFF) as u8];
        if extended {
            out.push(0);
            if nc > 0 {
                out.extend_from_slice(&be16(nc));
                out.extend_from_slice(self.data);
            }
            if let Some(ne) = self.ne {
                out.extend_from_slice(&be16(ne));
            }
        } else {
            if nc > 0 {
                out.push(low8(nc));
                out.extend_from_slice(self.data);
            }
            if let Some(ne) = self.ne {
                out.push(low8(ne));
            }
        }
        Ok(out)
    }
}

/// A status word (SW1 SW2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sw(pub u16);

impl Sw {
    /// 9000: normal processing.
    pub const OK: Self = Self(0x9000);
    /// 6282: end of file reached before Ne bytes were read.
    pub const END_OF_FILE: Self = Self(0x6282);
    /// 6300: verification failed, no counter (an unlimited key).
    pub const VERIFY_FAILED: Self = Self(0x6300);
    /// 6581: memory failure (the card could not store its new state, so it withholds the answer).
    pub const MEMORY_FAILURE: Self = Self(0x6581);
    /// 6700: wrong length (Lc or Le).
    pub const WRONG_LENGTH: Self = Self(0x6700);
    /// 6882: secure messaging not supported.
    pub const SM_NOT_SUPPORTED: Self = Self(0x6882);
    /// 6981: command incompatible with the file structure (e.g. reading a key EF).
    pub const INCOMPATIBLE_FILE: Self = Self(0x6981);
    /// 6982: security status not satisfied (PIN required).
    pub const SECURITY_NOT_SATISFIED: Self = Self(0x6982);
    /// 6984: reference data not usable (the PIN is blocked).
    pub const BLOCKED: Self = Self(0x6984);
    /// 6985: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: Self = Self(0x6985);
    /// 6986: command not allowed (no current EF).
    pub const NOT_ALLOWED: Self = Self(0x6986);
    /// 6A80: incorrect data field.
    pub const WRONG_DATA: Self = Self(0x6A80);
    /// 6A82: file or application not found.
    pub const NOT_FOUND: Self = Self(0x6A82);
    /// 6A83: record not found.
    pub const RECORD_NOT_FOUND: Self = Self(0x6A83);
    /// 6A86: incorrect P1 or P2.
    pub const WRONG_P1P2: Self = Self(0x6A86);
    /// 6A88: referenced data (e.g. a GET DATA tag) not found.
    pub const DATA_NOT_FOUND: Self = Self(0x6A88);
    /// 6B00: wrong parameters (offset beyond the end of the EF).
    pub const OFFSET_OUT_OF_RANGE: Self = Self(0x6B00);
    /// 6D00: instruction not supported.
    pub const INS_NOT_SUPPORTED: Self = Self(0x6D00);
    /// 6E00: class not supported.
    pub const CLA_NOT_SUPPORTED: Self = Self(0x6E00);
    /// 6F00: no precise diagnosis (an internal failure).
    pub const UNKNOWN: Self = Self(0x6F00);

    /// 63Cx: verification failed (or, for an empty VERIFY, the state), `tries` attempts left
    /// (capped at 15, the most the nibble holds).
    pub fn tries_left(tries: u8) -> Self {
        Self(0x63C0 | u16::from(tries.min(15)))
    }

    /// 61xx: `available` more bytes can be fetched with GET RESPONSE (00 = 256 or more).
    pub fn more_available(available: usize) -> Self {
        Self(0x6100 | (available.min(256) & 0xFF) as u16)
    }

    /// 6Cxx: wrong Le; resend with Le = `exact` (00 = 256).
    pub fn wrong_le(exact: usize) -> Self {
        Self(0x6C00 | (exact.min(256) & 0xFF) as u16)
    }

    /// What the status word means, in a few words.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x9000 => "success",
            0x6282 => "end of file reached",
            0x6300 => "verification failed",
            0x63C0..=0x63CF => "verification failed or counter",
            0x6100..=0x61FF => "more data available",
            0x6581 => "card memory failure",
            0x6700 => "wrong length",
            0x6882 => "secure messaging not supported",
            0x6981 => "command incompatible with the file",
            0x6982 => "security status not satisfied (PIN required)",
            0x6984 => "PIN or password locked",
            0x6985 => "conditions of use not satisfied",
            0x6986 => "command not allowed (no current file)",
            0x6A80 => "incorrect data",
            0x6A82 => "file or application not found",
            0x6A83 => "record not found",
            0x6A86 => "incorrect P1/P2",
            0x6A88 => "referenced data not found",
            0x6B00 => "offset beyond the end of the file",
            0x6C00..=0x6CFF => "wrong Le",
            0x6D00 => "instruction not supported",
            0x6E00 => "class not supported",
            _ => "error",
        }
    }

    /// SW1.
    pub fn sw1(self) -> u8 {
        self.0.to_be_bytes()[0]
    }

    /// SW2.
    pub fn sw2(self) -> u8 {
        self.0.to_be_bytes()[1]
    }
}

impl std::fmt::Display for Sw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// A response APDU: data then SW1 SW2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The response data field.
    pub data: Vec<u8>,
    /// The status word.
    pub sw: Sw,
}

impl Response {
    /// A status word alone.
    pub fn status(sw: Sw) -> Self {
        Self { data: Vec::new(), sw }
    }

    /// Data with 9000.
    pub fn ok(data: Vec<u8>) -> Self {
        Self { data, sw: Sw::OK }
    }

    /// Splits response bytes into data and status word.
    pub fn parse(bytes: &[u8]) -> Result<Self, CardError> {
        match bytes {
            [data @ .., sw1, sw2] => Ok(Self {
                data: data.to_vec(),
                sw: Sw(u16::from_be_bytes([*sw1, *sw2])),
            }),
            _ => Err(bad("response shorter than the 2-byte status word")),
        }
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.0.to_be_bytes());
        out
    }
}
