//! `jpki serve`: the platform over HTTP (issue 5, being built). Today: the OCSP responder for both
//! CAs at the URLs the certificates name (`/ocsp/sign`, `/ocsp/auth`), the time-stamp authority
//! (`/tsa`) and `/healthz`.
//!
//! At start it loads each CA's status snapshot from the registry (`StatusIndex`), takes (or, the
//! first time and 30 days before expiry, has the CA issue) each OCSP responder's certificate, and
//! then follows the registry's status history every quarter second, so a revocation made by another
//! `jpki` process is answered within a second and drops any cached "good" at once.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jpki_authority::Authority;
use jpki_model::CertKind;
use jpki_pki::ocsp::Responder;
use jpki_platform::{OcspService, StatusIndex};
use jpki_server::{ApiKeys, AppState, RevocationAccess};
use jpki_sig::tsp::TimeStampAuthority;
use serde_json::json;
use time::OffsetDateTime;

use crate::args::ServeArgs;
use crate::docsig::AuthorityTsa;
use crate::{Failure, Report, secrets};

/// How long an OCSP answer is valid (nextUpdate − thisUpdate). Cached answers are re-signed after
/// half of it; a status change replaces them at once.
const OCSP_VALIDITY: time::Duration = time::Duration::hours(1);
/// How often the registry's status history is read for changes.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// The platform's OCSP service as the HTTP layer's responder.
struct PlatformOcsp(Arc<OcspService>);

impl jpki_server::OcspResponder for PlatformOcsp {
    fn answer(&self, request_der: &[u8]) -> Vec<u8> {
        self.0.answer(request_der, OffsetDateTime::now_utc()).body
    }
}

/// Until relying parties can be registered (`jpki rp add`, next), no key is accepted.
struct NoRelyingPartiesYet;

impl ApiKeys for NoRelyingPartiesYet {
    fn allows(&self, _key: &str) -> bool {
        false
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
    let mut authority = Authority::open(data)?;
    let passphrase = secrets::authority_passphrase(data)?;
    let tsa_creds = authority.tsa_credentials(passphrase.as_bytes())?;
    let position = authority.status_history_position()?;
    let service = Arc::new(ocsp_service(&mut authority, passphrase.as_bytes())?);
    drop(authority);

    // Follow status changes made by other processes.
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let (service, stop, data) = (Arc::clone(&service), Arc::clone(&stop), data.to_path_buf());
        let follow = Authority::open(&data)?;
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
                }
            })?
    };

    let tsa = TimeStampAuthority::new(tsa_creds.key, tsa_creds.cert_der, tsa_creds.chain)?;
    let access = if args.public_revocation {
        RevocationAccess::Public
    } else {
        RevocationAccess::Keys(Arc::new(NoRelyingPartiesYet))
    };
    let state = AppState::new()
        .with_tsa(Arc::new(AuthorityTsa { tsa }))
        .with_ocsp(Arc::new(PlatformOcsp(Arc::clone(&service))), access);
    jpki_server::init_logging();
    let public = args.public_revocation;
    let result = jpki_server::serve_blocking(args.listen, &state, |addr| {
        if json_out {
            println!(
                "{}",
                json!({
                    "listening": addr.to_string(),
                    "ocsp": CertKind::ALL.iter().map(|k| format!("http://{addr}/ocsp/{}", k.as_str())).collect::<Vec<_>>(),
                    "tsa": format!("http://{addr}{}", jpki_server::TSA_PATH),
                    "public_revocation": public,
                })
            );
        } else {
            println!("Serving on http://{addr} (Ctrl-C or SIGTERM stops it):");
            println!("  OCSP  http://{addr}/ocsp/sign and /ocsp/auth (POST, or GET below them)");
            println!("  TSA   http://{addr}{}", jpki_server::TSA_PATH);
            if public {
                println!("  revocation answers are public (--public-revocation)");
            } else {
                println!(
                    "  revocation answers are for registered relying parties only (Authorization: Bearer KEY); \
                     none can be registered yet, so give --public-revocation to open them"
                );
            }
        }
    });
    stop.store(true, Ordering::SeqCst);
    let _ = follower.join();
    result?;
    Ok(Report::new(json!({ "stopped": true }), "Server stopped."))
}
