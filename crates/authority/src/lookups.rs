//! What the platform asks the registry about a certificate a relying party was shown, beyond its
//! status: 現況確認 (have the four facts of a signature certificate changed since it was issued, and
//! is there a newer certificate?) and link data (新旧紐付け: the certificate this one renewed;
//! 証明書紐付け: the other certificate of the same card).
//!
//! Links are only ever followed backwards in time: from a certificate to the one it replaced, and
//! to a counterpart that existed while it was in force. Nothing here leads from an old certificate
//! to a newer one: a relying party must not follow a person who never came back to it. (Liveness
//! says only *whether* a newer certificate exists.)
use jpki_db::params;
use jpki_model::CertKind;

use crate::AuthorityError;
use crate::authority::Authority;

/// 現況確認 of a signature certificate: what changed since it was issued. Never the new facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Whether the holder's basic four information in the registry differs from what the
    /// certificate carries, or was changed (move, name change) after it was issued.
    pub facts_changed: bool,
    /// Whether a newer certificate of the same kind replaced it (renewal or reissue).
    pub newer_certificate: bool,
}

/// The link data of one certificate, followed backwards only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linkage {
    /// The certificate's kind.
    pub kind: CertKind,
    /// The serial (unsigned big-endian) of the certificate of the same kind this one renewed
    /// (新旧紐付け: "what was the serial before B?"), if any.
    pub predecessor: Option<Vec<u8>>,
    /// The other certificate of the same card (sign ↔ auth): the newest one linked to this
    /// certificate that was issued while this one was not yet revoked.
    pub pair: Option<(CertKind, Vec<u8>)>,
}

/// Registry events that change a resident's basic four information.
const FACT_EVENTS: &str = "('resident-move', 'resident-rename')";

fn kind_of(s: &str) -> Result<CertKind, AuthorityError> {
    s.parse()
        .map_err(|e| AuthorityError::Corrupt(format!("certificate kind: {e}")))
}

impl Authority {
    /// 現況確認 for the signature certificate `serial` (unsigned big-endian): whether its holder's
    /// four facts changed since it was issued (they differ from the registry's now, or a move or
    /// name change was recorded since), and whether a newer signature certificate replaced it.
    /// `None` if the certificate is not known; an error for an authentication certificate, which
    /// carries no facts.
    pub fn liveness(&self, serial: &[u8]) -> Result<Option<Liveness>, AuthorityError> {
        let row: Option<(i64, String, i64, i64, Vec<u8>)> = self.connection().query_opt(
            "SELECT id, kind, resident_id, issued_at, der FROM certificates WHERE serial = ?1",
            params![serial],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let Some((id, kind, resident_id, issued_at, der)) = row else {
            return Ok(None);
        };
        if kind_of(&kind)? != CertKind::Signature {
            return Err(AuthorityError::State(
                "liveness: only a signature certificate carries the four facts".into(),
            ));
        }
        let cert = jpki_pki::x509::ParsedCert::from_der(&der)?;
        let carried = cert.jpki_san.unwrap_or_default();
        let now = jpki_pki::san::JpkiSan::from_facts(&self.resident(resident_id)?.facts);
        let differs = carried.name != now.name
            || carried.address != now.address
            || carried.birth_date != now.birth_date
            || carried.sex != now.sex;
        let changed_since: bool = self.connection().query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM status_history WHERE cert = ?1 AND event IN {FACT_EVENTS}) \
             OR EXISTS (SELECT 1 FROM events WHERE resident_id = ?2 AND event IN {FACT_EVENTS} AND at > ?3)"
            ),
            params![id, resident_id, issued_at],
            |r| r.get(0),
        )?;
        let newer: bool = self.connection().query_row(
            "SELECT EXISTS (SELECT 1 FROM cert_links WHERE link = 'renewal' AND from_cert = ?1)",
            params![id],
            |r| r.get(0),
        )?;
        Ok(Some(Liveness {
            facts_changed: differs || changed_since,
            newer_certificate: newer,
        }))
    }

    /// The link data of the certificate `serial` (unsigned big-endian), followed backwards only:
    /// the certificate it renewed, and its counterpart on the same card. `None` if the certificate
    /// is not known.
    pub fn linkage(&self, serial: &[u8]) -> Result<Option<Linkage>, AuthorityError> {
        let row: Option<(i64, String, Option<i64>)> = self.connection().query_opt(
            "SELECT id, kind, CASE WHEN status = 'revoked' THEN revoked_at END FROM certificates \
                 WHERE serial = ?1",
            params![serial],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let Some((id, kind, revoked_at)) = row else {
            return Ok(None);
        };
        let kind = kind_of(&kind)?;
        let predecessor: Option<Vec<u8>> = self.connection().query_opt(
            "SELECT f.serial FROM cert_links l JOIN certificates f ON f.id = l.from_cert \
                 WHERE l.link = 'renewal' AND l.to_cert = ?1 AND f.kind = ?2 ORDER BY f.id DESC LIMIT 1",
            params![id, kind.as_str()],
            |r| r.get(0),
        )?;
        // A pair link is made while both certificates are the card's current ones; a revoked
        // certificate can still be the newest of its kind on the card when the other kind is
        // renewed, so counterparts issued after its revocation are left out.
        let pair: Option<(String, Vec<u8>)> = self.connection().query_opt(
            "SELECT c.kind, c.serial FROM cert_links l JOIN certificates c \
                   ON c.id = CASE WHEN l.from_cert = ?1 THEN l.to_cert ELSE l.from_cert END \
                 WHERE l.link = 'pair' AND (l.from_cert = ?1 OR l.to_cert = ?1) AND c.kind <> ?2 \
                   AND c.issued_at <= COALESCE(?3, c.issued_at) \
                 ORDER BY c.id DESC LIMIT 1",
            params![id, kind.as_str(), revoked_at],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let pair = pair.map(|(k, s)| kind_of(&k).map(|k| (k, s))).transpose()?;
        Ok(Some(Linkage {
            kind,
            predecessor,
            pair,
        }))
    }
}
