//! `jpki serve` and `jpki rp`: the platform over HTTP (issue 5, being built), and its relying parties. Today: the OCSP responder for both
//! CAs at the URLs the certificates name (`/ocsp/sign`, `/ocsp/auth`), the CRLs and CA certificates
//! `jpki crl publish` wrote (`/crl/…`, `/ca/…`), the JSON API (`/v1/…`), the time-stamp authority
//! (`/tsa`), `/healthz`, `/metrics` and `/openapi.json`.
//!
//! At start it loads each CA's status snapshot from the registry (`StatusIndex`), takes (or, the
//! first time and 30 days before expiry, has the CA issue) each OCSP responder's certificate, and
//! then follows the registry's status history every quarter second, so a revocation made by another
//! `jpki` process is answered within a second and drops any cached "good" at once.
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jpki_authority::Authority;
use jpki_model::CertKind;
use jpki_pki::ocsp::Responder;
use jpki_pki::{KeyType, SigningKey};
use jpki_platform::api::{BirthDates, Rights};

use crate::lookups::RegistryLookups;
use jpki_platform::{
    AccessStore, Api, Capability, CheckRecord, Lookup, Meter, NewRelyingParty, OcspService, Recorder,
    Registry, RelyingParty, Seen, StatusIndex, Tariff,
};
use jpki_server::{ApiKeys, AppState, Caller, KeysUnavailable, RevocationAccess};
use jpki_sig::tsp::TimeStampAuthority;
use serde_json::json;
use time::OffsetDateTime;

use crate::args::{RpCmd, ServeArgs, ServeRole};
use crate::docsig::AuthorityTsa;
use crate::{Failure, Report, secrets};

/// How long an OCSP answer is valid (nextUpdate − thisUpdate). Cached answers are re-signed after
/// half of it; a status change replaces them at once.
const OCSP_VALIDITY: time::Duration = time::Duration::hours(1);
/// The relying-party registry's file in the data directory (SQLite).
const REGISTRY_FILE: &str = "platform.sqlite";
/// How often the registry's status history is read for changes.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// The access log's file in the data directory (SQLite).
const ACCESS_LOG_FILE: &str = "access-log.sqlite";
/// This platform instance's stable identifier (16 hex digits, made on first use): a verifier
/// writes the access log's stream of that name.
const INSTANCE_ID_FILE: &str = "instance-id";
/// The access log's signing key (encrypted under the authority's passphrase) and its public key.
/// With a PostgreSQL registry the encrypted key lives in the access log's database instead, shared
/// by every instance, and only the public key is kept here.
const LOG_KEY_FILE: &str = "access-log-key.pem";
/// See [`LOG_KEY_FILE`]: the public key (SubjectPublicKeyInfo, PEM) people check heads with.
const LOG_PUBLIC_KEY_FILE: &str = "access-log-key.pub.pem";
/// The purpose recorded when a relying party gave none.
const NO_PURPOSE: &str = "(not stated)";

/// The platform's OCSP service as the HTTP layer's responder.
/// Every certificate answered for an identified relying party is metered and recorded.
struct PlatformOcsp(Arc<OcspService>, Arc<Meter>, Arc<Recorder>);

impl jpki_server::OcspResponder for PlatformOcsp {
    fn answer(&self, caller: Option<&Caller>, request_der: &[u8]) -> Vec<u8> {
        let may = |kind| caller.is_none_or(|c| c.may(status_capability(kind).as_str()));
        let now = OffsetDateTime::now_utc();
        let answer = self.0.answer(request_der, now, may);
        if let Some(c) = caller {
            for a in &answer.answered {
                self.1.add(&c.id, a.kind, "ocsp", 1, now);
                let result = match a.lookup {
                    Lookup::Good => "good".to_owned(),
                    Lookup::Unknown => "unknown".to_owned(),
                    Lookup::Revoked { reason, .. } => format!("revoked ({reason})"),
                };
                self.2.push(Seen {
                    at: now,
                    rp_id: c.id.clone(),
                    kind: a.kind,
                    serial: a.serial.clone(),
                    check: "ocsp".to_owned(),
                    purpose: None,
                    result,
                });
            }
        }
        answer.body
    }
}

/// The platform's JSON API as the HTTP layer's handler; every answered check is metered and recorded.
struct PlatformApi(Arc<Api>, Arc<Meter>, Arc<Recorder>);

impl jpki_server::JsonApi for PlatformApi {
    fn blocks(&self, operation: &str) -> bool {
        // The validity check reads only memory (status snapshot, caches); the rest may read the
        // registry or work on whole documents.
        operation != "certificates/validity"
    }

    fn call(&self, caller: &Caller, operation: &str, body: &[u8]) -> (u16, String) {
        let may = |cap: Capability| caller.may(cap.as_str());
        let ages: Vec<u8> = caller
            .scopes
            .iter()
            .filter_map(|s| s.strip_prefix(AGE_SCOPE)?.parse().ok())
            .collect();
        let rights = Rights {
            rp_id: &caller.id,
            may: &may,
            age_thresholds: &ages,
        };
        let now = OffsetDateTime::now_utc();
        let answer = self.0.call(operation, body, &rights, now);
        for c in &answer.checked {
            if let Some(line) = metered_check(&c.check) {
                self.1.add(&caller.id, c.kind, line, 1, now);
            }
            self.2.push(Seen {
                at: now,
                rp_id: caller.id.clone(),
                kind: c.kind,
                serial: c.serial.clone(),
                check: c.check.clone(),
                purpose: answer.purpose.clone(),
                result: c.result.clone(),
            });
        }
        (answer.status, answer.body.to_string())
    }
}

/// The fee line a check is metered under (seed 000's fees are for status and attribute checks:
/// validity, age, liveness, linkage; "age ≥ 18" is an "age" check), or `None` for a check that is
/// recorded but not charged (pairwise identifiers, signature verification).
fn metered_check(check: &str) -> Option<&'static str> {
    match check.split(' ').next().unwrap_or(check) {
        "validity" => Some("validity"),
        "age" => Some("age"),
        "liveness" => Some("liveness"),
        "linkage" => Some("linkage"),
        _ => None,
    }
}

/// The metered checks an invoice charges for.
const BILLED_CHECKS: [&str; 5] = ["ocsp", "validity", "age", "liveness", "linkage"];

/// How a registered age threshold travels in a caller's scopes: `age:18`.
const AGE_SCOPE: &str = "age:";

/// API keys checked against the relying-party registry on every request.
/// CRL downloads by identified relying parties are counted (not charged) in the meter.
struct RegistryKeys(KeyRegistry, Arc<Meter>);

/// How the request path reaches the registry: a SQLite registry directly; a PostgreSQL one through
/// a thread of its own, since its client may not block on the server's async tasks.
enum KeyRegistry {
    Local(Mutex<Registry>),
    Worker(Mutex<std::sync::mpsc::Sender<RegistryJob>>),
}

/// Work for the registry thread.
type RegistryJob = Box<dyn FnOnce(&Registry) + Send>;

impl KeyRegistry {
    fn new(data: &Path) -> Result<Self, Failure> {
        let registry = registry(data)?;
        if !matches!(
            jpki_authority::registry_location(data)?,
            Some(jpki_db::Location::Postgres { .. })
        ) {
            return Ok(Self::Local(Mutex::new(registry)));
        }
        let (jobs, queue) = std::sync::mpsc::channel::<RegistryJob>();
        std::thread::Builder::new()
            .name("jpki-registry".into())
            .spawn(move || {
                for job in queue {
                    job(&registry);
                }
            })?;
        Ok(Self::Worker(Mutex::new(jobs)))
    }

    /// Runs `f` on the registry; `None` if the registry thread is gone.
    fn with<T: Send + 'static>(&self, f: impl FnOnce(&Registry) -> T + Send + 'static) -> Option<T> {
        match self {
            Self::Local(registry) => Some(f(&*registry.lock().ok()?)),
            Self::Worker(jobs) => {
                let (reply, answer) = std::sync::mpsc::sync_channel(1);
                jobs.lock()
                    .ok()?
                    .send(Box::new(move |r: &Registry| {
                        let _ = reply.send(f(r));
                    }))
                    .ok()?;
                answer.recv().ok()
            }
        }
    }
}

impl RegistryKeys {
    /// A key check's outcome: only a database that cannot be reached now is "come back later"
    /// (503); any other failure (a damaged registry, the registry thread gone) refuses the key.
    fn answer(
        outcome: Option<Result<Option<RelyingParty>, jpki_platform::PlatformError>>,
        what: &str,
    ) -> Result<Option<Caller>, KeysUnavailable> {
        match outcome {
            Some(Ok(rp)) => Ok(rp.map(Self::caller)),
            Some(Err(jpki_platform::PlatformError::Db(e))) if e.is_unavailable() => {
                tracing::warn!(error = %e, "cannot check {what} now: the registry is unreachable");
                Err(KeysUnavailable)
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot check {what}");
                Ok(None)
            }
            None => {
                tracing::error!("cannot check {what}: the registry thread is gone");
                Ok(None)
            }
        }
    }

    fn caller(rp: RelyingParty) -> Caller {
        Caller {
            scopes: rp
                .capabilities
                .iter()
                .map(|c| c.as_str().to_owned())
                .chain(rp.age_thresholds.iter().map(|a| format!("{AGE_SCOPE}{a}")))
                .collect(),
            id: rp.id,
        }
    }
}

impl ApiKeys for RegistryKeys {
    fn served(&self, caller: &Caller, what: &str) {
        let kind = if what.starts_with("sign") {
            CertKind::Signature
        } else {
            CertKind::Authentication
        };
        self.1.add(&caller.id, kind, "crl", 1, OffsetDateTime::now_utc());
    }

    fn identify_client(&self, fingerprint: &[u8; 32]) -> Option<Caller> {
        self.lookup_client(fingerprint).ok().flatten()
    }

    fn identify(&self, key: &str) -> Option<Caller> {
        self.lookup(key).ok().flatten()
    }

    fn lookup_client(&self, fingerprint: &[u8; 32]) -> Result<Option<Caller>, KeysUnavailable> {
        let fingerprint = *fingerprint;
        Self::answer(
            self.0.with(move |r| r.authenticate_client(&fingerprint)),
            "a client certificate",
        )
    }

    fn lookup(&self, key: &str) -> Result<Option<Caller>, KeysUnavailable> {
        let key = zeroize::Zeroizing::new(key.to_owned());
        Self::answer(self.0.with(move |r| r.authenticate(&key)), "an API key")
    }
}

/// The status capability a relying party needs to ask about `kind`'s certificates.
fn status_capability(kind: CertKind) -> Capability {
    match kind {
        CertKind::Signature => Capability::SignStatus,
        CertKind::Authentication => Capability::AuthStatus,
    }
}

/// Where a platform store of the data directory `data` lives: in the PostgreSQL database the data
/// directory names (DATA/database), under `schema`; otherwise the SQLite file `file` in it.
fn platform_location(data: &Path, schema: &str, file: &str) -> Result<jpki_db::Location, Failure> {
    if !data.is_dir() {
        return Err(Failure::Failed(format!(
            "no data directory {}: run `jpki init` first",
            data.display()
        )));
    }
    Ok(match jpki_authority::registry_location(data)? {
        Some(jpki_db::Location::Postgres { url, .. }) => jpki_db::Location::Postgres {
            url,
            schema: schema.to_owned(),
        },
        _ => jpki_db::Location::Sqlite(data.join(file)),
    })
}

/// The platform's stores of the data directory that exist, opened as plain connections (for a
/// backup): `platform` (relying parties, consents, fees) and `access_log`.
pub(crate) fn platform_stores(data: &Path) -> Result<Vec<(&'static str, jpki_db::Db)>, Failure> {
    let mut out = Vec::new();
    for (name, schema, file) in [
        ("platform", jpki_platform::rp::POSTGRES_SCHEMA, REGISTRY_FILE),
        (
            "access_log",
            jpki_platform::access_store::POSTGRES_SCHEMA,
            ACCESS_LOG_FILE,
        ),
    ] {
        let location = platform_location(data, schema, file)?;
        if matches!(&location, jpki_db::Location::Sqlite(p) if !p.exists()) {
            continue;
        }
        let db = jpki_db::Db::open(
            &location,
            jpki_db::SqliteOptions {
                create: false,
                ..jpki_db::SqliteOptions::default()
            },
        )?;
        out.push((name, db));
    }
    Ok(out)
}

/// For a restore into `data`, whose registry is at `registry`: the platform store `name` with its
/// schema made (empty), as a plain connection to copy rows into.
pub(crate) fn create_platform_store(
    data: &Path,
    name: &str,
    registry: &jpki_db::Location,
) -> Result<jpki_db::Db, jpki_authority::AuthorityError> {
    let (schema, file) = match name {
        "platform" => (jpki_platform::rp::POSTGRES_SCHEMA, REGISTRY_FILE),
        "access_log" => (jpki_platform::access_store::POSTGRES_SCHEMA, ACCESS_LOG_FILE),
        other => {
            return Err(jpki_authority::AuthorityError::State(format!(
                "backup: unknown store {other:?}"
            )));
        }
    };
    let location = match registry {
        jpki_db::Location::Postgres { url, .. } => jpki_db::Location::Postgres {
            url: url.clone(),
            schema: schema.to_owned(),
        },
        jpki_db::Location::Sqlite(_) => jpki_db::Location::Sqlite(data.join(file)),
    };
    let made = match name {
        "platform" => Registry::open_at(&location).map(drop),
        _ => AccessStore::open_at(&location, "").map(drop),
    };
    made.map_err(|e| jpki_authority::AuthorityError::State(format!("restore: the {name} store: {e}")))?;
    Ok(jpki_db::Db::open(&location, jpki_db::SqliteOptions::default())?)
}

/// The platform's relying-party registry of the data directory (every command opens it here).
pub(crate) fn registry(data: &Path) -> Result<Registry, Failure> {
    let location = platform_location(data, jpki_platform::rp::POSTGRES_SCHEMA, REGISTRY_FILE)?;
    Ok(Registry::open_at(&location)?)
}

/// The access log of the data directory, appending to `stream` (every command opens it here).
fn access_store(data: &Path, stream: &str) -> Result<AccessStore, Failure> {
    let location = platform_location(
        data,
        jpki_platform::access_store::POSTGRES_SCHEMA,
        ACCESS_LOG_FILE,
    )?;
    Ok(AccessStore::open_at(&location, stream)?)
}

/// This data directory's instance identifier: 16 random hex digits made on first use into
/// DATA/instance-id (0600), the same ever after.
fn instance_id(data: &Path) -> Result<String, Failure> {
    use std::io::Write as _;
    let path = data.join(INSTANCE_ID_FILE);
    let valid = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(&path) {
        Ok(mut f) => {
            let mut raw = [0u8; 8];
            aws_lc_rs::rand::fill(&mut raw).map_err(|_| Failure::Failed("random generator failed".into()))?;
            let id = hex::encode(raw);
            f.write_all(format!("{id}\n").as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?;
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process may be writing it this moment.
            for _ in 0..50 {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?;
                let id = text.trim();
                if valid(id) {
                    return Ok(id.to_owned());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(Failure::Failed(format!(
                "{}: expected 16 hex digits (remove it to make a new instance identifier)",
                path.display()
            )))
        }
        Err(e) => Err(Failure::Failed(format!("{}: {e}", path.display()))),
    }
}

fn rp_json(rp: &RelyingParty) -> serde_json::Value {
    json!({
        "rp_id": rp.id,
        "name": rp.name,
        "capabilities": rp.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "age_thresholds": rp.age_thresholds,
        "purpose": rp.purpose,
        "active_keys": rp.active_keys,
    })
}

/// Records an operator action on the platform in the authority's audit trail (after the action:
/// the two live in different stores).
pub(crate) fn audit(data: &Path, event: &str, detail: &str) -> Result<(), Failure> {
    let mut a = Authority::open(data)?;
    a.record_action(event, detail)?;
    Ok(())
}

/// `jpki rp …`.
pub(crate) fn rp(cmd: RpCmd, data: &Path) -> Result<Report, Failure> {
    let mut reg = registry(data)?;
    let now = OffsetDateTime::now_utc();
    match cmd {
        RpCmd::Add {
            name,
            allow,
            age_thresholds,
            purpose,
            redirect_uris,
            jwks,
            jwks_uri,
            id_token_alg,
        } => {
            let new = NewRelyingParty {
                name: &name,
                capabilities: allow.into_iter().collect(),
                age_thresholds,
                purpose: purpose.as_deref(),
            };
            let oidc = (!redirect_uris.is_empty()
                || jwks.is_some()
                || jwks_uri.is_some()
                || new.capabilities.contains(&Capability::Oidc))
            .then(|| -> Result<_, Failure> {
                let jwks = jwks
                    .map(|f| {
                        let text = std::fs::read_to_string(&f)
                            .map_err(|e| Failure::Usage(format!("--jwks {}: {e}", f.display())))?;
                        jpki_oidc::check_client_jwks(&text)
                            .map_err(|e| Failure::Usage(format!("--jwks {}: {e}", f.display())))?;
                        Ok::<_, Failure>(text)
                    })
                    .transpose()?;
                Ok(jpki_platform::NewOidcClient {
                    redirect_uris,
                    jwks,
                    jwks_uri,
                    id_token_alg,
                })
            })
            .transpose()?;
            let (rp, key, secret) = match &oidc {
                Some(client) => reg.add_oidc(&new, client, now),
                None => reg.add(&new, now).map(|(rp, key)| (rp, key, None)),
            }
            .map_err(|e| Failure::Usage(e.to_string()))?;
            audit(data, "rp-add", &format!("{} {:?}", rp.id, rp.name))?;
            let mut v = rp_json(&rp);
            v["api_key"] = json!(key.expose());
            let mut text = format!(
                "Registered {} as {}.\nAPI key (shown once; send it as Authorization: Bearer KEY):\n{}",
                rp.name,
                rp.id,
                key.expose()
            );
            if let Some(client) = &oidc {
                v["client_id"] = json!(rp.id);
                v["redirect_uris"] = json!(client.redirect_uris);
                v["id_token_signed_response_alg"] = json!(client.id_token_alg);
                v["token_endpoint_auth_method"] = json!(if secret.is_some() {
                    "client_secret_basic"
                } else {
                    "private_key_jwt"
                });
                text.push_str(&format!("\nOpenID Connect client_id: {}", rp.id));
                if let Some(secret) = &secret {
                    v["client_secret"] = json!(secret.expose());
                    text.push_str(&format!(
                        "\nClient secret (development only, shown once; client_secret_basic):\n{}",
                        secret.expose()
                    ));
                }
            }
            Ok(Report::new(v, text))
        }
        RpCmd::List => {
            let all = reg.list()?;
            let text = if all.is_empty() {
                "No relying parties yet: `jpki rp add`.".to_owned()
            } else {
                all.iter()
                    .map(|rp| {
                        let caps: Vec<_> = rp.capabilities.iter().map(|c| c.as_str()).collect();
                        format!(
                            "{}  {}  [{}]  {} key(s)",
                            rp.id,
                            rp.name,
                            caps.join(","),
                            rp.active_keys
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            Ok(Report::new(
                json!({ "relying_parties": all.iter().map(rp_json).collect::<Vec<_>>() }),
                text,
            ))
        }
        RpCmd::NewKey { rp } => {
            let key = reg.new_key(&rp, now)?;
            audit(data, "rp-new-key", &rp)?;
            Ok(Report::new(
                json!({ "rp_id": rp, "api_key": key.expose() }),
                format!("New API key for {rp} (shown once):\n{}", key.expose()),
            ))
        }
        RpCmd::Invoice { rp, month, csv } => invoice(&reg, data, &rp, &month, csv),
        RpCmd::RevokeKey { rp } => {
            let n = reg.revoke_keys(&rp, now)?;
            audit(data, "rp-revoke-keys", &format!("{rp}: {n}"))?;
            Ok(Report::new(
                json!({ "rp_id": rp, "revoked_keys": n }),
                format!(
                    "Revoked {n} API key(s) and client certificate(s) of {rp}; they are refused from the next request on."
                ),
            ))
        }
        RpCmd::AddClientCert { rp, cert } => {
            let bytes =
                std::fs::read(&cert).map_err(|e| Failure::Usage(format!("{}: {e}", cert.display())))?;
            let der = jpki_pki::x509::certificates_from_pem_or_der(&bytes)
                .ok()
                .and_then(|mut v| (v.len() == 1).then(|| v.remove(0)))
                .ok_or_else(|| Failure::Usage(format!("{}: not one certificate", cert.display())))?;
            let fp = match reg.add_client_cert(&rp, &der, now) {
                Ok(fp) => fp,
                Err(e @ jpki_platform::PlatformError::Input(_)) => return Err(Failure::Usage(e.to_string())),
                Err(e) => return Err(e.into()),
            };
            audit(
                data,
                "rp-add-client-cert",
                &format!("{rp} SHA-256 {}", hex::encode(fp)),
            )?;
            Ok(Report::new(
                json!({ "rp_id": rp, "client_cert_sha256": hex::encode(fp) }),
                format!(
                    "Registered the client certificate (SHA-256 {}) for {rp}: over mutual TLS it authenticates without an API key.",
                    hex::encode(fp)
                ),
            ))
        }
    }
}

/// Builds the OCSP service from the registry: one responder and one status snapshot per root
/// generation of each CA still valid. Also returns the registry's service generation the
/// responders were loaded at.
fn ocsp_service(
    authority: &mut Authority,
    passphrase: &[u8],
    verifier: bool,
) -> Result<(OcspService, i64), Failure> {
    let service = OcspService::new(OCSP_VALIDITY);
    let generation = load_responders(authority, &service, passphrase, verifier)?;
    Ok((service, generation))
}

/// Brings `service`'s responders up to the registry's: a renewed responder replaces the one in
/// use, and a generation not served yet (a key rollover) is added with a snapshot of what it
/// issued — every generation, so the JSON API finds all certificates, though OCSP answers only for
/// the generations with a responder (those whose root is still valid). A verifier only loads the
/// responders the authority issued; otherwise a missing or ending one is issued first. Returns the
/// service generation loaded (read before loading, so a responder issued meanwhile is loaded next
/// time).
fn load_responders(
    authority: &mut Authority,
    service: &OcspService,
    passphrase: &[u8],
    verifier: bool,
) -> Result<i64, Failure> {
    let loaded = authority.service_generation()?;
    for kind in CertKind::ALL {
        let responders = if verifier {
            authority.existing_ocsp_responders(kind, passphrase)?
        } else {
            authority.ocsp_responders(kind, passphrase)?
        };
        let mut responders: HashMap<u32, Responder> = responders
            .into_iter()
            .map(|r| {
                Ok((
                    r.generation,
                    Responder::new(r.credentials.key, r.credentials.cert_der)?,
                ))
            })
            .collect::<Result<_, Failure>>()?;
        let served = service.generations(kind);
        let mut new = Vec::new();
        for (generation, root) in authority.ca_certs(kind)? {
            let responder = responders.remove(&generation);
            if served.contains(&generation) {
                if let Some(r) = responder {
                    service.replace_responder(kind, generation, r);
                }
            } else {
                new.push((generation, root, responder));
            }
        }
        if new.is_empty() {
            continue;
        }
        // One pass over the CA's certificates fills the snapshots of every generation added.
        let mut certs: HashMap<u32, Vec<(Vec<u8>, _)>> =
            new.iter().map(|(g, _, _)| (*g, Vec::new())).collect();
        authority.for_each_certificate_status(kind, |generation, serial, status| {
            if let Some(list) = certs.get_mut(&generation) {
                list.push((serial.to_vec(), status));
            }
        })?;
        for (generation, root, responder) in new {
            let list = certs.remove(&generation).unwrap_or_default();
            let index = StatusIndex::build(list.iter().map(|(s, st)| (s.as_slice(), *st)));
            service.add_generation(kind, generation, &root, responder, index)?;
            if !served.is_empty() {
                tracing::info!(ca = kind.as_str(), generation, "serving a new CA generation");
            }
        }
    }
    Ok(loaded)
}

fn role_name(role: ServeRole) -> &'static str {
    match role {
        ServeRole::All => "authority and verifier",
        ServeRole::Authority => "authority",
        ServeRole::Verifier => "verifier",
    }
}

/// `/healthz` and `/metrics` of a verifier: how far behind the registry the snapshot is.
struct SnapshotHealth(Arc<OcspService>);

impl jpki_server::Health for SnapshotHealth {
    fn check(&self) -> Result<(), String> {
        let now = OffsetDateTime::now_utc();
        if !self.0.is_stale(now) {
            return Ok(());
        }
        Err(format!(
            "the revocation snapshot is {} behind the registry, over the maximum of {} s (is the database up?)",
            self.0.staleness(now).map_or_else(
                || "never synced and".to_owned(),
                |d| format!("{:.1} s", d.as_seconds_f64())
            ),
            self.0.max_staleness().map_or(0, |d| d.whole_seconds())
        ))
    }

    fn gauges(&self) -> Vec<(&'static str, &'static str, f64)> {
        let age = self
            .0
            .staleness(OffsetDateTime::now_utc())
            .map_or(f64::INFINITY, |d| d.as_seconds_f64());
        vec![(
            "jpki_status_snapshot_age_seconds",
            "Seconds since the revocation snapshot last matched the registry.",
            age,
        )]
    }
}

/// How often the authority's upkeep looks at its CRLs and service certificates.
const UPKEEP_EVERY: Duration = Duration::from_secs(60);

/// Periodic work beside following the change log: the authority republishes CRLs before they go
/// stale and renews the OCSP responders; a verifier picks up renewed responders.
struct Upkeep {
    verifier: bool,
    passphrase: zeroize::Zeroizing<String>,
    /// Where CRLs are republished (the default place only; an operator's directory is theirs).
    publish_dir: Option<std::path::PathBuf>,
    /// The service generation the running responders came from.
    services_loaded: i64,
    last_check: std::time::Instant,
    /// Set when the change log named a CA generation the responders do not serve yet.
    unserved_generation: bool,
}

/// The least time between upkeep runs brought forward by a change of an unserved generation.
const UPKEEP_SOONEST: Duration = Duration::from_secs(5);

impl Upkeep {
    fn new(
        verifier: bool,
        passphrase: zeroize::Zeroizing<String>,
        publish_dir: Option<std::path::PathBuf>,
        services_loaded: i64,
    ) -> Self {
        Self {
            verifier,
            passphrase,
            publish_dir,
            services_loaded,
            last_check: std::time::Instant::now(),
            unserved_generation: false,
        }
    }

    fn run(&mut self, authority: &mut Authority, service: Option<&OcspService>) {
        let due = if self.unserved_generation {
            UPKEEP_SOONEST
        } else {
            UPKEEP_EVERY
        };
        if self.last_check.elapsed() < due {
            return;
        }
        self.last_check = std::time::Instant::now();
        let unserved = std::mem::take(&mut self.unserved_generation);
        if let Err(Failure::Usage(e) | Failure::Failed(e)) = self.try_run(authority, service) {
            tracing::warn!(error = %e, "upkeep failed; will retry");
            // Still due soon if it was brought forward.
            self.unserved_generation = unserved;
        }
    }

    fn try_run(&mut self, authority: &mut Authority, service: Option<&OcspService>) -> Result<(), Failure> {
        let pass = self.passphrase.as_bytes();
        if !self.verifier {
            // CRLs are republished once half their validity has passed.
            let half = time::Duration::hours(i64::from(authority.settings().crl_validity_hours)) / 2;
            let due = authority
                .last_crl_publication()?
                .is_none_or(|t| OffsetDateTime::now_utc() - t >= half);
            if due && let Some(dir) = &self.publish_dir {
                let issuers = authority.issuers(pass)?;
                authority.publish_crls(dir, &issuers, |_, _| {})?;
                tracing::info!(dir = %dir.display(), "republished CRLs");
            }
            // Renewed within 30 days of their end (every generation's responder; a new
            // generation's is issued here after a key rollover), the TSA within a year (a no-op
            // otherwise; a renewed TSA certificate is taken up by servers at their next start).
            for kind in CertKind::ALL {
                authority.ocsp_responders(kind, pass)?;
            }
            authority.tsa_credentials(pass)?;
        }
        let generation = authority.service_generation()?;
        if generation != self.services_loaded {
            if let Some(service) = service {
                // Responders only: nothing is issued here (the authority did that above).
                load_responders(authority, service, pass, true)?;
                tracing::info!(generation, "loaded renewed or new OCSP responder certificates");
            }
            self.services_loaded = generation;
        }
        Ok(())
    }
}

/// A verifier's data directory: it names the shared registry (`--db`, kept in DATA/database)
/// and holds the verifier's own files; the registry must already hold an authority.
fn attach_verifier(data: &Path, db: Option<&str>) -> Result<(), Failure> {
    match (jpki_authority::registry_location(data)?, db) {
        (None, None) => {
            return Err(Failure::Usage(format!(
                "--role verifier: {} names no registry; give --db postgres://… (the authority's database)",
                data.display()
            )));
        }
        (None, Some(url)) => {
            if !jpki_db::Location::is_postgres_url(url) {
                return Err(Failure::Usage(format!(
                    "--db {}: expected a postgres:// URL",
                    jpki_db::redact_url(url)
                )));
            }
            std::fs::create_dir_all(data).map_err(|e| Failure::Usage(format!("{}: {e}", data.display())))?;
            jpki_authority::write_atomically(
                &data.join(jpki_authority::DATABASE_FILE),
                format!("{url}\n").as_bytes(),
                0o600,
            )?;
        }
        (Some(_), _) => {}
    }
    match Authority::open_without_migrating(data) {
        Err(jpki_authority::AuthorityError::NotInitialised(_)) => Err(Failure::Usage(format!(
            "--role verifier: the registry of {} holds no authority yet; start `jpki serve --role authority` first",
            data.display()
        ))),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(()),
    }
}

/// `jpki serve --role authority`: publishes CRLs and keeps them and the service certificates
/// current; serves CRLs, CA certificates, /healthz and /metrics. No OCSP, API or TSA here.
fn serve_authority(
    args: &ServeArgs,
    data: &Path,
    tls: Option<jpki_server::TlsConfig>,
    publish_dir: &Path,
    initialised: Option<&FirstRun>,
    passphrase: &zeroize::Zeroizing<String>,
    json_out: bool,
) -> Result<Report, Failure> {
    // With a shared database, the access log's key the verifiers sign with is made (or taken) now,
    // and its public key kept here for `jpki access-log`.
    if matches!(
        jpki_authority::registry_location(data)?,
        Some(jpki_db::Location::Postgres { .. })
    ) {
        log_key(
            data,
            &access_store(data, "")?,
            passphrase.as_bytes(),
            jpki_authority::InitOptions::DEFAULT_KDF_ITERATIONS,
        )?;
    }
    let mut authority = Authority::open(data)?;
    authority.set_operator("jpki serve --role authority");
    // The service certificates verifiers load: issued (or renewed) now.
    for kind in CertKind::ALL {
        authority.ocsp_responders(kind, passphrase.as_bytes())?;
    }
    authority.tsa_credentials(passphrase.as_bytes())?;
    let generation = authority.service_generation()?;
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = Arc::clone(&stop);
        let mut upkeep = Upkeep::new(
            false,
            passphrase.clone(),
            args.publish_dir.is_none().then(|| publish_dir.to_path_buf()),
            generation,
        );
        std::thread::Builder::new()
            .name("jpki-authority-upkeep".into())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(FOLLOW_EVERY);
                    upkeep.run(&mut authority, None);
                }
            })?
    };
    let access = if args.public_revocation {
        RevocationAccess::Public
    } else {
        RevocationAccess::Keys(Arc::new(RegistryKeys(
            KeyRegistry::new(data)?,
            Arc::new(Meter::default()),
        )))
    };
    let state = AppState::new().with_published(publish_dir.to_path_buf(), access);
    jpki_server::init_logging();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let result = jpki_server::serve_blocking_tls(args.listen, &state, tls, |addr| {
        if json_out {
            println!(
                "{}",
                json!({
                    "listening": addr.to_string(),
                    "scheme": scheme,
                    "role": "authority",
                    "publish_dir": publish_dir,
                    "initialised": initialised.map(|i| json!({ "data": data, "passphrase_file": i.passphrase_file })),
                })
            );
        } else {
            println!("Serving as authority on {scheme}://{addr} (Ctrl-C or SIGTERM stops it):");
            println!(
                "  CRLs  {scheme}://{addr}/crl/… and CA certificates /ca/… from {} (republished before they go stale)",
                publish_dir.display()
            );
            println!(
                "  OCSP, the JSON API and the TSA are answered by `jpki serve --role verifier` instances"
            );
        }
    });
    stop.store(true, Ordering::SeqCst);
    let _ = worker.join();
    result?;
    Ok(Report::new(json!({ "stopped": true }), "Server stopped."))
}

/// The registry of `data`: a verifier never migrates the shared schema.
fn open_authority(data: &Path, verifier: bool) -> Result<Authority, jpki_authority::AuthorityError> {
    if verifier {
        Authority::open_without_migrating(data)
    } else {
        Authority::open(data)
    }
}

/// `jpki serve`.
pub(crate) fn serve(args: &ServeArgs, data: &Path, json_out: bool) -> Result<Report, Failure> {
    // TLS first: a bad certificate or key is reported before anything else starts.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(jpki_server::tls_config_with_clients(
            cert,
            key,
            args.tls_client_ca.as_deref(),
        )?),
        _ => None,
    };
    let publish_dir = args.publish_dir.clone().unwrap_or_else(|| data.join("public"));
    let verifier = args.role == ServeRole::Verifier;
    let initialised = if verifier {
        attach_verifier(data, args.db.as_deref())?;
        None
    } else {
        match Authority::open(data) {
            Err(jpki_authority::AuthorityError::NotInitialised(_)) => Some(first_run(
                data,
                args.listen,
                tls.is_some(),
                args.public_url.as_deref(),
                args.db.as_deref(),
            )?),
            _ => None,
        }
    };
    if let Some(url) = &args.db {
        let here = jpki_authority::registry_location(data)?;
        if !matches!(&here, Some(jpki_db::Location::Postgres { url: u, .. }) if u == url) {
            return Err(Failure::Usage(format!(
                "--db {}: the data directory {} keeps its registry in {}",
                jpki_db::redact_url(url),
                data.display(),
                here.map_or_else(|| "no registry".to_owned(), |l| l.redacted())
            )));
        }
    }
    let mut authority = open_authority(data, verifier)?;
    let passphrase = secrets::authority_passphrase(data)?;
    let published = verifier
        || CertKind::ALL.iter().all(|k| {
            publish_dir
                .join("crl")
                .join(format!("{}.crl", k.as_str()))
                .is_file()
        });
    if !published {
        if args.publish_dir.is_none() {
            // The default place holds no complete publication yet (a first run, or one that
            // stopped while publishing): publish, so that the CRL URLs the certificates name
            // answer.
            let issuers = authority.issuers(passphrase.as_bytes())?;
            authority.publish_crls(&publish_dir, &issuers, |_, _| {})?;
        } else {
            // An operator's directory is theirs to fill (`jpki crl publish --out DIR`).
            tracing::warn!(dir = %publish_dir.display(), "no CRLs published there yet: run `jpki crl publish --out DIR`");
        }
    }
    if args.role == ServeRole::Authority {
        drop(authority);
        return serve_authority(
            args,
            data,
            tls,
            &publish_dir,
            initialised.as_ref(),
            &passphrase,
            json_out,
        );
    }
    let tsa_creds = if verifier {
        authority.existing_tsa_credentials(passphrase.as_bytes())?.1
    } else {
        authority.tsa_credentials(passphrase.as_bytes())?
    };
    let synced = OffsetDateTime::now_utc();
    let position = authority.status_history_position()?;
    let (service, services_loaded) = ocsp_service(&mut authority, passphrase.as_bytes(), verifier)?;
    let service = service.with_max_staleness(time::Duration::seconds(i64::from(args.max_staleness)));
    service.mark_synced(synced);
    let service = Arc::new(service);
    drop(authority);

    // Follow status changes made by other processes.
    let stop = Arc::new(AtomicBool::new(false));
    let meter = Arc::new(Meter::default());
    let recorder = Arc::new(Recorder::default());
    // A single machine writes the access log's unnamed stream; each verifier (several may share
    // one database) a stream of its own, named by its data directory's instance identifier.
    let stream = if verifier {
        instance_id(data)?
    } else {
        String::new()
    };
    let mut log = access_store(data, &stream)?;
    let log_key = log_key(
        data,
        &log,
        passphrase.as_bytes(),
        jpki_authority::InitOptions::DEFAULT_KDF_ITERATIONS,
    )?;
    let follower = {
        let (service, stop, data) = (Arc::clone(&service), Arc::clone(&stop), data.to_path_buf());
        let mut follow = open_authority(&data, verifier)?;
        follow.set_operator("jpki serve (upkeep)");
        let mut upkeep = Upkeep::new(
            verifier,
            passphrase.clone(),
            args.publish_dir.is_none().then(|| publish_dir.clone()),
            services_loaded,
        );
        let (meter, mut ledger) = (Arc::clone(&meter), registry(&data)?);
        let recorder = Arc::clone(&recorder);
        let mut names: HashMap<String, (String, String)> = HashMap::new();
        let mut holders = HolderCache::default();
        let mut flush = move |ledger: &mut Registry, follow: &Authority| {
            // Nothing taken is lost on a failed write: it goes back for the next flush.
            let counts = meter.take();
            if let Err(e) = ledger.add_metered(&counts) {
                tracing::error!(error = %e, checks = counts.len(), "cannot record metered checks; will retry");
                meter.restore(counts);
            }
            let seen = recorder.take();
            if seen.is_empty() {
                return;
            }
            let (checks, unresolved) = resolve_checks(&seen, follow, ledger, &mut names, &mut holders);
            let n = checks.len();
            let retry = match log.append(&log_key, checks, OffsetDateTime::now_utc()) {
                Ok(_) => unresolved,
                Err(e) => {
                    tracing::error!(error = %e, checks = n, "cannot append access records; will retry");
                    seen
                }
            };
            let dropped = recorder.requeue(retry);
            if dropped > 0 {
                tracing::error!(dropped, "access records dropped: too many waiting to be written");
            }
        };
        std::thread::Builder::new()
            .name("jpki-status-follower".into())
            .spawn(move || {
                let mut position = position;
                // Set once the registry's change log is found shorter than what this process has
                // read (a restore or a failover that lost commits): the snapshot may then hold
                // statuses the registry no longer has and miss new ones, so it is never marked in
                // sync again and answers stop at --max-staleness until a restart reloads it.
                let mut went_back = false;
                let mut polls: u64 = 0;
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(FOLLOW_EVERY);
                    polls += 1;
                    let started = OffsetDateTime::now_utc();
                    if polls.is_multiple_of(4)
                        && !went_back
                        && let Ok(end) = follow.status_history_position()
                        && end < position
                    {
                        went_back = true;
                        tracing::error!(
                            read = position,
                            registry = end,
                            "the registry's change log went back (restored or failed over?): restart this server to reload its snapshot"
                        );
                    }
                    let mut unserved = false;
                    match follow.status_changes_since(position, |kind, generation, serial, status| {
                        // A generation not served yet is loaded whole by the upkeep below.
                        unserved |= !service.set_status(kind, generation, serial, status);
                    }) {
                        Ok(p) => {
                            position = p;
                            if !went_back {
                                service.mark_synced(started);
                            }
                        }
                        Err(e) => tracing::warn!(
                            error = %e,
                            behind_s = service.staleness(started).map_or(-1, |d| d.whole_seconds()),
                            "cannot read status changes; answering from the snapshot"
                        ),
                    }
                    upkeep.unserved_generation |= unserved;
                    upkeep.run(&mut follow, Some(&service));
                    flush(&mut ledger, &follow);
                }
                flush(&mut ledger, &follow);
            })?
    };

    let tsa = TimeStampAuthority::new(tsa_creds.key, tsa_creds.cert_der, tsa_creds.chain)?;
    let keys: Arc<dyn ApiKeys> = Arc::new(RegistryKeys(KeyRegistry::new(data)?, Arc::clone(&meter)));
    let access = if args.public_revocation {
        RevocationAccess::Public
    } else {
        RevocationAccess::Keys(Arc::clone(&keys))
    };
    // Every root generation: certificates issued before a key rollover still validate.
    let cas: Vec<(CertKind, Vec<u8>)> = {
        let authority = open_authority(data, verifier)?;
        let mut cas = Vec::new();
        for k in CertKind::ALL {
            cas.extend(authority.ca_certs(k)?.into_iter().map(|(_, der)| (k, der)));
        }
        cas
    };
    let lookups = Arc::new(RegistryLookups(Mutex::new(open_authority(data, verifier)?)));
    let platform = Arc::new(
        Api::new(Arc::clone(&service), &cas)?
            .with_birth_dates(Arc::clone(&lookups) as Arc<dyn BirthDates>)
            .with_pairwise(lookups.clone())
            .with_liveness(lookups.clone())
            .with_links(lookups.clone())
            .with_consents(registry(data)?, lookups.clone())
            .with_published_crls(args.publish_dir.clone().unwrap_or_else(|| data.join("public"))),
    );
    let api = PlatformApi(Arc::clone(&platform), Arc::clone(&meter), Arc::clone(&recorder));
    let (platform_for_portal, lookups_for_portal) = (Arc::clone(&platform), Arc::clone(&lookups));
    let clients = {
        let reg = Arc::new(KeyRegistry::new(data)?);
        crate::login::RegistryClients::new(Box::new(move |id: &str| {
            let id = id.to_owned();
            match reg.with(move |r| r.oidc_client(&id)) {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read an OpenID Connect client");
                    None
                }
                None => None,
            }
        }))
    };
    let oidc = Arc::new(crate::login::PlatformOidc::new(
        data,
        &args.card_agent,
        platform,
        lookups,
        Arc::clone(&recorder),
        clients,
    )?);
    let portal = Arc::new(crate::portal::PlatformPortal::new(
        Arc::clone(&platform_for_portal),
        Arc::clone(&lookups_for_portal),
        registry(data)?,
        access_store(data, &stream)?,
        log_public_key(data)?,
        &args.card_agent,
    ));
    if let Some(url) = &args.login_url {
        oidc.start(&crate::login::issuer_for(url))?;
        portal.start(url);
    }
    let state = AppState::new()
        .with_tsa(Arc::new(AuthorityTsa { tsa }))
        .with_ocsp(
            Arc::new(PlatformOcsp(
                Arc::clone(&service),
                Arc::clone(&meter),
                Arc::clone(&recorder),
            )),
            access.clone(),
        )
        .with_published(publish_dir.clone(), access)
        .with_api(Arc::new(api), keys)
        .with_oidc(Arc::clone(&oidc) as Arc<dyn jpki_server::OidcEndpoints>)
        .with_portal(Arc::clone(&portal) as Arc<dyn jpki_server::Portal>)
        .with_health(Arc::new(SnapshotHealth(Arc::clone(&service))));
    jpki_server::init_logging();
    let public = args.public_revocation;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let login_url = args.login_url.clone();
    let result = jpki_server::serve_blocking_tls(args.listen, &state, tls, |addr| {
        let base = login_url.unwrap_or_else(|| format!("{scheme}://{}", reachable(addr)));
        let issuer = crate::login::issuer_for(&base);
        if args.login_url.is_none() {
            if let Err(e) = oidc.start(&issuer) {
                tracing::error!(error = ?e, "cannot start the OpenID Connect provider");
            }
            portal.start(&base);
        }
        if json_out {
            println!(
                "{}",
                json!({
                    "listening": addr.to_string(),
                    "scheme": scheme,
                    "ocsp": CertKind::ALL.iter().map(|k| format!("{scheme}://{addr}/ocsp/{}", k.as_str())).collect::<Vec<_>>(),
                    "tsa": format!("{scheme}://{addr}{}", jpki_server::TSA_PATH),
                    "oidc_issuer": issuer,
                    "portal": format!("{base}{}", jpki_server::PORTAL_PATH),
                    "public_revocation": public,
                    "role": role_name(args.role),
                    "max_staleness_s": args.max_staleness,
                    "publish_dir": publish_dir,
                    "initialised": initialised.as_ref().map(|i| json!({
                        "data": data,
                        "passphrase_file": i.passphrase_file,
                    })),
                })
            );
        } else {
            if let Some(i) = &initialised {
                println!(
                    "First run: initialised an authority in {} (RSA-2048 CAs, public URL {}) and published its CRLs.",
                    data.display(),
                    i.public_url
                );
                if let Some(f) = &i.passphrase_file {
                    println!(
                        "  Sandbox: its passphrase was generated into {} (set {} before the first run for a real one).",
                        f.display(),
                        secrets::PASSPHRASE_ENV
                    );
                }
                println!(
                    "  Next: `jpki rp add --name NAME --allow auth-status` for an API key; `jpki resident add` and \
                     `jpki card issue` for holders (README: Using the authority)."
                );
            }
            println!(
                "Serving as {} on {scheme}://{addr} (Ctrl-C or SIGTERM stops it):",
                role_name(args.role)
            );
            println!("  OCSP  {scheme}://{addr}/ocsp/sign and /ocsp/auth (POST, or GET below them)");
            println!("  API   {scheme}://{addr}/v1/… (described at /openapi.json)");
            println!("  TSA   {scheme}://{addr}{}", jpki_server::TSA_PATH);
            println!(
                "  Login {issuer} (OpenID Connect; card agent expected at {})",
                args.card_agent
            );
            println!("  Portal {base}{} (マイナポータル)", jpki_server::PORTAL_PATH);
            println!(
                "  CRLs  {scheme}://{addr}/crl/… and CA certificates /ca/… from {}",
                publish_dir.display()
            );
            if public {
                println!("  revocation answers are public (--public-revocation)");
            } else {
                println!(
                    "  revocation answers are for registered relying parties only (Authorization: Bearer KEY \
                     from `jpki rp add`); --public-revocation opens them"
                );
            }
        }
    });
    stop.store(true, Ordering::SeqCst);
    let _ = follower.join();
    result?;
    Ok(Report::new(json!({ "stopped": true }), "Server stopped."))
}

/// What a first run set up.
struct FirstRun {
    public_url: String,
    /// Where a generated sandbox passphrase was written (none when it came from the environment).
    passphrase_file: Option<std::path::PathBuf>,
}

/// The first `jpki serve` on an empty data directory: initialise an authority with the defaults
/// (RSA-2048 CAs; the public URL is the listen address, or the default one for port 0). `serve`
/// then publishes its CRLs, as on any start that finds nothing published. The passphrase comes from
/// `JPKI_AUTHORITY_PASSPHRASE` when set; otherwise a sandbox passphrase is generated into
/// DATA/authority-passphrase, as `jpki init --demo` does.
fn first_run(
    data: &Path,
    listen: std::net::SocketAddr,
    tls: bool,
    public_url: Option<&str>,
    db: Option<&str>,
) -> Result<FirstRun, Failure> {
    // The URL goes into the CA certificates for good: the given one, else where this server
    // listens (loopback for an unspecified address, 7700 for port 0), with its scheme.
    let public_url = public_url.map_or_else(
        || {
            let ip = if listen.ip().is_unspecified() {
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
            } else {
                listen.ip()
            };
            let port = if listen.port() == 0 { 7700 } else { listen.port() };
            let scheme = if tls { "https" } else { "http" };
            format!("{scheme}://{}", std::net::SocketAddr::new(ip, port))
        },
        str::to_owned,
    );
    let endpoints = jpki_pki::Endpoints::new(&public_url).map_err(|e| Failure::Usage(e.to_string()))?;
    let sandbox = std::env::var_os(secrets::PASSPHRASE_ENV).is_none();
    let passphrase = secrets::new_authority_passphrase(data, sandbox)?;
    Authority::init_at(
        data,
        &jpki_authority::InitOptions::new(KeyType::Rsa2048, endpoints),
        passphrase.as_bytes(),
        db,
    )?;
    Ok(FirstRun {
        public_url,
        passphrase_file: sandbox.then(|| secrets::passphrase_file(data)),
    })
}

/// The access log's signing key: made on first use, kept encrypted under the authority's
/// passphrase in DATA/access-log-key.pem, its public key beside it. With a PostgreSQL registry the
/// encrypted key is kept in the access log's database, so that every instance writing it signs
/// with one key (the first instance puts its key there), and only the public key is written here.
fn log_key(
    data: &Path,
    store: &AccessStore,
    passphrase: &[u8],
    iterations: u32,
) -> Result<SigningKey, Failure> {
    let path = data.join(LOG_KEY_FILE);
    if matches!(
        jpki_authority::registry_location(data)?,
        Some(jpki_db::Location::Postgres { .. })
    ) {
        let pem = match store.shared_log_key()? {
            Some(pem) => pem,
            None => {
                // A key this data directory made before the database kept one is offered first.
                let offered = match std::fs::read_to_string(&path) {
                    Ok(pem) => zeroize::Zeroizing::new(pem),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        SigningKey::generate(KeyType::P384)?.to_encrypted_pem(passphrase, iterations)?
                    }
                    Err(e) => return Err(Failure::Failed(format!("{}: {e}", path.display()))),
                };
                store.share_log_key(&offered)?
            }
        };
        let key = SigningKey::from_encrypted_pem(&pem, passphrase).map_err(|e| {
            Failure::Failed(format!(
                "the access log's key in the database does not open with the authority passphrase: {e}"
            ))
        })?;
        pin_log_public_key(data, &key.spki_der()?)?;
        return Ok(key);
    }
    match std::fs::read_to_string(&path) {
        Ok(pem) => Ok(SigningKey::from_encrypted_pem(&pem, passphrase)
            .map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(KeyType::P384)?;
            let spki = key.spki_der()?;
            let public = jpki_pki::to_pem("PUBLIC KEY", &spki)?;
            jpki_authority::write_atomically(&data.join(LOG_PUBLIC_KEY_FILE), public.as_bytes(), 0o644)?;
            let pem = key.to_encrypted_pem(passphrase, iterations)?;
            jpki_authority::write_atomically(&path, pem.as_bytes(), 0o600)?;
            Ok(key)
        }
        Err(e) => Err(Failure::Failed(format!("{}: {e}", path.display()))),
    }
}

/// Writes DATA/access-log-key.pub.pem for `spki` unless it already holds it (a different key
/// there is replaced, with a warning: heads signed under it no longer verify).
fn pin_log_public_key(data: &Path, spki: &[u8]) -> Result<(), Failure> {
    match log_public_key(data) {
        Ok(pinned) if pinned == spki => return Ok(()),
        Ok(_) => tracing::warn!(
            file = %data.join(LOG_PUBLIC_KEY_FILE).display(),
            "the access log's key in the database differs from the one this data directory knew; using the database's"
        ),
        Err(_) => {}
    }
    let public = jpki_pki::to_pem("PUBLIC KEY", spki)?;
    jpki_authority::write_atomically(&data.join(LOG_PUBLIC_KEY_FILE), public.as_bytes(), 0o644)?;
    Ok(())
}

/// The access log's public key (SubjectPublicKeyInfo DER), from DATA/access-log-key.pub.pem.
pub(crate) fn log_public_key(data: &Path) -> Result<Vec<u8>, Failure> {
    let path = data.join(LOG_PUBLIC_KEY_FILE);
    let pem = match std::fs::read_to_string(&path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::Failed(format!(
                "no access log yet ({} is missing): `jpki serve` makes it",
                path.display()
            )));
        }
        Err(e) => return Err(Failure::Failed(format!("{}: {e}", path.display()))),
    };
    let (label, der) = der::pem::decode_vec(pem.as_bytes())
        .map_err(|e| Failure::Failed(format!("{}: not PEM ({e})", path.display())))?;
    if label != "PUBLIC KEY" {
        return Err(Failure::Failed(format!("{}: not a PUBLIC KEY", path.display())));
    }
    Ok(der)
}

/// `jpki access-log --serial HEX`: the access records of the holder of a certificate, checked:
/// every stream of the holder's log (one per platform instance that recorded checks) against its
/// own signed head.
pub(crate) fn access_log(serial: &jpki_model::Serial, data: &Path) -> Result<Report, Failure> {
    let authority = Authority::open(data)?;
    let Some(person) = authority.person_ref(serial.as_be_bytes())? else {
        return Err(Failure::Failed(format!(
            "no certificate with serial {} in the registry",
            serial.to_hex()
        )));
    };
    let spki = log_public_key(data)?;
    let store = access_store(data, "")?;
    let streams = store.check_streams(&person, &spki)?;
    let quarantined = store.quarantined(&person)?;
    let rfc3339 = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let records: Vec<&jpki_platform::AccessRecord> = streams.iter().flat_map(|s| &s.records).collect();
    let rows: Vec<_> = records
        .iter()
        .map(|r| {
            json!({
                "stream": r.stream,
                "seq": r.seq,
                "at": rfc3339(r.check.at),
                "rp_id": r.check.rp_id,
                "rp_name": r.check.rp_name,
                "kind": r.check.cert_kind.as_str(),
                "check": r.check.check,
                "purpose": r.check.purpose,
                "result": r.check.result,
            })
        })
        .collect();
    let named = streams.iter().any(|s| !s.stream.is_empty());
    let mut text = format!(
        "Access records of the holder of {} ({} record(s)):\n",
        serial.to_hex(),
        rows.len()
    );
    for r in &records {
        let jst = r.check.at.to_offset(time::macros::offset!(+9));
        let place = if named {
            format!("{}#{}", if r.stream.is_empty() { "-" } else { &r.stream }, r.seq)
        } else {
            r.seq.to_string()
        };
        text.push_str(&format!(
            "  {:>4}  {} JST  {}  {} certificate  {}  → {}  ({})\n",
            place,
            jst.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .unwrap_or_default(),
            r.check.rp_name,
            r.check.cert_kind.as_str(),
            r.check.check,
            r.check.result,
            r.check.purpose,
        ));
    }
    let head_json = |h: &jpki_platform::SignedHead| {
        json!({
            "seq": h.seq,
            "hash": hex::encode(h.hash),
            "batch": h.batch,
            "signed_at": rfc3339(h.signed_at),
        })
    };
    let mut stream_json = Vec::new();
    let mut problem: Option<(String, String)> = None;
    let mut total = 0u64;
    let mut latest: Option<&jpki_platform::SignedHead> = None;
    for s in &streams {
        let label = if s.stream.is_empty() {
            "the unnamed stream".to_owned()
        } else {
            format!("stream {}", s.stream)
        };
        match &s.integrity {
            jpki_platform::Integrity::Intact { records, head } => {
                total += records;
                if let Some(h) = head
                    && latest.is_none_or(|l| (h.signed_at, h.batch) > (l.signed_at, l.batch))
                {
                    latest = Some(h);
                }
                if named {
                    text.push_str(&match head {
                        Some(h) => format!(
                            "  {label}: intact — {records} record(s), head signed in batch {} at {}\n",
                            h.batch,
                            rfc3339(h.signed_at)
                        ),
                        None => format!("  {label}: intact — no checks recorded\n"),
                    });
                }
                stream_json.push(json!({
                    "stream": s.stream,
                    "intact": true,
                    "records": records,
                    "head": head.as_ref().map(head_json),
                }));
            }
            jpki_platform::Integrity::Tampered(t) => {
                if named {
                    text.push_str(&format!("  {label}: FAILED — {t}\n"));
                }
                stream_json.push(json!({
                    "stream": s.stream,
                    "intact": false,
                    "records": s.records.len(),
                    "problem": t.to_string(),
                }));
                if problem.is_none() {
                    problem = Some((s.stream.clone(), t.to_string()));
                }
            }
        }
    }
    let (integrity_json, exit) = match problem {
        None => {
            text.push_str(&match latest {
                Some(h) if !named => format!(
                    "Integrity: intact — {total} record(s), head signed in batch {} at {}",
                    h.batch,
                    rfc3339(h.signed_at)
                ),
                Some(_) => format!(
                    "Integrity: intact — {total} record(s) in {} stream(s), each up to its signed head",
                    streams.len()
                ),
                None => "Integrity: intact — no checks recorded".to_owned(),
            });
            (
                json!({
                    "intact": true,
                    "records": total,
                    "head": latest.map(head_json),
                    "streams": stream_json,
                }),
                0,
            )
        }
        Some((stream, t)) => {
            text.push_str(&if stream.is_empty() {
                format!("Integrity: FAILED — {t}")
            } else {
                format!("Integrity: FAILED — stream {stream}: {t}")
            });
            (
                json!({ "intact": false, "problem": t, "stream": stream, "streams": stream_json }),
                1,
            )
        }
    };
    if quarantined > 0 {
        text.push_str(&format!(
            "\n{quarantined} later check(s) are held apart: the log was found changed, so they were not chained onto it"
        ));
    }
    Ok(Report::new(
        json!({ "serial": serial.to_hex(), "records": rows, "integrity": integrity_json, "quarantined": quarantined }),
        text,
    )
    .with_exit(exit))
}

/// Resolves answered checks to their holders (the authority's opaque reference) and relying-party
/// names. A certificate the authority does not know has no holder and leaves no record.
/// Holders of recently checked certificates (serial → the platform's person reference; a
/// certificate's holder never changes), so that a certificate checked again costs no registry read.
#[derive(Default)]
struct HolderCache(HashMap<Vec<u8>, String>);

/// How many certificates' holders [`HolderCache`] remembers.
const HOLDER_CACHE_ENTRIES: usize = 100_000;

impl HolderCache {
    fn get(
        &mut self,
        authority: &Authority,
        serial: &[u8],
    ) -> Result<Option<String>, jpki_authority::AuthorityError> {
        if let Some(p) = self.0.get(serial) {
            return Ok(Some(p.clone()));
        }
        let found = authority.person_ref(serial)?;
        if let Some(p) = &found {
            if self.0.len() >= HOLDER_CACHE_ENTRIES {
                self.0.clear();
            }
            self.0.insert(serial.to_vec(), p.clone());
        }
        Ok(found)
    }
}

/// Checks whose holder could not be looked up (a registry error) come back second, to retry.
fn resolve_checks(
    seen: &[Seen],
    authority: &Authority,
    registry: &Registry,
    names: &mut HashMap<String, (String, String)>,
    holders: &mut HolderCache,
) -> (Vec<(String, CheckRecord)>, Vec<Seen>) {
    let mut out = Vec::with_capacity(seen.len());
    let mut unresolved = Vec::new();
    for s in seen {
        let person = match holders.get(authority, &s.serial) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot resolve a checked certificate's holder; will retry");
                unresolved.push(s.clone());
                continue;
            }
        };
        let (rp_name, registered_purpose) = match names.get(&s.rp_id) {
            Some(n) => n.clone(),
            None => match registry.get(&s.rp_id) {
                Ok(rp) => {
                    let n = (rp.name, rp.purpose);
                    names.insert(s.rp_id.clone(), n.clone());
                    n
                }
                Err(e) => {
                    // Recorded only with the name people will read: the next flush asks again.
                    tracing::error!(error = %e, "cannot read a relying party; will retry");
                    unresolved.push(s.clone());
                    continue;
                }
            },
        };
        out.push((
            person,
            CheckRecord {
                at: s.at,
                rp_id: s.rp_id.clone(),
                rp_name,
                cert_kind: s.kind,
                check: s.check.clone(),
                purpose: s.purpose.clone().unwrap_or_else(|| {
                    if registered_purpose.is_empty() {
                        NO_PURPOSE.to_owned()
                    } else {
                        registered_purpose.clone()
                    }
                }),
                result: s.result.clone(),
            },
        ));
    }
    (out, unresolved)
}

/// The tariff: DATA/tariff.json when present, else seed 000's prices with the default tiers.
fn tariff(data: &Path) -> Result<Tariff, Failure> {
    let path = data.join("tariff.json");
    let tariff = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Tariff>(&bytes)
            .map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tariff::default(),
        Err(e) => return Err(Failure::Failed(format!("{}: {e}", path.display()))),
    };
    tariff.validate().map_err(Failure::Failed)?;
    Ok(tariff)
}

/// `jpki rp invoice`.
fn invoice(reg: &Registry, data: &Path, rp: &str, month: &str, csv: bool) -> Result<Report, Failure> {
    let ok = month.len() == 7
        && month.as_bytes().get(4) == Some(&b'-')
        && month
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 4 || b.is_ascii_digit())
        && matches!(month.get(5..7).and_then(|m| m.parse::<u8>().ok()), Some(1..=12));
    if !ok {
        return Err(Failure::Usage(format!("--month {month:?}: expected YYYY-MM")));
    }
    let party = reg.get(rp)?;
    let tariff = tariff(data)?;
    let metered = reg.metered(rp, month)?;
    // Charged: the status and attribute checks (seed 000). CRL downloads are counted, not charged.
    let count = |kind: &str| {
        metered
            .iter()
            .filter(|(k, c, _)| k == kind && BILLED_CHECKS.contains(&c.as_str()))
            .map(|(_, _, n)| n)
            .sum::<u64>()
    };
    let lines = tariff.invoice(count("sign"), count("auth"));
    let total: u64 = lines.iter().map(|l| l.yen).sum();
    let text = if csv {
        let mut t = String::from("kind,checks,unit_yen,yen\n");
        for l in &lines {
            t.push_str(&format!("{},{},{},{}\n", l.kind, l.checks, l.unit_yen, l.yen));
        }
        t.push_str(&format!("total,,,{total}"));
        t
    } else {
        let mut t = format!("Invoice for {} ({}), {month} (JST)\n", party.name, party.id);
        for l in &lines {
            t.push_str(&format!(
                "  {} certificate checks: {:>10} × {:>2} yen, after tiers {:>12} yen\n",
                l.kind, l.checks, l.unit_yen, l.yen
            ));
        }
        t.push_str(&format!("  total {total} yen"));
        t
    };
    Ok(Report::new(
        json!({
            "rp_id": party.id,
            "name": party.name,
            "month": month,
            "lines": lines,
            "checks": metered.iter().map(|(k, c, n)| json!({"kind": k, "check": c, "count": n})).collect::<Vec<_>>(),
            "tiers": tariff.tiers,
            "total_yen": total,
        }),
        text,
    ))
}

/// Where a browser on this machine reaches a server bound to `addr` (loopback for an unspecified
/// address).
fn reachable(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    if addr.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}
