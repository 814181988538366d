//! Access records (アクセス記録): every check a relying party makes about a person's certificate is to
//! be appended to that person's log, which the person reads in the portal. (The log's structure and
//! checks are here; `jpki serve` does not write it yet: it meters checks, see [`crate::fees`].)
//!
//! Tamper evidence: each person's records form a hash chain (record *n* carries the SHA-256 of record
//! *n − 1*, and its own hash covers every field), and the platform signs the chain's head (person,
//! sequence number, hash, time) with its log key. Given a person's records and the latest signed head,
//! [`verify`] names the first record that was modified, the first that is missing from the middle,
//! or that records were cut off the end; a head that was not signed by the log key is refused. An
//! operator who can write the database but not use the log key can therefore neither rewrite nor
//! drop a record unnoticed. Chains are per person, so a person checks their own log without seeing
//! anyone else's.
//!
//! Privacy: a record holds no more than the relying party itself saw (for an age check, the threshold
//! and the yes/no answer, never the birth date), and the person is named by the platform's opaque
//! reference, never by the individual number.
use aws_lc_rs::digest;
use jpki_model::CertKind;
use jpki_pki::x509::PublicKey;
use jpki_pki::{KeyType, SigningKey, SubjectPublicKey};
use time::OffsetDateTime;

use crate::PlatformError;

const RECORD_DOMAIN: &[u8] = b"openjpki access-log record v1\0";
const HEAD_DOMAIN: &[u8] = b"openjpki access-log head v1\0";

/// One check, as the relying party saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    /// When the check was answered (whole seconds are kept).
    pub at: OffsetDateTime,
    /// The relying party's identifier.
    pub rp_id: String,
    /// The relying party's registered name, as the person will read it.
    pub rp_name: String,
    /// Which of the person's certificates was checked.
    pub cert_kind: CertKind,
    /// What was asked ("ocsp", "validity", "age ≥ 18", "liveness", "linkage" …).
    pub check: String,
    /// The purpose the relying party gave.
    pub purpose: String,
    /// The answer given ("good", "revoked", "yes", …).
    pub result: String,
}

/// One record of a person's access log: a check and its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// The platform's opaque reference to the person (never the individual number).
    pub person: String,
    /// Position in the person's log, from 1.
    pub seq: u64,
    /// The check.
    pub check: CheckRecord,
    /// The hash of the previous record (all zero for the first).
    pub prev: [u8; 32],
    /// This record's hash, over every field above.
    pub hash: [u8; 32],
}

fn put(buf: &mut Vec<u8>, field: &[u8]) {
    // Length-prefixed, so no two different records encode alike.
    buf.extend_from_slice(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
    buf.extend_from_slice(field);
}

fn kind_byte(kind: CertKind) -> u8 {
    match kind {
        CertKind::Signature => 1,
        CertKind::Authentication => 2,
    }
}

fn record_hash(person: &str, seq: u64, prev: &[u8; 32], c: &CheckRecord) -> [u8; 32] {
    let mut buf = Vec::with_capacity(160);
    buf.extend_from_slice(RECORD_DOMAIN);
    put(&mut buf, person.as_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(prev);
    buf.extend_from_slice(&c.at.unix_timestamp().to_be_bytes());
    put(&mut buf, c.rp_id.as_bytes());
    put(&mut buf, c.rp_name.as_bytes());
    buf.push(kind_byte(c.cert_kind));
    put(&mut buf, c.check.as_bytes());
    put(&mut buf, c.purpose.as_bytes());
    put(&mut buf, c.result.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, &buf).as_ref());
    out
}

impl AccessRecord {
    /// The record that follows `last` (or starts `person`'s log when `last` is `None`).
    /// Appending to another person's log is an error.
    pub fn append(
        last: Option<&AccessRecord>,
        person: &str,
        check: CheckRecord,
    ) -> Result<Self, PlatformError> {
        let (seq, prev) = match last {
            None => (1, [0u8; 32]),
            Some(l) if l.person == person => (l.seq + 1, l.hash),
            Some(l) => {
                return Err(PlatformError::Log(format!(
                    "cannot append a record of {person} after a record of {}",
                    l.person
                )));
            }
        };
        let hash = record_hash(person, seq, &prev, &check);
        Ok(Self {
            person: person.to_owned(),
            seq,
            check,
            prev,
            hash,
        })
    }

    /// The hash this record's fields give now (equal to [`hash`](Self::hash) unless modified).
    pub fn computed_hash(&self) -> [u8; 32] {
        record_hash(&self.person, self.seq, &self.prev, &self.check)
    }
}

/// The platform's signed statement of where a person's log ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    /// The person.
    pub person: String,
    /// The number of records (the last one's `seq`; 0 for an empty log).
    pub seq: u64,
    /// The last record's hash (all zero for an empty log).
    pub hash: [u8; 32],
    /// When the head was signed.
    pub signed_at: OffsetDateTime,
    /// The log key's type (which fixes the signature algorithm).
    pub key_type: KeyType,
    /// The signature over the fields above.
    pub signature: Vec<u8>,
}

fn head_message(person: &str, seq: u64, hash: &[u8; 32], signed_at: OffsetDateTime) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(HEAD_DOMAIN);
    put(&mut buf, person.as_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(hash);
    buf.extend_from_slice(&signed_at.unix_timestamp().to_be_bytes());
    buf
}

impl SignedHead {
    /// Signs the head of `person`'s log whose last record is `last` (`None`: an empty log).
    pub fn sign(
        key: &SigningKey,
        person: &str,
        last: Option<&AccessRecord>,
        signed_at: OffsetDateTime,
    ) -> Result<Self, PlatformError> {
        let (seq, hash) = last.map_or((0, [0u8; 32]), |l| (l.seq, l.hash));
        if let Some(l) = last
            && l.person != person
        {
            return Err(PlatformError::Log(format!(
                "the last record is {}'s, not {person}'s",
                l.person
            )));
        }
        let signature = key.sign(&head_message(person, seq, &hash, signed_at))?;
        Ok(Self {
            person: person.to_owned(),
            seq,
            hash,
            signed_at,
            key_type: key.key_type(),
            signature,
        })
    }

    /// Whether the signature was made by the log key whose SubjectPublicKeyInfo is `log_key_spki`.
    pub fn signature_valid(&self, log_key_spki: &[u8]) -> bool {
        let Ok(spki) = SubjectPublicKey::from_der(log_key_spki) else {
            return false;
        };
        let Ok(key) = PublicKey::from_spki(spki.spki()) else {
            return false;
        };
        let msg = head_message(&self.person, self.seq, &self.hash, self.signed_at);
        key.verify(&self.key_type.signature_algorithm().oid, &msg, &self.signature)
            .unwrap_or(false)
    }
}

/// How a log fails its check: the first problem found, in log order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Tamper {
    /// The head is not signed by the log key, or is for someone else.
    #[error("the log head is not signed by the platform's log key")]
    BadHead,
    /// A record belongs to another person.
    #[error("record {seq} belongs to another person's log")]
    Foreign {
        /// Its sequence number.
        seq: u64,
    },
    /// A record's contents differ from what was recorded.
    #[error("record {seq} was modified after it was recorded")]
    Modified {
        /// Its sequence number.
        seq: u64,
    },
    /// A record is missing between two others (or the records are out of order).
    #[error("record {seq} is missing")]
    Missing {
        /// The sequence number expected next.
        seq: u64,
    },
    /// Records after the last one present were removed (the signed head counts more).
    #[error("the log ends at record {have} but the signed head says {head}: later records were removed")]
    Truncated {
        /// The last sequence number present.
        have: u64,
        /// The signed head's count.
        head: u64,
    },
    /// The records go on beyond the signed head (recorded after it was signed, or invented).
    #[error("records after {head} are not covered by the signed head")]
    BeyondHead {
        /// The signed head's count.
        head: u64,
    },
}

/// Checks `records` (one person's log, in order) against the latest signed `head` and the log key.
pub fn verify(records: &[AccessRecord], head: &SignedHead, log_key_spki: &[u8]) -> Result<(), Tamper> {
    if !head.signature_valid(log_key_spki) {
        return Err(Tamper::BadHead);
    }
    let mut prev = [0u8; 32];
    let mut expected = 1u64;
    for r in records {
        if r.person != head.person {
            return Err(Tamper::Foreign { seq: r.seq });
        }
        if r.seq != expected {
            return Err(Tamper::Missing { seq: expected });
        }
        if r.computed_hash() != r.hash {
            return Err(Tamper::Modified { seq: r.seq });
        }
        if r.prev != prev {
            // The chain link is broken: either the previous record was swapped out whole (its own
            // hash recomputed) or this one was re-linked.
            return Err(Tamper::Modified {
                seq: r.seq.saturating_sub(1).max(1),
            });
        }
        prev = r.hash;
        expected += 1;
    }
    let have = expected - 1;
    if have < head.seq {
        return Err(Tamper::Truncated { have, head: head.seq });
    }
    if have > head.seq {
        return Err(Tamper::BeyondHead { head: head.seq });
    }
    if prev != head.hash {
        return Err(Tamper::Modified { seq: have });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn check(i: u64) -> CheckRecord {
        CheckRecord {
            at: OffsetDateTime::from_unix_timestamp(1_790_000_000 + i as i64 * 61).unwrap(),
            rp_id: format!("rp-{}", i % 3),
            rp_name: ["みずほ銀行", "Example Securities", "チケット販売"][(i % 3) as usize].to_owned(),
            cert_kind: if i.is_multiple_of(2) {
                CertKind::Signature
            } else {
                CertKind::Authentication
            },
            check: if i.is_multiple_of(2) {
                "validity".into()
            } else {
                "age ≥ 18".into()
            },
            purpose: "account opening".into(),
            result: if i % 4 == 1 { "yes".into() } else { "good".into() },
        }
    }

    fn log(n: u64) -> Vec<AccessRecord> {
        let mut out: Vec<AccessRecord> = Vec::new();
        for i in 0..n {
            let r = AccessRecord::append(out.last(), "P-0001", check(i)).unwrap();
            out.push(r);
        }
        out
    }

    fn key() -> (SigningKey, Vec<u8>) {
        let k = SigningKey::generate(KeyType::P384).unwrap();
        let spki = k.spki_der().unwrap();
        (k, spki)
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn an_untouched_log_verifies_and_an_empty_one_too() {
        let (k, spki) = key();
        let records = log(10);
        let head = SignedHead::sign(&k, "P-0001", records.last(), now()).unwrap();
        assert_eq!(verify(&records, &head, &spki), Ok(()));
        let empty = SignedHead::sign(&k, "P-0001", None, now()).unwrap();
        assert_eq!(verify(&[], &empty, &spki), Ok(()));
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let (k, spki) = key();
        let records = log(10);
        let head = SignedHead::sign(&k, "P-0001", records.last(), now()).unwrap();

        let mut modified = records.clone();
        modified[4].check.result = "revoked".into();
        assert_eq!(verify(&modified, &head, &spki), Err(Tamper::Modified { seq: 5 }));

        // Modified and its own hash recomputed: the next record's link breaks.
        let mut rehashed = records.clone();
        rehashed[4].check.rp_name = "someone else".into();
        rehashed[4].hash = rehashed[4].computed_hash();
        assert!(matches!(
            verify(&rehashed, &head, &spki),
            Err(Tamper::Modified { .. })
        ));

        // The whole tail rewritten consistently: the signed head no longer matches.
        let mut rewritten = records[..9].to_vec();
        let mut c = check(9);
        c.result = "revoked".into();
        rewritten.push(AccessRecord::append(rewritten.last(), "P-0001", c).unwrap());
        assert_eq!(
            verify(&rewritten, &head, &spki),
            Err(Tamper::Modified { seq: 10 })
        );

        let mut deleted = records.clone();
        deleted.remove(3);
        assert_eq!(verify(&deleted, &head, &spki), Err(Tamper::Missing { seq: 4 }));

        let truncated = records[..8].to_vec();
        assert_eq!(
            verify(&truncated, &head, &spki),
            Err(Tamper::Truncated { have: 8, head: 10 })
        );

        let mut extra = records.clone();
        extra.push(AccessRecord::append(extra.last(), "P-0001", check(10)).unwrap());
        assert_eq!(verify(&extra, &head, &spki), Err(Tamper::BeyondHead { head: 10 }));

        let mut swapped = records.clone();
        swapped.swap(2, 3);
        assert_eq!(verify(&swapped, &head, &spki), Err(Tamper::Missing { seq: 3 }));

        // A head signed by another key, or altered, is refused.
        let (other, _) = key();
        let forged = SignedHead::sign(&other, "P-0001", truncated.last(), now()).unwrap();
        assert_eq!(verify(&truncated, &forged, &spki), Err(Tamper::BadHead));
        let mut altered = head.clone();
        altered.seq = 8;
        assert_eq!(verify(&truncated, &altered, &spki), Err(Tamper::BadHead));
    }

    #[test]
    fn logs_are_per_person() {
        let records = log(2);
        assert!(AccessRecord::append(records.last(), "P-0002", check(3)).is_err());
        let (k, spki) = key();
        let head = SignedHead::sign(&k, "P-0002", None, now()).unwrap();
        assert_eq!(verify(&records, &head, &spki), Err(Tamper::Foreign { seq: 1 }));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Any change to any one text field of any record is detected.
        #[test]
        fn any_single_field_change_is_detected(n in 1u64..12, which in 0usize..12, field in 0usize..6, text in "[a-z0-9 ]{0,12}") {
            let (k, spki) = key();
            let records = log(n);
            let head = SignedHead::sign(&k, "P-0001", records.last(), now()).unwrap();
            let mut t = records.clone();
            let i = which % records.len();
            let r = &mut t[i];
            let target = match field {
                0 => &mut r.check.rp_id,
                1 => &mut r.check.rp_name,
                2 => &mut r.check.check,
                3 => &mut r.check.purpose,
                4 => &mut r.check.result,
                _ => &mut r.person,
            };
            prop_assume!(*target != text);
            *target = text;
            prop_assert!(verify(&t, &head, &spki).is_err());
        }
    }
}
