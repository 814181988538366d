//! The contents of the card's elementary files (EFs): pure encoding and parsing, no I/O and no
//! signing keys.
//!
//! Everything on the card is BER-TLV. This module has a small TLV codec ([`tlv`], [`parse_tlvs`],
//! [`find`], [`ber_total_len`]) and, on top of it, one builder and one parser per EF whose layout
//! clients depend on:
//!
//! | AP | EF | layout |
//! |---|---|---|
//! | text assist | 0001 | `FF 10 0C` + 12 ASCII digits + `FF FF` filler ([`assist_ef0001`]) |
//! | text assist | 0002 | `FF 20 { DF21 offsets, DF22 name, DF23 address, DF24 birth, DF25 sex }` ([`assist_ef0002`]) |
//! | text assist | 0003 | `FF 30 { DF31 hash of EF0001, DF32 hash of EF0002, DF33 signature }` ([`assist_ef0003`]) |
//! | assist, face | 0004 | card-verifiable certificate `7F21 { 5F4E body, 5F37 signature }` ([`CvCert`]) |
//! | card face | 0001 | `FF 10 { DF11 birth, DF12 card public modulus, DF13 signature }` ([`face_ef0001`]) |
//! | card face | 0002 | `FF 20 { DF21 offsets, DF22 … DF2A }` ([`face_ef0002`]) |
//! | card face | 0003 | `FF 30 { DF31 card id, DF32 issued, DF33 version, DF34 municipality, DF35 expiry }` ([`face_ef0003`]) |
//! | card face | 0005 | `FF 40 { DF41 My Number image, DF42 My Number, DF43 signature }` ([`face_ef0005`]) |
//! | common card | record 1 | `01 1C` + 28 ASCII digits ([`common_record`]) |
//! | 住基 | 0001 | `FF 10 0B` + 11 ASCII digits ([`juki_ef0001`]) |
//! | JPKI | 0006 | 160-byte PKCS#11 `CK_TOKEN_INFO` ([`token_info`]) |
//! | JPKI | 0008 | `8F 8F 00` / `00 8F 00` ([`token_ef0008`]) |
//!
//! Every signature is RSA PKCS#1 v1.5 with SHA-256, made by the authority whose key is in the AP's
//! CV certificate. Parsers are total: any byte string is either accepted or rejected with
//! [`CardError::Damaged`] naming what is wrong; they never panic. Builders check their inputs only
//! as far as needed to keep the encoding well-formed (digit counts, offsets that fit in 16 bits).

use crate::CardError;
use aws_lc_rs::digest::{self, SHA256};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};

fn damaged(msg: impl Into<String>) -> CardError {
    CardError::Damaged(msg.into())
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&SHA256, data).as_ref());
    out
}

// ---------------------------------------------------------------------------------------------
// BER-TLV
// ---------------------------------------------------------------------------------------------

/// Why a TLV header could not be read.
enum HeaderError {
    /// More bytes are needed.
    Incomplete,
    /// The bytes can never form a supported header.
    Invalid(&'static str),
}

/// Reads a TLV header: returns the tag, the length of the header (tag and length fields) and the
/// length of the value.
fn header(bytes: &[u8]) -> Result<(u16, usize, usize), HeaderError> {
    let (&b0, rest) = bytes.split_first().ok_or(HeaderError::Incomplete)?;
    let (tag, tag_len, rest) = if b0 & 0x1F == 0x1F {
        let (&b1, rest) = rest.split_first().ok_or(HeaderError::Incomplete)?;
        if b1 & 0x80 != 0 {
            return Err(HeaderError::Invalid("tag longer than two bytes"));
        }
        (u16::from_be_bytes([b0, b1]), 2, rest)
    } else {
        (u16::from(b0), 1, rest)
    };
    let (&l0, rest) = rest.split_first().ok_or(HeaderError::Incomplete)?;
    let (len, len_len) = match l0 {
        0x00..=0x7F => (usize::from(l0), 1),
        0x81..=0x84 => {
            let n = usize::from(l0 & 0x7F);
            let field = rest.get(..n).ok_or(HeaderError::Incomplete)?;
            let value = field.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            let len = usize::try_from(value).map_err(|_| HeaderError::Invalid("length too large"))?;
            (len, 1 + n)
        }
        0x80 => return Err(HeaderError::Invalid("indefinite length")),
        _ => return Err(HeaderError::Invalid("length field longer than four bytes")),
    };
    Ok((tag, tag_len + len_len, len))
}

/// One parsed TLV with its position in the parsed slice.
#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    tag: u16,
    /// Offset of the first byte of the tag.
    start: usize,
    /// Offset just past the last byte of the value.
    end: usize,
    value: &'a [u8],
}

fn is_filler(b: u8) -> bool {
    b == 0x00 || b == 0xFF
}

/// Parses a sequence of TLVs. With `filler`, trailing 00/FF bytes after the last TLV are ignored.
fn items<'a>(bytes: &'a [u8], filler: bool, what: &str) -> Result<Vec<Item<'a>>, CardError> {
    // Everything from `content_end` on is filler (when filler is allowed).
    let content_end = if filler {
        bytes.iter().rposition(|&b| !is_filler(b)).map_or(0, |i| i + 1)
    } else {
        bytes.len()
    };
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < content_end {
        let rest = bytes.get(pos..).unwrap_or_default();
        let (tag, header_len, value_len) = header(rest).map_err(|e| match e {
            HeaderError::Incomplete => damaged(format!("{what}: TLV header at offset {pos} is cut short")),
            HeaderError::Invalid(why) => damaged(format!("{what}: TLV at offset {pos}: {why}")),
        })?;
        let value = header_len
            .checked_add(value_len)
            .and_then(|total| rest.get(header_len..total))
            .ok_or_else(|| {
                damaged(format!(
                    "{what}: TLV {tag:02X} at offset {pos} runs past the end of the data"
                ))
            })?;
        let end = pos + header_len + value_len;
        out.push(Item {
            tag,
            start: pos,
            end,
            value,
        });
        pos = end;
    }
    Ok(out)
}

/// Encodes one TLV with a minimal length field.
///
/// `tag` must be a valid one- or two-byte BER tag: a one-byte tag (0x00–0xFF) whose low five bits
/// are not all set, or a two-byte tag whose first byte has its low five bits set and whose second
/// byte is below 0x80 (e.g. `0xDF21`, `0x7F21`, `0xFF10`). The tags used on the card are constants
/// that satisfy this. Lengths below 0x80 take one byte; longer values use `81 xx`, `82 xx xx`, and
/// so on.
pub fn tlv(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    let [hi, lo] = tag.to_be_bytes();
    if hi != 0 {
        out.push(hi);
    }
    out.push(lo);
    let len = value.len();
    if len < 0x80 {
        out.extend_from_slice(&len.to_be_bytes()[std::mem::size_of::<usize>() - 1..]);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|&&b| b == 0).count();
        let field = be.get(skip..).unwrap_or_default();
        // At most 8 bytes, so the count fits in the low bits.
        out.push(0x80 | u8::try_from(field.len()).unwrap_or(0x7F));
        out.extend_from_slice(field);
    }
    out.extend_from_slice(value);
    out
}

/// Parses a sequence of BER-TLVs into (tag, value) pairs, borrowing the values.
///
/// Tags are one or two bytes (a first byte whose low five bits are all set continues; a third tag
/// byte is not supported) and lengths are definite (short form, or `81`–`84` followed by one to
/// four length bytes). Trailing 0xFF or 0x00 filler bytes after the last TLV are ignored, as the
/// card pads its files with them. Values are not parsed recursively.
pub fn parse_tlvs(bytes: &[u8]) -> Result<Vec<(u16, &[u8])>, CardError> {
    Ok(items(bytes, true, "TLV data")?
        .into_iter()
        .map(|item| (item.tag, item.value))
        .collect())
}

/// The value of the first TLV with `tag` in a parsed sequence.
pub fn find<'a>(tlvs: &[(u16, &'a [u8])], tag: u16) -> Option<&'a [u8]> {
    tlvs.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

/// The total length (header and value) of the TLV whose first bytes are `header`.
///
/// Clients read the first few bytes of a file (e.g. the 4 bytes `30 82 LL LL` of a certificate or
/// 7 bytes of an EF) and use this to size the rest of the read. `None` when `header` does not yet
/// hold the whole tag and length fields, or when they are not a supported definite-length header.
pub fn ber_total_len(header_bytes: &[u8]) -> Option<usize> {
    let (_, header_len, value_len) = header(header_bytes).ok()?;
    header_len.checked_add(value_len)
}

/// Parses `bytes` as exactly one TLV with `tag` (trailing filler allowed) and returns it.
fn single<'a>(bytes: &'a [u8], tag: u16, what: &str) -> Result<Item<'a>, CardError> {
    match items(bytes, true, what)?.as_slice() {
        [only] if only.tag == tag => Ok(*only),
        _ => Err(damaged(format!("{what}: expected exactly one {tag:04X} TLV"))),
    }
}

/// Parses a constructed value as exactly the TLVs `tags`, in that order.
fn fields<'a, const N: usize>(
    value: &'a [u8],
    tags: [u16; N],
    what: &str,
) -> Result<[Item<'a>; N], CardError> {
    let found = items(value, false, what)?;
    let names = || {
        tags.iter()
            .map(|t| format!("{t:02X}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if found.len() != N || found.iter().zip(tags).any(|(item, tag)| item.tag != tag) {
        return Err(damaged(format!(
            "{what}: expected the fields {} in that order",
            names()
        )));
    }
    found
        .try_into()
        .map_err(|_| damaged(format!("{what}: expected the fields {}", names())))
}

/// The bytes of `value` from the start of `first` to the end of `last`.
fn span<'a>(value: &'a [u8], first: &Item<'_>, last: &Item<'_>) -> &'a [u8] {
    value.get(first.start..last.end).unwrap_or_default()
}

fn is_digits(s: &[u8], n: usize) -> bool {
    s.len() == n && s.iter().all(u8::is_ascii_digit)
}

/// Checks a builder input: exactly `n` ASCII digits.
fn check_digits(s: &str, n: usize, what: &str) -> Result<(), CardError> {
    if is_digits(s.as_bytes(), n) {
        Ok(())
    } else {
        Err(damaged(format!("{what} must be {n} ASCII digits")))
    }
}

/// Reads a field of exactly `n` ASCII digits.
fn digits_field(v: &[u8], n: usize, what: &str) -> Result<String, CardError> {
    if is_digits(v, n) {
        Ok(v.iter().map(|&b| char::from(b)).collect())
    } else {
        Err(damaged(format!("{what} is not {n} ASCII digits")))
    }
}

fn utf8_field(v: &[u8], what: &str) -> Result<String, CardError> {
    String::from_utf8(v.to_vec()).map_err(|_| damaged(format!("{what} is not UTF-8")))
}

fn check_sex(s: &str, what: &str) -> Result<(), CardError> {
    match s {
        "1" | "2" | "9" => Ok(()),
        _ => Err(damaged(format!(
            "{what} must be \"1\", \"2\" or \"9\" (JIS X 0303)"
        ))),
    }
}

fn sex_field(v: &[u8], what: &str) -> Result<String, CardError> {
    match v {
        b"1" | b"2" | b"9" => Ok(utf8_field(v, what)?),
        _ => Err(damaged(format!("{what} is not \"1\", \"2\" or \"9\""))),
    }
}

const DF21: u16 = 0xDF21;

/// Builds `outer { DF21 offsets, parts… }` where the offsets (u16 big-endian, one per part) give
/// the position of each part's first byte counted from the first byte of the outer value.
fn with_offsets(outer: u16, parts: &[Vec<u8>], what: &str) -> Result<Vec<u8>, CardError> {
    let placeholder = vec![0u8; 2 * parts.len()];
    let mut pos = tlv(DF21, &placeholder).len();
    let mut offsets = Vec::with_capacity(placeholder.len());
    for part in parts {
        let offset = u16::try_from(pos)
            .map_err(|_| damaged(format!("{what}: contents too large for 16-bit offsets")))?;
        offsets.extend_from_slice(&offset.to_be_bytes());
        pos += part.len();
    }
    let mut value = tlv(DF21, &offsets);
    for part in parts {
        value.extend_from_slice(part);
    }
    Ok(tlv(outer, &value))
}

/// Checks that the DF21 item (first) holds the offsets of the items that follow it.
fn check_offsets(found: &[Item<'_>], what: &str) -> Result<(), CardError> {
    let Some((df21, rest)) = found.split_first() else {
        return Err(damaged(format!("{what}: missing DF21")));
    };
    let expected: Vec<u8> = rest
        .iter()
        .flat_map(|item| u16::try_from(item.start).unwrap_or(u16::MAX).to_be_bytes())
        .collect();
    if df21.value == expected.as_slice() {
        Ok(())
    } else {
        Err(damaged(format!(
            "{what}: DF21 offsets do not point at the fields"
        )))
    }
}

/// Verifies an authority signature with `cvc`, naming `what` on failure.
fn verify_with(cvc: &CvCert, msg: &[u8], sig: &[u8], what: &str) -> Result<(), CardError> {
    cvc.verify(msg, sig)
        .map_err(|_| damaged(format!("{what}: signature does not verify")))
}

// ---------------------------------------------------------------------------------------------
// Text-input-assist AP (券面事項入力補助AP)
// ---------------------------------------------------------------------------------------------

/// Text assist EF0001: the 12-digit My Number, `FF 10 0C` + 12 ASCII digits + `FF FF` (17 bytes).
///
/// Fails unless `number` is exactly 12 ASCII digits (the check digit is not checked here).
pub fn assist_ef0001(number: &str) -> Result<Vec<u8>, CardError> {
    check_digits(number, 12, "My Number")?;
    let mut out = tlv(0xFF10, number.as_bytes());
    out.extend_from_slice(&[0xFF, 0xFF]);
    Ok(out)
}

/// Reads the My Number from text assist EF0001 (filler after the TLV is ignored).
pub fn parse_assist_ef0001(bytes: &[u8]) -> Result<String, CardError> {
    let item = single(bytes, 0xFF10, "assist EF0001")?;
    digits_field(item.value, 12, "assist EF0001 My Number")
}

/// The basic four facts as the text assist AP stores them (EF0002).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssistFacts {
    /// Name, UTF-8 (U+3000 between family and given name).
    pub name: String,
    /// Address, UTF-8.
    pub address: String,
    /// Birth date, `YYYYMMDD`.
    pub birth: String,
    /// Sex, JIS X 0303: `"1"`, `"2"` or `"9"`.
    pub sex: String,
}

const ASSIST_EF0002_TAGS: [u16; 5] = [DF21, 0xDF22, 0xDF23, 0xDF24, 0xDF25];

/// Text assist EF0002: `FF 20 L { DF21 offsets, DF22 name, DF23 address, DF24 birth, DF25 sex }`.
///
/// DF21 holds four u16 big-endian offsets of the DF22–DF25 TLVs, each counted from the first byte
/// of the `FF 20` value. Fails when the birth date is not 8 digits, the sex is not 1, 2 or 9, or
/// the contents are too large for 16-bit offsets.
pub fn assist_ef0002(facts: &AssistFacts) -> Result<Vec<u8>, CardError> {
    check_digits(&facts.birth, 8, "birth date")?;
    check_sex(&facts.sex, "sex")?;
    let parts = [
        tlv(0xDF22, facts.name.as_bytes()),
        tlv(0xDF23, facts.address.as_bytes()),
        tlv(0xDF24, facts.birth.as_bytes()),
        tlv(0xDF25, facts.sex.as_bytes()),
    ];
    with_offsets(0xFF20, &parts, "assist EF0002")
}

/// Parses text assist EF0002 into its items; returns the `FF 20` value and the items.
fn assist_ef0002_items(bytes: &[u8]) -> Result<(&[u8], [Item<'_>; 5]), CardError> {
    const WHAT: &str = "assist EF0002";
    let outer = single(bytes, 0xFF20, WHAT)?;
    let found = fields(outer.value, ASSIST_EF0002_TAGS, WHAT)?;
    check_offsets(&found, WHAT)?;
    Ok((outer.value, found))
}

/// Reads the four facts from text assist EF0002, checking the DF21 offsets.
pub fn parse_assist_ef0002(bytes: &[u8]) -> Result<AssistFacts, CardError> {
    let (_, [_, name, address, birth, sex]) = assist_ef0002_items(bytes)?;
    Ok(AssistFacts {
        name: utf8_field(name.value, "assist EF0002 name")?,
        address: utf8_field(address.value, "assist EF0002 address")?,
        birth: digits_field(birth.value, 8, "assist EF0002 birth date")?,
        sex: sex_field(sex.value, "assist EF0002 sex")?,
    })
}

/// SHA-256 of the `FF 20` value of EF0002 with the DF21 TLV skipped (DF22–DF25 concatenated).
fn assist_facts_hash(ef0002: &[u8]) -> Result<[u8; 32], CardError> {
    let (value, [df21, ..]) = assist_ef0002_items(ef0002)?;
    let mut ctx = digest::Context::new(&SHA256);
    ctx.update(value.get(..df21.start).unwrap_or_default());
    ctx.update(value.get(df21.end..).unwrap_or_default());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok(out)
}

/// The bytes the authority signs for text assist EF0003: the TLVs `DF31` (SHA-256 of the whole
/// EF0001, filler included) and `DF32` (SHA-256 of the EF0002 `FF 20` value without its DF21
/// TLV), concatenated. Fails when `ef0002` is not a well-formed EF0002.
pub fn assist_ef0003_tbs(ef0001: &[u8], ef0002: &[u8]) -> Result<Vec<u8>, CardError> {
    let mut out = tlv(0xDF31, &sha256(ef0001));
    out.extend_from_slice(&tlv(0xDF32, &assist_facts_hash(ef0002)?));
    Ok(out)
}

/// Text assist EF0003: `FF 30 L { tbs, DF33 signature }`, with `tbs` from [`assist_ef0003_tbs`].
pub fn assist_ef0003(tbs: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut value = tbs.to_vec();
    value.extend_from_slice(&tlv(0xDF33, signature));
    tlv(0xFF30, &value)
}

/// Checks the text assist AP's signed contents: both hashes in EF0003 must match EF0001 and
/// EF0002, and the DF33 signature over the DF31 and DF32 TLVs must verify with `cvc`'s key.
pub fn verify_assist(ef0001: &[u8], ef0002: &[u8], ef0003: &[u8], cvc: &CvCert) -> Result<(), CardError> {
    const WHAT: &str = "assist EF0003";
    parse_assist_ef0001(ef0001)?;
    let outer = single(ef0003, 0xFF30, WHAT)?;
    let [number_hash, facts_hash, sig] = fields(outer.value, [0xDF31, 0xDF32, 0xDF33], WHAT)?;
    if number_hash.value != sha256(ef0001).as_slice() {
        return Err(damaged("assist EF0003: number hash does not match EF0001"));
    }
    if facts_hash.value != assist_facts_hash(ef0002)?.as_slice() {
        return Err(damaged("assist EF0003: facts hash does not match EF0002"));
    }
    verify_with(cvc, span(outer.value, &number_hash, &facts_hash), sig.value, WHAT)
}

// ---------------------------------------------------------------------------------------------
// Card-verifiable certificate
// ---------------------------------------------------------------------------------------------

/// A card-verifiable (CV) certificate: the authority key that signs an AP's contents (EF0004 of
/// the text assist and card face APs; also GET DATA 7F21).
///
/// Encoding: `7F21 L { 5F4E L { issuer key id (16 raw bytes), subject key id (16 raw bytes),
/// 90 03 01 00 01, 91 82 01 00 <modulus> }, 5F37 82 01 00 <signature> }`. The signature is RSA
/// PKCS#1 v1.5 with SHA-256 over the whole `5F4E` TLV, made with the issuer's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvCert {
    /// Key id of the issuer's key ([`key_id`] of its modulus).
    pub issuer_key_id: [u8; 16],
    /// Key id of this certificate's key.
    pub subject_key_id: [u8; 16],
    /// RSA public exponent, big-endian (normally `01 00 01`).
    pub exponent: Vec<u8>,
    /// RSA modulus, big-endian without a leading zero (256 bytes for RSA-2048).
    pub modulus: Vec<u8>,
    /// The issuer's signature over the body.
    pub signature: Vec<u8>,
}

impl CvCert {
    /// Encodes the certificate body, the `5F4E` TLV the issuer signs.
    pub fn body(
        issuer_key_id: &[u8; 16],
        subject_key_id: &[u8; 16],
        modulus: &[u8],
        exponent: &[u8],
    ) -> Vec<u8> {
        let mut value = Vec::with_capacity(modulus.len() + exponent.len() + 48);
        value.extend_from_slice(issuer_key_id);
        value.extend_from_slice(subject_key_id);
        value.extend_from_slice(&tlv(0x90, exponent));
        value.extend_from_slice(&tlv(0x91, modulus));
        tlv(0x5F4E, &value)
    }

    /// Joins a body from [`CvCert::body`] and the issuer's signature over it into the encoded
    /// certificate. Fails when the result is not a well-formed certificate.
    pub fn assemble(body: &[u8], signature: &[u8]) -> Result<Vec<u8>, CardError> {
        let mut value = body.to_vec();
        value.extend_from_slice(&tlv(0x5F37, signature));
        let out = tlv(0x7F21, &value);
        Self::parse(&out)?;
        Ok(out)
    }

    /// Parses an encoded certificate (trailing filler is ignored). The encoding must be the
    /// canonical one that [`CvCert::to_bytes`] produces, so that re-encoding the body gives back
    /// exactly the signed bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, CardError> {
        const WHAT: &str = "CV certificate";
        let outer = single(bytes, 0x7F21, WHAT)?;
        let [body, sig] = fields(outer.value, [0x5F4E, 0x5F37], WHAT)?;
        let (issuer, rest) = body
            .value
            .split_first_chunk::<16>()
            .ok_or_else(|| damaged("CV certificate: body too short for the key ids"))?;
        let (subject, rest) = rest
            .split_first_chunk::<16>()
            .ok_or_else(|| damaged("CV certificate: body too short for the key ids"))?;
        let [exponent, modulus] = fields(rest, [0x90, 0x91], WHAT)?;
        if exponent.value.is_empty() || modulus.value.is_empty() {
            return Err(damaged("CV certificate: empty public key"));
        }
        let cert = Self {
            issuer_key_id: *issuer,
            subject_key_id: *subject,
            exponent: exponent.value.to_vec(),
            modulus: modulus.value.to_vec(),
            signature: sig.value.to_vec(),
        };
        if bytes.get(..outer.end) != Some(cert.to_bytes().as_slice()) {
            return Err(damaged("CV certificate: not in canonical encoding"));
        }
        Ok(cert)
    }

    /// The encoded body (`5F4E` TLV) of this certificate: the bytes the issuer signed.
    pub fn signed_body(&self) -> Vec<u8> {
        Self::body(
            &self.issuer_key_id,
            &self.subject_key_id,
            &self.modulus,
            &self.exponent,
        )
    }

    /// Encodes the certificate (`7F21` TLV).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut value = self.signed_body();
        value.extend_from_slice(&tlv(0x5F37, &self.signature));
        tlv(0x7F21, &value)
    }

    /// Checks that `issuer` issued this certificate: its subject key id is this certificate's
    /// issuer key id, and this certificate's signature verifies with its key. For a self-signed
    /// root, pass the certificate itself.
    pub fn verify_signed_by(&self, issuer: &CvCert) -> Result<(), CardError> {
        if self.issuer_key_id != issuer.subject_key_id {
            return Err(damaged("CV certificate: issuer key id does not match the issuer"));
        }
        verify_with(issuer, &self.signed_body(), &self.signature, "CV certificate")
    }

    /// Verifies an RSA PKCS#1 v1.5 SHA-256 signature over `msg` with this certificate's key.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), CardError> {
        RsaPublicKeyComponents {
            n: self.modulus.as_slice(),
            e: self.exponent.as_slice(),
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, msg, sig)
        .map_err(|_| damaged("signature does not verify"))
    }
}

/// The key id used in CV certificates: the first 16 bytes of SHA-256 of the modulus.
pub fn key_id(modulus: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(sha256(modulus).get(..16).unwrap_or_default());
    out
}

/// DER of the rsaEncryption OID, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION_OID: [u8; 9] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];

/// A positive DER INTEGER's magnitude without leading zeros.
fn positive_integer(v: &[u8]) -> Result<Vec<u8>, CardError> {
    if v.first().is_none_or(|&b| b & 0x80 != 0) {
        return Err(damaged("public key: integer is empty or negative"));
    }
    let skip = v.iter().take_while(|&&b| b == 0).count();
    match v.get(skip..) {
        Some(rest) if !rest.is_empty() => Ok(rest.to_vec()),
        _ => Err(damaged("public key: integer is zero")),
    }
}

/// The modulus (without a leading zero) and public exponent of an RSA key given as a DER
/// SubjectPublicKeyInfo (`SEQUENCE { SEQUENCE { OID rsaEncryption, NULL }, BIT STRING {
/// SEQUENCE { INTEGER n, INTEGER e } } }`).
pub fn rsa_components_from_spki(spki_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), CardError> {
    const WHAT: &str = "SubjectPublicKeyInfo";
    let top = items(spki_der, false, WHAT)?;
    let [spki] = top.as_slice() else {
        return Err(damaged("SubjectPublicKeyInfo: expected one SEQUENCE"));
    };
    if spki.tag != 0x30 {
        return Err(damaged("SubjectPublicKeyInfo: expected one SEQUENCE"));
    }
    let [alg, key] = fields(spki.value, [0x30, 0x03], WHAT)?;
    let params = items(alg.value, false, WHAT)?;
    match params.as_slice() {
        [oid]
        | [
            oid,
            Item {
                tag: 0x05, value: [], ..
            },
        ] if oid.tag == 0x06 && oid.value == RSA_ENCRYPTION_OID.as_slice() => {}
        _ => return Err(damaged("SubjectPublicKeyInfo: not an RSA key")),
    }
    let Some((0, key_der)) = key.value.split_first() else {
        return Err(damaged("SubjectPublicKeyInfo: bit string has unused bits"));
    };
    let [seq] = fields(key_der, [0x30], WHAT)?;
    let [n, e] = fields(seq.value, [0x02, 0x02], WHAT)?;
    Ok((positive_integer(n.value)?, positive_integer(e.value)?))
}

// ---------------------------------------------------------------------------------------------
// Card-face AP (券面事項確認AP)
// ---------------------------------------------------------------------------------------------

/// The bytes the authority signs for card face EF0001: the TLVs `DF11` (birth date `YYYYMMDD`)
/// and `DF12` (the card's public modulus), concatenated. Fails unless the birth date is 8 digits.
pub fn face_ef0001_tbs(birth_yyyymmdd: &str, card_public_modulus: &[u8]) -> Result<Vec<u8>, CardError> {
    check_digits(birth_yyyymmdd, 8, "birth date")?;
    let mut out = tlv(0xDF11, birth_yyyymmdd.as_bytes());
    out.extend_from_slice(&tlv(0xDF12, card_public_modulus));
    Ok(out)
}

/// Card face EF0001: `FF 10 L { tbs, DF13 signature }`, with `tbs` from [`face_ef0001_tbs`].
pub fn face_ef0001(tbs: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut value = tbs.to_vec();
    value.extend_from_slice(&tlv(0xDF13, signature));
    tlv(0xFF10, &value)
}

/// The contents of card face EF0001.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceEf0001 {
    /// Birth date, `YYYYMMDD`.
    pub birth: String,
    /// The card's public modulus.
    pub card_public_modulus: Vec<u8>,
    /// The authority's signature over the DF11 and DF12 TLVs.
    pub signature: Vec<u8>,
}

/// Parses card face EF0001 into its items and the signed bytes.
fn face_ef0001_parts(bytes: &[u8]) -> Result<(FaceEf0001, &[u8]), CardError> {
    const WHAT: &str = "face EF0001";
    let outer = single(bytes, 0xFF10, WHAT)?;
    let [birth, modulus, sig] = fields(outer.value, [0xDF11, 0xDF12, 0xDF13], WHAT)?;
    let parsed = FaceEf0001 {
        birth: digits_field(birth.value, 8, "face EF0001 birth date")?,
        card_public_modulus: modulus.value.to_vec(),
        signature: sig.value.to_vec(),
    };
    Ok((parsed, span(outer.value, &birth, &modulus)))
}

/// Reads card face EF0001 (without checking the signature).
pub fn parse_face_ef0001(bytes: &[u8]) -> Result<FaceEf0001, CardError> {
    face_ef0001_parts(bytes).map(|(parsed, _)| parsed)
}

/// Reads card face EF0001 and verifies its signature with `cvc`.
pub fn verify_face_ef0001(bytes: &[u8], cvc: &CvCert) -> Result<FaceEf0001, CardError> {
    let (parsed, tbs) = face_ef0001_parts(bytes)?;
    verify_with(cvc, tbs, &parsed.signature, "face EF0001")?;
    Ok(parsed)
}

/// The card-face facts and images of card face EF0002.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceData {
    /// Birth date, `YYYYMMDD`.
    pub birth: String,
    /// Sex, JIS X 0303: `"1"`, `"2"` or `"9"`.
    pub sex: String,
    /// The card's public modulus.
    pub card_public_modulus: Vec<u8>,
    /// The name as a 1-bit PNG.
    pub name_png: Vec<u8>,
    /// The address as a 1-bit PNG.
    pub address_png: Vec<u8>,
    /// The face photo (greyscale JPEG 2000 on a real card; a PNG placeholder here).
    pub photo: Vec<u8>,
    /// Expiry date, `YYYYMMDD`.
    pub expiry: String,
    /// The security code as a 1-bit PNG (not covered by the signature).
    pub security_code_png: Vec<u8>,
}

const FACE_EF0002_TAGS: [u16; 10] = [
    DF21, 0xDF22, 0xDF23, 0xDF24, 0xDF25, 0xDF26, 0xDF27, 0xDF28, 0xDF29, 0xDF2A,
];

fn face_tbs_of(seg1: &[u8], seg2: &[u8], seg3: &[u8]) -> Vec<u8> {
    [sha256(seg1), sha256(seg2), sha256(seg3)].concat()
}

/// The 96 bytes the authority signs for card face EF0002: SHA-256 of segment 1 (the DF22, DF23,
/// DF24 TLVs concatenated), of segment 2 (DF25, DF26) and of segment 3 (DF27), concatenated.
pub fn face_ef0002_tbs(data: &FaceData) -> Vec<u8> {
    let seg1 = [
        tlv(0xDF22, data.birth.as_bytes()),
        tlv(0xDF23, data.sex.as_bytes()),
        tlv(0xDF24, &data.card_public_modulus),
    ]
    .concat();
    let seg2 = [tlv(0xDF25, &data.name_png), tlv(0xDF26, &data.address_png)].concat();
    face_tbs_of(&seg1, &seg2, &tlv(0xDF27, &data.photo))
}

/// Card face EF0002: `FF 20 L { DF21 offsets, DF22 birth, DF23 sex, DF24 card public modulus,
/// DF25 name PNG, DF26 address PNG, DF27 photo, DF28 signature, DF29 expiry, DF2A security-code
/// PNG }`.
///
/// DF21 holds nine u16 big-endian offsets of the DF22–DF2A TLVs, counted from the first byte of
/// the `FF 20` value. `signature` is the authority's signature over [`face_ef0002_tbs`]. Fails when
/// a date is not 8 digits, the sex is not 1, 2 or 9, or the contents are too large for 16-bit
/// offsets.
pub fn face_ef0002(data: &FaceData, signature: &[u8]) -> Result<Vec<u8>, CardError> {
    check_digits(&data.birth, 8, "birth date")?;
    check_sex(&data.sex, "sex")?;
    check_digits(&data.expiry, 8, "expiry date")?;
    let parts = [
        tlv(0xDF22, data.birth.as_bytes()),
        tlv(0xDF23, data.sex.as_bytes()),
        tlv(0xDF24, &data.card_public_modulus),
        tlv(0xDF25, &data.name_png),
        tlv(0xDF26, &data.address_png),
        tlv(0xDF27, &data.photo),
        tlv(0xDF28, signature),
        tlv(0xDF29, data.expiry.as_bytes()),
        tlv(0xDF2A, &data.security_code_png),
    ];
    with_offsets(0xFF20, &parts, "face EF0002")
}

/// Parses card face EF0002 into its data, signature and the 96 bytes the signature covers.
fn face_ef0002_parts(bytes: &[u8]) -> Result<(FaceData, Vec<u8>, Vec<u8>), CardError> {
    const WHAT: &str = "face EF0002";
    let outer = single(bytes, 0xFF20, WHAT)?;
    let found = fields(outer.value, FACE_EF0002_TAGS, WHAT)?;
    check_offsets(&found, WHAT)?;
    let [_, birth, sex, modulus, name, address, photo, sig, expiry, code] = found;
    let tbs = face_tbs_of(
        span(outer.value, &birth, &modulus),
        span(outer.value, &name, &address),
        span(outer.value, &photo, &photo),
    );
    let data = FaceData {
        birth: digits_field(birth.value, 8, "face EF0002 birth date")?,
        sex: sex_field(sex.value, "face EF0002 sex")?,
        card_public_modulus: modulus.value.to_vec(),
        name_png: name.value.to_vec(),
        address_png: address.value.to_vec(),
        photo: photo.value.to_vec(),
        expiry: digits_field(expiry.value, 8, "face EF0002 expiry date")?,
        security_code_png: code.value.to_vec(),
    };
    Ok((data, sig.value.to_vec(), tbs))
}

/// Reads card face EF0002 (checking the DF21 offsets, not the signature); returns the data and
/// the DF28 signature.
pub fn parse_face_ef0002(bytes: &[u8]) -> Result<(FaceData, Vec<u8>), CardError> {
    face_ef0002_parts(bytes).map(|(data, sig, _)| (data, sig))
}

/// Reads card face EF0002 and verifies the DF28 signature over its three segments with `cvc`.
/// The security-code image (DF2A) and the expiry (DF29) are not covered by the signature.
pub fn verify_face(ef0002: &[u8], cvc: &CvCert) -> Result<FaceData, CardError> {
    let (data, sig, tbs) = face_ef0002_parts(ef0002)?;
    verify_with(cvc, &tbs, &sig, "face EF0002")?;
    Ok(data)
}

/// The contents of card face EF0003.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceCardInfo {
    /// The card id (printable ASCII).
    pub card_id: String,
    /// Issue date, `YYYYMMDD`.
    pub issued: String,
    /// Layout version, `"01"`.
    pub version: String,
    /// Issuing municipality code, 6 digits (with check digit).
    pub municipality: String,
    /// Expiry date, `YYYYMMDD`.
    pub expiry: String,
}

fn is_card_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 64 && v.iter().all(u8::is_ascii_graphic)
}

/// Card face EF0003 (free read): `FF 30 L { DF31 card id, DF32 issue date, DF33 version "01",
/// DF34 municipality code, DF35 expiry date }`, all ASCII.
///
/// Fails unless the card id is 1–64 printable ASCII characters without spaces, the dates are 8
/// digits and the municipality code is 6 digits.
pub fn face_ef0003(
    card_id: &str,
    issued_yyyymmdd: &str,
    municipality: &str,
    expiry_yyyymmdd: &str,
) -> Result<Vec<u8>, CardError> {
    if !is_card_id(card_id.as_bytes()) {
        return Err(damaged("card id must be 1 to 64 printable ASCII characters"));
    }
    check_digits(issued_yyyymmdd, 8, "issue date")?;
    check_digits(municipality, 6, "municipality code")?;
    check_digits(expiry_yyyymmdd, 8, "expiry date")?;
    let value = [
        tlv(0xDF31, card_id.as_bytes()),
        tlv(0xDF32, issued_yyyymmdd.as_bytes()),
        tlv(0xDF33, b"01"),
        tlv(0xDF34, municipality.as_bytes()),
        tlv(0xDF35, expiry_yyyymmdd.as_bytes()),
    ]
    .concat();
    Ok(tlv(0xFF30, &value))
}

/// Reads card face EF0003.
pub fn parse_face_ef0003(bytes: &[u8]) -> Result<FaceCardInfo, CardError> {
    const WHAT: &str = "face EF0003";
    let outer = single(bytes, 0xFF30, WHAT)?;
    let [id, issued, version, municipality, expiry] =
        fields(outer.value, [0xDF31, 0xDF32, 0xDF33, 0xDF34, 0xDF35], WHAT)?;
    if !is_card_id(id.value) {
        return Err(damaged("face EF0003: card id is not printable ASCII"));
    }
    Ok(FaceCardInfo {
        card_id: utf8_field(id.value, "face EF0003 card id")?,
        issued: digits_field(issued.value, 8, "face EF0003 issue date")?,
        version: digits_field(version.value, 2, "face EF0003 version")?,
        municipality: digits_field(municipality.value, 6, "face EF0003 municipality code")?,
        expiry: digits_field(expiry.value, 8, "face EF0003 expiry date")?,
    })
}

/// The bytes the authority signs for card face EF0005: the TLVs `DF41` (the My Number image, a
/// PNG) and `DF42` (the 12 ASCII digits), concatenated. Fails unless `number` is 12 digits.
pub fn face_ef0005_tbs(number_png: &[u8], number: &str) -> Result<Vec<u8>, CardError> {
    check_digits(number, 12, "My Number")?;
    let mut out = tlv(0xDF41, number_png);
    out.extend_from_slice(&tlv(0xDF42, number.as_bytes()));
    Ok(out)
}

/// Card face EF0005: `FF 40 L { tbs, DF43 signature }`, with `tbs` from [`face_ef0005_tbs`].
pub fn face_ef0005(tbs: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut value = tbs.to_vec();
    value.extend_from_slice(&tlv(0xDF43, signature));
    tlv(0xFF40, &value)
}

/// The contents of card face EF0005.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceNumber {
    /// The My Number as a 1-bit PNG.
    pub number_png: Vec<u8>,
    /// The My Number, 12 ASCII digits.
    pub number: String,
    /// The authority's signature over the DF41 and DF42 TLVs.
    pub signature: Vec<u8>,
}

fn face_ef0005_parts(bytes: &[u8]) -> Result<(FaceNumber, &[u8]), CardError> {
    const WHAT: &str = "face EF0005";
    let outer = single(bytes, 0xFF40, WHAT)?;
    let [png, number, sig] = fields(outer.value, [0xDF41, 0xDF42, 0xDF43], WHAT)?;
    let parsed = FaceNumber {
        number_png: png.value.to_vec(),
        number: digits_field(number.value, 12, "face EF0005 My Number")?,
        signature: sig.value.to_vec(),
    };
    Ok((parsed, span(outer.value, &png, &number)))
}

/// Reads card face EF0005 (without checking the signature).
pub fn parse_face_ef0005(bytes: &[u8]) -> Result<FaceNumber, CardError> {
    face_ef0005_parts(bytes).map(|(parsed, _)| parsed)
}

/// Reads card face EF0005 and verifies its signature with `cvc`.
pub fn verify_face_ef0005(bytes: &[u8], cvc: &CvCert) -> Result<FaceNumber, CardError> {
    let (parsed, tbs) = face_ef0005_parts(bytes)?;
    verify_with(cvc, tbs, &parsed.signature, "face EF0005")?;
    Ok(parsed)
}

// ---------------------------------------------------------------------------------------------
// 共通カードAP, 住基AP
// ---------------------------------------------------------------------------------------------

/// The contents of the common card AP's record 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonRecord {
    /// Card serial number, 15 digits.
    pub card_id: String,
    /// Municipality code, 5 digits (without check digit).
    pub municipality: String,
    /// Expiry date, `YYYYMMDD`.
    pub expiry: String,
}

/// Common card AP EF0001 record 1: `01 1C` + 28 ASCII digits (card serial 15, municipality 5,
/// expiry `YYYYMMDD`), 30 bytes. Fails on wrong digit counts.
pub fn common_record(
    card_id: &str,
    municipality5: &str,
    expiry_yyyymmdd: &str,
) -> Result<Vec<u8>, CardError> {
    check_digits(card_id, 15, "card serial number")?;
    check_digits(municipality5, 5, "municipality code")?;
    check_digits(expiry_yyyymmdd, 8, "expiry date")?;
    let digits = [card_id, municipality5, expiry_yyyymmdd].concat();
    Ok(tlv(0x01, digits.as_bytes()))
}

/// Reads the common card AP's record 1 (filler after the TLV is ignored).
pub fn parse_common_record(bytes: &[u8]) -> Result<CommonRecord, CardError> {
    let item = single(bytes, 0x01, "common card record")?;
    let digits = digits_field(item.value, 28, "common card record")?;
    let (card_id, rest) = digits.split_at(15);
    let (municipality, expiry) = rest.split_at(5);
    Ok(CommonRecord {
        card_id: card_id.to_owned(),
        municipality: municipality.to_owned(),
        expiry: expiry.to_owned(),
    })
}

/// 住基 AP EF0001: the 11-digit resident record code, `FF 10 0B` + 11 ASCII digits.
pub fn juki_ef0001(resident_record_code: &str) -> Result<Vec<u8>, CardError> {
    check_digits(resident_record_code, 11, "resident record code")?;
    Ok(tlv(0xFF10, resident_record_code.as_bytes()))
}

/// Reads the resident record code from 住基 AP EF0001.
pub fn parse_juki_ef0001(bytes: &[u8]) -> Result<String, CardError> {
    let item = single(bytes, 0xFF10, "住基 EF0001")?;
    digits_field(item.value, 11, "住基 EF0001 resident record code")
}

// ---------------------------------------------------------------------------------------------
// JPKI AP
// ---------------------------------------------------------------------------------------------

/// The token label of a physical card.
pub const CARD_TOKEN_LABEL: &str = "JPKIAPICCTOKEN2";

const CKF_RNG: u32 = 0x0000_0001;
const CKF_LOGIN_REQUIRED: u32 = 0x0000_0004;
const CKF_USER_PIN_INITIALIZED: u32 = 0x0000_0008;
const CKF_TOKEN_INITIALIZED: u32 = 0x0000_0400;
const CK_EFFECTIVELY_INFINITE: u32 = 0;
const CK_UNAVAILABLE_INFORMATION: u32 = u32::MAX;

/// Copies as much of `s` as fits (whole characters only) into `dst`, which is pre-filled with
/// spaces.
fn put_padded(dst: &mut [u8], s: &str) {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let end = i + c.len_utf8();
        if end > dst.len() {
            break;
        }
        n = end;
    }
    if let (Some(d), Some(src)) = (dst.get_mut(..n), s.as_bytes().get(..n)) {
        d.copy_from_slice(src);
    }
}

/// JPKI AP EF0006: a 160-byte PKCS#11 `CK_TOKEN_INFO` with 32-bit big-endian integers.
///
/// Field order and values: label\[32\] (`label`, space padded, truncated to 32 bytes at a
/// character boundary), manufacturerID\[32\] `"openjpki"`, model\[16\] `"JPKI"`, serialNumber\[16\]
/// `"0000000000000000"`, flags (`CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
/// CKF_TOKEN_INITIALIZED`), ulMaxSessionCount 0 (effectively infinite), ulSessionCount
/// unavailable (FFFFFFFF), ulMaxRwSessionCount 0, ulRwSessionCount unavailable, ulMaxPinLen 16,
/// ulMinPinLen 4, the four memory counts unavailable, hardwareVersion 1.0, firmwareVersion 1.0,
/// utcTime 16 spaces (the card has no clock). The card uses [`CARD_TOKEN_LABEL`].
pub fn token_info(label: &str) -> [u8; 160] {
    let mut out = [b' '; 160];
    put_padded(&mut out[0..32], label);
    put_padded(&mut out[32..64], "openjpki");
    put_padded(&mut out[64..80], "JPKI");
    out[80..96].copy_from_slice(b"0000000000000000");
    let ints: [u32; 11] = [
        CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED,
        CK_EFFECTIVELY_INFINITE,
        CK_UNAVAILABLE_INFORMATION,
        CK_EFFECTIVELY_INFINITE,
        CK_UNAVAILABLE_INFORMATION,
        16,
        4,
        CK_UNAVAILABLE_INFORMATION,
        CK_UNAVAILABLE_INFORMATION,
        CK_UNAVAILABLE_INFORMATION,
        CK_UNAVAILABLE_INFORMATION,
    ];
    for (chunk, v) in out[96..140].chunks_exact_mut(4).zip(ints) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out[140..144].copy_from_slice(&[1, 0, 1, 0]);
    out
}

/// The label of a `CK_TOKEN_INFO` from [`token_info`], trailing spaces removed.
pub fn token_info_label(info: &[u8]) -> Result<String, CardError> {
    if info.len() != 160 {
        return Err(damaged("JPKI EF0006: token info is not 160 bytes"));
    }
    let label = info.get(..32).unwrap_or_default();
    let text = std::str::from_utf8(label).map_err(|_| damaged("JPKI EF0006: label is not UTF-8"))?;
    Ok(text.trim_end_matches(' ').to_owned())
}

/// JPKI AP EF0008: `8F 8F 00` when both certificates are present, `00 8F 00` without a
/// signature certificate (e.g. card holders under 15).
pub fn token_ef0008(has_sign_cert: bool) -> [u8; 3] {
    [if has_sign_cert { 0x8F } else { 0x00 }, 0x8F, 0x00]
}

/// Reads JPKI AP EF0008: whether a signature certificate is present.
pub fn parse_token_ef0008(bytes: &[u8]) -> Result<bool, CardError> {
    match bytes {
        [0x8F, 0x8F, 0x00] => Ok(true),
        [0x00, 0x8F, 0x00] => Ok(false),
        _ => Err(damaged("JPKI EF0008: unknown contents")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn key() -> &'static KeyPair {
        static KEY: OnceLock<KeyPair> = OnceLock::new();
        KEY.get_or_init(|| KeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    fn sign(msg: &[u8]) -> Vec<u8> {
        let k = key();
        let mut sig = vec![0u8; k.public_modulus_len()];
        k.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
            .unwrap();
        sig
    }

    fn modulus() -> Vec<u8> {
        key()
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec()
    }

    /// A self-signed CV certificate for the test key.
    fn cvc() -> CvCert {
        let n = modulus();
        let id = key_id(&n);
        let body = CvCert::body(&id, &id, &n, &[1, 0, 1]);
        CvCert::parse(&CvCert::assemble(&body, &sign(&body)).unwrap()).unwrap()
    }

    /// Every single-byte change of `bytes` makes `check` fail.
    fn every_flip_fails(bytes: &[u8], check: impl Fn(&[u8]) -> bool) {
        assert!(check(bytes), "unmodified contents must pass");
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut b = bytes.to_vec();
                b[i] ^= mask;
                assert!(!check(&b), "flipping byte {i} with {mask:02X} went unnoticed");
            }
        }
    }

    fn facts() -> AssistFacts {
        AssistFacts {
            name: "番号　花子".into(),
            address: "東京都千代田区千代田１－１".into(),
            birth: "19800217".into(),
            sex: "2".into(),
        }
    }

    #[test]
    fn tlv_lengths_are_minimal() {
        assert_eq!(tlv(0x90, &[1, 0, 1]), [0x90, 3, 1, 0, 1]);
        assert_eq!(tlv(0xDF21, &[]), [0xDF, 0x21, 0]);
        assert_eq!(&tlv(0x91, &[0; 0x7F])[..2], [0x91, 0x7F]);
        assert_eq!(&tlv(0x91, &[0; 0x80])[..3], [0x91, 0x81, 0x80]);
        assert_eq!(&tlv(0x91, &[0; 0x100])[..4], [0x91, 0x82, 0x01, 0x00]);
        assert_eq!(&tlv(0x91, &[0; 0x10000])[..5], [0x91, 0x83, 0x01, 0x00, 0x00]);
        assert_eq!(
            parse_tlvs(&tlv(0x91, &[7; 0x10000])).unwrap(),
            [(0x91, &[7u8; 0x10000][..])]
        );
    }

    #[test]
    fn parse_ignores_trailing_filler_only() {
        let mut b = tlv(0x5F37, b"ab");
        b.extend_from_slice(&tlv(0x01, b""));
        b.extend_from_slice(&[0xFF, 0x00, 0xFF]);
        let t = parse_tlvs(&b).unwrap();
        assert_eq!(t, [(0x5F37, &b"ab"[..]), (0x01, &b""[..])]);
        assert_eq!(find(&t, 0x5F37), Some(&b"ab"[..]));
        assert_eq!(find(&t, 0x02), None);
        assert!(parse_tlvs(&[0x90, 0x05, 1, 2]).is_err());
        assert!(parse_tlvs(&[0x90, 0x80]).is_err());
        assert!(parse_tlvs(&[0x9F, 0x81, 0x01, 0x00]).is_err());
        assert_eq!(parse_tlvs(&[]).unwrap(), []);
        assert_eq!(parse_tlvs(&[0xFF; 5]).unwrap(), []);
    }

    #[test]
    fn total_length_from_header() {
        assert_eq!(ber_total_len(&[0x30, 0x82, 0x04, 0x10]), Some(0x410 + 4));
        assert_eq!(ber_total_len(&[0x30, 0x82, 0x04]), None);
        assert_eq!(ber_total_len(&[0xFF, 0x10, 0x0C]), Some(15));
        assert_eq!(
            ber_total_len(&[0x7F, 0x21, 0x82, 0x01, 0x6B, 0x5F, 0x4E]),
            Some(0x16B + 5)
        );
        assert_eq!(ber_total_len(&[0xFF]), None);
        assert_eq!(ber_total_len(&[]), None);
        assert_eq!(ber_total_len(&[0x30, 0x80]), None);
    }

    #[test]
    fn assist_ef0001_bytes() {
        let b = assist_ef0001("123456789012").unwrap();
        let mut want = vec![0xFF, 0x10, 0x0C];
        want.extend_from_slice(b"123456789012");
        want.extend_from_slice(&[0xFF, 0xFF]);
        assert_eq!(b, want);
        assert_eq!(b.len(), 17);
        assert_eq!(parse_assist_ef0001(&b).unwrap(), "123456789012");
        assert!(assist_ef0001("12345678901").is_err());
        assert!(assist_ef0001("12345678901a").is_err());
        assert_eq!(parse_assist_ef0001(&b[..15]).unwrap(), "123456789012");
        assert!(parse_assist_ef0001(&b[..14]).is_err());
    }

    #[test]
    fn assist_ef0002_round_trip_and_offsets() {
        let b = assist_ef0002(&facts()).unwrap();
        assert_eq!(parse_assist_ef0002(&b).unwrap(), facts());
        let t = parse_tlvs(&b).unwrap();
        let value = find(&t, 0xFF20).unwrap();
        let offsets = find(&parse_tlvs(value).unwrap(), 0xDF21).unwrap().to_vec();
        assert_eq!(offsets.len(), 8);
        for (i, pair) in offsets.chunks(2).enumerate() {
            let off = usize::from(u16::from_be_bytes([pair[0], pair[1]]));
            assert_eq!(value[off..off + 2], [0xDF, 0x22 + i as u8]);
        }
        assert_eq!(u16::from_be_bytes([offsets[0], offsets[1]]), 11);
        let mut bad = facts();
        bad.sex = "3".into();
        assert!(assist_ef0002(&bad).is_err());
        bad = facts();
        bad.birth = "1980021".into();
        assert!(assist_ef0002(&bad).is_err());
    }

    #[test]
    fn assist_signature_verifies_and_detects_changes() {
        let cv = cvc();
        let ef1 = assist_ef0001("123456789012").unwrap();
        let ef2 = assist_ef0002(&facts()).unwrap();
        let tbs = assist_ef0003_tbs(&ef1, &ef2).unwrap();
        assert_eq!(tbs.len(), 2 * (3 + 32));
        let ef3 = assist_ef0003(&tbs, &sign(&tbs));
        verify_assist(&ef1, &ef2, &ef3, &cv).unwrap();
        // DF32 covers exactly DF22..DF25.
        let value = find(&parse_tlvs(&ef2).unwrap(), 0xFF20).unwrap().to_vec();
        assert_eq!(tbs[38..], sha256(&value[11..]));
        every_flip_fails(&ef1, |b| verify_assist(b, &ef2, &ef3, &cv).is_ok());
        every_flip_fails(&ef2, |b| verify_assist(&ef1, b, &ef3, &cv).is_ok());
        every_flip_fails(&ef3, |b| verify_assist(&ef1, &ef2, b, &cv).is_ok());
        let err = verify_assist(&assist_ef0001("123456789013").unwrap(), &ef2, &ef3, &cv).unwrap_err();
        assert!(err.to_string().contains("number hash does not match"), "{err}");
        let other = AssistFacts {
            sex: "1".into(),
            ..facts()
        };
        let err = verify_assist(&ef1, &assist_ef0002(&other).unwrap(), &ef3, &cv).unwrap_err();
        assert!(err.to_string().contains("facts hash does not match"), "{err}");
        let mut sig = sign(&tbs);
        sig[5] ^= 1;
        let err = verify_assist(&ef1, &ef2, &assist_ef0003(&tbs, &sig), &cv).unwrap_err();
        assert!(err.to_string().contains("signature does not verify"), "{err}");
    }

    #[test]
    fn cv_cert_layout_round_trip_and_verification() {
        let cv = cvc();
        let bytes = cv.to_bytes();
        assert_eq!(bytes[..2], [0x7F, 0x21]);
        let t = parse_tlvs(&bytes).unwrap();
        let inner = parse_tlvs(find(&t, 0x7F21).unwrap()).unwrap();
        let body = find(&inner, 0x5F4E).unwrap();
        assert_eq!(body[..16], cv.issuer_key_id);
        assert_eq!(body[16..32], cv.subject_key_id);
        assert_eq!(body[32..37], [0x90, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(body[37..41], [0x91, 0x82, 0x01, 0x00]);
        assert_eq!(body.len(), 41 + 256);
        let sig_at = bytes.len() - 256 - 5;
        assert_eq!(bytes[sig_at..sig_at + 5], [0x5F, 0x37, 0x82, 0x01, 0x00]);
        assert_eq!(CvCert::parse(&bytes).unwrap(), cv);
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0xFF; 4]);
        assert_eq!(CvCert::parse(&padded).unwrap(), cv);
        assert_eq!(cv.subject_key_id, key_id(&modulus()));
        cv.verify_signed_by(&cv).unwrap();
        every_flip_fails(&bytes, |b| {
            CvCert::parse(b).is_ok_and(|c| c.verify_signed_by(&c).is_ok() && c.verify_signed_by(&cv).is_ok())
        });
        // A certificate issued by the root for another key.
        let other = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let on = other
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec();
        let body = CvCert::body(&cv.subject_key_id, &key_id(&on), &on, &[1, 0, 1]);
        let child = CvCert::parse(&CvCert::assemble(&body, &sign(&body)).unwrap()).unwrap();
        child.verify_signed_by(&cv).unwrap();
        assert!(child.verify_signed_by(&child).is_err());
        assert!(CvCert::assemble(&body[..body.len() - 1], &[0; 256]).is_err());
    }

    #[test]
    fn spki_components() {
        let spki = key().public_key().as_der().unwrap();
        let (n, e) = rsa_components_from_spki(spki.as_ref()).unwrap();
        assert_eq!(n, modulus());
        assert_eq!(e, [1, 0, 1]);
        assert!(rsa_components_from_spki(&spki.as_ref()[..spki.as_ref().len() - 1]).is_err());
        let mut trailing = spki.as_ref().to_vec();
        trailing.push(0);
        assert!(rsa_components_from_spki(&trailing).is_err());
        assert!(rsa_components_from_spki(&[]).is_err());
        assert!(rsa_components_from_spki(&[0x30, 0x00]).is_err());
    }

    fn face_data() -> FaceData {
        FaceData {
            birth: "19800217".into(),
            sex: "2".into(),
            card_public_modulus: modulus(),
            name_png: b"name png".to_vec(),
            address_png: vec![0xA5; 300],
            photo: vec![0x5A; 1000],
            expiry: "20350217".into(),
            security_code_png: b"code".to_vec(),
        }
    }

    #[test]
    fn face_ef0001_round_trip_and_verification() {
        let cv = cvc();
        let tbs = face_ef0001_tbs("19800217", &modulus()).unwrap();
        let b = face_ef0001(&tbs, &sign(&tbs));
        let parsed = verify_face_ef0001(&b, &cv).unwrap();
        assert_eq!(parsed.birth, "19800217");
        assert_eq!(parsed.card_public_modulus, modulus());
        assert_eq!(parse_face_ef0001(&b).unwrap(), parsed);
        assert!(face_ef0001_tbs("1980021", &modulus()).is_err());
        every_flip_fails(&b, |b| verify_face_ef0001(b, &cv).is_ok());
    }

    #[test]
    fn face_ef0002_round_trip_offsets_and_verification() {
        let cv = cvc();
        let data = face_data();
        let tbs = face_ef0002_tbs(&data);
        assert_eq!(tbs.len(), 96);
        let sig = sign(&tbs);
        let b = face_ef0002(&data, &sig).unwrap();
        assert_eq!(parse_face_ef0002(&b).unwrap(), (data.clone(), sig.clone()));
        assert_eq!(verify_face(&b, &cv).unwrap(), data);
        let value = find(&parse_tlvs(&b).unwrap(), 0xFF20).unwrap().to_vec();
        let offsets = find(&parse_tlvs(&value).unwrap(), 0xDF21).unwrap().to_vec();
        assert_eq!(offsets.len(), 18);
        for (i, pair) in offsets.chunks(2).enumerate() {
            let off = usize::from(u16::from_be_bytes([pair[0], pair[1]]));
            assert_eq!(value[off..off + 2], [0xDF, 0x22 + i as u8]);
        }
        // Segment 3 hash is the hash of the DF27 TLV.
        assert_eq!(tbs[64..], sha256(&tlv(0xDF27, &data.photo)));
        // DF29 and DF2A are not signed; everything else is.
        let unsigned = FaceData {
            security_code_png: b"other".to_vec(),
            expiry: "20400101".into(),
            ..data.clone()
        };
        verify_face(&face_ef0002(&unsigned, &sig).unwrap(), &cv).unwrap();
        let changed = FaceData {
            photo: vec![0x5A; 999],
            ..data.clone()
        };
        let err = verify_face(&face_ef0002(&changed, &sig).unwrap(), &cv).unwrap_err();
        assert!(err.to_string().contains("signature does not verify"), "{err}");
        // Every byte up to the DF29 value is protected (DF29 tag and length included).
        let df29 = usize::from(u16::from_be_bytes([offsets[14], offsets[15]])) + 3 + (b.len() - value.len());
        every_flip_fails(&b[..df29], |head| {
            let mut whole = head.to_vec();
            whole.extend_from_slice(&b[df29..]);
            verify_face(&whole, &cv).is_ok()
        });
    }

    #[test]
    fn face_ef0003_round_trip() {
        let b = face_ef0003("AB12345678", "20250401", "131016", "20350217").unwrap();
        assert_eq!(b[..2], [0xFF, 0x30]);
        let info = parse_face_ef0003(&b).unwrap();
        assert_eq!(
            info,
            FaceCardInfo {
                card_id: "AB12345678".into(),
                issued: "20250401".into(),
                version: "01".into(),
                municipality: "131016".into(),
                expiry: "20350217".into(),
            }
        );
        assert!(face_ef0003("", "20250401", "131016", "20350217").is_err());
        assert!(face_ef0003("A B", "20250401", "131016", "20350217").is_err());
        assert!(face_ef0003("AB", "20250401", "13101", "20350217").is_err());
    }

    #[test]
    fn face_ef0005_round_trip_and_verification() {
        let cv = cvc();
        let tbs = face_ef0005_tbs(b"png bytes", "123456789012").unwrap();
        let b = face_ef0005(&tbs, &sign(&tbs));
        let parsed = verify_face_ef0005(&b, &cv).unwrap();
        assert_eq!(parsed.number, "123456789012");
        assert_eq!(parsed.number_png, b"png bytes");
        assert_eq!(parse_face_ef0005(&b).unwrap(), parsed);
        assert!(face_ef0005_tbs(b"", "1234").is_err());
        every_flip_fails(&b, |b| verify_face_ef0005(b, &cv).is_ok());
    }

    #[test]
    fn common_record_bytes() {
        let b = common_record("123456789012345", "13101", "20350217").unwrap();
        let mut want = vec![0x01, 0x1C];
        want.extend_from_slice(b"1234567890123451310120350217");
        assert_eq!(b, want);
        assert_eq!(b.len(), 30);
        let r = parse_common_record(&b).unwrap();
        assert_eq!(r.card_id, "123456789012345");
        assert_eq!(r.municipality, "13101");
        assert_eq!(r.expiry, "20350217");
        assert!(common_record("12345678901234", "13101", "20350217").is_err());
        assert!(parse_common_record(&b[..29]).is_err());
    }

    #[test]
    fn juki_round_trip() {
        let b = juki_ef0001("01234567890").unwrap();
        assert_eq!(b[..3], [0xFF, 0x10, 0x0B]);
        assert_eq!(b.len(), 14);
        assert_eq!(parse_juki_ef0001(&b).unwrap(), "01234567890");
        assert!(juki_ef0001("0123456789").is_err());
    }

    #[test]
    fn token_info_layout() {
        let info = token_info(CARD_TOKEN_LABEL);
        assert_eq!(info.len(), 160);
        assert_eq!(&info[..15], b"JPKIAPICCTOKEN2");
        assert_eq!(info[15..32], [b' '; 17]);
        assert_eq!(&info[32..40], b"openjpki");
        assert_eq!(&info[64..68], b"JPKI");
        assert_eq!(&info[80..96], b"0000000000000000");
        assert_eq!(info[96..100], 0x40Du32.to_be_bytes());
        assert_eq!(info[116..120], 16u32.to_be_bytes());
        assert_eq!(info[120..124], 4u32.to_be_bytes());
        assert_eq!(info[144..], [b' '; 16]);
        assert_eq!(token_info_label(&info).unwrap(), CARD_TOKEN_LABEL);
        let long = token_info(&"あ".repeat(20));
        assert_eq!(token_info_label(&long).unwrap(), "あ".repeat(10));
        assert!(token_info_label(&info[..159]).is_err());
    }

    #[test]
    fn ef0008_bytes() {
        assert_eq!(token_ef0008(true), [0x8F, 0x8F, 0x00]);
        assert_eq!(token_ef0008(false), [0x00, 0x8F, 0x00]);
        assert!(parse_token_ef0008(&token_ef0008(true)).unwrap());
        assert!(!parse_token_ef0008(&token_ef0008(false)).unwrap());
        assert!(parse_token_ef0008(&[0x8F, 0x8F]).is_err());
    }

    /// Valid one- or two-byte tags.
    fn tag() -> impl Strategy<Value = u16> {
        prop_oneof![
            (0u16..=0xFF).prop_filter("not a continuation byte", |t| t & 0x1F != 0x1F),
            (0u8..=0xFF, 0u8..0x80).prop_map(|(a, b)| u16::from_be_bytes([a | 0x1F, b])),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn parse_tlvs_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_tlvs(&bytes);
            let _ = ber_total_len(&bytes);
            let _ = CvCert::parse(&bytes);
            let _ = parse_assist_ef0002(&bytes);
            let _ = parse_face_ef0002(&bytes);
            let _ = rsa_components_from_spki(&bytes);
        }

        #[test]
        fn tlv_round_trips(
            parts in proptest::collection::vec((tag(), proptest::collection::vec(any::<u8>(), 0..400)), 0..6)
        ) {
            let encoded: Vec<u8> = parts.iter().flat_map(|(t, v)| tlv(*t, v)).collect();
            let parsed = parse_tlvs(&encoded).unwrap();
            // A final 00-tag TLV that is entirely zero looks like filler.
            let trimmed: Vec<(u16, &[u8])> = parts.iter().map(|(t, v)| (*t, v.as_slice())).collect();
            let last_is_filler = |p: &[(u16, &[u8])]| {
                p.last().is_some_and(|(t, v)| {
                    tlv(*t, v).iter().all(|&b| b == 0 || b == 0xFF)
                })
            };
            let mut expected = trimmed.clone();
            while last_is_filler(&expected) {
                expected.pop();
            }
            prop_assert_eq!(parsed, expected);
            let first = tlv(parts.first().map_or(0x90, |p| p.0), parts.first().map_or(&[][..], |p| &p.1));
            prop_assert_eq!(ber_total_len(&first), Some(first.len()));
        }
    }
}
