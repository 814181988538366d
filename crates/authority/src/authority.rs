//! The authority's operations: initialisation, residents and their life events, card issuance,
//! renewal, loss, and revocation. Each public method is one registry transaction.
use std::path::{Path, PathBuf};

use jpki_db::{Db, params};
use jpki_model::validity::{self, jst_date, jst_end_of_day};
use jpki_model::{
    Address, BasicFour, CardId, CertKind, IndividualNumber, Name, ResidentRecordCode, RevocationReason,
    Serial, Sex,
};
use jpki_pki::{EndEntitySpec, Endpoints, Issuer, KeyType, RootSpec, SigningKey, SubjectPublicKey};
use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};

use crate::AuthorityError;
use crate::store::{self, REGISTRY_FILE, from_ts, reason_from, serial_from_blob, ts, write_atomically};

pub(crate) const KEY_DIR: &str = "keys";

/// Choices made once at `jpki init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Algorithm of both CA keys.
    pub key_type: KeyType,
    /// Where the platform will serve CRLs, OCSP and CA certificates.
    pub endpoints: Endpoints,
    /// Number of CRL shards per CA (1 to 65,535).
    pub shards: u16,
    /// PBKDF2 iterations protecting the CA keys at rest.
    pub kdf_iterations: u32,
    /// Validity of the roots in years.
    pub root_years: u8,
}

impl InitOptions {
    /// PBKDF2 iterations when nothing else is chosen.
    pub const DEFAULT_KDF_ITERATIONS: u32 = 600_000;

    /// Defaults: RSA-2048, the default public URL, 16 shards, 600,000 PBKDF2 iterations, 20-year roots.
    pub fn new(key_type: KeyType, endpoints: Endpoints) -> Self {
        Self {
            key_type,
            endpoints,
            shards: 16,
            kdf_iterations: Self::DEFAULT_KDF_ITERATIONS,
            root_years: 20,
        }
    }
}

/// The authority's stored settings.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// CA key algorithm.
    #[serde(serialize_with = "ser_key_type")]
    pub key_type: KeyType,
    /// Public base URL.
    #[serde(serialize_with = "ser_endpoints")]
    pub endpoints: Endpoints,
    /// CRL shards per CA.
    pub shards: u16,
    /// Hours between a CRL's thisUpdate and nextUpdate.
    pub crl_validity_hours: u32,
}

fn ser_key_type<S: serde::Serializer>(k: &KeyType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}
fn ser_endpoints<S: serde::Serializer>(e: &Endpoints, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.base())
}

/// Both CAs with their keys decrypted, ready to sign.
#[derive(Debug)]
pub struct Issuers {
    /// Every generation of each CA, oldest first (never empty).
    sign: Vec<Issuer>,
    auth: Vec<Issuer>,
}

impl Issuers {
    fn all_of(&self, kind: CertKind) -> &[Issuer] {
        match kind {
            CertKind::Signature => &self.sign,
            CertKind::Authentication => &self.auth,
        }
    }

    /// The current CA of `kind` (its newest generation): what issues certificates now.
    pub fn get(&self, kind: CertKind) -> &Issuer {
        let all = self.all_of(kind);
        // `Authority::issuers` never builds an empty list.
        &all[all.len() - 1]
    }

    /// Every generation of `kind`'s CA, oldest first: each publishes the CRLs of the
    /// certificates it issued.
    pub fn generations(&self, kind: CertKind) -> &[Issuer] {
        self.all_of(kind)
    }
}

/// Lifecycle state of a resident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResidentStatus {
    /// Registered in Japan.
    Active,
    /// Moved abroad: may keep the card and its authentication certificate.
    Emigrated,
    /// Deceased: every certificate revoked, nothing more is issued.
    Deceased,
}

impl ResidentStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Emigrated => "emigrated",
            Self::Deceased => "deceased",
        }
    }
    fn parse(s: &str) -> Result<Self, AuthorityError> {
        match s {
            "active" => Ok(Self::Active),
            "emigrated" => Ok(Self::Emigrated),
            "deceased" => Ok(Self::Deceased),
            o => Err(AuthorityError::Corrupt(format!("resident status {o:?}"))),
        }
    }
}

/// A resident as the registry holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResidentRecord {
    /// Registry identifier.
    pub resident_id: i64,
    /// The individual number (identifies; never authenticates, never goes into a certificate).
    pub individual_number: IndividualNumber,
    /// 住民票コード.
    #[serde(serialize_with = "ser_display")]
    pub resident_code: ResidentRecordCode,
    /// The basic four information.
    #[serde(flatten, serialize_with = "ser_facts")]
    pub facts: BasicFour,
    /// Lifecycle state.
    pub status: ResidentStatus,
}

fn ser_display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn ser_facts<S: serde::Serializer>(f: &BasicFour, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(4))?;
    m.serialize_entry("name", f.name.as_str())?;
    m.serialize_entry("address", f.address.as_str())?;
    m.serialize_entry("birth_date", &f.birth_date.to_string())?;
    m.serialize_entry("sex", &f.sex.code())?;
    m.end()
}

/// State of a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CardStatus {
    /// In use.
    Active,
    /// Reported lost; its certificates are on hold until found or confirmed.
    Suspended,
    /// Loss confirmed; certificates revoked (keyCompromise).
    Lost,
    /// Replaced or its holder deceased.
    Revoked,
}

impl CardStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Lost => "lost",
            Self::Revoked => "revoked",
        }
    }
    fn parse(s: &str) -> Result<Self, AuthorityError> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "lost" => Ok(Self::Lost),
            "revoked" => Ok(Self::Revoked),
            o => Err(AuthorityError::Corrupt(format!("card status {o:?}"))),
        }
    }
}

/// Revocation state of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Suspended (certificateHold): may be released.
    Hold,
    /// Revoked for good.
    Revoked,
}

impl CertStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Hold => "hold",
            Self::Revoked => "revoked",
        }
    }
    fn parse(s: &str) -> Result<Self, AuthorityError> {
        match s {
            "good" => Ok(Self::Good),
            "hold" => Ok(Self::Hold),
            "revoked" => Ok(Self::Revoked),
            o => Err(AuthorityError::Corrupt(format!("certificate status {o:?}"))),
        }
    }
}

/// A certificate as the registry holds it.
#[derive(Debug, Clone, Serialize)]
pub struct CertRecord {
    /// Serial (lowercase hex in JSON).
    pub serial: Serial,
    /// Signature or authentication.
    pub kind: CertKind,
    /// The card it was issued to.
    pub card_id: String,
    /// Revocation state.
    pub status: CertStatus,
    /// Why it was revoked or held.
    pub reason: Option<RevocationReason>,
    /// When it was revoked or held.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// The CRL shard its serial carries.
    pub shard: u16,
    /// DER.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// A certificate just issued.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedCert {
    /// Serial.
    pub serial: Serial,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// DER.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// The public keys a card generated, presented for certification (the CSR-like request).
#[derive(Debug, Clone)]
pub struct CardKeys {
    /// Public half of the authentication key pair.
    pub auth: SubjectPublicKey,
    /// Public half of the signature key pair.
    pub sign: SubjectPublicKey,
}

/// A newly issued card.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedCard {
    /// Card identifier.
    pub card_id: CardId,
    /// Holder.
    pub resident_id: i64,
    /// Last day of the card's validity (JST).
    pub expires_on: String,
    /// The user-authentication certificate.
    pub auth: IssuedCert,
    /// The signature certificate (none for residents under 15 or abroad).
    pub sign: Option<IssuedCert>,
    /// Serials of an earlier card's certificates this issuance superseded.
    pub superseded: Vec<Serial>,
}

/// How [`Authority::issue_run`] splits its work.
/// How big the registry is.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RegistryStats {
    /// Residents registered (any status).
    pub residents: u64,
    /// Cards issued.
    pub cards: u64,
    /// Certificates issued.
    pub certificates: u64,
    /// Certificates revoked or on hold.
    pub revoked: u64,
    /// Of those, the ones not yet expired: what the CRLs list.
    pub on_crls: u64,
    /// Bytes the registry takes (SQLite: the file and its WAL; PostgreSQL: the schema's tables
    /// with their indexes and TOAST).
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Cards per registry transaction (one fsync each).
    pub batch: usize,
    /// Threads signing the next batch while the current one commits.
    pub workers: usize,
}

impl Default for RunOptions {
    /// Batches of 1,024 cards, one signing thread per core.
    fn default() -> Self {
        Self {
            batch: 1024,
            workers: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// Which certificates a renewal replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// Renew the authentication certificate.
    pub auth: bool,
    /// Renew (or, after a move, reissue) the signature certificate.
    pub sign: bool,
}

/// The result of a renewal.
#[derive(Debug, Clone, Serialize)]
pub struct RenewedCard {
    /// Card identifier.
    pub card_id: String,
    /// The new authentication certificate.
    pub auth: Option<IssuedCert>,
    /// The new signature certificate.
    pub sign: Option<IssuedCert>,
    /// Certificates revoked as superseded.
    pub superseded: Vec<Serial>,
}

/// Certificates whose status an operation changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Revoked {
    /// (serial, new status, reason) for each change.
    pub changed: Vec<(Serial, CertStatus, Option<RevocationReason>)>,
}

/// An open authority: its data directory, registry and settings.
pub struct Authority {
    dir: PathBuf,
    conn: Db,
    settings: Settings,
    clock: Box<dyn Fn() -> OffsetDateTime + Send>,
    /// Who the audit trail names for this handle's actions.
    pub(crate) operator: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("dir", &self.dir)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N], AuthorityError> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| AuthorityError::State("the system random generator failed".into()))?;
    Ok(b)
}

fn now_utc() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

impl Authority {
    /// Creates a new authority in `dir`: both CA key pairs (encrypted under `passphrase`), both
    /// self-signed roots, and the registry. Fails when `dir` already holds one.
    pub fn init(dir: &Path, opts: &InitOptions, passphrase: &[u8]) -> Result<Self, AuthorityError> {
        Self::init_at(dir, opts, passphrase, None)
    }

    /// As [`init`](Self::init), with the registry in the PostgreSQL database at `database`
    /// (`postgres://…`, schema `registry`) instead of `DATA/registry.sqlite3`; the URL is kept in
    /// `DATA/database` (0600) for every later command on `dir`.
    pub fn init_at(
        dir: &Path,
        opts: &InitOptions,
        passphrase: &[u8],
        database: Option<&str>,
    ) -> Result<Self, AuthorityError> {
        if opts.shards == 0 {
            return Err(AuthorityError::State("shards: at least 1".into()));
        }
        std::fs::create_dir_all(dir).map_err(AuthorityError::io(dir))?;
        let location = match database {
            Some(url) if jpki_db::Location::is_postgres_url(url) => jpki_db::Location::Postgres {
                url: url.to_owned(),
                schema: store::REGISTRY_SCHEMA.to_owned(),
            },
            Some(other) => {
                return Err(AuthorityError::State(format!(
                    "--db {}: expected a postgres:// URL (the default registry is SQLite in the data directory)",
                    jpki_db::redact_url(other)
                )));
            }
            None => match store::registry_location(dir)? {
                Some(existing) => existing,
                None => jpki_db::Location::Sqlite(dir.join(REGISTRY_FILE)),
            },
        };
        if let Some(existing) = store::registry_location(dir)?
            && existing != location
        {
            return Err(AuthorityError::AlreadyInitialised(format!(
                "{} (its registry is {})",
                dir.display(),
                existing.redacted()
            )));
        }
        let conn = store::open(&location, true)?;
        let initialised: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM settings WHERE key = 'key_type')",
            params![],
            |r| r.get(0),
        )?;
        if initialised {
            return Err(AuthorityError::AlreadyInitialised(match &location {
                jpki_db::Location::Sqlite(_) => dir.display().to_string(),
                pg => pg.redacted(),
            }));
        }
        if let jpki_db::Location::Postgres { url, .. } = &location {
            write_atomically(
                &dir.join(store::DATABASE_FILE),
                format!("{url}\n").as_bytes(),
                0o600,
            )?;
        }
        let now = now_utc();
        let tx = conn.begin_write()?;
        for kind in [CertKind::Signature, CertKind::Authentication] {
            let key = SigningKey::generate(opts.key_type)?;
            let serial = Serial::from_be_bytes(&random::<16>()?.map(|b| b & 0x7f))?;
            let not_after = now
                .replace_year(now.year() + i32::from(opts.root_years))
                .unwrap_or(now + Duration::days(7300));
            let cert = jpki_pki::issue_root(&RootSpec {
                kind,
                key: &key,
                serial: &serial,
                not_before: now,
                not_after,
                endpoints: &opts.endpoints,
                generation: 1,
            })?;
            // The key file is written before the transaction that names it commits; a crash in
            // between leaves an unreferenced file that the next `init` overwrites.
            let rel = format!("{KEY_DIR}/{}-ca-1.key.pem", kind.as_str());
            let pem = key.to_encrypted_pem(passphrase, opts.kdf_iterations)?;
            write_atomically(&dir.join(&rel), pem.as_bytes(), 0o600)?;
            tx.execute(
                "INSERT INTO cas (kind, generation, key_type, key_file, cert_der, created_at) VALUES (?1, 1, ?2, ?3, ?4, ?5)",
                params![kind.as_str(), opts.key_type.as_str(), rel, cert, ts(now)],
            )?;
            tx.execute(
                "INSERT INTO crl_counters (kind, last_number) VALUES (?1, 0)",
                params![kind.as_str()],
            )?;
        }
        // The card-data key (always RSA-2048: the card formats carry a 256-byte modulus).
        crate::carddata::create_key(dir, passphrase, opts.kdf_iterations)?;
        for (k, v) in [
            ("key_type", opts.key_type.as_str().to_owned()),
            ("public_url", opts.endpoints.base().to_owned()),
            ("shards", opts.shards.to_string()),
            ("crl_validity_hours", "24".to_owned()),
        ] {
            tx.execute("INSERT INTO settings (key, value) VALUES (?1, ?2)", params![k, v])?;
        }
        event(
            &tx,
            &crate::audit::default_operator(),
            now,
            "init",
            None,
            None,
            &format!("key type {}", opts.key_type.as_str()),
        )?;
        tx.commit()?;
        drop(conn);
        Self::open(dir)
    }

    /// Opens the authority in `dir` (no key is decrypted until [`Authority::issuers`]).
    pub fn open(dir: &Path) -> Result<Self, AuthorityError> {
        Self::open_with(dir, true)
    }

    /// As [`open`](Self::open), but never changes the registry's schema: a registry at another
    /// version is refused. What verifiers sharing the authority's database use.
    pub fn open_without_migrating(dir: &Path) -> Result<Self, AuthorityError> {
        Self::open_with(dir, false)
    }

    fn open_with(dir: &Path, migrate: bool) -> Result<Self, AuthorityError> {
        let Some(location) = store::registry_location(dir)? else {
            return Err(AuthorityError::NotInitialised(dir.display().to_string()));
        };
        let conn = if migrate {
            store::open(&location, false)?
        } else {
            store::open_unmigrated(&location)?
        };
        let get = |k: &str| -> Result<Option<String>, AuthorityError> {
            Ok(
                conn.query_opt("SELECT value FROM settings WHERE key = ?1", params![k], |r| {
                    r.get(0)
                })?,
            )
        };
        let Some(key_type) = get("key_type")? else {
            return Err(AuthorityError::NotInitialised(dir.display().to_string()));
        };
        let corrupt = |what: &str| AuthorityError::Corrupt(format!("setting {what} is missing or invalid"));
        let settings = Settings {
            key_type: key_type.parse().map_err(|_| corrupt("key_type"))?,
            endpoints: Endpoints::new(&get("public_url")?.ok_or_else(|| corrupt("public_url"))?)?,
            shards: get("shards")?
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| corrupt("shards"))?,
            crl_validity_hours: get("crl_validity_hours")?
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| corrupt("crl_validity_hours"))?,
        };
        Ok(Self {
            dir: dir.to_owned(),
            conn,
            settings,
            clock: Box::new(now_utc),
            operator: crate::audit::default_operator(),
        })
    }

    /// Replaces the clock (tests and simulations).
    pub fn set_clock(&mut self, clock: impl Fn() -> OffsetDateTime + Send + 'static) {
        self.clock = Box::new(clock);
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// The stored settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn connection(&self) -> &Db {
        &self.conn
    }

    pub(crate) fn conn(&mut self) -> &Db {
        &self.conn
    }

    /// The registry's engine.
    pub fn backend(&self) -> jpki_db::Backend {
        self.conn.backend()
    }

    /// Where the registry is, for messages (a PostgreSQL password is not shown).
    pub fn registry_location(&self) -> String {
        match store::registry_location(&self.dir) {
            Ok(Some(l)) => l.redacted(),
            _ => self.dir.join(REGISTRY_FILE).display().to_string(),
        }
    }

    /// The current root certificate (DER) of `kind`.
    pub fn ca_cert(&self, kind: CertKind) -> Result<Vec<u8>, AuthorityError> {
        Ok(self.conn.query_row(
            "SELECT cert_der FROM cas WHERE kind = ?1 ORDER BY generation DESC LIMIT 1",
            params![kind.as_str()],
            |r| r.get(0),
        )?)
    }

    /// Decrypts both CA keys with `passphrase`.
    pub fn issuers(&self, passphrase: &[u8]) -> Result<Issuers, AuthorityError> {
        let load = |kind: CertKind| -> Result<Vec<Issuer>, AuthorityError> {
            let rows: Vec<(String, Vec<u8>)> = self.conn.query_map(
                "SELECT key_file, cert_der FROM cas WHERE kind = ?1 ORDER BY generation",
                params![kind.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if rows.is_empty() {
                return Err(AuthorityError::Corrupt(format!(
                    "no {} CA in the registry",
                    kind.as_str()
                )));
            }
            rows.into_iter()
                .map(|(file, cert)| {
                    let path = self.dir.join(file);
                    let pem = zeroize::Zeroizing::new(
                        std::fs::read_to_string(&path).map_err(AuthorityError::io(&path))?,
                    );
                    let key = SigningKey::from_encrypted_pem(&pem, passphrase)?;
                    Ok(Issuer::new(kind, key, cert)?)
                })
                .collect()
        };
        Ok(Issuers {
            sign: load(CertKind::Signature)?,
            auth: load(CertKind::Authentication)?,
        })
    }

    // ----- residents -------------------------------------------------------------------------

    /// Registers a resident. Without `number`, a fresh valid unused individual number is drawn.
    pub fn add_resident(
        &mut self,
        facts: &BasicFour,
        number: Option<IndividualNumber>,
    ) -> Result<ResidentRecord, AuthorityError> {
        let mut out = self.add_residents(&[(facts.clone(), number)])?;
        out.pop()
            .ok_or_else(|| AuthorityError::State("registration produced no resident".into()))
    }

    /// Registers many residents in one registry transaction (one fsync): what a municipality's
    /// bulk transfer uses. All or nothing: a future birth date or a number already assigned
    /// (also twice within the batch) refuses the whole batch.
    pub fn add_residents(
        &mut self,
        people: &[(BasicFour, Option<IndividualNumber>)],
    ) -> Result<Vec<ResidentRecord>, AuthorityError> {
        let now = self.now();
        let today = jst_date(now);
        if let Some((facts, _)) = people.iter().find(|(f, _)| f.birth_date > today) {
            return Err(AuthorityError::State(format!(
                "birth date: {} is in the future",
                facts.birth_date
            )));
        }
        let tx = self.conn.begin_write()?;
        let taken = |n: &str, col: &str| -> Result<bool, AuthorityError> {
            Ok(tx.query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM residents WHERE {col} = ?1)"),
                params![n],
                |r| r.get(0),
            )?)
        };
        let mut out = Vec::with_capacity(people.len());
        for (facts, number) in people {
            let number = match number {
                Some(n) if taken(n.as_str(), "individual_number")? => {
                    return Err(AuthorityError::NumberInUse);
                }
                Some(n) => n.clone(),
                None => loop {
                    let n = IndividualNumber::from_random_bytes(random()?);
                    if !taken(n.as_str(), "individual_number")? {
                        break n;
                    }
                },
            };
            let code = loop {
                let c = ResidentRecordCode::from_random_bytes(random()?);
                if !taken(c.as_str(), "resident_code")? {
                    break c;
                }
            };
            let id: i64 = tx.query_row(
                "INSERT INTO residents (individual_number, resident_code, name, address, birth_date, sex, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?7) RETURNING id",
                params![
                    number.as_str(),
                    code.as_str(),
                    facts.name.as_str(),
                    facts.address.as_str(),
                    facts.birth_date.to_string(),
                    facts.sex.code(),
                    ts(now)
                ],
                |r| r.get(0),
            )?;
            event(&tx, &self.operator, now, "resident-add", Some(id), None, "")?;
            out.push(ResidentRecord {
                resident_id: id,
                individual_number: number,
                resident_code: code,
                facts: facts.clone(),
                status: ResidentStatus::Active,
            });
        }
        tx.commit()?;
        Ok(out)
    }

    /// Looks a resident up.
    pub fn resident(&self, id: i64) -> Result<ResidentRecord, AuthorityError> {
        load_resident(&self.conn, id)
    }

    /// Whether the resident may be issued a signature certificate today (15 or older, living in Japan).
    pub fn signature_eligible(&self, id: i64) -> Result<bool, AuthorityError> {
        Ok(sign_allowed(
            &load_resident(&self.conn, id)?,
            jst_date(self.now()),
        ))
    }

    /// Address change (転居/転入): the signature certificate is revoked (affiliationChanged) because
    /// its recorded facts changed; the authentication certificate stays.
    pub fn move_resident(&mut self, id: i64, address: &Address) -> Result<Revoked, AuthorityError> {
        self.change_facts(id, "resident-move", |tx, now| {
            tx.execute(
                "UPDATE residents SET address = ?1, updated_at = ?2 WHERE id = ?3",
                params![address.as_str(), ts(now), id],
            )
        })
    }

    /// Name change: as an address change.
    pub fn rename_resident(&mut self, id: i64, name: &Name) -> Result<Revoked, AuthorityError> {
        self.change_facts(id, "resident-rename", |tx, now| {
            tx.execute(
                "UPDATE residents SET name = ?1, updated_at = ?2 WHERE id = ?3",
                params![name.as_str(), ts(now), id],
            )
        })
    }

    fn change_facts(
        &mut self,
        id: i64,
        ev: &str,
        update: impl FnOnce(&Db, OffsetDateTime) -> Result<u64, jpki_db::DbError>,
    ) -> Result<Revoked, AuthorityError> {
        let now = self.now();
        let tx = self.conn.begin_write()?;
        let r = load_resident(&tx, id)?;
        if r.status == ResidentStatus::Deceased {
            return Err(AuthorityError::State(format!("resident {id}: deceased")));
        }
        update(&tx, now)?;
        let out = revoke_where(
            &tx,
            now,
            "resident_id = ?1 AND kind = 'sign'",
            &id,
            RevocationReason::AffiliationChanged,
            ev,
        )?;
        event(&tx, &self.operator, now, ev, Some(id), None, "")?;
        tx.commit()?;
        Ok(out)
    }

    /// Emigration: the signature certificate is revoked; since 2024 the card and its authentication
    /// certificate may be kept abroad.
    pub fn emigrate(&mut self, id: i64) -> Result<Revoked, AuthorityError> {
        self.end_residence(id, ResidentStatus::Emigrated)
    }

    /// Death: both certificates revoked (cessationOfOperation), every card revoked.
    pub fn decease(&mut self, id: i64) -> Result<Revoked, AuthorityError> {
        self.end_residence(id, ResidentStatus::Deceased)
    }

    fn end_residence(&mut self, id: i64, to: ResidentStatus) -> Result<Revoked, AuthorityError> {
        let now = self.now();
        let tx = self.conn.begin_write()?;
        let r = load_resident(&tx, id)?;
        if r.status == ResidentStatus::Deceased || r.status == to {
            return Err(AuthorityError::State(format!(
                "resident {id}: already {}",
                r.status.as_str()
            )));
        }
        let (ev, out) = if to == ResidentStatus::Deceased {
            tx.execute(
                "UPDATE cards SET status = 'revoked' WHERE resident_id = ?1",
                params![id],
            )?;
            (
                "resident-decease",
                revoke_where(
                    &tx,
                    now,
                    "resident_id = ?1",
                    &id,
                    RevocationReason::CessationOfOperation,
                    "resident-decease",
                )?,
            )
        } else {
            (
                "resident-emigrate",
                revoke_where(
                    &tx,
                    now,
                    "resident_id = ?1 AND kind = 'sign'",
                    &id,
                    RevocationReason::AffiliationChanged,
                    "resident-emigrate",
                )?,
            )
        };
        tx.execute(
            "UPDATE residents SET status = ?1, updated_at = ?2 WHERE id = ?3",
            params![to.as_str(), ts(now), id],
        )?;
        event(&tx, &self.operator, now, ev, Some(id), None, "")?;
        tx.commit()?;
        Ok(out)
    }

    // ----- cards and certificates -------------------------------------------------------------

    /// Issues a card to a resident: certifies the public keys the card generated. Residents under
    /// 15 and residents abroad get no signature certificate. An earlier card of the same resident is
    /// replaced: its certificates are revoked as superseded and linked old → new.
    pub fn issue_card(
        &mut self,
        resident_id: i64,
        keys: &CardKeys,
        issuers: &Issuers,
    ) -> Result<IssuedCard, AuthorityError> {
        let mut out = self.issue_cards(&[(resident_id, keys)], issuers)?;
        out.pop()
            .ok_or_else(|| AuthorityError::State("issuance produced no card".into()))
    }

    /// Issues many cards in one registry transaction (one fsync for the whole batch): what a
    /// card-production run uses. All or nothing: if any request fails (unknown or deceased
    /// resident, …) no card of the batch is issued and the error names the resident.
    ///
    /// The certificates are built and signed *before* the write transaction, so other writers
    /// (threads or processes on the same registry) keep working while this one signs. Inside the
    /// transaction each card's inputs are read again; a card whose resident, previous certificates,
    /// card identifier or serials changed meanwhile is discarded (never delivered) and re-signed
    /// under the lock. Serials stay unique forever: one is only ever used in a certificate committed
    /// together with its row, and the primary key refuses a repeat.
    pub fn issue_cards(
        &mut self,
        requests: &[(i64, &CardKeys)],
        issuers: &Issuers,
    ) -> Result<Vec<IssuedCard>, AuthorityError> {
        let now = self.now();
        let inputs = read_inputs(&self.conn, requests)?;
        let plans = inputs
            .into_iter()
            .zip(requests)
            .map(|(inputs, &(_, keys))| plan_card(inputs, &self.settings, issuers, now, keys))
            .collect::<Result<Vec<_>, _>>()?;
        commit_plans(
            &self.conn,
            &self.operator,
            &self.settings,
            issuers,
            now,
            requests,
            plans,
        )
    }

    /// A card-production run: issues every request in batches of `opts.batch` cards, each batch
    /// one transaction as in [`issue_cards`](Self::issue_cards), with the certificates of the next
    /// batch signed on `opts.workers` threads while this one commits. `on_batch` receives each
    /// batch's cards once they are durable (to hand them to the card printer, count progress, …);
    /// an error from it stops the run. Returns how many cards were issued. On an error, the
    /// batches already passed to `on_batch` stay issued and nothing of the failing batch is.
    pub fn issue_run(
        &mut self,
        requests: &[(i64, &CardKeys)],
        issuers: &Issuers,
        opts: RunOptions,
        on_batch: &mut dyn FnMut(Vec<IssuedCard>) -> Result<(), AuthorityError>,
    ) -> Result<usize, AuthorityError> {
        let Self {
            conn,
            settings,
            clock,
            operator,
            ..
        } = self;
        let settings = &*settings;
        let chunks: Vec<&[(i64, &CardKeys)]> = requests.chunks(opts.batch.max(1)).collect();
        let workers = opts.workers.max(1);
        std::thread::scope(|scope| -> Result<usize, AuthorityError> {
            let mut issued = 0;
            let mut pending: Option<(usize, OffsetDateTime, Vec<CardPlan>)> = None;
            for (i, chunk) in chunks.iter().enumerate() {
                let now = clock();
                let inputs = read_inputs(conn, chunk)?;
                let signing = sign_in_background(scope, inputs, chunk, settings, issuers, now, workers);
                if let Some((j, then, plans)) = pending.take() {
                    let cards = commit_plans(conn, operator, settings, issuers, then, chunks[j], plans)?;
                    issued += cards.len();
                    on_batch(cards)?;
                }
                pending = Some((i, now, join_plans(signing, chunk.len())?));
            }
            if let Some((j, then, plans)) = pending {
                let cards = commit_plans(conn, operator, settings, issuers, then, chunks[j], plans)?;
                issued += cards.len();
                on_batch(cards)?;
            }
            Ok(issued)
        })
    }

    /// Whether `card_id` could be renewed now (active, unexpired, holder alive): checked before
    /// the card replaces keys that still work, since [`renew`](Self::renew) checks again.
    pub fn check_renewable(&self, card_id: &str) -> Result<(), AuthorityError> {
        renewable(&self.conn, card_id, jst_date(self.now())).map(|_| ())
    }

    /// Renews (or reissues) certificates on an existing card with new key pairs the card generated:
    /// new serials, the old certificates superseded, old → new linked (新旧紐付け).
    pub fn renew(
        &mut self,
        card_id: &str,
        keys: &CardKeys,
        which: Renewal,
        issuers: &Issuers,
    ) -> Result<RenewedCard, AuthorityError> {
        let now = self.now();
        let today = jst_date(now);
        let settings = self.settings.clone();
        let tx = self.conn.begin_write()?;
        let (resident_id, r, expires_on) = renewable(&tx, card_id, today)?;
        let last_day = validity::certificate_last_day(r.facts.birth_date, today, expires_on);
        let signer = CertSigner {
            registry: Some(&tx),
            issuers,
            settings: &settings,
            now,
            not_after: jst_end_of_day(last_day),
        };
        // The newest certificate of each kind on this card, whatever its status, is the "old" one.
        let newest = |kind: CertKind| -> Result<Option<(Serial, CertStatus)>, AuthorityError> {
            tx.query_opt(
                "SELECT serial, status FROM certificates WHERE card_id = ?1 AND kind = ?2 ORDER BY issued_at DESC, id DESC LIMIT 1",
                params![card_id, kind.as_str()],
                |x| Ok((x.get::<Vec<u8>>(0)?, x.get::<String>(1)?)),
            )?
            .map(|(s, st)| Ok((serial_from_blob(&s)?, CertStatus::parse(&st)?)))
            .transpose()
        };
        let mut superseded = Vec::new();
        let mut renew_one = |kind: CertKind,
                             key: &SubjectPublicKey,
                             facts: Option<&BasicFour>|
         -> Result<IssuedCert, AuthorityError> {
            let old = newest(kind)?;
            let new = signer.sign(kind, key, facts)?;
            store_cert(
                &tx,
                kind,
                &new,
                card_id,
                resident_id,
                issuers.get(kind).generation(),
                now,
            )?;
            if let Some((old, st)) = old {
                supersede(
                    &tx,
                    &old,
                    st,
                    Some(&new.serial),
                    now,
                    "card-renew",
                    &mut superseded,
                )?;
            }
            Ok(new)
        };
        let auth = if which.auth {
            Some(renew_one(CertKind::Authentication, &keys.auth, None)?)
        } else {
            None
        };
        let sign = if which.sign {
            if !sign_allowed(&r, today) {
                return Err(AuthorityError::State(format!(
                    "resident {resident_id}: no signature certificate ({})",
                    if r.status == ResidentStatus::Emigrated {
                        "resident abroad"
                    } else {
                        "under 15"
                    }
                )));
            }
            Some(renew_one(CertKind::Signature, &keys.sign, Some(&r.facts))?)
        } else {
            None
        };
        // Keep the pair link between the card's current certificates.
        let current_auth = match &auth {
            Some(a) => Some(a.serial.clone()),
            None => newest(CertKind::Authentication)?.map(|x| x.0),
        };
        let current_sign = match &sign {
            Some(s) => Some(s.serial.clone()),
            None => newest(CertKind::Signature)?.map(|x| x.0),
        };
        if let (Some(s), Some(a)) = (current_sign, current_auth)
            && (auth.is_some() || sign.is_some())
        {
            link(&tx, "pair", &s, &a, now)?;
        }
        event(
            &tx,
            &self.operator,
            now,
            "card-renew",
            Some(resident_id),
            Some(card_id),
            "",
        )?;
        tx.commit()?;
        Ok(RenewedCard {
            card_id: card_id.to_owned(),
            auth,
            sign,
            superseded,
        })
    }

    /// Loss report. Without `confirm`: both certificates go on hold at once (as the 24-hour call
    /// centre does). With `confirm`: they are revoked (keyCompromise) and the card is dead.
    pub fn report_lost(&mut self, card_id: &str, confirm: bool) -> Result<Revoked, AuthorityError> {
        let now = self.now();
        let tx = self.conn.begin_write()?;
        let (resident_id, status, _) = load_card(&tx, card_id)?;
        let out = match (status, confirm) {
            (CardStatus::Lost | CardStatus::Revoked, _) => {
                return Err(AuthorityError::State(format!(
                    "card {card_id}: already {}",
                    status.as_str()
                )));
            }
            (CardStatus::Suspended, false) => {
                return Err(AuthorityError::State(format!(
                    "card {card_id}: already reported lost (certificates on hold); use --confirm to revoke"
                )));
            }
            (_, false) => {
                tx.execute(
                    "UPDATE cards SET status = 'suspended' WHERE id = ?1",
                    params![card_id],
                )?;
                let mut out = Revoked::default();
                for (serial, _) in live_certs(&tx, "card_id = ?1 AND status = 'good'", &card_id)? {
                    set_status(
                        &tx,
                        &serial,
                        CertStatus::Hold,
                        Some(RevocationReason::CertificateHold),
                        now,
                        "card-report-lost",
                    )?;
                    out.changed
                        .push((serial, CertStatus::Hold, Some(RevocationReason::CertificateHold)));
                }
                out
            }
            (_, true) => {
                tx.execute("UPDATE cards SET status = 'lost' WHERE id = ?1", params![card_id])?;
                revoke_where(
                    &tx,
                    now,
                    "card_id = ?1",
                    &card_id,
                    RevocationReason::KeyCompromise,
                    "card-report-lost-confirm",
                )?
            }
        };
        event(
            &tx,
            &self.operator,
            now,
            if confirm {
                "card-report-lost-confirm"
            } else {
                "card-report-lost"
            },
            Some(resident_id),
            Some(card_id),
            "",
        )?;
        tx.commit()?;
        Ok(out)
    }

    /// The card turned up: the holds are lifted.
    pub fn card_found(&mut self, card_id: &str) -> Result<Revoked, AuthorityError> {
        let now = self.now();
        let tx = self.conn.begin_write()?;
        let (resident_id, status, _) = load_card(&tx, card_id)?;
        if status != CardStatus::Suspended {
            return Err(AuthorityError::State(format!(
                "card {card_id}: {}, not reported lost",
                status.as_str()
            )));
        }
        tx.execute(
            "UPDATE cards SET status = 'active' WHERE id = ?1",
            params![card_id],
        )?;
        let mut out = Revoked::default();
        for (serial, _) in live_certs(&tx, "card_id = ?1 AND status = 'hold'", &card_id)? {
            set_status(&tx, &serial, CertStatus::Good, None, now, "card-found")?;
            out.changed.push((serial, CertStatus::Good, None));
        }
        event(
            &tx,
            &self.operator,
            now,
            "card-found",
            Some(resident_id),
            Some(card_id),
            "",
        )?;
        tx.commit()?;
        Ok(out)
    }

    /// Revokes (or, with certificateHold, suspends) one certificate.
    pub fn revoke(
        &mut self,
        serial: &Serial,
        reason: RevocationReason,
    ) -> Result<CertRecord, AuthorityError> {
        let now = self.now();
        let tx = self.conn.begin_write()?;
        let rec = load_cert(&tx, serial)?;
        let to = match reason {
            RevocationReason::RemoveFromCrl => {
                return Err(AuthorityError::State(
                    "reason: remove-from-crl is not a revocation; use `jpki card found` to lift a hold"
                        .into(),
                ));
            }
            RevocationReason::CertificateHold => CertStatus::Hold,
            _ => CertStatus::Revoked,
        };
        match (rec.status, to) {
            (CertStatus::Revoked, _) => {
                return Err(AuthorityError::State(format!(
                    "certificate {serial}: already revoked"
                )));
            }
            (CertStatus::Hold, CertStatus::Hold) => {
                return Err(AuthorityError::State(format!(
                    "certificate {serial}: already on hold"
                )));
            }
            _ => {}
        }
        set_status(&tx, serial, to, Some(reason), now, "revoke")?;
        event(
            &tx,
            &self.operator,
            now,
            "revoke",
            None,
            Some(&rec.card_id),
            &format!("{serial} {}", reason.cli_name()),
        )?;
        let rec = load_cert(&tx, serial)?;
        tx.commit()?;
        Ok(rec)
    }

    /// A certificate by serial.
    pub fn certificate(&self, serial: &Serial) -> Result<CertRecord, AuthorityError> {
        load_cert(&self.conn, serial)
    }

    /// The newest of a resident's cards whose authentication certificate certifies `auth_spki`
    /// (DER SubjectPublicKeyInfo): how an interrupted `card issue` finds the card the registry
    /// committed but the card file never received.
    pub fn find_issued_card(
        &self,
        resident_id: i64,
        auth_spki: &[u8],
    ) -> Result<Option<IssuedCard>, AuthorityError> {
        let cards: Vec<(String, String)> = self.conn.query_map(
            "SELECT id, expires_on FROM cards WHERE resident_id = ?1 ORDER BY issued_at DESC LIMIT 4",
            params![resident_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        for (card_id, expires_on) in cards {
            let certs = self.card_certificates(&card_id)?;
            let issued = |kind: CertKind| {
                certs.iter().find(|c| c.kind == kind).map(|c| IssuedCert {
                    serial: c.serial.clone(),
                    not_after: c.not_after,
                    der: c.der.clone(),
                })
            };
            let Some(auth) = issued(CertKind::Authentication) else {
                continue;
            };
            if jpki_pki::subject_public_key_der(&auth.der)? == auth_spki {
                return Ok(Some(IssuedCard {
                    card_id: card_id
                        .parse()
                        .map_err(|_| AuthorityError::Corrupt(format!("card id {card_id:?}")))?,
                    resident_id,
                    expires_on,
                    auth,
                    sign: issued(CertKind::Signature),
                    superseded: Vec::new(),
                }));
            }
        }
        Ok(None)
    }

    /// The holder of the certificate `serial` and every certificate issued to them (all their
    /// cards, newest first): what the person sees of themselves in マイナポータル. `None` if the
    /// serial is not in the registry.
    pub fn holder(&self, serial: &[u8]) -> Result<Option<(ResidentRecord, Vec<CertRecord>)>, AuthorityError> {
        let resident: Option<i64> = self.conn.query_opt(
            "SELECT resident_id FROM certificates WHERE serial = ?1",
            params![serial],
            |r| r.get(0),
        )?;
        let Some(resident) = resident else {
            return Ok(None);
        };
        let serials = self.conn.query_map(
            "SELECT serial FROM certificates WHERE resident_id = ?1 ORDER BY issued_at DESC, id DESC",
            params![resident],
            |r| r.get::<Vec<u8>>(0),
        )?;
        let certs = serials
            .iter()
            .map(|s| load_cert(&self.conn, &serial_from_blob(s)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((load_resident(&self.conn, resident)?, certs)))
    }

    /// Certificates of a card, oldest first.
    pub fn card_certificates(&self, card_id: &str) -> Result<Vec<CertRecord>, AuthorityError> {
        load_card(&self.conn, card_id)?;
        let serials = self.conn.query_map(
            "SELECT serial FROM certificates WHERE card_id = ?1 ORDER BY issued_at, id",
            params![card_id],
            |r| r.get::<Vec<u8>>(0),
        )?;
        serials
            .iter()
            .map(|s| load_cert(&self.conn, &serial_from_blob(s)?))
            .collect()
    }

    /// Link data: (link kind, from, to) for every link touching `serial`.
    pub fn links(&self, serial: &Serial) -> Result<Vec<(String, Serial, Serial)>, AuthorityError> {
        let rows = self.conn.query_map(
            "SELECT l.link, f.serial, t.serial FROM cert_links l
             JOIN certificates f ON f.id = l.from_cert JOIN certificates t ON t.id = l.to_cert
             WHERE l.from_cert = (SELECT id FROM certificates WHERE serial = ?1)
                OR l.to_cert = (SELECT id FROM certificates WHERE serial = ?1)
             ORDER BY l.created_at, l.from_cert, l.to_cert, l.link",
            params![serial.as_be_bytes()],
            |r| Ok((r.get::<String>(0)?, r.get::<Vec<u8>>(1)?, r.get::<Vec<u8>>(2)?)),
        )?;
        rows.into_iter()
            .map(|(l, a, b)| Ok((l, serial_from_blob(&a)?, serial_from_blob(&b)?)))
            .collect()
    }

    /// Counts and storage of the registry.
    pub fn stats(&self) -> Result<RegistryStats, AuthorityError> {
        let count = |sql: &str| -> Result<u64, AuthorityError> {
            let n: i64 = self.conn.query_row(sql, params![], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let bytes = match self.conn.backend() {
            jpki_db::Backend::Sqlite => {
                // Pages still in the WAL are counted once they are in the file.
                self.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", params![], |_| Ok(()))?;
                let file = self.dir.join(REGISTRY_FILE);
                let size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
                size(file.clone()) + size(file.with_extension("sqlite3-wal"))
            }
            jpki_db::Backend::Postgres => {
                let n: i64 = self.conn.query_row(
                    "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT) FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                    params![],
                    |r| r.get(0),
                )?;
                u64::try_from(n).unwrap_or(0)
            }
        };
        Ok(RegistryStats {
            residents: count("SELECT COUNT(*) FROM residents")?,
            cards: count("SELECT COUNT(*) FROM cards")?,
            certificates: count("SELECT COUNT(*) FROM certificates")?,
            revoked: count("SELECT COUNT(*) FROM certificates WHERE status <> 'good'")?,
            on_crls: {
                let n: i64 = self.conn.query_row(
                    "SELECT COUNT(*) FROM certificates WHERE status <> 'good' AND not_after >= ?1",
                    params![ts(self.now())],
                    |r| r.get(0),
                )?;
                u64::try_from(n).unwrap_or(0)
            },
            bytes,
        })
    }

    /// Runs SQLite's integrity and foreign-key checks and the registry's own invariants; returns
    /// the problems found (empty when consistent).
    pub fn check(&self) -> Result<Vec<String>, AuthorityError> {
        let mut problems = Vec::new();
        // PostgreSQL enforces foreign keys on every write and checks its own pages; SQLite is asked.
        if self.conn.backend() == jpki_db::Backend::Sqlite {
            let ic: String = self
                .conn
                .query_row("PRAGMA integrity_check", params![], |r| r.get(0))?;
            if ic != "ok" {
                problems.push(format!("integrity_check: {ic}"));
            }
            let fk = self
                .conn
                .query_map("PRAGMA foreign_key_check", params![], |r| r.get::<String>(0))?;
            problems.extend(fk.into_iter().map(|t| format!("foreign key violation in {t}")));
        }
        let checks = [
            (
                "certificate whose status disagrees with its last history row",
                "SELECT COUNT(*) FROM certificates c WHERE c.status <> (SELECT h.status FROM status_history h WHERE h.cert = c.id ORDER BY h.id DESC LIMIT 1)",
            ),
            (
                "certificate without history",
                "SELECT COUNT(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM status_history h WHERE h.cert = c.id)",
            ),
            (
                "revoked or held certificate without a reason",
                "SELECT COUNT(*) FROM certificates WHERE status <> 'good' AND reason IS NULL",
            ),
            (
                "card without an authentication certificate",
                "SELECT COUNT(*) FROM cards k WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.card_id = k.id AND c.kind = 'auth')",
            ),
            (
                "CRL publication numbered above its counter",
                "SELECT COUNT(*) FROM crl_publications p JOIN crl_counters c ON c.kind = p.kind WHERE p.number > c.last_number",
            ),
        ];
        if let Some(broken) = self.verify_audit_trail()?.broken {
            problems.push(format!("audit trail: {broken}"));
        }
        for (what, sql) in checks {
            let n: i64 = self.conn.query_row(sql, params![], |r| r.get(0))?;
            if n > 0 {
                problems.push(format!("{n} {what}"));
            }
        }
        Ok(problems)
    }
}

fn sign_allowed(r: &ResidentRecord, today: Date) -> bool {
    r.status == ResidentStatus::Active && validity::may_hold_signature_certificate(r.facts.birth_date, today)
}

/// A card worked out and signed, not yet stored: what [`commit_card`] checks and records.
struct CardPlan {
    resident: ResidentRecord,
    /// The newest certificate of each kind the resident holds on any earlier card.
    previous: Vec<(Serial, CertKind, CertStatus)>,
    card_id: CardId,
    expires_on: Date,
    auth: IssuedCert,
    sign: Option<IssuedCert>,
}

/// The plan went stale between signing and the write transaction.
struct Stale;

/// What a new card depends on in the registry: the holder and their previous certificates.
fn card_inputs(conn: &Db, resident_id: i64) -> Result<CardInputs, AuthorityError> {
    let resident = load_resident(conn, resident_id)?;
    if resident.status == ResidentStatus::Deceased {
        return Err(AuthorityError::State(format!("resident {resident_id}: deceased")));
    }
    let previous = previous_certs(conn, resident_id)?;
    Ok(CardInputs { resident, previous })
}

#[derive(Clone)]
struct CardInputs {
    resident: ResidentRecord,
    previous: Vec<(Serial, CertKind, CertStatus)>,
}

/// Works out and signs a card's certificates from its inputs; touches no registry. A card
/// identifier or serial that turns out taken (≈ 2^-50 and 2^-104 per draw) makes the plan stale:
/// [`commit_card`] refuses it and the card is planned again under the write lock.
fn plan_card(
    inputs: CardInputs,
    settings: &Settings,
    issuers: &Issuers,
    now: OffsetDateTime,
    keys: &CardKeys,
) -> Result<CardPlan, AuthorityError> {
    let CardInputs { resident, previous } = inputs;
    let today = jst_date(now);
    let expires_on = validity::card_expiry(resident.facts.birth_date, today);
    let card_id = CardId::from_random_bytes(random()?);
    let last_day = validity::certificate_last_day(resident.facts.birth_date, today, expires_on);
    let signer = CertSigner {
        registry: None,
        issuers,
        settings,
        now,
        not_after: jst_end_of_day(last_day),
    };
    let auth = signer.sign(CertKind::Authentication, &keys.auth, None)?;
    let sign = if sign_allowed(&resident, today) {
        Some(signer.sign(CertKind::Signature, &keys.sign, Some(&resident.facts))?)
    } else {
        None
    };
    Ok(CardPlan {
        resident,
        previous,
        card_id,
        expires_on,
        auth,
        sign,
    })
}

/// Reads every request's inputs in one read transaction (one snapshot, one lock).
fn read_inputs(conn: &Db, requests: &[(i64, &CardKeys)]) -> Result<Vec<CardInputs>, AuthorityError> {
    let read = conn.begin_read()?;
    let inputs = requests
        .iter()
        .map(|&(rid, _)| card_inputs(&read, rid))
        .collect::<Result<Vec<_>, _>>()?;
    read.commit()?;
    Ok(inputs)
}

type PlanHandle<'scope> =
    std::thread::ScopedJoinHandle<'scope, Result<Vec<(usize, CardPlan)>, AuthorityError>>;

/// Plans (signs) `inputs` on `workers` scoped threads that take cards one at a time from a shared
/// counter, so they finish together even when another thread (the committer) shares their cores.
fn sign_in_background<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    inputs: Vec<CardInputs>,
    requests: &'env [(i64, &'env CardKeys)],
    settings: &'env Settings,
    issuers: &'env Issuers,
    now: OffsetDateTime,
    workers: usize,
) -> Vec<PlanHandle<'scope>> {
    let inputs = std::sync::Arc::new(inputs);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    (0..workers.min(requests.len()).max(1))
        .map(|_| {
            let (inputs, next) = (inputs.clone(), next.clone());
            scope.spawn(move || {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (Some(input), Some(&(_, keys))) = (inputs.get(i), requests.get(i)) else {
                        return Ok(out);
                    };
                    out.push((i, plan_card(input.clone(), settings, issuers, now, keys)?));
                }
            })
        })
        .collect()
}

/// Joins [`sign_in_background`]'s threads; the plans in request order.
fn join_plans(handles: Vec<PlanHandle<'_>>, len: usize) -> Result<Vec<CardPlan>, AuthorityError> {
    let mut all = Vec::with_capacity(len);
    for handle in handles {
        all.extend(
            handle
                .join()
                .map_err(|_| AuthorityError::State("a signing thread panicked".into()))??,
        );
    }
    all.sort_unstable_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, plan)| plan).collect())
}

/// Stores planned cards in one write transaction; a stale plan is planned again under the lock.
fn commit_plans(
    conn: &Db,
    actor: &str,
    settings: &Settings,
    issuers: &Issuers,
    now: OffsetDateTime,
    requests: &[(i64, &CardKeys)],
    plans: Vec<CardPlan>,
) -> Result<Vec<IssuedCard>, AuthorityError> {
    let tx = conn.begin_write()?;
    let mut out = Vec::with_capacity(plans.len());
    for (plan, &(rid, keys)) in plans.into_iter().zip(requests) {
        let issued = match commit_card(&tx, actor, issuers, now, plan)? {
            Ok(card) => card,
            Err(_stale) => {
                // Planned under the write lock, nothing can change before the commit below.
                let plan = plan_card(card_inputs(&tx, rid)?, settings, issuers, now, keys)?;
                commit_card(&tx, actor, issuers, now, plan)?.map_err(|_| {
                    AuthorityError::State(format!("resident {rid}: registry changed during issuance"))
                })?
            }
        };
        out.push(issued);
    }
    tx.commit()?;
    Ok(out)
}

/// Stores a planned card if nothing it was built from has changed (else `Ok(Err(Stale))`, with
/// nothing written): the card row, its certificates with their history, the pair link, and the
/// earlier cards' certificates superseded and linked old → new.
fn commit_card(
    tx: &Db,
    actor: &str,
    issuers: &Issuers,
    now: OffsetDateTime,
    plan: CardPlan,
) -> Result<Result<IssuedCard, Stale>, AuthorityError> {
    let resident_id = plan.resident.resident_id;
    let fresh = load_resident(tx, resident_id)? == plan.resident
        && previous_certs(tx, resident_id)? == plan.previous
        && !card_taken(tx, plan.card_id.as_str())?
        && !serial_taken(tx, &plan.auth.serial)?
        && match &plan.sign {
            Some(s) => !serial_taken(tx, &s.serial)?,
            None => true,
        };
    if !fresh {
        return Ok(Err(Stale));
    }
    let card_id = plan.card_id.as_str();
    tx.execute(
        "UPDATE cards SET status = 'revoked' WHERE resident_id = ?1 AND status IN ('active', 'suspended')",
        params![resident_id],
    )?;
    tx.execute("INSERT INTO cards (id, resident_id, status, issued_at, expires_on) VALUES (?1, ?2, 'active', ?3, ?4)", params![card_id, resident_id, ts(now), plan.expires_on.to_string()])?;
    store_cert(
        tx,
        CertKind::Authentication,
        &plan.auth,
        card_id,
        resident_id,
        issuers.get(CertKind::Authentication).generation(),
        now,
    )?;
    if let Some(s) = &plan.sign {
        store_cert(
            tx,
            CertKind::Signature,
            s,
            card_id,
            resident_id,
            issuers.get(CertKind::Signature).generation(),
            now,
        )?;
        link(tx, "pair", &s.serial, &plan.auth.serial, now)?;
    }
    let mut superseded = Vec::new();
    for (serial, kind, st) in plan.previous {
        let new = match kind {
            CertKind::Signature => plan.sign.as_ref(),
            CertKind::Authentication => Some(&plan.auth),
        };
        supersede(
            tx,
            &serial,
            st,
            new.map(|n| &n.serial),
            now,
            "card-reissue",
            &mut superseded,
        )?;
    }
    event(tx, actor, now, "card-issue", Some(resident_id), Some(card_id), "")?;
    Ok(Ok(IssuedCard {
        card_id: plan.card_id,
        resident_id,
        expires_on: plan.expires_on.to_string(),
        auth: plan.auth,
        sign: plan.sign,
        superseded,
    }))
}

/// The newest certificate of each kind a resident holds on any card: superseded by a new card if
/// still live, and linked old → new either way (新旧紐付け also spans a reissued card).
fn previous_certs(
    conn: &Db,
    resident_id: i64,
) -> Result<Vec<(Serial, CertKind, CertStatus)>, AuthorityError> {
    let mut previous = Vec::new();
    for kind in [CertKind::Authentication, CertKind::Signature] {
        let row: Option<(Vec<u8>, String)> = conn.query_opt(
            "SELECT serial, status FROM certificates WHERE resident_id = ?1 AND kind = ?2
             ORDER BY issued_at DESC, id DESC LIMIT 1",
            params![resident_id, kind.as_str()],
            |x| Ok((x.get(0)?, x.get(1)?)),
        )?;
        if let Some((s, status)) = row {
            previous.push((serial_from_blob(&s)?, kind, CertStatus::parse(&status)?));
        }
    }
    Ok(previous)
}

fn card_taken(conn: &Db, card_id: &str) -> Result<bool, AuthorityError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM cards WHERE id = ?1)",
        params![card_id],
        |x| x.get(0),
    )?)
}

fn serial_taken(conn: &Db, serial: &Serial) -> Result<bool, AuthorityError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = ?1)",
        params![serial.as_be_bytes()],
        |r| r.get(0),
    )?)
}

/// Builds and signs end-entity certificates sharing a validity period. Reads only.
struct CertSigner<'a> {
    /// Inside the write transaction: draw again when a serial is already in the registry. A
    /// planner outside it leaves that check to `commit_card`.
    registry: Option<&'a Db>,
    issuers: &'a Issuers,
    settings: &'a Settings,
    now: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl CertSigner<'_> {
    /// Draws a fresh serial (104 random bits carrying the CRL shard) and signs. The certificate is delivered only once [`store_cert`] has committed its row.
    fn sign(
        &self,
        kind: CertKind,
        key: &SubjectPublicKey,
        facts: Option<&BasicFour>,
    ) -> Result<IssuedCert, AuthorityError> {
        if self.not_after <= self.now {
            return Err(AuthorityError::State(
                "certificate would expire before it is issued (card expired?)".into(),
            ));
        }
        let serial = loop {
            let rnd: [u8; 16] = random()?;
            let shard = u16::from_be_bytes([rnd[1], rnd[2]]) % self.settings.shards;
            let s = Serial::generate(rnd, shard);
            let taken = match self.registry {
                Some(conn) => serial_taken(conn, &s)?,
                None => false,
            };
            if !taken {
                break s;
            }
        };
        let subject_id = subject_id()?;
        let der = self.issuers.get(kind).issue(
            &EndEntitySpec {
                serial: &serial,
                subject_key: key,
                subject_id: &subject_id,
                not_before: self.now,
                not_after: self.not_after,
                facts,
            },
            &self.settings.endpoints,
        )?;
        Ok(IssuedCert {
            serial,
            not_after: self.not_after,
            der,
        })
    }
}

/// Records an issued certificate and its first status-history entry.
fn store_cert(
    tx: &Db,
    kind: CertKind,
    cert: &IssuedCert,
    card_id: &str,
    resident_id: i64,
    generation: u32,
    now: OffsetDateTime,
) -> Result<(), AuthorityError> {
    let shard = cert.serial.shard().unwrap_or(0);
    tx.execute("INSERT INTO certificates (serial, kind, ca_generation, card_id, resident_id, shard, not_before, not_after, status, issued_at, der)
         VALUES (?1, ?2, ?9, ?3, ?4, ?5, ?6, ?7, 'good', ?6, ?8)", params![
        cert.serial.as_be_bytes(),
        kind.as_str(),
        card_id,
        resident_id,
        shard,
        ts(now),
        ts(cert.not_after),
        cert.der,
        i64::from(generation)
    ])?;
    history(tx, &cert.serial, now, CertStatus::Good, None, "issue")
}

/// A 16-character identifier for the subject CN: random, so it says nothing about the person.
fn subject_id() -> Result<String, AuthorityError> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    Ok(random::<16>()?
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

fn load_resident(conn: &Db, id: i64) -> Result<ResidentRecord, AuthorityError> {
    let row = conn
        .query_opt("SELECT individual_number, resident_code, name, address, birth_date, sex, status FROM residents WHERE id = ?1", 
            params![id],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<String>(1)?,
                    r.get::<String>(2)?,
                    r.get::<String>(3)?,
                    r.get::<String>(4)?,
                    r.get::<i64>(5)?,
                    r.get::<String>(6)?,
                ))
            },
        )?
        .ok_or_else(|| AuthorityError::NotFound { what: "resident", id: id.to_string() })?;
    let bad = |e: jpki_model::ModelError| AuthorityError::Corrupt(format!("resident {id}: {e}"));
    Ok(ResidentRecord {
        resident_id: id,
        individual_number: row.0.parse().map_err(bad)?,
        resident_code: row.1.parse().map_err(bad)?,
        facts: BasicFour {
            name: row.2.parse().map_err(bad)?,
            address: row.3.parse().map_err(bad)?,
            birth_date: jpki_model::parse_birth_date(&row.4).map_err(bad)?,
            sex: row.5.to_string().parse::<Sex>().map_err(bad)?,
        },
        status: ResidentStatus::parse(&row.6)?,
    })
}

/// The renewal preconditions: (resident id, resident, card expiry).
fn renewable(conn: &Db, card_id: &str, today: Date) -> Result<(i64, ResidentRecord, Date), AuthorityError> {
    let (resident_id, status, expires_on) = load_card(conn, card_id)?;
    if status != CardStatus::Active {
        return Err(AuthorityError::State(format!(
            "card {card_id}: {}, only an active card can be renewed",
            status.as_str()
        )));
    }
    if expires_on < today {
        return Err(AuthorityError::State(format!(
            "card {card_id}: expired on {expires_on}; issue a new card"
        )));
    }
    let r = load_resident(conn, resident_id)?;
    if r.status == ResidentStatus::Deceased {
        return Err(AuthorityError::State(format!("resident {resident_id}: deceased")));
    }
    Ok((resident_id, r, expires_on))
}

fn load_card(conn: &Db, card_id: &str) -> Result<(i64, CardStatus, Date), AuthorityError> {
    let (rid, st, exp): (i64, String, String) = conn
        .query_opt(
            "SELECT resident_id, status, expires_on FROM cards WHERE id = ?1",
            params![card_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?
        .ok_or_else(|| AuthorityError::NotFound {
            what: "card",
            id: card_id.to_owned(),
        })?;
    let exp = jpki_model::parse_birth_date(&exp)
        .map_err(|e| AuthorityError::Corrupt(format!("card {card_id} expiry: {e}")))?;
    Ok((rid, CardStatus::parse(&st)?, exp))
}

fn load_cert(conn: &Db, serial: &Serial) -> Result<CertRecord, AuthorityError> {
    let row = conn
        .query_opt(
            "SELECT kind, card_id, status, reason, revoked_at, not_after, shard, der FROM certificates WHERE serial = ?1",
            params![serial.as_be_bytes()],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<String>(1)?,
                    r.get::<String>(2)?,
                    r.get::<Option<i64>>(3)?,
                    r.get::<Option<i64>>(4)?,
                    r.get::<i64>(5)?,
                    r.get::<i64>(6)?,
                    r.get::<Vec<u8>>(7)?,
                ))
            },
        )?
        .ok_or_else(|| AuthorityError::NotFound { what: "certificate with serial", id: serial.to_hex() })?;
    Ok(CertRecord {
        serial: serial.clone(),
        kind: row
            .0
            .parse()
            .map_err(|e| AuthorityError::Corrupt(format!("certificate {serial}: {e}")))?,
        card_id: row.1,
        status: CertStatus::parse(&row.2)?,
        reason: reason_from(row.3)?,
        revoked_at: row.4.map(from_ts).transpose()?,
        not_after: from_ts(row.5)?,
        shard: u16::try_from(row.6)
            .map_err(|_| AuthorityError::Corrupt(format!("certificate {serial}: shard")))?,
        der: row.7,
    })
}

/// Serials and kinds of not-yet-revoked certificates matching `cond` (one `?1` parameter).
fn live_certs(
    tx: &Db,
    cond: &str,
    p: &dyn jpki_db::Param,
) -> Result<Vec<(Serial, CertKind)>, AuthorityError> {
    let rows = tx.query_map(
        &format!("SELECT serial, kind FROM certificates WHERE {cond} AND status <> 'revoked' ORDER BY id"),
        params![p],
        |r| Ok((r.get::<Vec<u8>>(0)?, r.get::<String>(1)?)),
    )?;
    rows.into_iter()
        .map(|(s, k)| {
            Ok((
                serial_from_blob(&s)?,
                k.parse()
                    .map_err(|e| AuthorityError::Corrupt(format!("certificate kind: {e}")))?,
            ))
        })
        .collect()
}

fn revoke_where(
    tx: &Db,
    now: OffsetDateTime,
    cond: &str,
    p: &dyn jpki_db::Param,
    reason: RevocationReason,
    ev: &str,
) -> Result<Revoked, AuthorityError> {
    let mut out = Revoked::default();
    for (serial, _) in live_certs(tx, cond, p)? {
        set_status(tx, &serial, CertStatus::Revoked, Some(reason), now, ev)?;
        out.changed.push((serial, CertStatus::Revoked, Some(reason)));
    }
    Ok(out)
}

fn set_status(
    tx: &Db,
    serial: &Serial,
    status: CertStatus,
    reason: Option<RevocationReason>,
    now: OffsetDateTime,
    ev: &str,
) -> Result<(), AuthorityError> {
    let code = reason.map(|r| i64::from(r.code()));
    let at = (status != CertStatus::Good).then(|| ts(now));
    tx.execute(
        "UPDATE certificates SET status = ?1, reason = ?2, revoked_at = ?3 WHERE serial = ?4",
        params![status.as_str(), code, at, serial.as_be_bytes()],
    )?;
    history(tx, serial, now, status, reason, ev)
}

fn history(
    tx: &Db,
    serial: &Serial,
    now: OffsetDateTime,
    status: CertStatus,
    reason: Option<RevocationReason>,
    ev: &str,
) -> Result<(), AuthorityError> {
    tx.execute(
        "INSERT INTO status_history (cert, at, status, reason, event)
         VALUES ((SELECT id FROM certificates WHERE serial = ?1), ?2, ?3, ?4, ?5)",
        params![
            serial.as_be_bytes(),
            ts(now),
            status.as_str(),
            reason.map(|r| i64::from(r.code())),
            ev
        ],
    )?;
    Ok(())
}

/// Revokes `old` as superseded unless it already is revoked, and links it to its successor
/// (新旧紐付け) when there is one.
fn supersede(
    tx: &Db,
    old: &Serial,
    status: CertStatus,
    new: Option<&Serial>,
    now: OffsetDateTime,
    ev: &str,
    superseded: &mut Vec<Serial>,
) -> Result<(), AuthorityError> {
    if status != CertStatus::Revoked {
        set_status(
            tx,
            old,
            CertStatus::Revoked,
            Some(RevocationReason::Superseded),
            now,
            ev,
        )?;
        superseded.push(old.clone());
    }
    if let Some(new) = new {
        link(tx, "renewal", old, new, now)?;
    }
    Ok(())
}

fn link(tx: &Db, kind: &str, from: &Serial, to: &Serial, now: OffsetDateTime) -> Result<(), AuthorityError> {
    tx.execute("INSERT INTO cert_links (link, from_cert, to_cert, created_at)
         VALUES (?1, (SELECT id FROM certificates WHERE serial = ?2), (SELECT id FROM certificates WHERE serial = ?3), ?4)
         ON CONFLICT DO NOTHING", params![kind, from.as_be_bytes(), to.as_be_bytes(), ts(now)])?;
    Ok(())
}

/// Records an event in the audit trail (inside the caller's write transaction).
pub(crate) use crate::audit::append as event;
