//! PAdES plumbing (ETSI EN 319 142-1) for PDF documents: no cryptography here.
//!
//! Signing is three steps. [`prepare`] appends one incremental update (ISO 32000-1 §7.5.6) to the
//! unchanged original bytes: a signature dictionary (`/SubFilter /ETSI.CAdES.detached`) whose
//! `/Contents` is a zero-filled hex placeholder, an invisible signature field merged with its
//! widget annotation on the first page, new versions of the objects that must point at the field
//! (the page or its `/Annots` array, the catalog or its `/AcroForm`), and a cross-reference section
//! of the same kind as the original's last one. The caller then signs [`PreparedPdf::digest_sha256`]
//! (the SHA-256 of everything but the placeholder) into a detached CAdES CMS, and
//! [`PreparedPdf::finish`] writes the DER of that CMS into the placeholder. No byte moves after
//! [`prepare`]: the `/ByteRange` numbers are patched in place within space-padded brackets.
//!
//! Reading is [`signatures`]: every signature field of the interactive form with a signature
//! dictionary, its DER contents, its `/M` time, the digest of the bytes it covers, and whether the
//! byte range covers exactly one whole revision of the file ([`Coverage`]). Whether the CMS verifies
//! is the caller's concern.
//!
//! The PDF is read with `lopdf` (objects, cross-reference tables and streams, object streams); the
//! update bytes are written here. `lopdf` is called behind [`std::panic::catch_unwind`] so that a
//! panic inside it on hostile input becomes [`SigError::Malformed`] instead of unwinding through
//! the caller (under a fuzzer's abort-on-panic hook it still shows up as a crash, as it should).
//! lopdf decodes every object stream while loading; reading a PDF bounds what they decode to for the
//! whole file ([`MIN_OBJECT_STREAMS_DECODED`]) and what lopdf builds from them and from the objects
//! written out in the file ([`MAX_OBJECT_STREAMS_PARSED`], estimated before lopdf parses any), and
//! refuses before lopdf loads anything an encrypted file (decrypted without that bound) and one
//! whose stream length may be read from an object stream (decoded without it), so that a few
//! kilobytes of compressed streams, or a few megabytes of `[0 0 0 …]`, cannot take gigabytes.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt::Write as _;

use aws_lc_rs::digest;
use lopdf::xref::{XrefEntry, XrefRecovery, XrefType};
use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId, StringFormat};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::SigError;

const WHAT: &str = "PDF";

/// Largest PDF accepted by [`prepare`] and [`signatures`].
pub const MAX_PDF_SIZE: usize = 256 * 1024 * 1024;

/// Default room for the DER CMS in a prepared signature (the hex placeholder is twice this).
pub const DEFAULT_RESERVED: usize = 32 * 1024;

/// Largest room that may be reserved for the DER CMS.
pub const MAX_RESERVED: usize = 8 * 1024 * 1024;

/// Object numbers above this are beyond ISO 32000-1 Annex C's limit and refused.
const MAX_OBJECT_NUMBER: u32 = 8_388_607;

/// Nesting limit for field trees and DER (the parsers below recurse).
const MAX_DEPTH: usize = 64;

/// Width of the `/ByteRange` array's contents: `0 a b c` with three numbers of up to 10 digits.
const BYTE_RANGE_WIDTH: usize = 34;

/// How a signature is to be added by [`prepare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// Name of the new signature field; `None` picks the first free `Signature1`, `Signature2`, ….
    /// A period is not allowed (it separates the parts of a fully qualified field name).
    pub field_name: Option<String>,
    /// The claimed signing time, written as `/M` in the signature dictionary with its UTC offset.
    pub signing_time: OffsetDateTime,
    /// Bytes reserved for the DER CMS ([`DEFAULT_RESERVED`] by default, at most [`MAX_RESERVED`]).
    pub reserved: usize,
    /// `/Name`: the signer's name, as the signer claims it.
    pub name: Option<String>,
    /// `/Reason`: why the document is signed.
    pub reason: Option<String>,
    /// `/Location`: where it is signed.
    pub location: Option<String>,
}

impl SignOptions {
    /// Options with the given signing time and defaults for everything else.
    #[must_use]
    pub fn new(signing_time: OffsetDateTime) -> Self {
        Self {
            field_name: None,
            signing_time,
            reserved: DEFAULT_RESERVED,
            name: None,
            reason: None,
            location: None,
        }
    }
}

/// A PDF with a signature placeholder, waiting for its CMS ([`prepare`] → [`PreparedPdf::finish`]).
#[derive(Clone)]
pub struct PreparedPdf {
    bytes: Vec<u8>,
    byte_range: [usize; 4],
    field_name: String,
}

impl std::fmt::Debug for PreparedPdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedPdf")
            .field("len", &self.bytes.len())
            .field("byte_range", &self.byte_range)
            .field("field_name", &self.field_name)
            .finish()
    }
}

impl PreparedPdf {
    /// The `/ByteRange`: `[0, offset of '<', offset after '>', length of the rest]`.
    #[must_use]
    pub fn byte_range(&self) -> [usize; 4] {
        self.byte_range
    }

    /// Name of the new signature field.
    #[must_use]
    pub fn field_name(&self) -> &str {
        &self.field_name
    }

    /// Bytes available for the DER CMS.
    #[must_use]
    pub fn reserved(&self) -> usize {
        (self.byte_range[2] - self.byte_range[1] - 2) / 2
    }

    /// The two covered ranges, in order: what the signature's message digest is computed over.
    pub fn covered(&self) -> impl Iterator<Item = &[u8]> {
        let [a, b, c, d] = self.byte_range;
        [&self.bytes[a..a + b], &self.bytes[c..c + d]].into_iter()
    }

    /// SHA-256 of the covered bytes: the digest to sign.
    #[must_use]
    pub fn digest_sha256(&self) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in self.covered() {
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// Writes the DER CMS into the placeholder (hex, zero-padded) and returns the signed PDF.
    ///
    /// # Errors
    /// [`SigError::Malformed`] if `cms_der` is not one BER/DER SEQUENCE with nothing after it, and
    /// [`SigError::TooLarge`] if it does not fit the room reserved.
    pub fn finish(mut self, cms_der: &[u8]) -> Result<Vec<u8>, SigError> {
        if tlv_len(cms_der, 0) != Some(cms_der.len()) || cms_der.first() != Some(&0x30) {
            return Err(SigError::Malformed {
                what: "CMS signature",
                detail: "not one DER SEQUENCE".into(),
            });
        }
        let limit = self.reserved();
        if cms_der.len() > limit {
            return Err(SigError::TooLarge {
                what: "CMS signature",
                size: cms_der.len(),
                limit,
            });
        }
        let hex = hex::encode_upper(cms_der);
        let start = self.byte_range[1] + 1;
        self.bytes[start..start + hex.len()].copy_from_slice(hex.as_bytes());
        Ok(self.bytes)
    }
}

/// Whether a signature's byte range covers one whole revision of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// The range starts at 0, leaves out exactly this signature's `/Contents` hex string, and
    /// ends at an `%%EOF` marker (with its optional end-of-line).
    WholeRevision {
        /// Where the signed revision ends (`byte_range[2] + byte_range[3]`).
        revision_end: usize,
        /// Whether the file goes on past the signed revision with anything but PDF whitespace
        /// (incremental updates after signing, e.g. a second signature or validation data).
        later_revisions: bool,
    },
    /// Anything else, with the reason in one line.
    Broken(String),
}

/// A signature field's signature dictionary, as found by [`signatures`].
#[derive(Debug)]
#[non_exhaustive]
pub struct PdfSignature {
    /// Fully qualified field name (partial names joined with periods).
    pub field_name: String,
    /// `/SubFilter` (e.g. `ETSI.CAdES.detached`, `ETSI.RFC3161`, `adbe.pkcs7.detached`); empty if absent.
    pub sub_filter: String,
    /// Whether the dictionary is a document time-stamp (`/Type /DocTimeStamp`).
    pub is_doc_timestamp: bool,
    /// `/ByteRange`; all zero when the dictionary has none that is four non-negative integers
    /// (then [`PdfSignature::coverage`] is [`Coverage::Broken`]).
    pub byte_range: [u64; 4],
    /// The CMS (or time-stamp token) from `/Contents`: exactly the outer TLV, the zero padding
    /// after it removed; an error if `/Contents` is missing or does not start with a SEQUENCE.
    pub contents: Result<Vec<u8>, SigError>,
    /// `/M`, the signing time the signer claims, if present and a valid PDF date.
    pub signing_time_m: Option<OffsetDateTime>,
    /// `/Name`.
    pub name: Option<String>,
    /// `/Reason`.
    pub reason: Option<String>,
    /// `/Location`.
    pub location: Option<String>,
    /// SHA-256 of the covered bytes; `None` when the byte range is not inside the file.
    pub digest_sha256: Option<[u8; 32]>,
    /// Integrity of the byte range.
    pub coverage: Coverage,
}

impl PdfSignature {
    /// The two covered ranges of `pdf` (the file this signature was read from), or `None` when the
    /// byte range is not inside it; for digests other than SHA-256.
    #[must_use]
    pub fn covered<'a>(&self, pdf: &'a [u8]) -> Option<[&'a [u8]; 2]> {
        covered_ranges(pdf, self.byte_range)
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

pub(crate) fn malformed(detail: impl Into<String>) -> SigError {
    SigError::Malformed {
        what: WHAT,
        detail: detail.into(),
    }
}

pub(crate) fn unsupported(detail: impl Into<String>) -> SigError {
    SigError::Unsupported {
        what: WHAT,
        detail: detail.into(),
    }
}

pub(crate) fn check_size(pdf: &[u8]) -> Result<(), SigError> {
    if pdf.len() > MAX_PDF_SIZE {
        return Err(SigError::TooLarge {
            what: WHAT,
            size: pdf.len(),
            limit: MAX_PDF_SIZE,
        });
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn is_pdf_delimiter(b: u8) -> bool {
    b"()<>[]{}/%".contains(&b)
}

/// Skips white space and comments (`%` to the end of the line) from `i`, as lopdf's lexer does.
fn skip_space(pdf: &[u8], i: usize) -> usize {
    skip_space_in(pdf, i, &Cell::new((0, 0)))
}

/// [`skip_space`], remembering in `memo` the last comment it skipped (where it started, where its
/// line ends), so that scanning many keys within one long comment reads the comment once.
fn skip_space_in(pdf: &[u8], mut i: usize, memo: &Cell<(usize, usize)>) -> usize {
    loop {
        match pdf.get(i) {
            Some(&b) if is_pdf_space(b) => i += 1,
            Some(b'%') => {
                let (start, end) = memo.get();
                if (start..end).contains(&i) {
                    // No end of line between `start` and `end`.
                    i = end;
                } else {
                    let start = i;
                    while pdf.get(i).is_some_and(|&b| b != b'\r' && b != b'\n') {
                        i += 1;
                    }
                    memo.set((start, i));
                }
            }
            _ => return i,
        }
    }
}

/// The name starting at `pdf[at] == b'/'`, decoded as lopdf decodes it (`#` and two hexadecimal
/// digits are one byte; any other `#` ends the name), and the index after it.
fn name_at(pdf: &[u8], at: usize) -> (Vec<u8>, usize) {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut name = Vec::new();
    let mut i = at + 1;
    while let Some(&b) = pdf.get(i) {
        if b == b'#' {
            match (
                pdf.get(i + 1).copied().and_then(hex),
                pdf.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    name.push(h << 4 | l);
                    i += 3;
                }
                _ => break,
            }
        } else if is_pdf_space(b) || is_pdf_delimiter(b) {
            break;
        } else {
            name.push(b);
            i += 1;
        }
    }
    (name, i)
}

/// Where the value after every name spelled `key` in the raw bytes starts (after white space and
/// comments). Every `/` is taken for the start of a name, also in strings and stream data, so
/// this finds at least every key lopdf reads from the file's own bytes, however it is escaped.
fn values_of_key<'a>(
    pdf: &'a [u8],
    key: &'a [u8],
    memo: &'a Cell<(usize, usize)>,
) -> impl Iterator<Item = usize> + 'a {
    let mut i = 0;
    std::iter::from_fn(move || {
        while let Some(at) = pdf.get(i..).and_then(|rest| rest.iter().position(|&b| b == b'/')) {
            let (name, after) = name_at(pdf, i + at);
            i = after.max(i + at + 1);
            if name == key {
                return Some(skip_space_in(pdf, after, memo));
            }
        }
        None
    })
}

/// The end of the unsigned integer at `i`, if one starts there.
fn integer_end(pdf: &[u8], i: usize) -> Option<usize> {
    let digits = pdf.get(i..)?.iter().take_while(|b| b.is_ascii_digit()).count();
    (digits > 0).then_some(i + digits)
}

/// Whether an indirect reference (`12 0 R`, white space and comments allowed between the parts)
/// starts at `i`.
fn is_reference_at(pdf: &[u8], i: usize, memo: &Cell<(usize, usize)>) -> bool {
    let Some(end) = integer_end(pdf, i) else {
        return false;
    };
    let i = skip_space_in(pdf, end, memo);
    if i == end {
        return false;
    }
    let Some(end) = integer_end(pdf, i) else {
        return false;
    };
    pdf.get(skip_space_in(pdf, end, memo)) == Some(&b'R')
}

/// Whether the file names an encryption dictionary: a key `/Encrypt` (however its name is
/// escaped, with any white space or comments after it) followed by an indirect reference
/// (`12 0 R`) or a dictionary (`<<`), as a trailer or a cross-reference stream has it.
fn declares_encryption(pdf: &[u8]) -> bool {
    let memo = Cell::new((0, 0));
    values_of_key(pdf, b"Encrypt", &memo)
        .any(|i| pdf.get(i..).is_some_and(|r| r.starts_with(b"<<")) || is_reference_at(pdf, i, &memo))
}

/// Whether a stream dictionary in the raw bytes may take its `/Length` from an object in an
/// object stream: some `/Length` is an indirect reference and some `/First` is not one (an object
/// stream's is a direct integer, an outline's a reference). The object stream holding the length
/// is read where the file has it, never from another object stream, so its `/First` is in the
/// raw bytes.
///
/// lopdf resolves an indirect `/Length` while it parses the stream, and when the length is a
/// compressed object it decodes and parses the whole object stream holding it, with only its
/// per-stream limit and without the object filter that keeps the budget.
fn may_take_length_from_object_stream(pdf: &[u8]) -> bool {
    let memo = Cell::new((0, 0));
    values_of_key(pdf, b"Length", &memo).any(|i| is_reference_at(pdf, i, &memo))
        && values_of_key(pdf, b"First", &memo).any(|i| !is_reference_at(pdf, i, &memo))
}

/// The object streams (`/Type /ObjStm`) of one PDF may decode to at most this many bytes together,
/// or [`OBJECT_STREAMS_PER_BYTE`] times the file's size if that is more. lopdf decodes every
/// object stream while loading and keeps what it parses: its own bound is per stream only, so
/// without a total a few kilobytes of crafted streams take gigabytes (a decompression bomb).
pub const MIN_OBJECT_STREAMS_DECODED: usize = 16 * 1024 * 1024;

/// See [`MIN_OBJECT_STREAMS_DECODED`].
pub const OBJECT_STREAMS_PER_BYTE: usize = 4;

/// What lopdf may build from the object streams of one PDF, estimated before it parses them: the
/// decoded bytes and, for every token of them, the size of one [`Object`] (120 bytes with lopdf
/// 0.47) and a little more for the array or dictionary holding it. The objects outside object
/// streams count against the same budget, first ([`raw_objects_cost`]). Bytes alone do not bound
/// it: `0 0 0 …` or `//////…` is one object for every byte or two. At most some 660,000 tokens, which
/// lopdf builds into well under 200 MiB even when every one is an array element (with the spare
/// capacity of a growing `Vec`); ordinary dictionaries take much less.
pub const MAX_OBJECT_STREAMS_PARSED: usize = 96 * 1024 * 1024;

/// Estimated size of what lopdf builds for one token of an object stream (see
/// [`MAX_OBJECT_STREAMS_PARSED`]).
const PARSED_TOKEN_COST: usize = std::mem::size_of::<Object>() + 32;

/// What lopdf keeps for one entry of an object stream's index (the number pair, and the entry of
/// the map of parsed objects).
const PARSED_ENTRY_COST: usize = 64;

/// The budget of one load: decoded bytes left, estimated parsed size left, and whether an object
/// stream went beyond either.
#[derive(Clone, Copy)]
struct Budget {
    decoded: usize,
    parsed: usize,
    over: bool,
}

const UNLIMITED: Budget = Budget {
    decoded: usize::MAX,
    parsed: usize::MAX,
    over: false,
};

thread_local! {
    /// The budget of the PDF [`load`] reads on this thread. (lopdf, built without rayon, loads on
    /// the calling thread and takes a plain function as its object filter.)
    static OBJECT_STREAM_BUDGET: Cell<Budget> = const { Cell::new(UNLIMITED) };
}

/// One token of PDF objects as [`Lexer`] reads it: where it starts and ends, and how deeply it is
/// nested in arrays and dictionaries (an opening or closing bracket counts as outside).
struct Token {
    start: usize,
    end: usize,
    depth: usize,
}

/// Splits PDF objects into tokens as lopdf's parser does, in one pass: white space and comments
/// between them, a string (literal or hexadecimal) or a name as one token, `<<` `>>` `[` `]` as
/// one each, and any other run of regular characters as one (numbers, keywords, `R`).
struct Lexer<'a> {
    content: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Lexer<'a> {
    fn new(content: &'a [u8], at: usize) -> Self {
        Lexer {
            content,
            i: skip_space(content, at),
            depth: 0,
        }
    }

    fn next(&mut self) -> Option<Token> {
        let content = self.content;
        let mut i = self.i;
        let b = *content.get(i)?;
        let start = i;
        let mut depth = self.depth;
        match b {
            b'(' => {
                let mut nesting = 0usize;
                while let Some(&c) = content.get(i) {
                    i += 1;
                    match c {
                        b'\\' => i += 1,
                        b'(' => nesting += 1,
                        b')' => {
                            nesting -= 1;
                            if nesting == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            b'<' if content.get(i + 1) == Some(&b'<') => {
                self.depth += 1;
                i += 2;
            }
            b'<' => {
                i += content[i..]
                    .iter()
                    .position(|&c| c == b'>')
                    .map_or(content.len() - i, |p| p + 1);
            }
            b'>' if content.get(i + 1) == Some(&b'>') => {
                self.depth = self.depth.saturating_sub(1);
                depth = self.depth;
                i += 2;
            }
            b'[' => {
                self.depth += 1;
                i += 1;
            }
            b']' => {
                self.depth = self.depth.saturating_sub(1);
                depth = self.depth;
                i += 1;
            }
            b'/' => i = name_at(content, i).1,
            b')' | b'>' | b'{' | b'}' => i += 1,
            _ => {
                i += content[i..]
                    .iter()
                    .position(|&c| is_pdf_space(c) || is_pdf_delimiter(c))
                    .unwrap_or(content.len() - i);
            }
        }
        let end = i.min(content.len());
        self.i = skip_space(content, end);
        Some(Token { start, end, depth })
    }
}

/// The estimated size of what lopdf builds from the decoded object stream `content` whose objects
/// start at `first` (see [`MAX_OBJECT_STREAMS_PARSED`]), or `None` when its index makes lopdf
/// parse some bytes more than once: an entry whose object does not start at the top level of
/// the objects (inside an array, a dictionary or a string, or within a token), or two entries
/// with one offset. lopdf parses one object at every entry's offset, however those overlap.
fn object_stream_cost(content: &[u8], first: usize) -> Option<usize> {
    // The index as lopdf reads it (object_stream.rs): numbers split at white space, comments
    // removed line by line, taken in pairs.
    let Some(Ok(index)) = content.get(..first).map(std::str::from_utf8) else {
        return Some(content.len()); // lopdf refuses the stream.
    };
    let mut numbers = index
        .split(['\r', '\n'])
        .flat_map(|line| line.split('%').next().unwrap_or_default().split_whitespace())
        .map(|n| n.parse::<u32>().ok());
    let (mut count, mut starts) = (0usize, Vec::new());
    while let (Some(id), Some(offset)) = (numbers.next(), numbers.next()) {
        count += 2;
        if let (Some(_), Some(offset)) = (id, offset)
            && let Some(offset) = first.checked_add(offset as usize)
            && offset < content.len()
        {
            starts.push(offset);
        }
    }
    starts.sort_unstable();
    // Where lopdf starts parsing each entry's object (after white space and comments). An
    // offset within what the one before it skipped is a second entry for one object or points
    // into a comment's text; either way, refused (and no byte is skipped twice).
    let mut skipped_to = 0;
    for start in &mut starts {
        if *start < skipped_to {
            return None;
        }
        *start = skip_space(content, *start);
        skipped_to = *start + 1;
    }
    starts.retain(|&start| start < content.len());
    // One pass over the objects: every token, and whether each entry starts a top-level one
    // (`starts` is sorted, as the tokens come).
    let mut tokens = 0usize;
    let mut entries = starts.iter().peekable();
    let mut lexer = Lexer::new(content, first);
    while let Some(token) = lexer.next() {
        tokens += 1;
        if token.depth == 0 {
            if entries.next_if(|&&e| e < token.start).is_some() {
                return None;
            }
            entries.next_if(|&&e| e == token.start);
        }
    }
    if entries.next().is_some() {
        return None;
    }
    Some(
        content
            .len()
            .saturating_add(tokens.saturating_mul(PARSED_TOKEN_COST))
            .saturating_add(count.saturating_mul(PARSED_ENTRY_COST)),
    )
}

/// The estimated size of what lopdf builds from the objects written out in the file itself,
/// counted against the same budget as object streams ([`MAX_OBJECT_STREAMS_PARSED`]), or some
/// size over `limit` once it is clear the file goes beyond it.
///
/// lopdf parses an object wherever a cross-reference entry points, after `N G obj`, and a trailer
/// dictionary after `trailer`. So one object is lexed after every `obj` that may end such a
/// header (after a digit or white space) and after every `trailer`, wherever it is: also within
/// stream data, a string or a comment, where an entry may point as well. Stream data is
/// otherwise never read (lopdf does not parse it either), nor are cross-reference tables. Each
/// costs [`PARSED_ENTRY_COST`], [`PARSED_TOKEN_COST`] for every token of its object, and the
/// bytes the object spans (lopdf copies a string's bytes; and headers within strings or comments
/// may make lopdf parse some bytes more than once): a string, such as a signature's `/Contents`,
/// is one token. Lexing an object stops at the end of the first value or at a token lopdf's
/// parser refuses there (a keyword such as `obj` or `endobj`, a stray delimiter); since every
/// object costs at least the bytes read for it, and the scan stops once over `limit`, it takes
/// time linear in the size of the file.
fn raw_objects_cost(pdf: &[u8], limit: usize) -> usize {
    let mut cost = 0usize;
    let mut at = 0;
    while let Some(p) = pdf
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'o' || b == b't'))
    {
        let found = at + p;
        at = found + 1;
        let value = if pdf[found..].starts_with(b"obj") {
            if !pdf
                .get(found.wrapping_sub(1))
                .is_some_and(|&b| b.is_ascii_digit() || is_pdf_space(b))
            {
                continue;
            }
            found + 3
        } else if pdf[found..].starts_with(b"trailer") {
            found + 7
        } else {
            continue;
        };
        let mut lexer = Lexer::new(pdf, value);
        let mut end = value;
        let mut tokens = 0usize;
        while let Some(token) = lexer.next() {
            let first = pdf[token.start];
            let refused = match first {
                b'(' | b'<' | b'[' | b']' | b'/' => false,
                b'>' => !pdf[token.start..].starts_with(b">>"),
                b'0'..=b'9' | b'+' | b'-' | b'.' | b'n' | b't' | b'f' | b'R' => false,
                _ => true,
            };
            if refused {
                break;
            }
            tokens += 1;
            end = token.end;
            if lexer.depth == 0 {
                break;
            }
        }
        cost = cost
            .saturating_add(PARSED_ENTRY_COST)
            .saturating_add(tokens.saturating_mul(PARSED_TOKEN_COST))
            .saturating_add(end - value);
        if cost > limit {
            break;
        }
    }
    cost
}

/// lopdf's object filter for [`load`]: counts each object stream's decoded size, and what lopdf
/// will build from it, against [`OBJECT_STREAM_BUDGET`] before lopdf decodes and parses it, and
/// drops it once the budget is spent or when its index overlaps (the load then fails). Every
/// other object is kept as it is.
fn budget_object_streams(id: ObjectId, o: &mut Object) -> Option<(ObjectId, Object)> {
    if let Object::Stream(stream) = &*o
        && stream.dict.has_type(b"ObjStm")
    {
        let mut budget = OBJECT_STREAM_BUDGET.get();
        if budget.over {
            return None;
        }
        match stream.decompressed_content_with_limit(budget.decoded) {
            Ok(decoded) => {
                let first = stream
                    .dict
                    .get(b"First")
                    .and_then(Object::as_i64)
                    .ok()
                    .and_then(|f| usize::try_from(f).ok());
                let cost = match first {
                    Some(first) if !decoded.is_empty() => object_stream_cost(&decoded, first),
                    _ => Some(decoded.len()),
                };
                budget.decoded -= decoded.len().min(budget.decoded);
                match cost {
                    Some(cost) if cost <= budget.parsed => budget.parsed -= cost,
                    _ => budget.over = true,
                }
            }
            Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })) => {
                budget.over = true;
            }
            // Undecodable: lopdf itself reports it (or passes over it).
            Err(_) => {}
        }
        OBJECT_STREAM_BUDGET.set(budget);
        if budget.over {
            return None;
        }
    }
    Some((id, o.clone()))
}

/// Loads with lopdf; a panic inside lopdf becomes `Malformed` (lopdf is third-party code run on
/// untrusted input; see the module docs). Object streams are decoded within a budget for the
/// whole file ([`MIN_OBJECT_STREAMS_DECODED`], [`MAX_OBJECT_STREAMS_PARSED`]), after what lopdf
/// would build from the objects outside them ([`raw_objects_cost`]): beyond it, or when an object
/// stream's index makes lopdf parse its objects more than once, [`SigError::TooLarge`].
pub(crate) fn load(pdf: &[u8]) -> Result<Document, SigError> {
    // What lopdf would build from the objects outside object streams, however many tokens they
    // hold (`[0 0 0 …]` or `[////…]` is one object for every byte or two), is bounded first (this
    // stops as soon as it is over).
    let raw = raw_objects_cost(pdf, MAX_OBJECT_STREAMS_PARSED);
    if raw > MAX_OBJECT_STREAMS_PARSED {
        return Err(SigError::TooLarge {
            what: "PDF objects (estimated size once parsed)",
            size: raw,
            limit: MAX_OBJECT_STREAMS_PARSED,
        });
    }
    // An encrypted file is refused anyway, and lopdf decrypts (with the empty password) and decodes
    // the object streams of one without the object filter that keeps the budget: refused first.
    if declares_encryption(pdf) {
        return Err(unsupported("an encrypted PDF"));
    }
    // Nor could the budget hold an object stream lopdf decodes to read a stream's length.
    if may_take_length_from_object_stream(pdf) {
        return Err(unsupported(
            "a stream /Length given by reference in a PDF with object streams",
        ));
    }
    let budget = MIN_OBJECT_STREAMS_DECODED
        .max(pdf.len().saturating_mul(OBJECT_STREAMS_PER_BYTE))
        .min(MAX_PDF_SIZE);
    let options = LoadOptions {
        max_decompressed_size: Some(budget),
        filter: Some(budget_object_streams),
        ..LoadOptions::default()
    };
    OBJECT_STREAM_BUDGET.set(Budget {
        decoded: budget,
        parsed: MAX_OBJECT_STREAMS_PARSED - raw,
        over: false,
    });
    let loaded = std::panic::catch_unwind(|| Document::load_mem_with_options(pdf, options));
    let over = OBJECT_STREAM_BUDGET.replace(UNLIMITED).over;
    let over_budget = || SigError::TooLarge {
        what: "PDF object streams (decoded)",
        size: budget.saturating_add(1),
        limit: budget,
    };
    if over {
        return Err(over_budget());
    }
    let doc = match loaded {
        Ok(Ok(doc)) => doc,
        Ok(Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }))) => {
            return Err(over_budget());
        }
        Ok(Err(e)) => {
            if values_of_key(pdf, b"Encrypt", &Cell::new((0, 0)))
                .next()
                .is_some()
            {
                return Err(unsupported("an encrypted PDF"));
            }
            return Err(malformed(format!("cannot be parsed: {e}")));
        }
        Err(_) => return Err(malformed("cannot be parsed (the PDF reader failed)")),
    };
    if doc.encryption_state.is_some() || doc.trailer.has(b"Encrypt") {
        return Err(unsupported("an encrypted PDF"));
    }
    Ok(doc)
}

pub(crate) fn deref<'a>(doc: &'a Document, o: &'a Object) -> Option<&'a Object> {
    doc.dereference(o).ok().map(|(_, o)| o)
}

pub(crate) fn dict_get<'a>(doc: &'a Document, d: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    d.get(key).ok().and_then(|o| deref(doc, o))
}

pub(crate) fn get_dict<'a>(doc: &'a Document, d: &'a Dictionary, key: &[u8]) -> Option<&'a Dictionary> {
    dict_get(doc, d, key).and_then(|o| o.as_dict().ok())
}

fn get_name<'a>(doc: &'a Document, d: &'a Dictionary, key: &[u8]) -> Option<&'a [u8]> {
    dict_get(doc, d, key).and_then(|o| o.as_name().ok())
}

fn get_text(doc: &Document, d: &Dictionary, key: &[u8]) -> Option<String> {
    dict_get(doc, d, key).and_then(|o| lopdf::decode_text_string(o).ok())
}

/// One node of the interactive form's field tree.
struct FieldNode<'a> {
    /// Fully qualified name.
    name: String,
    /// Whether the node has its own `/T` (a field, not just a widget).
    has_t: bool,
    dict: &'a Dictionary,
    /// The indirect object holding the node's dictionary.
    id: Option<ObjectId>,
    /// `/FT`, own or inherited.
    ft: Option<&'a [u8]>,
}

/// The field tree of the catalog's `/AcroForm`, depth first in document order.
fn field_nodes(doc: &Document) -> Vec<FieldNode<'_>> {
    let mut out = Vec::new();
    let Some(fields) = doc
        .catalog()
        .ok()
        .and_then(|c| get_dict(doc, c, b"AcroForm"))
        .and_then(|af| dict_get(doc, af, b"Fields"))
        .and_then(|f| f.as_array().ok())
    else {
        return out;
    };
    let mut seen = HashSet::new();
    for f in fields {
        walk_fields(doc, f, "", None, 0, &mut seen, &mut out);
    }
    out
}

fn walk_fields<'a>(
    doc: &'a Document,
    node: &'a Object,
    parent: &str,
    inherited_ft: Option<&'a [u8]>,
    depth: usize,
    seen: &mut HashSet<ObjectId>,
    out: &mut Vec<FieldNode<'a>>,
) {
    if depth > MAX_DEPTH || out.len() > 100_000 {
        return;
    }
    let Ok((id, obj)) = doc.dereference(node) else {
        return;
    };
    if let Some(id) = id
        && !seen.insert(id)
    {
        return;
    }
    let Ok(dict) = obj.as_dict() else {
        return;
    };
    let t = get_text(doc, dict, b"T");
    let name = match (&t, parent.is_empty()) {
        (Some(t), true) => t.clone(),
        (Some(t), false) => format!("{parent}.{t}"),
        (None, _) => parent.to_owned(),
    };
    let ft = get_name(doc, dict, b"FT").or(inherited_ft);
    if let Some(kids) = dict_get(doc, dict, b"Kids").and_then(|k| k.as_array().ok()) {
        out.push(FieldNode {
            name: name.clone(),
            has_t: t.is_some(),
            dict,
            id,
            ft,
        });
        for k in kids {
            walk_fields(doc, k, &name, ft, depth + 1, seen, out);
        }
    } else {
        out.push(FieldNode {
            name,
            has_t: t.is_some(),
            dict,
            id,
            ft,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Reading signatures
// ---------------------------------------------------------------------------------------------

/// Every signature field with a signature dictionary (`/FT /Sig`, own or inherited, and a `/V`
/// dictionary), in document order, document time-stamps included.
///
/// Problems with one signature (bad `/Contents`, a byte range that does not fit) are reported in
/// that signature's fields; the call fails only when the file as a whole cannot be read.
///
/// # Errors
/// [`SigError::TooLarge`] over [`MAX_PDF_SIZE`], [`SigError::Unsupported`] for encrypted PDFs,
/// [`SigError::Malformed`] when there is no `%PDF-` header in the first 1024 bytes or the file
/// cannot be parsed.
pub fn signatures(pdf: &[u8]) -> Result<Vec<PdfSignature>, SigError> {
    check_size(pdf)?;
    signatures_any_size(pdf)
}

fn signatures_any_size(pdf: &[u8]) -> Result<Vec<PdfSignature>, SigError> {
    let header = find(&pdf[..pdf.len().min(1024)], b"%PDF-").ok_or_else(|| malformed("no %PDF- header"))?;
    let doc = load(pdf)?;
    let mut out = Vec::new();
    for node in field_nodes(&doc) {
        if node.ft != Some(b"Sig".as_slice()) {
            continue;
        }
        let Some(v) = node.dict.get(b"V").ok() else {
            continue;
        };
        let Ok((v_id, v_obj)) = doc.dereference(v) else {
            continue;
        };
        let Ok(sig) = v_obj.as_dict() else {
            continue;
        };
        let holder = v_id.or(node.id);
        out.push(read_signature(&doc, pdf, header, node.name, sig, holder));
    }
    Ok(out)
}

fn read_signature(
    doc: &Document,
    pdf: &[u8],
    header: usize,
    field_name: String,
    sig: &Dictionary,
    holder: Option<ObjectId>,
) -> PdfSignature {
    let sub_filter = get_name(doc, sig, b"SubFilter")
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_default();
    let is_doc_timestamp = get_name(doc, sig, b"Type") == Some(b"DocTimeStamp".as_slice());
    let byte_range = dict_get(doc, sig, b"ByteRange")
        .and_then(|o| o.as_array().ok())
        .and_then(|a| {
            let mut br = [0u64; 4];
            if a.len() != 4 {
                return None;
            }
            for (slot, o) in br.iter_mut().zip(a) {
                *slot = u64::try_from(deref(doc, o)?.as_i64().ok()?).ok()?;
            }
            Some(br)
        });
    let raw_contents = dict_get(doc, sig, b"Contents").and_then(|o| o.as_str().ok());
    let contents = match raw_contents {
        None => Err(SigError::Malformed {
            what: "PDF signature /Contents",
            detail: "missing or not a string".into(),
        }),
        Some(raw) => match tlv_len(raw, 0) {
            Some(n) if raw.first() == Some(&0x30) => Ok(raw[..n].to_vec()),
            _ => Err(SigError::Malformed {
                what: "PDF signature /Contents",
                detail: "not a DER SEQUENCE".into(),
            }),
        },
    };
    let signing_time_m = get_text(doc, sig, b"M").and_then(|s| parse_pdf_date(&s));
    let digest_sha256 = byte_range.and_then(|br| covered_ranges(pdf, br)).map(|[x, y]| {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(x);
        ctx.update(y);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    });
    let coverage = match (byte_range, raw_contents) {
        (None, _) => Coverage::Broken("no /ByteRange of four non-negative integers".into()),
        (Some(_), None) => Coverage::Broken("no /Contents string".into()),
        (Some(br), Some(raw)) => coverage(doc, pdf, header, br, raw, holder),
    };
    PdfSignature {
        field_name,
        sub_filter,
        is_doc_timestamp,
        byte_range: byte_range.unwrap_or_default(),
        contents,
        signing_time_m,
        name: get_text(doc, sig, b"Name"),
        reason: get_text(doc, sig, b"Reason"),
        location: get_text(doc, sig, b"Location"),
        digest_sha256,
        coverage,
    }
}

fn covered_ranges(pdf: &[u8], br: [u64; 4]) -> Option<[&[u8]; 2]> {
    let [a, b, c, d] = br.map(|x| usize::try_from(x).ok());
    let (a, b, c, d) = (a?, b?, c?, d?);
    Some([pdf.get(a..a.checked_add(b)?)?, pdf.get(c..c.checked_add(d)?)?])
}

fn is_pdf_space(b: u8) -> bool {
    matches!(b, 0 | b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

fn coverage(
    doc: &Document,
    pdf: &[u8],
    header: usize,
    br: [u64; 4],
    contents: &[u8],
    holder: Option<ObjectId>,
) -> Coverage {
    let broken = |s: &str| Coverage::Broken(s.to_owned());
    let conv = |x: u64| usize::try_from(x).ok();
    let (Some(a), Some(b), Some(c), Some(d)) = (conv(br[0]), conv(br[1]), conv(br[2]), conv(br[3])) else {
        return broken("byte range numbers too large");
    };
    if a != 0 {
        return broken("byte range does not start at 0");
    }
    if c < b {
        return broken("the two byte ranges overlap or are out of order");
    }
    let Some(end) = c.checked_add(d).filter(|&e| e <= pdf.len()) else {
        return Coverage::Broken(format!(
            "byte range goes past the end of the file ({} bytes)",
            pdf.len()
        ));
    };
    // The gap: exactly `<hex>`, the value of this dictionary's /Contents.
    let gap = &pdf[b..c];
    if gap.len() < 2 || gap.first() != Some(&b'<') || gap.last() != Some(&b'>') {
        return broken("the gap between the byte ranges is not a hex string");
    }
    let Some(decoded) = decode_hex_string(&gap[1..gap.len() - 1]) else {
        return broken("the gap between the byte ranges is not a hex string");
    };
    if decoded != contents {
        return broken("the gap between the byte ranges is not this signature's /Contents");
    }
    let before = pdf[..b].trim_ascii_end();
    if !before.ends_with(b"/Contents") {
        return broken("the gap between the byte ranges is not the value of /Contents");
    }
    if let Some(id) = holder {
        match doc.reference_table.get(id.0) {
            Some(XrefEntry::Normal { offset, .. }) => {
                let Some(start) = usize::try_from(*offset).ok().and_then(|o| o.checked_add(header)) else {
                    return broken("bad cross-reference offset");
                };
                if start > b || find(&pdf[start..b], b"endobj").is_some() {
                    return broken("the gap is not inside the current signature dictionary");
                }
            }
            Some(XrefEntry::Compressed { .. }) => {
                return broken("the signature dictionary is in an object stream");
            }
            _ => {}
        }
    }
    // The end: %%EOF and an optional end-of-line.
    let signed = &pdf[..end];
    let signed = signed
        .strip_suffix(b"\r\n")
        .or_else(|| signed.strip_suffix(b"\n"))
        .or_else(|| signed.strip_suffix(b"\r"))
        .unwrap_or(signed);
    if !signed.ends_with(b"%%EOF") {
        return broken("the signed range does not end at %%EOF");
    }
    Coverage::WholeRevision {
        revision_end: end,
        later_revisions: pdf[end..].iter().any(|&x| !is_pdf_space(x)),
    }
}

/// Decodes the inside of a PDF hex string (whitespace allowed, odd length padded with 0).
fn decode_hex_string(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 2);
    let mut hi: Option<u8> = None;
    for &ch in s {
        if is_pdf_space(ch) {
            continue;
        }
        let v = match ch {
            b'0'..=b'9' => ch - b'0',
            b'a'..=b'f' => ch - b'a' + 10,
            b'A'..=b'F' => ch - b'A' + 10,
            _ => return None,
        };
        match hi.take() {
            None => hi = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    if let Some(h) = hi {
        out.push(h << 4);
    }
    Some(out)
}

/// Length of the BER/DER TLV at the start of `b` (definite or, for constructed values, indefinite
/// length), or `None` if it does not fit.
fn tlv_len(b: &[u8], depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let tag = *b.first()?;
    let mut i = 1usize;
    if tag & 0x1f == 0x1f {
        // High tag number: base-128 digits, the last without bit 8.
        loop {
            let x = *b.get(i)?;
            i += 1;
            if i > 6 {
                return None;
            }
            if x & 0x80 == 0 {
                break;
            }
        }
    }
    let l = *b.get(i)?;
    i += 1;
    if l == 0x80 {
        if tag & 0x20 == 0 {
            return None;
        }
        loop {
            let rest = b.get(i..)?;
            if rest.starts_with(&[0, 0]) {
                return i.checked_add(2);
            }
            i = i.checked_add(tlv_len(rest, depth + 1)?)?;
        }
    }
    let len = if l < 0x80 {
        usize::from(l)
    } else {
        let n = usize::from(l & 0x7f);
        if n > 4 {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = len.checked_mul(256)?.checked_add(usize::from(*b.get(i)?))?;
            i += 1;
        }
        len
    };
    let end = i.checked_add(len)?;
    (end <= b.len()).then_some(end)
}

/// Parses a PDF date (ISO 32000-1 §7.9.4): `D:YYYY[MM[DD[HH[mm[SS]]]]][Z|(+|-)HH['mm[']]]`, the
/// `D:` prefix optional. Without a time zone the time is taken as UTC.
#[must_use]
pub fn parse_pdf_date(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    let s = s.strip_prefix("D:").unwrap_or(s).as_bytes();
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits < 4 || digits % 2 != 0 || digits > 14 {
        return None;
    }
    let num = |from: usize, len: usize, default: u32| -> Option<u32> {
        if from + len > digits {
            return Some(default);
        }
        std::str::from_utf8(s.get(from..from + len)?).ok()?.parse().ok()
    };
    let year = i32::try_from(num(0, 4, 0)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4, 2, 1)?).ok()?).ok()?;
    let day = u8::try_from(num(6, 2, 1)?).ok()?;
    let hour = u8::try_from(num(8, 2, 0)?).ok()?;
    let minute = u8::try_from(num(10, 2, 0)?).ok()?;
    let second = u8::try_from(num(12, 2, 0)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let tod = Time::from_hms(hour, minute, second.min(59)).ok()?;
    let rest = &s[digits..];
    let offset = match rest.first() {
        None | Some(b'Z') => UtcOffset::UTC,
        Some(&sign @ (b'+' | b'-')) => {
            let r = &rest[1..];
            let two = |x: &[u8]| -> Option<i8> {
                if x.len() < 2 || !x[..2].iter().all(u8::is_ascii_digit) {
                    return None;
                }
                i8::try_from((x[0] - b'0') * 10 + (x[1] - b'0')).ok()
            };
            let h = two(r)?;
            let r = &r[2..];
            let r = r.strip_prefix(b"'").unwrap_or(r);
            let m = if r.is_empty() { 0 } else { two(r)? };
            let (h, m) = if sign == b'-' { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).ok()?
        }
        Some(_) => return None,
    };
    Some(PrimitiveDateTime::new(date, tod).assume_offset(offset))
}

/// Formats a PDF date: `D:YYYYMMDDHHmmSS+HH'mm'`, or `…Z` at UTC.
fn format_pdf_date(t: OffsetDateTime) -> Result<String, SigError> {
    if !(0..=9999).contains(&t.year()) {
        return Err(SigError::Malformed {
            what: "signing time",
            detail: format!("year {} cannot be written as a PDF date", t.year()),
        });
    }
    let mut s = format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let off = t.offset();
    if off.is_utc() {
        s.push('Z');
    } else {
        let sign = if off.is_negative() { '-' } else { '+' };
        let _ = write!(
            s,
            "{sign}{:02}'{:02}'",
            off.whole_hours().unsigned_abs(),
            off.minutes_past_hour().unsigned_abs()
        );
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Writing objects
// ---------------------------------------------------------------------------------------------

fn write_name(out: &mut Vec<u8>, name: &[u8]) {
    out.push(b'/');
    for &b in name {
        let delimiter = matches!(
            b,
            b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%' | b'#'
        );
        if (b'!'..=b'~').contains(&b) && !delimiter {
            out.push(b);
        } else {
            let _ = write!(HexSink(out), "#{b:02X}");
        }
    }
}

/// `fmt::Write` into a byte vector (ASCII only is ever written through it).
pub(crate) struct HexSink<'a>(pub(crate) &'a mut Vec<u8>);

impl std::fmt::Write for HexSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn write_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'(');
    for &b in s {
        match b {
            b'(' | b')' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x20..=0x7e => out.push(b),
            _ => {
                let _ = write!(HexSink(out), "\\{b:03o}");
            }
        }
    }
    out.push(b')');
}

fn write_hex(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'<');
    out.extend_from_slice(hex::encode_upper(s).as_bytes());
    out.push(b'>');
}

/// A text string (ISO 32000-1 §7.9.2.2): a literal when printable ASCII, else UTF-16BE with BOM.
fn write_text(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        write_literal(out, s.as_bytes());
    } else {
        let mut bytes = vec![0xfe, 0xff];
        for u in s.encode_utf16() {
            bytes.extend_from_slice(&u.to_be_bytes());
        }
        write_hex(out, &bytes);
    }
}

pub(crate) fn write_ref(out: &mut Vec<u8>, id: ObjectId) {
    let _ = write!(HexSink(out), "{} {} R", id.0, id.1);
}

pub(crate) fn write_object(out: &mut Vec<u8>, o: &Object, depth: usize) {
    if depth > 2 * MAX_DEPTH {
        // lopdf's parser limits nesting to 100; deeper cannot come from a parsed file.
        out.extend_from_slice(b"null");
        return;
    }
    match o {
        Object::Null => out.extend_from_slice(b"null"),
        Object::Boolean(true) => out.extend_from_slice(b"true"),
        Object::Boolean(false) => out.extend_from_slice(b"false"),
        Object::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Object::Real(r) => {
            // Display of f32 never uses an exponent; a non-finite value cannot be parsed from PDF.
            let s = if r.is_finite() {
                r.to_string()
            } else {
                "0".to_owned()
            };
            out.extend_from_slice(s.as_bytes());
        }
        Object::Name(n) => write_name(out, n),
        Object::String(s, StringFormat::Literal) => write_literal(out, s),
        Object::String(s, StringFormat::Hexadecimal) => write_hex(out, s),
        Object::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_object(out, x, depth + 1);
            }
            out.push(b']');
        }
        Object::Dictionary(d) => write_dict(out, d, depth),
        // Streams are indirect objects only; one nested in a dictionary cannot come from a parsed
        // file, and the objects rewritten here (pages, catalogs, arrays) are never streams.
        Object::Stream(_) => out.extend_from_slice(b"null"),
        Object::Reference(id) => write_ref(out, *id),
    }
}

fn write_dict(out: &mut Vec<u8>, d: &Dictionary, depth: usize) {
    out.extend_from_slice(b"<<");
    for (k, v) in d.iter() {
        write_name(out, k);
        out.push(b' ');
        write_object(out, v, depth + 1);
        out.push(b'\n');
    }
    out.extend_from_slice(b">>");
}

// ---------------------------------------------------------------------------------------------
// Preparing a signature
// ---------------------------------------------------------------------------------------------

/// Appends an incremental update with an empty signature (see the module docs) to `pdf`.
///
/// # Errors
/// [`SigError::TooLarge`] for a PDF over [`MAX_PDF_SIZE`] or `opts.reserved` over
/// [`MAX_RESERVED`]; [`SigError::Unsupported`] for an encrypted PDF, bytes before the `%PDF-`
/// header or an existing field of the requested name; [`SigError::Malformed`] for no `%PDF-`
/// header, a last revision that cannot be parsed (including a cross-reference table that had to
/// be rebuilt), no catalog, no pages, or a bad field name.
pub fn prepare(pdf: &[u8], opts: &SignOptions) -> Result<PreparedPdf, SigError> {
    check_size(pdf)?;
    if !pdf.starts_with(b"%PDF-") {
        if find(&pdf[..pdf.len().min(1024)], b"%PDF-").is_some() {
            return Err(unsupported("bytes before the %PDF- header"));
        }
        return Err(malformed("not a PDF (no %PDF- header)"));
    }
    if opts.reserved == 0 || opts.reserved > MAX_RESERVED {
        return Err(SigError::TooLarge {
            what: "reserved signature space",
            size: opts.reserved,
            limit: MAX_RESERVED,
        });
    }
    let m = format_pdf_date(opts.signing_time)?;
    let doc = load(pdf)?;
    if doc.xref_recovery == Some(XrefRecovery::Reconstructed) {
        return Err(malformed(
            "the cross-reference data of the last revision is damaged",
        ));
    }
    let root_id = doc
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| malformed("the trailer has no /Root"))?;
    let catalog = doc
        .get_dictionary(root_id)
        .map_err(|_| malformed("the catalog cannot be read"))?;
    let page_id = doc
        .page_iter()
        .next()
        .ok_or_else(|| malformed("the document has no pages"))?;
    let page = doc
        .get_dictionary(page_id)
        .map_err(|_| malformed("the first page cannot be read"))?;

    // The field name.
    let nodes = field_nodes(&doc);
    let taken: HashSet<&str> = nodes
        .iter()
        .filter(|n| n.has_t)
        .map(|n| n.name.as_str())
        .collect();
    let field_name = match &opts.field_name {
        Some(n) => {
            if n.is_empty() || n.contains('.') {
                return Err(SigError::Malformed {
                    what: "signature field name",
                    detail: format!("{n:?} is empty or has a period"),
                });
            }
            if taken.contains(n.as_str()) {
                return Err(unsupported(format!("signing the existing field {n:?}")));
            }
            n.clone()
        }
        None => (1..)
            .map(|i| format!("Signature{i}"))
            .find(|n| !taken.contains(n.as_str()))
            .unwrap_or_else(|| "Signature".to_owned()),
    };

    // New object numbers.
    let trailer_size = doc
        .trailer
        .get(b"Size")
        .and_then(Object::as_i64)
        .ok()
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(0);
    let next = trailer_size
        .max(doc.max_id.saturating_add(1))
        .max(doc.reference_table.max_id().saturating_add(1));
    if next > MAX_OBJECT_NUMBER - 3 {
        return Err(unsupported(format!("object numbers beyond {MAX_OBJECT_NUMBER}")));
    }
    let sig_id: ObjectId = (next, 0);
    let field_id: ObjectId = (next + 1, 0);
    let xref_stream_id: ObjectId = (next + 2, 0);

    // Objects other than the signature dictionary to (re)write.
    let mut rewritten: Vec<(ObjectId, Object)> = Vec::new();
    let field_ref = Object::Reference(field_id);
    match page.get(b"Annots") {
        Ok(annots_ref @ Object::Reference(annots_id))
            if doc.get_object(*annots_id).is_ok_and(|o| o.as_array().is_ok()) =>
        {
            let mut annots = doc
                .get_object(*annots_id)
                .and_then(Object::as_array)
                .cloned()
                .unwrap_or_default();
            annots.push(field_ref.clone());
            // The final id of a reference chain (normally the reference itself).
            let id = doc
                .dereference(annots_ref)
                .ok()
                .and_then(|(id, _)| id)
                .unwrap_or(*annots_id);
            rewritten.push((id, Object::Array(annots)));
        }
        other => {
            let mut annots = match other {
                Ok(Object::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            annots.push(field_ref.clone());
            let mut page = page.clone();
            page.set("Annots", Object::Array(annots));
            rewritten.push((page_id, Object::Dictionary(page)));
        }
    }
    let with_field = |acroform: &Dictionary| -> Dictionary {
        let mut af = acroform.clone();
        let mut fields = dict_get(&doc, acroform, b"Fields")
            .and_then(|f| f.as_array().ok())
            .cloned()
            .unwrap_or_default();
        fields.push(field_ref.clone());
        af.set("Fields", Object::Array(fields));
        let flags = dict_get(&doc, acroform, b"SigFlags")
            .and_then(|f| f.as_i64().ok())
            .unwrap_or(0);
        af.set("SigFlags", Object::Integer(flags | 3));
        af
    };
    match catalog.get(b"AcroForm") {
        Ok(af_ref @ Object::Reference(af_id)) if doc.get_dictionary(*af_id).is_ok() => {
            let (id, af) = match doc.dereference(af_ref) {
                Ok((Some(id), Object::Dictionary(af))) => (id, af),
                _ => return Err(malformed("the /AcroForm cannot be read")),
            };
            rewritten.push((id, Object::Dictionary(with_field(af))));
        }
        other => {
            let af = match other {
                Ok(Object::Dictionary(af)) => with_field(af),
                _ => with_field(&Dictionary::new()),
            };
            let mut catalog = catalog.clone();
            catalog.set("AcroForm", Object::Dictionary(af));
            rewritten.push((root_id, Object::Dictionary(catalog)));
        }
    }

    // A crafted file can make the first page and the catalog (or their arrays) one object; one
    // object cannot get two new versions in one update.
    let ids: HashSet<ObjectId> = rewritten.iter().map(|(id, _)| *id).collect();
    if ids.len() != rewritten.len() {
        return Err(malformed("the first page and the catalog are the same object"));
    }

    // Layout.
    let mut out = Vec::with_capacity(pdf.len() + 2 * opts.reserved + 4096);
    out.extend_from_slice(pdf);
    if !matches!(out.last(), Some(b'\n' | b'\r')) {
        out.push(b'\n');
    }
    let mut offsets: Vec<(ObjectId, usize)> = Vec::new();

    offsets.push((sig_id, out.len()));
    let _ = writeln!(HexSink(&mut out), "{} {} obj", sig_id.0, sig_id.1);
    out.extend_from_slice(
        b"<</Type /Sig\n/Filter /Adobe.PPKLite\n/SubFilter /ETSI.CAdES.detached\n/ByteRange [",
    );
    let byte_range_at = out.len();
    out.extend_from_slice(&[b' '; BYTE_RANGE_WIDTH]);
    out.extend_from_slice(b"]\n/Contents ");
    let lt = out.len();
    out.push(b'<');
    out.resize(out.len() + 2 * opts.reserved, b'0');
    out.push(b'>');
    let gt_end = out.len();
    out.extend_from_slice(b"\n/M ");
    write_literal(&mut out, m.as_bytes());
    for (key, value) in [
        ("Name", &opts.name),
        ("Reason", &opts.reason),
        ("Location", &opts.location),
    ] {
        if let Some(v) = value {
            let _ = write!(HexSink(&mut out), "\n/{key} ");
            write_text(&mut out, v);
        }
    }
    out.extend_from_slice(b"\n>>\nendobj\n");

    offsets.push((field_id, out.len()));
    let _ = writeln!(HexSink(&mut out), "{} {} obj", field_id.0, field_id.1);
    out.extend_from_slice(b"<</Type /Annot\n/Subtype /Widget\n/FT /Sig\n/T ");
    write_text(&mut out, &field_name);
    out.extend_from_slice(b"\n/V ");
    write_ref(&mut out, sig_id);
    out.extend_from_slice(b"\n/F 132\n/Rect [0 0 0 0]\n/P ");
    write_ref(&mut out, page_id);
    out.extend_from_slice(b"\n>>\nendobj\n");

    for (id, obj) in &rewritten {
        offsets.push((*id, out.len()));
        let _ = writeln!(HexSink(&mut out), "{} {} obj", id.0, id.1);
        write_object(&mut out, obj, 0);
        out.extend_from_slice(b"\nendobj\n");
    }

    write_xref_and_trailer(&mut out, &doc, pdf, root_id, offsets, xref_stream_id.0)?;

    let byte_range = [0, lt, gt_end, out.len() - gt_end];
    let text = format!("0 {} {} {}", byte_range[1], byte_range[2], byte_range[3]);
    if text.len() > BYTE_RANGE_WIDTH {
        return Err(malformed("byte range numbers too large"));
    }
    out[byte_range_at..byte_range_at + text.len()].copy_from_slice(text.as_bytes());

    // Read the result back. A file whose cross-reference data disagrees with its objects (an
    // entry naming another object than the one at its offset) can make the reader prefer a stale
    // object over the new version; such a file is refused rather than signed inconsistently.
    let expected = byte_range.map(|x| x as u64);
    let consistent = signatures_any_size(&out).is_ok_and(|sigs| {
        sigs.iter().any(|s| {
            s.field_name == field_name
                && s.byte_range == expected
                && s.coverage
                    == Coverage::WholeRevision {
                        revision_end: out.len(),
                        later_revisions: false,
                    }
        })
    });
    if !consistent {
        return Err(malformed(
            "the cross-reference data does not match the objects (the update does not read back)",
        ));
    }
    Ok(PreparedPdf {
        bytes: out,
        byte_range,
        field_name,
    })
}

/// Ends an incremental update to `pdf` (loaded as `doc`, catalog `root_id`) whose new objects were
/// written into `out` at `offsets`: a cross-reference section of the kind the last revision used
/// (a stream gets the object number `next_free`, the first number after the new objects), the
/// trailer with /Prev, /Root, /Info and /ID carried over, `startxref` and `%%EOF`.
pub(crate) fn write_xref_and_trailer(
    out: &mut Vec<u8>,
    doc: &Document,
    pdf: &[u8],
    root_id: ObjectId,
    mut offsets: Vec<(ObjectId, usize)>,
    next_free: u32,
) -> Result<(), SigError> {
    let xref_stream_id: ObjectId = (next_free, 0);
    let stream_xref = matches!(
        doc.reference_table.cross_reference_type,
        XrefType::CrossReferenceStream
    );
    // Trailer entries copied from the last revision.
    let prev = doc.xref_start;
    let mut trailer_tail = Vec::new();
    trailer_tail.extend_from_slice(b"/Root ");
    write_ref(&mut trailer_tail, root_id);
    if let Ok(info @ Object::Reference(_)) = doc.trailer.get(b"Info") {
        trailer_tail.extend_from_slice(b"\n/Info ");
        write_object(&mut trailer_tail, info, 0);
    }
    trailer_tail.extend_from_slice(b"\n/ID [");
    match doc.trailer.get(b"ID").and_then(Object::as_array) {
        Ok(id) if id.len() == 2 && id.iter().all(|x| x.as_str().is_ok()) => {
            write_object(&mut trailer_tail, &id[0], 0);
            trailer_tail.push(b' ');
            write_object(&mut trailer_tail, &id[1], 0);
        }
        _ => {
            let d = digest::digest(&digest::SHA256, pdf);
            let first = &d.as_ref()[..16];
            write_hex(&mut trailer_tail, first);
            trailer_tail.push(b' ');
            write_hex(&mut trailer_tail, first);
        }
    }
    trailer_tail.push(b']');

    let startxref = out.len();
    if stream_xref {
        offsets.push((xref_stream_id, startxref));
        offsets.sort_unstable();
        let mut data = Vec::with_capacity(offsets.len() * 7);
        for (id, off) in &offsets {
            let off = u32::try_from(*off).map_err(|_| malformed("offset beyond 4 GiB"))?;
            data.push(1u8);
            data.extend_from_slice(&off.to_be_bytes());
            data.extend_from_slice(&id.1.to_be_bytes());
        }
        let _ = write!(
            HexSink(out),
            "{} 0 obj\n<</Type /XRef\n/Size {}\n/W [1 4 2]\n/Index [",
            xref_stream_id.0,
            xref_stream_id.0 + 1
        );
        for (i, (start, count)) in runs(&offsets).into_iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            let _ = write!(HexSink(out), "{start} {count}");
        }
        let _ = write!(HexSink(out), "]\n/Prev {prev}\n");
        out.extend_from_slice(&trailer_tail);
        let _ = write!(HexSink(out), "\n/Length {}\n>>\nstream\n", data.len());
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\nendstream\nendobj\n");
    } else {
        offsets.sort_unstable();
        out.extend_from_slice(b"xref\n");
        let mut i = 0;
        for (start, count) in runs(&offsets) {
            let _ = writeln!(HexSink(out), "{start} {count}");
            for (id, off) in &offsets[i..i + count] {
                let _ = write!(HexSink(out), "{off:010} {:05} n\r\n", id.1);
            }
            i += count;
        }
        let _ = write!(HexSink(out), "trailer\n<</Size {next_free}\n/Prev {prev}\n");
        out.extend_from_slice(&trailer_tail);
        out.extend_from_slice(b"\n>>\n");
    }
    let _ = write!(HexSink(out), "startxref\n{startxref}\n%%EOF\n");
    Ok(())
}

/// Runs of consecutive object numbers in sorted `offsets`: `(first number, count)`.
fn runs(offsets: &[(ObjectId, usize)]) -> Vec<(u32, usize)> {
    let mut out: Vec<(u32, usize)> = Vec::new();
    for (id, _) in offsets {
        match out.last_mut() {
            Some((start, count))
                if u32::try_from(*count).is_ok_and(|c| start.checked_add(c) == Some(id.0)) =>
            {
                *count += 1;
            }
            _ => out.push((id.0, 1)),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Test documents
// ---------------------------------------------------------------------------------------------

/// The objects 1–6 of the test documents: catalog, pages, page, font, content stream, info.
fn minimal_objects(text: &str) -> Vec<Vec<u8>> {
    let mut content = b"BT\n/F1 14 Tf\n18 TL\n72 770 Td\n".to_vec();
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            content.extend_from_slice(b"T* ");
        }
        let ascii: Vec<u8> = line
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c as u8
                } else {
                    b'?'
                }
            })
            .collect();
        write_literal(&mut content, &ascii);
        content.extend_from_slice(b" Tj\n");
    }
    content.extend_from_slice(b"ET\n");
    let mut stream = format!("<</Length {}>>\nstream\n", content.len()).into_bytes();
    stream.extend_from_slice(&content);
    stream.extend_from_slice(b"\nendstream");
    vec![
        b"<</Type /Catalog /Pages 2 0 R>>".to_vec(),
        b"<</Type /Pages /Kids [3 0 R] /Count 1>>".to_vec(),
        b"<</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources <</Font <</F1 4 0 R>>>> \
          /Contents 5 0 R>>"
            .to_vec(),
        b"<</Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding>>".to_vec(),
        stream,
        b"<</Producer (openjpki)>>".to_vec(),
    ]
}

fn minimal_id(text: &str) -> String {
    hex::encode_upper(&digest::digest(&digest::SHA256, text.as_bytes()).as_ref()[..16])
}

const HEADER: &[u8] = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n";

/// A small one-page PDF 1.7 with a classic cross-reference table, showing the ASCII text (one line
/// per line of `text`, other characters as `?`) in Helvetica. The demo and test input.
#[must_use]
pub fn minimal_pdf(text: &str) -> Vec<u8> {
    let objects = minimal_objects(text);
    let mut out = HEADER.to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f\r\n", objects.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n\r\n").as_bytes());
    }
    let id = minimal_id(text);
    out.extend_from_slice(
        format!(
            "trailer\n<</Size {} /Root 1 0 R /Info 6 0 R /ID [<{id}> <{id}>]>>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// The document of [`minimal_pdf`] written as PDF 1.7 with a cross-reference stream, and with the
/// catalog, page tree, page, font and info dictionaries in an (uncompressed) object stream: the
/// other shape [`prepare`] has to update.
#[must_use]
pub fn minimal_pdf_xref_stream(text: &str) -> Vec<u8> {
    let objects = minimal_objects(text);
    // Objects 1-4 and 6 go into object stream 7; the content stream 5 stays a top-level object.
    let in_stream = [1usize, 2, 3, 4, 6];
    let mut index = String::new();
    let mut body = Vec::new();
    for &n in &in_stream {
        let _ = write!(index, "{n} {} ", body.len());
        body.extend_from_slice(&objects[n - 1]);
        body.push(b'\n');
    }
    let mut objstm_data = index.into_bytes();
    let first = objstm_data.len();
    objstm_data.extend_from_slice(&body);

    let mut out = HEADER.to_vec();
    let content_off = out.len();
    out.extend_from_slice(b"5 0 obj\n");
    out.extend_from_slice(&objects[4]);
    out.extend_from_slice(b"\nendobj\n");
    let objstm_off = out.len();
    out.extend_from_slice(
        format!(
            "7 0 obj\n<</Type /ObjStm /N {} /First {first} /Length {}>>\nstream\n",
            in_stream.len(),
            objstm_data.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&objstm_data);
    out.extend_from_slice(b"\nendstream\nendobj\n");
    let xref_off = out.len();
    // Entries 0..=8: type (1 byte), field 2 (4 bytes), field 3 (2 bytes).
    let mut entries: Vec<(u8, u32, u16)> = vec![(0, 0, 0xffff)];
    for n in 1..=8u16 {
        entries.push(match n {
            5 => (1, content_off as u32, 0),
            7 => (1, objstm_off as u32, 0),
            8 => (1, xref_off as u32, 0),
            _ => {
                let idx = in_stream.iter().position(|&m| m == usize::from(n)).unwrap_or(0);
                (2, 7, idx as u16)
            }
        });
    }
    let mut data = Vec::new();
    for (t, f2, f3) in entries {
        data.push(t);
        data.extend_from_slice(&f2.to_be_bytes());
        data.extend_from_slice(&f3.to_be_bytes());
    }
    let id = minimal_id(text);
    out.extend_from_slice(
        format!(
            "8 0 obj\n<</Type /XRef /Size 9 /W [1 4 2] /Root 1 0 R /Info 6 0 R /ID [<{id}> <{id}>] \
             /Length {}>>\nstream\n",
            data.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&data);
    out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xref_off}\n%%EOF\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    /// A minimal CMS stand-in: a DER SEQUENCE holding an INTEGER.
    const DUMMY: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05];

    fn opts() -> SignOptions {
        SignOptions::new(datetime!(2024-05-06 07:08:09 +09:00))
    }

    fn sign(pdf: &[u8], o: &SignOptions) -> (Vec<u8>, [u8; 32]) {
        let p = prepare(pdf, o).unwrap();
        let digest = p.digest_sha256();
        (p.finish(DUMMY).unwrap(), digest)
    }

    fn loads(pdf: &[u8]) -> Document {
        Document::load_mem(pdf).unwrap()
    }

    /// A classic-xref PDF from object bodies numbered from 1; object 1 is the catalog.
    fn build_pdf(objects: &[&str]) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f\r\n", objects.len() + 1).as_bytes());
        for off in offsets {
            out.extend_from_slice(format!("{off:010} 00000 n\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<</Size {} /Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = find(hay, from).unwrap();
        [&hay[..at], to, &hay[at + from.len()..]].concat()
    }

    /// Rewrites the last /ByteRange in place (same width).
    fn set_byte_range(pdf: &[u8], br: [i64; 4]) -> Vec<u8> {
        let mut pdf = pdf.to_vec();
        let at = pdf.windows(12).rposition(|w| w == b"/ByteRange [").unwrap() + 12;
        let text = format!("{} {} {} {}", br[0], br[1], br[2], br[3]);
        assert!(text.len() <= BYTE_RANGE_WIDTH);
        pdf[at..at + BYTE_RANGE_WIDTH].fill(b' ');
        pdf[at..at + text.len()].copy_from_slice(text.as_bytes());
        pdf
    }

    fn whole(s: &PdfSignature) -> (usize, bool) {
        match s.coverage {
            Coverage::WholeRevision {
                revision_end,
                later_revisions,
            } => (revision_end, later_revisions),
            Coverage::Broken(ref why) => panic!("broken: {why}"),
        }
    }

    fn broken(pdf: &[u8]) -> String {
        let sigs = signatures(pdf).unwrap();
        assert_eq!(sigs.len(), 1);
        match &sigs[0].coverage {
            Coverage::Broken(why) => why.clone(),
            c => panic!("not broken: {c:?}"),
        }
    }

    #[test]
    fn minimal_pdfs_load() {
        for pdf in [minimal_pdf("Hello"), minimal_pdf_xref_stream("Hello")] {
            let doc = loads(&pdf);
            assert_eq!(doc.get_pages().len(), 1);
            assert!(signatures(&pdf).unwrap().is_empty());
        }
        let doc = loads(&minimal_pdf_xref_stream("x"));
        assert!(matches!(
            doc.reference_table.cross_reference_type,
            XrefType::CrossReferenceStream
        ));
    }

    #[test]
    fn prepare_finish_find_classic_and_stream() {
        for (orig, stream) in [
            (minimal_pdf("Hello"), false),
            (minimal_pdf_xref_stream("Hello"), true),
        ] {
            let p = prepare(&orig, &opts()).unwrap();
            assert!(p.bytes.starts_with(&orig), "the original bytes are kept");
            assert_eq!(p.field_name(), "Signature1");
            assert_eq!(p.reserved(), DEFAULT_RESERVED);
            let br = p.byte_range();
            assert_eq!(br[0], 0);
            assert_eq!(p.bytes[br[1]], b'<');
            assert_eq!(p.bytes[br[2] - 1], b'>');
            assert_eq!(br[2] + br[3], p.bytes.len());
            assert_eq!(p.covered().map(<[u8]>::len).sum::<usize>(), br[1] + br[3]);
            let digest = p.digest_sha256();
            let out = p.finish(DUMMY).unwrap();
            assert!(out.ends_with(b"%%EOF\n"));
            let text = String::from_utf8_lossy(&out[orig.len()..]).into_owned();
            assert_eq!(text.contains("\nxref\n"), !stream, "{text}");
            assert_eq!(text.contains("/Type /XRef"), stream);

            let doc = loads(&out);
            assert_eq!(doc.get_pages().len(), 1);
            assert!(doc.xref_recovery.is_none());
            let sigs = signatures(&out).unwrap();
            assert_eq!(sigs.len(), 1);
            let s = &sigs[0];
            assert_eq!(s.field_name, "Signature1");
            assert_eq!(s.sub_filter, "ETSI.CAdES.detached");
            assert!(!s.is_doc_timestamp);
            assert_eq!(s.byte_range, br.map(|x| x as u64));
            assert_eq!(s.contents.as_deref().unwrap(), DUMMY);
            assert_eq!(s.digest_sha256, Some(digest));
            assert_eq!(s.signing_time_m, Some(datetime!(2024-05-06 07:08:09 +09:00)));
            assert_eq!(whole(s), (out.len(), false));
            assert_eq!(
                (s.name.as_deref(), s.reason.as_deref(), s.location.as_deref()),
                (None, None, None)
            );
            let [x, y] = s.covered(&out).unwrap();
            assert_eq!((x.len(), y.len()), (br[1], br[3]));
            assert!(text.contains("/M (D:20240506070809+09'00')"));
        }
    }

    #[test]
    fn two_signatures() {
        for orig in [minimal_pdf("Twice"), minimal_pdf_xref_stream("Twice")] {
            let (one, d1) = sign(&orig, &opts());
            let (two, d2) = sign(&one, &opts());
            loads(&two);
            let sigs = signatures(&two).unwrap();
            assert_eq!(sigs.len(), 2);
            assert_eq!(sigs[0].field_name, "Signature1");
            assert_eq!(sigs[1].field_name, "Signature2");
            assert_eq!(whole(&sigs[0]), (one.len(), true));
            assert_eq!(whole(&sigs[1]), (two.len(), false));
            assert_eq!(sigs[0].digest_sha256, Some(d1));
            assert_eq!(sigs[1].digest_sha256, Some(d2));
            // A named third one; the name is then taken.
            let mut o = opts();
            o.field_name = Some("Sig3".into());
            let (three, _) = sign(&two, &o);
            let names: Vec<_> = signatures(&three)
                .unwrap()
                .into_iter()
                .map(|s| s.field_name)
                .collect();
            assert_eq!(names, ["Signature1", "Signature2", "Sig3"]);
            assert!(matches!(prepare(&three, &o), Err(SigError::Unsupported { .. })));
        }
    }

    #[test]
    fn text_strings_and_utc() {
        let mut o = SignOptions::new(datetime!(2024-01-02 03:04:05 UTC));
        o.name = Some("Taro (Yamada) \\".into());
        o.reason = Some("契約に同意します".into());
        o.location = Some("Tōkyō".into());
        o.field_name = Some("署名".into());
        o.reserved = 100;
        let (out, _) = sign(&minimal_pdf("x"), &o);
        loads(&out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("/M (D:20240102030405Z)"));
        assert!(text.contains("/Reason <FEFF"));
        let s = &signatures(&out).unwrap()[0];
        assert_eq!(s.field_name, "署名");
        assert_eq!(s.name.as_deref(), Some("Taro (Yamada) \\"));
        assert_eq!(s.reason.as_deref(), Some("契約に同意します"));
        assert_eq!(s.location.as_deref(), Some("Tōkyō"));
        assert_eq!(s.signing_time_m, Some(datetime!(2024-01-02 03:04:05 UTC)));
        whole(s);
    }

    #[test]
    fn finish_limits() {
        let mut o = opts();
        o.reserved = 4;
        let p = prepare(&minimal_pdf("x"), &o).unwrap();
        assert!(matches!(
            p.clone().finish(DUMMY),
            Err(SigError::TooLarge {
                size: 5,
                limit: 4,
                ..
            })
        ));
        assert!(matches!(
            p.clone().finish(&[0x30, 0x00, 0x00]),
            Err(SigError::Malformed { .. })
        ));
        assert!(matches!(p.clone().finish(b""), Err(SigError::Malformed { .. })));
        assert_eq!(
            p.finish(&[0x30, 0x02, 0x05, 0x00]).unwrap().len(),
            prepare(&minimal_pdf("x"), &o).unwrap().bytes.len()
        );
    }

    #[test]
    fn refusals() {
        let o = opts();
        let e = prepare(b"hello", &o).unwrap_err();
        assert!(e.to_string().contains("no %PDF- header"), "{e}");
        assert!(matches!(signatures(b"hello"), Err(SigError::Malformed { .. })));
        let mut junk = b"junk\n".to_vec();
        junk.extend_from_slice(&minimal_pdf("x"));
        assert!(matches!(prepare(&junk, &o), Err(SigError::Unsupported { .. })));

        // Encrypted: a trailer with /Encrypt (here a bogus one lopdf cannot use).
        // The header's binary mark is not UTF-8, so replace in bytes.
        let pdf = replace(&minimal_pdf("x"), b"/Root 1 0 R", b"/Root 1 0 R /Encrypt 6 0 R");
        assert!(
            matches!(prepare(&pdf, &o), Err(SigError::Unsupported { .. })),
            "{:?}",
            prepare(&pdf, &o)
        );
        assert!(matches!(signatures(&pdf), Err(SigError::Unsupported { .. })));

        // No pages.
        let pdf = build_pdf(&[
            "<</Type /Catalog /Pages 2 0 R>>",
            "<</Type /Pages /Kids [] /Count 0>>",
        ]);
        let e = prepare(&pdf, &o).unwrap_err();
        assert!(e.to_string().contains("no pages"), "{e}");

        // Last revision not parseable.
        let mut pdf = minimal_pdf("x");
        pdf.truncate(pdf.len() / 2);
        assert!(
            matches!(prepare(&pdf, &o), Err(SigError::Malformed { .. })),
            "{:?}",
            prepare(&pdf, &o)
        );

        // Too large (a zeroed allocation is not touched).
        let big = vec![0u8; MAX_PDF_SIZE + 1];
        assert!(matches!(prepare(&big, &o), Err(SigError::TooLarge { .. })));
        assert!(matches!(signatures(&big), Err(SigError::TooLarge { .. })));
        drop(big);

        let mut bad = o.clone();
        bad.reserved = MAX_RESERVED + 1;
        assert!(matches!(
            prepare(&minimal_pdf("x"), &bad),
            Err(SigError::TooLarge { .. })
        ));
        let mut bad = o.clone();
        bad.field_name = Some("a.b".into());
        assert!(matches!(
            prepare(&minimal_pdf("x"), &bad),
            Err(SigError::Malformed { .. })
        ));
        let mut bad = o;
        bad.signing_time = datetime!(-0001-01-01 0:00 UTC);
        assert!(prepare(&minimal_pdf("x"), &bad).is_err());
    }

    /// Fuzzing found it: an xref table whose entries name other objects than those at their
    /// offsets, and two objects numbered 3. lopdf then prefers a stale catalog over the update's.
    #[test]
    fn inconsistent_xref_refused() {
        let pdf = replace(&minimal_pdf("a"), b"6 0 obj", b"3 0 obj");
        let pdf = replace(&pdf, b"xref\n0 7", b"xref\n5 7");
        let e = prepare(&pdf, &opts()).unwrap_err();
        assert!(e.to_string().contains("does not read back"), "{e}");
    }

    #[test]
    fn no_final_newline() {
        let mut pdf = minimal_pdf("x");
        pdf.pop();
        let (out, _) = sign(&pdf, &opts());
        assert_eq!(out[pdf.len()], b'\n');
        whole(&signatures(&out).unwrap()[0]);
        loads(&out);
    }

    #[test]
    fn indirect_annots_and_acroform_kept() {
        let pdf = build_pdf(&[
            "<</Type /Catalog /Pages 2 0 R /AcroForm 6 0 R>>",
            "<</Type /Pages /Kids [3 0 R] /Count 1>>",
            "<</Type /Page /Parent 2 0 R /MediaBox [0 0 595.5 842] /Annots 4 0 R>>",
            "[5 0 R]",
            "<</Type /Annot /Subtype /Link /Rect [1 2 3 4] /Border [0 0 0]>>",
            "<</Fields 7 0 R /DA (/Helv 0 Tf 0 g) /SigFlags 1>>",
            "[8 0 R]",
            "<</FT /Tx /T (Text1) /V (a \\(b\\) \\351)>>",
        ]);
        let (out, _) = sign(&pdf, &opts());
        let update = String::from_utf8_lossy(&out[pdf.len()..]).into_owned();
        assert!(update.contains("\n4 0 obj\n[5 0 R 10 0 R]"), "{update}");
        assert!(!update.contains("\n3 0 obj"), "page not rewritten");
        assert!(!update.contains("\n1 0 obj"), "catalog not rewritten");
        let doc = loads(&out);
        let af = doc.get_dictionary((6, 0)).unwrap();
        assert_eq!(af.get(b"SigFlags").unwrap().as_i64().unwrap(), 3);
        assert_eq!(af.get(b"Fields").unwrap().as_array().unwrap().len(), 2);
        assert_eq!(af.get(b"DA").unwrap().as_str().unwrap(), b"/Helv 0 Tf 0 g");
        let sigs = signatures(&out).unwrap();
        assert_eq!(sigs.len(), 1);
        whole(&sigs[0]);
    }

    #[test]
    fn inline_annots_and_acroform_kept() {
        let pdf = build_pdf(&[
            "<</Type /Catalog /Pages 2 0 R /AcroForm <</Fields [5 0 R] /NeedAppearances true>>>>",
            "<</Type /Pages /Kids [3 0 R] /Count 1>>",
            "<</Type /Page /Parent 2 0 R /MediaBox [0 0 595.25 -1.5] /Annots [4 0 R] /Odd#20Name (x\\n)>>",
            "<</Type /Annot /Subtype /Text /Rect [1 2 3 4]>>",
            "<</FT /Tx /T (Text1)>>",
        ]);
        let (out, _) = sign(&pdf, &opts());
        let doc = loads(&out);
        let page = doc.get_dictionary((3, 0)).unwrap();
        assert_eq!(page.get(b"Annots").unwrap().as_array().unwrap().len(), 2);
        assert_eq!(page.get(b"Odd Name").unwrap().as_str().unwrap(), b"x\n");
        let mb = page.get(b"MediaBox").unwrap().as_array().unwrap();
        assert_eq!(mb[2].as_float().unwrap(), 595.25);
        assert_eq!(mb[3].as_float().unwrap(), -1.5);
        let af = doc
            .catalog()
            .unwrap()
            .get(b"AcroForm")
            .unwrap()
            .as_dict()
            .unwrap();
        assert_eq!(af.get(b"Fields").unwrap().as_array().unwrap().len(), 2);
        assert_eq!(af.get(b"SigFlags").unwrap().as_i64().unwrap(), 3);
        assert!(af.get(b"NeedAppearances").unwrap().as_bool().unwrap());
        whole(&signatures(&out).unwrap()[0]);
    }

    #[test]
    fn inherited_ft_and_kids() {
        // A parent field with /FT /Sig, a kid with its own /T and /V; a DocTimeStamp.
        let pdf = build_pdf(&[
            "<</Type /Catalog /Pages 2 0 R /AcroForm <</Fields [4 0 R 7 0 R 8 0 R]>>>>",
            "<</Type /Pages /Kids [3 0 R] /Count 1>>",
            "<</Type /Page /Parent 2 0 R /MediaBox [0 0 10 10]>>",
            "<</FT /Sig /T (Parent) /Kids [5 0 R 4 0 R]>>",
            "<</T (Child) /Parent 4 0 R /V 6 0 R>>",
            "<</Type /DocTimeStamp /SubFilter /ETSI.RFC3161 /ByteRange [0 1 2 3] /Contents <3000> \
             /M (D:2023)>>",
            "<</FT /Sig /T (Unsigned)>>",
            "<</FT /Tx /T (Text) /V (x)>>",
        ]);
        let sigs = signatures(&pdf).unwrap();
        assert_eq!(sigs.len(), 1);
        let s = &sigs[0];
        assert_eq!(s.field_name, "Parent.Child");
        assert!(s.is_doc_timestamp);
        assert_eq!(s.sub_filter, "ETSI.RFC3161");
        assert_eq!(s.contents.as_deref().unwrap(), &[0x30, 0x00]);
        assert_eq!(s.signing_time_m, Some(datetime!(2023-01-01 0:00 UTC)));
        assert!(matches!(s.coverage, Coverage::Broken(_)));
        // A new signature avoids no name it need not: Signature1 is free.
        let p = prepare(&pdf, &opts()).unwrap();
        assert_eq!(p.field_name(), "Signature1");
        let mut o = opts();
        o.field_name = Some("Unsigned".into());
        assert!(matches!(prepare(&pdf, &o), Err(SigError::Unsupported { .. })));
    }

    #[test]
    fn broken_byte_ranges() {
        let (pdf, _) = sign(&minimal_pdf("x"), &opts());
        let s = &signatures(&pdf).unwrap()[0];
        let [a, b, c, d] = s.byte_range.map(|x| x as i64);
        let len = pdf.len() as i64;
        let cases: [([i64; 4], &str); 7] = [
            ([1, b - 1, c, d], "start at 0"),
            ([0, b, c, d + 1], "past the end"),
            ([0, c + 1, c, d], "overlap"),
            ([0, b + 1, c, d], "not a hex string"),
            ([0, b, c - 1, d + 1], "not a hex string"),
            ([0, b, c, d - 3], "%%EOF"),
            ([0, 10, c, d], "not a hex string"),
        ];
        for (br, want) in cases {
            let why = broken(&set_byte_range(&pdf, br));
            assert!(why.contains(want), "{br:?}: {why}");
        }
        assert!(broken(&set_byte_range(&pdf, [a, b, c, -1])).contains("no /ByteRange"));
        // Ending at %%EOF without its newline is still the whole revision.
        let s = &signatures(&set_byte_range(&pdf, [0, b, c, d - 1])).unwrap()[0];
        assert_eq!(whole(s), (pdf.len() - 1, false));
        assert_eq!(len, c + d);

        // The gap is a hex string, but not this dictionary's /Contents: a second signature whose
        // byte range points at the first one's contents.
        let two = prepare(&pdf, &opts())
            .unwrap()
            .finish(&[0x30, 0x01, 0x00])
            .unwrap();
        let two = set_byte_range(&two, [0, b, c, two.len() as i64 - c]);
        let sigs = signatures(&two).unwrap();
        whole(&sigs[0]);
        match &sigs[1].coverage {
            Coverage::Broken(why) => assert!(why.contains("not this signature's /Contents"), "{why}"),
            c => panic!("{c:?}"),
        }

        // A gap with this dictionary's contents, but the /Contents placed elsewhere than the
        // dictionary: a /Contents of equal value in a later object.
        let mut forged = pdf.clone();
        let hex = &pdf[b as usize..c as usize];
        forged.extend_from_slice(b"99 0 obj\n<</Contents ");
        let moved_b = forged.len();
        forged.extend_from_slice(hex);
        let moved_c = forged.len();
        forged.extend_from_slice(b">>\nendobj\n%%EOF\n");
        let forged = set_byte_range(
            &forged,
            [0, moved_b as i64, moved_c as i64, (forged.len() - moved_c) as i64],
        );
        let why = broken(&forged);
        assert!(why.contains("inside the current signature dictionary"), "{why}");
    }

    #[test]
    fn tampering_and_later_revisions() {
        let orig = minimal_pdf("Pay 100 yen");
        let (pdf, digest) = sign(&orig, &opts());
        let at = pdf.windows(3).position(|w| w == b"100").unwrap();
        let mut tampered = pdf.clone();
        tampered[at] = b'9';
        let s = &signatures(&tampered).unwrap()[0];
        assert_ne!(s.digest_sha256, Some(digest));
        whole(s);

        // Anything after the signed revision: later_revisions.
        let mut more = pdf.clone();
        more.extend_from_slice(b"% appended\n");
        assert_eq!(whole(&signatures(&more).unwrap()[0]), (pdf.len(), true));
        let mut ws = pdf;
        ws.extend_from_slice(b"\r\n \n");
        assert!(!whole(&signatures(&ws).unwrap()[0]).1);
    }

    #[test]
    fn unsigned_placeholder_contents() {
        let p = prepare(&minimal_pdf("x"), &opts()).unwrap();
        let pdf = p.bytes;
        let s = &signatures(&pdf).unwrap()[0];
        assert!(matches!(s.contents, Err(SigError::Malformed { .. })));
        whole(s);
    }

    #[test]
    fn pdf_dates() {
        let d = |s: &str| parse_pdf_date(s);
        assert_eq!(
            d("D:20240506070809+09'00'"),
            Some(datetime!(2024-05-06 07:08:09 +09:00))
        );
        assert_eq!(
            d("D:20240506070809+09'00"),
            Some(datetime!(2024-05-06 07:08:09 +09:00))
        );
        assert_eq!(
            d("D:20240506070809-05'30'"),
            Some(datetime!(2024-05-06 07:08:09 -05:30))
        );
        assert_eq!(d("D:20240506070809Z"), Some(datetime!(2024-05-06 07:08:09 UTC)));
        assert_eq!(
            d("D:20240506070809Z00'00'"),
            Some(datetime!(2024-05-06 07:08:09 UTC))
        );
        assert_eq!(
            d("D:20240506070809+09"),
            Some(datetime!(2024-05-06 07:08:09 +09:00))
        );
        assert_eq!(d("D:202405060708"), Some(datetime!(2024-05-06 07:08 UTC)));
        assert_eq!(d("D:2024"), Some(datetime!(2024-01-01 0:00 UTC)));
        assert_eq!(d("20240506"), Some(datetime!(2024-05-06 0:00 UTC)));
        for bad in [
            "",
            "D:",
            "D:202",
            "D:20241306",
            "D:2024050607080",
            "D:20240506X",
            "D:20240506+9",
            "D:20240230",
        ] {
            assert_eq!(d(bad), None, "{bad}");
        }
        for t in [
            datetime!(2024-05-06 07:08:09 +09:00),
            datetime!(1999-12-31 23:59:59 -03:30),
        ] {
            assert_eq!(d(&format_pdf_date(t).unwrap()), Some(t));
        }
    }

    #[test]
    fn tlv_lengths() {
        assert_eq!(tlv_len(&[0x30, 0x03, 2, 1, 5, 0, 0], 0), Some(5));
        assert_eq!(tlv_len(&[0x30, 0x81, 0x01, 5, 0], 0), Some(4));
        assert_eq!(tlv_len(&[0x30, 0x82, 0x01], 0), None);
        // BER indefinite length.
        assert_eq!(
            tlv_len(&[0x30, 0x80, 2, 1, 5, 0x30, 0x80, 0, 0, 0, 0, 0, 0], 0),
            Some(11)
        );
        assert_eq!(tlv_len(&[0x04, 0x80, 0, 0], 0), None);
        assert_eq!(tlv_len(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], 0), None);
        assert_eq!(tlv_len(&[0x30; 200], 0), Some(50));
        assert_eq!(tlv_len(&[0x30, 0x80].repeat(100), 0), None);
    }

    #[test]
    fn name_and_string_escapes() {
        let mut out = Vec::new();
        write_name(&mut out, b"A b#/(");
        assert_eq!(out, b"/A#20b#23#2F#28");
        out.clear();
        write_literal(&mut out, b"a(b)\\\n\x01\xff");
        assert_eq!(out, b"(a\\(b\\)\\\\\\n\\001\\377)");
    }

    fn signed_sample() -> &'static [u8] {
        static SAMPLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        SAMPLE.get_or_init(|| {
            let (one, _) = sign(&minimal_pdf("sample"), &opts());
            sign(&one, &opts()).0
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..2048), pdf_header: bool) {
            if pdf_header {
                let mut b = b"%PDF-1.7\n".to_vec();
                b.append(&mut bytes);
                bytes = b;
            }
            let _ = signatures(&bytes);
            let _ = prepare(&bytes, &opts());
        }

        #[test]
        fn truncations_never_panic(cut in 0usize..100_000) {
            let pdf = signed_sample();
            let cut = cut % (pdf.len() + 1);
            let _ = signatures(&pdf[..cut]);
            let _ = signatures(&pdf[cut..]);
            let _ = prepare(&pdf[..cut], &opts());
        }

        #[test]
        fn edits_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut pdf = signed_sample().to_vec();
            let len = pdf.len();
            for (at, b) in edits {
                pdf[at % len] = b;
            }
            if let Ok(sigs) = signatures(&pdf) {
                for s in sigs {
                    if let Coverage::WholeRevision { revision_end, .. } = s.coverage {
                        prop_assert!(revision_end <= pdf.len());
                    }
                }
            }
            if let Ok(p) = prepare(&pdf, &opts()) {
                let out = p.finish(DUMMY).unwrap();
                let sigs = signatures(&out).unwrap();
                let last_whole =
                    |s: &PdfSignature| matches!(s.coverage, Coverage::WholeRevision { later_revisions: false, .. });
                prop_assert!(sigs.iter().any(last_whole), "the new signature covers the new revision");
            }
        }
    }

    /// A PDF whose one object stream (FlateDecode) holds object 5: an array of `n` zeros.
    fn object_stream_bomb(n: usize) -> Vec<u8> {
        let mut body = b"5 0 ".to_vec();
        let first = body.len();
        body.push(b'[');
        body.extend(std::iter::repeat_n(b"0 ".as_slice(), n).flatten());
        body.push(b']');
        object_stream_pdf(body, first, "")
    }

    /// A PDF with one object stream (FlateDecode) of decoded content `body` whose objects start
    /// at `first`, and `extra` (objects) before it.
    fn object_stream_pdf(body: Vec<u8>, first: usize, extra: &str) -> Vec<u8> {
        let mut st = lopdf::Stream::new(Dictionary::new(), body);
        st.compress().unwrap();
        let mut out = b"%PDF-1.7\n".to_vec();
        for (i, o) in [
            "<< /Type /Catalog /Pages 2 0 R /X 5 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1 1] >>",
        ]
        .iter()
        .enumerate()
        {
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        out.extend_from_slice(extra.as_bytes());
        out.extend_from_slice(
            format!(
                "4 0 obj\n<< /Type /ObjStm /N 1 /First {first} /Filter /FlateDecode /Length {} >>\nstream\n",
                st.content.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&st.content);
        out.extend_from_slice(b"\nendstream\nendobj\n%%EOF\n");
        out
    }

    #[test]
    fn object_streams_decode_within_a_budget_for_the_file() {
        // Small: loads (the object stream is read).
        let small = object_stream_bomb(1000);
        let doc = load(&small).unwrap();
        assert!(
            doc.get_object((5, 0))
                .is_ok_and(|o| o.as_array().is_ok_and(|a| a.len() == 1000))
        );
        // About 60 KB that would decode to 60 MB of zeros, parsed by lopdf into gigabytes.
        let bomb = object_stream_bomb(30_000_000);
        assert!(bomb.len() < 100 * 1024, "{}", bomb.len());
        let started = std::time::Instant::now();
        assert!(matches!(load(&bomb), Err(SigError::TooLarge { .. })));
        assert!(matches!(signatures(&bomb), Err(SigError::TooLarge { .. })));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The budget is per load: the next file on this thread starts afresh.
        assert!(load(&small).is_ok());
    }

    #[test]
    fn an_encryption_dictionary_is_refused_before_loading() {
        for yes in [
            b"trailer << /Size 4 /Encrypt 7 0 R /Root 1 0 R >>".as_slice(),
            b"<< /Type /XRef /Encrypt\n12  0\rR >>",
            b"trailer<</Encrypt<</Filter/Standard>>>>",
        ] {
            assert!(declares_encryption(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [
            b"(about /Encrypt in a string)".as_slice(),
            b"/EncryptMetadata false",
            b"/Encrypt 7 R",
            b"/Encrypt",
            b"/Encrypt 12 0",
        ] {
            assert!(!declares_encryption(no), "{}", String::from_utf8_lossy(no));
        }
        let mut pdf = minimal_pdf("secret");
        let at = find(&pdf, b"/Root").unwrap();
        pdf.splice(at..at, b"/Encrypt 9 0 R ".iter().copied());
        assert!(matches!(load(&pdf), Err(SigError::Unsupported { .. })));
        assert!(load(&minimal_pdf("secret")).is_ok());
    }

    /// Asserts that `pdf` is refused by [`load`] and [`signatures`] within a second.
    fn refused_quickly(pdf: &[u8]) -> SigError {
        let started = std::time::Instant::now();
        let err = load(pdf).unwrap_err();
        assert!(signatures(pdf).is_err());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        err
    }

    #[test]
    fn an_escaped_or_commented_encrypt_key_is_refused() {
        for yes in [
            b"trailer << /Size 4 /Encr#79pt 7 0 R /Root 1 0 R >>".as_slice(),
            b"trailer << /#45#6e#63#72#79#70#74 7 0 R >>",
            b"trailer << /Encrypt% a comment\n7 0 R >>",
            b"trailer << /Encrypt %1 0 R\r\n 7 %c\n 0%c\rR >>",
            b"<</Encrypt%x\n<</Filter/Standard>>>>",
            b"/X/Encrypt 7 0 R",
        ] {
            assert!(declares_encryption(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [
            b"/Encr#7 7 0 R".as_slice(),
            b"/Encrypt#20 7 0 R",
            b"/Encrypt % 7 0 R",
            b"/Encr#79ptX 7 0 R",
        ] {
            assert!(!declares_encryption(no), "{}", String::from_utf8_lossy(no));
        }
        for key in ["/Encr#79pt 9 0 R ", "/Encrypt % no value yet\n 9 0 R "] {
            let mut pdf = minimal_pdf("secret");
            let at = find(&pdf, b"/Root").unwrap();
            pdf.splice(at..at, key.bytes());
            assert!(
                matches!(refused_quickly(&pdf), SigError::Unsupported { .. }),
                "{key}"
            );
        }
    }

    #[test]
    fn an_indirect_length_with_object_streams_is_refused() {
        assert!(may_take_length_from_object_stream(
            b"<< /Length 6 0 R >> << /Type /ObjStm /N 1 /First 4 >>"
        ));
        assert!(may_take_length_from_object_stream(
            b"<< /Len#67th %c\n 6 %c\n 0 R >> << /Fir#73t\n4 >>"
        ));
        // No object stream (an outline's /First is a reference), or no indirect /Length.
        assert!(!may_take_length_from_object_stream(
            b"<< /Length 6 0 R >> << /First 8 0 R /Last 9 0 R >>"
        ));
        assert!(!may_take_length_from_object_stream(
            b"<< /Length 60 >> << /Type /ObjStm /N 1 /First 4 >>"
        ));
        assert!(may_take_length_from_object_stream(
            b"<< /Length 6 0 R >> << /Type /ObjStm /N 1 /First +4 >>"
        ));
        // Object 6 (in the object stream 4) is the length of stream 7: lopdf would decode 4
        // (an array of four million zeros) to read it, outside the budget.
        let mut body = b"6 0 5 2 ".to_vec();
        let first = body.len();
        body.extend_from_slice(b"4 [");
        body.extend(std::iter::repeat_n(b"0 ".as_slice(), 4_000_000).flatten());
        body.push(b']');
        let pdf = object_stream_pdf(
            body,
            first,
            "7 0 obj\n<< /Length 6 0 R >>\nstream\nabcd\nendstream\nendobj\n",
        );
        assert!(pdf.len() < 100 * 1024, "{}", pdf.len());
        assert!(matches!(refused_quickly(&pdf), SigError::Unsupported { .. }));
    }

    #[test]
    fn object_streams_of_many_small_objects_are_refused() {
        const { assert!(PARSED_TOKEN_COST >= 40) };
        // Eight megabytes (within the decoded budget) of one array of four million zeros.
        let pdf = object_stream_bomb(4_000_000);
        assert!(pdf.len() < 100 * 1024, "{}", pdf.len());
        assert!(matches!(refused_quickly(&pdf), SigError::TooLarge { .. }));
        // Twelve million empty names: one object a byte.
        let pdf = object_stream_pdf(
            [b"5 0 [".as_slice(), &vec![b'/'; 12_000_000], b"]"].concat(),
            4,
            "",
        );
        assert!(matches!(refused_quickly(&pdf), SigError::TooLarge { .. }));
        // A million objects, each a small integer, all in the index.
        let mut index = String::new();
        let mut objects = String::new();
        for n in 0..1_000_000u32 {
            write!(index, "{} {} ", n + 10, objects.len()).unwrap();
            objects.push_str("0 ");
        }
        let first = index.len();
        let pdf = object_stream_pdf((index + &objects).into_bytes(), first, "");
        assert!(pdf.len() < 6 * 1024 * 1024, "{}", pdf.len());
        assert!(matches!(refused_quickly(&pdf), SigError::TooLarge { .. }));
    }

    #[test]
    fn objects_of_many_small_objects_in_the_file_are_refused() {
        const SIX_MIB: usize = 6 * 1024 * 1024;
        let page = |extra: &str| {
            build_pdf(&[
                "<</Type /Catalog /Pages 2 0 R>>",
                "<</Type /Pages /Kids [3 0 R] /Count 1>>",
                "<</Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /Contents 4 0 R>>",
                extra,
            ])
        };
        let slashes = format!("[{}]", "/".repeat(SIX_MIB));
        let zeros = format!("[{}]", "0 ".repeat(SIX_MIB / 2));
        // An object whose header is in stream data or a string, where a cross-reference entry may
        // point, is read all the same.
        let in_stream = format!(
            "<</Length {}>>\nstream\n5 0 obj\n{zeros}\nendstream",
            zeros.len() + 8
        );
        let in_string = format!("(5 0 obj\n{slashes})");
        for body in [&slashes, &zeros, &in_stream, &in_string] {
            let pdf = page(body);
            assert!(pdf.len() >= SIX_MIB, "{}", pdf.len());
            let e = refused_quickly(&pdf);
            assert!(
                matches!(
                    e,
                    SigError::TooLarge {
                        limit: MAX_OBJECT_STREAMS_PARSED,
                        ..
                    }
                ),
                "{e}"
            );
            assert!(e.to_string().contains("PDF objects"), "{e}");
        }
        // Nested strings, each with a header: lopdf would copy the rest of the file for each.
        let nested = format!("{}{}", "(1 0 obj ".repeat(200_000), ")".repeat(200_000));
        assert!(matches!(
            refused_quickly(&page(&nested)),
            SigError::TooLarge { .. }
        ));
        // Headers in comments within an array: each would be parsed to the array's end.
        let commented = format!("[{}\n0]", "\n% 1 0 obj [".repeat(400_000));
        assert!(matches!(
            refused_quickly(&page(&commented)),
            SigError::TooLarge { .. }
        ));

        // Stream data is not counted, however many tokens it would be: a content stream of six
        // mebibytes of zeros and a large signature placeholder (one string) load.
        let content = "0 ".repeat(SIX_MIB / 2);
        let pdf = page(&format!(
            "<</Length {}>>\nstream\n{content}\nendstream",
            content.len()
        ));
        assert!(
            raw_objects_cost(&pdf, usize::MAX) < 16 * 1024,
            "{}",
            raw_objects_cost(&pdf, usize::MAX)
        );
        assert_eq!(loads(&pdf).get_pages().len(), 1);
        let mut o = opts();
        o.reserved = MAX_RESERVED;
        let (signed, _) = sign(&pdf, &o);
        assert!(
            raw_objects_cost(&signed, usize::MAX) < 3 * MAX_RESERVED,
            "{}",
            raw_objects_cost(&signed, usize::MAX)
        );
        assert_eq!(signatures(&signed).unwrap().len(), 1);
        for pdf in [
            minimal_pdf("Hello"),
            minimal_pdf_xref_stream("Hello"),
            signed_sample().to_vec(),
        ] {
            assert!(
                raw_objects_cost(&pdf, usize::MAX) < 4 * DEFAULT_RESERVED + 64 * 1024,
                "{}",
                raw_objects_cost(&pdf, usize::MAX)
            );
        }
    }

    #[test]
    fn object_streams_whose_entries_overlap_are_refused() {
        // Sixty nested arrays around a million zeros, an entry at every `[`: lopdf would parse
        // the zeros sixty times.
        let mut index = String::new();
        for n in 0..60 {
            write!(index, "{} {n} ", n + 10).unwrap();
        }
        let first = index.len();
        let mut body = index.into_bytes();
        body.extend(std::iter::repeat_n(b'[', 60));
        body.extend(std::iter::repeat_n(b"0 ".as_slice(), 1_000_000).flatten());
        body.extend(std::iter::repeat_n(b']', 60));
        assert!(object_stream_cost(&body, first).is_none());
        assert!(matches!(
            refused_quickly(&object_stream_pdf(body, first, "")),
            SigError::TooLarge { .. }
        ));
        // Two entries at one offset, an entry within a string or a token.
        for (content, first) in [
            (b"10 0 11 0 [1 2]".as_slice(), 10),
            (b"10 0 11 2 (a [1 2] b)", 10),
            (b"10 0 11 2 /Name", 10),
            (b"10 0 11 1 <</A [1]>>", 10),
        ] {
            assert!(
                object_stream_cost(content, first).is_none(),
                "{}",
                String::from_utf8_lossy(content)
            );
        }
        // Ordinary ones: entries at the top-level objects, comments and odd spacing allowed.
        for (content, first) in [
            (b"10 0 11 9 12 15 <</A 1>> [1 2] 3 0 R".as_slice(), 16),
            (b"10 0 11 12 %c\n<</A(x)>>\n\n(a\\)b)", 11),
        ] {
            assert!(
                object_stream_cost(content, first).is_some(),
                "{}",
                String::from_utf8_lossy(content)
            );
        }
    }

    #[test]
    fn scanning_for_keys_and_entries_stays_linear() {
        let started = std::time::Instant::now();
        // Keys within one long comment, each followed by the rest of it.
        let pdf = b"/Encrypt 1 %".repeat(500_000);
        assert!(!declares_encryption(&pdf));
        let pdf = b"/Length 1 %".repeat(500_000);
        assert!(!may_take_length_from_object_stream(&pdf));
        // A million entries into one run of white space.
        let mut index = String::new();
        for n in 0..1_000_000u32 {
            write!(index, "{} {n} ", n + 10).unwrap();
        }
        let first = index.len();
        let content = [index.as_bytes(), &[b' '; 1_000_000], b"1"].concat();
        assert!(object_stream_cost(&content, first).is_none());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}
