//! One storage interface over two engines: SQLite, embedded (the default: one file per store), and
//! PostgreSQL (`postgres://…`: for deployments that outgrow one machine, with verifiers on other
//! hosts sharing the database).
//!
//! Stores write their SQL once, portable to both engines and to PostgreSQL-wire distributed engines:
//! parameters are written `?1`, `?2` … (rewritten to `$1`, `$2` … for PostgreSQL), integers are
//! 64-bit, byte strings are `BLOB` / `BYTEA`, no engine-specific functions. Only the schema DDL
//! differs per engine (see [`Db::backend`]).
//!
//! Transactions behave the same on both: [`Db::begin_write`] takes the store's single writer lock
//! (SQLite's `BEGIN IMMEDIATE`; on PostgreSQL a `SELECT … FOR UPDATE` on the lock row in
//! `jpki_meta`), so write transactions of every process run one after another and an id drawn in
//! one is visible before any later one commits: readers may follow a table by growing id.
//! [`Db::begin_read`] gives one consistent snapshot.
//!
//! Rows are read through [`Row::get`] into `i64`, `bool`, `String`, `Vec<u8>` and `Option`s of them;
//! a value of another type is an error naming the column, never a silent conversion.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type};

mod error;
mod value;

pub use error::DbError;
pub use value::{FromValue, Param, Value, ValueRef};

/// The two engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (one file per store).
    Sqlite,
    /// PostgreSQL (one schema per store in a shared database).
    Postgres,
}

/// Where a store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user@host:port/db?…`) and the schema to use.
    Postgres {
        /// The connection URL as given (it may carry a password: shown only through
        /// [`Location::redacted`]).
        url: String,
        /// The schema the store's tables live in.
        schema: String,
    },
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Location {
    /// Whether `s` names a PostgreSQL database (`postgres://` or `postgresql://`).
    pub fn is_postgres_url(s: &str) -> bool {
        s.starts_with("postgres://") || s.starts_with("postgresql://")
    }

    /// The location without any password, for messages and logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(p) => p.display().to_string(),
            Self::Postgres { url, schema } => format!("{} (schema {schema})", redact_url(url)),
        }
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
        }
    }
}

/// `url` with the password (if any) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // As the connection string parser reads it: the user information runs to the first `@`,
    // wherever it is (a password may hold `/`, `?` or `:`).
    let (userinfo, after) = match rest.split_once('@') {
        Some((u, a)) => (Some(u), a),
        None => (None, rest),
    };
    let (host, tail) = after.split_at(after.find(['/', '?']).unwrap_or(after.len()));
    let authority = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{u}@{host}"),
        },
        None => host.to_owned(),
    };
    let Some((path, query)) = tail.split_once('?') else {
        return format!("{scheme}://{authority}{tail}");
    };
    let query = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{path}?{query}")
}

/// How to open a SQLite store.
#[derive(Debug, Clone, Copy)]
pub struct SqliteOptions {
    /// Create the file when missing.
    pub create: bool,
    /// Page cache in KiB (SQLite's default is 2 MiB).
    pub cache_kib: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            create: true,
            cache_kib: 2048,
        }
    }
}

/// How long a writer waits for another writer (thread or process) to finish its transaction.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// How long connecting to PostgreSQL may take before the database counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to one store. `Send` but not `Sync`: one per thread, as a SQLite connection.
pub struct Db {
    conn: Conn,
    /// Inside a transaction started by [`Db::begin_write`] or [`Db::begin_read`].
    in_tx: Cell<bool>,
    /// Rows of a query are being read (a nested query would deadlock PostgreSQL's protocol).
    reading: Cell<bool>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(RefCell<Pg>),
}

struct Pg {
    config: postgres::Config,
    schema: String,
    where_: String,
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
    /// When connecting last failed: no new attempt for [`RECONNECT_AFTER`], so that callers
    /// learn at once that the database is down instead of each waiting for a connect timeout.
    failed_at: Option<Instant>,
}

/// How long after a failed connection attempt the next one is made.
pub const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// The table every PostgreSQL store gets: the writer lock row and the schema version.
const PG_META: &str = "CREATE TABLE IF NOT EXISTS jpki_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)";

impl Pg {
    fn client(&mut self, in_tx: bool) -> Result<&mut postgres::Client, DbError> {
        if self.client.as_ref().is_some_and(postgres::Client::is_closed) {
            if in_tx {
                // A new connection would run the rest of the transaction outside it.
                return Err(DbError::Unavailable(
                    self.where_.clone(),
                    "the connection was lost inside a transaction".into(),
                ));
            }
            self.client = None;
        }
        if self.client.is_none() {
            if let Some(t) = self.failed_at
                && t.elapsed() < RECONNECT_AFTER
            {
                return Err(DbError::Unavailable(
                    self.where_.clone(),
                    "the last connection attempt failed moments ago".into(),
                ));
            }
            self.statements.clear();
            let connected = self.config.connect(postgres::NoTls).and_then(|mut client| {
                let quoted = quote_ident(&self.schema);
                client
                    .batch_execute(&format!("SET TIME ZONE 'UTC'; SET search_path TO {quoted}"))
                    .map(|()| client)
            });
            match connected {
                Ok(client) => {
                    self.failed_at = None;
                    self.client = Some(client);
                }
                Err(e) => {
                    self.failed_at = Some(Instant::now());
                    return Err(DbError::from_pg(&e, &self.where_));
                }
            }
        }
        // Just filled above when it was empty.
        self.client
            .as_mut()
            .ok_or(DbError::Usage("no PostgreSQL connection"))
    }

    fn statement(&mut self, sql: &str, in_tx: bool) -> Result<postgres::Statement, DbError> {
        // Reconnect (which empties the cache) before looking in the cache: a statement prepared on
        // a lost connection does not exist on the new one.
        self.client(in_tx)?;
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let where_ = self.where_.clone();
        let st = self
            .client(in_tx)?
            .prepare(&pg_sql(sql))
            .map_err(|e| DbError::from_pg(&e, &where_))?;
        if self.statements.len() >= 256 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    fn err(&self, e: &postgres::Error) -> DbError {
        DbError::from_pg(e, &self.where_)
    }
}

/// Quotes an SQL identifier.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Rewrites `?N` and bare `?` parameters to PostgreSQL's `$N`, leaving string literals and quoted
/// identifiers alone.
pub fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut highest = 0u32;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                out.push('$');
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                // As SQLite numbers them: a bare `?` is one more than the largest so far.
                let n = digits.parse::<u32>().unwrap_or(highest + 1);
                highest = highest.max(n);
                out.push_str(&n.to_string());
            }
            None => out.push(c),
        }
    }
    out
}

/// A table as [`Db::tables`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Its name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<String>,
    /// The tables its foreign keys refer to.
    pub references: Vec<String>,
}

/// One row of a result, read by column index from 0.
pub struct Row<'r>(RowInner<'r>);

enum RowInner<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Row")
    }
}

impl Row<'_> {
    /// Column `i` as a `T`; an error naming the column when it holds another type.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, DbError> {
        let v = self.value(i)?;
        let found = v.type_name();
        T::from_value(v).ok_or(DbError::Type {
            column: i,
            expected: T::EXPECTED,
            found,
        })
    }

    /// How many columns the row has.
    pub fn len(&self) -> usize {
        match &self.0 {
            RowInner::Sqlite(r) => r.as_ref().column_count(),
            RowInner::Postgres(r) => r.len(),
        }
    }

    /// Whether the row has no column.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column `i` as it is stored (for copying rows between stores).
    pub fn value(&self, i: usize) -> Result<ValueRef<'_>, DbError> {
        match &self.0 {
            RowInner::Sqlite(r) => Ok(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => ValueRef::Null,
                rusqlite::types::ValueRef::Integer(n) => ValueRef::Int(n),
                rusqlite::types::ValueRef::Real(_) => ValueRef::Other("REAL"),
                rusqlite::types::ValueRef::Text(t) => {
                    ValueRef::Text(std::str::from_utf8(t).map_err(|_| DbError::Type {
                        column: i,
                        expected: "UTF-8 text",
                        found: "malformed text",
                    })?)
                }
                rusqlite::types::ValueRef::Blob(b) => ValueRef::Blob(b),
            }),
            RowInner::Postgres(r) => pg_value(r, i),
        }
    }
}

fn pg_value(r: &postgres::Row, i: usize) -> Result<ValueRef<'_>, DbError> {
    let column = r.columns().get(i).ok_or(DbError::Type {
        column: i,
        expected: "a column",
        found: "no such column",
    })?;
    let bad = |e: postgres::Error| DbError::Postgres {
        code: None,
        message: format!("column {i}: {e}"),
    };
    let ty = column.type_();
    Ok(if *ty == Type::INT8 {
        r.try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map_or(ValueRef::Null, ValueRef::Int)
    } else if *ty == Type::INT4 {
        r.try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map_or(ValueRef::Null, |n| ValueRef::Int(n.into()))
    } else if *ty == Type::INT2 {
        r.try_get::<_, Option<i16>>(i)
            .map_err(bad)?
            .map_or(ValueRef::Null, |n| ValueRef::Int(n.into()))
    } else if *ty == Type::BOOL {
        r.try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map_or(ValueRef::Null, |b| ValueRef::Int(b.into()))
    } else if *ty == Type::BYTEA {
        r.try_get::<_, Option<&[u8]>>(i)
            .map_err(bad)?
            .map_or(ValueRef::Null, ValueRef::Blob)
    } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
        r.try_get::<_, Option<&str>>(i)
            .map_err(bad)?
            .map_or(ValueRef::Null, ValueRef::Text)
    } else {
        ValueRef::Other("an unsupported PostgreSQL type (cast it)")
    })
}

/// A parameter as PostgreSQL binds it: converted to the type the server inferred for it.
#[derive(Debug)]
struct PgParam<'a>(ValueRef<'a>);

impl ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            ValueRef::Null => Ok(IsNull::Yes),
            ValueRef::Int(n) if *ty == Type::INT8 => n.to_sql(ty, out),
            ValueRef::Int(n) if *ty == Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
            ValueRef::Int(n) if *ty == Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
            ValueRef::Int(n) if *ty == Type::BOOL => (n != 0).to_sql(ty, out),
            ValueRef::Text(s) if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) => {
                s.to_sql(ty, out)
            }
            ValueRef::Blob(b) if *ty == Type::BYTEA => b.to_sql(ty, out),
            v => Err(format!("a parameter of type {} where {ty} is expected", v.type_name()).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

struct SqliteParam<'a>(ValueRef<'a>);

impl rusqlite::ToSql for SqliteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as V};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            ValueRef::Null => V::Null,
            ValueRef::Int(n) => V::Integer(n),
            ValueRef::Text(s) => V::Text(s.as_bytes()),
            ValueRef::Blob(b) => V::Blob(b),
            ValueRef::Other(t) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("a parameter of type {t}").into(),
                ));
            }
        }))
    }
}

/// Builds the parameter slice of a query: `params![a, b]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::Param] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::Param),+] as &[&dyn $crate::Param] };
}

impl Db {
    /// Opens (creating when asked) a SQLite store: WAL, `synchronous=FULL`, foreign keys on, and a
    /// writer that waits up to [`LOCK_WAIT`] for another, polling every 0.1–2 ms.
    pub fn open_sqlite(path: &Path, opts: SqliteOptions) -> Result<Self, DbError> {
        use rusqlite::OpenFlags;
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if opts.create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let mut conn = rusqlite::Connection::open_with_flags(path, flags)?;
        conn.busy_handler(Some(wait_for_lock()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", -i64::from(opts.cache_kib))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self::wrap(Conn::Sqlite(conn)))
    }

    /// An in-memory SQLite store (tests and scratch work).
    pub fn open_sqlite_memory() -> Result<Self, DbError> {
        let conn = rusqlite::Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Self::wrap(Conn::Sqlite(conn)))
    }

    /// Connects to PostgreSQL at `url` and uses (creating when missing) `schema`, where the store's
    /// tables live. A lost connection is made again on the next use outside a transaction.
    pub fn connect_postgres(url: &str, schema: &str) -> Result<Self, DbError> {
        let where_ = redact_url(url);
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| DbError::Location(where_.clone(), e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("jpki");
        }
        if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(DbError::Location(
                where_,
                format!("schema name {schema:?}: use letters, digits and _"),
            ));
        }
        let mut pg = Pg {
            config,
            schema: schema.to_owned(),
            where_,
            client: None,
            statements: HashMap::new(),
            failed_at: None,
        };
        let quoted = quote_ident(schema);
        let setup = format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted}; {PG_META}; \
             INSERT INTO jpki_meta (name, value) VALUES ('writer', 0) ON CONFLICT (name) DO NOTHING"
        );
        // Two processes creating the same schema at once: one loses with a duplicate-key error on
        // the catalog; the second attempt sees it made.
        let mut attempt = 0;
        loop {
            let client = pg.client(false)?;
            match client.batch_execute(&setup) {
                Ok(()) => break,
                Err(e) if attempt < 3 => {
                    let _ = e;
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(pg.err(&e)),
            }
        }
        Ok(Self::wrap(Conn::Postgres(RefCell::new(pg))))
    }

    /// Opens the store at `location` (SQLite with `sqlite` options, or PostgreSQL).
    pub fn open(location: &Location, sqlite: SqliteOptions) -> Result<Self, DbError> {
        match location {
            Location::Sqlite(path) => Self::open_sqlite(path, sqlite),
            Location::Postgres { url, schema } => Self::connect_postgres(url, schema),
        }
    }

    fn wrap(conn: Conn) -> Self {
        Self {
            conn,
            in_tx: Cell::new(false),
            reading: Cell::new(false),
        }
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        match self.conn {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    fn pg(&self) -> Result<std::cell::RefMut<'_, Pg>, DbError> {
        match &self.conn {
            Conn::Postgres(pg) => pg.try_borrow_mut().map_err(|_| DbError::Reentrant),
            Conn::Sqlite(_) => Err(DbError::Usage("not a PostgreSQL store")),
        }
    }

    fn enter(&self) -> Result<ReadGuard<'_>, DbError> {
        if self.reading.replace(true) {
            return Err(DbError::Reentrant);
        }
        Ok(ReadGuard(&self.reading))
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64, DbError> {
        let _g = self.enter()?;
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.execute(rusqlite::params_from_iter(
                    params.iter().map(|p| SqliteParam(p.value())),
                ))?;
                Ok(n as u64)
            }
            Conn::Postgres(_) => {
                let mut pg = self.pg()?;
                let st = pg.statement(sql, self.in_tx.get())?;
                let values: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.value())).collect();
                let refs: Vec<&(dyn ToSql + Sync)> =
                    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                let r = pg.client(self.in_tx.get())?.execute(&st, &refs);
                r.map_err(|e| pg.err(&e))
            }
        }
    }

    /// Runs several statements without parameters (schema changes).
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        let _g = self.enter()?;
        match &self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(_) => {
                let mut pg = self.pg()?;
                let r = pg.client(self.in_tx.get())?.batch_execute(sql);
                r.map_err(|e| pg.err(&e))
            }
        }
    }

    /// Calls `f` on every row of the query, streaming (the rows are not collected first). `f` must
    /// not use this connection.
    pub fn for_each<E: From<DbError>>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let _g = self.enter()?;
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql).map_err(DbError::from)?;
                let mut rows = st
                    .query(rusqlite::params_from_iter(
                        params.iter().map(|p| SqliteParam(p.value())),
                    ))
                    .map_err(DbError::from)?;
                while let Some(r) = rows.next().map_err(DbError::from)? {
                    f(&Row(RowInner::Sqlite(r)))?;
                }
                Ok(())
            }
            Conn::Postgres(_) => {
                let mut pg = self.pg()?;
                let st = pg.statement(sql, self.in_tx.get())?;
                let values: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.value())).collect();
                let where_ = pg.where_.clone();
                let client = pg.client(self.in_tx.get())?;
                let mut rows = client
                    .query_raw(&st, values.iter().map(|v| v as &dyn ToSql))
                    .map_err(|e| DbError::from_pg(&e, &where_))?;
                while let Some(r) = rows.next().map_err(|e| DbError::from_pg(&e, &where_))? {
                    f(&Row(RowInner::Postgres(&r)))?;
                }
                Ok(())
            }
        }
    }

    /// Every row of the query, each read by `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        self.for_each(sql, params, |r| {
            out.push(f(r)?);
            Ok::<(), DbError>(())
        })?;
        Ok(out)
    }

    /// The first row of the query read by `f`, or `None`.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut f = Some(f);
        let mut out = None;
        self.for_each(sql, params, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok::<(), DbError>(())
        })?;
        Ok(out)
    }

    /// The first row of the query read by `f`; [`DbError::NoRow`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, params, f)?.ok_or(DbError::NoRow)
    }

    /// Starts a write transaction holding the store's writer lock (waiting up to [`LOCK_WAIT`]
    /// for another writer). Dropped without [`Tx::commit`], it rolls back.
    pub fn begin_write(&self) -> Result<Tx<'_>, DbError> {
        self.begin(true)
    }

    /// Starts a read-only transaction: every query in it sees one snapshot.
    pub fn begin_read(&self) -> Result<Tx<'_>, DbError> {
        self.begin(false)
    }

    fn begin(&self, write: bool) -> Result<Tx<'_>, DbError> {
        if self.in_tx.get() {
            return Err(DbError::Usage("a transaction is already open on this connection"));
        }
        match (&self.conn, write) {
            (Conn::Sqlite(_), true) => self.batch("BEGIN IMMEDIATE")?,
            (Conn::Sqlite(_), false) => self.batch("BEGIN")?,
            (Conn::Postgres(_), true) => {
                let lock_wait = LOCK_WAIT.as_millis();
                self.batch(&format!("BEGIN; SET LOCAL lock_timeout = {lock_wait}"))?;
                self.in_tx.set(true);
                let locked = self.query_opt(
                    "SELECT value FROM jpki_meta WHERE name = 'writer' FOR UPDATE",
                    params![],
                    |r| r.get::<i64>(0),
                );
                match locked {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        let _ = self.batch("ROLLBACK");
                        self.in_tx.set(false);
                        return Err(DbError::Usage("the writer lock row is missing from jpki_meta"));
                    }
                    Err(e) => {
                        let _ = self.batch("ROLLBACK");
                        self.in_tx.set(false);
                        return Err(e);
                    }
                }
            }
            (Conn::Postgres(_), false) => self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?,
        }
        self.in_tx.set(true);
        Ok(Tx {
            db: self,
            done: false,
        })
    }

    /// Brings the store's schema up to `latest`: `sqlite` are SQLite's migrations from version 1
    /// on (index + 1 is the version each produces), `postgres` PostgreSQL's as (version produced,
    /// script) — usually one script reaching a recent version, then the later ones. Each step runs
    /// in its own write transaction, after reading the version again under the lock, so two
    /// processes opening a new store at once migrate it once. A store newer than `latest` is
    /// refused.
    pub fn migrate(&self, sqlite: &[&str], postgres: &[(i64, &str)], latest: i64) -> Result<(), DbError> {
        let newer = |found: i64| DbError::SchemaNewer { found, known: latest };
        let current = self.schema_version()?;
        if current > latest {
            return Err(newer(current));
        }
        let steps: Vec<(i64, &str)> = match self.backend() {
            Backend::Sqlite => (1..).zip(sqlite.iter().copied()).collect(),
            Backend::Postgres => postgres.to_vec(),
        };
        for (version, sql) in steps {
            if version <= current {
                continue;
            }
            let tx = self.begin_write()?;
            let now = tx.schema_version()?;
            if now > latest {
                return Err(newer(now));
            }
            if now < version {
                tx.batch(sql)?;
                tx.set_schema_version(version)?;
            }
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version the store records (0 for a new store).
    pub fn schema_version(&self) -> Result<i64, DbError> {
        match self.backend() {
            Backend::Sqlite => self.query_row("PRAGMA user_version", params![], |r| r.get(0)),
            Backend::Postgres => Ok(self
                .query_opt(
                    "SELECT value FROM jpki_meta WHERE name = 'schema_version'",
                    params![],
                    |r| r.get(0),
                )?
                .unwrap_or(0)),
        }
    }

    /// Records the schema version (inside the migration's transaction).
    pub fn set_schema_version(&self, version: i64) -> Result<(), DbError> {
        match self.backend() {
            Backend::Sqlite => self.batch(&format!("PRAGMA user_version = {version}")),
            Backend::Postgres => self
                .execute(
                    "INSERT INTO jpki_meta (name, value) VALUES ('schema_version', ?1) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![version],
                )
                .map(|_| ()),
        }
    }

    /// The store's tables (not `jpki_meta`), each with its columns in order and the tables its
    /// foreign keys refer to, listed so that every table comes after those it refers to: the order
    /// to copy rows in.
    pub fn tables(&self) -> Result<Vec<TableInfo>, DbError> {
        let (list, columns, refs) = match self.backend() {
            Backend::Sqlite => (
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name <> 'jpki_meta' ORDER BY name",
                "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
                "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)",
            ),
            Backend::Postgres => (
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                 AND table_name <> 'jpki_meta' ORDER BY 1",
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position",
                "SELECT DISTINCT CAST(ccu.table_name AS TEXT) FROM information_schema.table_constraints tc \
                 JOIN information_schema.constraint_column_usage ccu \
                   ON ccu.constraint_name = tc.constraint_name AND ccu.constraint_schema = tc.constraint_schema \
                 WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema() \
                   AND tc.table_name = ?1",
            ),
        };
        let names = self.query_map(list, params![], |r| r.get::<String>(0))?;
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            let columns = self.query_map(columns, params![name], |r| r.get::<String>(0))?;
            let references = self
                .query_map(refs, params![name], |r| r.get::<String>(0))?
                .into_iter()
                .filter(|t| *t != name)
                .collect();
            infos.push(TableInfo {
                name,
                columns,
                references,
            });
        }
        // Parents first (a foreign-key cycle would be an error in the schema; its tables go last).
        let mut ordered: Vec<TableInfo> = Vec::with_capacity(infos.len());
        while !infos.is_empty() {
            let ready = infos
                .iter()
                .position(|t| t.references.iter().all(|r| ordered.iter().any(|o| &o.name == r)))
                .unwrap_or(0);
            ordered.push(infos.remove(ready));
        }
        Ok(ordered)
    }

    /// PostgreSQL: moves every identity column's sequence past the largest value in its table
    /// (after rows were copied in with their ids). Nothing to do on SQLite.
    pub fn reset_identities(&self) -> Result<(), DbError> {
        if self.backend() != Backend::Postgres {
            return Ok(());
        }
        let identities = self.query_map(
            "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND is_identity = 'YES'",
            params![],
            |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
        )?;
        for (table, column) in identities {
            let (t, c) = (quote_ident(&table), quote_ident(&column));
            self.query_row(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', '{column}'), COALESCE((SELECT MAX({c}) FROM {t}), 0) + 1, false)"
                ),
                params![],
                |_| Ok(()),
            )?;
        }
        Ok(())
    }

    /// Whether a table of that name exists in the store.
    pub fn has_table(&self, name: &str) -> Result<bool, DbError> {
        match self.backend() {
            Backend::Sqlite => self.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                params![name],
                |r| r.get(0),
            ),
            Backend::Postgres => self.query_row(
                "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = ?1)",
                params![name],
                |r| r.get(0),
            ),
        }
    }
}

struct ReadGuard<'a>(&'a Cell<bool>);

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// An open transaction; it derefs to the connection for queries. Rolls back when dropped uncommitted.
#[derive(Debug)]
pub struct Tx<'a> {
    db: &'a Db,
    done: bool,
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Tx<'_> {
    /// Makes the transaction's changes durable (SQLite: fsync of the WAL; PostgreSQL: the commit
    /// record flushed).
    pub fn commit(mut self) -> Result<(), DbError> {
        self.done = true;
        // Still inside the transaction: a lost connection is an error, not a fresh one on which
        // COMMIT would succeed with nothing to commit.
        let result = self.db.batch("COMMIT");
        if result.is_err()
            && let Conn::Sqlite(c) = &self.db.conn
            && !c.is_autocommit()
        {
            // A failed COMMIT (busy, disk full) can leave SQLite's transaction open.
            let _ = c.execute_batch("ROLLBACK");
        }
        self.db.in_tx.set(false);
        result
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            // A failed rollback leaves nothing to do: SQLite rolls back on the next open, and a
            // broken PostgreSQL connection aborts the transaction server-side.
            let _ = self.db.batch("ROLLBACK");
            self.db.in_tx.set(false);
        }
    }
}

/// A busy handler that polls the write lock every 0.1–2 ms for [`LOCK_WAIT`].
///
/// SQLite's own `busy_timeout` sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between
/// attempts: a writer that finds the lock taken for a 3 ms commit often sleeps 25 ms or more,
/// while writers working outside their transactions meet the lock often and briefly.
fn wait_for_lock() -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = Instant::now();
    move |attempt| {
        if attempt == 0 {
            since = Instant::now();
        }
        if since.elapsed() >= LOCK_WAIT {
            return false;
        }
        let step = u64::try_from(attempt.clamp(1, 20)).unwrap_or(20);
        std::thread::sleep(Duration::from_micros(100 * step));
        true
    }
}

/// Makes a fresh, empty database on the PostgreSQL server at `url` and returns its URL: for tests
/// and scratch runs. The database is named after `prefix`, the process and the time.
pub fn scratch_postgres(url: &str, prefix: &str) -> Result<String, DbError> {
    let where_ = redact_url(url);
    let config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| DbError::Location(where_.clone(), e.to_string()))?;
    let mut client = config
        .connect(postgres::NoTls)
        .map_err(|e| DbError::from_pg(&e, &where_))?;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{prefix}_{}_{nanos}_{n}", std::process::id());
    client
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .map_err(|e| DbError::from_pg(&e, &where_))?;
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let Some((scheme, rest)) = base.split_once("://") else {
        return Err(DbError::Location(where_, "not a URL".into()));
    };
    let host = rest.split('/').next().unwrap_or(rest);
    Ok(format!("{scheme}://{host}/{name}{query}"))
}
