//! Document signatures: `jpki sign` (the card signs a CAdES or PAdES signature, optionally
//! time-stamped), `jpki verify` (a validation report after ETSI EN 319 102-1) and `jpki tsa`
//! (the authority's RFC 3161 time-stamp authority over HTTP).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jpki_authority::Authority;
use jpki_model::CertKind;
use jpki_pki::path::TrustAnchors;
use jpki_pki::revocation::CrlStore;
use jpki_sig::tsp::{TimeStampAuthority, TimeStampRequest};
use jpki_sig::validate::Verifier;
use jpki_sig::{cades, pdf};
use serde_json::json;
use time::OffsetDateTime;

use crate::args::{LevelArg, SignArgs, TsaCmd, VerifyArgs};
use crate::{Failure, Report, holder, secrets, write_pem};

/// Largest document `jpki sign` reads (a PDF is rewritten in memory).
const MAX_DOCUMENT: u64 = 256 * 1024 * 1024;
/// Largest .p7s `jpki verify` reads.
const MAX_SIGNATURE: u64 = 16 * 1024 * 1024;

fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, Failure> {
    let meta =
        std::fs::metadata(path).map_err(|e| Failure::Usage(format!("{what} {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Failure::Usage(format!("{what} {}: not a file", path.display())));
    }
    if meta.len() > limit {
        return Err(Failure::Usage(format!(
            "{what} {}: {} bytes is over the limit of {limit} bytes",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| Failure::Usage(format!("{what} {}: {e}", path.display())))
}

pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

fn default_out(file: &Path, pdf: bool) -> PathBuf {
    if pdf {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        file.with_file_name(format!("{stem}.signed.pdf"))
    } else {
        let mut name = file.file_name().map(|s| s.to_os_string()).unwrap_or_default();
        name.push(".p7s");
        file.with_file_name(name)
    }
}

/// Gets a signature time-stamp for `signature_value` from the TSA at `url`.
fn timestamp(url: &str, signature_value: &[u8]) -> Result<Vec<u8>, Failure> {
    let digest = jpki_pki::x509::sha256(signature_value);
    let req = TimeStampRequest::with_random_nonce(jpki_sig::signed_data::DigestAlg::Sha256, &digest, true)?;
    let resp = jpki_server::post_timestamp_query(url, &req.to_der()?, Duration::from_secs(30))?;
    Ok(jpki_sig::tsp::token_from_response(&resp, &req)?)
}

/// Where a signature time-stamp comes from.
pub(crate) enum Stamper<'a> {
    /// No time-stamp (B-B).
    None,
    /// An RFC 3161 TSA over HTTP.
    Url(&'a str),
    /// A TSA in this process (the demo).
    Local(&'a TimeStampAuthority),
}

/// A document signature made by the card.
pub(crate) struct Signed {
    /// The .p7s, or the signed PDF.
    pub(crate) bytes: Vec<u8>,
    /// "CAdES-BASELINE-B", "PAdES-BASELINE-T", ….
    pub(crate) format: &'static str,
    /// The signature certificate (DER).
    pub(crate) cert: Vec<u8>,
    /// The time-stamp's time, serial and source, for B-T.
    pub(crate) timestamp: Option<serde_json::Value>,
}

/// Has the card sign content whose SHA-256 is `content_digest` (the file, or a prepared PDF's byte
/// range): reads the signature certificate and the CA certificate, builds the signed attributes,
/// signs their digest with the signature key, and adds a time-stamp when `stamper` gives one.
pub(crate) fn sign_document<T: jpki_client::Transport>(
    session: &mut jpki_client::CardSession<T>,
    password: &[u8],
    content_digest: &[u8; 32],
    prepared_pdf: Option<pdf::PreparedPdf>,
    signing_time: OffsetDateTime,
    stamper: &Stamper<'_>,
) -> Result<Signed, Failure> {
    let cert = session.read_certificate(CertKind::Signature, Some(password))?;
    let chain = session
        .read_ca_certificate(CertKind::Signature)
        .map(|c| vec![c])
        .unwrap_or_default();
    // PAdES puts the signing time in the signature dictionary's /M, never in the CMS.
    let attrs_time = if prepared_pdf.is_some() {
        None
    } else {
        Some(signing_time)
    };
    let prepared = cades::prepare(content_digest, &cert, &chain, attrs_time)?;
    let sig = session.sign_digest(CertKind::Signature, password, &prepared.digest())?;
    let mut cms = prepared.finish(&sig)?;
    let token = match stamper {
        Stamper::None => None,
        Stamper::Url(url) => Some((timestamp(url, &sig)?, (*url).to_owned())),
        Stamper::Local(tsa) => {
            let digest = jpki_pki::x509::sha256(&sig);
            let req =
                TimeStampRequest::with_random_nonce(jpki_sig::signed_data::DigestAlg::Sha256, &digest, true)?;
            let now = now();
            let resp = tsa.try_respond(&req.to_der()?, now, &tsa_serial(now))?;
            Some((
                jpki_sig::tsp::token_from_response(&resp, &req)?,
                "the authority's TSA".to_owned(),
            ))
        }
    };
    let mut timestamp_info = None;
    if let Some((token, source)) = token {
        let parsed = jpki_sig::tsp::TimeStampToken::parse(&token)?;
        timestamp_info =
            Some(json!({ "time": rfc3339(parsed.gen_time), "serial": parsed.serial, "tsa": source }));
        cms = cades::add_signature_timestamp(&cms, &token)?;
    }
    let level_t = timestamp_info.is_some();
    let (bytes, format) = match prepared_pdf {
        Some(p) => (
            p.finish(&cms)?,
            if level_t {
                "PAdES-BASELINE-T"
            } else {
                "PAdES-BASELINE-B"
            },
        ),
        None => (
            cms,
            if level_t {
                "CAdES-BASELINE-T"
            } else {
                "CAdES-BASELINE-B"
            },
        ),
    };
    Ok(Signed {
        bytes,
        format,
        cert,
        timestamp: timestamp_info,
    })
}

/// `jpki sign`.
pub(crate) fn sign(a: SignArgs, device_key: &Path) -> Result<Report, Failure> {
    let level = if a.tsa.is_some() { LevelArg::T } else { a.level };
    if level == LevelArg::T && a.tsa.is_none() {
        return Err(Failure::Usage(
            "--level T needs --tsa URL (the time-stamp authority)".into(),
        ));
    }
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.file, a.pdf));
    if out.exists() && !a.force {
        return Err(Failure::Usage(format!(
            "{} exists (give --force to replace it, or --out)",
            out.display()
        )));
    }
    let document = read_limited(&a.file, MAX_DOCUMENT, "document")?;
    let signing_time = now();
    // Prepare everything that does not need the card first: a PDF that cannot be signed fails
    // before the password is asked for or tried.
    let prepared_pdf = if a.pdf {
        let mut opts = pdf::SignOptions::new(signing_time);
        opts.reason = a.reason.clone();
        Some(pdf::prepare(&document, &opts)?)
    } else {
        None
    };
    let content_digest = match &prepared_pdf {
        Some(p) => p.digest_sha256(),
        None => jpki_pki::x509::sha256(&document),
    };
    let password = match a.sign_password {
        Some(p) => p,
        None => secrets::sign_password()?,
    };
    let mut session = holder::open(&a.access, device_key)?;
    let stamper = match &a.tsa {
        Some(url) => Stamper::Url(url),
        None => Stamper::None,
    };
    let signed = sign_document(
        &mut session,
        password.as_bytes(),
        &content_digest,
        prepared_pdf,
        signing_time,
        &stamper,
    )?;
    let (bytes, format, cert, token_info) = (signed.bytes, signed.format, signed.cert, signed.timestamp);
    jpki_authority::write_atomically(&out, &bytes, 0o644)?;
    let info = jpki_pki::CertificateInfo::from_der(&cert)?;
    let text = format!(
        "Signed {} as {format} with the signature certificate (serial {}){}; wrote {}.",
        a.file.display(),
        info.serial,
        token_info
            .as_ref()
            .map(|t| format!(", time-stamped {}", t["time"].as_str().unwrap_or("")))
            .unwrap_or_default(),
        out.display()
    );
    Ok(Report::new(
        json!({ "file": a.file, "out": out, "format": format, "signing_time": rfc3339(signing_time),
                "certificate": info, "timestamp": token_info }),
        text,
    ))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The trust anchors: `--trust` files, else both roots of the authority in `--data`.
fn anchors(data: &Path, trust: &[PathBuf]) -> Result<TrustAnchors, Failure> {
    let mut t = TrustAnchors::new();
    if trust.is_empty() {
        let a = Authority::open(data).map_err(|_| {
            Failure::Usage(format!(
                "no trust anchors: give --trust ROOT.pem (or --data with an authority; {} has none)",
                data.display()
            ))
        })?;
        for kind in CertKind::ALL {
            t.add_der(&a.ca_cert(kind)?)?;
        }
    }
    for f in trust {
        let data = read_limited(f, 16 * 1024 * 1024, "--trust")?;
        t.add_pem_or_der(&data)
            .map_err(|e| Failure::Usage(format!("--trust {}: {e}", f.display())))?;
    }
    Ok(t)
}

/// `jpki verify`.
pub(crate) fn verify(a: &VerifyArgs, data: &Path) -> Result<Report, Failure> {
    let at = match &a.at {
        Some(s) => OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Failure::Usage(format!("--at {s:?}: not an RFC 3339 date-time ({e})")))?,
        None => now(),
    };
    let input = read_limited(&a.file, MAX_DOCUMENT, "signature")?;
    let is_pdf = input.starts_with(b"%PDF-");
    if !is_pdf && input.len() as u64 > MAX_SIGNATURE {
        return Err(Failure::Usage(format!(
            "{}: {} bytes is over the limit of {MAX_SIGNATURE} bytes for a CMS signature",
            a.file.display(),
            input.len()
        )));
    }
    let mut crls = CrlStore::new();
    for dir in &a.crl_dir {
        crls.load_dir(dir)
            .map_err(|e| Failure::Usage(format!("--crl-dir {}: {e}", dir.display())))?;
    }
    let mut extra = Vec::new();
    for f in &a.cert {
        let d = read_limited(f, 16 * 1024 * 1024, "--cert")?;
        extra.extend(
            jpki_pki::x509::certificates_from_pem_or_der(&d)
                .map_err(|e| Failure::Usage(format!("--cert {}: {e}", f.display())))?,
        );
    }
    let mut verifier =
        Verifier::new(anchors(data, &a.trust)?, Arc::new(crls)).with_extra_certificates(&extra)?;
    // Without --crl-dir, the revocation data a B-LT signature carries answers.
    if a.crl_dir.is_empty() {
        verifier = verifier.with_embedded_revocation();
    }
    let reports = if is_pdf {
        if a.content.is_some() {
            return Err(Failure::Usage(
                "--content is for detached .p7s signatures, not PDFs".into(),
            ));
        }
        let r = verifier
            .verify_pdf(&input, at)
            .map_err(|e| Failure::Usage(format!("{}: {e}", a.file.display())))?;
        if r.is_empty() {
            return Err(Failure::Usage(format!(
                "{}: the PDF carries no signature",
                a.file.display()
            )));
        }
        r
    } else {
        let content = match &a.content {
            Some(c) => Some(read_limited(c, MAX_DOCUMENT, "--content")?),
            None => None,
        };
        let cms = cades::from_pem_or_der(&input)
            .map_err(|e| Failure::Usage(format!("{}: {e}", a.file.display())))?;
        vec![
            verifier
                .verify_cades(&cms, content.as_deref(), at)
                .map_err(|e| Failure::Usage(format!("{}: {e}", a.file.display())))?,
        ]
    };
    // The worst verdict decides the exit status: failed over indeterminate over passed.
    let code = reports
        .iter()
        .map(|r| r.exit_code())
        .max_by_key(|c| match c {
            1 => 2,
            3 => 1,
            _ => 0,
        })
        .unwrap_or(0);
    let text = reports.iter().map(|r| r.to_text()).collect::<Vec<_>>().join("\n");
    let json = if is_pdf {
        json!({ "file": a.file, "signatures": reports })
    } else {
        serde_json::to_value(&reports[0])?
    };
    Ok(Report::new(json, text).with_exit(code))
}

/// A time-stamp token serial: 16 random bytes, positive and of fixed length; should the system
/// generator fail, the time in nanoseconds (unique per process, the only TSA holding this key).
fn tsa_serial(now: OffsetDateTime) -> [u8; 16] {
    let mut serial = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut serial).is_err() {
        serial = now.unix_timestamp_nanos().to_be_bytes();
    }
    serial[0] |= 0x40;
    serial
}

/// The authority's TSA: signs time-stamp tokens with fresh serials and the current time.
pub(crate) struct AuthorityTsa {
    pub(crate) tsa: TimeStampAuthority,
}

impl jpki_server::TimeStamper for AuthorityTsa {
    fn respond(&self, query_der: &[u8]) -> Vec<u8> {
        let now = OffsetDateTime::now_utc();
        self.tsa.respond(query_der, now, &tsa_serial(now))
    }
}

/// `jpki tsa …`.
pub(crate) fn tsa(cmd: TsaCmd, data: &Path, json_out: bool) -> Result<Report, Failure> {
    let mut authority = Authority::open(data)?;
    let passphrase = secrets::authority_passphrase(data)?;
    let creds = authority.tsa_credentials(passphrase.as_bytes())?;
    match cmd {
        TsaCmd::Cert { out } => {
            write_pem(&out, "CERTIFICATE", &creds.cert_der)?;
            let info = jpki_pki::CertificateInfo::from_der(&creds.cert_der)?;
            Ok(Report::new(
                json!({ "out": out, "certificate": info }),
                format!(
                    "Wrote the TSA certificate (serial {}) to {}.",
                    info.serial,
                    out.display()
                ),
            ))
        }
        TsaCmd::Serve { listen } => {
            let tsa = TimeStampAuthority::new(creds.key, creds.cert_der, creds.chain)?;
            let stamper: Arc<dyn jpki_server::TimeStamper> = Arc::new(AuthorityTsa { tsa });
            jpki_server::init_logging();
            jpki_server::run_blocking(listen, stamper, |addr| {
                let url = format!("http://{addr}{}", jpki_server::TSA_PATH);
                if json_out {
                    println!("{}", json!({ "listening": addr.to_string(), "url": url }));
                } else {
                    println!("Time-stamp authority listening on {url} (Ctrl-C or SIGTERM stops it).");
                }
            })?;
            Ok(Report::new(
                json!({ "stopped": true }),
                "Time-stamp authority stopped.",
            ))
        }
    }
}
