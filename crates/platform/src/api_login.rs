//! Logging in with the card (the OpenID Connect provider's side, docs/LOGIN.md): the card signed the
//! provider's statement with its authentication key, and with its signature key when the relying
//! party asks for the four facts. This checks each certificate as the validity check does (issued
//! by one of our CAs, of the right kind, good now and within its validity period), each signature
//! over the statement, and that both certificates belong to the same person.
use jpki_model::CertKind;
use jpki_pki::x509::Hash;
use jpki_sig::report::Facts;
use time::OffsetDateTime;

use crate::Api;
use crate::api::{Checked, PersonRefs, Presented, unsigned};

/// A certificate from the card and its signature over the login statement.
#[derive(Debug, Clone, Copy)]
pub struct CardProof<'a> {
    /// The certificate, DER.
    pub certificate: &'a [u8],
    /// The PKCS#1 v1.5 SHA-256 signature over the statement.
    pub signature: &'a [u8],
}

/// Who logged in.
#[derive(Debug, Clone)]
pub struct CardLogin {
    /// The authentication certificate's serial (unsigned big-endian).
    pub auth_serial: Vec<u8>,
    /// The four facts from the signature certificate, when it was presented.
    pub facts: Option<Facts>,
    /// The certificates checked (for the person's access records).
    pub checked: Vec<Checked>,
}

impl Api {
    /// Checks one certificate of `kind` and its signature over `statement`.
    fn login_certificate(
        &self,
        kind: CertKind,
        proof: CardProof<'_>,
        statement: &[u8],
        now: OffsetDateTime,
    ) -> Result<Presented, String> {
        let what = kind.as_str();
        let p = self.presented_der(proof.certificate).map_err(|(_, body)| {
            format!(
                "{what} certificate: {}",
                body["error"].as_str().unwrap_or("unusable")
            )
        })?;
        if p.kind != kind {
            return Err(format!(
                "the {what} certificate is a {} certificate",
                p.kind.as_str()
            ));
        }
        let (status, _, _, valid) = self.status_of(&p, now);
        if !valid {
            return Err(match status {
                "good" => format!("the {what} certificate is outside its validity period"),
                "on-hold" => format!(
                    "この電子証明書は紛失届により一時停止中です。カードが見つかったら市区町村の窓口で解除を申請してください / \
                     the {what} certificate is on hold after a loss report: if the card turns up, the municipal \
                     office lifts the hold (`jpki card found`); if not, it is revoked and a new card issued"
                ),
                "revoked" => format!(
                    "この電子証明書は失効しています / the {what} certificate is revoked: the municipal office issues new ones"
                ),
                other => format!("the {what} certificate is {other}"),
            });
        }
        if !p
            .cert
            .public_key
            .verify_with_hash(Hash::Sha256, statement, proof.signature)
        {
            return Err(format!(
                "the card's {what} signature does not verify with its certificate"
            ));
        }
        Ok(p)
    }

    /// Checks a sign transaction's answer: `certificate` is a signature certificate of ours valid
    /// `now`, and `signature` is its key's signature over the SHA-256 `digest`. What was checked,
    /// for the person's access records.
    pub fn sign_transaction(
        &self,
        digest: &[u8; 32],
        certificate: &[u8],
        signature: &[u8],
        now: OffsetDateTime,
    ) -> Result<Checked, String> {
        let what = "signature";
        let p = self.presented_der(certificate).map_err(|(_, body)| {
            format!(
                "{what} certificate: {}",
                body["error"].as_str().unwrap_or("unusable")
            )
        })?;
        if p.kind != CertKind::Signature {
            return Err(format!("the certificate is a {} certificate", p.kind.as_str()));
        }
        let (status, _, _, valid) = self.status_of(&p, now);
        if !valid {
            return Err(match status {
                "good" => "the signature certificate is outside its validity period".to_owned(),
                other => format!("the signature certificate is {other}"),
            });
        }
        if !p.cert.public_key.verify_sha256_digest(digest, signature) {
            return Err("the card's signature does not verify with its certificate".into());
        }
        Ok(Checked::of(&p, "sign transaction", "signed"))
    }

    /// Checks a card's answer to a login challenge: `auth` (required) and `sign` (when the four
    /// facts are asked for), each a certificate of ours that is valid `now` and a signature over
    /// `statement`. Both must be the same person's (`people` gives the platform's reference to
    /// each holder). Errors are one line, for the person.
    pub fn card_login(
        &self,
        statement: &[u8],
        auth: CardProof<'_>,
        sign: Option<CardProof<'_>>,
        people: &dyn PersonRefs,
        now: OffsetDateTime,
    ) -> Result<CardLogin, String> {
        let a = self.login_certificate(CertKind::Authentication, auth, statement, now)?;
        let auth_serial = unsigned(&a.cert.serial).to_vec();
        let mut checked = vec![Checked::of(&a, "login", "valid")];
        let facts = match sign {
            None => None,
            Some(proof) => {
                let s = self.login_certificate(CertKind::Signature, proof, statement, now)?;
                let sign_serial = unsigned(&s.cert.serial).to_vec();
                match (people.person_ref(&auth_serial), people.person_ref(&sign_serial)) {
                    (Some(x), Some(y)) if x == y => {}
                    _ => {
                        return Err(
                            "the signature certificate and the authentication certificate are not the same person's"
                                .into(),
                        );
                    }
                }
                let san = s
                    .cert
                    .jpki_san
                    .as_ref()
                    .ok_or("the signature certificate carries no basic facts")?;
                checked.push(Checked::of(&s, "login (basic facts)", "valid"));
                Some(Facts::from_san(san))
            }
        };
        Ok(CardLogin {
            auth_serial,
            facts,
            checked,
        })
    }
}
