//! `jpki`: the command-line front of openjpki.
//!
//! Contract: `--data DIR` and `--json` are global; with `--json` every command prints one JSON
//! object on stdout. Usage errors exit 2 and other failures 1, each with one line on stderr.

mod args;
mod consent;
mod demo;
mod docsig;
mod holder;
mod login;
mod lookups;
mod portal;
mod secrets;
mod serve;
mod sim;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser as _;
use jpki_authority::{Authority, AuthorityError, CardKeys, InitOptions, Renewal};
use jpki_card::{CardFile, DeviceKey, HolderSecrets, KeySlot};
use jpki_model::{CertKind, RevocationReason};
use jpki_pki::{CertificateInfo, Endpoints, KeyType, SubjectPublicKey};
use serde_json::{Value, json};

use crate::args::{CaCmd, CardCmd, CertCmd, Cli, Command, CrlCmd, KeyTypeArg, RenewKind, ResidentCmd};

/// A failure: the message is one line naming the problem.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad usage (exit 2).
    Usage(String),
    /// The operation failed (exit 1).
    Failed(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Failed(e.to_string())
    }
}

/// What a command reports: a JSON object and the same for people.
pub(crate) struct Report {
    json: Value,
    text: String,
    /// Exit status on success (`jpki verify` says 1 failed, 3 indeterminate).
    exit: u8,
}

impl Report {
    pub(crate) fn new(json: Value, text: impl Into<String>) -> Self {
        Self {
            json,
            text: text.into(),
            exit: 0,
        }
    }

    pub(crate) fn with_exit(mut self, code: u8) -> Self {
        self.exit = code;
        self
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            let rendered = e.render().to_string();
            let line = rendered.lines().next().unwrap_or("error: bad usage").trim();
            let line = line.strip_prefix("error: ").unwrap_or(line);
            if std::env::args().any(|a| a == "--json") {
                println!("{}", json!({ "error": line }));
            }
            eprintln!("jpki: {line}");
            return ExitCode::from(2);
        }
    };
    let json = cli.json;
    let result = run(cli);
    let mut out = std::io::stdout().lock();
    match result {
        Ok(r) => {
            let _ = if json {
                writeln!(out, "{}", r.json)
            } else {
                writeln!(out, "{}", r.text.trim_end())
            };
            ExitCode::from(r.exit)
        }
        Err(f) => {
            let (msg, code) = match f {
                Failure::Usage(m) => (m, 2),
                Failure::Failed(m) => (m, 1),
            };
            let msg = msg.replace('\n', " ");
            if json {
                let _ = writeln!(out, "{}", json!({ "error": msg }));
            }
            eprintln!("jpki: {msg}");
            ExitCode::from(code)
        }
    }
}

fn key_type(k: KeyTypeArg) -> KeyType {
    match k {
        KeyTypeArg::Rsa2048 => KeyType::Rsa2048,
        KeyTypeArg::P384 => KeyType::P384,
    }
}

fn run(cli: Cli) -> Result<Report, Failure> {
    let data = cli.data.as_path();
    match cli.command {
        Command::Init(a) => {
            let endpoints = Endpoints::new(&a.public_url).map_err(|e| Failure::Usage(e.to_string()))?;
            let mut opts = InitOptions::new(key_type(a.key_type), endpoints);
            opts.shards = a.shards;
            opts.kdf_iterations = a.kdf_iterations;
            if Authority::open(data).is_ok() {
                return Err(AuthorityError::AlreadyInitialised(data.display().to_string()).into());
            }
            let pass = secrets::new_authority_passphrase(data, a.demo)?;
            let auth = Authority::init_at(data, &opts, pass.as_bytes(), a.db.as_deref())?;
            let s = auth.settings();
            Ok(Report::new(
                json!({ "data": data, "registry": auth.registry_location(), "key_type": s.key_type.as_str(), "public_url": s.endpoints.base(), "shards": s.shards,
                        "passphrase_file": a.demo.then(|| secrets::passphrase_file(data)) }),
                format!(
                    "Initialised the authority in {} (registry {}; {} CA keys, {} CRL shards, public URL {}).",
                    data.display(),
                    auth.registry_location(),
                    s.key_type.as_str(),
                    s.shards,
                    s.endpoints.base()
                ),
            ))
        }
        Command::Resident(cmd) => resident(data, cmd),
        Command::Card(CardCmd::Agent {
            access,
            listen,
            provider,
        }) => login::card_agent(
            access,
            &holder::device_key_path(cli.device_key.as_deref()),
            listen,
            &provider,
            cli.json,
        ),
        Command::Card(cmd) => card(data, &holder::device_key_path(cli.device_key.as_deref()), cmd),
        Command::Cert(cmd) => cert(data, cmd),
        Command::Ca(CaCmd::Rollover {
            root_years,
            kdf_iterations,
        }) => {
            let mut auth = Authority::open(data)?;
            let pass = secrets::authority_passphrase(data)?;
            let reports = auth.rollover(pass.as_bytes(), kdf_iterations, root_years)?;
            // The new generation's OCSP responders and TSA at once: running servers (verifiers
            // too) take the responders up from the registry without waiting for the authority's
            // upkeep. The rollover itself is committed: a failure here is the upkeep's to repair,
            // not a reason to run the rollover again.
            let services = CertKind::ALL
                .into_iter()
                .try_for_each(|kind| auth.ocsp_responders(kind, pass.as_bytes()).map(drop))
                .and_then(|()| auth.tsa_credentials(pass.as_bytes()).map(drop));
            if let Err(e) = services {
                eprintln!(
                    "warning: the rollover is done, but the new service certificates were not issued ({e}); \
                     `jpki serve --role authority` (or `all`) issues them"
                );
            }
            let text = reports
                .iter()
                .map(|r| {
                    format!(
                        "{} CA: generation {} (links: new-with-old {}, old-with-new {})",
                        r.kind.as_str(),
                        r.generation,
                        r.link_serials[0],
                        r.link_serials[1]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Report::new(
                json!({ "rollover": reports }),
                format!(
                    "{text}\nNew certificates are issued under the new generation, and its OCSP responders are issued; running servers \
                     take them up within a minute (a new TSA certificate at their next start). Publish the roots and links with `jpki crl publish`; \
                     relying parties trusting an old root validate new certificates through the new-with-old link."
                ),
            ))
        }
        Command::Ca(CaCmd::Links { out }) => {
            let auth = Authority::open(data)?;
            std::fs::create_dir_all(&out).map_err(|e| Failure::Usage(format!("{}: {e}", out.display())))?;
            let mut files = Vec::new();
            for kind in CertKind::ALL {
                for (from, to, der) in auth.ca_links(kind)? {
                    let f = out.join(format!("{}-link-g{from}-g{to}.pem", kind.as_str()));
                    write_pem(&f, "CERTIFICATE", &der)?;
                    files.push(f);
                }
            }
            let n = files.len();
            Ok(Report::new(
                json!({ "files": files }),
                format!("Wrote {n} link certificate(s) to {}.", out.display()),
            ))
        }
        Command::Ca(CaCmd::Export {
            kind,
            out,
            generation,
        }) => {
            let auth = Authority::open(data)?;
            let der = match generation {
                None => auth.ca_cert(kind.kind())?,
                Some(g) => auth
                    .ca_certs(kind.kind())?
                    .into_iter()
                    .find(|(n, _)| *n == g)
                    .map(|(_, der)| der)
                    .ok_or_else(|| {
                        Failure::Usage(format!(
                            "--generation {g}: no such generation of the {} CA",
                            kind.kind().as_str()
                        ))
                    })?,
            };
            write_pem(&out, "CERTIFICATE", &der)?;
            let info = CertificateInfo::from_der(&der)?;
            Ok(Report::new(
                json!({ "kind": kind.kind().as_str(), "out": out, "serial": info.serial, "subject": info.subject, "sha256": info.sha256 }),
                format!(
                    "Wrote the {} root ({}) to {}.",
                    kind.kind().as_str(),
                    info.subject,
                    out.display()
                ),
            ))
        }
        Command::Revoke(a) => {
            let mut auth = Authority::open(data)?;
            let rec = auth.revoke(&a.serial, a.reason)?;
            Ok(Report::new(
                json!({ "serial": rec.serial, "status": rec.status, "reason": rec.reason, "revoked_at": rfc3339(rec.revoked_at) }),
                format!(
                    "Certificate {} is now {} ({}).",
                    rec.serial,
                    status_word(rec.status),
                    a.reason.rfc_name()
                ),
            ))
        }
        Command::Crl(CrlCmd::Publish { out }) => {
            let mut auth = Authority::open(data)?;
            let pass = secrets::authority_passphrase(data)?;
            let issuers = auth.issuers(pass.as_bytes())?;
            let show = !cli.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
            let reports = auth.publish_crls(&out, &issuers, |done, total| {
                if show {
                    eprint!("\rpublishing {done}/{total} files");
                    if done == total {
                        eprintln!();
                    }
                }
            })?;
            let mut text = format!("Published to {}:\n", out.display());
            for r in &reports {
                let entries = r.files.first().map_or(0, |f| f.entries);
                text += &format!(
                    "  {} CA{}: CRL number {}, {} entries in the complete CRL, {} files{}\n",
                    r.kind.as_str(),
                    if r.generation > 1 {
                        format!(" generation {}", r.generation)
                    } else {
                        String::new()
                    },
                    r.crl_number,
                    entries,
                    r.files.len(),
                    r.delta_base
                        .map(|b| format!(", delta against {b}"))
                        .unwrap_or_default()
                );
            }
            Ok(Report::new(json!({ "out": out, "cas": reports }), text))
        }
        Command::Backup { out } => {
            let mut auth = Authority::open(data)?;
            let pass = secrets::authority_passphrase(data)?;
            let extra = platform_files(data)?;
            let stores = serve::platform_stores(data)?;
            let refs: Vec<(&str, &jpki_db::Db)> = stores.iter().map(|(n, d)| (*n, d)).collect();
            let header = auth.backup(&out, pass.as_bytes(), &refs, &extra)?;
            auth.record_action("backup", &format!("to {}", out.display()))?;
            let rows = header.rows();
            Ok(Report::new(
                json!({ "out": out, "header": header }),
                format!(
                    "Backed up {} registry rows and {} files to {} (encrypted under the authority passphrase).",
                    rows,
                    header.files.len(),
                    out.display()
                ),
            ))
        }
        Command::Restore { from, db } => {
            let pass = secrets::authority_passphrase(data)?;
            let header = Authority::restore(
                data,
                &from,
                pass.as_bytes(),
                db.as_deref(),
                &mut |name, registry| serve::create_platform_store(data, name, registry),
            )?;
            let auth = Authority::open(data)?;
            let rows = header.rows();
            Ok(Report::new(
                json!({ "data": data, "registry": auth.registry_location(), "header": header }),
                format!(
                    "Restored {} registry rows and {} files from a backup made {} into {} (registry {}). \
                     Run `jpki crl publish` or `jpki serve` to publish the CRLs again.",
                    rows,
                    header.files.len(),
                    header.created_at,
                    data.display(),
                    auth.registry_location()
                ),
            ))
        }
        Command::Audit(a) => {
            let auth = Authority::open(data)?;
            let check = auth.verify_audit_trail()?;
            let rows = auth.audit_trail(a.after, a.limit)?;
            let mut text = String::new();
            for e in &rows {
                text += &format!(
                    "{:>6}  {}  {:<16} {:<24} {}{}{}\n",
                    e.id,
                    e.at.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    e.actor,
                    e.event,
                    e.resident_id
                        .map(|r| format!("resident {r} "))
                        .unwrap_or_default(),
                    e.card_id
                        .as_deref()
                        .map(|c| format!("card {c} "))
                        .unwrap_or_default(),
                    e.detail
                );
            }
            text += &match &check.broken {
                None => format!(
                    "Audit trail intact: {} rows, head {} (keep it elsewhere to detect the newest rows dropped).",
                    check.entries, check.head
                ),
                Some(b) => format!("AUDIT TRAIL BROKEN: {b}"),
            };
            let exit = u8::from(check.broken.is_some());
            Ok(Report::new(json!({ "entries": rows, "check": check }), text).with_exit(exit))
        }
        Command::Check => {
            let auth = Authority::open(data)?;
            let problems = auth.check()?;
            if problems.is_empty() {
                Ok(Report::new(
                    json!({ "consistent": true, "problems": [] }),
                    "The registry is consistent.",
                ))
            } else {
                Err(Failure::Failed(format!(
                    "registry inconsistent: {}",
                    problems.join("; ")
                )))
            }
        }
        Command::Sign(a) => docsig::sign(a, &holder::device_key_path(cli.device_key.as_deref())),
        Command::Verify(a) => docsig::verify(&a, data),
        Command::Tsa(cmd) => docsig::tsa(cmd, data, cli.json),
        Command::Serve(a) => serve::serve(&a, data, cli.json),
        Command::Sim(a) => sim::sim(&a, data, cli.json),
        Command::Rp(cmd) => serve::rp(cmd, data),
        Command::AccessLog(a) => serve::access_log(&a.serial, data),
        Command::Notice(cmd) => portal::notice(cmd, data),
        Command::Postbox(cmd) => portal::postbox(cmd, data),
        Command::Consent(cmd) => consent::run(cmd, data, &holder::device_key_path(cli.device_key.as_deref())),
        Command::Demo(a) => demo::run(
            data,
            &holder::device_key_path(cli.device_key.as_deref()),
            key_type(a.key_type),
        ),
    }
}

fn resident(data: &Path, cmd: ResidentCmd) -> Result<Report, Failure> {
    let mut auth = Authority::open(data)?;
    let changed = |what: &str, id: i64, r: jpki_authority::Revoked| {
        let serials: Vec<Value> = r
            .changed
            .iter()
            .map(|(s, st, reason)| json!({ "serial": s, "status": st, "reason": reason }))
            .collect();
        let list: Vec<String> = r
            .changed
            .iter()
            .map(|(s, _, reason)| format!("{s} ({})", reason.map_or("", |r| r.rfc_name())))
            .collect();
        Report::new(
            json!({ "resident_id": id, "event": what, "certificates": serials }),
            format!(
                "Recorded {what} of resident {id}; {}",
                if list.is_empty() {
                    "no certificate changed.".to_owned()
                } else {
                    format!("revoked: {}.", list.join(", "))
                }
            ),
        )
    };
    match cmd {
        ResidentCmd::Add(a) => {
            let facts = jpki_model::BasicFour {
                name: a.name,
                address: a.address,
                birth_date: a.birth,
                sex: a.sex,
            };
            let r = auth.add_resident(&facts, a.number)?;
            Ok(Report::new(
                json!({ "resident_id": r.resident_id, "individual_number": r.individual_number, "resident_code": r.resident_code.as_str() }),
                format!(
                    "Registered resident {} with individual number {}.",
                    r.resident_id,
                    r.individual_number.as_str()
                ),
            ))
        }
        ResidentCmd::Show(r) => {
            let rec = auth.resident(r.resident)?;
            let text = format!(
                "Resident {}: {} / {} / born {} / sex {} / {:?}",
                rec.resident_id,
                rec.facts.name.as_str(),
                rec.facts.address.as_str(),
                rec.facts.birth_date,
                rec.facts.sex.code(),
                rec.status
            );
            Ok(Report::new(serde_json::to_value(&rec)?, text))
        }
        ResidentCmd::Move { resident, address } => Ok(changed(
            "move",
            resident.resident,
            auth.move_resident(resident.resident, &address)?,
        )),
        ResidentCmd::Rename { resident, name } => Ok(changed(
            "rename",
            resident.resident,
            auth.rename_resident(resident.resident, &name)?,
        )),
        ResidentCmd::Decease(r) => Ok(changed("death", r.resident, auth.decease(r.resident)?)),
        ResidentCmd::Emigrate(r) => Ok(changed("emigration", r.resident, auth.emigrate(r.resident)?)),
    }
}

pub(crate) fn card_keys(card: &jpki_card::VirtualCard) -> Result<CardKeys, Failure> {
    Ok(CardKeys {
        auth: SubjectPublicKey::from_der(&card.public_key(KeySlot::Auth)?)?,
        sign: SubjectPublicKey::from_der(&card.public_key(KeySlot::Sign)?)?,
    })
}

/// A card file for `card issue --out`: a new card, or one whose issuance was interrupted
/// (key pairs generated and saved, no card data yet), which issuance then resumes.
fn issuance_card(
    a: &args::CardIssueArgs,
    key: &DeviceKey,
    eligible: bool,
) -> Result<(CardFile, bool), Failure> {
    if a.out.exists() {
        match CardFile::open(&a.out, key.clone()) {
            Ok(f) if f.card().card_id().is_none() => {
                let want = format!("resident {}", a.resident);
                match f.card().issuance_ref() {
                    Some(r) if r != want && !a.force => {
                        return Err(Failure::Usage(format!(
                            "--out {}: holds an interrupted issuance for {r}, not {want} (rerun it for {r}, or use --force)",
                            a.out.display()
                        )));
                    }
                    Some(r) if r != want => drop(f),
                    _ => return Ok((f, true)),
                }
            }
            Ok(f) if a.force => drop(f),
            Ok(_) => {
                return Err(Failure::Usage(format!(
                    "--out {}: holds an issued card (use --force to replace it)",
                    a.out.display()
                )));
            }
            // A card another process holds (`card plug`) is never removed from under it.
            Err(e @ jpki_card::CardError::InUse(_)) => return Err(e.into()),
            Err(e) if a.force => drop(e),
            Err(e) => return Err(Failure::Usage(format!("--out: {e} (use --force to replace it)"))),
        }
        std::fs::remove_file(&a.out).map_err(|e| Failure::Failed(format!("{}: {e}", a.out.display())))?;
    }
    let pin = secrets::auth_pin(a.secrets.pin.clone())?;
    let password = match (&a.secrets.sign_password, eligible) {
        (Some(p), _) => p.clone(),
        (None, true) => secrets::sign_password()?,
        // No signature certificate will be issued: the slot gets an unusable random password.
        (None, false) => secrets::random_sign_password()?,
    };
    let mut card = jpki_card::VirtualCard::manufacture(&HolderSecrets {
        auth_pin: pin.as_bytes(),
        sign_password: password.as_bytes(),
        assist_pin: a.assist_pin.as_ref().map(|p| p.as_bytes()),
    })?;
    card.set_issuance_ref(&format!("resident {}", a.resident));
    // Saved before the registry commits: a crash after the commit leaves the keys on disk, and
    // running the same command again finishes this card instead of leaving live certificates
    // for keys nobody holds.
    Ok((CardFile::create(&a.out, key.clone(), card)?, false))
}

/// Certifies a card's keys (or takes the card the registry already issued for them, `found`) and
/// writes the certificates and the authority's card data onto it; the caller saves the card.
pub(crate) fn issue_onto(
    auth: &mut Authority,
    issuers: &jpki_authority::Issuers,
    signer: &jpki_authority::CardDataSigner,
    resident_id: i64,
    card: &mut jpki_card::VirtualCard,
    found: Option<jpki_authority::IssuedCard>,
) -> Result<(jpki_authority::IssuedCard, jpki_card::Personalization, String), Failure> {
    let issued = match found {
        Some(c) => c,
        None => auth.issue_card(resident_id, &card_keys(card)?, issuers)?,
    };
    let (personal, security_code) =
        auth.personalization(&issued, &card.public_key(KeySlot::Card)?, signer)?;
    card.personalize(&personal)?;
    card.install_certificate(CertKind::Authentication, Some(&issued.auth.der));
    if let Some(s) = &issued.sign {
        card.install_certificate(CertKind::Signature, Some(&s.der));
    }
    Ok((issued, personal, security_code))
}

fn card(data: &Path, device_key: &Path, cmd: CardCmd) -> Result<Report, Failure> {
    match cmd {
        CardCmd::Info(access) => return holder::info(&access, device_key),
        CardCmd::ReadCert {
            access,
            kind,
            out,
            sign_password,
        } => return holder::read_cert(&access, device_key, kind, &out, sign_password),
        CardCmd::ReadInfo {
            access,
            assist_pin,
            trust,
        } => return holder::read_info(&access, device_key, data, assist_pin, trust.as_deref()),
        CardCmd::ReadFace {
            access,
            out,
            collation_b,
            trust,
        } => return holder::read_face(&access, device_key, data, &out, collation_b, trust.as_deref()),
        CardCmd::Pin(cmd) => return holder::pin(cmd, device_key),
        CardCmd::SignDigest {
            access,
            kind,
            digest,
            secrets: ks,
        } => return holder::sign_digest(&access, device_key, kind, &digest, ks),
        CardCmd::Unblock {
            access,
            kind,
            new_pin,
        } => {
            return holder::unblock(&access, device_key, data, kind, new_pin);
        }
        CardCmd::Plug { card, vpcd, max_wait } => return holder::plug(&card, device_key, &vpcd, max_wait),
        _ => {}
    }
    let mut auth = Authority::open(data)?;
    match cmd {
        CardCmd::Issue(a) => {
            let rec = auth.resident(a.resident)?;
            let eligible = auth.signature_eligible(a.resident)?;
            let key = DeviceKey::load_or_create(device_key)?;
            let pass = secrets::authority_passphrase(data)?;
            let issuers = auth.issuers(pass.as_bytes())?;
            let signer = auth.card_data_signer(pass.as_bytes())?;
            let (mut file, resuming) = issuance_card(&a, &key, eligible)?;
            let found = if resuming {
                auth.find_issued_card(rec.resident_id, &file.card().public_key(KeySlot::Auth)?)?
            } else {
                None
            };
            if let Some(c) = &found
                && auth.certificate(&c.auth.serial)?.status == jpki_authority::CertStatus::Revoked
            {
                return Err(Failure::Failed(format!(
                    "--out {}: the card issued for these keys ({}) has been revoked; use --force to make a new card",
                    a.out.display(),
                    c.card_id
                )));
            }
            let resumed = found.is_some();
            let (issued, personal, security_code) = issue_onto(
                &mut auth,
                &issuers,
                &signer,
                rec.resident_id,
                file.card_mut(),
                found,
            )?;
            if let Err(e) = file.save() {
                // The card was never delivered: its certificates are revoked as destroyed before issue.
                for c in std::iter::once(&issued.auth).chain(issued.sign.as_ref()) {
                    let _ = auth.revoke(&c.serial, RevocationReason::Unspecified);
                }
                return Err(Failure::Failed(format!(
                    "{e} (the card's certificates were revoked)"
                )));
            }
            let sign_serial = issued.sign.as_ref().map(|s| s.serial.to_hex());
            Ok(Report::new(
                json!({ "card_id": issued.card_id, "resident_id": issued.resident_id, "auth_serial": issued.auth.serial,
                        "sign_serial": sign_serial, "expires_on": issued.expires_on, "card_file": a.out,
                        "auth_not_after": rfc3339(Some(issued.auth.not_after)),
                        "sign_not_after": rfc3339(issued.sign.as_ref().map(|s| s.not_after)),
                        "security_code": security_code, "collation_b": personal.collation_b,
                        "resumed": resumed, "superseded": issued.superseded }),
                format!(
                    "{} card {} to resident {} (valid to {}, security code {}) → {}\n  authentication certificate {}\n  signature certificate {}",
                    if resumed { "Finished issuing" } else { "Issued" },
                    issued.card_id,
                    issued.resident_id,
                    issued.expires_on,
                    security_code,
                    a.out.display(),
                    issued.auth.serial,
                    sign_serial.as_deref().unwrap_or("none (under 15 or abroad)")
                ),
            ))
        }
        CardCmd::Renew { card: path, kind } => {
            let key = DeviceKey::load(device_key)?;
            let mut file = CardFile::open(&path, key)?;
            let card_id = file
                .card()
                .card_id()
                .ok_or_else(|| Failure::Failed(format!("{}: card was never issued", path.display())))?
                .to_owned();
            let which = Renewal {
                auth: kind != RenewKind::Sign,
                sign: kind != RenewKind::Auth,
            };
            let pass = secrets::authority_passphrase(data)?;
            let issuers = auth.issuers(pass.as_bytes())?;
            // Refused renewals must not cost the card keys that still work.
            auth.check_renewable(&card_id)?;
            for (on, k) in [
                (which.auth, CertKind::Authentication),
                (which.sign, CertKind::Signature),
            ] {
                if on {
                    file.card_mut().regenerate_key(k)?;
                }
            }
            // The new keys are on disk before the registry certifies them (see `card issue`).
            file.save()?;
            let r = auth.renew(&card_id, &card_keys(file.card())?, which, &issuers)?;
            for (c, k) in [
                (&r.auth, CertKind::Authentication),
                (&r.sign, CertKind::Signature),
            ] {
                if let Some(c) = c {
                    file.card_mut().install_certificate(k, Some(&c.der));
                }
            }
            file.save()?;
            Ok(Report::new(
                json!({ "card_id": card_id, "auth_serial": r.auth.as_ref().map(|c| &c.serial), "sign_serial": r.sign.as_ref().map(|c| &c.serial),
                        "superseded": r.superseded }),
                format!(
                    "Renewed card {card_id}: auth {}, sign {}; superseded {}.",
                    r.auth
                        .as_ref()
                        .map_or("unchanged".to_owned(), |c| c.serial.to_hex()),
                    r.sign
                        .as_ref()
                        .map_or("unchanged".to_owned(), |c| c.serial.to_hex()),
                    if r.superseded.is_empty() {
                        "none".to_owned()
                    } else {
                        r.superseded
                            .iter()
                            .map(|s| s.to_hex())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ))
        }
        CardCmd::ReportLost { card_id, confirm } => {
            let r = auth.report_lost(&card_id, confirm)?;
            let list: Vec<String> = r.changed.iter().map(|(s, _, _)| s.to_hex()).collect();
            Ok(Report::new(
                json!({ "card_id": card_id, "confirmed": confirm,
                        "certificates": r.changed.iter().map(|(s, st, re)| json!({"serial": s, "status": st, "reason": re})).collect::<Vec<_>>() }),
                if confirm {
                    format!(
                        "Card {card_id} confirmed lost; revoked (keyCompromise): {}.",
                        list.join(", ")
                    )
                } else {
                    format!(
                        "Card {card_id} reported lost; on hold: {}. Lift with `jpki card found --card-id {card_id}`.",
                        list.join(", ")
                    )
                },
            ))
        }
        CardCmd::Found { card_id } => {
            let r = auth.card_found(&card_id)?;
            let list: Vec<String> = r.changed.iter().map(|(s, _, _)| s.to_hex()).collect();
            Ok(Report::new(
                json!({ "card_id": card_id, "released": list }),
                format!("Card {card_id} found; holds lifted on {}.", list.join(", ")),
            ))
        }
        CardCmd::Info(_)
        | CardCmd::ReadCert { .. }
        | CardCmd::ReadInfo { .. }
        | CardCmd::ReadFace { .. }
        | CardCmd::Pin(_)
        | CardCmd::SignDigest { .. }
        | CardCmd::Unblock { .. }
        | CardCmd::Plug { .. }
        | CardCmd::Agent { .. } => Err(Failure::Failed("card command dispatched twice".into())),
        CardCmd::Show { card_id } => {
            let certs = auth.card_certificates(&card_id)?;
            let mut text = format!("Card {card_id}:\n");
            for c in &certs {
                text += &format!(
                    "  {} {} {}{} (valid to {})\n",
                    c.kind.as_str(),
                    c.serial,
                    status_word(c.status),
                    c.reason
                        .map(|r| format!(" ({})", r.rfc_name()))
                        .unwrap_or_default(),
                    rfc3339(Some(c.not_after)).unwrap_or_default()
                );
            }
            Ok(Report::new(
                json!({ "card_id": card_id, "certificates": certs }),
                text,
            ))
        }
    }
}

fn cert(data: &Path, cmd: CertCmd) -> Result<Report, Failure> {
    let auth = Authority::open(data)?;
    match cmd {
        CertCmd::Show(a) => {
            let rec = auth.certificate(&a.serial)?;
            let info = CertificateInfo::from_der(&rec.der)?;
            let links: Vec<Value> = auth
                .links(&a.serial)?
                .into_iter()
                .map(|(l, f, t)| json!({ "link": l, "from": f, "to": t }))
                .collect();
            let mut text = format!(
                "Certificate {} ({})\n  status     {}{}\n  subject    {}\n  issuer     {}\n  validity   {} .. {}\n  key        {}\n  CRL        {}\n  OCSP       {}\n",
                info.serial,
                info.kind,
                status_word(rec.status),
                rec.reason
                    .map(|r| format!(" ({})", r.rfc_name()))
                    .unwrap_or_default(),
                info.subject,
                info.issuer,
                info.not_before,
                info.not_after,
                info.public_key,
                info.crl_urls.join(", "),
                info.ocsp_urls.join(", "),
            );
            if let Some(j) = &info.jpki {
                let f = |o: &Option<String>| o.clone().unwrap_or_default();
                text += &format!(
                    "  name       {} (flags {})\n  address    {} (flags {})\n  birth      {}\n  sex        {}\n",
                    f(&j.name),
                    f(&j.name_flags),
                    f(&j.address),
                    f(&j.address_flags),
                    f(&j.birth_date),
                    f(&j.sex)
                );
            }
            for l in &links {
                text += &format!(
                    "  link       {} {} → {}\n",
                    l["link"].as_str().unwrap_or(""),
                    l["from"].as_str().unwrap_or(""),
                    l["to"].as_str().unwrap_or("")
                );
            }
            let mut v = serde_json::to_value(&info)?;
            if let Value::Object(m) = &mut v {
                m.insert("status".into(), json!(rec.status));
                m.insert("reason".into(), json!(rec.reason));
                m.insert("revoked_at".into(), json!(rfc3339(rec.revoked_at)));
                m.insert("card_id".into(), json!(rec.card_id));
                m.insert("links".into(), Value::Array(links));
            }
            Ok(Report::new(v, text))
        }
        CertCmd::Export { serial, out } => {
            let rec = auth.certificate(&serial.serial)?;
            write_pem(&out, "CERTIFICATE", &rec.der)?;
            Ok(Report::new(
                json!({ "serial": rec.serial, "kind": rec.kind, "out": out }),
                format!("Wrote certificate {} to {}.", rec.serial, out.display()),
            ))
        }
    }
}

pub(crate) fn write_pem(out: &Path, label: &'static str, der: &[u8]) -> Result<(), Failure> {
    let pem = jpki_pki::to_pem(label, der)?;
    jpki_authority::write_atomically(out, pem.as_bytes(), 0o644)?;
    Ok(())
}

pub(crate) fn rfc3339(t: Option<time::OffsetDateTime>) -> Option<String> {
    t.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
}

pub(crate) fn status_word(s: jpki_authority::CertStatus) -> &'static str {
    match s {
        jpki_authority::CertStatus::Good => "valid",
        jpki_authority::CertStatus::Hold => "on hold",
        jpki_authority::CertStatus::Revoked => "revoked",
    }
}

/// The platform's files a backup carries beside its stores: the access log's key pair (a file
/// with a SQLite registry) and the instance identifier.
fn platform_files(data: &Path) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let mut out = Vec::new();
    for file in ["access-log-key.pem", "access-log-key.pub.pem", "instance-id"] {
        let path = data.join(file);
        if path.exists() {
            out.push((file.to_owned(), std::fs::read(&path)?));
        }
    }
    Ok(out)
}
