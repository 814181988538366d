//! The JSON API relying parties call (`POST /v1/…`), as pure functions of the request body, the
//! caller's capabilities and the status snapshot. Every answer is a JSON object; errors are
//! `{"error": "…"}` with a 4xx status naming what is wrong.
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

/// The JSON API over the platform's status snapshot.
#[derive(Debug)]
pub struct Api {
    ocsp: Arc<OcspService>,
    cas: Vec<(CertKind, ParsedCert)>,
}

impl Api {
    /// An API answering from `ocsp`'s status snapshot about certificates of the CAs `cas`
    /// (kind and DER certificate).
    pub fn new(ocsp: Arc<OcspService>, cas: &[(CertKind, Vec<u8>)]) -> Result<Self, jpki_pki::PkiError> {
        let cas = cas
            .iter()
            .map(|(k, der)| ParsedCert::from_der(der).map(|c| (*k, c)))
            .collect::<Result<_, _>>()?;
        Ok(Self { ocsp, cas })
    }

    /// Dispatches `POST /v1/{operation}` from a caller with the capabilities `may` says yes to.
    pub fn call(
        &self,
        operation: &str,
        body: &[u8],
        may: &dyn Fn(Capability) -> bool,
        now: OffsetDateTime,
    ) -> Reply {
        match operation {
            "certificates/validity" => self.validity(body, may, now),
            _ => error(404, format!("no operation {operation:?}")),
        }
    }

    /// `certificates/validity`.
    pub fn validity(&self, body: &[u8], may: &dyn Fn(Capability) -> bool, now: OffsetDateTime) -> Reply {
        if body.len() > MAX_BODY_BYTES {
            return error(413, "request body larger than 64 KiB");
        }
        let req: ValidityRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return error(400, format!("request body: {e}")),
        };
        let der = if req.certificate.contains("-----BEGIN") {
            match certificates_from_pem_or_der(req.certificate.as_bytes()).map(|mut v| v.pop()) {
                Ok(Some(d)) => d,
                _ => return error(400, "certificate: not a PEM certificate"),
            }
        } else {
            match base64::engine::general_purpose::STANDARD.decode(req.certificate.trim()) {
                Ok(d) => d,
                Err(_) => return error(400, "certificate: neither PEM nor base64 DER"),
            }
        };
        let Ok(cert) = ParsedCert::from_der(&der) else {
            return error(400, "certificate: not an X.509 certificate");
        };
        let Some((kind, _)) = self.cas.iter().find(|(_, ca)| {
            cert.issuer_der == ca.subject_der && jpki_pki::verify_signed_by(&der, ca.der()).unwrap_or(false)
        }) else {
            return error(422, "certificate: not issued by this authority's CAs");
        };
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
        let lookup = self.ocsp.lookup(*kind, &cert.serial);
        let (status, revoked_at, reason) = match lookup {
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
        let in_period = cert.valid_at(now);
        let mut answer = json!({
            "kind": kind.as_str(),
            "serial": cert.serial_hex(),
            "status": status,
            "revoked_at": revoked_at,
            "reason": reason,
            "not_before": rfc3339(cert.not_before),
            "not_after": rfc3339(cert.not_after),
            "valid": status == "good" && in_period,
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
