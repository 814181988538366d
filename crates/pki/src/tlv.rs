//! A small DER TLV reader for hot paths: one-octet tags, definite shortest-form lengths, no
//! allocation. der's generic reader costs several times as much per TLV; the property tests hold
//! the two to the same answers.
use der::{Decode as _, Tag, TagNumber};

/// One TLV read from the front of a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The tag.
    pub tag: Tag,
    /// The value octets.
    pub value: &'a [u8],
    /// The whole encoding: header and value.
    pub whole: &'a [u8],
    /// What follows it.
    pub rest: &'a [u8],
}

/// Reads the TLV at the front of `bytes`.
///
/// DER only: one-octet identifiers (every tag in CMS, ESS and TSP has a number below 31) and definite
/// lengths in their shortest form, as der's reader demands too. This is on the hot paths of batch
/// signature verification and of the platform's certificate checks, where der's generic reader cost several times as much per TLV; the property test
/// `tlv_reader_agrees_with_der` holds the two readers to the same answers.
pub fn read_tlv(bytes: &[u8]) -> der::Result<Tlv<'_>> {
    let incomplete = |have: usize, want: usize| {
        der::Error::from(der::ErrorKind::Incomplete {
            expected_len: der::Length::try_from(want).unwrap_or(der::Length::MAX),
            actual_len: der::Length::try_from(have).unwrap_or(der::Length::MAX),
        })
    };
    let [id, first, rest @ ..] = bytes else {
        return Err(incomplete(bytes.len(), 2));
    };
    if id & 0x1f == 0x1f {
        return Err(der::ErrorKind::TagNumberInvalid.into());
    }
    let tag = match *id {
        0x30 => Tag::Sequence,
        0x31 => Tag::Set,
        0x02 => Tag::Integer,
        0x04 => Tag::OctetString,
        0x06 => Tag::ObjectIdentifier,
        id if id & 0xc0 == 0x80 => Tag::ContextSpecific {
            constructed: id & 0x20 != 0,
            number: TagNumber(u32::from(id & 0x1f)),
        },
        _ => Tag::from_der(std::slice::from_ref(id))?,
    };
    let (len, rest) = match *first {
        n @ 0..=0x7f => (usize::from(n), rest),
        0x80 => return Err(der::ErrorKind::IndefiniteLength.into()),
        n => {
            let k = usize::from(n & 0x7f);
            if k > 4 {
                return Err(der::ErrorKind::Overlength.into());
            }
            let (Some(octets), Some(after)) = (rest.get(..k), rest.get(k..)) else {
                return Err(incomplete(bytes.len(), 2 + k));
            };
            let len = octets.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
            // The shortest form: no leading zero octet, and the short form below 128.
            if octets.first() == Some(&0) || len < 0x80 {
                return Err(der::ErrorKind::Noncanonical { tag }.into());
            }
            (len, after)
        }
    };
    let header = bytes.len() - rest.len();
    let Some(end) = header.checked_add(len) else {
        return Err(der::ErrorKind::Overflow.into());
    };
    match (rest.get(..len), rest.get(len..), bytes.get(..end)) {
        (Some(value), Some(rest), Some(whole)) => Ok(Tlv {
            tag,
            value,
            whole,
            rest,
        }),
        _ => Err(incomplete(bytes.len(), end)),
    }
}

/// Splits DER `bytes` into its consecutive TLVs (checking only headers and lengths).
pub fn tlvs(bytes: &[u8]) -> der::Result<Vec<&[u8]>> {
    TlvIter(bytes).collect()
}

/// The consecutive TLVs of DER `bytes`, one at a time (no allocation; stops after an error).
#[derive(Debug, Clone, Copy)]
pub struct TlvIter<'a>(pub &'a [u8]);

impl<'a> Iterator for TlvIter<'a> {
    type Item = der::Result<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Some(match read_tlv(self.0) {
            Ok(t) => {
                self.0 = t.rest;
                Ok(t.whole)
            }
            Err(e) => {
                self.0 = &[];
                Err(e)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use der::{Encode as _, Tagged as _};

    proptest::proptest! {
        /// The hand-written TLV reader agrees with der's: on any input it accepts, der reads the same
        /// tag, value and length; it never accepts what der rejects (der may reject more, e.g.
        /// unknown universal tags, which the callers check anyway); and it never panics.
        #[test]
        fn tlv_reader_agrees_with_der(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let ours = read_tlv(&bytes);
            let mut r = der::SliceReader::new(&bytes).unwrap();
            let theirs = der::Reader::tlv_bytes(&mut r);
            if let Ok(t) = &ours {
                let whole = theirs.expect("der accepts what we accept");
                proptest::prop_assert_eq!(t.whole, whole);
                let any = der::asn1::AnyRef::from_der(whole).unwrap();
                proptest::prop_assert_eq!(t.tag, any.tag());
                proptest::prop_assert_eq!(t.value, any.value());
            }
        }

        /// And on well-formed DER of every length form, both accept.
        #[test]
        fn tlv_reader_reads_valid_der(tag in proptest::prelude::prop_oneof![
            proptest::prelude::Just(0x04u8), proptest::prelude::Just(0x30), proptest::prelude::Just(0x31),
            proptest::prelude::Just(0xa0), proptest::prelude::Just(0x80), proptest::prelude::Just(0xa1)
        ], len in 0usize..70_000, extra in 0usize..3) {
            let value = vec![0x5a; len];
            let mut der = der::asn1::AnyRef::new(Tag::OctetString, &value).unwrap().to_der().unwrap();
            der[0] = tag;
            der.extend(std::iter::repeat_n(0u8, extra));
            let t = read_tlv(&der).unwrap();
            proptest::prop_assert_eq!(t.value.len(), len);
            proptest::prop_assert_eq!(t.rest.len(), extra);
        }
    }
}
