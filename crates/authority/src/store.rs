//! Where the registry lives and small typed helpers around it.
//!
//! The registry is `DATA/registry.sqlite3` by default. `jpki init --db postgres://…` puts it in
//! PostgreSQL instead (schema `registry`), and records the URL in `DATA/database` (0600: it may
//! carry a password); every later command on that data directory opens it there.
use std::path::Path;

use jpki_db::{Db, Location, SqliteOptions};
use jpki_model::{RevocationReason, Serial};
use time::OffsetDateTime;

use crate::{AuthorityError, schema};

/// The registry file inside the data directory (SQLite).
pub(crate) const REGISTRY_FILE: &str = "registry.sqlite3";
/// The file naming a PostgreSQL registry.
pub const DATABASE_FILE: &str = "database";
/// The PostgreSQL schema of the registry.
pub const REGISTRY_SCHEMA: &str = "registry";

/// Where the registry of the data directory `dir` lives, if there is one.
pub fn registry_location(dir: &Path) -> Result<Option<Location>, AuthorityError> {
    let pointer = dir.join(DATABASE_FILE);
    match std::fs::read_to_string(&pointer) {
        Ok(text) => {
            let url = text.trim();
            if !Location::is_postgres_url(url) {
                return Err(AuthorityError::Corrupt(format!(
                    "{}: expected a postgres:// URL",
                    pointer.display()
                )));
            }
            Ok(Some(Location::Postgres {
                url: url.to_owned(),
                schema: REGISTRY_SCHEMA.to_owned(),
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let file = dir.join(REGISTRY_FILE);
            Ok(file.exists().then_some(Location::Sqlite(file)))
        }
        Err(e) => Err(AuthorityError::io(&pointer)(e)),
    }
}

/// Opens the registry at `location` without changing its schema: it must be at this build's
/// version (what a verifier does: only the authority migrates a shared registry).
pub(crate) fn open_unmigrated(location: &Location) -> Result<Db, AuthorityError> {
    let db = Db::open(
        location,
        SqliteOptions {
            create: false,
            cache_kib: 16_384,
        },
    )?;
    let version = db.schema_version()?;
    if version != schema::VERSION {
        return Err(AuthorityError::State(format!(
            "the registry is at schema version {version} and this jpki expects {}: upgrade and restart the authority first (a verifier never changes the schema)",
            schema::VERSION
        )));
    }
    Ok(db)
}

/// Opens (creating when `create`) the registry at `location` and brings its schema up to date.
pub(crate) fn open(location: &Location, create: bool) -> Result<Db, AuthorityError> {
    let db = Db::open(
        location,
        // 16 MiB of page cache (default 2 MiB): the serial index takes random inserts.
        SqliteOptions {
            create,
            cache_kib: 16_384,
        },
    )?;
    schema::migrate(&db)?;
    Ok(db)
}

pub(crate) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_ts(s: i64) -> Result<OffsetDateTime, AuthorityError> {
    OffsetDateTime::from_unix_timestamp(s).map_err(|e| AuthorityError::Corrupt(format!("timestamp {s}: {e}")))
}

pub(crate) fn serial_from_blob(b: &[u8]) -> Result<Serial, AuthorityError> {
    Serial::from_be_bytes(b).map_err(|e| AuthorityError::Corrupt(format!("stored serial: {e}")))
}

pub(crate) fn reason_from(code: Option<i64>) -> Result<Option<RevocationReason>, AuthorityError> {
    code.map(|c| {
        u8::try_from(c)
            .ok()
            .and_then(RevocationReason::from_code)
            .ok_or_else(|| AuthorityError::Corrupt(format!("stored revocation reason {c}")))
    })
    .transpose()
}

/// Writes `bytes` to `path` atomically (see [`jpki_card::file::write_atomically`]).
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AuthorityError> {
    jpki_card::file::write_atomically(path, bytes, mode).map_err(AuthorityError::io(path))
}
