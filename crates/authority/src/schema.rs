//! The registry schema and its versioned migrations (`PRAGMA user_version` holds the version).
//! Timestamps are Unix seconds (UTC); civil dates are `YYYY-MM-DD`; serials are big-endian BLOBs.
use rusqlite::Connection;

use crate::AuthorityError;

/// Migrations in order; index + 1 is the schema version they produce. Never edit a released one.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE cas (
    kind       TEXT    NOT NULL CHECK (kind IN ('sign', 'auth')),
    generation INTEGER NOT NULL,
    key_type   TEXT    NOT NULL,
    key_file   TEXT    NOT NULL,
    cert_der   BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (kind, generation)
);
CREATE TABLE residents (
    id                INTEGER PRIMARY KEY,
    individual_number TEXT    NOT NULL UNIQUE,
    resident_code     TEXT    NOT NULL UNIQUE,
    name              TEXT    NOT NULL,
    address           TEXT    NOT NULL,
    birth_date        TEXT    NOT NULL,
    sex               INTEGER NOT NULL CHECK (sex IN (1, 2, 9)),
    status            TEXT    NOT NULL CHECK (status IN ('active', 'emigrated', 'deceased')),
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE TABLE cards (
    id          TEXT    PRIMARY KEY,
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    status      TEXT    NOT NULL CHECK (status IN ('active', 'suspended', 'lost', 'revoked')),
    issued_at   INTEGER NOT NULL,
    expires_on  TEXT    NOT NULL
);
CREATE INDEX cards_resident ON cards (resident_id);
CREATE TABLE certificates (
    serial        BLOB    PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind IN ('sign', 'auth')),
    ca_generation INTEGER NOT NULL,
    card_id       TEXT    NOT NULL REFERENCES cards (id),
    resident_id   INTEGER NOT NULL REFERENCES residents (id),
    shard         INTEGER NOT NULL,
    not_before    INTEGER NOT NULL,
    not_after     INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('good', 'hold', 'revoked')),
    reason        INTEGER,
    revoked_at    INTEGER,
    issued_at     INTEGER NOT NULL,
    der           BLOB    NOT NULL,
    CHECK ((status = 'good') = (revoked_at IS NULL))
);
CREATE INDEX certificates_card ON certificates (card_id);
CREATE INDEX certificates_resident ON certificates (resident_id);
CREATE INDEX certificates_revoked ON certificates (kind, status) WHERE status <> 'good';
CREATE TABLE status_history (
    id     INTEGER PRIMARY KEY,
    serial BLOB    NOT NULL REFERENCES certificates (serial),
    at     INTEGER NOT NULL,
    status TEXT    NOT NULL,
    reason INTEGER,
    event  TEXT    NOT NULL
);
CREATE INDEX status_history_serial ON status_history (serial);
CREATE TABLE cert_links (
    link        TEXT    NOT NULL CHECK (link IN ('pair', 'renewal')),
    from_serial BLOB    NOT NULL REFERENCES certificates (serial),
    to_serial   BLOB    NOT NULL REFERENCES certificates (serial),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (link, from_serial, to_serial)
);
CREATE INDEX cert_links_to ON cert_links (to_serial);
CREATE TABLE crl_counters (
    kind        TEXT    PRIMARY KEY CHECK (kind IN ('sign', 'auth')),
    last_number INTEGER NOT NULL
);
CREATE TABLE crl_publications (
    kind         TEXT    NOT NULL,
    number       INTEGER NOT NULL,
    published_at INTEGER NOT NULL,
    history_mark INTEGER NOT NULL,
    PRIMARY KEY (kind, number)
);
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    event       TEXT    NOT NULL,
    resident_id INTEGER,
    card_id     TEXT,
    detail      TEXT    NOT NULL
);
"];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to [`VERSION`], each migration in its own transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), AuthorityError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > VERSION {
        return Err(AuthorityError::Corrupt(format!(
            "schema version {current} is newer than this jpki understands ({VERSION}); upgrade jpki"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
