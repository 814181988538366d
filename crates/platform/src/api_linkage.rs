//! The JSON API's 現況確認 and serial linkage, and the consents linkage needs.
//!
//! `certificates/liveness` (capability `liveness`): for a signature certificate, have the four
//! facts it carries changed since it was issued, and is there a newer one? Booleans only: never
//! the new facts, never the newer certificate.
//!
//! `certificates/linkage` (capability `linkage`): for a certificate the person presents now (valid
//! now), the certificate of the same kind it renewed (新旧紐付け: "what was the serial before B?")
//! and the other certificate of the same card (証明書紐付け). Never old → new: a relying party
//! must not follow someone who never came back to it. Only with the person's consent on file for
//! the caller.
//!
//! `consents` (capability `linkage`): the relying party submits the consent statement the person
//! signed with their signature certificate (CAdES, statement attached; `jpki consent make`). The
//! platform validates the signature against the signature CA (EN 319 102-1, the signer's status
//! from the platform's own snapshot), checks that the statement names the caller and was given
//! recently, and files it under the person's reference: it covers linkage of any of the person's
//! certificates for that relying party until revoked (`consents/revoke`, the portal, the operator).
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use jpki_model::{CertKind, RevocationReason};
use jpki_pki::path::TrustAnchors;
use jpki_pki::revocation::{RevocationSource, Status};
use jpki_pki::x509::ParsedCert;
use jpki_sig::report::Indication;
use jpki_sig::signed_data::ParsedSignedData;
use jpki_sig::validate::Verifier;
use serde::Deserialize;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::PlatformError;
use crate::api::{Api, Checked, Outcome, PersonRefs, Rights, error, unsigned};
use crate::consent::{NewConsent, Revoker, Statement};
use crate::ocsp::OcspService;
use crate::rp::{Capability, Registry};
use crate::status::Lookup;

/// How long after it was given a consent statement may be submitted.
pub const CONSENT_MAX_AGE: Duration = Duration::hours(24);
/// How far in the future a statement's `given_at` may lie (clock skew).
pub const CONSENT_SKEW: Duration = Duration::minutes(5);

/// 現況確認 of one signature certificate, as the authority answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessFacts {
    /// Whether its four facts changed since it was issued.
    pub facts_changed: bool,
    /// Whether a newer certificate of the same kind replaced it.
    pub newer_certificate: bool,
}

/// Where the platform asks 現況確認 (the authority's registry).
pub trait Liveness: Send + Sync {
    /// 現況確認 of the signature certificate `serial` (unsigned big-endian), if known.
    fn liveness(&self, serial: &[u8]) -> Option<LivenessFacts>;
}

/// The link data of one certificate, followed backwards only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// The serial (unsigned big-endian) of the certificate of the same kind it renewed.
    pub predecessor: Option<Vec<u8>>,
    /// The other certificate of its card (kind and serial) that existed while it was in force.
    pub pair: Option<(CertKind, Vec<u8>)>,
}

/// Where the platform gets link data (the authority's registry).
pub trait LinkData: Send + Sync {
    /// The links of the certificate `serial` (unsigned big-endian), if known.
    fn links(&self, serial: &[u8]) -> Option<Links>;
}

/// What linkage and liveness need besides the status snapshot; empty until the builders of
/// [`Api`] hand them in.
#[derive(Default)]
pub(crate) struct LinkageServices {
    liveness: Option<Arc<dyn Liveness>>,
    links: Option<Arc<dyn LinkData>>,
    consents: Option<Consents>,
}

struct Consents {
    registry: Mutex<Registry>,
    people: Arc<dyn PersonRefs>,
}

/// The platform's status snapshot as revocation information for signature validation at `now`
/// (the snapshot is current: it follows the registry within a second).
struct Snapshot {
    ocsp: Arc<OcspService>,
    now: OffsetDateTime,
}

impl RevocationSource for Snapshot {
    fn status(&self, cert: &ParsedCert, issuer: &ParsedCert) -> Status {
        if cert.issuer_der != issuer.subject_der {
            return Status::Unknown {
                why: "not a certificate of this platform's CAs".into(),
            };
        }
        let source = "the platform's status snapshot".to_owned();
        let kind = match cert.jpki_kind() {
            "sign" => CertKind::Signature,
            "auth" => CertKind::Authentication,
            _ => {
                return Status::Unknown {
                    why: "not a JPKI certificate".into(),
                };
            }
        };
        match self.ocsp.lookup(kind, &cert.serial) {
            Lookup::Good => Status::Good {
                source,
                this_update: self.now,
                next_update: None,
            },
            Lookup::Revoked { at, reason } => Status::Revoked { at, reason, source },
            Lookup::Unknown => Status::Unknown {
                why: "never issued by this authority".into(),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateRequest {
    certificate: String,
    #[serde(default, rename = "purpose")]
    _purpose: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    statement: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeConsentRequest {
    consent_id: String,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn body<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, crate::api::Reply> {
    serde_json::from_slice(bytes).map_err(|e| error(400, format!("request body: {e}")))
}

impl Api {
    /// Answers 現況確認 with `source`.
    #[must_use]
    pub fn with_liveness(mut self, source: Arc<dyn Liveness>) -> Self {
        self.linkage.liveness = Some(source);
        self
    }

    /// Answers linkage with `source` (consents are needed too: [`Api::with_consents`]).
    #[must_use]
    pub fn with_links(mut self, source: Arc<dyn LinkData>) -> Self {
        self.linkage.links = Some(source);
        self
    }

    /// Files and checks consents in `registry` (the platform's relying-party registry), under the
    /// person references `people` gives. Signatures are validated against the signature CA this
    /// API was made with, with the signer's status from the status snapshot.
    #[must_use]
    pub fn with_consents(mut self, registry: Registry, people: Arc<dyn PersonRefs>) -> Self {
        self.linkage.consents = Some(Consents {
            registry: Mutex::new(registry),
            people,
        });
        self
    }

    /// A validator of consent signatures at `now`: the signature CA as the only trust anchor, the
    /// status snapshot as revocation information.
    fn consent_verifier(&self, now: OffsetDateTime) -> Result<Verifier, PlatformError> {
        let mut anchors = TrustAnchors::new();
        for (kind, ca) in self.cas().iter() {
            if *kind == CertKind::Signature {
                anchors.add_der(ca.der())?;
            }
        }
        let snapshot = Snapshot {
            ocsp: Arc::clone(&self.ocsp),
            now,
        };
        Ok(Verifier::new(anchors, Arc::new(snapshot)))
    }

    /// `certificates/liveness` (現況確認): have the four facts of this signature certificate
    /// changed since it was issued, and is there a newer one? Its status too; never the facts.
    pub fn liveness(&self, body_bytes: &[u8], rights: &Rights<'_>, now: OffsetDateTime) -> Outcome {
        let req: CertificateRequest = body(body_bytes)?;
        if !(rights.may)(Capability::Liveness) {
            return Err(error(
                403,
                "this relying party may not ask whether facts changed (liveness)",
            ));
        }
        let p = self.presented(&req.certificate)?;
        if p.kind != CertKind::Signature {
            return Err(error(
                422,
                "certificate: an authentication certificate carries no facts; liveness is for signature certificates",
            ));
        }
        let Some(l) = self
            .linkage
            .liveness
            .as_ref()
            .and_then(|s| s.liveness(unsigned(&p.cert.serial)))
        else {
            return Err(error(422, "certificate: the authority does not know it"));
        };
        let (status, _, _, _) = self.status_of(&p, now);
        let result = match (l.facts_changed, l.newer_certificate) {
            (false, false) => "facts unchanged",
            (false, true) => "facts unchanged, newer certificate",
            (true, false) => "facts changed",
            (true, true) => "facts changed, newer certificate",
        };
        Ok((
            json!({
                "kind": p.kind.as_str(),
                "serial": p.cert.serial_hex(),
                "status": status,
                "facts_changed": l.facts_changed,
                "newer_certificate": l.newer_certificate,
                "checked_at": rfc3339(now),
            }),
            vec![Checked::of(&p, "liveness", result)],
        ))
    }

    /// `certificates/linkage`: the predecessor of a certificate valid now and its pair on the
    /// card, with the holder's consent for the caller on file. Never a newer certificate.
    pub fn linkage(&self, body_bytes: &[u8], rights: &Rights<'_>, now: OffsetDateTime) -> Outcome {
        let req: CertificateRequest = body(body_bytes)?;
        if !(rights.may)(Capability::Linkage) {
            return Err(error(
                403,
                "this relying party may not ask for link data (linkage)",
            ));
        }
        let p = self.presented(&req.certificate)?;
        let serial = unsigned(&p.cert.serial);
        let Some(consents) = &self.linkage.consents else {
            return Err(error(
                403,
                "no consent to linkage is on file (consents are not kept here)",
            ));
        };
        let Some(person) = consents.people.person_ref(serial) else {
            return Err(error(422, "certificate: the authority does not know its holder"));
        };
        let consent = consents
            .registry
            .lock()
            .map_err(|_| error(500, "the consent registry is unavailable"))?
            .consent_on_file(&person, rights.rp_id)
            .map_err(|e| error(500, e.to_string()))?;
        let Some(consent) = consent else {
            return Err(error(
                403,
                "no consent to linkage is on file from this certificate's holder for this relying party \
                 (submit one to /v1/consents)",
            ));
        };
        if !self.status_of(&p, now).3 {
            return Err(error(
                422,
                "certificate: not valid now (linkage is for a certificate its holder uses now)",
            ));
        }
        let Some(links) = self.linkage.links.as_ref().and_then(|s| s.links(serial)) else {
            return Err(error(422, "certificate: the authority does not know it"));
        };
        Ok((
            json!({
                "kind": p.kind.as_str(),
                "serial": p.cert.serial_hex(),
                "predecessor": links.predecessor.as_deref().map(hex::encode),
                "pair": links.pair.as_ref().map(|(k, s)| json!({ "kind": k.as_str(), "serial": hex::encode(s) })),
                "consent_id": consent.id,
                "checked_at": rfc3339(now),
            }),
            vec![Checked::of(&p, "linkage", "given")],
        ))
    }

    /// `consents`: files the linkage consent the person signed (base64 or PEM CMS with the
    /// statement attached) for the calling relying party.
    pub fn submit_consent(&self, body_bytes: &[u8], rights: &Rights<'_>, now: OffsetDateTime) -> Outcome {
        let req: ConsentRequest = body(body_bytes)?;
        if !(rights.may)(Capability::Linkage) {
            return Err(error(
                403,
                "this relying party may not ask for link data (linkage)",
            ));
        }
        let cms = if req.statement.contains("-----BEGIN") {
            jpki_sig::cades::from_pem_or_der(req.statement.as_bytes())
                .map_err(|_| error(400, "statement: not a PEM CMS signature"))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(req.statement.trim())
                .map_err(|_| error(400, "statement: neither PEM nor base64 DER"))?
        };
        let parsed = ParsedSignedData::parse(&cms)
            .map_err(|e| error(400, format!("statement: not a CMS signature ({e})")))?;
        let Some(content) = parsed.econtent.as_deref() else {
            return Err(error(
                400,
                "statement: detached; the consent statement must be attached",
            ));
        };
        let statement = Statement::parse(content).map_err(|e| error(400, e.to_string()))?;
        if statement.rp_id != rights.rp_id {
            return Err(error(
                422,
                format!(
                    "statement: the consent is for {}, not for this relying party",
                    statement.rp_id
                ),
            ));
        }
        if statement.given_at > now + CONSENT_SKEW {
            return Err(error(422, "statement: given_at lies in the future"));
        }
        if statement.given_at < now - CONSENT_MAX_AGE {
            return Err(error(
                422,
                "statement: given more than 24 hours ago; the person must sign a new one",
            ));
        }
        let Some(consents) = &self.linkage.consents else {
            return Err(error(403, "consents are not kept here"));
        };
        let report = self
            .consent_verifier(now)
            .map_err(|e| error(500, e.to_string()))?
            .verify_cades(&cms, None, now)
            .map_err(|e| error(400, format!("statement: {e}")))?;
        // The consent is filed under the certificate the validation found and checked the
        // signature with (by its SHA-256), never one picked from the CMS some other way.
        let signer = report
            .signer
            .as_ref()
            .and_then(|s| {
                parsed
                    .certificates
                    .iter()
                    .find(|c| hex::encode(jpki_pki::x509::sha256(c)) == s.sha256)
            })
            .ok_or_else(|| error(422, "statement: the signer's certificate is not in the signature"))?;
        let p = self
            .presented(&base64::engine::general_purpose::STANDARD.encode(signer))
            .map_err(|_| {
                error(
                    422,
                    "statement: the signer's certificate was not issued by this authority's CAs",
                )
            })?;
        if report
            .signer
            .as_ref()
            .is_none_or(|s| s.sha256 != hex::encode(p.cert.sha256))
        {
            return Err(error(
                422,
                "statement: the signer's certificate is not the one the signature was validated with",
            ));
        }
        if p.kind != CertKind::Signature {
            return Err(error(
                422,
                "statement: signed with an authentication certificate; a consent needs the signature certificate",
            ));
        }
        // Its status now: a signer already revoked or on hold gives no consent (one revoked later
        // leaves the consents it gave while valid).
        match self.ocsp.lookup(p.kind, &p.cert.serial) {
            Lookup::Good if p.cert.valid_at(now) => {}
            Lookup::Good => return Err(error(422, "statement: the signer's certificate is not valid now")),
            Lookup::Revoked {
                reason: RevocationReason::CertificateHold,
                ..
            } => return Err(error(422, "statement: the signer's certificate is on hold")),
            Lookup::Revoked { .. } => {
                return Err(error(422, "statement: the signer's certificate is revoked"));
            }
            Lookup::Unknown => return Err(error(422, "statement: the signer's certificate is unknown")),
        }
        if report.indication != Indication::TotalPassed {
            return Err(error(
                422,
                format!(
                    "statement: the signature does not validate ({}{})",
                    report.indication.as_str(),
                    report
                        .reasons
                        .first()
                        .map(|r| format!(": {}", r.replace('\n', " ")))
                        .unwrap_or_default()
                ),
            ));
        }
        let serial = unsigned(&p.cert.serial);
        let Some(person) = consents.people.person_ref(serial) else {
            return Err(error(422, "statement: the authority does not know the signer"));
        };
        let filed = consents
            .registry
            .lock()
            .map_err(|_| error(500, "the consent registry is unavailable"))?
            .add_consent(
                &NewConsent {
                    person_ref: &person,
                    rp_id: rights.rp_id,
                    signer_serial: serial,
                    statement: &cms,
                    given_at: statement.given_at,
                },
                now,
            );
        let consent = match filed {
            Ok(c) => c,
            Err(PlatformError::Input(m)) => return Err(error(422, m)),
            Err(PlatformError::NotFound(m)) => return Err(error(403, format!("{m}: not registered"))),
            Err(e) => return Err(error(500, e.to_string())),
        };
        Ok((
            json!({
                "consent_id": consent.id,
                "rp_id": consent.rp_id,
                "signer": { "kind": p.kind.as_str(), "serial": p.cert.serial_hex() },
                "given_at": rfc3339(consent.given_at),
                "created_at": rfc3339(consent.created_at),
            }),
            vec![Checked::of(
                &p,
                "consent",
                format!("linkage consent {} filed", consent.id),
            )],
        ))
    }

    /// `consents/revoke`: the calling relying party revokes a consent it holds (idempotent).
    pub fn revoke_consent(&self, body_bytes: &[u8], rights: &Rights<'_>, now: OffsetDateTime) -> Outcome {
        let req: RevokeConsentRequest = body(body_bytes)?;
        if !(rights.may)(Capability::Linkage) {
            return Err(error(
                403,
                "this relying party may not ask for link data (linkage)",
            ));
        }
        let Some(consents) = &self.linkage.consents else {
            return Err(error(404, format!("consent {}: not found", req.consent_id)));
        };
        let revoked = consents
            .registry
            .lock()
            .map_err(|_| error(500, "the consent registry is unavailable"))?
            .revoke_consent(&req.consent_id, Revoker::RelyingParty(rights.rp_id), now);
        match revoked {
            Ok(c) => Ok((
                json!({
                    "consent_id": c.id,
                    "rp_id": c.rp_id,
                    "revoked_at": c.revoked_at.map(rfc3339),
                }),
                Vec::new(),
            )),
            Err(PlatformError::NotFound(_)) => {
                Err(error(404, format!("consent {:?}: not found", req.consent_id)))
            }
            Err(e) => Err(error(500, e.to_string())),
        }
    }
}
