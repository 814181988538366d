//! Backup and restore of an authority: the registry (every table, engine-neutral, so a SQLite
//! registry restores into PostgreSQL and back), the key files (CA keys, card-data key, service
//! keys: already encrypted under the passphrase), and whatever other files the caller adds (the
//! platform's stores). The per-person secrets behind pairwise identifiers are registry rows: a
//! restore keeps every identifier.
//!
//! The backup file is encrypted as a whole with AES-256-GCM under a key derived from the authority
//! passphrase (PBKDF2-HMAC-SHA256), in 1 MiB chunks each sealed with its own nonce (a random
//! prefix, the chunk counter, and a flag on the last chunk), so it streams in constant memory and
//! a cut-off, reordered or altered file is refused. Format:
//! `JPKIBAK1 ‖ salt[16] ‖ iterations[u32] ‖ prefix[7] ‖ (len[u32] ‖ sealed chunk)*`.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use jpki_db::{Backend, Db, Location, Param, Value, ValueRef, params};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::authority::{Authority, KEY_DIR, random};
use crate::store::{self, DATABASE_FILE, REGISTRY_FILE, REGISTRY_SCHEMA};
use crate::{AuthorityError, schema, write_atomically};

const MAGIC: &[u8; 8] = b"JPKIBAK1";
/// How far a restore moves the CRL counters on (more CRLs than anyone publishes between a backup
/// and its restore).
const CRL_NUMBER_GAP: i64 = 1 << 20;
const CHUNK: usize = 1 << 20;
const ITERATIONS: u32 = 600_000;

/// What a backup holds, as its first record says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupHeader {
    /// The format (2).
    pub format: u32,
    /// The registry schema version of the rows.
    pub schema_version: i64,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// The stores (`registry` first, then the ones the caller added) and their rows per table.
    pub stores: Vec<StoreSummary>,
    /// Files, by path relative to the data directory.
    pub files: Vec<String>,
}

/// One store of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreSummary {
    /// Its name (`registry`, `platform`, `access_log`).
    pub name: String,
    /// Its schema version.
    pub schema_version: i64,
    /// Rows per table, in the order they are restored.
    pub tables: Vec<(String, u64)>,
}

impl BackupHeader {
    /// Registry and store rows in all.
    pub fn rows(&self) -> u64 {
        self.stores
            .iter()
            .flat_map(|s| s.tables.iter().map(|(_, n)| n))
            .sum()
    }
}

/// The registry's store name in a backup.
pub const REGISTRY_STORE: &str = "registry";

// ----- the encrypted stream --------------------------------------------------------------------

fn derive(passphrase: &[u8], salt: &[u8], iterations: u32) -> Result<LessSafeKey, AuthorityError> {
    let mut key = Zeroizing::new([0u8; 32]);
    let rounds = std::num::NonZeroU32::new(iterations)
        .ok_or_else(|| AuthorityError::State("backup: zero KDF iterations".into()))?;
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        passphrase,
        &mut *key,
    );
    let unbound = UnboundKey::new(&AES_256_GCM, &*key)
        .map_err(|_| AuthorityError::State("backup: cannot make the AES key".into()))?;
    Ok(LessSafeKey::new(unbound))
}

fn nonce(prefix: &[u8; 7], counter: u32, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

struct Sealer<W: Write> {
    out: W,
    key: LessSafeKey,
    prefix: [u8; 7],
    counter: u32,
    buf: Zeroizing<Vec<u8>>,
}

impl<W: Write> Sealer<W> {
    fn new(mut out: W, passphrase: &[u8]) -> Result<Self, AuthorityError> {
        let salt: [u8; 16] = random()?;
        let prefix: [u8; 7] = random()?;
        out.write_all(MAGIC).map_err(io)?;
        out.write_all(&salt).map_err(io)?;
        out.write_all(&ITERATIONS.to_be_bytes()).map_err(io)?;
        out.write_all(&prefix).map_err(io)?;
        Ok(Self {
            out,
            key: derive(passphrase, &salt, ITERATIONS)?,
            prefix,
            counter: 0,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK)),
        })
    }

    fn seal(&mut self, last: bool) -> Result<(), AuthorityError> {
        let take = self.buf.len().min(CHUNK);
        let mut chunk: Vec<u8> = self.buf.drain(..take).collect();
        self.key
            .seal_in_place_append_tag(nonce(&self.prefix, self.counter, last), Aad::empty(), &mut chunk)
            .map_err(|_| AuthorityError::State("backup: encryption failed".into()))?;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| AuthorityError::State("backup: too large".into()))?;
        let len = u32::try_from(chunk.len()).map_err(|_| AuthorityError::State("backup: chunk".into()))?;
        self.out.write_all(&len.to_be_bytes()).map_err(io)?;
        self.out.write_all(&chunk).map_err(io)?;
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), AuthorityError> {
        self.buf.extend_from_slice(bytes);
        while self.buf.len() > CHUNK {
            self.seal(false)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<W, AuthorityError> {
        self.seal(true)?;
        self.out.flush().map_err(io)?;
        Ok(self.out)
    }
}

struct Opener<R: Read> {
    inp: R,
    key: LessSafeKey,
    prefix: [u8; 7],
    counter: u32,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    done: bool,
}

impl<R: Read> Opener<R> {
    fn new(mut inp: R, passphrase: &[u8]) -> Result<Self, AuthorityError> {
        let mut head = [0u8; 8 + 16 + 4 + 7];
        inp.read_exact(&mut head)
            .map_err(|_| AuthorityError::State("backup: not a jpki backup (too short)".into()))?;
        if &head[..8] != MAGIC {
            return Err(AuthorityError::State(
                "backup: not a jpki backup (bad magic)".into(),
            ));
        }
        let iterations = u32::from_be_bytes([head[24], head[25], head[26], head[27]]);
        if !(1_000..=10_000_000).contains(&iterations) {
            return Err(AuthorityError::State(format!(
                "backup: implausible KDF iterations {iterations}"
            )));
        }
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&head[28..35]);
        Ok(Self {
            key: derive(passphrase, &head[8..24], iterations)?,
            inp,
            prefix,
            counter: 0,
            plain: Zeroizing::new(Vec::new()),
            pos: 0,
            done: false,
        })
    }

    fn next_chunk(&mut self) -> Result<bool, AuthorityError> {
        if self.done {
            return Ok(false);
        }
        let mut len = [0u8; 4];
        self.inp
            .read_exact(&mut len)
            .map_err(|_| AuthorityError::State("backup: cut off (the last chunk is missing)".into()))?;
        let len = u32::from_be_bytes(len) as usize;
        if !(16..=CHUNK + 16).contains(&len) {
            return Err(AuthorityError::State("backup: damaged (bad chunk length)".into()));
        }
        let mut sealed = vec![0u8; len];
        self.inp
            .read_exact(&mut sealed)
            .map_err(|_| AuthorityError::State("backup: cut off inside a chunk".into()))?;
        // The last chunk says so in its nonce: try it as a middle chunk first.
        let mut attempt = sealed.clone();
        let plain = match self.key.open_in_place(
            nonce(&self.prefix, self.counter, false),
            Aad::empty(),
            &mut attempt,
        ) {
            Ok(p) => p.to_vec(),
            Err(_) => {
                let p = self
                    .key
                    .open_in_place(nonce(&self.prefix, self.counter, true), Aad::empty(), &mut sealed)
                    .map_err(|_| {
                        AuthorityError::State("backup: wrong passphrase, or the file was altered".into())
                    })?;
                self.done = true;
                p.to_vec()
            }
        };
        self.counter += 1;
        self.plain = Zeroizing::new(plain);
        self.pos = 0;
        if self.done {
            let mut rest = [0u8; 1];
            if self.inp.read(&mut rest).map_err(io)? != 0 {
                return Err(AuthorityError::State("backup: data after the last chunk".into()));
            }
        }
        Ok(true)
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, AuthorityError> {
        let mut out = Vec::with_capacity(n.min(CHUNK));
        while out.len() < n {
            if self.pos == self.plain.len() && !self.next_chunk()? {
                return Err(AuthorityError::State(
                    "backup: ends in the middle of a record".into(),
                ));
            }
            let k = (n - out.len()).min(self.plain.len() - self.pos);
            out.extend_from_slice(&self.plain[self.pos..self.pos + k]);
            self.pos += k;
        }
        Ok(out)
    }

    fn at_end(&mut self) -> Result<bool, AuthorityError> {
        while self.pos == self.plain.len() {
            if !self.next_chunk()? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(io)`
fn io(e: std::io::Error) -> AuthorityError {
    AuthorityError::State(format!("backup: {e}"))
}

// ----- records ---------------------------------------------------------------------------------

const REC_HEADER: u8 = 1;
const REC_TABLE: u8 = 2;
const REC_ROW: u8 = 3;
const REC_FILE: u8 = 4;
const REC_END: u8 = 5;
const REC_STORE: u8 = 6;

/// A table record: which table and its columns.
#[derive(Serialize, Deserialize)]
struct TableRecord {
    table: String,
    columns: Vec<String>,
}

fn record<W: Write>(s: &mut Sealer<W>, kind: u8, body: &[u8]) -> Result<(), AuthorityError> {
    let len =
        u32::try_from(body.len()).map_err(|_| AuthorityError::State("backup: record too large".into()))?;
    s.put(&[kind])?;
    s.put(&len.to_be_bytes())?;
    s.put(body)
}

fn encode_value(out: &mut Vec<u8>, v: ValueRef<'_>) -> Result<(), AuthorityError> {
    match v {
        ValueRef::Null => out.push(0),
        ValueRef::Int(n) => {
            out.push(1);
            out.extend_from_slice(&n.to_be_bytes());
        }
        ValueRef::Text(t) => {
            out.push(2);
            out.extend_from_slice(&(t.len() as u64).to_be_bytes());
            out.extend_from_slice(t.as_bytes());
        }
        ValueRef::Blob(b) => {
            out.push(3);
            out.extend_from_slice(&(b.len() as u64).to_be_bytes());
            out.extend_from_slice(b);
        }
        other => {
            return Err(AuthorityError::Corrupt(format!(
                "backup: a column of {}",
                other.type_name()
            )));
        }
    }
    Ok(())
}

fn decode_values(mut b: &[u8]) -> Result<Vec<Value>, AuthorityError> {
    let bad = || AuthorityError::State("backup: damaged row".into());
    let mut out = Vec::new();
    while let Some((&tag, rest)) = b.split_first() {
        b = rest;
        let v = match tag {
            0 => Value::Null,
            1 => {
                let (n, rest) = b.split_first_chunk::<8>().ok_or_else(bad)?;
                b = rest;
                Value::Int(i64::from_be_bytes(*n))
            }
            2 | 3 => {
                let (n, rest) = b.split_first_chunk::<8>().ok_or_else(bad)?;
                let n = usize::try_from(u64::from_be_bytes(*n)).map_err(|_| bad())?;
                if rest.len() < n {
                    return Err(bad());
                }
                let (bytes, rest) = rest.split_at(n);
                b = rest;
                if tag == 2 {
                    Value::Text(String::from_utf8(bytes.to_vec()).map_err(|_| bad())?)
                } else {
                    Value::Blob(bytes.to_vec())
                }
            }
            _ => return Err(bad()),
        };
        out.push(v);
    }
    Ok(out)
}

/// Files of the data directory a backup carries: the key files and the public card-data
/// certificate. Not the registry (its rows are in the backup), not the passphrase, not `public/`
/// (republished after a restore).
fn key_files(dir: &Path) -> Result<Vec<PathBuf>, AuthorityError> {
    let mut out = vec![PathBuf::from(crate::CARD_DATA_CVC)];
    let keys = dir.join(KEY_DIR);
    let mut names: Vec<PathBuf> = std::fs::read_dir(&keys)
        .map_err(AuthorityError::io(&keys))?
        .filter_map(Result::ok)
        .map(|e| PathBuf::from(KEY_DIR).join(e.file_name()))
        .collect();
    names.sort();
    out.extend(names);
    Ok(out)
}

impl Authority {
    /// Writes an encrypted backup of this authority to `out`: every registry table, the key files,
    /// the `stores` the caller adds (name, connection: every table of each) and `extra` files
    /// (path relative to the data directory, contents). Each store is read in one snapshot.
    pub fn backup(
        &self,
        out: &Path,
        passphrase: &[u8],
        stores: &[(&str, &Db)],
        extra: &[(String, Vec<u8>)],
    ) -> Result<BackupHeader, AuthorityError> {
        let registry = self.connection();
        let all: Vec<(&str, &Db)> = std::iter::once((REGISTRY_STORE, registry))
            .chain(stores.iter().copied())
            .collect();
        let txs = all
            .iter()
            .map(|(_, db)| db.begin_read())
            .collect::<Result<Vec<_>, _>>()?;
        let mut summaries = Vec::new();
        let mut layouts = Vec::new();
        for ((name, _), tx) in all.iter().zip(&txs) {
            let tables = tx.tables()?;
            let mut counts = Vec::new();
            for t in &tables {
                let n: i64 = tx.query_row(&format!("SELECT COUNT(*) FROM {}", t.name), params![], |r| {
                    r.get(0)
                })?;
                counts.push((t.name.clone(), u64::try_from(n).unwrap_or(0)));
            }
            summaries.push(StoreSummary {
                name: (*name).to_owned(),
                schema_version: tx.schema_version()?,
                tables: counts,
            });
            layouts.push(tables);
        }
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for rel in key_files(self.dir())? {
            let path = self.dir().join(&rel);
            let bytes = std::fs::read(&path).map_err(AuthorityError::io(&path))?;
            files.push((rel.to_string_lossy().into_owned(), bytes));
        }
        files.extend(extra.iter().cloned());
        let header = BackupHeader {
            format: 2,
            schema_version: summaries[0].schema_version,
            created_at: self
                .now()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            stores: summaries,
            files: files.iter().map(|(p, _)| p.clone()).collect(),
        };
        let tmp = out.with_extension("partial");
        let file = std::fs::File::create(&tmp).map_err(AuthorityError::io(&tmp))?;
        let mut s = Sealer::new(std::io::BufWriter::new(file), passphrase)?;
        let head = serde_json::to_vec(&header).map_err(|e| AuthorityError::State(format!("backup: {e}")))?;
        record(&mut s, REC_HEADER, &head)?;
        for (((name, _), tx), tables) in all.iter().zip(&txs).zip(&layouts) {
            record(&mut s, REC_STORE, name.as_bytes())?;
            for t in tables {
                let rec = TableRecord {
                    table: t.name.clone(),
                    columns: t.columns.clone(),
                };
                let body =
                    serde_json::to_vec(&rec).map_err(|e| AuthorityError::State(format!("backup: {e}")))?;
                record(&mut s, REC_TABLE, &body)?;
                let width = t.columns.len();
                tx.for_each(
                    &format!("SELECT {} FROM {}", t.columns.join(", "), t.name),
                    params![],
                    |r| {
                        let mut row = Vec::new();
                        for i in 0..width {
                            encode_value(&mut row, r.value(i)?)?;
                        }
                        record(&mut s, REC_ROW, &row)
                    },
                )?;
            }
        }
        for (path, bytes) in &files {
            let mut body = Vec::with_capacity(path.len() + 8 + bytes.len());
            body.extend_from_slice(&(path.len() as u64).to_be_bytes());
            body.extend_from_slice(path.as_bytes());
            body.extend_from_slice(bytes);
            record(&mut s, REC_FILE, &body)?;
        }
        record(&mut s, REC_END, &[])?;
        let w = s.finish()?;
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(AuthorityError::io(&tmp))?;
        drop(file);
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(AuthorityError::io(&tmp))?;
        std::fs::rename(&tmp, out).map_err(AuthorityError::io(out))?;
        for tx in txs {
            tx.commit()?;
        }
        Ok(header)
    }

    /// Restores the backup `from` into the empty (or missing) data directory `dir`: its registry in
    /// SQLite or, with `database`, in that PostgreSQL database (which must not hold a registry
    /// yet). Every other store of the backup is copied into the connection `open_store` gives for
    /// its name and the new registry's location (with the store's schema made, empty); files are
    /// written into `dir`. Nothing is left behind when it fails.
    pub fn restore(
        dir: &Path,
        from: &Path,
        passphrase: &[u8],
        database: Option<&str>,
        open_store: &mut dyn FnMut(&str, &Location) -> Result<Db, AuthorityError>,
    ) -> Result<BackupHeader, AuthorityError> {
        if dir.exists()
            && std::fs::read_dir(dir)
                .map_err(AuthorityError::io(dir))?
                .next()
                .is_some()
        {
            return Err(AuthorityError::State(format!(
                "restore: {} is not empty; restore into a new data directory",
                dir.display()
            )));
        }
        let existed = dir.exists();
        let mut claimed = false;
        let result = Self::restore_into(dir, from, passphrase, database, open_store, &mut claimed);
        if result.is_err() {
            // A PostgreSQL registry this restore found empty and may have filled: its schemas go.
            if let (true, Some(url)) = (claimed, database)
                && let Ok(db) = Db::connect_postgres(url, REGISTRY_SCHEMA)
            {
                let _ = db.batch(
                    "DROP SCHEMA IF EXISTS registry CASCADE; DROP SCHEMA IF EXISTS platform CASCADE; \
                     DROP SCHEMA IF EXISTS access_log CASCADE",
                );
            }
            // Nothing half-written: the directory goes back to how it was (empty or absent).
            if existed {
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for e in entries.flatten() {
                        let p = e.path();
                        let _ = if p.is_dir() {
                            std::fs::remove_dir_all(&p)
                        } else {
                            std::fs::remove_file(&p)
                        };
                    }
                }
            } else {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        result
    }

    fn restore_into(
        dir: &Path,
        from: &Path,
        passphrase: &[u8],
        database: Option<&str>,
        open_store: &mut dyn FnMut(&str, &Location) -> Result<Db, AuthorityError>,
        claimed: &mut bool,
    ) -> Result<BackupHeader, AuthorityError> {
        let file = std::fs::File::open(from).map_err(AuthorityError::io(from))?;
        let mut o = Opener::new(std::io::BufReader::new(file), passphrase)?;
        let read_record = |o: &mut Opener<_>| -> Result<(u8, Vec<u8>), AuthorityError> {
            let head = o.take(5)?;
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            Ok((head[0], o.take(len)?))
        };
        let damaged = |what: &str| AuthorityError::State(format!("backup: damaged ({what})"));
        let (kind, body) = read_record(&mut o)?;
        if kind != REC_HEADER {
            return Err(damaged("no header"));
        }
        let header: BackupHeader = serde_json::from_slice(&body)
            .map_err(|e| AuthorityError::State(format!("backup header: {e}")))?;
        if header.format != 2 {
            return Err(AuthorityError::State(format!(
                "backup: format {} is not one this jpki reads",
                header.format
            )));
        }
        if header.schema_version != schema::VERSION {
            return Err(AuthorityError::State(format!(
                "backup: registry schema version {} but this jpki writes {}; restore with the jpki that made it",
                header.schema_version,
                schema::VERSION
            )));
        }
        std::fs::create_dir_all(dir).map_err(AuthorityError::io(dir))?;
        let location = match database {
            Some(url) if Location::is_postgres_url(url) => Location::Postgres {
                url: url.to_owned(),
                schema: REGISTRY_SCHEMA.to_owned(),
            },
            Some(other) => {
                return Err(AuthorityError::State(format!(
                    "--db {}: expected a postgres:// URL",
                    jpki_db::redact_url(other)
                )));
            }
            None => Location::Sqlite(dir.join(REGISTRY_FILE)),
        };
        let registry = store::open(&location, true)?;
        let existing: i64 = registry.query_row("SELECT COUNT(*) FROM settings", params![], |r| r.get(0))?;
        if existing > 0 {
            return Err(AuthorityError::AlreadyInitialised(location.redacted()));
        }
        *claimed = true;
        // Each store in one transaction, all committed only once the whole backup has been read
        // and checked (a failure drops the connections: their transactions roll back).
        let mut stores: Vec<(String, Db)> = Vec::new();
        let mut counts: std::collections::HashMap<(String, String), u64> = std::collections::HashMap::new();
        let mut insert: Option<(String, String)> = None;
        let mut files = Vec::new();
        let mut registry = Some(registry);
        loop {
            let (kind, body) = read_record(&mut o)?;
            match kind {
                REC_STORE => {
                    let name = String::from_utf8(body).map_err(|_| damaged("store name"))?;
                    let db = if name == REGISTRY_STORE {
                        registry.take().ok_or_else(|| damaged("the registry twice"))?
                    } else {
                        open_store(&name, &location)?
                    };
                    // The write lock for the whole store; committed by `finish`.
                    db.batch(match db.backend() {
                        Backend::Sqlite => "BEGIN IMMEDIATE",
                        Backend::Postgres => "BEGIN",
                    })?;
                    if stores.iter().any(|(n, _)| *n == name) {
                        return Err(damaged("a store twice"));
                    }
                    stores.push((name, db));
                    insert = None;
                }
                REC_TABLE => {
                    let rec: TableRecord =
                        serde_json::from_slice(&body).map_err(|_| damaged("table record"))?;
                    let ok =
                        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !ok(&rec.table) || !rec.columns.iter().all(|c| ok(c)) {
                        return Err(damaged("table or column name"));
                    }
                    let marks: Vec<String> = (1..=rec.columns.len()).map(|i| format!("?{i}")).collect();
                    insert = Some((
                        rec.table.clone(),
                        format!(
                            "INSERT INTO {} ({}) VALUES ({})",
                            rec.table,
                            rec.columns.join(", "),
                            marks.join(", ")
                        ),
                    ));
                }
                REC_ROW => {
                    let (Some((name, db)), Some((table, sql))) = (stores.last(), &insert) else {
                        return Err(damaged("a row before its table"));
                    };
                    let values = decode_values(&body)?;
                    let refs: Vec<&dyn Param> = values.iter().map(|v| v as &dyn Param).collect();
                    db.execute(sql, &refs)?;
                    *counts.entry((name.clone(), table.clone())).or_default() += 1;
                }
                REC_FILE => {
                    let (n, rest) = body
                        .split_first_chunk::<8>()
                        .ok_or_else(|| damaged("file record"))?;
                    let n = usize::try_from(u64::from_be_bytes(*n)).unwrap_or(usize::MAX);
                    if rest.len() < n {
                        return Err(damaged("file record"));
                    }
                    let (path, bytes) = rest.split_at(n);
                    let path = String::from_utf8(path.to_vec()).map_err(|_| damaged("file name"))?;
                    let rel = Path::new(&path);
                    if rel.is_absolute()
                        || rel
                            .components()
                            .any(|c| !matches!(c, std::path::Component::Normal(_)))
                    {
                        return Err(AuthorityError::State(format!(
                            "backup: refusing file path {path:?}"
                        )));
                    }
                    files.push((path, bytes.to_vec()));
                }
                REC_END => break,
                _ => return Err(damaged("unknown record")),
            }
        }
        if !o.at_end()? {
            return Err(damaged("data after the end record"));
        }
        for s in &header.stores {
            for (t, n) in &s.tables {
                if counts.get(&(s.name.clone(), t.clone())).copied().unwrap_or(0) != *n {
                    return Err(AuthorityError::State(format!(
                        "backup: table {t} of {} incomplete",
                        s.name
                    )));
                }
            }
        }
        if !stores.iter().any(|(n, _)| n == REGISTRY_STORE) {
            return Err(damaged("no registry"));
        }
        // CRLs published after the backup was made carried numbers above the restored counters:
        // jump past them, so no number is ever used twice for different contents.
        if let Some((_, db)) = stores.iter().find(|(n, _)| n == REGISTRY_STORE) {
            db.execute(
                "UPDATE crl_counters SET last_number = last_number + ?1",
                params![CRL_NUMBER_GAP],
            )?;
        }
        // Everything read and checked: now the stores commit.
        for (_, db) in &stores {
            db.reset_identities()?;
        }
        for (_, db) in &stores {
            db.batch("COMMIT")?;
        }
        drop(stores);
        for (path, bytes) in &files {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(AuthorityError::io(parent))?;
            }
            let mode = if path.ends_with(".cvc") || path.ends_with(".pub.pem") {
                0o644
            } else {
                0o600
            };
            write_atomically(&target, bytes, mode)?;
        }
        if let Location::Postgres { url, .. } = &location {
            write_atomically(&dir.join(DATABASE_FILE), format!("{url}\n").as_bytes(), 0o600)?;
        }
        let mut a = Self::open(dir)?;
        let problems = a.check()?;
        if !problems.is_empty() {
            return Err(AuthorityError::Corrupt(format!(
                "restored registry: {}",
                problems.join("; ")
            )));
        }
        a.record_action("restore", &format!("from a backup made {}", header.created_at))?;
        Ok(header)
    }
}
