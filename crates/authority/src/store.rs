//! Opening the registry and small typed helpers around rusqlite.
use std::path::Path;

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
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    schema::migrate(&mut conn)?;
    Ok(conn)
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
