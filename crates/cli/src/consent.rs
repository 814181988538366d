//! `jpki consent`: consents to serial linkage. `make` has the card sign the platform's consent
//! statement (CAdES-B with the statement attached, so the platform needs nothing else to read it);
//! `list` and `revoke` are the operator's view of the consents relying parties submitted.
use std::path::Path;

use jpki_model::CertKind;
use jpki_platform::consent::Consent;
use jpki_platform::{Registry, Revoker, Statement};
use jpki_sig::signed_data::{self, DigestAlg, ID_DATA, SignedDataBuilder};
use serde_json::json;

use crate::args::ConsentCmd;
use crate::docsig::now;
use crate::{Failure, Report, holder, secrets};

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn consent_json(c: &Consent) -> serde_json::Value {
    json!({
        "consent_id": c.id,
        "rp_id": c.rp_id,
        "signer_serial": hex::encode(&c.signer_serial),
        "given_at": rfc3339(c.given_at),
        "created_at": rfc3339(c.created_at),
        "revoked_at": c.revoked_at.map(rfc3339),
    })
}

fn consent_line(c: &Consent) -> String {
    format!(
        "{}  {}  given {}  signer {}{}",
        c.id,
        c.rp_id,
        rfc3339(c.given_at),
        hex::encode(&c.signer_serial),
        c.revoked_at
            .map(|t| format!("  revoked {}", rfc3339(t)))
            .unwrap_or_default()
    )
}

/// The platform's registry, where `jpki serve` and `jpki rp` open it.
fn registry(data: &Path) -> Result<Registry, Failure> {
    crate::serve::registry(data)
}

/// Whether `rp` looks like a relying party's identifier (`rp-` and 16 hex digits).
fn is_rp_id(rp: &str) -> bool {
    rp.strip_prefix("rp-")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `jpki consent …`.
pub(crate) fn run(cmd: ConsentCmd, data: &Path, device_key: &Path) -> Result<Report, Failure> {
    match cmd {
        ConsentCmd::Make {
            access,
            rp,
            out,
            force,
            sign_password,
        } => {
            if !is_rp_id(&rp) {
                return Err(Failure::Usage(format!(
                    "--rp {rp:?}: not a relying party's identifier (rp- and 16 hex digits)"
                )));
            }
            if out.exists() && !force {
                return Err(Failure::Usage(format!(
                    "{} exists (give --force to replace it, or --out)",
                    out.display()
                )));
            }
            let password = match sign_password {
                Some(p) => p,
                None => secrets::sign_password()?,
            };
            let statement = Statement::new(&rp, now());
            let content = statement.to_bytes();
            let mut session = holder::open(&access, device_key)?;
            let cert = session.read_certificate(CertKind::Signature, Some(password.as_bytes()))?;
            let mut certificates = vec![cert.clone()];
            if let Ok(ca) = session.read_ca_certificate(CertKind::Signature) {
                certificates.push(ca);
            }
            let attrs = [
                signed_data::attr_content_type(ID_DATA)?,
                signed_data::attr_message_digest(&jpki_pki::x509::sha256(&content))?,
                signed_data::attr_signing_certificate_v2(&cert)?,
                signed_data::attr_signing_time(statement.given_at)?,
            ];
            let signed_attrs = signed_data::signed_attributes_der(&attrs)?;
            let signature = session.sign_digest(
                CertKind::Signature,
                password.as_bytes(),
                &jpki_pki::x509::sha256(&signed_attrs),
            )?;
            let cms = SignedDataBuilder::new(&cert, DigestAlg::Sha256, ID_DATA)
                .content(&content)
                .certificates(&certificates)
                .build(&signed_attrs, &signature)?;
            jpki_authority::write_atomically(&out, &cms, 0o644)?;
            let info = jpki_pki::CertificateInfo::from_der(&cert)?;
            Ok(Report::new(
                json!({ "out": out, "rp_id": rp, "given_at": rfc3339(statement.given_at),
                        "signer_serial": info.serial, "statement": String::from_utf8_lossy(&content) }),
                format!(
                    "Signed a linkage consent for {rp} with the signature certificate (serial {}); wrote {}.\n\
                     The relying party submits it (base64) to POST /v1/consents.",
                    info.serial,
                    out.display()
                ),
            ))
        }
        ConsentCmd::List { rp } => {
            let reg = registry(data)?;
            let all = match &rp {
                Some(rp) => reg.consents_of_rp(rp)?,
                None => reg.all_consents()?,
            };
            let text = if all.is_empty() {
                "No consents on file.".to_owned()
            } else {
                all.iter().map(consent_line).collect::<Vec<_>>().join("\n")
            };
            Ok(Report::new(
                json!({ "consents": all.iter().map(consent_json).collect::<Vec<_>>() }),
                text,
            ))
        }
        ConsentCmd::Revoke { id } => {
            let mut reg = registry(data)?;
            let c = reg.revoke_consent(&id, Revoker::Operator, now())?;
            crate::serve::audit(data, "consent-revoke", &format!("{id} for {}", c.rp_id))?;
            Ok(Report::new(
                consent_json(&c),
                format!(
                    "Consent {id} ({}) is revoked; linkage for its person stops at once.",
                    c.rp_id
                ),
            ))
        }
    }
}
