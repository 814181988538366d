//! `signatures/verify` and `signatures/augment`: document signatures for relying parties.
//!
//! Both take a CAdES signature (`signature`: base64 DER or PEM, with `content`, base64, for a
//! detached one when verifying) or a signed PDF (`pdf`: base64); their request bodies may be up to
//! [`MAX_SIGNATURE_BODY_BYTES`], every other operation's [`MAX_BODY_BYTES`](crate::api::MAX_BODY_BYTES).
//!
//! `signatures/verify` (capability `signature-verify`) validates like `jpki verify --json` and
//! answers its report (for a PDF, `{"signatures": [report, …]}`), with the platform's own CAs as
//! the trust anchors, at the current time, and with the platform's **current** revocation state:
//! the status snapshot its OCSP service answers from, for certificates of our CAs; the published
//! CRLs for the others (the TSA's certificate). Personal data rule: a relying party without
//! `personal-data` gets no personal information from the report — the signer's `facts` (name,
//! address, birth date, sex) and `subject` are removed, and the signer's entry of `chain` (its
//! subject, whose L= attributes name the prefecture and city) is `null`; and in every string of
//! the report (reasons, warnings, …: a failed certification path quotes the subject) the signer's
//! subject DN reads "(the signer)", another holder's DN (of a certificate the signature carries)
//! "(a certificate holder)", and their CN and L= values and basic four information
//! "(personal data)". Holding the signature does not change that: the platform does not hand out
//! personal information without the capability. A signature that fails the format, digest or
//! signature-value check (FORMAT_FAILURE, HASH_FAILURE, SIG_CRYPTO_FAILURE) is answered without
//! its signer's revocation status: a made-up signature around a certificate is no status check.
//!
//! `signatures/augment` (capability `augment`) returns the signature augmented to B-LT (see
//! `jpki_sig::augment`): fresh OCSP responses from the platform's responder for every certificate
//! of ours the validation depends on (signer's and TSA's; the TSA's certificate, which the status
//! snapshot does not hold, is covered by its CRL), the newest published CRL of each such
//! certificate, and the certificates (CA, responder) to check them with. Only a signature that
//! verifies is augmented (422 with the reason otherwise): each signer's signature value verifies
//! with its certificate, its message digest is that of the content (a PDF's byte ranges, or the
//! encapsulated content; a detached .p7s comes without its content, so there the signed
//! message-digest attribute is taken as it is), the signers are signature certificates of our
//! CAs (never user-authentication ones), at most [`augment::MAX_SIGNER_INFOS`] per CMS and
//! [`augment::MAX_PDF_SIGNATURES`] per PDF; a time-stamp's TSA certificate counts only when its
//! token verifies and stamps the signature.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use jpki_model::{CertKind, RevocationReason};
use jpki_pki::ocsp::{CertId, CertIdHash, OcspRequest, OcspResponseStatus, parse_response};
use jpki_pki::path::TrustAnchors;
use jpki_pki::revocation::{CrlStore, ParsedCrl, RevocationSource, Status};
use jpki_pki::x509::ParsedCert;
use jpki_sig::augment::{self, ValidationData};
use jpki_sig::report::{Report, SubIndication};
use jpki_sig::validate::Verifier;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::api::{Api, Checked, MAX_BODY_BYTES, Outcome, Reply, error, unsigned};
use crate::ocsp::OcspService;
use crate::rp::Capability;
use crate::status::Lookup;

/// The largest request body of `signatures/verify` and `signatures/augment`: 8 MiB of JSON, so a
/// signed PDF (base64) of about 6 MiB.
pub const MAX_SIGNATURE_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The largest CRL file read from the published directory.
const MAX_CRL_FILE: u64 = 64 * 1024 * 1024;

/// What the signature operations need besides the status snapshot.
#[derive(Debug, Default)]
pub(crate) struct SignatureServices {
    /// Where `jpki crl publish` writes (`crl/…` below it, as the server serves them).
    crl_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    pdf: Option<String>,
    #[serde(default, rename = "purpose")]
    _purpose: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AugmentRequest {
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    pdf: Option<String>,
    #[serde(default, rename = "purpose")]
    _purpose: Option<serde::de::IgnoredAny>,
}

/// A signature from a request.
enum Input {
    Cades(Vec<u8>),
    Pdf(Vec<u8>),
}

fn base64_field(field: &str, text: &str) -> Result<Vec<u8>, Reply> {
    let compact: String = text.split_ascii_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| error(400, format!("{field}: not base64")))
}

fn input(signature: Option<&str>, pdf: Option<&str>) -> Result<Input, Reply> {
    match (signature, pdf) {
        (Some(s), None) => {
            let der = if s.contains("-----BEGIN") {
                jpki_sig::cades::from_pem_or_der(s.trim().as_bytes())
                    .map_err(|e| error(400, format!("signature: {e}")))?
            } else {
                base64_field("signature", s)?
            };
            Ok(Input::Cades(der))
        }
        (None, Some(p)) => {
            let bytes = base64_field("pdf", p)?;
            if !bytes.starts_with(b"%PDF-") {
                return Err(error(400, "pdf: not a PDF (no %PDF- header)"));
            }
            Ok(Input::Pdf(bytes))
        }
        (Some(_), Some(_)) => Err(error(400, "give either signature or pdf, not both")),
        (None, None) => Err(error(400, "give signature (a CAdES .p7s) or pdf (a signed PDF)")),
    }
}

/// The platform's revocation answers: the status snapshot for certificates of our CAs, the
/// published CRLs for anything else (and for what the snapshot does not know).
struct Current {
    ocsp: Arc<OcspService>,
    /// Our CAs: kind and SHA-256 of the certificate.
    cas: Vec<(CertKind, [u8; 32])>,
    crl_dir: Option<PathBuf>,
    now: OffsetDateTime,
}

impl RevocationSource for Current {
    fn status(&self, cert: &ParsedCert, issuer: &ParsedCert) -> Status {
        if let Some(kind) = self
            .cas
            .iter()
            .find(|(_, h)| *h == issuer.sha256)
            .map(|(k, _)| *k)
        {
            match self.ocsp.lookup(kind, &cert.serial) {
                Lookup::Good => {
                    return Status::Good {
                        source: "the platform's current status".into(),
                        this_update: self.now,
                        next_update: None,
                    };
                }
                Lookup::Revoked { at, reason } => {
                    return Status::Revoked {
                        at,
                        reason,
                        source: "the platform's current status".into(),
                    };
                }
                Lookup::Unknown => {}
            }
        }
        let mut store = CrlStore::new();
        for (_, crl) in published_crls(self.crl_dir.as_deref(), cert) {
            store.add(crl);
        }
        store.status(cert, issuer)
    }
}

impl Api {
    /// Reads the CRLs `jpki crl publish` wrote below `dir` (`dir/crl/…`), for certificates the
    /// status snapshot does not hold and for augmenting signatures.
    #[must_use]
    pub fn with_published_crls(mut self, dir: PathBuf) -> Self {
        self.signatures.crl_dir = Some(dir);
        self
    }

    /// The largest request body `operation` takes.
    pub fn body_limit(operation: &str) -> usize {
        match operation {
            "signatures/verify" | "signatures/augment" => MAX_SIGNATURE_BODY_BYTES,
            _ => MAX_BODY_BYTES,
        }
    }

    /// The CA of ours that issued `cert`, if one did.
    fn our_issuer(&self, cert: &ParsedCert) -> Option<(CertKind, ParsedCert)> {
        self.cas()
            .iter()
            .find(|(_, ca)| cert.issuer_der == ca.subject_der && cert.is_signed_by(&ca.public_key))
            .map(|(k, ca)| (*k, ca.clone()))
    }

    /// `signatures/verify` (see the module docs).
    pub fn verify_signature(
        &self,
        body: &[u8],
        may: &dyn Fn(Capability) -> bool,
        now: OffsetDateTime,
    ) -> Outcome {
        let req: VerifyRequest =
            serde_json::from_slice(body).map_err(|e| error(400, format!("request body: {e}")))?;
        if !may(Capability::SignatureVerify) {
            return Err(error(
                403,
                "this relying party may not have signatures verified (signature-verify)",
            ));
        }
        let input = input(req.signature.as_deref(), req.pdf.as_deref())?;
        let content = match (&input, req.content.as_deref()) {
            (Input::Pdf(_), Some(_)) => {
                return Err(error(
                    400,
                    "content: only for a detached CAdES signature, not a PDF",
                ));
            }
            (_, Some(c)) => Some(base64_field("content", c)?),
            (_, None) => None,
        };
        let mut anchors = TrustAnchors::new();
        let cas = self.cas();
        for (_, ca) in cas.iter() {
            anchors
                .add_der(ca.der())
                .map_err(|e| error(500, format!("trust anchors: {e}")))?;
        }
        let source = Current {
            ocsp: Arc::clone(&self.ocsp),
            cas: cas.iter().map(|(k, c)| (*k, c.sha256)).collect(),
            crl_dir: self.signatures.crl_dir.clone(),
            now,
        };
        let verifier = Verifier::new(anchors, Arc::new(source));
        let personal = may(Capability::PersonalData);
        // Every certificate the signature(s) carry: whose holders' names the answer must not
        // quote without personal-data.
        let mut carried: Vec<Vec<u8>> = Vec::new();
        let reports = match &input {
            Input::Cades(der) => {
                let parsed = jpki_sig::signed_data::ParsedSignedData::parse(der)
                    .map_err(|e| error(400, format!("signature: {e}")))?;
                if parsed.econtent.is_none() && content.is_none() {
                    return Err(error(
                        400,
                        "content: the signature is detached; give the signed content (base64)",
                    ));
                }
                carried.extend(parsed.certificates.iter().map(|c| c.to_vec()));
                let report = verifier
                    .verify_cades(der, content.as_deref(), now)
                    .map_err(|e| error(400, format!("signature: {e}")))?;
                vec![report]
            }
            Input::Pdf(bytes) => {
                let sigs = jpki_sig::pdf::signatures(bytes).map_err(|e| error(400, format!("pdf: {e}")))?;
                if sigs.is_empty() {
                    return Err(error(422, "pdf: the PDF carries no signature"));
                }
                for sig in &sigs {
                    if let Ok(c) = &sig.contents
                        && let Ok(parsed) = jpki_sig::signed_data::ParsedSignedData::parse(c)
                    {
                        carried.extend(parsed.certificates.iter().map(|c| c.to_vec()));
                    }
                }
                verifier
                    .verify_pdf_signatures(bytes, sigs, now)
                    .map_err(|e| error(400, format!("pdf: {e}")))?
            }
        };
        let holders = if personal {
            Redactor::default()
        } else {
            Redactor::of_certificates(&carried)
        };
        let mut answer = match &input {
            Input::Cades(_) => report_json(&reports[0], personal, &holders),
            Input::Pdf(_) => {
                let list: Vec<Value> = reports
                    .iter()
                    .map(|r| report_json(r, personal, &holders))
                    .collect();
                json!({ "signatures": list })
            }
        };
        // The signer's certificate, when its path ends at one of our CAs.
        let checked = reports
            .iter()
            .filter_map(|r| {
                let signer = r.signer.as_ref()?;
                let anchor = r.chain.last()?;
                let (kind, _) = cas
                    .iter()
                    .find(|(_, ca)| ca.subject == *anchor && ca.subject == signer.issuer)?;
                let serial = hex::decode(&signer.serial).ok()?;
                Some(Checked {
                    kind: *kind,
                    serial: unsigned(&serial).to_vec(),
                    check: "signature-verify".into(),
                    result: r.indication.as_str().into(),
                })
            })
            .collect();
        if let Some(obj) = answer.as_object_mut() {
            obj.insert("checked_at".into(), json!(rfc3339(now)));
        }
        Ok((answer, checked))
    }

    /// `signatures/augment` (see the module docs).
    pub fn augment_signature(
        &self,
        body: &[u8],
        may: &dyn Fn(Capability) -> bool,
        now: OffsetDateTime,
    ) -> Outcome {
        let req: AugmentRequest =
            serde_json::from_slice(body).map_err(|e| error(400, format!("request body: {e}")))?;
        if !may(Capability::Augment) {
            return Err(error(
                403,
                "this relying party may not have signatures augmented (augment)",
            ));
        }
        let input = input(req.signature.as_deref(), req.pdf.as_deref())?;
        // Only a signature that verifies cryptographically (signature value and message digest,
        // with the signer's certificate) is augmented: a made-up SignedData around somebody's
        // certificate must not buy a freshly signed OCSP response about it. A readable input that
        // is no such signature is refused with 422 and why.
        let refused = |field: &str, e: augment::NeedsError| match e {
            augment::NeedsError::Malformed(e) => error(400, format!("{field}: {e}")),
            augment::NeedsError::Refused(why) => error(422, format!("{field}: not augmented: {why}")),
        };
        let needs = match &input {
            Input::Cades(der) => augment::verified_cades_needs(der).map_err(|e| refused("signature", e))?,
            Input::Pdf(bytes) => {
                let sigs = jpki_sig::pdf::signatures(bytes).map_err(|e| error(400, format!("pdf: {e}")))?;
                augment::verified_pdf_needs(bytes, &sigs).map_err(|e| refused("pdf", e))?
            }
        };
        let mut data = ValidationData::default();
        let mut checked = Vec::new();
        let mut signers = Vec::new();
        for der in &needs.signers {
            let cert =
                ParsedCert::from_der(der).map_err(|e| error(400, format!("signer certificate: {e}")))?;
            match self.our_issuer(&cert) {
                None => {
                    return Err(error(
                        422,
                        "signature: the signer's certificate is not issued by this authority's CAs",
                    ));
                }
                // A user-authentication key signs login challenges the relying party chooses: such
                // a "signature" is never a document signature, and augmenting it would answer the
                // authentication certificate's status outside certificates/validity.
                Some((kind, _)) if kind == CertKind::Authentication || cert.jpki_kind() == "auth" => {
                    return Err(error(
                        422,
                        "signature: made with a user-authentication certificate, which never signs \
                         documents; only signatures by signature certificates are augmented",
                    ));
                }
                Some(_) => {}
            }
            signers.push(cert);
        }
        let tsas = needs.tsas.iter().filter_map(|d| ParsedCert::from_der(d).ok());
        for (is_signer, cert) in signers
            .into_iter()
            .map(|c| (true, c))
            .chain(tsas.map(|c| (false, c)))
        {
            let Some((kind, ca)) = self.our_issuer(&cert) else {
                continue;
            };
            push_new(&mut data.certificates, ca.der());
            push_new(&mut data.certificates, cert.der());
            let (response, lookup) = self.ocsp_for(&ca, &cert, now)?;
            if let Some(lookup) = lookup {
                if let Ok(r) = parse_response(&response)
                    && let Some(basic) = r.basic
                {
                    for c in &basic.certs {
                        push_new(&mut data.certificates, c);
                    }
                }
                push_new(&mut data.ocsp_responses, &response);
                if is_signer {
                    checked.push(Checked {
                        kind,
                        serial: unsigned(&cert.serial).to_vec(),
                        check: "augment".into(),
                        result: lookup_name(lookup).into(),
                    });
                }
            }
            if let Some(der) = newest_crl(published_crls(self.signatures.crl_dir.as_deref(), &cert)) {
                push_new(&mut data.crls, &der);
            }
        }
        let (field, out) = match &input {
            Input::Cades(der) => (
                "signature",
                augment::augment_cades(der, &data).map_err(|e| error(400, format!("signature: {e}")))?,
            ),
            Input::Pdf(bytes) => (
                "pdf",
                augment::augment_pdf(bytes, &data).map_err(|e| error(422, format!("pdf: {e}")))?,
            ),
        };
        Ok((
            json!({
                field: base64::engine::general_purpose::STANDARD.encode(out),
                "embedded": {
                    "certificates": data.certificates.len(),
                    "ocsp_responses": data.ocsp_responses.len(),
                    "crls": data.crls.len(),
                },
                "checked_at": rfc3339(now),
            }),
            checked,
        ))
    }

    /// A fresh OCSP response of our responder about `cert` (issued by `ca`), and the status it gives
    /// (`None` when the snapshot does not know the certificate: such an answer is not embedded).
    fn ocsp_for(
        &self,
        ca: &ParsedCert,
        cert: &ParsedCert,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, Option<Lookup>), Reply> {
        let internal = |e: jpki_pki::PkiError| error(500, format!("OCSP request: {e}"));
        let id =
            CertId::for_certificate(ca.der(), unsigned(&cert.serial), CertIdHash::Sha1).map_err(internal)?;
        let request = OcspRequest::build(&[id], None).map_err(internal)?;
        let answer = self.ocsp.answer(&request, now, |_| true);
        if answer.status != OcspResponseStatus::Successful {
            return Err(error(
                500,
                format!("the OCSP service answered {:?}", answer.status),
            ));
        }
        let lookup = answer
            .answered
            .first()
            .map(|a| a.lookup)
            .filter(|l| *l != Lookup::Unknown);
        Ok((answer.body, lookup))
    }
}

fn lookup_name(l: Lookup) -> &'static str {
    match l {
        Lookup::Good => "good",
        Lookup::Unknown => "unknown",
        Lookup::Revoked {
            reason: RevocationReason::CertificateHold,
            ..
        } => "on-hold",
        Lookup::Revoked { .. } => "revoked",
    }
}

fn push_new(list: &mut Vec<Vec<u8>>, item: &[u8]) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_vec());
    }
}

/// The published CRLs named by `cert`'s CRL distribution points (`…/crl/REL` read from
/// `DIR/crl/REL`), with their DER; ones missing or unreadable are left out.
fn published_crls(dir: Option<&Path>, cert: &ParsedCert) -> Vec<(Vec<u8>, ParsedCrl)> {
    let Some(dir) = dir else {
        return Vec::new();
    };
    cert.crl_urls
        .iter()
        .filter_map(|url| {
            let rel = url.rsplit_once("/crl/")?.1;
            let path = published_path(dir, rel)?;
            let meta = std::fs::metadata(&path).ok()?;
            if !meta.is_file() || meta.len() > MAX_CRL_FILE {
                return None;
            }
            let der = std::fs::read(&path).ok()?;
            let crl = ParsedCrl::from_der(&der, &format!("published CRL {rel}")).ok()?;
            Some((der, crl))
        })
        .collect()
}

/// "64 KiB", "8 MiB".
pub(crate) fn size_text(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The newest complete CRL among `crls`.
fn newest_crl(crls: Vec<(Vec<u8>, ParsedCrl)>) -> Option<Vec<u8>> {
    crls.into_iter()
        .filter(|(_, c)| c.delta_base.is_none())
        .max_by_key(|(_, c)| (c.number, c.this_update))
        .map(|(der, _)| der)
}

/// `DIR/crl/REL` when `REL` is a plain relative path (lowercase letters, digits, `-`, `_`, `.`;
/// no empty, `.` or `..` segment), as the server serves published CRLs.
fn published_path(dir: &Path, rel: &str) -> Option<PathBuf> {
    let plain = rel.ends_with(".crl")
        && rel.len() <= 200
        && rel.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        });
    plain.then(|| dir.join("crl").join(rel))
}

/// What the answer to a relying party without `personal-data` must not contain, with what stands
/// in its place: the subject DNs of the holders' certificates (and their CN and L= values: the
/// holder's identifier, prefecture and city), and their basic four information. Longest first, so
/// that a whole DN is replaced before its parts.
#[derive(Debug, Default, Clone)]
struct Redactor {
    /// (secret, stand-in), longest secret first.
    secrets: Vec<(String, &'static str)>,
}

/// What the signer's subject DN reads as without personal-data.
const SIGNER: &str = "(the signer)";

/// The RFC 4514 attribute values of a DN as `jpki_pki::x509::name_text` writes it, by type.
fn dn_values(dn: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut key = String::new();
    let mut value = String::new();
    let mut in_value = false;
    let mut chars = dn.chars().peekable();
    let mut flush = |key: &mut String, value: &mut String| {
        if !key.is_empty() {
            out.push((key.trim().to_ascii_uppercase(), std::mem::take(value)));
        }
        key.clear();
        value.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else { break };
                let target = if in_value { &mut value } else { &mut key };
                // \hh (two hex digits) is one byte; anything else escapes itself.
                match (n.to_digit(16), chars.peek().and_then(|p| p.to_digit(16))) {
                    (Some(hi), Some(lo)) if n.is_ascii_hexdigit() => {
                        chars.next();
                        target.push(char::from((hi * 16 + lo) as u8));
                    }
                    _ => target.push(n),
                }
            }
            '=' if !in_value => in_value = true,
            ',' | '+' if in_value => {
                flush(&mut key, &mut value);
                in_value = false;
            }
            _ if in_value => value.push(c),
            _ => key.push(c),
        }
    }
    flush(&mut key, &mut value);
    out
}

impl Redactor {
    /// For the holders of the end-entity certificates among `ders` (not CAs, time-stamping units or
    /// OCSP responders: the authority's own names stay).
    fn of_certificates(ders: &[Vec<u8>]) -> Self {
        let mut r = Self::default();
        for der in ders {
            let Ok(c) = ParsedCert::from_der(der) else {
                continue;
            };
            let service = c.extended_key_usage.as_ref().is_some_and(|(ekus, _)| {
                ekus.contains(&jpki_pki::oid::KP_TIME_STAMPING)
                    || ekus.contains(&jpki_pki::oid::KP_OCSP_SIGNING)
            });
            if c.is_ca || service {
                continue;
            }
            r.add_subject(&c.subject, "(a certificate holder)");
            if let Some(san) = &c.jpki_san {
                r.add_san(san);
            }
        }
        r
    }

    /// Adds `secret`; one already there keeps its stand-in unless the new one is "(the signer)".
    fn add(&mut self, secret: &str, stand_in: &'static str) {
        // One character (a sex code, an initial) cannot be told from other text.
        if secret.chars().count() < 2 {
            return;
        }
        match self.secrets.iter_mut().find(|(s, _)| s == secret) {
            Some(known) if stand_in == SIGNER => known.1 = SIGNER,
            Some(_) => {}
            None => {
                self.secrets.push((secret.to_owned(), stand_in));
                self.secrets.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
            }
        }
    }

    /// A holder's subject DN, whole and its CN, L and ST values.
    fn add_subject(&mut self, dn: &str, stand_in: &'static str) {
        self.add(dn, stand_in);
        for (key, value) in dn_values(dn) {
            if matches!(key.as_str(), "CN" | "L" | "ST" | "STREET") {
                self.add(&value, "(personal data)");
            }
        }
    }

    /// The basic four information of a holder (the sex code is a single character, and is never
    /// quoted: it leaves with `facts`).
    fn add_san(&mut self, san: &jpki_pki::JpkiSan) {
        for v in [&san.name, &san.address, &san.birth_date].into_iter().flatten() {
            self.add(v, "(personal data)");
        }
        if let Some(b) = &san.birth_date {
            let facts = jpki_sig::report::Facts::from_san(san);
            if let Some(iso) = facts.birth_date.filter(|d| d != b) {
                self.add(&iso, "(personal data)");
            }
        }
    }

    /// Replaces every secret in every string of `v`.
    fn apply(&self, v: &mut Value) {
        if self.secrets.is_empty() {
            return;
        }
        match v {
            Value::String(text) => {
                for (s, stand_in) in &self.secrets {
                    if text.contains(s.as_str()) {
                        *text = text.replace(s.as_str(), stand_in);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.apply(x)),
            Value::Object(o) => o.values_mut().for_each(|x| self.apply(x)),
            _ => {}
        }
    }
}

/// The report as JSON, without personal information unless `personal` (see the module docs):
/// without it, the signer's `facts` and `subject` are removed, its entry of `chain` is `null`, and
/// every string of the report (reasons, warnings, …) has the signer's subject DN replaced by
/// "(the signer)", other holders' DNs (`holders`) by "(a certificate holder)", and their CN and
/// L= values and basic four information by "(personal data)". A signature that fails the format,
/// digest or signature-value check is answered without its signer's revocation status either way.
fn report_json(report: &Report, personal: bool, holders: &Redactor) -> Value {
    let mut v = serde_json::to_value(report).unwrap_or(Value::Null);
    let broken = matches!(
        report.sub_indication,
        Some(SubIndication::HashFailure | SubIndication::SigCryptoFailure | SubIndication::FormatFailure)
    );
    if broken && let Some(obj) = v.as_object_mut() {
        obj.insert("revocation".into(), Value::Null);
    }
    if !personal {
        if let Some(signer) = v.get_mut("signer").and_then(Value::as_object_mut) {
            signer.remove("facts");
            signer.remove("subject");
        }
        if report.signer.is_some()
            && let Some(first) = v
                .get_mut("chain")
                .and_then(Value::as_array_mut)
                .and_then(|c| c.first_mut())
        {
            *first = Value::Null;
        }
        let mut redactor = holders.clone();
        if let Some(signer) = report.signer.as_deref()
            && signer.kind != "ca"
        {
            redactor.add_subject(&signer.subject, SIGNER);
            if let Some(f) = &signer.facts {
                redactor.add_san(&f.raw);
            }
        }
        redactor.apply(&mut v);
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use jpki_pki::JpkiSan;
    use jpki_sig::report::{Facts, Indication, Signer, SigningTime};

    fn report() -> Report {
        let san = JpkiSan {
            name: Some("山田 太郎".into()),
            address: Some("東京都千代田区千代田1-1".into()),
            birth_date: Some("319800217".into()),
            sex: Some("1".into()),
            ..JpkiSan::default()
        };
        Report {
            indication: Indication::TotalPassed,
            sub_indication: None,
            reasons: Vec::new(),
            warnings: Vec::new(),
            format: "CAdES-BASELINE-B".into(),
            field: None,
            validation_time: "2026-01-01T00:00:00Z".into(),
            signing_time: SigningTime::default(),
            signer: Some(Arc::new(Signer {
                subject: "CN=X,L=千代田区,L=東京都,C=JP".into(),
                issuer: "CN=CA".into(),
                serial: "40".into(),
                kind: "sign".into(),
                key: "RSA-2048".into(),
                not_before: String::new(),
                not_after: String::new(),
                sha256: String::new(),
                facts: Some(Facts::from_san(&san)),
            })),
            chain: vec!["CN=X,L=千代田区,L=東京都,C=JP".into(), "CN=CA".into()],
            revocation: None,
            timestamp: None,
            digest_algorithm: None,
        }
    }

    #[test]
    fn without_personal_data_the_report_names_no_one() {
        let none = Redactor::default();
        let with = report_json(&report(), true, &none);
        assert_eq!(with["signer"]["facts"]["name"], "山田 太郎");
        let without = report_json(&report(), false, &none);
        let text = without.to_string();
        assert!(
            !text.contains("山田") && !text.contains("東京") && !text.contains("千代田"),
            "{text}"
        );
        assert_eq!(without["chain"][1], "CN=CA");
        assert_eq!(without["signer"]["serial"], "40");
    }

    #[test]
    fn large_bodies_only_for_signatures_and_published_paths_stay_inside() {
        assert_eq!(Api::body_limit("signatures/verify"), MAX_SIGNATURE_BODY_BYTES);
        assert_eq!(Api::body_limit("signatures/augment"), MAX_SIGNATURE_BODY_BYTES);
        assert_eq!(Api::body_limit("certificates/validity"), MAX_BODY_BYTES);
        assert_eq!(size_text(MAX_SIGNATURE_BODY_BYTES), "8 MiB");
        assert_eq!(size_text(MAX_BODY_BYTES), "64 KiB");
        let dir = Path::new("/pub");
        assert_eq!(
            published_path(dir, "sign/12.crl"),
            Some(PathBuf::from("/pub/crl/sign/12.crl"))
        );
        for bad in [
            "../x.crl",
            "sign/../../etc.crl",
            "/abs.crl",
            "sign/12.der",
            "Sign/1.crl",
            "a//b.crl",
        ] {
            assert_eq!(published_path(dir, bad), None, "{bad}");
        }
    }

    #[test]
    fn without_personal_data_no_message_quotes_the_holder() {
        let subject = "CN=ABC123,L=千代田区,L=東京都,C=JP";
        let mut r = report();
        r.indication = Indication::Indeterminate;
        r.sub_indication = Some(SubIndication::NoCertificateChainFound);
        r.reasons = vec![format!(
            "no trust anchor issued {subject} (issuer CN=Some CA,O=X)"
        )];
        r.warnings = vec![
            "the certificate ABC123 of 千代田区 (東京都)".into(),
            "holder 山田 太郎 at 東京都千代田区千代田1-1, born 1980-02-17".into(),
            "CN=Other,L=大阪市北区,C=JP names the trust anchor".into(),
        ];
        r.signer = r.signer.map(|s| {
            let mut s = (*s).clone();
            s.subject = subject.into();
            Arc::new(s)
        });
        r.chain = vec![subject.into(), "CN=CA".into()];
        let mut holders = Redactor::default();
        holders.add_subject("CN=Other,L=大阪市北区,C=JP", "(a certificate holder)");
        holders.add_subject(subject, "(a certificate holder)");
        let v = report_json(&r, false, &holders);
        let text = v.to_string();
        for secret in [
            "ABC123",
            "千代田",
            "東京",
            "山田",
            "太郎",
            "1980-02-17",
            "大阪",
            "Other,L",
        ] {
            assert!(!text.contains(secret), "{secret} in {v:#}");
        }
        assert_eq!(
            v["reasons"][0], "no trust anchor issued (the signer) (issuer CN=Some CA,O=X)",
            "{v:#}"
        );
        assert_eq!(v["warnings"][2], "(a certificate holder) names the trust anchor");
        assert_eq!(v["signer"]["issuer"], "CN=CA");
        assert_eq!(v["chain"][1], "CN=CA");
        // With personal-data, all of it stays.
        let v = report_json(&r, true, &Redactor::default());
        assert_eq!(v["reasons"][0], r.reasons[0].as_str());
    }

    #[test]
    fn a_broken_signature_carries_no_revocation_status() {
        let mut r = report();
        r.revocation = Some(jpki_sig::report::Revocation {
            status: "revoked".into(),
            source: "the platform's current status".into(),
            revoked_at: Some("2026-01-01T00:00:00Z".into()),
            reason: Some("AffiliationChanged".into()),
        });
        assert_eq!(
            report_json(&r, true, &Redactor::default())["revocation"]["status"],
            "revoked"
        );
        for sub in [
            SubIndication::HashFailure,
            SubIndication::SigCryptoFailure,
            SubIndication::FormatFailure,
        ] {
            r.indication = Indication::TotalFailed;
            r.sub_indication = Some(sub);
            let v = report_json(&r, true, &Redactor::default());
            assert!(v["revocation"].is_null(), "{v:#}");
            assert!(!v.to_string().contains("AffiliationChanged"), "{v:#}");
        }
    }

    #[test]
    fn dn_values_undo_rfc4514_escapes() {
        assert_eq!(
            dn_values("CN=A\\,B\\+C,L=千代田区+L=x\\0ay,C=JP"),
            vec![
                ("CN".to_owned(), "A,B+C".to_owned()),
                ("L".to_owned(), "千代田区".to_owned()),
                ("L".to_owned(), "x\ny".to_owned()),
                ("C".to_owned(), "JP".to_owned()),
            ]
        );
        assert!(dn_values("").is_empty());
    }
}
