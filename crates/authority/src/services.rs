//! The authority's own service certificates: the time-stamp authority (RFC 3161) that gives
//! signatures their B-T time-stamps, and one delegated OCSP responder (RFC 6960) per CA. Each key is
//! generated here, encrypted under the authority's passphrase beside the CA keys, and certified by
//! the CA it serves:
//! - the TSA by the signature CA: keyUsage digitalSignature, extendedKeyUsage timeStamping only and
//!   critical, CRL distribution point and caIssuers like any certificate of that CA, valid for ten
//!   years (capped by the root), so verifiers validate a time-stamp with the same trust anchors and
//!   CRLs;
//! - an OCSP responder by each CA: extendedKeyUsage OCSPSigning and id-pkix-ocsp-nocheck, a P-384 key
//!   whatever the CA's key type (it signs every on-demand answer, and P-384 signs several times
//!   faster than RSA-2048 here), valid for 90 days and renewed on the first use within 30 days of
//!   its end. With ocsp-nocheck nobody can check it for revocation, hence the short life. After a
//!   key rollover every root generation still valid keeps a responder of its own, certified by
//!   that generation, for the certificates it issued (a responder must be certified by the issuer
//!   the CertID names, RFC 6960 §4.2.2.2); the TSA is certified by the current generation only.
use jpki_db::params;
use jpki_model::{CertKind, RevocationReason, Serial};
use jpki_pki::{KeyType, SigningKey, SubjectPublicKey};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::authority::{Authority, KEY_DIR, event, random};
use crate::store::{from_ts, ts};
use crate::{AuthorityError, InitOptions, write_atomically};

/// What a service certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceRole {
    /// The time-stamp authority (certified by the signature CA).
    Tsa,
    /// The delegated OCSP responder of one CA.
    Ocsp,
}

/// The party name under which [`Authority::person_ref`] derives the platform's own reference (no
/// relying-party identifier can equal it: those are `rp-` and hex).
const PLATFORM_PARTY: &str = "\0platform";

impl ServiceRole {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tsa => "tsa",
            Self::Ocsp => "ocsp",
        }
    }

    /// How long a new certificate is valid (capped by the root's validity).
    fn validity(self) -> Duration {
        match self {
            Self::Tsa => Duration::days(365 * 10),
            Self::Ocsp => Duration::days(90),
        }
    }

    /// How long before its end a certificate is replaced by a new one.
    fn renew_before(self) -> Duration {
        match self {
            Self::Tsa => Duration::days(365),
            Self::Ocsp => Duration::days(30),
        }
    }

    fn key_type(self, ca_key_type: KeyType) -> KeyType {
        match self {
            Self::Tsa => ca_key_type,
            Self::Ocsp => KeyType::P384,
        }
    }
}

/// A decrypted service key with its certificate and the chain up to the root.
#[derive(Debug)]
pub struct ServiceCredentials {
    /// The private key.
    pub key: SigningKey,
    /// The service certificate (DER).
    pub cert_der: Vec<u8>,
    /// The issuing root (DER).
    pub chain: Vec<Vec<u8>>,
}

/// A service certificate row.
struct StoredService {
    id: i64,
    key_file: String,
    key_pem: Option<Zeroizing<String>>,
    cert_der: Vec<u8>,
}

/// The TSA's credentials (a [`ServiceCredentials`]).
pub type TsaCredentials = ServiceCredentials;

/// The OCSP responder of one root generation of a CA.
#[derive(Debug)]
pub struct GenerationResponder {
    /// The root generation (1 until the first rollover).
    pub generation: u32,
    /// That generation's root (DER).
    pub root: Vec<u8>,
    /// The responder's key and certificate (certified by that root).
    pub credentials: ServiceCredentials,
}

impl Authority {
    /// The current TSA certificate, if one was issued and is still valid.
    pub fn tsa_certificate(&self) -> Result<Option<Vec<u8>>, AuthorityError> {
        Ok(self
            .current_service(
                ServiceRole::Tsa,
                CertKind::Signature,
                &self.ca_cert(CertKind::Signature)?,
                ServiceRole::Tsa.renew_before(),
            )?
            .map(|s| s.cert_der))
    }

    /// The newest good service certificate of `role` for `kind`'s CA certified by the root
    /// `root_der` (one generation) and valid for at least `margin` more: its id, key file, key
    /// (encrypted PEM, when the registry keeps it) and certificate.
    fn current_service(
        &self,
        role: ServiceRole,
        kind: CertKind,
        root_der: &[u8],
        margin: Duration,
    ) -> Result<Option<StoredService>, AuthorityError> {
        // Only one certified by that generation: a responder speaks for what its issuer issued.
        let root = jpki_pki::x509::ParsedCert::from_der(root_der)?;
        let candidates = self.connection().query_map(
            "SELECT id, key_file, key_pem, der FROM service_certs WHERE role = ?1 AND ca_kind = ?2 \
             AND status = 'good' AND not_after > ?3 ORDER BY id DESC",
            params![role.as_str(), kind.as_str(), ts(self.now() + margin)],
            |r| {
                Ok(StoredService {
                    id: r.get(0)?,
                    key_file: r.get(1)?,
                    key_pem: r.get::<Option<String>>(2)?.map(Zeroizing::new),
                    cert_der: r.get(3)?,
                })
            },
        )?;
        Ok(candidates.into_iter().find(|c| {
            jpki_pki::x509::CertCore::from_der(&c.cert_der)
                .is_ok_and(|core| core.issuer_der == root.subject_der.as_slice())
        }))
    }

    /// Decrypts a stored service's key (from the registry when it keeps it, else from its file);
    /// `root` is the root that certified it.
    fn open_service(
        &self,
        root: Vec<u8>,
        stored: StoredService,
        passphrase: &[u8],
    ) -> Result<ServiceCredentials, AuthorityError> {
        let pem = match stored.key_pem {
            Some(pem) => pem,
            None => {
                let path = self.dir().join(&stored.key_file);
                Zeroizing::new(std::fs::read_to_string(&path).map_err(AuthorityError::io(&path))?)
            }
        };
        Ok(ServiceCredentials {
            key: SigningKey::from_encrypted_pem(&pem, passphrase)?,
            cert_der: stored.cert_der,
            chain: vec![root],
        })
    }

    /// The generations of `kind`'s CA whose roots are still valid now, oldest first, with their
    /// roots: the ones that keep an OCSP responder.
    fn live_generations(&self, kind: CertKind) -> Result<Vec<(u32, Vec<u8>)>, AuthorityError> {
        let now = self.now();
        let mut live = Vec::new();
        for (generation, root) in self.ca_certs(kind)? {
            if jpki_pki::x509::ParsedCert::from_der(&root)?.not_after > now {
                live.push((generation, root));
            }
        }
        Ok(live)
    }

    /// For a verifier (no CA keys): the newest service key and certificate of `role` for `kind`'s
    /// CA that is valid now, decrypted with `passphrase`, and its id (a newer one has a larger
    /// id). Never issues one: an error says to start the authority first.
    fn existing_service(
        &self,
        role: ServiceRole,
        kind: CertKind,
        passphrase: &[u8],
    ) -> Result<(i64, ServiceCredentials), AuthorityError> {
        let root = self.ca_cert(kind)?;
        let stored = self
            .current_service(role, kind, &root, Duration::ZERO)?
            .ok_or_else(|| not_issued_yet(role, kind))?;
        let id = stored.id;
        Ok((id, self.open_service(root, stored, passphrase)?))
    }

    /// A verifier's OCSP responder for `kind`'s CA (see [`Authority::ocsp_credentials`], which
    /// the authority uses to issue and renew it) and its id.
    pub fn existing_ocsp_credentials(
        &self,
        kind: CertKind,
        passphrase: &[u8],
    ) -> Result<(i64, ServiceCredentials), AuthorityError> {
        self.existing_service(ServiceRole::Ocsp, kind, passphrase)
    }

    /// For a verifier: the OCSP responders of every generation of `kind`'s CA whose root is still
    /// valid and whose responder the authority has issued, oldest first (see
    /// [`Authority::ocsp_responders`]). Never issues one; an error if the current generation has
    /// none yet.
    pub fn existing_ocsp_responders(
        &self,
        kind: CertKind,
        passphrase: &[u8],
    ) -> Result<Vec<GenerationResponder>, AuthorityError> {
        let live = self.live_generations(kind)?;
        let current = live.last().map(|(g, _)| *g);
        let mut out = Vec::new();
        for (generation, root) in live {
            match self.current_service(ServiceRole::Ocsp, kind, &root, Duration::ZERO)? {
                Some(stored) => out.push(GenerationResponder {
                    generation,
                    credentials: self.open_service(root.clone(), stored, passphrase)?,
                    root,
                }),
                // An older generation's responder is issued by the authority's next upkeep.
                None if Some(generation) != current => {}
                None => return Err(not_issued_yet(ServiceRole::Ocsp, kind)),
            }
        }
        Ok(out)
    }

    /// A verifier's TSA key and certificate and its id.
    pub fn existing_tsa_credentials(
        &self,
        passphrase: &[u8],
    ) -> Result<(i64, TsaCredentials), AuthorityError> {
        self.existing_service(ServiceRole::Tsa, CertKind::Signature, passphrase)
    }

    /// The id of the newest valid service certificate of each role and CA: a verifier compares
    /// it with the ids it loaded to pick up a renewed responder or TSA.
    pub fn service_generation(&self) -> Result<i64, AuthorityError> {
        Ok(self.connection().query_row(
            "SELECT COALESCE(MAX(id), 0) FROM service_certs WHERE status = 'good' AND not_after > ?1",
            params![ts(self.now())],
            |r| r.get(0),
        )?)
    }

    /// The TSA key and certificate, decrypted with `passphrase`; the first call on a data directory
    /// (or after the certificate expired) generates the key and has the signature CA certify it.
    pub fn tsa_credentials(&mut self, passphrase: &[u8]) -> Result<TsaCredentials, AuthorityError> {
        let (generation, root) = self
            .ca_certs(CertKind::Signature)?
            .pop()
            .ok_or_else(|| AuthorityError::Corrupt("no signature CA in the registry".into()))?;
        self.service_credentials(
            ServiceRole::Tsa,
            CertKind::Signature,
            generation,
            root,
            passphrase,
        )
    }

    /// The OCSP responder key and certificate of `kind`'s CA, decrypted with `passphrase`; a new
    /// one is generated and certified on the first call, and whenever the current one is within 30
    /// days of its end.
    pub fn ocsp_credentials(
        &mut self,
        kind: CertKind,
        passphrase: &[u8],
    ) -> Result<ServiceCredentials, AuthorityError> {
        let (generation, root) = self
            .ca_certs(kind)?
            .pop()
            .ok_or_else(|| AuthorityError::Corrupt(format!("no {} CA in the registry", kind.as_str())))?;
        self.service_credentials(ServiceRole::Ocsp, kind, generation, root, passphrase)
    }

    /// The OCSP responder of every generation of `kind`'s CA whose root is still valid, oldest
    /// first, each certified by its own generation and issued or renewed as
    /// [`Authority::ocsp_credentials`] does for the current one.
    pub fn ocsp_responders(
        &mut self,
        kind: CertKind,
        passphrase: &[u8],
    ) -> Result<Vec<GenerationResponder>, AuthorityError> {
        let mut out = Vec::new();
        for (generation, root) in self.live_generations(kind)? {
            let credentials =
                self.service_credentials(ServiceRole::Ocsp, kind, generation, root.clone(), passphrase)?;
            out.push(GenerationResponder {
                generation,
                root,
                credentials,
            });
        }
        Ok(out)
    }

    /// The service of `role` certified by generation `generation` (root `root`) of `kind`'s CA.
    fn service_credentials(
        &mut self,
        role: ServiceRole,
        kind: CertKind,
        generation: u32,
        root: Vec<u8>,
        passphrase: &[u8],
    ) -> Result<ServiceCredentials, AuthorityError> {
        // An existing service needs only its own key decrypted, not the CA keys. Once the root
        // itself ends within the renewal margin a new certificate could not last longer (it is
        // capped by the root): the current one is kept to its end.
        let root_end = jpki_pki::x509::ParsedCert::from_der(&root)?.not_after;
        let margin = if root_end - self.now() < role.renew_before() {
            Duration::ZERO
        } else {
            role.renew_before()
        };
        if let Some(stored) = self.current_service(role, kind, &root, margin)? {
            return self.open_service(root, stored, passphrase);
        }
        let issuers = self.issuers(passphrase)?;
        let issuer = issuers
            .generations(kind)
            .iter()
            .find(|i| i.generation() == generation)
            .ok_or_else(|| {
                AuthorityError::Corrupt(format!("no generation {generation} of the {} CA", kind.as_str()))
            })?;
        let key = SigningKey::generate(role.key_type(self.settings().key_type))?;
        let spki = SubjectPublicKey::from_der(&key.spki_der()?)?;
        let now = self.now();
        let not_after = (now + role.validity()).min(root_end);
        let shards = self.settings().shards;
        let endpoints = self.settings().endpoints.clone();
        let next_id: i64 = self.connection().query_row(
            "SELECT COALESCE(MAX(id), 0) + 1 FROM service_certs",
            params![],
            |r| r.get(0),
        )?;
        let rel = format!("{KEY_DIR}/{}-{next_id}.key.pem", role.as_str());
        // Written before the transaction that names it; a crash in between leaves an unreferenced
        // file that the next attempt overwrites.
        let pem = key.to_encrypted_pem(passphrase, InitOptions::DEFAULT_KDF_ITERATIONS)?;
        write_atomically(&self.dir().join(&rel), pem.as_bytes(), 0o600)?;
        let tx = self.connection().begin_write()?;
        let (serial, shard) = loop {
            let r = random::<16>()?;
            let shard = u16::from_be_bytes([r[0], r[1]]) % shards;
            let serial = Serial::generate(r, shard);
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = ?1) \
                 OR EXISTS (SELECT 1 FROM service_certs WHERE serial = ?1)",
                params![serial.as_be_bytes()],
                |r| r.get(0),
            )?;
            if !taken {
                break (serial, shard);
            }
        };
        let cert_der = match role {
            ServiceRole::Tsa => issuer.issue_tsa(&serial, &spki, now, not_after, &endpoints)?,
            ServiceRole::Ocsp => issuer.issue_ocsp_responder(&serial, &spki, now, not_after, &endpoints)?,
        };
        tx.execute(
            "INSERT INTO service_certs (serial, role, ca_kind, key_file, shard, not_before, not_after, \
             status, issued_at, der, key_pem) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'good', ?6, ?8, ?9)",
            params![
                serial.as_be_bytes(),
                role.as_str(),
                kind.as_str(),
                rel,
                shard,
                ts(now),
                ts(not_after),
                cert_der,
                pem.as_str()
            ],
        )?;
        event(
            &tx,
            &self.operator,
            now,
            &format!("{}-certificate", role.as_str()),
            None,
            None,
            &format!(
                "{} generation {generation} serial {}",
                kind.as_str(),
                serial.to_hex()
            ),
        )?;
        tx.commit()?;
        Ok(ServiceCredentials {
            key,
            cert_der,
            chain: vec![root],
        })
    }

    /// The birth date the registry holds for the holder of the certificate `serial` (either kind),
    /// if the certificate is known. This is what an age check computes from; the date itself never
    /// leaves the platform.
    pub fn birth_date_of(&self, serial: &[u8]) -> Result<Option<time::Date>, AuthorityError> {
        let text: Option<String> = self
            .connection()
            .query_opt("SELECT r.birth_date FROM certificates c JOIN residents r ON r.id = c.resident_id WHERE c.serial = ?1", params![serial], |r| r.get(0))?;
        text.map(|t| {
            jpki_model::parse_birth_date(&t)
                .map_err(|_| AuthorityError::Corrupt(format!("birth date {t:?} in the registry")))
        })
        .transpose()
    }

    /// The pairwise identifier of the holder of the certificate `serial` for the relying party
    /// `rp_id`: HMAC-SHA-256 under a per-person secret that never leaves the authority (made on
    /// first use), over the relying party's identifier; 32 hex digits. The same for every
    /// certificate of the person (renewals included), different and unlinkable across relying
    /// parties. `None` if the certificate is not known.
    pub fn pairwise_id(&self, serial: &[u8], rp_id: &str) -> Result<Option<String>, AuthorityError> {
        let resident: Option<i64> = self.connection().query_opt(
            "SELECT resident_id FROM certificates WHERE serial = ?1",
            params![serial],
            |r| r.get(0),
        )?;
        let Some(resident) = resident else {
            return Ok(None);
        };
        let fresh = random::<32>()?;
        self.connection().execute(
            "INSERT INTO person_secrets (resident_id, secret) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![resident, fresh.as_slice()],
        )?;
        let secret: Zeroizing<Vec<u8>> = Zeroizing::new(self.connection().query_row(
            "SELECT secret FROM person_secrets WHERE resident_id = ?1",
            params![resident],
            |r| r.get(0),
        )?);
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let mut msg = b"openjpki pairwise v1\0".to_vec();
        msg.extend_from_slice(rp_id.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, &msg);
        Ok(Some(hex::encode(tag.as_ref().get(..16).unwrap_or_default())))
    }

    /// The platform's own opaque reference to the holder of the certificate `serial` (either kind):
    /// the pairwise identifier for the platform itself, so the same for all of a person's
    /// certificates (renewals included), never the individual number, and unlinkable to any
    /// relying party's identifier. Access records and consents are filed under it. `None` if the
    /// certificate is not known.
    pub fn person_ref(&self, serial: &[u8]) -> Result<Option<String>, AuthorityError> {
        self.pairwise_id(serial, PLATFORM_PARTY)
    }

    /// The newest position in the status history (0 for none): where [`Self::status_changes_since`]
    /// starts for a snapshot loaded now.
    pub fn status_history_position(&self) -> Result<i64, AuthorityError> {
        Ok(self.connection().query_row(
            "SELECT COALESCE(MAX(id), 0) FROM status_history",
            params![],
            |r| r.get(0),
        )?)
    }

    /// Calls `f` with each certificate whose status changed (issued, revoked, put on hold, hold
    /// lifted) after history position `after`, with its CA, the CA generation that issued it and
    /// its status now; returns the new position. This is how a running responder follows changes
    /// other processes make.
    pub fn status_changes_since(
        &self,
        after: i64,
        mut f: impl FnMut(CertKind, u32, &[u8], Option<(OffsetDateTime, RevocationReason)>),
    ) -> Result<i64, AuthorityError> {
        let mut last = after;
        self.connection().for_each(
            "SELECT h.id, c.kind, c.serial, c.status, c.reason, c.revoked_at, c.ca_generation \
             FROM status_history h JOIN certificates c ON c.id = h.cert WHERE h.id > ?1 ORDER BY h.id",
            params![after],
            |row| {
                last = row.get(0)?;
                let kind = match row.get::<String>(1)?.as_str() {
                    "sign" => CertKind::Signature,
                    _ => CertKind::Authentication,
                };
                let serial: Vec<u8> = row.get(2)?;
                let status = revocation(&row.get::<String>(3)?, row.get(4)?, row.get(5)?)?;
                f(kind, generation_of(row.get(6)?), &serial, status);
                Ok::<(), AuthorityError>(())
            },
        )?;
        Ok(last)
    }

    /// Calls `f` with every certificate `kind`'s CA issued to a card, in no particular order: the
    /// generation that issued it, its serial (unsigned big-endian) and, if it is revoked or on hold
    /// now, since when and why. This is what an OCSP responder or validity service loads its
    /// status snapshot from.
    pub fn for_each_certificate_status(
        &self,
        kind: CertKind,
        mut f: impl FnMut(u32, &[u8], Option<(OffsetDateTime, RevocationReason)>),
    ) -> Result<(), AuthorityError> {
        self.connection().for_each(
            "SELECT serial, status, reason, revoked_at, ca_generation FROM certificates WHERE kind = ?1",
            params![kind.as_str()],
            |row| {
                let serial: Vec<u8> = row.get(0)?;
                f(
                    generation_of(row.get(4)?),
                    &serial,
                    revocation(&row.get::<String>(1)?, row.get(2)?, row.get(3)?)?,
                );
                Ok::<(), AuthorityError>(())
            },
        )
    }
}

/// What a verifier is told when the authority has not issued a service certificate it needs.
fn not_issued_yet(role: ServiceRole, kind: CertKind) -> AuthorityError {
    AuthorityError::State(format!(
        "no valid {} certificate for the {} CA in the registry yet: start `jpki serve --role authority` \
         (or `--role all`) on the authority's data directory first",
        role.as_str(),
        kind.as_str()
    ))
}

/// A generation number from its registry column (always 1 or more there).
fn generation_of(column: i64) -> u32 {
    u32::try_from(column).unwrap_or(1)
}

/// A certificate's revocation from its registry columns: `None` while good; a hold is reason
/// certificateHold whatever the column says.
fn revocation(
    status: &str,
    reason: Option<u8>,
    revoked_at: Option<i64>,
) -> Result<Option<(OffsetDateTime, RevocationReason)>, AuthorityError> {
    if status == "good" {
        return Ok(None);
    }
    let at = from_ts(revoked_at.unwrap_or_default())?;
    let reason = match (status, reason.and_then(RevocationReason::from_code)) {
        ("hold", _) => RevocationReason::CertificateHold,
        (_, Some(r)) => r,
        (_, None) => RevocationReason::Unspecified,
    };
    Ok(Some((at, reason)))
}
