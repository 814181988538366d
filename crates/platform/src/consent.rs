//! Consents to serial linkage: a statement the person signed with their signature certificate
//! (CAdES, content attached) saying that one relying party may link their certificates (新旧紐付け,
//! 証明書紐付け). The relying party submits it; the platform checks it and files it under the
//! person's reference (the same for all of their certificates), so one consent covers linkage of
//! any of them for that relying party until it is revoked, by the relying party, by the person (the
//! portal) or by the operator.
//!
//! The signed content is the JSON [`Statement`]. A statement is accepted once. What makes it the
//! same statement is what the person signed — the signer's signed attributes: the digest of the
//! statement, the signing certificate, the signing time — never the CMS around them, which whoever
//! holds it can re-encode without the person (certificates added or dropped, unsigned attributes,
//! another sid; with ECDSA even the signature value, (r, n − s)). So a revoked consent cannot be
//! brought back by submitting its statement again, however it is wrapped.
use jpki_db::{Param, params};
use jpki_sig::signed_data::ParsedSignedData;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::PlatformError;
use crate::rp::Registry;

/// The `type` of a linkage consent statement.
pub const STATEMENT_TYPE: &str = "openjpki-linkage-consent/v1";

/// The signed content of a consent: which relying party may link the signer's certificates, and
/// when the person said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The relying party the consent is for.
    pub rp_id: String,
    /// When it was given (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub given_at: OffsetDateTime,
}

impl Statement {
    /// A statement for `rp_id` given at `now` (whole seconds).
    pub fn new(rp_id: &str, now: OffsetDateTime) -> Self {
        Self {
            kind: STATEMENT_TYPE.to_owned(),
            rp_id: rp_id.to_owned(),
            given_at: now.replace_nanosecond(0).unwrap_or(now),
        }
    }

    /// The bytes that are signed: compact JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads signed content; the message names what is wrong.
    pub fn parse(content: &[u8]) -> Result<Self, PlatformError> {
        let s: Self = serde_json::from_slice(content)
            .map_err(|e| PlatformError::Input(format!("statement: not a consent statement ({e})")))?;
        if s.kind != STATEMENT_TYPE {
            return Err(PlatformError::Input(format!(
                "statement: type {:?}, expected {STATEMENT_TYPE:?}",
                s.kind
            )));
        }
        Ok(s)
    }
}

/// A consent on file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Its identifier (`cns-` and 16 hex digits).
    pub id: String,
    /// The platform's reference to the person who gave it.
    pub person_ref: String,
    /// The relying party it is for.
    pub rp_id: String,
    /// Serial (unsigned big-endian) of the signature certificate that signed it.
    pub signer_serial: Vec<u8>,
    /// The signed statement as submitted (DER CMS).
    pub statement: Vec<u8>,
    /// When the person gave it (from the statement).
    pub given_at: OffsetDateTime,
    /// When the platform filed it.
    pub created_at: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// What filing a consent needs (the statement already checked).
#[derive(Debug, Clone, Copy)]
pub struct NewConsent<'a> {
    /// The signer's person reference.
    pub person_ref: &'a str,
    /// The relying party (the statement's and the submitter's).
    pub rp_id: &'a str,
    /// The signer's certificate serial (unsigned big-endian).
    pub signer_serial: &'a [u8],
    /// The signed statement (DER CMS), its signature already validated.
    pub statement: &'a [u8],
    /// When it was given.
    pub given_at: OffsetDateTime,
}

/// What the person signed in the consent statement `cms` (DER CMS): the SHA-256 of its (first)
/// signer's signed attributes, exactly the bytes its signature covers (they name the statement's
/// digest, the signing certificate and the signing time). The same for every re-encoding of the
/// statement, and no one but the signer can make another.
pub fn signed_digest(cms: &[u8]) -> Result<[u8; 32], PlatformError> {
    let parsed = ParsedSignedData::parse(cms)
        .map_err(|e| PlatformError::Input(format!("statement: not a CMS signature ({e})")))?;
    let signed = parsed
        .signers
        .first()
        .and_then(|s| s.signed_attrs_der.as_deref())
        .ok_or_else(|| PlatformError::Input("statement: no signer with signed attributes".into()))?;
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signed).as_ref());
    Ok(out)
}

/// Who revokes a consent: a relying party (only its own), the person (only theirs), or the
/// operator (any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoker<'a> {
    /// The relying party with this id.
    RelyingParty(&'a str),
    /// The person with this reference (the portal).
    Person(&'a str),
    /// The platform operator.
    Operator,
}

/// The consents table (platform registry schema version 2). `statement_hash` is the statement's
/// [`signed_digest`]; registries filed before it was, hold the SHA-256 of the whole CMS there
/// instead, which [`Registry::add_consent`] allows for.
pub(crate) const SCHEMA_V2: &str = "
CREATE TABLE consents (
    id             TEXT    PRIMARY KEY,
    person_ref     TEXT    NOT NULL,
    rp_id          TEXT    NOT NULL REFERENCES relying_parties (id),
    signer_serial  BLOB    NOT NULL,
    statement      BLOB    NOT NULL,
    statement_hash BLOB    NOT NULL UNIQUE,
    given_at       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER
);
CREATE INDEX consents_person ON consents (person_ref, rp_id);
CREATE INDEX consents_rp ON consents (rp_id);
";

const COLUMNS: &str = "id, person_ref, rp_id, signer_serial, statement, given_at, created_at, revoked_at";

fn row_to_consent(r: &jpki_db::Row<'_>) -> Result<(Consent, [i64; 2], Option<i64>), jpki_db::DbError> {
    let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (given, created, revoked): (i64, i64, Option<i64>) = (r.get(5)?, r.get(6)?, r.get(7)?);
    Ok((
        Consent {
            id: r.get(0)?,
            person_ref: r.get(1)?,
            rp_id: r.get(2)?,
            signer_serial: r.get(3)?,
            statement: r.get(4)?,
            given_at: at(given),
            created_at: at(created),
            revoked_at: revoked.map(at),
        },
        [given, created],
        revoked,
    ))
}

fn checked(row: (Consent, [i64; 2], Option<i64>)) -> Result<Consent, PlatformError> {
    let (c, times, revoked) = row;
    for t in times.into_iter().chain(revoked) {
        OffsetDateTime::from_unix_timestamp(t)
            .map_err(|_| PlatformError::Corrupt(format!("consent {}: time {t}", c.id)))?;
    }
    Ok(c)
}

impl Registry {
    /// Files a checked consent. A statement is filed once, however it is encoded (see
    /// [`signed_digest`]): submitting it again returns the consent on file while it stands, and is
    /// refused once it was revoked.
    pub fn add_consent(&mut self, c: &NewConsent<'_>, now: OffsetDateTime) -> Result<Consent, PlatformError> {
        self.get(c.rp_id)?;
        let key = signed_digest(c.statement)?;
        // Under the writer lock: the check and the insert see the same registry, whoever else
        // writes to it.
        let tx = self.db.begin_write()?;
        let mut filed: Vec<(String, bool)> = tx
            .query_opt(
                "SELECT id, revoked_at IS NOT NULL FROM consents WHERE statement_hash = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .collect();
        if filed.is_empty() {
            // Filed before statement_hash was the signed digest (it was the whole CMS's hash): the
            // same statement has the same signer, relying party and given_at.
            let rows = tx.query_map(
                "SELECT id, revoked_at IS NOT NULL, statement FROM consents \
                 WHERE person_ref = ?1 AND rp_id = ?2 AND given_at = ?3 ORDER BY created_at, id",
                params![c.person_ref, c.rp_id, c.given_at.unix_timestamp()],
                |r| Ok((r.get::<String>(0)?, r.get::<bool>(1)?, r.get::<Vec<u8>>(2)?)),
            )?;
            for (id, revoked, statement) in rows {
                if signed_digest(&statement).is_ok_and(|k| k == key) {
                    filed.push((id, revoked));
                }
            }
        }
        // Any copy of it revoked: it stays revoked.
        if let Some((id, _)) = filed.iter().find(|(_, revoked)| *revoked) {
            return Err(PlatformError::Input(format!(
                "statement: consent {id} made from it was revoked; the person must sign a new one"
            )));
        }
        let id = match filed.into_iter().next() {
            Some((id, _)) => id,
            None => {
                let id = format!("cns-{}", crate::rp::random_hex::<8>()?);
                tx.execute(
                    "INSERT INTO consents (id, person_ref, rp_id, signer_serial, statement, statement_hash, \
                     given_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        id,
                        c.person_ref,
                        c.rp_id,
                        c.signer_serial,
                        c.statement,
                        key,
                        c.given_at.unix_timestamp(),
                        now.unix_timestamp()
                    ],
                )?;
                id
            }
        };
        tx.commit()?;
        let consent = self.consent(&id)?;
        if consent.rp_id != c.rp_id || consent.person_ref != c.person_ref {
            return Err(PlatformError::Input(
                "statement: filed for another relying party or person".into(),
            ));
        }
        Ok(consent)
    }

    /// One consent by id.
    pub fn consent(&self, id: &str) -> Result<Consent, PlatformError> {
        let row = self
            .db
            .query_opt(
                &format!("SELECT {COLUMNS} FROM consents WHERE id = ?1"),
                params![id],
                row_to_consent,
            )?
            .ok_or_else(|| PlatformError::NotFound(format!("consent {id}")))?;
        checked(row)
    }

    /// The newest standing consent of the person `person_ref` for `rp_id`, if any.
    pub fn consent_on_file(&self, person_ref: &str, rp_id: &str) -> Result<Option<Consent>, PlatformError> {
        self.db
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM consents WHERE person_ref = ?1 AND rp_id = ?2 AND revoked_at IS NULL \
                     ORDER BY created_at DESC, id DESC LIMIT 1"
                ),
                params![person_ref, rp_id],
                row_to_consent,
            )?
            .map(checked)
            .transpose()
    }

    /// Every consent the person `person_ref` gave, revoked ones included, newest first (what the
    /// portal shows the person).
    pub fn consents_of_person(&self, person_ref: &str) -> Result<Vec<Consent>, PlatformError> {
        self.consents_where("WHERE person_ref = ?1", params![person_ref])
    }

    /// Every consent given to the relying party `rp_id`, newest first.
    pub fn consents_of_rp(&self, rp_id: &str) -> Result<Vec<Consent>, PlatformError> {
        self.get(rp_id)?;
        self.consents_where("WHERE rp_id = ?1", params![rp_id])
    }

    /// Every consent on file, newest first.
    pub fn all_consents(&self) -> Result<Vec<Consent>, PlatformError> {
        self.consents_where("", params![])
    }

    fn consents_where(&self, cond: &str, p: &[&dyn Param]) -> Result<Vec<Consent>, PlatformError> {
        self.db
            .query_map(
                &format!("SELECT {COLUMNS} FROM consents {cond} ORDER BY created_at DESC, id DESC"),
                p,
                row_to_consent,
            )?
            .into_iter()
            .map(checked)
            .collect()
    }

    /// Revokes consent `id` as `by` may: a relying party only its own, a person only theirs (any
    /// other is "not found", so nobody learns of consents they do not hold). Revoking a revoked
    /// consent returns it unchanged.
    pub fn revoke_consent(
        &mut self,
        id: &str,
        by: Revoker<'_>,
        now: OffsetDateTime,
    ) -> Result<Consent, PlatformError> {
        let c = self.consent(id)?;
        let allowed = match by {
            Revoker::RelyingParty(rp) => c.rp_id == rp,
            Revoker::Person(p) => c.person_ref == p,
            Revoker::Operator => true,
        };
        if !allowed {
            return Err(PlatformError::NotFound(format!("consent {id}")));
        }
        self.db.execute(
            "UPDATE consents SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now.unix_timestamp()],
        )?;
        self.consent(id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeSet;

    use super::*;
    use crate::rp::{Capability, NewRelyingParty, POSTGRES_SCHEMA};
    use crate::testing::each_engine;
    use jpki_model::{CertKind, Serial};
    use jpki_pki::{Endpoints, KeyType, RootSpec, SigningKey, issue_root};
    use jpki_sig::signed_data::{self, DigestAlg, ID_DATA, SignedDataBuilder};

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    /// A certificate to name as the signer (the registry does not validate signatures).
    fn signer_cert() -> Vec<u8> {
        let key = SigningKey::generate(KeyType::P384).unwrap();
        issue_root(&RootSpec {
            kind: CertKind::Signature,
            key: &key,
            serial: &Serial::from_be_bytes(&[1]).unwrap(),
            not_before: now() - time::Duration::days(1),
            not_after: now() + time::Duration::days(3650),
            endpoints: &Endpoints::new("http://127.0.0.1:7700").unwrap(),
            generation: 1,
        })
        .unwrap()
    }

    /// A statement for `rp_id` given `secs` after [`now`] as a CMS by `cert`: its signed
    /// attributes, the certificates it carries, and its (dummy) signature value.
    fn cms(cert: &[u8], rp_id: &str, secs: i64, certs: &[Vec<u8>], signature: &[u8]) -> Vec<u8> {
        let s = Statement::new(rp_id, now() + time::Duration::seconds(secs));
        let content = s.to_bytes();
        let attrs = [
            signed_data::attr_content_type(ID_DATA).unwrap(),
            signed_data::attr_message_digest(&DigestAlg::Sha256.digest(&content)).unwrap(),
            signed_data::attr_signing_certificate_v2(cert).unwrap(),
            signed_data::attr_signing_time(s.given_at).unwrap(),
        ];
        let signed = signed_data::signed_attributes_der(&attrs).unwrap();
        SignedDataBuilder::new(cert, DigestAlg::Sha256, ID_DATA)
            .content(&content)
            .certificates(certs)
            .build(&signed, signature)
            .unwrap()
    }

    fn rp(reg: &mut Registry, name: &str) -> String {
        reg.add(
            &NewRelyingParty {
                name,
                capabilities: BTreeSet::from([Capability::Linkage]),
                age_thresholds: vec![],
                purpose: None,
            },
            now(),
        )
        .unwrap()
        .0
        .id
    }

    #[test]
    fn consents_are_filed_once_found_by_person_and_revoked_by_their_holders() {
        each_engine(|engine, dir| {
            let path = engine.fresh(dir, POSTGRES_SCHEMA);
            let mut reg = Registry::open_at(&path).unwrap();
            let (bank, shop) = (rp(&mut reg, "Bank"), rp(&mut reg, "Shop"));
            let cert = signer_cert();
            let signed_1 = cms(&cert, &bank, 0, std::slice::from_ref(&cert), &[1; 96]);
            let signed_2 = cms(&cert, &shop, 0, std::slice::from_ref(&cert), &[2; 96]);
            let signed_3 = cms(&cert, "rp-nobody", 0, std::slice::from_ref(&cert), &[3; 96]);
            let new = |rp_id, statement| NewConsent {
                person_ref: "person-a",
                rp_id,
                signer_serial: &[0x40, 1],
                statement,
                given_at: now(),
            };
            let c = reg.add_consent(&new(&bank, &signed_1), now()).unwrap();
            assert!(c.id.starts_with("cns-") && c.id.len() == 20, "{}", c.id);
            assert_eq!((c.rp_id.as_str(), c.revoked_at), (bank.as_str(), None));
            assert_eq!(
                reg.add_consent(&new(&bank, &signed_1), now()).unwrap().id,
                c.id,
                "the same statement is filed once"
            );
            assert_eq!(reg.consent_on_file("person-a", &bank).unwrap().unwrap().id, c.id);
            assert!(reg.consent_on_file("person-a", &shop).unwrap().is_none());
            assert!(reg.consent_on_file("person-b", &bank).unwrap().is_none());
            let other = reg.add_consent(&new(&shop, &signed_2), now()).unwrap();
            assert_eq!(reg.consents_of_person("person-a").unwrap().len(), 2);
            assert_eq!(reg.consents_of_rp(&shop).unwrap(), vec![other.clone()]);
            assert_eq!(reg.all_consents().unwrap().len(), 2);
            assert!(matches!(
                reg.add_consent(&new("rp-nobody", &signed_3), now()),
                Err(PlatformError::NotFound(_))
            ));

            // Only its holders revoke it; others are told it does not exist.
            for by in [Revoker::RelyingParty(&shop), Revoker::Person("person-b")] {
                assert!(matches!(
                    reg.revoke_consent(&c.id, by, now()),
                    Err(PlatformError::NotFound(_))
                ));
            }
            let later = now() + time::Duration::hours(1);
            let revoked = reg
                .revoke_consent(&c.id, Revoker::RelyingParty(&bank), later)
                .unwrap();
            assert_eq!(revoked.revoked_at, Some(later));
            assert!(reg.consent_on_file("person-a", &bank).unwrap().is_none());
            let e = reg
                .add_consent(&new(&bank, &signed_1), later)
                .unwrap_err()
                .to_string();
            assert!(e.contains("revoked") && !e.contains('\n'), "{e}");
            reg.revoke_consent(&other.id, Revoker::Person("person-a"), later)
                .unwrap();
            assert!(matches!(
                reg.revoke_consent("cns-0000", Revoker::Operator, later),
                Err(PlatformError::NotFound(_))
            ));

            // Reopened: the consents are still there (the migration runs once).
            drop(reg);
            let reg = Registry::open_at(&path).unwrap();
            assert_eq!(reg.consents_of_person("person-a").unwrap().len(), 2);
        });
    }

    #[test]
    fn a_statement_is_one_consent_however_it_is_encoded_and_stays_revoked() {
        each_engine(|engine, dir| {
            let mut reg = Registry::open_at(&engine.fresh(dir, POSTGRES_SCHEMA)).unwrap();
            let bank = rp(&mut reg, "Bank");
            let (cert, other) = (signer_cert(), signer_cert());
            let new = |statement| NewConsent {
                person_ref: "person-a",
                rp_id: &bank,
                signer_serial: &[0x40, 1],
                statement,
                given_at: now(),
            };
            // What the relying party can do to the CMS without the person: change the certificates,
            // add unsigned attributes, change the signature value (ECDSA: (r, n − s)).
            let original = cms(&cert, &bank, 0, std::slice::from_ref(&cert), &[1; 96]);
            // (Any unsigned attribute: its type does not matter here.)
            let attr = signed_data::attribute(ID_DATA, &[&[0x05, 0x00]]).unwrap();
            let copies = [
                cms(&cert, &bank, 0, &[], &[1; 96]),
                cms(&cert, &bank, 0, &[cert.clone(), other.clone()], &[1; 96]),
                cms(&cert, &bank, 0, std::slice::from_ref(&cert), &[9; 96]),
                signed_data::set_unsigned_attribute(&original, &attr).unwrap(),
            ];
            let key = signed_digest(&original).unwrap();
            for copy in &copies {
                assert_ne!(copy, &original);
                assert_eq!(signed_digest(copy).unwrap(), key);
            }
            // What the person signs differently is another statement.
            for other_statement in [
                cms(&cert, &bank, 1, std::slice::from_ref(&cert), &[1; 96]),
                cms(&other, &bank, 0, std::slice::from_ref(&cert), &[1; 96]),
            ] {
                assert_ne!(signed_digest(&other_statement).unwrap(), key);
            }
            assert!(matches!(
                reg.add_consent(&new(b"not cms"), now()),
                Err(PlatformError::Input(_))
            ));

            let c = reg.add_consent(&new(&original), now()).unwrap();
            for copy in &copies {
                assert_eq!(reg.add_consent(&new(copy), now()).unwrap(), c, "the same consent");
            }
            assert_eq!(reg.all_consents().unwrap().len(), 1);
            reg.revoke_consent(&c.id, Revoker::Person("person-a"), now())
                .unwrap();
            for copy in copies.iter().chain([&original]) {
                let e = reg.add_consent(&new(copy), now()).unwrap_err().to_string();
                assert!(e.contains("revoked"), "{e}");
            }
            assert!(reg.consent_on_file("person-a", &bank).unwrap().is_none());
            assert_eq!(reg.all_consents().unwrap().len(), 1);
        });
    }

    #[test]
    fn consents_filed_under_the_hash_of_the_whole_cms_are_still_found() {
        each_engine(|engine, dir| {
            let mut reg = Registry::open_at(&engine.fresh(dir, POSTGRES_SCHEMA)).unwrap();
            let bank = rp(&mut reg, "Bank");
            let cert = signer_cert();
            let new = |statement| NewConsent {
                person_ref: "person-a",
                rp_id: &bank,
                signer_serial: &[0x40, 1],
                statement,
                given_at: now(),
            };
            // As they were filed before: statement_hash the SHA-256 of the CMS; two copies of one
            // statement, one of them revoked.
            let (a, b) = (
                cms(&cert, &bank, 0, std::slice::from_ref(&cert), &[1; 96]),
                cms(&cert, &bank, 0, &[], &[1; 96]),
            );
            for (id, statement, revoked) in [("cns-a", &a, None), ("cns-b", &b, Some(1))] {
                reg.db
                .execute(
                    "INSERT INTO consents (id, person_ref, rp_id, signer_serial, statement, statement_hash, \
                     given_at, created_at, revoked_at) VALUES (?1, 'person-a', ?2, ?7, ?3, ?4, ?5, ?5, ?6)",
                    params![
                        id,
                        bank,
                        statement,
                        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, statement).as_ref(),
                        now().unix_timestamp(),
                        revoked,
                        [0x40u8, 0x01]
                    ],
                )
                .unwrap();
            }
            let third = cms(&cert, &bank, 0, &[], &[7; 96]);
            let e = reg.add_consent(&new(&third), now()).unwrap_err().to_string();
            assert!(e.contains("cns-b") && e.contains("revoked"), "{e}");
            reg.db
                .execute("UPDATE consents SET revoked_at = NULL", params![])
                .unwrap();
            assert_eq!(reg.add_consent(&new(&third), now()).unwrap().id, "cns-a");
            assert_eq!(reg.all_consents().unwrap().len(), 2, "nothing new filed");
        });
    }

    #[test]
    fn a_registry_from_before_schema_versions_gains_the_consents_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("platform.sqlite");
        let bank = {
            let mut reg = Registry::open(&path).unwrap();
            let bank = rp(&mut reg, "Bank");
            // As the first release left it: no consents table, user_version 0.
            reg.db
                .batch(
                    "DROP TABLE consents; DROP TABLE client_certs; DROP TABLE oidc_clients; DROP TABLE notices; DROP TABLE postbox; \
                     ALTER TABLE relying_parties DROP COLUMN purpose; PRAGMA user_version = 0;",
                )
                .unwrap();
            bank
        };
        let mut reg = Registry::open(&path).unwrap();
        assert_eq!(reg.get(&bank).unwrap().name, "Bank", "the relying parties stay");
        let version: i64 = reg
            .db
            .query_row("PRAGMA user_version", params![], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 6);
        let cert = signer_cert();
        let c = NewConsent {
            person_ref: "p",
            rp_id: &bank,
            signer_serial: &[0x40],
            statement: &cms(&cert, &bank, 0, &[], &[1; 96]),
            given_at: now(),
        };
        reg.add_consent(&c, now()).unwrap();
        reg.db.batch("PRAGMA user_version = 9;").unwrap();
        drop(reg);
        let e = Registry::open(&path).unwrap_err().to_string();
        assert!(e.contains("schema version 9") && e.contains("upgrade"), "{e}");
    }

    #[test]
    fn a_registry_of_a_newer_schema_is_refused() {
        each_engine(|engine, dir| {
            let loc = engine.fresh(dir, POSTGRES_SCHEMA);
            let reg = Registry::open_at(&loc).unwrap();
            assert_eq!(reg.db.schema_version().unwrap(), 6);
            reg.db.set_schema_version(9).unwrap();
            drop(reg);
            let e = Registry::open_at(&loc).unwrap_err().to_string();
            assert!(e.contains("schema version 9") && e.contains("upgrade"), "{e}");
        });
    }

    #[test]
    fn statements_are_strict_json() {
        let s = Statement::new("rp-0123456789abcdef", now());
        assert_eq!(Statement::parse(&s.to_bytes()).unwrap(), s);
        let text = String::from_utf8(s.to_bytes()).unwrap();
        assert!(
            text.contains("\"type\":\"openjpki-linkage-consent/v1\""),
            "{text}"
        );
        for bad in [
            &b"{"[..],
            br#"{"type":"other/v1","rp_id":"rp-1","given_at":"2027-01-15T08:00:00Z"}"#,
            br#"{"type":"openjpki-linkage-consent/v1","rp_id":"rp-1","given_at":"yesterday"}"#,
            br#"{"type":"openjpki-linkage-consent/v1","rp_id":"rp-1","given_at":"2027-01-15T08:00:00Z","x":1}"#,
        ] {
            let e = Statement::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("statement:") && !e.contains('\n'), "{e}");
        }
    }
}
