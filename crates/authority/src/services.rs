//! The authority's own service certificates: today the time-stamp authority (RFC 3161) that gives
//! signatures their B-T time-stamps. Its key is generated here, encrypted under the authority's
//! passphrase beside the CA keys, and certified by the signature CA (keyUsage digitalSignature,
//! extendedKeyUsage timeStamping only and critical, CRL distribution point and caIssuers like any
//! certificate of that CA), so verifiers validate a time-stamp with the same trust anchors and CRLs.
use jpki_model::{CertKind, Serial};
use jpki_pki::{SigningKey, SubjectPublicKey};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use time::Duration;
use zeroize::Zeroizing;

use crate::authority::{Authority, KEY_DIR, event, random};
use crate::store::ts;
use crate::{AuthorityError, InitOptions, write_atomically};

/// Validity of a TSA certificate (capped by the root's): time-stamps stay verifiable for as long.
const TSA_YEARS: i64 = 10;

/// A decrypted TSA key with its certificate and the chain up to the root.
#[derive(Debug)]
pub struct TsaCredentials {
    /// The private key.
    pub key: SigningKey,
    /// The TSA certificate (DER).
    pub cert_der: Vec<u8>,
    /// The issuing root (DER).
    pub chain: Vec<Vec<u8>>,
}

impl Authority {
    /// The current TSA certificate, if one was issued and is still valid.
    pub fn tsa_certificate(&self) -> Result<Option<Vec<u8>>, AuthorityError> {
        Ok(self.current_tsa()?.map(|(_, der)| der))
    }

    fn current_tsa(&self) -> Result<Option<(String, Vec<u8>)>, AuthorityError> {
        Ok(self
            .connection()
            .query_row(
                "SELECT key_file, der FROM service_certs WHERE role = 'tsa' AND status = 'good' \
                 AND not_after > ?1 ORDER BY id DESC LIMIT 1",
                [ts(self.now())],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The TSA key and certificate, decrypted with `passphrase`; the first call on a data directory
    /// (or after the certificate expired) generates the key and has the signature CA certify it.
    pub fn tsa_credentials(&mut self, passphrase: &[u8]) -> Result<TsaCredentials, AuthorityError> {
        // An existing TSA needs only its own key decrypted, not the CA keys.
        if let Some((file, cert_der)) = self.current_tsa()? {
            let path = self.dir().join(&file);
            let pem = Zeroizing::new(std::fs::read_to_string(&path).map_err(AuthorityError::io(&path))?);
            let key = SigningKey::from_encrypted_pem(&pem, passphrase)?;
            return Ok(TsaCredentials {
                key,
                cert_der,
                chain: vec![self.ca_cert(CertKind::Signature)?],
            });
        }
        let issuers = self.issuers(passphrase)?;
        let issuer = issuers.get(CertKind::Signature);
        let root = issuer.cert_der().to_vec();
        let key = SigningKey::generate(self.settings().key_type)?;
        let spki = SubjectPublicKey::from_der(&key.spki_der()?)?;
        let now = self.now();
        let root_end = jpki_pki::x509::ParsedCert::from_der(&root)?.not_after;
        let not_after = (now + Duration::days(365 * TSA_YEARS)).min(root_end);
        let shards = self.settings().shards;
        let endpoints = self.settings().endpoints.clone();
        let generation: i64 =
            self.connection()
                .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM service_certs", [], |r| {
                    r.get(0)
                })?;
        let rel = format!("{KEY_DIR}/tsa-{generation}.key.pem");
        // Written before the transaction that names it; a crash in between leaves an unreferenced
        // file that the next attempt overwrites.
        let pem = key.to_encrypted_pem(passphrase, InitOptions::DEFAULT_KDF_ITERATIONS)?;
        write_atomically(&self.dir().join(&rel), pem.as_bytes(), 0o600)?;
        let tx = self
            .conn()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (serial, shard) = loop {
            let r = random::<16>()?;
            let shard = u16::from_be_bytes([r[0], r[1]]) % shards;
            let serial = Serial::generate(r, shard);
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = ?1) \
                 OR EXISTS (SELECT 1 FROM service_certs WHERE serial = ?1)",
                [serial.as_be_bytes()],
                |r| r.get(0),
            )?;
            if !taken {
                break (serial, shard);
            }
        };
        let cert_der = issuer.issue_tsa(&serial, &spki, now, not_after, &endpoints)?;
        tx.execute(
            "INSERT INTO service_certs (serial, role, ca_kind, key_file, shard, not_before, not_after, \
             status, issued_at, der) VALUES (?1, 'tsa', 'sign', ?2, ?3, ?4, ?5, 'good', ?4, ?6)",
            params![serial.as_be_bytes(), rel, shard, ts(now), ts(not_after), cert_der],
        )?;
        event(
            &tx,
            now,
            "tsa-certificate",
            None,
            None,
            &format!("serial {}", serial.to_hex()),
        )?;
        tx.commit()?;
        Ok(TsaCredentials {
            key,
            cert_der,
            chain: vec![root],
        })
    }
}
