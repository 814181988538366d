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
//! anyone else's; and per writer (`stream`: each platform instance writing one shared log keeps a
//! chain per person of its own, see [`crate::access_store`]), the stream hashed into its records
//! and heads.
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
/// Records and heads of a named stream (one writer's chain): the stream is hashed in too, so a
/// record or head cannot be moved to another stream unnoticed. The unnamed stream (`""`, a single
/// machine's, as before streams existed) keeps the v1 encodings.
const STREAM_RECORD_DOMAIN: &[u8] = b"openjpki access-log record v2\0";
const STREAM_HEAD_DOMAIN: &[u8] = b"openjpki access-log head v2\0";

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
    /// The writer's stream: each platform instance keeps its own chain per person (`""` for a
    /// single machine's).
    pub stream: String,
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

fn record_hash(person: &str, stream: &str, seq: u64, prev: &[u8; 32], c: &CheckRecord) -> [u8; 32] {
    let mut buf = Vec::with_capacity(160);
    if stream.is_empty() {
        buf.extend_from_slice(RECORD_DOMAIN);
        put(&mut buf, person.as_bytes());
    } else {
        buf.extend_from_slice(STREAM_RECORD_DOMAIN);
        put(&mut buf, person.as_bytes());
        put(&mut buf, stream.as_bytes());
    }
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
    /// The record that follows `last` (or starts `person`'s log when `last` is `None`) in the
    /// unnamed stream. Appending to another person's log is an error.
    pub fn append(
        last: Option<&AccessRecord>,
        person: &str,
        check: CheckRecord,
    ) -> Result<Self, PlatformError> {
        Self::append_in(last, person, "", check)
    }

    /// The record that follows `last` (or starts `person`'s chain in `stream` when `last` is
    /// `None`). Appending to another person's log or another stream is an error.
    pub fn append_in(
        last: Option<&AccessRecord>,
        person: &str,
        stream: &str,
        check: CheckRecord,
    ) -> Result<Self, PlatformError> {
        let (seq, prev) = match last {
            None => (1, [0u8; 32]),
            Some(l) if l.person == person && l.stream == stream => (l.seq + 1, l.hash),
            Some(l) => {
                return Err(PlatformError::Log(format!(
                    "cannot append a record of {person} (stream {stream:?}) after a record of {} (stream {:?})",
                    l.person, l.stream
                )));
            }
        };
        let hash = record_hash(person, stream, seq, &prev, &check);
        Ok(Self {
            person: person.to_owned(),
            stream: stream.to_owned(),
            seq,
            check,
            prev,
            hash,
        })
    }

    /// The hash this record's fields give now (equal to [`hash`](Self::hash) unless modified).
    pub fn computed_hash(&self) -> [u8; 32] {
        record_hash(&self.person, &self.stream, self.seq, &self.prev, &self.check)
    }
}

/// The platform's signed statement of where a person's log ends.
///
/// Heads are signed in batches: every flush of new records builds a Merkle tree (RFC 6962's
/// hashing, with its 0x00 / 0x01 leaf and node prefixes) over the heads of the logs it touched,
/// and the log key signs the tree's root once. A person's head is then their leaf, its inclusion
/// proof and the batch's signature: one signature per flush however many people were checked,
/// and a person checks their own head without seeing anyone else's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    /// The person.
    pub person: String,
    /// The stream whose chain it ends (`""`: the unnamed stream).
    pub stream: String,
    /// The number of records (the last one's `seq`; 0 for an empty log).
    pub seq: u64,
    /// The last record's hash (all zero for an empty log).
    pub hash: [u8; 32],
    /// The batch that signed it.
    pub batch: u64,
    /// When the batch was signed.
    pub signed_at: OffsetDateTime,
    /// The number of heads in the batch's tree.
    pub tree_size: u64,
    /// This head's position in the tree.
    pub leaf_index: u64,
    /// The audit path from this head's leaf to the root (RFC 6962 §2.1.1).
    pub proof: Vec<[u8; 32]>,
    /// The log key's type (which fixes the signature algorithm).
    pub key_type: KeyType,
    /// The signature over the batch number, tree size, root and time.
    pub signature: Vec<u8>,
}

/// A signed batch of heads: what the log key signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBatch {
    /// The batch number (1, 2, … in signing order).
    pub batch: u64,
    /// When it was signed.
    pub signed_at: OffsetDateTime,
    /// The Merkle tree's leaves, in order: one per head.
    pub leaves: Vec<[u8; 32]>,
    /// The tree's root.
    pub root: [u8; 32],
    /// The log key's type.
    pub key_type: KeyType,
    /// The signature.
    pub signature: Vec<u8>,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The Merkle leaf of the head of a person's chain in `stream`.
pub fn head_leaf(person: &str, stream: &str, seq: u64, hash: &[u8; 32]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(96);
    buf.push(0);
    if stream.is_empty() {
        buf.extend_from_slice(HEAD_DOMAIN);
        put(&mut buf, person.as_bytes());
    } else {
        buf.extend_from_slice(STREAM_HEAD_DOMAIN);
        put(&mut buf, person.as_bytes());
        put(&mut buf, stream.as_bytes());
    }
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(hash);
    sha256(&[&buf])
}

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[1], left, right])
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// RFC 6962's Merkle tree hash of `leaves` (leaf hashes already computed); the empty tree hashes
/// the empty string.
fn tree_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [] => sha256(&[]),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node(&tree_root(&leaves[..k]), &tree_root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `m` in `leaves` (RFC 6962 §2.1.1).
fn audit_path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    if m < k {
        let mut p = audit_path(m, &leaves[..k]);
        p.push(tree_root(&leaves[k..]));
        p
    } else {
        let mut p = audit_path(m - k, &leaves[k..]);
        p.push(tree_root(&leaves[..k]));
        p
    }
}

/// The root that leaf `leaf` at `index` in a tree of `size` leaves gives with `path`
/// (RFC 9162 §2.1.3.2), or `None` if the path does not fit the position.
fn root_from_path(index: u64, size: u64, leaf: &[u8; 32], path: &[[u8; 32]]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return None;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    (s_n == 0).then_some(r)
}

fn batch_message(batch: u64, tree_size: u64, root: &[u8; 32], signed_at: OffsetDateTime) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(HEAD_DOMAIN);
    buf.extend_from_slice(b"batch\0");
    buf.extend_from_slice(&batch.to_be_bytes());
    buf.extend_from_slice(&tree_size.to_be_bytes());
    buf.extend_from_slice(root);
    buf.extend_from_slice(&signed_at.unix_timestamp().to_be_bytes());
    buf
}

impl SignedBatch {
    /// Signs batch number `batch` over the heads `heads` (person, stream, seq, last hash), in order.
    pub fn sign(
        key: &SigningKey,
        batch: u64,
        heads: &[(&str, &str, u64, [u8; 32])],
        signed_at: OffsetDateTime,
    ) -> Result<Self, PlatformError> {
        let leaves: Vec<[u8; 32]> = heads
            .iter()
            .map(|(p, st, s, h)| head_leaf(p, st, *s, h))
            .collect();
        let root = tree_root(&leaves);
        let size = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
        let signature = key.sign(&batch_message(batch, size, &root, signed_at))?;
        Ok(Self {
            batch,
            signed_at,
            leaves,
            root,
            key_type: key.key_type(),
            signature,
        })
    }

    /// Whether the batch's leaves give its root and the log key whose SubjectPublicKeyInfo is
    /// `log_key_spki` signed it.
    pub fn verify(&self, log_key_spki: &[u8]) -> bool {
        let root = tree_root(&self.leaves);
        if root != self.root {
            return false;
        }
        let Ok(spki) = SubjectPublicKey::from_der(log_key_spki) else {
            return false;
        };
        let Ok(key) = PublicKey::from_spki(spki.spki()) else {
            return false;
        };
        let size = u64::try_from(self.leaves.len()).unwrap_or(u64::MAX);
        let msg = batch_message(self.batch, size, &root, self.signed_at);
        key.verify(&self.key_type.signature_algorithm().oid, &msg, &self.signature)
            .unwrap_or(false)
    }

    /// The signed head of the `index`-th head of the batch, which is `person`'s in `stream` at
    /// `seq`/`hash`.
    pub fn head(&self, index: usize, person: &str, stream: &str, seq: u64, hash: [u8; 32]) -> SignedHead {
        SignedHead {
            person: person.to_owned(),
            stream: stream.to_owned(),
            seq,
            hash,
            batch: self.batch,
            signed_at: self.signed_at,
            tree_size: u64::try_from(self.leaves.len()).unwrap_or(u64::MAX),
            leaf_index: u64::try_from(index).unwrap_or(u64::MAX),
            proof: audit_path(index, &self.leaves),
            key_type: self.key_type,
            signature: self.signature.clone(),
        }
    }
}

impl SignedHead {
    /// Signs the head of `person`'s log whose last record is `last` (`None`: an empty log) alone,
    /// as a batch of one (in `last`'s stream; the unnamed one for an empty log).
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
        let stream = last.map_or("", |l| l.stream.as_str());
        let batch = SignedBatch::sign(key, 0, &[(person, stream, seq, hash)], signed_at)?;
        Ok(batch.head(0, person, stream, seq, hash))
    }

    /// Whether the head is in its batch's tree and the batch was signed by the log key whose
    /// SubjectPublicKeyInfo is `log_key_spki`.
    pub fn signature_valid(&self, log_key_spki: &[u8]) -> bool {
        let leaf = head_leaf(&self.person, &self.stream, self.seq, &self.hash);
        let Some(root) = root_from_path(self.leaf_index, self.tree_size, &leaf, &self.proof) else {
            return false;
        };
        let Ok(spki) = SubjectPublicKey::from_der(log_key_spki) else {
            return false;
        };
        let Ok(key) = PublicKey::from_spki(spki.spki()) else {
            return false;
        };
        let msg = batch_message(self.batch, self.tree_size, &root, self.signed_at);
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

/// Checks `records` (one person's chain in one stream, in order) against the latest signed `head` and the log key.
pub fn verify(records: &[AccessRecord], head: &SignedHead, log_key_spki: &[u8]) -> Result<(), Tamper> {
    if !head.signature_valid(log_key_spki) {
        return Err(Tamper::BadHead);
    }
    let mut prev = [0u8; 32];
    let mut expected = 1u64;
    for r in records {
        if r.person != head.person || r.stream != head.stream {
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
    fn a_batch_signs_many_heads_once_and_each_proves_alone() {
        let (k, spki) = key();
        for n in [1usize, 2, 3, 5, 8, 13] {
            let heads: Vec<(String, u64, [u8; 32])> = (0..n)
                .map(|i| (format!("P-{i:04}"), i as u64 + 1, [i as u8; 32]))
                .collect();
            let refs: Vec<(&str, &str, u64, [u8; 32])> = heads
                .iter()
                .map(|(p, s, h)| (p.as_str(), if s % 2 == 0 { "a1" } else { "" }, *s, *h))
                .collect();
            let batch = SignedBatch::sign(&k, 7, &refs, now()).unwrap();
            for (i, (p, st, s, h)) in refs.iter().enumerate() {
                let head = batch.head(i, p, st, *s, *h);
                assert!(head.signature_valid(&spki), "n={n} i={i}");
                // Another person's leaf does not fit this proof, nor does a changed count.
                let mut wrong = head.clone();
                wrong.seq += 1;
                assert!(!wrong.signature_valid(&spki));
                let mut moved = head.clone();
                moved.leaf_index = (moved.leaf_index + 1) % n as u64;
                assert!(n == 1 || !moved.signature_valid(&spki), "n={n} i={i}");
            }
        }
    }

    #[test]
    fn streams_are_chains_of_their_own_and_bound_to_their_name() {
        let (k, spki) = key();
        let mut records: Vec<AccessRecord> = Vec::new();
        for i in 0..3 {
            let r = AccessRecord::append_in(records.last(), "P-0001", "a1b2", check(i)).unwrap();
            records.push(r);
        }
        let head = SignedHead::sign(&k, "P-0001", records.last(), now()).unwrap();
        assert_eq!(head.stream, "a1b2");
        assert_eq!(verify(&records, &head, &spki), Ok(()));
        // Not appended across streams; the unnamed stream keeps the first encoding.
        assert!(AccessRecord::append(records.last(), "P-0001", check(4)).is_err());
        let plain = AccessRecord::append(None, "P-0001", check(0)).unwrap();
        assert_ne!(plain.hash, records[0].hash);
        // A chain relabelled as another stream's no longer verifies, nor does its head.
        let mut moved = records.clone();
        for r in &mut moved {
            r.stream = "ffff".into();
        }
        assert_eq!(verify(&moved, &head, &spki), Err(Tamper::Foreign { seq: 1 }));
        let mut moved_head = head.clone();
        moved_head.stream = "ffff".into();
        assert_eq!(verify(&moved, &moved_head, &spki), Err(Tamper::BadHead));
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
