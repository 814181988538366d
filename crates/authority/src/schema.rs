//! The registry schema and its versioned migrations. Timestamps are Unix seconds (UTC); civil dates
//! are `YYYY-MM-DD`; serials are big-endian byte strings.
//!
//! SQLite keeps every migration since version 1 (`PRAGMA user_version` holds the version).
//! PostgreSQL starts at version 5 with the same tables in one script ([`PG_V5`]: `BIGINT` for
//! every integer, `BYTEA` for bytes, identity columns for SQLite's integer primary keys); later
//! migrations are written for both engines.
use jpki_db::{Backend, Db, params};

use crate::AuthorityError;

/// Migrations in order; index + 1 is the schema version they produce. Never edit a released one.
const MIGRATIONS: &[&str] = &[
    r"
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
",
    // 2: certificates get a stable integer id (their rowid), and status history and link data refer
    // to it instead of the serial. Serials are random, so every index keyed by them takes each insert
    // on a random page; keyed by id, new rows land at the end of the index. Issuance dirties about
    // half as many pages per card.
    r"
DROP INDEX certificates_card;
DROP INDEX certificates_resident;
DROP INDEX certificates_revoked;
DROP INDEX status_history_serial;
DROP INDEX cert_links_to;
ALTER TABLE certificates RENAME TO certificates_v1;
ALTER TABLE status_history RENAME TO status_history_v1;
ALTER TABLE cert_links RENAME TO cert_links_v1;
CREATE TABLE certificates (
    id            INTEGER PRIMARY KEY,
    serial        BLOB    NOT NULL UNIQUE,
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
INSERT INTO certificates (id, serial, kind, ca_generation, card_id, resident_id, shard, not_before,
                          not_after, status, reason, revoked_at, issued_at, der)
    SELECT rowid, serial, kind, ca_generation, card_id, resident_id, shard, not_before,
           not_after, status, reason, revoked_at, issued_at, der
    FROM certificates_v1 ORDER BY rowid;
CREATE INDEX certificates_card ON certificates (card_id);
CREATE INDEX certificates_resident ON certificates (resident_id);
CREATE INDEX certificates_revoked ON certificates (kind, status) WHERE status <> 'good';
CREATE TABLE status_history (
    id     INTEGER PRIMARY KEY,
    cert   INTEGER NOT NULL REFERENCES certificates (id),
    at     INTEGER NOT NULL,
    status TEXT    NOT NULL,
    reason INTEGER,
    event  TEXT    NOT NULL
);
INSERT INTO status_history (id, cert, at, status, reason, event)
    SELECT h.id, c.id, h.at, h.status, h.reason, h.event
    FROM status_history_v1 h JOIN certificates c ON c.serial = h.serial ORDER BY h.id;
CREATE INDEX status_history_cert ON status_history (cert);
CREATE TABLE cert_links (
    link       TEXT    NOT NULL CHECK (link IN ('pair', 'renewal')),
    from_cert  INTEGER NOT NULL REFERENCES certificates (id),
    to_cert    INTEGER NOT NULL REFERENCES certificates (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (from_cert, to_cert, link)
);
INSERT INTO cert_links (link, from_cert, to_cert, created_at)
    SELECT l.link, f.id, t.id, l.created_at
    FROM cert_links_v1 l JOIN certificates f ON f.serial = l.from_serial
                         JOIN certificates t ON t.serial = l.to_serial
    ORDER BY l.rowid;
CREATE INDEX cert_links_to ON cert_links (to_cert);
DROP TABLE cert_links_v1;
DROP TABLE status_history_v1;
DROP TABLE certificates_v1;
",
    // 3: the authority's own service certificates (the time-stamp authority first).
    r"
CREATE TABLE service_certs (
    id         INTEGER PRIMARY KEY,
    serial     BLOB    NOT NULL UNIQUE,
    role       TEXT    NOT NULL CHECK (role IN ('tsa')),
    ca_kind    TEXT    NOT NULL CHECK (ca_kind IN ('sign', 'auth')),
    key_file   TEXT    NOT NULL,
    shard      INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('good', 'revoked')),
    reason     INTEGER,
    revoked_at INTEGER,
    issued_at  INTEGER NOT NULL,
    der        BLOB    NOT NULL,
    CHECK ((status = 'good') = (revoked_at IS NULL))
);
",
    // 4: OCSP responder certificates join the service certificates (one per CA).
    r"
ALTER TABLE service_certs RENAME TO service_certs_v3;
CREATE TABLE service_certs (
    id         INTEGER PRIMARY KEY,
    serial     BLOB    NOT NULL UNIQUE,
    role       TEXT    NOT NULL CHECK (role IN ('tsa', 'ocsp')),
    ca_kind    TEXT    NOT NULL CHECK (ca_kind IN ('sign', 'auth')),
    key_file   TEXT    NOT NULL,
    shard      INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('good', 'revoked')),
    reason     INTEGER,
    revoked_at INTEGER,
    issued_at  INTEGER NOT NULL,
    der        BLOB    NOT NULL,
    CHECK ((status = 'good') = (revoked_at IS NULL))
);
INSERT INTO service_certs (id, serial, role, ca_kind, key_file, shard, not_before, not_after, status,
                           reason, revoked_at, issued_at, der)
    SELECT id, serial, role, ca_kind, key_file, shard, not_before, not_after, status, reason,
           revoked_at, issued_at, der
    FROM service_certs_v3 ORDER BY id;
DROP TABLE service_certs_v3;
",
    // 5: the per-person secret behind pairwise identifiers (it never leaves the authority).
    r"
CREATE TABLE person_secrets (
    resident_id INTEGER PRIMARY KEY REFERENCES residents (id),
    secret      BLOB    NOT NULL CHECK (length(secret) = 32)
);
",
    // 6: service keys (OCSP responders, TSA) are also kept in the registry, encrypted as in their
    // files, so that verifiers on other hosts sharing the database can load them; the CA keys
    // stay files on the authority's host only.
    V6,
    // 7: the operator audit trail: who did it, and a hash chain over the rows (chained in Rust
    // after this script, then made append-only by triggers: see `after`).
    "ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
     ALTER TABLE events ADD COLUMN hash BLOB;",
    // 8: CA key rollover: the link certificates between root generations (OldWithNew,
    // NewWithOld; RFC 4210 §4.4), listed on the issuing generation's ARL when revoked, and CRL
    // publications per generation (each generation signs the CRLs of what it issued).
    r"
CREATE TABLE ca_links (
    kind               TEXT    NOT NULL CHECK (kind IN ('sign', 'auth')),
    issuer_generation  INTEGER NOT NULL,
    subject_generation INTEGER NOT NULL,
    serial             BLOB    NOT NULL UNIQUE,
    der                BLOB    NOT NULL,
    created_at         INTEGER NOT NULL,
    status             TEXT    NOT NULL DEFAULT 'good' CHECK (status IN ('good', 'revoked')),
    reason             INTEGER,
    revoked_at         INTEGER,
    PRIMARY KEY (kind, issuer_generation, subject_generation)
);
ALTER TABLE crl_publications ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
",
];

/// SQLite's half of migration 7 after the rows are chained: the trail is append-only.
const SQLITE_V7_TRIGGERS: &str = "
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the audit trail (events) is append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the audit trail (events) is append-only'); END;
";

/// PostgreSQL's migration 7 (as SQLite's, with BYTEA).
const PG_V7: &str = "ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN hash BYTEA;";

/// PostgreSQL's half of migration 7 after the rows are chained. (CockroachDB has no PL/pgSQL
/// triggers before 24.3: there, revoke UPDATE and DELETE on `events` from the application role;
/// the hash chain detects changes either way.)
const PG_V7_TRIGGERS: &str = "
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail (events) is append-only';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
";

/// Work a migration needs beyond its script, run in its transaction after the script.
fn after(db: &Db, version: i64) -> Result<(), AuthorityError> {
    if version == 7 {
        crate::audit::backfill(db)?;
        db.batch(match db.backend() {
            Backend::Sqlite => SQLITE_V7_TRIGGERS,
            Backend::Postgres => PG_V7_TRIGGERS,
        })?;
    }
    Ok(())
}

/// Migration 6, the same on both engines.
const V6: &str = "ALTER TABLE service_certs ADD COLUMN key_pem TEXT;";

/// The registry of schema version 5 on PostgreSQL.
const PG_V5: &str = r"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE cas (
    kind       TEXT   NOT NULL CHECK (kind IN ('sign', 'auth')),
    generation BIGINT NOT NULL,
    key_type   TEXT   NOT NULL,
    key_file   TEXT   NOT NULL,
    cert_der   BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, generation)
);
CREATE TABLE residents (
    id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    individual_number TEXT   NOT NULL UNIQUE,
    resident_code     TEXT   NOT NULL UNIQUE,
    name              TEXT   NOT NULL,
    address           TEXT   NOT NULL,
    birth_date        TEXT   NOT NULL,
    sex               BIGINT NOT NULL CHECK (sex IN (1, 2, 9)),
    status            TEXT   NOT NULL CHECK (status IN ('active', 'emigrated', 'deceased')),
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE TABLE cards (
    id          TEXT   PRIMARY KEY,
    resident_id BIGINT NOT NULL REFERENCES residents (id),
    status      TEXT   NOT NULL CHECK (status IN ('active', 'suspended', 'lost', 'revoked')),
    issued_at   BIGINT NOT NULL,
    expires_on  TEXT   NOT NULL
);
CREATE INDEX cards_resident ON cards (resident_id);
CREATE TABLE certificates (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    serial        BYTEA  NOT NULL UNIQUE,
    kind          TEXT   NOT NULL CHECK (kind IN ('sign', 'auth')),
    ca_generation BIGINT NOT NULL,
    card_id       TEXT   NOT NULL REFERENCES cards (id),
    resident_id   BIGINT NOT NULL REFERENCES residents (id),
    shard         BIGINT NOT NULL,
    not_before    BIGINT NOT NULL,
    not_after     BIGINT NOT NULL,
    status        TEXT   NOT NULL CHECK (status IN ('good', 'hold', 'revoked')),
    reason        BIGINT,
    revoked_at    BIGINT,
    issued_at     BIGINT NOT NULL,
    der           BYTEA  NOT NULL,
    CHECK ((status = 'good') = (revoked_at IS NULL))
);
CREATE INDEX certificates_card ON certificates (card_id);
CREATE INDEX certificates_resident ON certificates (resident_id);
CREATE INDEX certificates_revoked ON certificates (kind, status) WHERE status <> 'good';
CREATE TABLE status_history (
    id     BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    cert   BIGINT NOT NULL REFERENCES certificates (id),
    at     BIGINT NOT NULL,
    status TEXT   NOT NULL,
    reason BIGINT,
    event  TEXT   NOT NULL
);
CREATE INDEX status_history_cert ON status_history (cert);
CREATE TABLE cert_links (
    link       TEXT   NOT NULL CHECK (link IN ('pair', 'renewal')),
    from_cert  BIGINT NOT NULL REFERENCES certificates (id),
    to_cert    BIGINT NOT NULL REFERENCES certificates (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (from_cert, to_cert, link)
);
CREATE INDEX cert_links_to ON cert_links (to_cert);
CREATE TABLE crl_counters (
    kind        TEXT   PRIMARY KEY CHECK (kind IN ('sign', 'auth')),
    last_number BIGINT NOT NULL
);
CREATE TABLE crl_publications (
    kind         TEXT   NOT NULL,
    number       BIGINT NOT NULL,
    published_at BIGINT NOT NULL,
    history_mark BIGINT NOT NULL,
    PRIMARY KEY (kind, number)
);
CREATE TABLE events (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    event       TEXT   NOT NULL,
    resident_id BIGINT,
    card_id     TEXT,
    detail      TEXT   NOT NULL
);
CREATE TABLE service_certs (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    serial     BYTEA  NOT NULL UNIQUE,
    role       TEXT   NOT NULL CHECK (role IN ('tsa', 'ocsp')),
    ca_kind    TEXT   NOT NULL CHECK (ca_kind IN ('sign', 'auth')),
    key_file   TEXT   NOT NULL,
    shard      BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after  BIGINT NOT NULL,
    status     TEXT   NOT NULL CHECK (status IN ('good', 'revoked')),
    reason     BIGINT,
    revoked_at BIGINT,
    issued_at  BIGINT NOT NULL,
    der        BYTEA  NOT NULL,
    CHECK ((status = 'good') = (revoked_at IS NULL))
);
CREATE TABLE person_secrets (
    resident_id BIGINT PRIMARY KEY REFERENCES residents (id),
    secret      BYTEA  NOT NULL CHECK (length(secret) = 32)
);
";

/// PostgreSQL migrations after [`PG_V5`]: (version produced, script). Never edit a released one.
const PG_MIGRATIONS: &[(i64, &str)] = &[(5, PG_V5), (6, V6), (7, PG_V7), (8, PG_V8)];

/// PostgreSQL's migration 8 (as SQLite's).
const PG_V8: &str = "
CREATE TABLE ca_links (
    kind               TEXT   NOT NULL CHECK (kind IN ('sign', 'auth')),
    issuer_generation  BIGINT NOT NULL,
    subject_generation BIGINT NOT NULL,
    serial             BYTEA  NOT NULL UNIQUE,
    der                BYTEA  NOT NULL,
    created_at         BIGINT NOT NULL,
    status             TEXT   NOT NULL DEFAULT 'good' CHECK (status IN ('good', 'revoked')),
    reason             BIGINT,
    revoked_at         BIGINT,
    PRIMARY KEY (kind, issuer_generation, subject_generation)
);
ALTER TABLE crl_publications ADD COLUMN generation BIGINT NOT NULL DEFAULT 1;
";

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to [`VERSION`], each migration in its own write transaction (so two
/// processes opening a new registry at once migrate it once).
pub(crate) fn migrate(db: &Db) -> Result<(), AuthorityError> {
    let current = db.schema_version()?;
    if current > VERSION {
        return Err(newer(current));
    }
    if current == VERSION {
        return Ok(());
    }
    match db.backend() {
        Backend::Sqlite => migrate_sqlite(db),
        Backend::Postgres => {
            for &(version, sql) in PG_MIGRATIONS {
                let tx = db.begin_write()?;
                let now = tx.schema_version()?;
                if now > VERSION {
                    return Err(newer(now));
                }
                if now < version {
                    tx.batch(sql)?;
                    after(&tx, version)?;
                    tx.set_schema_version(version)?;
                }
                tx.commit()?;
            }
            Ok(())
        }
    }
}

fn newer(current: i64) -> AuthorityError {
    AuthorityError::Corrupt(format!(
        "schema version {current} is newer than this jpki understands ({VERSION}); upgrade jpki"
    ))
}

fn migrate_sqlite(db: &Db) -> Result<(), AuthorityError> {
    // Rebuilding a table means dropping one that others reference: foreign keys are switched
    // off for the migration (a no-op inside a transaction, hence here) and checked before each
    // commit instead.
    db.batch("PRAGMA foreign_keys = OFF")?;
    let result = (|| {
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let version = i as i64 + 1;
            let tx = db.begin_write()?;
            if tx.schema_version()? >= version {
                continue;
            }
            tx.batch(sql)?;
            after(&tx, version)?;
            let violations: i64 =
                tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", params![], |r| {
                    r.get(0)
                })?;
            if violations > 0 {
                return Err(AuthorityError::Corrupt(format!(
                    "migration to schema version {version} would leave {violations} foreign-key violations"
                )));
            }
            tx.set_schema_version(version)?;
            tx.commit()?;
        }
        Ok(())
    })();
    db.batch("PRAGMA foreign_keys = ON")?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 7 chains the events recorded before it and makes the table append-only.
    #[test]
    fn migration_7_chains_earlier_events() {
        let conn = Db::open_sqlite_memory().unwrap();
        for sql in &MIGRATIONS[..6] {
            conn.batch(sql).unwrap();
        }
        conn.set_schema_version(6).unwrap();
        conn.batch(
            "INSERT INTO events (at, event, resident_id, card_id, detail) VALUES
                 (1, 'init', NULL, NULL, 'key type p384'), (2, 'resident-add', 1, NULL, '')",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let unchained: i64 = conn
            .query_row("SELECT COUNT(*) FROM events WHERE hash IS NULL", params![], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(unchained, 0);
        let e = conn.execute("DELETE FROM events", params![]).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
    }

    /// A version-3 registry's TSA certificate comes through migration 4 unchanged, and the table
    /// then takes OCSP responder certificates.
    #[test]
    fn migration_4_keeps_the_tsa_and_admits_ocsp_responders() {
        let conn = Db::open_sqlite_memory().unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.batch(sql).unwrap();
        }
        conn.set_schema_version(3).unwrap();
        let tsa = "INSERT INTO service_certs (serial, role, ca_kind, key_file, shard, not_before, not_after, status, issued_at, der)
                   VALUES (x'4009', 'tsa', 'sign', 'keys/tsa-1.key.pem', 1, 0, 9, 'good', 0, x'30')";
        conn.batch(tsa).unwrap();
        let ocsp = "INSERT INTO service_certs (serial, role, ca_kind, key_file, shard, not_before, not_after, status, issued_at, der)
                    VALUES (x'400a', 'ocsp', 'auth', 'keys/ocsp-2.key.pem', 1, 0, 9, 'good', 0, x'30')";
        assert!(conn.batch(ocsp).is_err(), "version 3 knows no OCSP responders");
        migrate(&conn).unwrap();
        let row: (i64, Vec<u8>, String, String) = conn
            .query_row(
                "SELECT id, serial, role, key_file FROM service_certs",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, (1, vec![0x40, 9], "tsa".into(), "keys/tsa-1.key.pem".into()));
        conn.batch(ocsp).unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_v3'",
                params![],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "the old table is gone");
    }

    /// A version-1 registry with a card, two certificates, their history and links comes through
    /// migration 2 with every row, every reference and the ids the history and links now use.
    #[test]
    fn migration_2_keeps_history_and_links() {
        let conn = Db::open_sqlite_memory().unwrap();
        conn.batch("PRAGMA foreign_keys = ON").unwrap();
        conn.batch(MIGRATIONS[0]).unwrap();
        conn.set_schema_version(1).unwrap();
        conn.batch(
            "INSERT INTO residents VALUES (1, '123456789018', '1234567890', 'n', 'a', '1980-01-01', 1, 'active', 0, 0);
             INSERT INTO cards VALUES ('000000000000001', 1, 'active', 0, '2030-01-01');
             INSERT INTO certificates (serial, kind, ca_generation, card_id, resident_id, shard, not_before, not_after, status, reason, revoked_at, issued_at, der)
                 VALUES (x'4001', 'auth', 1, '000000000000001', 1, 1, 0, 9, 'good', NULL, NULL, 0, x'30'),
                        (x'4002', 'sign', 1, '000000000000001', 1, 2, 0, 9, 'revoked', 4, 5, 0, x'30'),
                        (x'4003', 'sign', 1, '000000000000001', 1, 3, 0, 9, 'good', NULL, NULL, 5, x'30');
             INSERT INTO status_history (serial, at, status, reason, event) VALUES
                 (x'4001', 0, 'good', NULL, 'issue'), (x'4002', 0, 'good', NULL, 'issue'),
                 (x'4002', 5, 'revoked', 4, 'card-renew'), (x'4003', 5, 'good', NULL, 'issue');
             INSERT INTO cert_links VALUES ('pair', x'4002', x'4001', 0), ('renewal', x'4002', x'4003', 5),
                                           ('pair', x'4003', x'4001', 5);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", params![], |r| r.get(0))
            .unwrap();
        assert_eq!(v, VERSION);
        let fk: bool = conn
            .query_row("PRAGMA foreign_keys", params![], |r| r.get(0))
            .unwrap();
        assert!(fk, "foreign keys are back on after migrating");
        let history: Vec<(Vec<u8>, String)> = conn
            .query_map("SELECT c.serial, h.status FROM status_history h JOIN certificates c ON c.id = h.cert ORDER BY h.id", params![], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(
            history,
            vec![
                (vec![0x40, 1], "good".into()),
                (vec![0x40, 2], "good".into()),
                (vec![0x40, 2], "revoked".into()),
                (vec![0x40, 3], "good".into()),
            ]
        );
        let links: Vec<(String, Vec<u8>, Vec<u8>)> = conn
            .query_map("SELECT l.link, f.serial, t.serial FROM cert_links l JOIN certificates f ON f.id = l.from_cert
                 JOIN certificates t ON t.id = l.to_cert ORDER BY l.created_at, l.from_cert", params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        assert_eq!(
            links,
            vec![
                ("pair".into(), vec![0x40, 2], vec![0x40, 1]),
                ("renewal".into(), vec![0x40, 2], vec![0x40, 3]),
                ("pair".into(), vec![0x40, 3], vec![0x40, 1]),
            ]
        );
        let revoked: (i64, i64) = conn
            .query_row(
                "SELECT reason, revoked_at FROM certificates WHERE serial = x'4002'",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(revoked, (4, 5));
        let left: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_v1'",
                params![],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "the old tables are gone");
        // Running it again is a no-op.
        migrate(&conn).unwrap();
    }
}
