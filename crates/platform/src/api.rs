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
use std::sync::Arc;

use base64::Engine as _;
use jpki_model::{CertKind, RevocationReason};
use jpki_pki::x509::{ParsedCert, certificates_from_pem_or_der};
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

fn error(status: u16, message: impl Into<String>) -> Reply {
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgeRequest {
    certificate: String,
    at_least: u8,
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
    ocsp: Arc<OcspService>,
    cas: Vec<(CertKind, ParsedCert)>,
    birth_dates: Option<Arc<dyn BirthDates>>,
    pairwise: Option<Arc<dyn Pairwise>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("cas", &self.cas.len())
            .finish_non_exhaustive()
    }
}

/// A certificate from a request: PEM or base64 DER, parsed, and which of our CAs issued it.
struct Presented {
    cert: ParsedCert,
    kind: CertKind,
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
            cas,
            birth_dates: None,
            pairwise: None,
        })
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
    pub fn pairwise_id(&self, body: &[u8], rights: &Rights<'_>, now: OffsetDateTime) -> Reply {
        let req: ValidityRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return error(400, format!("request body: {e}")),
        };
        let p = match self.presented(&req.certificate) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let needed = match p.kind {
            CertKind::Signature => Capability::SignStatus,
            CertKind::Authentication => Capability::AuthStatus,
        };
        if !(rights.may)(needed) {
            return error(
                403,
                format!(
                    "this relying party may not check {} certificates ({needed})",
                    p.kind.as_str()
                ),
            );
        }
        if !self.status_of(&p, now).3 {
            return error(422, "certificate: not valid now");
        }
        let serial = p.cert.serial.strip_prefix(&[0]).unwrap_or(&p.cert.serial);
        match self
            .pairwise
            .as_ref()
            .and_then(|s| s.pairwise_id(serial, rights.rp_id))
        {
            Some(id) => (200, json!({ "kind": p.kind.as_str(), "pairwise_id": id })),
            None => error(422, "certificate: the authority does not know its holder"),
        }
    }

    /// Answers age checks with birth dates from `source`.
    #[must_use]
    pub fn with_birth_dates(mut self, source: Arc<dyn BirthDates>) -> Self {
        self.birth_dates = Some(source);
        self
    }

    /// Reads the `certificate` field of a request: PEM or base64 DER, issued by one of our CAs.
    fn presented(&self, text: &str) -> Result<Presented, Reply> {
        let der = if text.contains("-----BEGIN") {
            match certificates_from_pem_or_der(text.as_bytes()).map(|mut v| v.pop()) {
                Ok(Some(d)) => d,
                _ => return Err(error(400, "certificate: not a PEM certificate")),
            }
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| error(400, "certificate: neither PEM nor base64 DER"))?
        };
        let cert =
            ParsedCert::from_der(&der).map_err(|_| error(400, "certificate: not an X.509 certificate"))?;
        let kind = self
            .cas
            .iter()
            .find(|(_, ca)| {
                cert.issuer_der == ca.subject_der
                    && jpki_pki::verify_signed_by(&der, ca.der()).unwrap_or(false)
            })
            .map(|(k, _)| *k)
            .ok_or_else(|| error(422, "certificate: not issued by this authority's CAs"))?;
        Ok(Presented { cert, kind })
    }

    /// The certificate's status now: (status name, revocation time, reason, valid).
    fn status_of(
        &self,
        p: &Presented,
        now: OffsetDateTime,
    ) -> (&'static str, Option<String>, Option<String>, bool) {
        let (status, revoked_at, reason) = match self.ocsp.lookup(p.kind, &p.cert.serial) {
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
        };
        (
            status,
            revoked_at,
            reason,
            status == "good" && p.cert.valid_at(now),
        )
    }

    /// Dispatches `POST /v1/{operation}` from a caller with `rights`.
    pub fn call(&self, operation: &str, body: &[u8], rights: &Rights<'_>, now: OffsetDateTime) -> Reply {
        if body.len() > MAX_BODY_BYTES {
            return error(413, "request body larger than 64 KiB");
        }
        match operation {
            "certificates/validity" => self.validity(body, rights.may, now),
            "certificates/age" => self.age(body, rights, now),
            "certificates/pairwise-id" => self.pairwise_id(body, rights, now),
            _ => error(404, format!("no operation {operation:?}")),
        }
    }

    /// `certificates/age`: is the holder at least `at_least` years old today (JST), as the
    /// 年齢計算ニ関スル法律 counts it? Yes or no and the certificate's validity; never the birth date.
    /// Only for relying parties with `age`, and only for a threshold they registered, so that no
    /// relying party can search out a birth date.
    pub fn age(&self, body: &[u8], rights: &Rights<'_>, now: OffsetDateTime) -> Reply {
        let req: AgeRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return error(400, format!("request body: {e}")),
        };
        if !(rights.may)(Capability::Age) {
            return error(403, "this relying party may not ask about ages (age)");
        }
        if !rights.age_thresholds.contains(&req.at_least) {
            return error(
                403,
                format!(
                    "at_least {}: not one of this relying party's registered thresholds",
                    req.at_least
                ),
            );
        }
        let p = match self.presented(&req.certificate) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let serial = p.cert.serial.strip_prefix(&[0]).unwrap_or(&p.cert.serial);
        let Some(birth) = self.birth_dates.as_ref().and_then(|b| b.birth_date(serial)) else {
            return error(
                422,
                "certificate: the authority holds no birth date for its holder",
            );
        };
        let today = now.to_offset(JST).date();
        let (status, _, _, valid) = self.status_of(&p, now);
        let validity = match (status, valid) {
            (_, true) => "valid",
            ("unknown", _) => "unknown",
            _ => "invalid",
        };
        (
            200,
            json!({
                "kind": p.kind.as_str(),
                "at_least": req.at_least,
                "answer": jpki_model::validity::age_on(birth, today) >= u32::from(req.at_least),
                "validity": validity,
                "today": today.to_string(),
            }),
        )
    }

    /// `certificates/validity`.
    pub fn validity(&self, body: &[u8], may: &dyn Fn(Capability) -> bool, now: OffsetDateTime) -> Reply {
        let req: ValidityRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return error(400, format!("request body: {e}")),
        };
        let p = match self.presented(&req.certificate) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let (cert, kind) = (&p.cert, &p.kind);
        let needed = match kind {
            CertKind::Signature => Capability::SignStatus,
            CertKind::Authentication => Capability::AuthStatus,
        };
        if !may(needed) {
            return error(
                403,
                format!(
                    "this relying party may not check {} certificates ({needed})",
                    kind.as_str()
                ),
            );
        }
        let (status, revoked_at, reason, valid) = self.status_of(&p, now);
        let mut answer = json!({
            "kind": kind.as_str(),
            "serial": cert.serial_hex(),
            "status": status,
            "revoked_at": revoked_at,
            "reason": reason,
            "not_before": rfc3339(cert.not_before),
            "not_after": rfc3339(cert.not_after),
            "valid": valid,
            "checked_at": rfc3339(now),
        });
        if *kind == CertKind::Signature
            && may(Capability::PersonalData)
            && let Some(san) = &cert.jpki_san
        {
            answer["facts"] =
                serde_json::to_value(jpki_sig::report::Facts::from_san(san)).unwrap_or(Value::Null);
        }
        (200, answer)
    }
}
