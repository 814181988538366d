//! CA key rollover: a new root generation beside the old one (the real JPKI has had three).
//!
//! For each CA the rollover makes a new key (encrypted like the first, `keys/{kind}-ca-G.key.pem`),
//! the new self-signed root (generation G, named `… G<G>`, with its own CRL, ARL and OCSP paths), and
//! the two link certificates of RFC 4210 §4.4: NewWithOld (the new key certified by the old one: a
//! relying party that still trusts only the old root validates certificates of the new generation
//! through it) and OldWithNew (the old key certified by the new one: the other way round). From then
//! on the newest generation issues; every generation keeps publishing the CRLs of the certificates it
//! issued, and its ARL lists the link certificates it issued and revoked. `jpki crl publish` puts the
//! roots and the links beside the CRLs (`ca/{kind}-g2.cer`, `ca/{kind}-link-g1-g2.cer` …).
use jpki_db::params;
use jpki_model::{CertKind, Serial};
use jpki_pki::{Issuer, RootSpec, SigningKey};
use serde::Serialize;
use time::Duration;

use crate::authority::{Authority, KEY_DIR, event, random};
use crate::store::ts;
use crate::{AuthorityError, write_atomically};

/// What a rollover made for one CA.
#[derive(Debug, Clone, Serialize)]
pub struct RolloverReport {
    /// Which CA.
    pub kind: CertKind,
    /// The new generation.
    pub generation: u32,
    /// The new root (DER).
    #[serde(skip)]
    pub root: Vec<u8>,
    /// NewWithOld: the new key certified by the previous generation (DER).
    #[serde(skip)]
    pub new_with_old: Vec<u8>,
    /// OldWithNew: the previous generation's key certified by the new one (DER).
    #[serde(skip)]
    pub old_with_new: Vec<u8>,
    /// Serials (hex) of NewWithOld and OldWithNew.
    pub link_serials: [String; 2],
}

/// A fresh positive serial no certificate of the registry uses.
fn fresh_serial(tx: &jpki_db::Db) -> Result<Serial, AuthorityError> {
    loop {
        let s = Serial::from_be_bytes(&random::<16>()?.map(|b| b & 0x7f))?;
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = ?1) \
             OR EXISTS (SELECT 1 FROM service_certs WHERE serial = ?1) \
             OR EXISTS (SELECT 1 FROM ca_links WHERE serial = ?1)",
            params![s.as_be_bytes()],
            |r| r.get(0),
        )?;
        if !taken {
            return Ok(s);
        }
    }
}

impl Authority {
    /// Rolls both CAs over to a new key generation (see the module documentation), with keys
    /// encrypted under `passphrase` (`kdf_iterations` PBKDF2 rounds) and roots valid for
    /// `root_years`. All or nothing: the registry records both generations in one transaction.
    pub fn rollover(
        &mut self,
        passphrase: &[u8],
        kdf_iterations: u32,
        root_years: u8,
    ) -> Result<Vec<RolloverReport>, AuthorityError> {
        let issuers = self.issuers(passphrase)?;
        let now = self.now();
        let settings = self.settings().clone();
        let not_after = now
            .replace_year(now.year() + i32::from(root_years))
            .unwrap_or(now + Duration::days(7300));
        // Keys and certificates first (the key files are written before the transaction that
        // names them; a crash in between leaves unreferenced files the next rollover overwrites).
        let mut made = Vec::new();
        for kind in CertKind::ALL {
            let old = issuers.get(kind);
            let generation = old.generation() + 1;
            let key = SigningKey::generate(settings.key_type)?;
            let root_serial = Serial::from_be_bytes(&random::<16>()?.map(|b| b & 0x7f))?;
            let root = jpki_pki::issue_root(&RootSpec {
                kind,
                key: &key,
                serial: &root_serial,
                not_before: now,
                not_after,
                endpoints: &settings.endpoints,
                generation,
            })?;
            let rel = format!("{KEY_DIR}/{}-ca-{generation}.key.pem", kind.as_str());
            let pem = key.to_encrypted_pem(passphrase, kdf_iterations)?;
            write_atomically(&self.dir().join(&rel), pem.as_bytes(), 0o600)?;
            let new = Issuer::new(kind, key, root.clone())?;
            made.push((kind, generation, rel, root, new));
        }
        let tx = self.connection().begin_write()?;
        let mut reports = Vec::new();
        for (kind, generation, rel, root, new) in &made {
            let old = issuers.get(*kind);
            let current: i64 = tx.query_row(
                "SELECT MAX(generation) FROM cas WHERE kind = ?1",
                params![kind.as_str()],
                |r| r.get(0),
            )?;
            if current != i64::from(old.generation()) {
                return Err(AuthorityError::State(format!(
                    "the {} CA was rolled over meanwhile (generation {current})",
                    kind.as_str()
                )));
            }
            let new_with_old_serial = fresh_serial(&tx)?;
            let new_with_old =
                old.issue_link(root, &new_with_old_serial, now, not_after, &settings.endpoints)?;
            let old_with_new_serial = loop {
                let s = fresh_serial(&tx)?;
                if s != new_with_old_serial {
                    break s;
                }
            };
            let old_with_new = new.issue_link(
                old.cert_der(),
                &old_with_new_serial,
                now,
                not_after,
                &settings.endpoints,
            )?;
            tx.execute(
                "INSERT INTO cas (kind, generation, key_type, key_file, cert_der, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![kind.as_str(), i64::from(*generation), settings.key_type.as_str(), rel, root, ts(now)],
            )?;
            for (from, to, serial, der) in [
                (old.generation(), *generation, &new_with_old_serial, &new_with_old),
                (*generation, old.generation(), &old_with_new_serial, &old_with_new),
            ] {
                tx.execute(
                    "INSERT INTO ca_links (kind, issuer_generation, subject_generation, serial, der, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![kind.as_str(), i64::from(from), i64::from(to), serial.as_be_bytes(), der, ts(now)],
                )?;
            }
            event(
                &tx,
                &self.operator,
                now,
                "ca-rollover",
                None,
                None,
                &format!(
                    "{} CA generation {generation}; links {} (new with old), {} (old with new)",
                    kind.as_str(),
                    new_with_old_serial.to_hex(),
                    old_with_new_serial.to_hex()
                ),
            )?;
            reports.push(RolloverReport {
                kind: *kind,
                generation: *generation,
                root: root.clone(),
                new_with_old,
                old_with_new,
                link_serials: [new_with_old_serial.to_hex(), old_with_new_serial.to_hex()],
            });
        }
        tx.commit()?;
        Ok(reports)
    }

    /// Every generation's root of `kind`, oldest first: the trust anchors a verifier needs.
    pub fn ca_certs(&self, kind: CertKind) -> Result<Vec<(u32, Vec<u8>)>, AuthorityError> {
        let rows: Vec<(i64, Vec<u8>)> = self.connection().query_map(
            "SELECT generation, cert_der FROM cas WHERE kind = ?1 ORDER BY generation",
            params![kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows
            .into_iter()
            .map(|(g, der)| (u32::try_from(g).unwrap_or(0), der))
            .collect())
    }

    /// The link certificates of `kind`'s CA: (issuing generation, subject generation, DER).
    pub fn ca_links(&self, kind: CertKind) -> Result<Vec<(u32, u32, Vec<u8>)>, AuthorityError> {
        let rows: Vec<(i64, i64, Vec<u8>)> = self.connection().query_map(
            "SELECT issuer_generation, subject_generation, der FROM ca_links WHERE kind = ?1 \
             ORDER BY issuer_generation, subject_generation",
            params![kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(rows
            .into_iter()
            .map(|(a, b, der)| (u32::try_from(a).unwrap_or(0), u32::try_from(b).unwrap_or(0), der))
            .collect())
    }
}
