//! Relying parties: registered by the operator with a set of capabilities, authenticated on every
//! call by an API key (`Authorization: Bearer KEY`).
//!
//! The registry is its own store, apart from the authority's registry: the platform operator and
//! the authority are different parties. On SQLite it is its own file (`platform.sqlite` in the data
//! directory); on PostgreSQL the schema `platform` of the database (see [`POSTGRES_SCHEMA`]). Keys are shown once
//! when made and stored only as SHA-256 hashes; a lookup is by hash, so a key never sits in the
//! database or in memory longer than a request. Revoking an RP's keys takes effect on the next
//! request: every request is looked up afresh.
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use aws_lc_rs::digest;
use jpki_db::{Backend, Db, Location, SqliteOptions, params};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::PlatformError;

/// What a relying party may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// Status of user-authentication certificates (OCSP, validity API).
    AuthStatus,
    /// Status of signature certificates.
    SignStatus,
    /// The four facts of a signature certificate (name, address, birth date, sex).
    PersonalData,
    /// Serial linkage (old → new is never offered; predecessor and auth ↔ sign, with consent).
    Linkage,
    /// "At least N years old today?" for the thresholds registered.
    Age,
    /// 現況確認: have the four facts changed since issuance?
    Liveness,
    /// Signature verification reports.
    SignatureVerify,
    /// Augmenting signatures to B-LT.
    Augment,
    /// Logging people in with the card (OpenID Connect client).
    Oidc,
}

impl Capability {
    /// Every capability, in the order of the issue.
    pub const ALL: [Capability; 9] = [
        Self::AuthStatus,
        Self::SignStatus,
        Self::PersonalData,
        Self::Linkage,
        Self::Age,
        Self::Liveness,
        Self::SignatureVerify,
        Self::Augment,
        Self::Oidc,
    ];

    /// The command-line and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthStatus => "auth-status",
            Self::SignStatus => "sign-status",
            Self::PersonalData => "personal-data",
            Self::Linkage => "linkage",
            Self::Age => "age",
            Self::Liveness => "liveness",
            Self::SignatureVerify => "signature-verify",
            Self::Augment => "augment",
            Self::Oidc => "oidc",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|c| c.as_str()).collect();
            PlatformError::Input(format!("capability {s:?}: not one of {}", names.join(", ")))
        })
    }
}

/// A registered relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// Its identifier (`rp-` and 16 hex digits).
    pub id: String,
    /// Its name, as people will read it in their access records.
    pub name: String,
    /// What it may ask.
    pub capabilities: BTreeSet<Capability>,
    /// The ages it may ask about (with [`Capability::Age`]).
    pub age_thresholds: Vec<u8>,
    /// When it was registered.
    pub registered_at: OffsetDateTime,
    /// How many of its API keys are usable.
    pub active_keys: u32,
    /// Why it checks certificates, as registered (empty if not given): recorded in people's
    /// access records for its checks that carry no purpose of their own.
    pub purpose: String,
}

impl RelyingParty {
    /// Whether it may do what `cap` allows.
    pub fn may(&self, cap: Capability) -> bool {
        self.capabilities.contains(&cap)
    }
}

/// A freshly made API key: shown once, never stored in the clear.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    pub(crate) fn new(secret: String) -> Self {
        Self(Zeroizing::new(secret))
    }

    /// The key, to hand to the relying party.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(…)")
    }
}

/// What registering needs.
#[derive(Debug, Clone)]
pub struct NewRelyingParty<'a> {
    /// The name.
    pub name: &'a str,
    /// The capabilities (at least one).
    pub capabilities: BTreeSet<Capability>,
    /// Age thresholds (required with, and only with, [`Capability::Age`]).
    pub age_thresholds: Vec<u8>,
    /// Why it checks certificates (at most 200 characters), if given.
    pub purpose: Option<&'a str>,
}

/// Schema version 1 (`IF NOT EXISTS`: registries made before versions were counted have it).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS relying_parties (
    id             TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL,
    capabilities   TEXT    NOT NULL,
    age_thresholds TEXT    NOT NULL,
    registered_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash   BLOB    PRIMARY KEY,
    rp_id      TEXT    NOT NULL REFERENCES relying_parties (id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_rp ON api_keys (rp_id);
CREATE TABLE IF NOT EXISTS metered_checks (
    rp_id  TEXT    NOT NULL REFERENCES relying_parties (id),
    month  TEXT    NOT NULL,
    kind   TEXT    NOT NULL CHECK (kind IN ('sign', 'auth')),
    check_name TEXT NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (rp_id, month, kind, check_name)
);
";

/// SQLite migrations in order; index + 1 is the schema version (`PRAGMA user_version`) they
/// produce.
const MIGRATIONS: &[&str] = &[
    SCHEMA,
    crate::consent::SCHEMA_V2,
    SCHEMA_V3,
    SCHEMA_V4,
    crate::oidc_clients::SCHEMA_V5,
    crate::portal::SCHEMA_V6,
];

/// The PostgreSQL schema of the relying-party registry.
pub const POSTGRES_SCHEMA: &str = "platform";

/// The registry of schema version 4 on PostgreSQL: the tables of every SQLite migration above.
const PG_V4: &str = "
CREATE TABLE relying_parties (
    id             TEXT   PRIMARY KEY,
    name           TEXT   NOT NULL,
    capabilities   TEXT   NOT NULL,
    age_thresholds TEXT   NOT NULL,
    registered_at  BIGINT NOT NULL,
    purpose        TEXT   NOT NULL DEFAULT ''
);
CREATE TABLE api_keys (
    key_hash   BYTEA  PRIMARY KEY,
    rp_id      TEXT   NOT NULL REFERENCES relying_parties (id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_rp ON api_keys (rp_id);
CREATE TABLE metered_checks (
    rp_id      TEXT   NOT NULL REFERENCES relying_parties (id),
    month      TEXT   NOT NULL,
    kind       TEXT   NOT NULL CHECK (kind IN ('sign', 'auth')),
    check_name TEXT   NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (rp_id, month, kind, check_name)
);
CREATE TABLE consents (
    id             TEXT   PRIMARY KEY,
    person_ref     TEXT   NOT NULL,
    rp_id          TEXT   NOT NULL REFERENCES relying_parties (id),
    signer_serial  BYTEA  NOT NULL,
    statement      BYTEA  NOT NULL,
    statement_hash BYTEA  NOT NULL UNIQUE,
    given_at       BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);
CREATE INDEX consents_person ON consents (person_ref, rp_id);
CREATE INDEX consents_rp ON consents (rp_id);
CREATE TABLE client_certs (
    fingerprint BYTEA  PRIMARY KEY CHECK (length(fingerprint) = 32),
    rp_id       TEXT   NOT NULL REFERENCES relying_parties (id),
    subject     TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX client_certs_rp ON client_certs (rp_id);
";

/// PostgreSQL migrations: (version produced, script). Never edit a released one.
const PG_MIGRATIONS: &[(i64, &str)] = &[
    (4, PG_V4),
    (5, crate::oidc_clients::PG_V5),
    (6, crate::portal::PG_V6),
];

/// 4: client certificates relying parties authenticate with over mutual TLS (by SHA-256).
const SCHEMA_V4: &str = "
CREATE TABLE client_certs (
    fingerprint BLOB    PRIMARY KEY CHECK (length(fingerprint) = 32),
    rp_id       TEXT    NOT NULL REFERENCES relying_parties (id),
    subject     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX client_certs_rp ON client_certs (rp_id);
";

/// 3: a relying party's registered purpose, recorded with its checks that carry none (OCSP).
const SCHEMA_V3: &str = "ALTER TABLE relying_parties ADD COLUMN purpose TEXT NOT NULL DEFAULT '';";

/// Brings the schema up to date, each migration in its own write transaction.
fn migrate(db: &Db) -> Result<(), PlatformError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    Ok(db.migrate(MIGRATIONS, PG_MIGRATIONS, known)?)
}

fn key_hash(key: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, key.as_bytes()).as_ref().to_vec()
}

pub(crate) fn random_hex<const N: usize>() -> Result<String, PlatformError> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| PlatformError::Log("the system random generator failed".into()))?;
    Ok(hex::encode(b))
}

/// The relying-party registry.
#[derive(Debug)]
pub struct Registry {
    pub(crate) db: Db,
    /// Answers of [`Registry::authenticate`] by key hash, valid while the SQLite database's
    /// `data_version` stays what it was when they were read: any commit by another connection
    /// (`jpki rp revoke-key` in another process) empties it before the next request is answered.
    /// PostgreSQL has no such counter: there every request is looked up, and the last answer for
    /// each key is kept in `last_known` to answer from while the database is unreachable (no key
    /// can be revoked meanwhile: the registry cannot be written either).
    auth_cache: std::cell::RefCell<(i64, AuthAnswers)>,
    last_known: std::cell::RefCell<AuthAnswers>,
}

/// Remembered [`Registry::authenticate`] answers by key hash.
type AuthAnswers = std::collections::HashMap<Vec<u8>, Option<RelyingParty>>;

/// The most keys [`Registry::authenticate`] remembers.
const AUTH_CACHE_ENTRIES: usize = 4096;

impl Registry {
    /// Opens (creating if needed) the SQLite registry at `path`.
    pub fn open(path: &Path) -> Result<Self, PlatformError> {
        Self::open_at(&Location::Sqlite(path.to_path_buf()))
    }

    /// Opens (creating if needed) the registry at `location` (a SQLite file, or a PostgreSQL
    /// schema, [`POSTGRES_SCHEMA`] by convention).
    pub fn open_at(location: &Location) -> Result<Self, PlatformError> {
        // `jpki serve` holds several connections (keys, meter, consents) and `jpki rp` writes too:
        // a writer waits for another up to `jpki_db::LOCK_WAIT`.
        let db = Db::open(location, SqliteOptions::default())?;
        migrate(&db)?;
        Ok(Self {
            db,
            auth_cache: std::cell::RefCell::new((-1, std::collections::HashMap::new())),
            last_known: std::cell::RefCell::new(std::collections::HashMap::new()),
        })
    }

    /// Registers a relying party and makes its first API key.
    pub fn add(
        &mut self,
        rp: &NewRelyingParty<'_>,
        now: OffsetDateTime,
    ) -> Result<(RelyingParty, ApiKey), PlatformError> {
        let (rp, key, _) = self.insert(rp, None, now)?;
        Ok((rp, key))
    }

    /// Registers a relying party (with or without its OpenID Connect client, which the oidc
    /// capability requires) in one transaction; the client secret when one was made.
    pub(crate) fn insert(
        &mut self,
        rp: &NewRelyingParty<'_>,
        oidc: Option<&crate::oidc_clients::NewOidcClient>,
        now: OffsetDateTime,
    ) -> Result<(RelyingParty, ApiKey, Option<ApiKey>), PlatformError> {
        let name = rp.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(PlatformError::Input(
                "name: 1 to 200 characters, no control characters".into(),
            ));
        }
        if rp.capabilities.is_empty() {
            return Err(PlatformError::Input("--allow: at least one capability".into()));
        }
        let mut ages = rp.age_thresholds.clone();
        ages.sort_unstable();
        ages.dedup();
        match (rp.capabilities.contains(&Capability::Age), ages.is_empty()) {
            (true, true) => {
                return Err(PlatformError::Input(
                    "age thresholds: the age capability needs --age-thresholds (e.g. 18,20)".into(),
                ));
            }
            (false, false) => {
                return Err(PlatformError::Input(
                    "age thresholds: given without the age capability".into(),
                ));
            }
            _ => {}
        }
        if let Some(bad) = ages.iter().find(|a| !(1..=150).contains(*a)) {
            return Err(PlatformError::Input(format!(
                "age threshold {bad}: must be 1 to 150"
            )));
        }
        let purpose = rp.purpose.map_or("", str::trim);
        if purpose.chars().count() > 200 || purpose.chars().any(char::is_control) {
            return Err(PlatformError::Input(
                "purpose: at most 200 characters, no control characters".into(),
            ));
        }
        match (rp.capabilities.contains(&Capability::Oidc), oidc.is_some()) {
            (true, false) => {
                return Err(PlatformError::Input(
                    "the oidc capability needs --redirect-uri (and --jwks or --jwks-uri)".into(),
                ));
            }
            (false, true) => {
                return Err(PlatformError::Input(
                    "--redirect-uri, --jwks and --jwks-uri go with the oidc capability".into(),
                ));
            }
            _ => {}
        }
        if let Some(o) = oidc {
            o.check()?;
        }
        let id = format!("rp-{}", random_hex::<8>()?);
        let caps: Vec<&str> = rp.capabilities.iter().map(|c| c.as_str()).collect();
        let ages_text: Vec<String> = ages.iter().map(u8::to_string).collect();
        let key = ApiKey(Zeroizing::new(format!("jpki_{}", random_hex::<24>()?)));
        let tx = self.db.begin_write()?;
        tx.execute(
            "INSERT INTO relying_parties (id, name, capabilities, age_thresholds, registered_at, purpose) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, name, caps.join(","), ages_text.join(","), now.unix_timestamp(), purpose],
        )?;
        tx.execute(
            "INSERT INTO api_keys (key_hash, rp_id, created_at) VALUES (?1, ?2, ?3)",
            params![key_hash(key.expose()), id, now.unix_timestamp()],
        )?;
        let secret = match oidc {
            Some(o) => crate::oidc_clients::insert(&tx, &id, o, now)?,
            None => None,
        };
        tx.commit()?;
        self.forget_authentications();
        Ok((self.get(&id)?, key, secret))
    }

    /// One relying party by id.
    pub fn get(&self, id: &str) -> Result<RelyingParty, PlatformError> {
        // Prepared once per connection: every API request comes through here (via `authenticate`).
        self.db
            .query_opt(
                "SELECT id, name, capabilities, age_thresholds, registered_at, \
                 (SELECT COUNT(*) FROM api_keys k WHERE k.rp_id = r.id AND k.revoked_at IS NULL), purpose \
                 FROM relying_parties r WHERE id = ?1",
                params![id],
                row_to_rp,
            )?
            .ok_or_else(|| PlatformError::NotFound(format!("relying party {id}")))?
    }

    /// Every relying party, oldest first.
    pub fn list(&self) -> Result<Vec<RelyingParty>, PlatformError> {
        let rows = self.db.query_map(
            "SELECT id, name, capabilities, age_thresholds, registered_at, \
             (SELECT COUNT(*) FROM api_keys k WHERE k.rp_id = r.id AND k.revoked_at IS NULL), purpose \
             FROM relying_parties r ORDER BY registered_at, id",
            params![],
            row_to_rp,
        )?;
        rows.into_iter().collect()
    }

    /// Revokes every API key of `id`; returns how many were usable.
    pub fn revoke_keys(&mut self, id: &str, now: OffsetDateTime) -> Result<usize, PlatformError> {
        self.forget_authentications();
        self.get(id)?;
        let tx = self.db.begin_write()?;
        let keys = tx.execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE rp_id = ?1 AND revoked_at IS NULL",
            params![id, now.unix_timestamp()],
        )?;
        let certs = tx.execute(
            "UPDATE client_certs SET revoked_at = ?2 WHERE rp_id = ?1 AND revoked_at IS NULL",
            params![id, now.unix_timestamp()],
        )?;
        tx.commit()?;
        Ok(usize::try_from(keys + certs).unwrap_or(usize::MAX))
    }

    /// Registers a client certificate (DER) for `id` to authenticate with over mutual TLS;
    /// returns its SHA-256 fingerprint. [`Self::revoke_keys`] revokes it with the API keys.
    pub fn add_client_cert(
        &mut self,
        id: &str,
        der: &[u8],
        now: OffsetDateTime,
    ) -> Result<[u8; 32], PlatformError> {
        self.forget_authentications();
        self.get(id)?;
        let cert = jpki_pki::x509::ParsedCert::from_der(der)
            .map_err(|e| PlatformError::Input(format!("client certificate: {e}")))?;
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(digest::digest(&digest::SHA256, der).as_ref());
        let tx = self.db.begin_write()?;
        let taken: Option<String> = tx.query_opt(
            "SELECT rp_id FROM client_certs WHERE fingerprint = ?1 AND revoked_at IS NULL",
            params![fingerprint],
            |r| r.get(0),
        )?;
        if let Some(other) = taken {
            return Err(PlatformError::Input(format!(
                "client certificate: already registered (for {other})"
            )));
        }
        // A revoked registration is replaced: the certificate may be registered again.
        tx.execute(
            "INSERT INTO client_certs (fingerprint, rp_id, subject, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (fingerprint) DO UPDATE SET rp_id = excluded.rp_id, subject = excluded.subject, \
             created_at = excluded.created_at, revoked_at = NULL",
            params![fingerprint, id, cert.subject, now.unix_timestamp()],
        )?;
        tx.commit()?;
        Ok(fingerprint)
    }

    /// The relying party whose usable client certificate has SHA-256 `fingerprint`.
    pub fn authenticate_client(&self, fingerprint: &[u8; 32]) -> Result<Option<RelyingParty>, PlatformError> {
        let id: Option<String> = self.db.query_opt(
            "SELECT rp_id FROM client_certs WHERE fingerprint = ?1 AND revoked_at IS NULL",
            params![fingerprint],
            |r| r.get(0),
        )?;
        id.map(|id| self.get(&id)).transpose()
    }

    /// Makes an additional API key for `id` (to rotate: make one, hand it over, revoke the old).
    pub fn new_key(&mut self, id: &str, now: OffsetDateTime) -> Result<ApiKey, PlatformError> {
        self.forget_authentications();
        self.get(id)?;
        let key = ApiKey(Zeroizing::new(format!("jpki_{}", random_hex::<24>()?)));
        self.db.execute(
            "INSERT INTO api_keys (key_hash, rp_id, created_at) VALUES (?1, ?2, ?3)",
            params![key_hash(key.expose()), id, now.unix_timestamp()],
        )?;
        Ok(key)
    }

    /// Adds metered counts (from [`crate::fees::Meter::take`]) in one transaction.
    pub fn add_metered(&mut self, counts: &[(crate::fees::MeterKey, u64)]) -> Result<(), PlatformError> {
        if counts.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        for ((rp, month, kind, check), n) in counts {
            tx.execute(
                "INSERT INTO metered_checks (rp_id, month, kind, check_name, count) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (rp_id, month, kind, check_name) \
                 DO UPDATE SET count = metered_checks.count + excluded.count",
                params![
                    rp,
                    month,
                    kind.as_str(),
                    check,
                    i64::try_from(*n).unwrap_or(i64::MAX)
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The checks `id` made in `month` (`YYYY-MM`, JST), by certificate kind and check:
    /// `(kind, check, count)`.
    pub fn metered(&self, id: &str, month: &str) -> Result<Vec<(String, String, u64)>, PlatformError> {
        self.get(id)?;
        Ok(self.db.query_map(
            "SELECT kind, check_name, count FROM metered_checks WHERE rp_id = ?1 AND month = ?2 ORDER BY kind, check_name",
            params![id, month],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    u64::try_from(r.get::<i64>(2)?).unwrap_or(0),
                ))
            },
        )?)
    }

    /// The relying party whose usable API key `key` is, if any.
    pub fn authenticate(&self, key: &str) -> Result<Option<RelyingParty>, PlatformError> {
        if !key.starts_with("jpki_") || key.len() > 128 {
            return Ok(None);
        }
        let hash = key_hash(key);
        let cached = self.db.backend() == Backend::Sqlite;
        if cached {
            let version: i64 = self
                .db
                .query_row("PRAGMA data_version", params![], |r| r.get(0))?;
            let mut cache = self.auth_cache.borrow_mut();
            if cache.0 != version {
                *cache = (version, std::collections::HashMap::new());
            } else if let Some(hit) = cache.1.get(&hash) {
                return Ok(hit.clone());
            }
        }
        let looked_up = (|| -> Result<Option<RelyingParty>, PlatformError> {
            let id: Option<String> = self.db.query_opt(
                "SELECT rp_id FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
                params![hash],
                |r| r.get(0),
            )?;
            id.map(|id| self.get(&id)).transpose()
        })();
        if !cached {
            return match looked_up {
                Ok(rp) => {
                    let mut known = self.last_known.borrow_mut();
                    if known.len() >= AUTH_CACHE_ENTRIES {
                        known.clear();
                    }
                    known.insert(hash, rp.clone());
                    Ok(rp)
                }
                Err(PlatformError::Db(e)) if e.is_unavailable() => {
                    match self.last_known.borrow().get(&hash) {
                        Some(rp) => Ok(rp.clone()),
                        None => Err(PlatformError::Db(e)),
                    }
                }
                Err(e) => Err(e),
            };
        }
        let rp = looked_up?;
        let mut cache = self.auth_cache.borrow_mut();
        if cache.1.len() >= AUTH_CACHE_ENTRIES {
            cache.1.clear();
        }
        cache.1.insert(hash, rp.clone());
        Ok(rp)
    }

    /// Forgets remembered authentications (after a write through this connection, which does
    /// not change `data_version`).
    fn forget_authentications(&self) {
        self.auth_cache.borrow_mut().1.clear();
    }
}

fn row_to_rp(r: &jpki_db::Row<'_>) -> Result<Result<RelyingParty, PlatformError>, jpki_db::DbError> {
    let caps: String = r.get(2)?;
    let ages: String = r.get(3)?;
    let at: i64 = r.get(4)?;
    let keys: i64 = r.get(5)?;
    let id: String = r.get(0)?;
    let name: String = r.get(1)?;
    let purpose: String = r.get(6)?;
    Ok((|| {
        let capabilities = caps
            .split(',')
            .filter(|c| !c.is_empty())
            .map(Capability::from_str)
            .collect::<Result<_, _>>()?;
        let age_thresholds = ages
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse::<u8>()
                    .map_err(|_| PlatformError::Corrupt(format!("age threshold {a:?}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(RelyingParty {
            id,
            name,
            capabilities,
            age_thresholds,
            registered_at: OffsetDateTime::from_unix_timestamp(at)
                .map_err(|_| PlatformError::Corrupt(format!("registration time {at}")))?,
            active_keys: u32::try_from(keys).unwrap_or(u32::MAX),
            purpose,
        })
    })())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::each_engine;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn caps(s: &str) -> BTreeSet<Capability> {
        s.split(',').map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn register_authenticate_rotate_and_revoke() {
        each_engine(|engine, dir| {
            let mut reg = Registry::open_at(&engine.fresh(dir, POSTGRES_SCHEMA)).unwrap();
            let (bank, key) = reg
                .add(
                    &NewRelyingParty {
                        name: "みずほ銀行",
                        capabilities: caps("sign-status,personal-data,age"),
                        age_thresholds: vec![20, 18, 18],
                        purpose: Some("account opening"),
                    },
                    now(),
                )
                .unwrap();
            assert!(bank.id.starts_with("rp-") && bank.id.len() == 19, "{}", bank.id);
            assert_eq!(bank.age_thresholds, vec![18, 20]);
            assert_eq!(bank.purpose, "account opening");
            assert!(bank.may(Capability::SignStatus) && !bank.may(Capability::AuthStatus));
            assert_eq!(reg.authenticate(key.expose()).unwrap().unwrap().id, bank.id);
            assert!(reg.authenticate("jpki_0000").unwrap().is_none());
            assert!(reg.authenticate("").unwrap().is_none());
            // The key is stored hashed only.
            if engine.backend() == Backend::Sqlite {
                let mut dump = Vec::new();
                for f in std::fs::read_dir(dir).unwrap() {
                    dump.extend(std::fs::read(f.unwrap().path()).unwrap());
                }
                let has = |needle: &[u8]| dump.windows(needle.len()).any(|w| w == needle);
                assert!(has(bank.name.as_bytes()), "the dump is readable");
                assert!(!has(key.expose().as_bytes()));
            }
            let stored: Vec<Vec<u8>> = reg
                .db
                .query_map("SELECT key_hash FROM api_keys", params![], |r| r.get(0))
                .unwrap();
            assert_eq!(stored, vec![key_hash(key.expose())]);
            assert_eq!(format!("{key:?}"), "ApiKey(…)");

            let second = reg.new_key(&bank.id, now()).unwrap();
            assert_eq!(reg.get(&bank.id).unwrap().active_keys, 2);
            assert_eq!(reg.revoke_keys(&bank.id, now()).unwrap(), 2);
            assert!(
                reg.authenticate(key.expose()).unwrap().is_none(),
                "refused at once"
            );
            assert!(reg.authenticate(second.expose()).unwrap().is_none());
            assert_eq!(reg.list().unwrap().len(), 1);
            assert!(matches!(
                reg.revoke_keys("rp-nobody", now()),
                Err(PlatformError::NotFound(_))
            ));
            // Metered checks add up.
            let month = "2027-01".to_owned();
            let line = (
                bank.id.clone(),
                month.clone(),
                jpki_model::CertKind::Signature,
                "validity",
            );
            reg.add_metered(&[(line.clone(), 2)]).unwrap();
            reg.add_metered(&[(line, 3)]).unwrap();
            assert_eq!(
                reg.metered(&bank.id, &month).unwrap(),
                vec![("sign".to_owned(), "validity".to_owned(), 5)]
            );
        });
    }

    #[test]
    fn client_certificates_authenticate_until_revoked() {
        each_engine(|engine, dir| {
            let mut reg = Registry::open_at(&engine.fresh(dir, POSTGRES_SCHEMA)).unwrap();
            let (rp, _key) = reg
                .add(
                    &NewRelyingParty {
                        name: "Bank",
                        capabilities: caps("auth-status"),
                        age_thresholds: Vec::new(),
                        purpose: None,
                    },
                    now(),
                )
                .unwrap();
            let key = jpki_pki::SigningKey::generate(jpki_pki::KeyType::P384).unwrap();
            let der = jpki_pki::issue_root(&jpki_pki::RootSpec {
                kind: jpki_model::CertKind::Authentication,
                key: &key,
                serial: &jpki_model::Serial::from_be_bytes(&[9]).unwrap(),
                not_before: now(),
                not_after: now() + time::Duration::days(1),
                endpoints: &jpki_pki::Endpoints::new("http://127.0.0.1:7700").unwrap(),
                generation: 1,
            })
            .unwrap();
            let fp = reg.add_client_cert(&rp.id, &der, now()).unwrap();
            assert_eq!(reg.authenticate_client(&fp).unwrap().unwrap().id, rp.id);
            assert!(reg.authenticate_client(&[0; 32]).unwrap().is_none());
            assert!(
                reg.add_client_cert(&rp.id, &der, now())
                    .unwrap_err()
                    .to_string()
                    .contains("already")
            );
            assert!(reg.add_client_cert(&rp.id, b"junk", now()).is_err());
            assert_eq!(
                reg.revoke_keys(&rp.id, now()).unwrap(),
                2,
                "the key and the certificate"
            );
            assert!(reg.authenticate_client(&fp).unwrap().is_none());
            // Registered again after the revocation.
            assert_eq!(reg.add_client_cert(&rp.id, &der, now()).unwrap(), fp);
            assert_eq!(reg.authenticate_client(&fp).unwrap().unwrap().id, rp.id);
        });
    }

    #[test]
    fn bad_registrations_name_the_problem_and_write_nothing() {
        each_engine(|engine, dir| {
            let mut reg = Registry::open_at(&engine.fresh(dir, POSTGRES_SCHEMA)).unwrap();
            let bad = |name: &'static str, c: &str, ages: Vec<u8>| NewRelyingParty {
                name,
                capabilities: if c.is_empty() { BTreeSet::new() } else { caps(c) },
                age_thresholds: ages,
                purpose: None,
            };
            for (rp, needle) in [
                (bad("", "age", vec![18]), "name"),
                (bad("shop\u{7}", "age", vec![18]), "name"),
                (bad("shop", "", vec![]), "capability"),
                (bad("shop", "age", vec![]), "needs --age-thresholds"),
                (bad("shop", "auth-status", vec![18]), "without the age capability"),
                (bad("shop", "age", vec![0]), "1 to 150"),
            ] {
                let e = reg.add(&rp, now()).unwrap_err().to_string();
                assert!(e.contains(needle), "{e}");
                assert!(!e.contains('\n'));
            }
            assert!(reg.list().unwrap().is_empty());
            let e = "owner".parse::<Capability>().unwrap_err().to_string();
            assert!(e.contains("\"owner\"") && e.contains("auth-status"), "{e}");
        });
    }

    /// Another process's revocation is seen by the next authentication (SQLite: the remembered
    /// answers are dropped when the file changes; PostgreSQL: every request is looked up).
    #[test]
    fn a_key_revoked_elsewhere_is_refused_at_once() {
        each_engine(|engine, dir| {
            let loc = engine.fresh(dir, POSTGRES_SCHEMA);
            let mut reg = Registry::open_at(&loc).unwrap();
            let (rp, key) = reg
                .add(
                    &NewRelyingParty {
                        name: "Shop",
                        capabilities: caps("auth-status"),
                        age_thresholds: Vec::new(),
                        purpose: None,
                    },
                    now(),
                )
                .unwrap();
            assert_eq!(reg.authenticate(key.expose()).unwrap().unwrap().id, rp.id);
            let mut other = Registry::open_at(&loc).unwrap();
            other.revoke_keys(&rp.id, now()).unwrap();
            assert!(reg.authenticate(key.expose()).unwrap().is_none());
        });
    }
}
