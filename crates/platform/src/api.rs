//! The JSON API relying parties call (`POST /v1/…`), as pure functions of the request body, the
//! caller's capabilities and the status snapshot. Every answer is a JSON object; errors are
//! `{"error": "…"}` with a 4xx status naming what is wrong.
//!
//! `certificates/age`: is the holder at least N years old today (JST)? Yes or no, for a threshold
//! the relying party registered; never the birth date.
//!
//! `certificates/validity`: is this certificate (issued by one of our CAs) valid now? Status
//! (good / revoked / on-hold / unknown), revocation time and reason, validity period. The four facts
//! of a signature certificate come back only to a relying party with `personal-data`; a relying
//! party without it never receives any personal information, whatever it asks.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use jpki_model::{CertKind, RevocationReason};
use jpki_pki::x509::{CertCore, ParsedCert, certificates_from_pem_or_der};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::ocsp::OcspService;
use crate::rp::Capability;
use crate::status::Lookup;

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An API answer: HTTP status and JSON body.
pub type Reply = (u16, Value);

/// A certificate an operation checked: what the platform meters (fees) and appends to the holder's
/// access log. It holds no more than the relying party itself saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Which of our CAs issued it.
    pub kind: CertKind,
    /// Its serial number (unsigned big-endian, no leading zero byte).
    pub serial: Vec<u8>,
    /// What was asked: "validity", "age ≥ 18", "liveness", "linkage", "signature-verify" …
    pub check: String,
    /// The answer given: "good", "yes", "TOTAL_PASSED" …
    pub result: String,
}

impl Checked {
    /// A check of the presented certificate `p`.
    pub(crate) fn of(p: &Presented, check: impl Into<String>, result: impl Into<String>) -> Self {
        Self {
            kind: p.kind,
            serial: unsigned(&p.cert.serial).to_vec(),
            check: check.into(),
            result: result.into(),
        }
    }
}

/// A serial number without the leading zero byte DER puts before a high bit.
pub(crate) fn unsigned(serial: &[u8]) -> &[u8] {
    serial.strip_prefix(&[0]).unwrap_or(serial)
}

/// What an operation returns: its 200 answer and the certificates it checked, or an error reply.
pub type Outcome = Result<(Value, Vec<Checked>), Reply>;

/// The answer to one API call: HTTP status, JSON body, the purpose the caller gave, and the
/// certificates checked (empty unless the status is 200).
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// The optional `purpose` of the request body (at most [`MAX_PURPOSE_CHARS`] characters).
    pub purpose: Option<String>,
    /// What was checked, for fees and access records.
    pub checked: Vec<Checked>,
}

/// The longest `purpose` a request may give.
pub const MAX_PURPOSE_CHARS: usize = 200;

/// The field every request body may carry: why the relying party asks (shown to the person in
/// their access records). Requests declare it as `purpose: Option<IgnoredAny>` so that
/// `deny_unknown_fields` accepts it; [`Api::call`] reads it.
#[derive(Deserialize)]
struct PurposeOnly {
    #[serde(default)]
    purpose: Option<String>,
}

pub(crate) fn error(status: u16, message: impl Into<String>) -> Reply {
    (status, json!({ "error": message.into() }))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidityRequest {
    certificate: String,
    #[serde(default, rename = "purpose")]
    _purpose: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgeRequest {
    certificate: String,
    at_least: u8,
    #[serde(default, rename = "purpose")]
    _purpose: Option<serde::de::IgnoredAny>,
}

/// Where the platform learns a certificate holder's birth date (the authority's registry): it
/// computes an age from it and tells the relying party only yes or no.
pub trait BirthDates: Send + Sync {
    /// The birth date of the holder of the certificate `serial` (unsigned big-endian), if known.
    fn birth_date(&self, serial: &[u8]) -> Option<time::Date>;
}

/// Where the platform gets pairwise identifiers (the authority, which holds the per-person secret).
pub trait Pairwise: Send + Sync {
    /// The pairwise identifier of the holder of the certificate `serial` for `rp_id`, if known.
    fn pairwise_id(&self, serial: &[u8], rp_id: &str) -> Option<String>;
}

/// Where the platform gets its own opaque reference to a certificate's holder (the authority): the
/// same for all of a person's certificates, never the individual number. Access records and
/// consents are filed under it.
pub trait PersonRefs: Send + Sync {
    /// The platform's reference to the holder of the certificate `serial`, if known.
    fn person_ref(&self, serial: &[u8]) -> Option<String>;
}

/// What the caller may ask: who it is, its capabilities and the age thresholds it registered.
pub struct Rights<'a> {
    /// The relying party's identifier.
    pub rp_id: &'a str,
    /// Whether the caller has a capability.
    pub may: &'a dyn Fn(Capability) -> bool,
    /// The ages it may ask about.
    pub age_thresholds: &'a [u8],
}

impl std::fmt::Debug for Rights<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rights")
            .field("age_thresholds", &self.age_thresholds)
            .finish_non_exhaustive()
    }
}

/// Japan Standard Time, in which "today" is counted.
const JST: time::UtcOffset = time::macros::offset!(+9);

/// The JSON API over the platform's status snapshot.
pub struct Api {
    pub(crate) ocsp: Arc<OcspService>,
    /// The roots certificates must chain to (every generation; see [`Api::cas`]).
    cas: RwLock<Arc<Vec<(CertKind, ParsedCert)>>>,
    /// The [`OcspService::roots_version`] whose roots `cas` includes.
    cas_seen: AtomicU64,
    /// Certificates whose signature by one of `cas` was already checked, by SHA-256 of their DER
    /// (a relying party re-checking a certificate skips the RSA verification). Cleared when full.
    verified: Mutex<HashMap<[u8; 32], CertKind>>,
    verified_capacity: usize,
    birth_dates: Option<Arc<dyn BirthDates>>,
    pairwise: Option<Arc<dyn Pairwise>>,
    /// Liveness, link data and consents (`api_linkage`).
    pub(crate) linkage: crate::api_linkage::LinkageServices,
    /// Signature verification and augmentation (`api_signatures`).
    pub(crate) signatures: crate::api_signatures::SignatureServices,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("cas", &self.cas().len())
            .finish_non_exhaustive()
    }
}

/// How many verified certificates [`Api`] remembers (≈ 50 bytes each).
const VERIFIED_CACHE_ENTRIES: usize = 1 << 18;

/// The DER of a request's certificate when it is exactly one PEM CERTIFICATE block (the common
/// case, decoded without the general PEM reader's per-line checks); `None` sends anything else to
/// that reader.
fn single_pem_certificate(text: &str) -> Option<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let body = text.trim().strip_prefix(BEGIN)?.strip_suffix(END)?;
    if body.contains('-') {
        return None;
    }
    let compact: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).ok()
}

/// A certificate from a request: PEM or base64 DER, parsed, and which of our CAs issued it.
pub(crate) struct Presented {
    pub(crate) cert: ParsedCert,
    pub(crate) kind: CertKind,
}

impl Api {
    /// An API answering from `ocsp`'s status snapshot about certificates of the CAs `cas`
    /// (kind and DER certificate).
    pub fn new(ocsp: Arc<OcspService>, cas: &[(CertKind, Vec<u8>)]) -> Result<Self, jpki_pki::PkiError> {
        let cas = cas
            .iter()
            .map(|(k, der)| ParsedCert::from_der(der).map(|c| (*k, c)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            ocsp,
            cas: RwLock::new(Arc::new(cas)),
            cas_seen: AtomicU64::new(u64::MAX),
            verified: Mutex::new(HashMap::new()),
            verified_capacity: VERIFIED_CACHE_ENTRIES,
            birth_dates: None,
            pairwise: None,
            linkage: crate::api_linkage::LinkageServices::default(),
            signatures: crate::api_signatures::SignatureServices::default(),
        })
    }

    /// The roots certificates must chain to: those given to [`Api::new`] and every generation the
    /// status service took up since (a CA key rollover reaches a running server this way).
    pub(crate) fn cas(&self) -> Arc<Vec<(CertKind, ParsedCert)>> {
        let version = self.ocsp.roots_version();
        if self.cas_seen.load(Ordering::SeqCst) != version
            && let Ok(mut cas) = self.cas.write()
        {
            let mut list = (**cas).clone();
            let mut complete = true;
            for (kind, der) in self.ocsp.roots() {
                if list.iter().any(|(k, c)| *k == kind && c.der() == der.as_slice()) {
                    continue;
                }
                match ParsedCert::from_der(&der) {
                    Ok(parsed) => list.push((kind, parsed)),
                    // Tried again on the next request.
                    Err(_) => complete = false,
                }
            }
            *cas = Arc::new(list);
            if complete {
                self.cas_seen.store(version, Ordering::SeqCst);
            }
        }
        self.cas.read().map(|c| Arc::clone(&c)).unwrap_or_default()
    }

    /// Remembers at most `entries` verified certificates (0: verify every certificate every time;
    /// the default is 262,144).
    #[must_use]
    pub fn with_verified_cache(mut self, entries: usize) -> Self {
        self.verified_capacity = entries;
        self
    }

    /// Answers pairwise-identifier requests with `source`.
    #[must_use]
    pub fn with_pairwise(mut self, source: Arc<dyn Pairwise>) -> Self {
        self.pairwise = Some(source);
        self
    }

    /// `certificates/pairwise-id`: the caller's identifier for the holder of a certificate it may
    /// check (auth-status or sign-status for its kind): stable across renewals, different for every
    /// relying party. Only for a certificate that is valid now.
    pub fn pairwise_id(&self, body: &[u8], rights: &Rights<'_>, now: OffsetDateTime) -> Outcome {
        let req: ValidityRequest =
            serde_json::from_slice(body).map_err(|e| error(400, format!("request body: {e}")))?;
        let p = self.presented(&req.certificate)?;
        let needed = match p.kind {
            CertKind::Signature => Capability::SignStatus,
            CertKind::Authentication => Capability::AuthStatus,
        };
        if !(rights.may)(needed) {
            return Err(error(
                403,
                format!(
                    "this relying party may not check {} certificates ({needed})",
                    p.kind.as_str()
                ),
            ));
        }
        if !self.status_of(&p, now).3 {
            return Err(error(422, "certificate: not valid now"));
        }
        match self
            .pairwise
            .as_ref()
            .and_then(|s| s.pairwise_id(unsigned(&p.cert.serial), rights.rp_id))
        {
            Some(id) => Ok((
                json!({ "kind": p.kind.as_str(), "pairwise_id": id }),
                vec![Checked::of(&p, "pairwise-id", "given")],
            )),
            None => Err(error(422, "certificate: the authority does not know its holder")),
        }
    }

    /// Answers age checks with birth dates from `source`.
    #[must_use]
    pub fn with_birth_dates(mut self, source: Arc<dyn BirthDates>) -> Self {
        self.birth_dates = Some(source);
        self
    }

    /// The DER of a request's `certificate` field: PEM or base64 DER.
    fn certificate_der(text: &str) -> Result<Vec<u8>, Reply> {
        if let Some(der) = single_pem_certificate(text) {
            Ok(der)
        } else if text.contains("-----BEGIN") {
            match certificates_from_pem_or_der(text.as_bytes()).map(|mut v| v.pop()) {
                Ok(Some(d)) => Ok(d),
                _ => Err(error(400, "certificate: not a PEM certificate")),
            }
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| error(400, "certificate: neither PEM nor base64 DER"))
        }
    }

    /// Which of our CAs signed `core` (remembered by the certificate's SHA-256, so that a
    /// certificate checked again skips the signature verification); 422 if none did.
    fn issuing_ca(&self, core: &CertCore<'_>) -> Result<CertKind, Reply> {
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, core.der).as_ref());
        if let Some(kind) = self
            .verified
            .lock()
            .ok()
            .and_then(|v| v.get(&fingerprint).copied())
        {
            return Ok(kind);
        }
        let kind = self
            .cas()
            .iter()
            .find(|(_, ca)| {
                // The CA's key is parsed once (ParsedCert keeps it), not per request.
                core.issuer_der == ca.subject_der.as_slice() && core.is_signed_by(&ca.public_key)
            })
            .map(|(k, _)| *k)
            .ok_or_else(|| error(422, "certificate: not issued by this authority's CAs"))?;
        if let Ok(mut v) = self.verified.lock()
            && self.verified_capacity > 0
        {
            if v.len() >= self.verified_capacity {
                v.clear();
            }
            v.insert(fingerprint, kind);
        }
        Ok(kind)
    }

    /// Reads the `certificate` field of a request: PEM or base64 DER, issued by one of our CAs.
    pub(crate) fn presented(&self, text: &str) -> Result<Presented, Reply> {
        self.presented_der(&Self::certificate_der(text)?)
    }

    /// A DER certificate issued by one of our CAs.
    pub(crate) fn presented_der(&self, der: &[u8]) -> Result<Presented, Reply> {
        let core =
            CertCore::from_der(der).map_err(|_| error(400, "certificate: not an X.509 certificate"))?;
        let kind = self.issuing_ca(&core)?;
        let cert =
            ParsedCert::from_der(der).map_err(|_| error(400, "certificate: not an X.509 certificate"))?;
        Ok(Presented { cert, kind })
    }

    /// The status of `kind`'s certificate `serial` now: (status name, revocation time, reason).
    fn status_parts(&self, kind: CertKind, serial: &[u8]) -> (&'static str, Option<String>, Option<String>) {
        match self.ocsp.lookup(kind, serial) {
            Lookup::Good => ("good", None, None),
            Lookup::Unknown => ("unknown", None, None),
            Lookup::Revoked {
                at,
                reason: RevocationReason::CertificateHold,
            } => (
                "on-hold",
                Some(rfc3339(at)),
                Some(RevocationReason::CertificateHold.to_string()),
            ),
            Lookup::Revoked { at, reason } => ("revoked", Some(rfc3339(at)), Some(reason.to_string())),
        }
    }

    /// The certificate's status now: (status name, revocation time, reason, valid).
    pub(crate) fn status_of(
        &self,
        p: &Presented,
        now: OffsetDateTime,
    ) -> (&'static str, Option<String>, Option<String>, bool) {
        let (status, revoked_at, reason) = self.status_parts(p.kind, &p.cert.serial);
        (
            status,
            revoked_at,
            reason,
            status == "good" && p.cert.valid_at(now),
        )
    }

    /// Dispatches `POST /v1/{operation}` from a caller with `rights`.
    pub fn call(&self, operation: &str, body: &[u8], rights: &Rights<'_>, now: OffsetDateTime) -> Answer {
        let failed = |(status, body): Reply| Answer {
            status,
            body,
            purpose: None,
            checked: Vec::new(),
        };
        let limit = Self::body_limit(operation);
        if body.len() > limit {
            return failed(error(
                413,
                format!(
                    "request body larger than {}",
                    crate::api_signatures::size_text(limit)
                ),
            ));
        }
        // The purpose first, so that a bad one changes nothing (consents are stored).
        let purpose = match serde_json::from_slice::<PurposeOnly>(body) {
            Ok(p) => p.purpose,
            Err(e) => return failed(error(400, format!("request body: {e}"))),
        };
        if purpose
            .as_ref()
            .is_some_and(|p| p.chars().count() > MAX_PURPOSE_CHARS)
        {
            return failed(error(
                400,
                format!("purpose: longer than {MAX_PURPOSE_CHARS} characters"),
            ));
        }
        if self.ocsp.is_stale(now) {
            let age = self.ocsp.staleness(now).map_or_else(
                || "has not been loaded".to_owned(),
                |d| format!("is {} s old", d.whole_seconds()),
            );
            return failed(error(
                503,
                format!(
                    "revocation status unavailable: this verifier's snapshot {age}, past its maximum staleness; try again later"
                ),
            ));
        }
        let outcome = match operation {
            "certificates/validity" => self.validity(body, rights.may, now),
            "certificates/age" => self.age(body, rights, now),
            "certificates/pairwise-id" => self.pairwise_id(body, rights, now),
            "certificates/liveness" => self.liveness(body, rights, now),
            "certificates/linkage" => self.linkage(body, rights, now),
            "consents" => self.submit_consent(body, rights, now),
            "consents/revoke" => self.revoke_consent(body, rights, now),
            "signatures/verify" => self.verify_signature(body, rights.may, now),
            "signatures/augment" => self.augment_signature(body, rights.may, now),
            _ => Err(error(404, format!("no operation {operation:?}"))),
        };
        match outcome {
            Err(reply) => failed(reply),
            Ok((body_json, checked)) => Answer {
                status: 200,
                body: body_json,
                purpose,
                checked,
            },
        }
    }

    /// `certificates/age`: is the holder at least `at_least` years old today (JST), as the
    /// 年齢計算ニ関スル法律 counts it? Yes or no and the certificate's validity; never the birth date.
    /// Only for relying parties with `age`, and only for a threshold they registered, so that no
    /// relying party can search out a birth date.
    pub fn age(&self, body: &[u8], rights: &Rights<'_>, now: OffsetDateTime) -> Outcome {
        let req: AgeRequest =
            serde_json::from_slice(body).map_err(|e| error(400, format!("request body: {e}")))?;
        if !(rights.may)(Capability::Age) {
            return Err(error(403, "this relying party may not ask about ages (age)"));
        }
        if !rights.age_thresholds.contains(&req.at_least) {
            return Err(error(
                403,
                format!(
                    "at_least {}: not one of this relying party's registered thresholds",
                    req.at_least
                ),
            ));
        }
        let p = self.presented(&req.certificate)?;
        let Some(birth) = self
            .birth_dates
            .as_ref()
            .and_then(|b| b.birth_date(unsigned(&p.cert.serial)))
        else {
            return Err(error(
                422,
                "certificate: the authority holds no birth date for its holder",
            ));
        };
        let today = now.to_offset(JST).date();
        let (status, _, _, valid) = self.status_of(&p, now);
        let validity = match (status, valid) {
            (_, true) => "valid",
            ("unknown", _) => "unknown",
            _ => "invalid",
        };
        let answer = jpki_model::validity::age_on(birth, today) >= u32::from(req.at_least);
        Ok((
            json!({
                "kind": p.kind.as_str(),
                "at_least": req.at_least,
                "answer": answer,
                "validity": validity,
                "today": today.to_string(),
            }),
            vec![Checked::of(
                &p,
                format!("age ≥ {}", req.at_least),
                format!("{}, certificate {validity}", if answer { "yes" } else { "no" }),
            )],
        ))
    }

    /// `certificates/validity`.
    pub fn validity(&self, body: &[u8], may: &dyn Fn(Capability) -> bool, now: OffsetDateTime) -> Outcome {
        let req: ValidityRequest =
            serde_json::from_slice(body).map_err(|e| error(400, format!("request body: {e}")))?;
        // The hot path reads only the certificate's core; the full decode is for the four facts.
        let der = Self::certificate_der(&req.certificate)?;
        let cert =
            CertCore::from_der(&der).map_err(|_| error(400, "certificate: not an X.509 certificate"))?;
        let kind = self.issuing_ca(&cert)?;
        let needed = match kind {
            CertKind::Signature => Capability::SignStatus,
            CertKind::Authentication => Capability::AuthStatus,
        };
        if !may(needed) {
            return Err(error(
                403,
                format!(
                    "this relying party may not check {} certificates ({needed})",
                    kind.as_str()
                ),
            ));
        }
        let (status, revoked_at, reason) = self.status_parts(kind, cert.serial);
        let valid = status == "good" && cert.valid_at(now);
        let mut answer = json!({
            "kind": kind.as_str(),
            "serial": if cert.serial.is_empty() { "0".to_owned() } else { hex::encode(cert.serial) },
            "status": status,
            "revoked_at": revoked_at,
            "reason": reason,
            "not_before": rfc3339(cert.not_before),
            "not_after": rfc3339(cert.not_after),
            "valid": valid,
            "checked_at": rfc3339(now),
        });
        if kind == CertKind::Signature
            && may(Capability::PersonalData)
            && let Ok(full) = ParsedCert::from_der(&der)
            && let Some(san) = &full.jpki_san
        {
            answer["facts"] =
                serde_json::to_value(jpki_sig::report::Facts::from_san(san)).unwrap_or(Value::Null);
        }
        let result = match (valid, status) {
            (true, _) => "valid",
            (false, "good") => "outside its validity period",
            (false, other) => other,
        };
        let checked = Checked {
            kind,
            serial: cert.serial.to_vec(),
            check: "validity".to_owned(),
            result: result.to_owned(),
        };
        Ok((answer, vec![checked]))
    }
}
