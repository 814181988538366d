//! Opening the registry and small typed helpers around rusqlite.
use std::path::Path;
use std::time::{Duration, Instant};

use jpki_model::{RevocationReason, Serial};
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;

use crate::{AuthorityError, schema};

/// Opens (creating when `create`) the registry with the durability settings every write relies on.
pub(crate) fn open(path: &Path, create: bool) -> Result<Connection, AuthorityError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_handler(Some(wait_for_lock()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 16 MiB of page cache (default 2 MiB): the serial index takes random inserts.
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.set_prepared_statement_cache_capacity(64);
    schema::migrate(&mut conn)?;
    Ok(conn)
}

/// How long a writer waits for another writer (thread or process) to finish its transaction.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A busy handler that polls the registry's write lock every 0.1–2 ms for [`LOCK_WAIT`].
///
/// SQLite's own `busy_timeout` sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between
/// attempts: a writer that finds the lock taken for a 3 ms commit often sleeps 25 ms or more,
/// while issuers signing outside their transactions meet the lock often and briefly.
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
