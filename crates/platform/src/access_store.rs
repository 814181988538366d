//! Where access records live: `access-log.sqlite` beside the relying-party registry, and the
//! [`Recorder`] the request path hands every answered check to.
//!
//! The request path only pushes what it answered (relying party, certificate, check, result) onto
//! the recorder; a background flush resolves each certificate to its holder's opaque reference,
//! appends the records to each holder's hash chain in one transaction, and signs one
//! [`SignedBatch`] over the heads of the logs it touched. So recording costs the request a mutex
//! push, and the log key signs once per flush rather than once per check.
//!
//! The log key is kept apart from the database (an encrypted PEM under the authority's passphrase,
//! with its public key beside it): someone who can write the database but not use the key can
//! neither rewrite nor drop a record unnoticed. What a signed head cannot show is a whole log
//! rolled back to an earlier signed head together with its records; the person sees that as their
//! log getting shorter than the count they saw before (the portal shows it), as in Certificate
//! Transparency's gossip.
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use jpki_model::CertKind;
use jpki_pki::{KeyType, SigningKey};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::PlatformError;
use crate::access_log::{AccessRecord, CheckRecord, SignedBatch, SignedHead, Tamper, verify};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS access_records (
    person     TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    rp_id      TEXT    NOT NULL,
    rp_name    TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('sign', 'auth')),
    check_name TEXT    NOT NULL,
    purpose    TEXT    NOT NULL,
    result     TEXT    NOT NULL,
    prev       BLOB    NOT NULL,
    hash       BLOB    NOT NULL,
    PRIMARY KEY (person, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_batches (
    id        INTEGER PRIMARY KEY,
    signed_at INTEGER NOT NULL,
    root      BLOB    NOT NULL,
    key_type  TEXT    NOT NULL,
    signature BLOB    NOT NULL,
    leaves    BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS access_quarantine (
    id         INTEGER PRIMARY KEY,
    person     TEXT    NOT NULL,
    why        TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    rp_id      TEXT    NOT NULL,
    rp_name    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    check_name TEXT    NOT NULL,
    purpose    TEXT    NOT NULL,
    result     TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS access_quarantine_person ON access_quarantine (person);
CREATE TABLE IF NOT EXISTS access_heads (
    person     TEXT    PRIMARY KEY,
    seq        INTEGER NOT NULL,
    hash       BLOB    NOT NULL,
    batch      INTEGER NOT NULL REFERENCES access_batches (id),
    leaf_index INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The most checks kept waiting while the access log cannot be written.
pub const MAX_PENDING: usize = 1_000_000;

/// A check the request path answered, before its holder is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// When it was answered.
    pub at: OffsetDateTime,
    /// The relying party.
    pub rp_id: String,
    /// Which CA's certificate.
    pub kind: CertKind,
    /// Its serial (unsigned big-endian).
    pub serial: Vec<u8>,
    /// What was asked.
    pub check: String,
    /// The purpose the relying party gave, if any.
    pub purpose: Option<String>,
    /// The answer given.
    pub result: String,
}

/// The request path's side of the access log: answered checks waiting for the next flush.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Vec<Seen>>);

impl Recorder {
    /// Notes an answered check.
    pub fn push(&self, seen: Seen) {
        if let Ok(mut v) = self.0.lock() {
            v.push(seen);
        }
    }

    /// Takes the checks noted so far (to write them).
    pub fn take(&self) -> Vec<Seen> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// Puts back checks whose write failed, ahead of newer ones, for the next flush. Beyond
    /// [`MAX_PENDING`] waiting checks the oldest are dropped (and counted in the return value), so
    /// a database that stays down cannot exhaust memory.
    pub fn requeue(&self, mut seen: Vec<Seen>) -> usize {
        let Ok(mut v) = self.0.lock() else {
            return seen.len();
        };
        seen.append(&mut v);
        let dropped = seen.len().saturating_sub(MAX_PENDING);
        seen.drain(..dropped);
        *v = seen;
        dropped
    }
}

fn kind_str(kind: CertKind) -> &'static str {
    kind.as_str()
}

fn kind_of(s: &str) -> Result<CertKind, PlatformError> {
    match s {
        "sign" => Ok(CertKind::Signature),
        "auth" => Ok(CertKind::Authentication),
        other => Err(PlatformError::Corrupt(format!(
            "certificate kind {other:?} in the access log"
        ))),
    }
}

fn hash32(v: &[u8]) -> Result<[u8; 32], PlatformError> {
    <[u8; 32]>::try_from(v)
        .map_err(|_| PlatformError::Corrupt("a hash in the access log is not 32 bytes".into()))
}

fn time_of(t: i64) -> Result<OffsetDateTime, PlatformError> {
    OffsetDateTime::from_unix_timestamp(t)
        .map_err(|_| PlatformError::Corrupt(format!("time {t} in the access log")))
}

fn key_type_of(s: &str) -> Result<KeyType, PlatformError> {
    [KeyType::P384, KeyType::Rsa2048]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| PlatformError::Corrupt(format!("log key type {s:?}")))
}

/// A head row joined with its batch: seq, hash, batch, leaf index, signed_at, key type,
/// signature, leaves.
type HeadRow = (i64, Vec<u8>, i64, i64, i64, String, Vec<u8>, Vec<u8>);

/// The access log's database.
#[derive(Debug)]
pub struct AccessStore {
    conn: Connection,
    /// What this process signed or verified itself, kept in memory so that the database cannot
    /// change it between flushes.
    trusted: Trusted,
}

/// Heads and batch contents this process trusts: it signed them, or it verified them once.
#[derive(Debug, Default)]
struct Trusted {
    /// person → (count, last hash) of the log's head.
    heads: HashMap<String, (i64, Vec<u8>)>,
    /// batch → its leaves, for batches whose signature was verified.
    batches: HashMap<i64, Vec<[u8; 32]>>,
    /// How many leaves `batches` holds.
    leaves: usize,
}

/// The most heads [`Trusted`] keeps (≈ 100 bytes each); beyond, it starts again from the database.
const MAX_TRUSTED_HEADS: usize = 1_000_000;
/// The most batch leaves [`Trusted`] keeps (32 bytes each).
const MAX_TRUSTED_LEAVES: usize = 4_000_000;

impl Trusted {
    fn head(&mut self, person: &str, seq: i64, hash: Vec<u8>) {
        if self.heads.len() >= MAX_TRUSTED_HEADS {
            self.heads.clear();
        }
        self.heads.insert(person.to_owned(), (seq, hash));
    }

    fn batch(&mut self, id: i64, leaves: Vec<[u8; 32]>) {
        if self.leaves + leaves.len() > MAX_TRUSTED_LEAVES {
            self.batches.clear();
            self.leaves = 0;
        }
        self.leaves += leaves.len();
        self.batches.insert(id, leaves);
    }
}

/// How a person's log checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// Every record is there, unmodified, up to the signed head.
    Intact {
        /// How many records.
        records: u64,
        /// The signed head (absent for a person never checked).
        head: Option<SignedHead>,
    },
    /// The first problem found.
    Tampered(Tamper),
}

impl AccessStore {
    /// Opens (creating if needed) the access log at `path`.
    pub fn open(path: &Path) -> Result<Self, PlatformError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn,
            trusted: Trusted::default(),
        })
    }

    /// Appends `checks` (each with its holder's reference and the relying party's name) to their
    /// holders' logs and signs one batch over the touched heads, all in one transaction. Returns
    /// the number of records written.
    pub fn append(
        &mut self,
        key: &SigningKey,
        checks: Vec<(String, CheckRecord)>,
        now: OffsetDateTime,
    ) -> Result<usize, PlatformError> {
        if checks.is_empty() {
            return Ok(0);
        }
        let spki = key.spki_der()?;
        // One immediate transaction: no other writer between the checks and the appends.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Each person's log is extended only from where its signed head says it ends: a log
        // changed in the database since (records edited, dropped or added, or rolled back to an
        // older head) is not extended, so the next signature never covers the change; its new
        // records wait in the quarantine.
        let mut damaged: HashMap<String, String> = HashMap::new();
        let mut looked: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (person, _) in &checks {
            if looked.insert(person.clone())
                && let Some(why) = damage(&tx, &mut self.trusted, person, &spki)?
            {
                damaged.insert(person.clone(), why);
            }
        }
        let checks_ok = checks;
        let mut last: HashMap<String, AccessRecord> = HashMap::new();
        let n = checks_ok.len();
        {
            let mut tail = tx.prepare_cached(
                "SELECT seq, hash FROM access_records WHERE person = ?1 ORDER BY seq DESC LIMIT 1",
            )?;
            let mut quarantine = tx.prepare_cached(
                "INSERT INTO access_quarantine (person, why, at, rp_id, rp_name, kind, check_name, purpose, result)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO access_records (person, seq, at, rp_id, rp_name, kind, check_name, purpose, result, prev, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for (person, check) in checks_ok {
                if let Some(why) = damaged.get(&person) {
                    quarantine.execute(params![
                        person,
                        why,
                        check.at.unix_timestamp(),
                        check.rp_id,
                        check.rp_name,
                        kind_str(check.cert_kind),
                        check.check,
                        check.purpose,
                        check.result,
                    ])?;
                    continue;
                }
                let previous = match last.remove(&person) {
                    Some(r) => Some(r),
                    None => {
                        let row: Option<(i64, Vec<u8>)> = tail
                            .query_row([&person], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()?;
                        match row {
                            // Only seq and hash of the previous record matter for appending.
                            Some((seq, hash)) => Some(AccessRecord {
                                person: person.clone(),
                                seq: u64::try_from(seq).unwrap_or(0),
                                check: check.clone(),
                                prev: [0; 32],
                                hash: hash32(&hash)?,
                            }),
                            None => None,
                        }
                    }
                };
                let record = AccessRecord::append(previous.as_ref(), &person, check)?;
                let c = &record.check;
                insert.execute(params![
                    record.person,
                    i64::try_from(record.seq).unwrap_or(i64::MAX),
                    c.at.unix_timestamp(),
                    c.rp_id,
                    c.rp_name,
                    kind_str(c.cert_kind),
                    c.check,
                    c.purpose,
                    c.result,
                    record.prev.as_slice(),
                    record.hash.as_slice(),
                ])?;
                last.insert(person, record);
            }
        }
        if last.is_empty() {
            tx.commit()?;
            return Ok(n);
        }
        let signed_heads: Vec<(String, i64, Vec<u8>)> = last
            .values()
            .map(|r| {
                (
                    r.person.clone(),
                    i64::try_from(r.seq).unwrap_or(i64::MAX),
                    r.hash.to_vec(),
                )
            })
            .collect();
        let batch_no: i64 = tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM access_batches", [], |r| {
            r.get(0)
        })?;
        let mut heads: Vec<(&str, u64, [u8; 32])> = last
            .values()
            .map(|r| (r.person.as_str(), r.seq, r.hash))
            .collect();
        heads.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let batch = SignedBatch::sign(key, u64::try_from(batch_no).unwrap_or(0), &heads, now)?;
        tx.execute(
            "INSERT INTO access_batches (id, signed_at, root, key_type, signature, leaves) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                batch_no,
                now.unix_timestamp(),
                batch.root.as_slice(),
                batch.key_type.as_str(),
                batch.signature,
                batch.leaves.concat(),
            ],
        )?;
        {
            let mut head = tx.prepare_cached(
                "INSERT INTO access_heads (person, seq, hash, batch, leaf_index) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (person) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                     batch = excluded.batch, leaf_index = excluded.leaf_index",
            )?;
            for (i, (person, seq, hash)) in heads.iter().enumerate() {
                head.execute(params![
                    person,
                    i64::try_from(*seq).unwrap_or(i64::MAX),
                    hash.as_slice(),
                    batch_no,
                    i64::try_from(i).unwrap_or(i64::MAX),
                ])?;
            }
        }
        tx.commit()?;
        for (person, seq, hash) in signed_heads {
            self.trusted.head(&person, seq, hash);
        }
        self.trusted.batch(batch_no, batch.leaves);
        Ok(n)
    }

    /// How many of `person`'s checks wait in the quarantine because their log was found damaged.
    pub fn quarantined(&self, person: &str) -> Result<u64, PlatformError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM access_quarantine WHERE person = ?1")?
            .query_row([person], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// `person`'s records, oldest first.
    pub fn records(&self, person: &str) -> Result<Vec<AccessRecord>, PlatformError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, at, rp_id, rp_name, kind, check_name, purpose, result, prev, hash
             FROM access_records WHERE person = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([person], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, Vec<u8>>(8)?,
                r.get::<_, Vec<u8>>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at, rp_id, rp_name, kind, check, purpose, result, prev, hash) = row?;
            out.push(AccessRecord {
                person: person.to_owned(),
                seq: u64::try_from(seq).unwrap_or(0),
                check: CheckRecord {
                    at: time_of(at)?,
                    rp_id,
                    rp_name,
                    cert_kind: kind_of(&kind)?,
                    check,
                    purpose,
                    result,
                },
                prev: hash32(&prev)?,
                hash: hash32(&hash)?,
            });
        }
        Ok(out)
    }

    /// `person`'s latest signed head, with its proof rebuilt from the batch.
    pub fn head(&self, person: &str) -> Result<Option<SignedHead>, PlatformError> {
        let row: Option<HeadRow> = self
            .conn
            .prepare_cached(
                "SELECT h.seq, h.hash, h.batch, h.leaf_index, b.signed_at, b.key_type, b.signature, b.leaves
                 FROM access_heads h JOIN access_batches b ON b.id = h.batch WHERE h.person = ?1",
            )?
            .query_row([person], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .optional()?;
        let Some((seq, hash, batch, index, signed_at, key_type, signature, leaves)) = row else {
            return Ok(None);
        };
        let leaves: Vec<[u8; 32]> = leaves.chunks(32).map(hash32).collect::<Result<_, _>>()?;
        let index = usize::try_from(index)
            .ok()
            .filter(|i| *i < leaves.len())
            .ok_or_else(|| PlatformError::Corrupt(format!("leaf index {index} of batch {batch}")))?;
        let signed = SignedBatch {
            batch: u64::try_from(batch).unwrap_or(0),
            signed_at: time_of(signed_at)?,
            root: [0; 32],
            key_type: key_type_of(&key_type)?,
            signature,
            leaves,
        };
        Ok(Some(signed.head(
            index,
            person,
            u64::try_from(seq).unwrap_or(0),
            hash32(&hash)?,
        )))
    }

    /// Checks `person`'s log against their signed head and the log key `log_key_spki`.
    pub fn check(&self, person: &str, log_key_spki: &[u8]) -> Result<Integrity, PlatformError> {
        let records = self.records(person)?;
        let Some(head) = self.head(person)? else {
            return Ok(if records.is_empty() {
                Integrity::Intact {
                    records: 0,
                    head: None,
                }
            } else {
                Integrity::Tampered(Tamper::BadHead)
            });
        };
        Ok(match verify(&records, &head, log_key_spki) {
            Ok(()) => Integrity::Intact {
                records: head.seq,
                head: Some(head),
            },
            Err(t) => Integrity::Tampered(t),
        })
    }
}

/// Why `person`'s log may not be extended, if it may not: it no longer ends where this process
/// last signed it, or (for a log this process has not seen yet) its last record is not the one its
/// signed head names, the head is not in its batch, or the batch's signature fails. A row that
/// cannot be read is damage too (only that person's checks are held apart).
fn damage(
    conn: &Connection,
    trusted: &mut Trusted,
    person: &str,
    spki: &[u8],
) -> Result<Option<String>, PlatformError> {
    match damage_of(conn, trusted, person, spki) {
        Err(PlatformError::Corrupt(why)) => Ok(Some(why)),
        other => other,
    }
}

fn damage_of(
    conn: &Connection,
    trusted: &mut Trusted,
    person: &str,
    spki: &[u8],
) -> Result<Option<String>, PlatformError> {
    let tail: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM access_records WHERE person = ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row([person], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((seq, hash)) = trusted.heads.get(person) {
        return Ok(match &tail {
            Some((s, h)) if s == seq && h == hash => None,
            _ => Some(format!(
                "the log no longer ends at record {seq}, where the platform last signed it"
            )),
        });
    }
    let head: Option<(i64, Vec<u8>, i64, i64)> = conn
        .prepare_cached("SELECT seq, hash, batch, leaf_index FROM access_heads WHERE person = ?1")?
        .query_row([person], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let (head_seq, head_hash, batch, index) = match (tail, head) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Ok(Some("records without a signed head".into())),
        (None, Some(_)) => return Ok(Some("the signed head counts records that are gone".into())),
        (Some((seq, hash)), Some((head_seq, head_hash, batch, index))) => {
            if seq != head_seq || hash != head_hash {
                return Ok(Some(format!(
                    "the log ends at record {seq} but its signed head is at record {head_seq}"
                )));
            }
            (head_seq, head_hash, batch, index)
        }
    };
    if !trusted.batches.contains_key(&batch) {
        let stored = stored_batch(conn, batch)?;
        if !stored.verify(spki) {
            return Ok(Some(format!("batch {batch} does not verify with the log key")));
        }
        trusted.batch(batch, stored.leaves);
    }
    let expected =
        crate::access_log::head_leaf(person, u64::try_from(head_seq).unwrap_or(0), &hash32(&head_hash)?);
    let in_batch = usize::try_from(index)
        .ok()
        .and_then(|i| trusted.batches.get(&batch)?.get(i).copied());
    if in_batch != Some(expected) {
        return Ok(Some("the signed head is not in its batch".into()));
    }
    trusted.head(person, head_seq, head_hash);
    Ok(None)
}

/// Batch `id` as stored.
fn stored_batch(conn: &Connection, id: i64) -> Result<SignedBatch, PlatformError> {
    let (signed_at, root, key_type, signature, leaves): (i64, Vec<u8>, String, Vec<u8>, Vec<u8>) = conn
        .query_row(
            "SELECT signed_at, root, key_type, signature, leaves FROM access_batches WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?
        .ok_or_else(|| PlatformError::Corrupt(format!("batch {id} is missing")))?;
    if leaves.len() % 32 != 0 {
        return Err(PlatformError::Corrupt(format!("batch {id}'s leaves are cut")));
    }
    Ok(SignedBatch {
        batch: u64::try_from(id).unwrap_or(0),
        signed_at: time_of(signed_at)?,
        leaves: leaves.chunks(32).map(hash32).collect::<Result<_, _>>()?,
        root: hash32(&root)?,
        key_type: key_type_of(&key_type)?,
        signature,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn check(i: i64, result: &str) -> CheckRecord {
        CheckRecord {
            at: OffsetDateTime::from_unix_timestamp(1_790_000_000 + i).unwrap(),
            rp_id: "rp-0001".into(),
            rp_name: "みずほ銀行".into(),
            cert_kind: CertKind::Authentication,
            check: "validity".into(),
            purpose: "口座開設".into(),
            result: result.into(),
        }
    }

    #[test]
    fn batches_append_verify_and_tampering_in_the_database_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access-log.sqlite");
        let mut store = AccessStore::open(&path).unwrap();
        let key = SigningKey::generate(KeyType::P384).unwrap();
        let spki = key.spki_der().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_100).unwrap();
        // Three flushes, people interleaved.
        for round in 0..3 {
            let checks = (0..4)
                .map(|i| (format!("P{}", i % 3), check(round * 10 + i, "valid")))
                .collect();
            assert_eq!(store.append(&key, checks, now).unwrap(), 4);
        }
        assert_eq!(store.append(&key, Vec::new(), now).unwrap(), 0);
        for p in ["P0", "P1", "P2"] {
            let Integrity::Intact { records, head } = store.check(p, &spki).unwrap() else {
                panic!("{p} not intact");
            };
            assert_eq!(records, store.records(p).unwrap().len() as u64);
            assert!(head.unwrap().signature_valid(&spki));
        }
        assert_eq!(
            store.check("nobody", &spki).unwrap(),
            Integrity::Intact {
                records: 0,
                head: None
            }
        );
        // P0 has 6 records (i = 0, 3 in each round). Modify one, then delete one.
        let raw = Connection::open(&path).unwrap();
        raw.execute(
            "UPDATE access_records SET result = 'revoked' WHERE person = 'P0' AND seq = 2",
            [],
        )
        .unwrap();
        assert_eq!(
            store.check("P0", &spki).unwrap(),
            Integrity::Tampered(Tamper::Modified { seq: 2 })
        );
        raw.execute("DELETE FROM access_records WHERE person = 'P1' AND seq = 2", [])
            .unwrap();
        assert_eq!(
            store.check("P1", &spki).unwrap(),
            Integrity::Tampered(Tamper::Missing { seq: 2 })
        );
        let last: i64 = raw
            .query_row(
                "SELECT max(seq) FROM access_records WHERE person = 'P2'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        raw.execute(
            "DELETE FROM access_records WHERE person = 'P2' AND seq = ?1",
            [last],
        )
        .unwrap();
        assert!(matches!(
            store.check("P2", &spki).unwrap(),
            Integrity::Tampered(Tamper::Truncated { .. })
        ));
        // Editing the head to match the truncation breaks its proof.
        raw.execute("UPDATE access_heads SET seq = seq - 1 WHERE person = 'P2'", [])
            .unwrap();
        assert_eq!(
            store.check("P2", &spki).unwrap(),
            Integrity::Tampered(Tamper::BadHead)
        );
        // Another key's public key does not verify anyone.
        let other = SigningKey::generate(KeyType::P384).unwrap().spki_der().unwrap();
        assert!(matches!(
            store.check("P0", &other).unwrap(),
            Integrity::Tampered(Tamper::BadHead)
        ));
    }

    #[test]
    fn a_log_changed_in_the_database_is_not_extended_over_the_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access-log.sqlite");
        let mut store = AccessStore::open(&path).unwrap();
        let key = SigningKey::generate(KeyType::P384).unwrap();
        let spki = key.spki_der().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_100).unwrap();
        let three = |r: i64| {
            (0..3)
                .map(|i| ("P".to_owned(), check(r * 10 + i, "valid")))
                .collect()
        };
        store.append(&key, three(0), now).unwrap();
        let raw = Connection::open(&path).unwrap();
        // Drop the last record, then let the platform record more: the truncation stays visible
        // and the new records wait in the quarantine instead of covering it.
        raw.execute("DELETE FROM access_records WHERE seq = 3", [])
            .unwrap();
        store.append(&key, three(1), now).unwrap();
        assert!(matches!(
            store.check("P", &spki).unwrap(),
            Integrity::Tampered(Tamper::Truncated { have: 2, head: 3 })
        ));
        assert_eq!(store.quarantined("P").unwrap(), 3);
        // Rewriting a record and recomputing the chain after it is refused the same way.
        let mut other = AccessStore::open(&dir.path().join("b.sqlite")).unwrap();
        let qpath = dir.path().join("b.sqlite");
        other
            .append(
                &key,
                (0..2).map(|i| ("Q".to_owned(), check(i, "valid"))).collect(),
                now,
            )
            .unwrap();
        let raw = Connection::open(&qpath).unwrap();
        let r1 = AccessRecord::append(None, "Q", check(0, "revoked")).unwrap();
        let r2 = AccessRecord::append(Some(&r1), "Q", check(1, "valid")).unwrap();
        for r in [&r1, &r2] {
            raw.execute(
                "UPDATE access_records SET result = ?1, prev = ?2, hash = ?3 WHERE person = 'Q' AND seq = ?4",
                params![r.check.result, r.prev.as_slice(), r.hash.as_slice(), r.seq as i64],
            )
            .unwrap();
        }
        other
            .append(&key, vec![("Q".to_owned(), check(5, "valid"))], now)
            .unwrap();
        assert!(matches!(other.check("Q", &spki).unwrap(), Integrity::Tampered(_)));
        assert_eq!(other.quarantined("Q").unwrap(), 1);
        // A fresh process (no batch verified yet) notices a forged batch signature too.
        let mut fresh = AccessStore::open(&qpath).unwrap();
        raw.execute("UPDATE access_batches SET signature = x'00'", [])
            .unwrap();
        raw.execute("DELETE FROM access_records WHERE person = 'Q'", [])
            .unwrap();
        raw.execute("DELETE FROM access_heads WHERE person = 'Q'", [])
            .unwrap();
        fresh
            .append(&key, vec![("R".to_owned(), check(9, "valid"))], now)
            .unwrap();
        assert!(matches!(
            fresh.check("R", &spki).unwrap(),
            Integrity::Intact { records: 1, .. }
        ));
    }

    #[test]
    fn forged_chains_rollbacks_and_broken_batches_are_not_extended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access-log.sqlite");
        let key = SigningKey::generate(KeyType::P384).unwrap();
        let spki = key.spki_der().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_100).unwrap();
        let mut store = AccessStore::open(&path).unwrap();
        let some = |p: &str, n: i64, from: i64| -> Vec<(String, CheckRecord)> {
            (0..n).map(|i| (p.to_owned(), check(from + i, "valid"))).collect()
        };
        store.append(&key, some("P", 3, 0), now).unwrap();
        store.append(&key, some("P", 2, 10), now).unwrap();
        store.append(&key, some("Q", 2, 20), now).unwrap();
        let raw = Connection::open(&path).unwrap();
        // Rollback: P's last two records dropped and its head pointed back at batch 1, which
        // genuinely signed the shorter log. This process remembers it signed five.
        raw.execute("DELETE FROM access_records WHERE person = 'P' AND seq > 3", [])
            .unwrap();
        let hash3: Vec<u8> = raw
            .query_row(
                "SELECT hash FROM access_records WHERE person = 'P' AND seq = 3",
                [],
                |r| r.get(0),
            )
            .unwrap();
        raw.execute(
            "UPDATE access_heads SET seq = 3, hash = ?1, batch = 1, leaf_index = ?2 WHERE person = 'P'",
            params![hash3, 0],
        )
        .unwrap();
        assert!(matches!(
            store.check("P", &spki).unwrap(),
            Integrity::Intact { records: 3, .. }
        ));
        store.append(&key, some("P", 1, 30), now).unwrap();
        assert_eq!(
            store.quarantined("P").unwrap(),
            1,
            "not extended over the rollback"
        );
        // A forged chain with its head and the verified batch's leaf rewritten to match.
        let r1 = AccessRecord::append(None, "Q", check(20, "revoked")).unwrap();
        let r2 = AccessRecord::append(Some(&r1), "Q", check(21, "valid")).unwrap();
        for r in [&r1, &r2] {
            raw.execute(
                "UPDATE access_records SET result = ?1, prev = ?2, hash = ?3 WHERE person = 'Q' AND seq = ?4",
                params![r.check.result, r.prev.as_slice(), r.hash.as_slice(), r.seq as i64],
            )
            .unwrap();
        }
        let leaf = crate::access_log::head_leaf("Q", 2, &r2.hash);
        raw.execute(
            "UPDATE access_heads SET hash = ?1 WHERE person = 'Q'",
            params![r2.hash.as_slice()],
        )
        .unwrap();
        raw.execute(
            "UPDATE access_batches SET leaves = ?1 WHERE id = (SELECT batch FROM access_heads WHERE person = 'Q')",
            params![leaf.as_slice()],
        )
        .unwrap();
        store.append(&key, some("Q", 1, 40), now).unwrap();
        assert_eq!(
            store.quarantined("Q").unwrap(),
            1,
            "not extended over the forgery"
        );
        assert!(matches!(store.check("Q", &spki).unwrap(), Integrity::Tampered(_)));
        // A fresh process finds a broken batch row: only that person's checks are held apart.
        let mut fresh = AccessStore::open(&path).unwrap();
        raw.execute(
            "UPDATE access_batches SET leaves = x'00' WHERE id = (SELECT batch FROM access_heads WHERE person = 'Q')",
            [],
        )
        .unwrap();
        let mut mixed = some("Q", 1, 50);
        mixed.extend(some("R", 1, 60));
        fresh.append(&key, mixed, now).unwrap();
        assert_eq!(fresh.quarantined("Q").unwrap(), 2);
        assert!(matches!(
            fresh.check("R", &spki).unwrap(),
            Integrity::Intact { records: 1, .. }
        ));
    }

    #[test]
    fn requeued_checks_come_first_and_are_bounded() {
        let r = Recorder::default();
        let seen = |i: u8| Seen {
            at: OffsetDateTime::UNIX_EPOCH,
            rp_id: "rp".into(),
            kind: CertKind::Signature,
            serial: vec![i],
            check: "ocsp".into(),
            purpose: None,
            result: "good".into(),
        };
        r.push(seen(2));
        assert_eq!(r.requeue(vec![seen(1)]), 0);
        let all = r.take();
        assert_eq!(all.iter().map(|s| s.serial[0]).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn the_recorder_hands_over_everything_once() {
        let r = Recorder::default();
        for i in 0..3u8 {
            r.push(Seen {
                at: OffsetDateTime::UNIX_EPOCH,
                rp_id: "rp".into(),
                kind: CertKind::Signature,
                serial: vec![i],
                check: "ocsp".into(),
                purpose: None,
                result: "good".into(),
            });
        }
        assert_eq!(r.take().len(), 3);
        assert!(r.take().is_empty());
    }
}
