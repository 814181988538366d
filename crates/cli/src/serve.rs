//! `jpki serve` and `jpki rp`: the platform over HTTP (issue 5, being built), and its relying parties. Today: the OCSP responder for both
//! CAs at the URLs the certificates name (`/ocsp/sign`, `/ocsp/auth`), the CRLs and CA certificates
//! `jpki crl publish` wrote (`/crl/…`, `/ca/…`), the JSON API (`/v1/…`), the time-stamp authority
//! (`/tsa`), `/healthz`, `/metrics` and `/openapi.json`.
//!
//! At start it loads each CA's status snapshot from the registry (`StatusIndex`), takes (or, the
//! first time and 30 days before expiry, has the CA issue) each OCSP responder's certificate, and
//! then follows the registry's status history every quarter second, so a revocation made by another
//! `jpki` process is answered within a second and drops any cached "good" at once.
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jpki_authority::Authority;
use jpki_model::CertKind;
use jpki_pki::ocsp::Responder;
use jpki_platform::api::{BirthDates, Rights};

use crate::lookups::RegistryLookups;
use jpki_platform::{
    Api, Capability, Meter, NewRelyingParty, OcspService, Registry, RelyingParty, StatusIndex, Tariff,
};
use jpki_server::{ApiKeys, AppState, Caller, RevocationAccess};
use jpki_sig::tsp::TimeStampAuthority;
use serde_json::json;
use time::OffsetDateTime;

use crate::args::{RpCmd, ServeArgs};
use crate::docsig::AuthorityTsa;
use crate::{Failure, Report, secrets};

/// How long an OCSP answer is valid (nextUpdate − thisUpdate). Cached answers are re-signed after
/// half of it; a status change replaces them at once.
const OCSP_VALIDITY: time::Duration = time::Duration::hours(1);
/// The relying-party registry's file in the data directory.
const REGISTRY_FILE: &str = "platform.sqlite";
/// How often the registry's status history is read for changes.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// The platform's OCSP service as the HTTP layer's responder.
/// Every certificate answered for an identified relying party is metered.
struct PlatformOcsp(Arc<OcspService>, Arc<Meter>);

impl jpki_server::OcspResponder for PlatformOcsp {
    fn answer(&self, caller: Option<&Caller>, request_der: &[u8]) -> Vec<u8> {
        let may = |kind| caller.is_none_or(|c| c.may(status_capability(kind).as_str()));
        let now = OffsetDateTime::now_utc();
        let answer = self.0.answer(request_der, now, may);
        if let Some(c) = caller {
            for a in &answer.answered {
                self.1.add(&c.id, a.kind, "ocsp", 1, now);
            }
        }
        answer.body
    }
}

/// The platform's JSON API as the HTTP layer's handler; every answered check is metered.
struct PlatformApi(Api, Arc<Meter>);

impl jpki_server::JsonApi for PlatformApi {
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
        let (status, json) = self.0.call(operation, body, &rights, now);
        let check = match operation {
            "certificates/validity" => Some("validity"),
            "certificates/age" => Some("age"),
            _ => None,
        };
        let kind = match json["kind"].as_str() {
            Some("sign") => Some(CertKind::Signature),
            Some("auth") => Some(CertKind::Authentication),
            _ => None,
        };
        if let (200, Some(check), Some(kind)) = (status, check, kind) {
            self.1.add(&caller.id, kind, check, 1, now);
        }
        (status, json.to_string())
    }
}

/// How a registered age threshold travels in a caller's scopes: `age:18`.
const AGE_SCOPE: &str = "age:";

/// API keys checked against the relying-party registry on every request.
struct RegistryKeys(Mutex<Registry>);

impl ApiKeys for RegistryKeys {
    fn identify(&self, key: &str) -> Option<Caller> {
        let registry = self.0.lock().ok()?;
        match registry.authenticate(key) {
            Ok(rp) => rp.map(|rp| Caller {
                scopes: rp
                    .capabilities
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .chain(rp.age_thresholds.iter().map(|a| format!("{AGE_SCOPE}{a}")))
                    .collect(),
                id: rp.id,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot check an API key");
                None
            }
        }
    }
}

/// The status capability a relying party needs to ask about `kind`'s certificates.
fn status_capability(kind: CertKind) -> Capability {
    match kind {
        CertKind::Signature => Capability::SignStatus,
        CertKind::Authentication => Capability::AuthStatus,
    }
}

/// The platform's relying-party registry in the data directory.
fn registry(data: &Path) -> Result<Registry, Failure> {
    if !data.is_dir() {
        return Err(Failure::Failed(format!(
            "no data directory {}: run `jpki init` first",
            data.display()
        )));
    }
    Ok(Registry::open(&data.join(REGISTRY_FILE))?)
}

fn rp_json(rp: &RelyingParty) -> serde_json::Value {
    json!({
        "rp_id": rp.id,
        "name": rp.name,
        "capabilities": rp.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "age_thresholds": rp.age_thresholds,
        "active_keys": rp.active_keys,
    })
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
        } => {
            let (rp, key) = reg
                .add(
                    &NewRelyingParty {
                        name: &name,
                        capabilities: allow.into_iter().collect(),
                        age_thresholds,
                    },
                    now,
                )
                .map_err(|e| Failure::Usage(e.to_string()))?;
            let mut v = rp_json(&rp);
            v["api_key"] = json!(key.expose());
            Ok(Report::new(
                v,
                format!(
                    "Registered {} as {}.\nAPI key (shown once; send it as Authorization: Bearer KEY):\n{}",
                    rp.name,
                    rp.id,
                    key.expose()
                ),
            ))
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
            Ok(Report::new(
                json!({ "rp_id": rp, "api_key": key.expose() }),
                format!("New API key for {rp} (shown once):\n{}", key.expose()),
            ))
        }
        RpCmd::Invoice { rp, month, csv } => invoice(&reg, data, &rp, &month, csv),
        RpCmd::RevokeKey { rp } => {
            let n = reg.revoke_keys(&rp, now)?;
            Ok(Report::new(
                json!({ "rp_id": rp, "revoked_keys": n }),
                format!("Revoked {n} API key(s) of {rp}; they are refused from the next request on."),
            ))
        }
    }
}

/// Builds the OCSP service from the registry: one responder and one status snapshot per CA.
fn ocsp_service(authority: &mut Authority, passphrase: &[u8]) -> Result<OcspService, Failure> {
    let mut service = OcspService::new(OCSP_VALIDITY);
    for kind in CertKind::ALL {
        let creds = authority.ocsp_credentials(kind, passphrase)?;
        let mut certs = Vec::new();
        authority
            .for_each_certificate_status(kind, |serial, status| certs.push((serial.to_vec(), status)))?;
        let index = StatusIndex::build(certs.iter().map(|(s, st)| (s.as_slice(), *st)));
        service = service.with_ca(
            kind,
            &authority.ca_cert(kind)?,
            Responder::new(creds.key, creds.cert_der)?,
            index,
        )?;
    }
    Ok(service)
}

/// `jpki serve`.
pub(crate) fn serve(args: &ServeArgs, data: &Path, json_out: bool) -> Result<Report, Failure> {
    // TLS first: a bad certificate or key is reported before anything else starts.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(jpki_server::tls_config(cert, key)?),
        _ => None,
    };
    let mut authority = Authority::open(data)?;
    let passphrase = secrets::authority_passphrase(data)?;
    let tsa_creds = authority.tsa_credentials(passphrase.as_bytes())?;
    let position = authority.status_history_position()?;
    let service = Arc::new(ocsp_service(&mut authority, passphrase.as_bytes())?);
    drop(authority);

    // Follow status changes made by other processes.
    let stop = Arc::new(AtomicBool::new(false));
    let meter = Arc::new(Meter::default());
    let follower = {
        let (service, stop, data) = (Arc::clone(&service), Arc::clone(&stop), data.to_path_buf());
        let follow = Authority::open(&data)?;
        let (meter, mut ledger) = (Arc::clone(&meter), registry(&data)?);
        let flush = move |ledger: &mut Registry| {
            let counts = meter.take();
            if let Err(e) = ledger.add_metered(&counts) {
                tracing::error!(error = %e, checks = counts.len(), "cannot record metered checks");
            }
        };
        std::thread::Builder::new()
            .name("jpki-status-follower".into())
            .spawn(move || {
                let mut position = position;
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(FOLLOW_EVERY);
                    match follow.status_changes_since(position, |kind, serial, status| {
                        service.set_status(kind, serial, status);
                    }) {
                        Ok(p) => position = p,
                        Err(e) => tracing::warn!(error = %e, "cannot read status changes; answering from the snapshot"),
                    }
                    flush(&mut ledger);
                }
                flush(&mut ledger);
            })?
    };

    let tsa = TimeStampAuthority::new(tsa_creds.key, tsa_creds.cert_der, tsa_creds.chain)?;
    let keys: Arc<dyn ApiKeys> = Arc::new(RegistryKeys(Mutex::new(registry(data)?)));
    let access = if args.public_revocation {
        RevocationAccess::Public
    } else {
        RevocationAccess::Keys(Arc::clone(&keys))
    };
    let cas: Vec<(CertKind, Vec<u8>)> = {
        let authority = Authority::open(data)?;
        CertKind::ALL
            .into_iter()
            .map(|k| authority.ca_cert(k).map(|der| (k, der)))
            .collect::<Result<_, _>>()?
    };
    let lookups = Arc::new(RegistryLookups(Mutex::new(Authority::open(data)?)));
    let api = PlatformApi(
        Api::new(Arc::clone(&service), &cas)?
            .with_birth_dates(Arc::clone(&lookups) as Arc<dyn BirthDates>)
            .with_pairwise(lookups),
        Arc::clone(&meter),
    );
    let publish_dir = args.publish_dir.clone().unwrap_or_else(|| data.join("public"));
    let state = AppState::new()
        .with_tsa(Arc::new(AuthorityTsa { tsa }))
        .with_ocsp(
            Arc::new(PlatformOcsp(Arc::clone(&service), Arc::clone(&meter))),
            access.clone(),
        )
        .with_published(publish_dir.clone(), access)
        .with_api(Arc::new(api), keys);
    jpki_server::init_logging();
    let public = args.public_revocation;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let result = jpki_server::serve_blocking_tls(args.listen, &state, tls, |addr| {
        if json_out {
            println!(
                "{}",
                json!({
                    "listening": addr.to_string(),
                    "scheme": scheme,
                    "ocsp": CertKind::ALL.iter().map(|k| format!("{scheme}://{addr}/ocsp/{}", k.as_str())).collect::<Vec<_>>(),
                    "tsa": format!("{scheme}://{addr}{}", jpki_server::TSA_PATH),
                    "public_revocation": public,
                    "publish_dir": publish_dir,
                })
            );
        } else {
            println!("Serving on {scheme}://{addr} (Ctrl-C or SIGTERM stops it):");
            println!("  OCSP  {scheme}://{addr}/ocsp/sign and /ocsp/auth (POST, or GET below them)");
            println!("  TSA   {scheme}://{addr}{}", jpki_server::TSA_PATH);
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
    let count = |kind: &str| {
        metered
            .iter()
            .filter(|(k, _, _)| k == kind)
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
