//! Where access records live: `access-log.sqlite` beside the relying-party registry (or the
//! `access_log` schema of a PostgreSQL database), and the [`Recorder`] the request path hands every
//! answered check to.
//!
//! The request path only pushes what it answered (relying party, certificate, check, result) onto
//! the recorder; a background flush resolves each certificate to its holder's opaque reference,
//! appends the records to each holder's hash chain in one transaction, and signs one
//! [`SignedBatch`] over the heads of the logs it touched. So recording costs the request a mutex
//! push, and the log key signs once per flush rather than once per check.
//!
//! Several platform instances may write one access log (verifiers sharing a PostgreSQL database):
//! each writes its own *stream*, a chain per person of its own with its own signed head, so that
//! no writer extends a chain another is extending. The stream is named when the store is opened
//! (`""` for a single machine's, as before streams existed); reading a person's log reads and
//! checks every stream of theirs.
//!
//! The log key is kept apart from the records (an encrypted PEM under the authority's passphrase,
//! with its public key beside it): someone who can write the database but not use the key can
//! neither rewrite nor drop a record unnoticed. What a signed head cannot show is a whole log
//! rolled back to an earlier signed head together with its records; the person sees that as their
//! log getting shorter than the count they saw before (the portal shows it), as in Certificate
//! Transparency's gossip.
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use jpki_db::{Db, Location, SqliteOptions, params};
use jpki_model::CertKind;
use jpki_pki::{KeyType, SigningKey};
use time::OffsetDateTime;

use crate::PlatformError;
use crate::access_log::{AccessRecord, CheckRecord, SignedBatch, SignedHead, Tamper, verify};

/// The PostgreSQL schema of the access log.
pub const POSTGRES_SCHEMA: &str = "access_log";

/// SQLite schema version 1 (`IF NOT EXISTS`: logs made before versions were counted have it).
const SQLITE_V1: &str = "
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

/// SQLite schema version 2: a chain per person and writer (`stream`; the records and heads of
/// version 1 are the unnamed stream `''`), and the shared log key's table.
const SQLITE_V2: &str = "
CREATE TABLE access_records_v2 (
    person     TEXT    NOT NULL,
    stream     TEXT    NOT NULL,
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
    PRIMARY KEY (person, stream, seq)
) WITHOUT ROWID;
INSERT INTO access_records_v2 (person, stream, seq, at, rp_id, rp_name, kind, check_name, purpose, result, prev, hash)
    SELECT person, '', seq, at, rp_id, rp_name, kind, check_name, purpose, result, prev, hash FROM access_records;
DROP TABLE access_records;
ALTER TABLE access_records_v2 RENAME TO access_records;
CREATE TABLE access_heads_v2 (
    person     TEXT    NOT NULL,
    stream     TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    hash       BLOB    NOT NULL,
    batch      INTEGER NOT NULL REFERENCES access_batches (id),
    leaf_index INTEGER NOT NULL,
    PRIMARY KEY (person, stream)
) WITHOUT ROWID;
INSERT INTO access_heads_v2 (person, stream, seq, hash, batch, leaf_index)
    SELECT person, '', seq, hash, batch, leaf_index FROM access_heads;
DROP TABLE access_heads;
ALTER TABLE access_heads_v2 RENAME TO access_heads;
ALTER TABLE access_quarantine ADD COLUMN stream TEXT NOT NULL DEFAULT '';
CREATE TABLE access_log_key (
    name TEXT PRIMARY KEY,
    pem  TEXT NOT NULL
);
";

/// SQLite migrations in order; index + 1 is the schema version they produce.
const SQLITE_MIGRATIONS: &[&str] = &[SQLITE_V1, SQLITE_V2];

/// The access log of schema version 2 on PostgreSQL.
const PG_V2: &str = "
CREATE TABLE access_records (
    person     TEXT   NOT NULL,
    stream     TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    rp_id      TEXT   NOT NULL,
    rp_name    TEXT   NOT NULL,
    kind       TEXT   NOT NULL CHECK (kind IN ('sign', 'auth')),
    check_name TEXT   NOT NULL,
    purpose    TEXT   NOT NULL,
    result     TEXT   NOT NULL,
    prev       BYTEA  NOT NULL,
    hash       BYTEA  NOT NULL,
    PRIMARY KEY (person, stream, seq)
);
CREATE TABLE access_batches (
    id        BIGINT PRIMARY KEY,
    signed_at BIGINT NOT NULL,
    root      BYTEA  NOT NULL,
    key_type  TEXT   NOT NULL,
    signature BYTEA  NOT NULL,
    leaves    BYTEA  NOT NULL
);
CREATE TABLE access_quarantine (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    person     TEXT   NOT NULL,
    why        TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    rp_id      TEXT   NOT NULL,
    rp_name    TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    check_name TEXT   NOT NULL,
    purpose    TEXT   NOT NULL,
    result     TEXT   NOT NULL,
    stream     TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX access_quarantine_person ON access_quarantine (person);
CREATE TABLE access_heads (
    person     TEXT   NOT NULL,
    stream     TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    hash       BYTEA  NOT NULL,
    batch      BIGINT NOT NULL REFERENCES access_batches (id),
    leaf_index BIGINT NOT NULL,
    PRIMARY KEY (person, stream)
);
CREATE TABLE access_log_key (
    name TEXT PRIMARY KEY,
    pem  TEXT NOT NULL
);
";

/// The schema version this build writes.
const VERSION: i64 = SQLITE_MIGRATIONS.len() as i64;

/// PostgreSQL migrations: (version produced, script). Never edit a released one.
const PG_MIGRATIONS: &[(i64, &str)] = &[(2, PG_V2)];

/// Brings the access log's schema up to [`VERSION`], each migration in its own write transaction.
fn migrate(db: &Db) -> Result<(), PlatformError> {
    Ok(db.migrate(SQLITE_MIGRATIONS, PG_MIGRATIONS, VERSION)?)
}

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
    db: Db,
    /// The stream this store appends to.
    stream: String,
    /// What this process signed or verified itself, kept in memory so that the database cannot
    /// change it between flushes.
    trusted: Trusted,
}

/// Heads and batch contents this process trusts: it signed them, or it verified them once.
#[derive(Debug, Default)]
struct Trusted {
    /// person → (count, last hash) of the head of the person's chain in this store's stream.
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

/// How a person's log (one stream of it, or all together) checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// Every record is there, unmodified, up to the signed head.
    Intact {
        /// How many records.
        records: u64,
        /// The signed head (absent for a person never checked; for several streams together, the
        /// most recently signed one).
        head: Option<SignedHead>,
    },
    /// The first problem found.
    Tampered(Tamper),
}

/// One stream of a person's log with its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLog {
    /// The stream (`""`: the unnamed one).
    pub stream: String,
    /// Its records, oldest first.
    pub records: Vec<AccessRecord>,
    /// How it checked out against its signed head.
    pub integrity: Integrity,
}

const RECORD_COLUMNS: &str = "stream, seq, at, rp_id, rp_name, kind, check_name, purpose, result, prev, hash";

fn record_of(person: &str, r: &jpki_db::Row<'_>) -> Result<AccessRecord, PlatformError> {
    let seq: i64 = r.get(1)?;
    Ok(AccessRecord {
        person: person.to_owned(),
        stream: r.get(0)?,
        seq: u64::try_from(seq).unwrap_or(0),
        check: CheckRecord {
            at: time_of(r.get(2)?)?,
            rp_id: r.get(3)?,
            rp_name: r.get(4)?,
            cert_kind: kind_of(&r.get::<String>(5)?)?,
            check: r.get(6)?,
            purpose: r.get(7)?,
            result: r.get(8)?,
        },
        prev: hash32(&r.get::<Vec<u8>>(9)?)?,
        hash: hash32(&r.get::<Vec<u8>>(10)?)?,
    })
}

/// `person`'s records in `stream` from sequence number `from` on, oldest first.
fn stream_records(
    db: &Db,
    person: &str,
    stream: &str,
    from: i64,
) -> Result<Vec<AccessRecord>, PlatformError> {
    let mut out = Vec::new();
    db.for_each(
        &format!(
            "SELECT {RECORD_COLUMNS} FROM access_records WHERE person = ?1 AND stream = ?2 AND seq >= ?3 ORDER BY seq"
        ),
        params![person, stream, from],
        |r| {
            out.push(record_of(person, r)?);
            Ok::<(), PlatformError>(())
        },
    )?;
    Ok(out)
}

/// The streams `person` has records or a head in, in order.
fn streams_of(db: &Db, person: &str) -> Result<Vec<String>, PlatformError> {
    Ok(db.query_map(
        "SELECT stream FROM access_records WHERE person = ?1 \
         UNION SELECT stream FROM access_heads WHERE person = ?1 ORDER BY 1",
        params![person],
        |r| r.get(0),
    )?)
}

/// `person`'s signed head in `stream`, with its proof rebuilt from the batch.
fn stream_head(db: &Db, person: &str, stream: &str) -> Result<Option<SignedHead>, PlatformError> {
    let row: Option<HeadRow> = db.query_opt(
        "SELECT h.seq, h.hash, h.batch, h.leaf_index, b.signed_at, b.key_type, b.signature, b.leaves
         FROM access_heads h JOIN access_batches b ON b.id = h.batch WHERE h.person = ?1 AND h.stream = ?2",
        params![person, stream],
        |r| {
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
        },
    )?;
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
        stream,
        u64::try_from(seq).unwrap_or(0),
        hash32(&hash)?,
    )))
}

/// Checks `person`'s chain in `stream` against its signed head.
fn check_stream(db: &Db, person: &str, stream: &str, spki: &[u8]) -> Result<StreamLog, PlatformError> {
    let records = stream_records(db, person, stream, 0)?;
    let integrity = match stream_head(db, person, stream)? {
        None if records.is_empty() => Integrity::Intact {
            records: 0,
            head: None,
        },
        None => Integrity::Tampered(Tamper::BadHead),
        Some(head) => match verify(&records, &head, spki) {
            Ok(()) => Integrity::Intact {
                records: head.seq,
                head: Some(head),
            },
            Err(t) => Integrity::Tampered(t),
        },
    };
    Ok(StreamLog {
        stream: stream.to_owned(),
        records,
        integrity,
    })
}

impl AccessStore {
    /// Opens (creating if needed) the SQLite access log at `path`, appending to the unnamed stream.
    pub fn open(path: &Path) -> Result<Self, PlatformError> {
        Self::open_at(&Location::Sqlite(path.to_path_buf()), "")
    }

    /// Opens (creating if needed) the access log at `location`, appending to `stream` (at most 64
    /// letters, digits, `-` and `_`; `""` for a single machine's).
    pub fn open_at(location: &Location, stream: &str) -> Result<Self, PlatformError> {
        if stream.len() > 64
            || !stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(PlatformError::Input(format!(
                "access log stream {stream:?}: at most 64 letters, digits, - and _"
            )));
        }
        let db = Db::open(location, SqliteOptions::default())?;
        migrate(&db)?;
        Ok(Self {
            db,
            stream: stream.to_owned(),
            trusted: Trusted::default(),
        })
    }

    /// The stream this store appends to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The log key kept in the store (an encrypted PEM), if one was put there with
    /// [`Self::share_log_key`].
    pub fn shared_log_key(&self) -> Result<Option<String>, PlatformError> {
        Ok(self.db.query_opt(
            "SELECT pem FROM access_log_key WHERE name = 'log'",
            params![],
            |r| r.get(0),
        )?)
    }

    /// Puts `pem` (the log key, encrypted) in the store unless one is there already, so that every
    /// instance writing the store signs with one key; returns the key the store keeps.
    pub fn share_log_key(&self, pem: &str) -> Result<String, PlatformError> {
        let tx = self.db.begin_write()?;
        tx.execute(
            "INSERT INTO access_log_key (name, pem) VALUES ('log', ?1) ON CONFLICT (name) DO NOTHING",
            params![pem],
        )?;
        let kept: String = tx.query_row(
            "SELECT pem FROM access_log_key WHERE name = 'log'",
            params![],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(kept)
    }

    /// Appends `checks` (each with its holder's reference and the relying party's name) to their
    /// holders' chains in this store's stream and signs one batch over the touched heads, all in
    /// one transaction. Returns the number of records written.
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
        let stream = self.stream.clone();
        // One write transaction: no other writer between the checks and the appends.
        let tx = self.db.begin_write()?;
        // Each person's chain is extended only from where its signed head says it ends: a chain
        // changed in the database since (records edited, dropped or added, or rolled back to an
        // older head) is not extended, so the next signature never covers the change; its new
        // records wait in the quarantine.
        let mut damaged: HashMap<String, String> = HashMap::new();
        let mut looked: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (person, _) in &checks {
            if looked.insert(person.clone())
                && let Some(why) = damage(&tx, &mut self.trusted, person, &stream, &spki)?
            {
                damaged.insert(person.clone(), why);
            }
        }
        let mut last: HashMap<String, AccessRecord> = HashMap::new();
        let n = checks.len();
        for (person, check) in checks {
            if let Some(why) = damaged.get(&person) {
                tx.execute(
                    "INSERT INTO access_quarantine (person, stream, why, at, rp_id, rp_name, kind, check_name, purpose, result)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        person,
                        stream,
                        why,
                        check.at.unix_timestamp(),
                        check.rp_id,
                        check.rp_name,
                        kind_str(check.cert_kind),
                        check.check,
                        check.purpose,
                        check.result,
                    ],
                )?;
                continue;
            }
            let previous = match last.remove(&person) {
                Some(r) => Some(r),
                None => {
                    let row: Option<(i64, Vec<u8>)> = tx.query_opt(
                        "SELECT seq, hash FROM access_records WHERE person = ?1 AND stream = ?2 ORDER BY seq DESC LIMIT 1",
                        params![person, stream],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?;
                    match row {
                        // Only seq and hash of the previous record matter for appending.
                        Some((seq, hash)) => Some(AccessRecord {
                            person: person.clone(),
                            stream: stream.clone(),
                            seq: u64::try_from(seq).unwrap_or(0),
                            check: check.clone(),
                            prev: [0; 32],
                            hash: hash32(&hash)?,
                        }),
                        None => None,
                    }
                }
            };
            let record = AccessRecord::append_in(previous.as_ref(), &person, &stream, check)?;
            let c = &record.check;
            tx.execute(
                "INSERT INTO access_records (person, stream, seq, at, rp_id, rp_name, kind, check_name, purpose, result, prev, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    record.person,
                    record.stream,
                    i64::try_from(record.seq).unwrap_or(i64::MAX),
                    c.at.unix_timestamp(),
                    c.rp_id,
                    c.rp_name,
                    kind_str(c.cert_kind),
                    c.check,
                    c.purpose,
                    c.result,
                    record.prev,
                    record.hash,
                ],
            )?;
            last.insert(person, record);
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
        let batch_no: i64 = tx.query_row(
            "SELECT coalesce(max(id), 0) + 1 FROM access_batches",
            params![],
            |r| r.get(0),
        )?;
        let mut heads: Vec<(&str, &str, u64, [u8; 32])> = last
            .values()
            .map(|r| (r.person.as_str(), r.stream.as_str(), r.seq, r.hash))
            .collect();
        heads.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let batch = SignedBatch::sign(key, u64::try_from(batch_no).unwrap_or(0), &heads, now)?;
        tx.execute(
            "INSERT INTO access_batches (id, signed_at, root, key_type, signature, leaves) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                batch_no,
                now.unix_timestamp(),
                batch.root,
                batch.key_type.as_str(),
                batch.signature,
                batch.leaves.concat(),
            ],
        )?;
        for (i, (person, stream, seq, hash)) in heads.iter().enumerate() {
            tx.execute(
                "INSERT INTO access_heads (person, stream, seq, hash, batch, leaf_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (person, stream) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                     batch = excluded.batch, leaf_index = excluded.leaf_index",
                params![
                    person,
                    stream,
                    i64::try_from(*seq).unwrap_or(i64::MAX),
                    hash,
                    batch_no,
                    i64::try_from(i).unwrap_or(i64::MAX),
                ],
            )?;
        }
        tx.commit()?;
        for (person, seq, hash) in signed_heads {
            self.trusted.head(&person, seq, hash);
        }
        self.trusted.batch(batch_no, batch.leaves);
        Ok(n)
    }

    /// How many of `person`'s checks (in any stream) wait in the quarantine because their chain was
    /// found damaged.
    pub fn quarantined(&self, person: &str) -> Result<u64, PlatformError> {
        let n: i64 = self.db.query_row(
            "SELECT count(*) FROM access_quarantine WHERE person = ?1",
            params![person],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The streams `person` has records or a signed head in, in order.
    pub fn streams(&self, person: &str) -> Result<Vec<String>, PlatformError> {
        streams_of(&self.db, person)
    }

    /// `person`'s records of every stream, oldest first within each stream, streams in order.
    pub fn records(&self, person: &str) -> Result<Vec<AccessRecord>, PlatformError> {
        let mut out = Vec::new();
        self.db.for_each(
            &format!("SELECT {RECORD_COLUMNS} FROM access_records WHERE person = ?1 ORDER BY stream, seq"),
            params![person],
            |r| {
                out.push(record_of(person, r)?);
                Ok::<(), PlatformError>(())
            },
        )?;
        Ok(out)
    }

    /// `person`'s latest signed head in this store's stream, with its proof rebuilt from the batch.
    pub fn head(&self, person: &str) -> Result<Option<SignedHead>, PlatformError> {
        stream_head(&self.db, person, &self.stream)
    }

    /// Every stream of `person`'s log, each with its records, checked against its own signed
    /// head and the log key `log_key_spki`; all read in one snapshot.
    pub fn check_streams(&self, person: &str, log_key_spki: &[u8]) -> Result<Vec<StreamLog>, PlatformError> {
        let tx = self.db.begin_read()?;
        let out = streams_of(&tx, person)?
            .iter()
            .map(|stream| check_stream(&tx, person, stream, log_key_spki))
            .collect::<Result<Vec<_>, _>>()?;
        drop(tx);
        Ok(out)
    }

    /// Checks `person`'s log, every stream of it, against the signed heads and the log key
    /// `log_key_spki`: the first problem, or the number of records of all streams together.
    pub fn check(&self, person: &str, log_key_spki: &[u8]) -> Result<Integrity, PlatformError> {
        let mut total = 0u64;
        let mut latest: Option<SignedHead> = None;
        for s in self.check_streams(person, log_key_spki)? {
            match s.integrity {
                Integrity::Tampered(t) => return Ok(Integrity::Tampered(t)),
                Integrity::Intact { records, head } => {
                    total += records;
                    if let Some(h) = head
                        && latest
                            .as_ref()
                            .is_none_or(|l| (h.signed_at, h.batch) > (l.signed_at, l.batch))
                    {
                        latest = Some(h);
                    }
                }
            }
        }
        Ok(Integrity::Intact {
            records: total,
            head: latest,
        })
    }
}

/// Why `person`'s chain in `stream` may not be extended, if it may not: it no longer ends where
/// this process last signed it (nor at a signed extension of that), or (for a chain this process
/// has not seen yet) its last record is not the one its signed head names, the head is not in its
/// batch, or the batch's signature fails. A row that cannot be read is damage too (only that
/// person's checks are held apart).
fn damage(
    db: &Db,
    trusted: &mut Trusted,
    person: &str,
    stream: &str,
    spki: &[u8],
) -> Result<Option<String>, PlatformError> {
    match damage_of(db, trusted, person, stream, spki) {
        Err(PlatformError::Corrupt(why)) => Ok(Some(why)),
        other => other,
    }
}

fn damage_of(
    db: &Db,
    trusted: &mut Trusted,
    person: &str,
    stream: &str,
    spki: &[u8],
) -> Result<Option<String>, PlatformError> {
    let tail: Option<(i64, Vec<u8>)> = db.query_opt(
        "SELECT seq, hash FROM access_records WHERE person = ?1 AND stream = ?2 ORDER BY seq DESC LIMIT 1",
        params![person, stream],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // Where this process last signed or verified the chain, when the chain has grown since (another
    // process writing the same stream): the growth is accepted only as a signed, whole extension.
    let mut grown_from: Option<(i64, Vec<u8>)> = None;
    if let Some((seq, hash)) = trusted.heads.get(person) {
        let moved = || {
            Ok(Some(format!(
                "the log no longer ends at record {seq}, where the platform last signed it"
            )))
        };
        match &tail {
            Some((s, h)) if s == seq && h == hash => return Ok(None),
            Some((s, _)) if s > seq => grown_from = Some((*seq, hash.clone())),
            _ => return moved(),
        }
    }
    let head: Option<(i64, Vec<u8>, i64, i64)> = db.query_opt(
        "SELECT seq, hash, batch, leaf_index FROM access_heads WHERE person = ?1 AND stream = ?2",
        params![person, stream],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
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
        let stored = stored_batch(db, batch)?;
        if !stored.verify(spki) {
            return Ok(Some(format!("batch {batch} does not verify with the log key")));
        }
        trusted.batch(batch, stored.leaves);
    }
    let expected = crate::access_log::head_leaf(
        person,
        stream,
        u64::try_from(head_seq).unwrap_or(0),
        &hash32(&head_hash)?,
    );
    let in_batch = usize::try_from(index)
        .ok()
        .and_then(|i| trusted.batches.get(&batch)?.get(i).copied());
    if in_batch != Some(expected) {
        return Ok(Some("the signed head is not in its batch".into()));
    }
    if let Some((seq, hash)) = grown_from {
        let records = stream_records(db, person, stream, seq)?;
        let whole = records
            .first()
            .is_some_and(|r| r.hash.as_slice() == hash.as_slice())
            && records.windows(2).all(|w| {
                w[1].seq == w[0].seq + 1 && w[1].prev == w[0].hash && w[1].computed_hash() == w[1].hash
            })
            && records.last().is_some_and(|r| {
                i64::try_from(r.seq).ok() == Some(head_seq) && r.hash.as_slice() == head_hash.as_slice()
            });
        if !whole {
            return Ok(Some(format!(
                "the log no longer ends at record {seq}, where the platform last signed it"
            )));
        }
    }
    trusted.head(person, head_seq, head_hash);
    Ok(None)
}

/// Batch `id` as stored.
fn stored_batch(db: &Db, id: i64) -> Result<SignedBatch, PlatformError> {
    let (signed_at, root, key_type, signature, leaves): (i64, Vec<u8>, String, Vec<u8>, Vec<u8>) = db
        .query_opt(
            "SELECT signed_at, root, key_type, signature, leaves FROM access_batches WHERE id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?
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
    use crate::testing::{each_engine, raw};

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
        each_engine(|engine, dir| {
            let loc = engine.fresh(dir, POSTGRES_SCHEMA);
            let mut store = AccessStore::open_at(&loc, "").unwrap();
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
            let raw = raw(&loc);
            raw.execute(
                "UPDATE access_records SET result = 'revoked' WHERE person = 'P0' AND seq = 2",
                params![],
            )
            .unwrap();
            assert_eq!(
                store.check("P0", &spki).unwrap(),
                Integrity::Tampered(Tamper::Modified { seq: 2 })
            );
            raw.execute(
                "DELETE FROM access_records WHERE person = 'P1' AND seq = 2",
                params![],
            )
            .unwrap();
            assert_eq!(
                store.check("P1", &spki).unwrap(),
                Integrity::Tampered(Tamper::Missing { seq: 2 })
            );
            let last: i64 = raw
                .query_row(
                    "SELECT max(seq) FROM access_records WHERE person = 'P2'",
                    params![],
                    |r| r.get(0),
                )
                .unwrap();
            raw.execute(
                "DELETE FROM access_records WHERE person = 'P2' AND seq = ?1",
                params![last],
            )
            .unwrap();
            assert!(matches!(
                store.check("P2", &spki).unwrap(),
                Integrity::Tampered(Tamper::Truncated { .. })
            ));
            // Editing the head to match the truncation breaks its proof.
            raw.execute(
                "UPDATE access_heads SET seq = seq - 1 WHERE person = 'P2'",
                params![],
            )
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
        });
    }

    #[test]
    fn a_log_changed_in_the_database_is_not_extended_over_the_change() {
        each_engine(|engine, dir| {
            let loc = engine.fresh(dir, POSTGRES_SCHEMA);
            let mut store = AccessStore::open_at(&loc, "").unwrap();
            let key = SigningKey::generate(KeyType::P384).unwrap();
            let spki = key.spki_der().unwrap();
            let now = OffsetDateTime::from_unix_timestamp(1_790_000_100).unwrap();
            let three = |r: i64| {
                (0..3)
                    .map(|i| ("P".to_owned(), check(r * 10 + i, "valid")))
                    .collect()
            };
            store.append(&key, three(0), now).unwrap();
            let raw_p = raw(&loc);
            // Drop the last record, then let the platform record more: the truncation stays visible
            // and the new records wait in the quarantine instead of covering it.
            raw_p
                .execute("DELETE FROM access_records WHERE seq = 3", params![])
                .unwrap();
            store.append(&key, three(1), now).unwrap();
            assert!(matches!(
                store.check("P", &spki).unwrap(),
                Integrity::Tampered(Tamper::Truncated { have: 2, head: 3 })
            ));
            assert_eq!(store.quarantined("P").unwrap(), 3);
            // Rewriting a record and recomputing the chain after it is refused the same way.
            let qloc = engine.fresh(dir, "access_log_b");
            let mut other = AccessStore::open_at(&qloc, "").unwrap();
            other
                .append(
                    &key,
                    (0..2).map(|i| ("Q".to_owned(), check(i, "valid"))).collect(),
                    now,
                )
                .unwrap();
            let raw = raw(&qloc);
            let r1 = AccessRecord::append(None, "Q", check(0, "revoked")).unwrap();
            let r2 = AccessRecord::append(Some(&r1), "Q", check(1, "valid")).unwrap();
            for r in [&r1, &r2] {
                raw.execute(
                    "UPDATE access_records SET result = ?1, prev = ?2, hash = ?3 WHERE person = 'Q' AND seq = ?4",
                    params![r.check.result, r.prev, r.hash, r.seq as i64],
                )
                .unwrap();
            }
            other
                .append(&key, vec![("Q".to_owned(), check(5, "valid"))], now)
                .unwrap();
            assert!(matches!(other.check("Q", &spki).unwrap(), Integrity::Tampered(_)));
            assert_eq!(other.quarantined("Q").unwrap(), 1);
            // A fresh process (no batch verified yet) notices a forged batch signature too.
            let mut fresh = AccessStore::open_at(&qloc, "").unwrap();
            raw.execute("UPDATE access_batches SET signature = ?1", params![vec![0u8]])
                .unwrap();
            raw.execute("DELETE FROM access_records WHERE person = 'Q'", params![])
                .unwrap();
            raw.execute("DELETE FROM access_heads WHERE person = 'Q'", params![])
                .unwrap();
            fresh
                .append(&key, vec![("R".to_owned(), check(9, "valid"))], now)
                .unwrap();
            assert!(matches!(
                fresh.check("R", &spki).unwrap(),
                Integrity::Intact { records: 1, .. }
            ));
        });
    }

    #[test]
    fn forged_chains_rollbacks_and_broken_batches_are_not_extended() {
        each_engine(|engine, dir| {
            let loc = engine.fresh(dir, POSTGRES_SCHEMA);
            let key = SigningKey::generate(KeyType::P384).unwrap();
            let spki = key.spki_der().unwrap();
            let now = OffsetDateTime::from_unix_timestamp(1_790_000_100).unwrap();
            let mut store = AccessStore::open_at(&loc, "").unwrap();
            let some = |p: &str, n: i64, from: i64| -> Vec<(String, CheckRecord)> {
                (0..n).map(|i| (p.to_owned(), check(from + i, "valid"))).collect()
            };
            store.append(&key, some("P", 3, 0), now).unwrap();
            store.append(&key, some("P", 2, 10), now).unwrap();
            store.append(&key, some("Q", 2, 20), now).unwrap();
            let raw = raw(&loc);
            // Rollback: P's last two records dropped and its head pointed back at batch 1, which
            // genuinely signed the shorter log. This process remembers it signed five.
            raw.execute(
                "DELETE FROM access_records WHERE person = 'P' AND seq > 3",
                params![],
            )
            .unwrap();
            let hash3: Vec<u8> = raw
                .query_row(
                    "SELECT hash FROM access_records WHERE person = 'P' AND seq = 3",
                    params![],
                    |r| r.get(0),
                )
                .unwrap();
            raw.execute(
                "UPDATE access_heads SET seq = 3, hash = ?1, batch = 1, leaf_index = ?2 WHERE person = 'P'",
                params![hash3, 0i64],
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
                    params![r.check.result, r.prev, r.hash, r.seq as i64],
                )
                .unwrap();
            }
            let leaf = crate::access_log::head_leaf("Q", "", 2, &r2.hash);
            raw.execute(
                "UPDATE access_heads SET hash = ?1 WHERE person = 'Q'",
                params![r2.hash],
            )
            .unwrap();
            raw.execute(
                "UPDATE access_batches SET leaves = ?1 WHERE id = (SELECT batch FROM access_heads WHERE person = 'Q')",
                params![leaf],
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
            let mut fresh = AccessStore::open_at(&loc, "").unwrap();
            raw.execute(
                "UPDATE access_batches SET leaves = ?1 WHERE id = (SELECT batch FROM access_heads WHERE person = 'Q')",
                params![vec![0u8]],
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
        });
    }

    /// Two writers (verifiers sharing one database) each keep a chain per person of their own;
    /// reading the person's log checks every chain against its own head, and tampering with one
    /// is named without hiding the other.
    #[test]
    fn writers_keep_streams_of_their_own_and_each_is_checked() {
        each_engine(|engine, dir| {
            let loc = engine.fresh(dir, POSTGRES_SCHEMA);
            let key = SigningKey::generate(KeyType::P384).unwrap();
            let spki = key.spki_der().unwrap();
            let now = OffsetDateTime::from_unix_timestamp(1_790_000_100).unwrap();
            let mut a = AccessStore::open_at(&loc, "aaaa").unwrap();
            let mut b = AccessStore::open_at(&loc, "bbbb").unwrap();
            let mut plain = AccessStore::open_at(&loc, "").unwrap();
            assert!(AccessStore::open_at(&loc, "no spaces").is_err());
            for round in 0..3 {
                a.append(&key, vec![("P".to_owned(), check(round, "valid"))], now)
                    .unwrap();
                b.append(&key, vec![("P".to_owned(), check(10 + round, "good"))], now)
                    .unwrap();
            }
            plain
                .append(&key, vec![("P".to_owned(), check(20, "valid"))], now)
                .unwrap();
            // Nothing was held apart: the writers never extend each other's chains.
            assert_eq!(a.quarantined("P").unwrap(), 0);
            let streams = a.check_streams("P", &spki).unwrap();
            assert_eq!(
                streams.iter().map(|s| s.stream.as_str()).collect::<Vec<_>>(),
                ["", "aaaa", "bbbb"]
            );
            for s in &streams {
                assert!(matches!(s.integrity, Integrity::Intact { .. }), "{s:?}");
                assert!(s.records.iter().all(|r| r.stream == s.stream));
            }
            assert!(matches!(
                plain.check("P", &spki).unwrap(),
                Integrity::Intact { records: 7, .. }
            ));
            assert_eq!(b.records("P").unwrap().len(), 7);
            assert_eq!(a.head("P").unwrap().unwrap().stream, "aaaa");
            // A record moved from one stream to another is found.
            let raw = raw(&loc);
            raw.execute(
                "UPDATE access_records SET stream = 'aaaa', seq = 4 WHERE stream = 'bbbb' AND seq = 3",
                params![],
            )
            .unwrap();
            let streams = plain.check_streams("P", &spki).unwrap();
            assert!(matches!(
                streams[1].integrity,
                Integrity::Tampered(Tamper::Modified { seq: 4 })
            ));
            assert!(matches!(
                streams[2].integrity,
                Integrity::Tampered(Tamper::Truncated { have: 2, head: 3 })
            ));
            assert!(matches!(streams[0].integrity, Integrity::Intact { .. }));
            assert!(matches!(plain.check("P", &spki).unwrap(), Integrity::Tampered(_)));
        });
    }

    /// Two processes writing the same stream (two verifiers on one data directory): each accepts
    /// the other's signed extension of a chain, and still refuses a rollback.
    #[test]
    fn a_stream_grown_by_another_process_is_extended_only_when_whole() {
        each_engine(|engine, dir| {
            let loc = engine.fresh(dir, POSTGRES_SCHEMA);
            let key = SigningKey::generate(KeyType::P384).unwrap();
            let spki = key.spki_der().unwrap();
            let now = OffsetDateTime::from_unix_timestamp(1_790_000_100).unwrap();
            let mut one = AccessStore::open_at(&loc, "same").unwrap();
            let mut two = AccessStore::open_at(&loc, "same").unwrap();
            for i in 0..3 {
                one.append(&key, vec![("P".to_owned(), check(i, "valid"))], now)
                    .unwrap();
                two.append(&key, vec![("P".to_owned(), check(10 + i, "valid"))], now)
                    .unwrap();
            }
            assert_eq!(one.quarantined("P").unwrap(), 0);
            assert!(matches!(
                one.check("P", &spki).unwrap(),
                Integrity::Intact { records: 6, .. }
            ));
            // A forged extension (records past the head one process trusts, unsigned) is refused.
            let forged = AccessRecord::append_in(
                Some(&one.records("P").unwrap()[5]),
                "P",
                "same",
                check(30, "revoked"),
            )
            .unwrap();
            raw(&loc)
                .execute(
                    "INSERT INTO access_records (person, stream, seq, at, rp_id, rp_name, kind, check_name, purpose, result, prev, hash)
                     VALUES ('P', 'same', 7, 0, 'rp', 'rp', 'auth', 'validity', '', 'revoked', ?1, ?2)",
                    params![forged.prev, forged.hash],
                )
                .unwrap();
            one.append(&key, vec![("P".to_owned(), check(40, "valid"))], now)
                .unwrap();
            assert_eq!(one.quarantined("P").unwrap(), 1);
        });
    }

    #[test]
    fn the_log_key_is_shared_once() {
        each_engine(|engine, dir| {
            let loc = engine.fresh(dir, POSTGRES_SCHEMA);
            let a = AccessStore::open_at(&loc, "a").unwrap();
            let b = AccessStore::open_at(&loc, "b").unwrap();
            assert_eq!(a.shared_log_key().unwrap(), None);
            assert_eq!(a.share_log_key("first").unwrap(), "first");
            assert_eq!(b.share_log_key("second").unwrap(), "first");
            assert_eq!(b.shared_log_key().unwrap().as_deref(), Some("first"));
        });
    }

    /// An access log written before streams (schema without versions) is migrated: its records
    /// become the unnamed stream and keep verifying, and new ones chain onto them.
    #[test]
    fn a_log_from_before_streams_keeps_verifying() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access-log.sqlite");
        let key = SigningKey::generate(KeyType::P384).unwrap();
        let spki = key.spki_der().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_100).unwrap();
        {
            // As the previous release wrote it: version 0, records keyed by person.
            let db = Db::open_sqlite(&path, SqliteOptions::default()).unwrap();
            db.batch(SQLITE_V1).unwrap();
            let r1 = AccessRecord::append(None, "P", check(0, "valid")).unwrap();
            let r2 = AccessRecord::append(Some(&r1), "P", check(1, "valid")).unwrap();
            for r in [&r1, &r2] {
                db.execute(
                    "INSERT INTO access_records (person, seq, at, rp_id, rp_name, kind, check_name, purpose, result, prev, hash)
                     VALUES ('P', ?1, ?2, ?3, ?4, 'auth', ?5, ?6, ?7, ?8, ?9)",
                    params![
                        r.seq as i64,
                        r.check.at.unix_timestamp(),
                        r.check.rp_id,
                        r.check.rp_name,
                        r.check.check,
                        r.check.purpose,
                        r.check.result,
                        r.prev,
                        r.hash
                    ],
                )
                .unwrap();
            }
            let batch = SignedBatch::sign(&key, 1, &[("P", "", 2, r2.hash)], now).unwrap();
            db.execute(
                "INSERT INTO access_batches (id, signed_at, root, key_type, signature, leaves) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                params![
                    now.unix_timestamp(),
                    batch.root,
                    batch.key_type.as_str(),
                    batch.signature,
                    batch.leaves.concat()
                ],
            )
            .unwrap();
            db.execute(
                "INSERT INTO access_heads (person, seq, hash, batch, leaf_index) VALUES ('P', 2, ?1, 1, 0)",
                params![r2.hash],
            )
            .unwrap();
        }
        let mut store = AccessStore::open(&path).unwrap();
        assert_eq!(store.db.schema_version().unwrap(), VERSION);
        assert!(matches!(
            store.check("P", &spki).unwrap(),
            Integrity::Intact { records: 2, .. }
        ));
        store
            .append(&key, vec![("P".to_owned(), check(2, "valid"))], now)
            .unwrap();
        assert_eq!(store.quarantined("P").unwrap(), 0);
        let log = store.check_streams("P", &spki).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].stream, "");
        assert!(matches!(log[0].integrity, Integrity::Intact { records: 3, .. }));
        drop(store);
        // A newer schema is refused.
        Db::open_sqlite(&path, SqliteOptions::default())
            .unwrap()
            .set_schema_version(VERSION + 1)
            .unwrap();
        let e = AccessStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("upgrade jpki"), "{e}");
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
