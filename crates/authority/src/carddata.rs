//! What the authority writes onto a card besides its certificates: the text-assist and card-face
//! data signed with its card-data key, the 住基 and common-AP records, the 照合番号 and the
//! card's management key.
//!
//! The card-data key is an RSA-2048 key (whatever the CA key type: the card's formats carry a
//! 256-byte modulus) kept beside the CA keys and encrypted under the same passphrase. Its
//! card-verifiable certificate is self-issued and goes into EF 0004 of the text-assist and
//! card-face APs; clients check the card's data against it.
//!
//! The per-card management key, which lets the authority unblock a PIN, is
//! HMAC-SHA-256(master, card ID). The master is the SHA-256 of the card-data key's (deterministic)
//! PKCS#1 v1.5 signature over a fixed label: only the holder of the card-data key can compute it,
//! and no separate secret has to be stored.

use jpki_card::layout::{self, AssistFacts, CvCert, FaceData};
use jpki_card::{Personalization, face};
use jpki_model::era;
use jpki_pki::{KeyType, SigningKey};
use zeroize::Zeroizing;

use crate::authority::{Authority, IssuedCard, KEY_DIR, random};
use crate::{AuthorityError, write_atomically};

/// The card-data key file, relative to the data directory.
pub(crate) const CARD_DATA_KEY: &str = "card-data.key.pem";
/// The public CV certificate of the card-data key, in the data directory.
pub const CARD_DATA_CVC: &str = "card-data.cvc";
/// The municipality code written to cards (GET DATA F0, common AP record, card face EF 0003).
/// One authority stands for all municipalities here: Chiyoda-ku, Tokyo.
pub const MUNICIPALITY: &str = "131016";
const MASTER_LABEL: &[u8] = b"openjpki card management master v1";

/// The card-data key, decrypted: signs card data and derives management keys.
pub struct CardDataSigner {
    key: SigningKey,
    cvc: Vec<u8>,
    master: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for CardDataSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardDataSigner(..)")
    }
}

fn failed(what: &str) -> impl FnOnce(jpki_card::CardError) -> AuthorityError + '_ {
    move |e| AuthorityError::State(format!("{what}: {e}"))
}

impl CardDataSigner {
    fn new(key: SigningKey) -> Result<Self, AuthorityError> {
        let spki = key.spki_der()?;
        let (modulus, exponent) = layout::rsa_components_from_spki(&spki).map_err(failed("card-data key"))?;
        let id = layout::key_id(&modulus);
        let body = CvCert::body(&id, &id, &modulus, &exponent);
        let sig = key.sign(&body)?;
        let cvc = CvCert::assemble(&body, &sig).map_err(failed("card-data CV certificate"))?;
        let master = Zeroizing::new(jpki_card::sha256(&key.sign(MASTER_LABEL)?).to_vec());
        Ok(Self { key, cvc, master })
    }

    /// The card-verifiable certificate of the card-data key.
    pub fn cv_certificate(&self) -> &[u8] {
        &self.cvc
    }

    /// The management key of card `card_id`.
    pub fn management_key(&self, card_id: &str) -> Zeroizing<Vec<u8>> {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.master);
        Zeroizing::new(aws_lc_rs::hmac::sign(&key, card_id.as_bytes()).as_ref().to_vec())
    }

    fn sign(&self, tbs: &[u8]) -> Result<Vec<u8>, AuthorityError> {
        Ok(self.key.sign(tbs)?)
    }
}

/// Digits and hyphens in full width, as the text-assist AP stores the address.
fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(u32::from(c) - 0x30 + 0xFF10).unwrap_or(c),
            '-' => '－',
            _ => c,
        })
        .collect()
}

/// Creates the card-data key in `dir` (encrypted under `passphrase`) and publishes its CV
/// certificate.
pub(crate) fn create_key(
    dir: &std::path::Path,
    passphrase: &[u8],
    iterations: u32,
) -> Result<CardDataSigner, AuthorityError> {
    let key = SigningKey::generate(KeyType::Rsa2048)?;
    let pem = key.to_encrypted_pem(passphrase, iterations)?;
    write_atomically(&dir.join(KEY_DIR).join(CARD_DATA_KEY), pem.as_bytes(), 0o600)?;
    let signer = CardDataSigner::new(key)?;
    write_atomically(&dir.join(CARD_DATA_CVC), signer.cv_certificate(), 0o644)?;
    Ok(signer)
}

impl Authority {
    /// Decrypts the card-data key with `passphrase`; creates it (and publishes its CV
    /// certificate as `card-data.cvc` in the data directory) when this authority has none yet.
    pub fn card_data_signer(&self, passphrase: &[u8]) -> Result<CardDataSigner, AuthorityError> {
        let path = self.dir().join(KEY_DIR).join(CARD_DATA_KEY);
        let key = match std::fs::read_to_string(&path) {
            Ok(pem) => SigningKey::from_encrypted_pem(&Zeroizing::new(pem), passphrase)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // An authority from before card data: the CA keys prove the passphrase before a
                // new key is encrypted under it.
                self.issuers(passphrase)?;
                return create_key(self.dir(), passphrase, crate::InitOptions::DEFAULT_KDF_ITERATIONS);
            }
            Err(e) => return Err(AuthorityError::io(&path)(e)),
        };
        let signer = CardDataSigner::new(key)?;
        let cvc_path = self.dir().join(CARD_DATA_CVC);
        if std::fs::read(&cvc_path).ok().as_deref() != Some(signer.cv_certificate()) {
            write_atomically(&cvc_path, signer.cv_certificate(), 0o644)?;
        }
        Ok(signer)
    }

    /// The published CV certificate of the card-data key, if one was created.
    pub fn card_data_cvc(&self) -> Option<Vec<u8>> {
        std::fs::read(self.dir().join(CARD_DATA_CVC)).ok()
    }

    /// Everything the authority writes to a newly issued card besides its certificates, and the
    /// security code printed on its face. `card_key_spki` is the card's own public key.
    pub fn personalization(
        &self,
        card: &IssuedCard,
        card_key_spki: &[u8],
        signer: &CardDataSigner,
    ) -> Result<(Personalization, String), AuthorityError> {
        let r = self.resident(card.resident_id)?;
        let facts = &r.facts;
        let card_id = card.card_id.to_string();
        let number = r.individual_number.to_string();
        let birth = facts.birth_date;
        let birth8 = format!(
            "{:04}{:02}{:02}",
            birth.year(),
            u8::from(birth.month()),
            birth.day()
        );
        let expiry8: String = card.expires_on.chars().filter(char::is_ascii_digit).collect();
        let expiry_year: i32 = expiry8.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
        let code_bytes = random::<4>()?;
        let security_code: String = code_bytes.iter().map(|b| char::from(b'0' + b % 10)).collect();
        let collation_b = era::CollationNumberB::new(birth, expiry_year, &security_code)?;
        let birth_key = era::collation_birth(birth).ok_or_else(|| {
            AuthorityError::State("birth date does not fit the card's era-year birth key".into())
        })?;
        let sex = facts.sex.code().to_string();
        let (modulus, _) = layout::rsa_components_from_spki(card_key_spki).map_err(failed("card key"))?;
        let issued8 = {
            let d = self.now().date();
            format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
        };

        // Text-assist AP.
        let ef1 = layout::assist_ef0001(&number).map_err(failed("text-assist EF 0001"))?;
        let ef2 = layout::assist_ef0002(&AssistFacts {
            name: facts.name.as_str().to_owned(),
            address: full_width(facts.address.as_str()),
            birth: birth8.clone(),
            sex: sex.clone(),
        })
        .map_err(failed("text-assist EF 0002"))?;
        let tbs = layout::assist_ef0003_tbs(&ef1, &ef2).map_err(failed("text-assist EF 0003"))?;
        let ef3 = layout::assist_ef0003(&tbs, &signer.sign(&tbs)?);

        // Card-face AP.
        let face_tbs1 = layout::face_ef0001_tbs(&birth8, &modulus).map_err(failed("card-face EF 0001"))?;
        let face1 = layout::face_ef0001(&face_tbs1, &signer.sign(&face_tbs1)?);
        let data = FaceData {
            birth: birth8.clone(),
            sex,
            card_public_modulus: modulus.clone(),
            name_png: face::text_png(facts.name.as_str(), 16).map_err(failed("name image"))?,
            address_png: face::text_png(facts.address.as_str(), 24).map_err(failed("address image"))?,
            photo: face::photo_png(number.as_bytes()).map_err(failed("photo"))?,
            expiry: expiry8.clone(),
            security_code_png: face::digits_png(&security_code).map_err(failed("security code image"))?,
        };
        let face2 = layout::face_ef0002(&data, &signer.sign(&layout::face_ef0002_tbs(&data))?)
            .map_err(failed("card-face EF 0002"))?;
        let face3 = layout::face_ef0003(&card_id, &issued8, MUNICIPALITY, &expiry8)
            .map_err(failed("card-face EF 0003"))?;
        let number_png = face::digits_png(&number).map_err(failed("number image"))?;
        let tbs5 = layout::face_ef0005_tbs(&number_png, &number).map_err(failed("card-face EF 0005"))?;
        let face5 = layout::face_ef0005(&tbs5, &signer.sign(&tbs5)?);

        let p = Personalization {
            card_id: card_id.clone(),
            management_key: signer.management_key(&card_id).to_vec(),
            auth_ca: self.ca_cert(jpki_model::CertKind::Authentication)?,
            sign_ca: if card.sign.is_some() {
                self.ca_cert(jpki_model::CertKind::Signature)?
            } else {
                Vec::new()
            },
            assist: [ef1, ef2, ef3],
            cv_cert: signer.cv_certificate().to_vec(),
            face: [face1, face2, face3, face5],
            juki: layout::juki_ef0001(&r.resident_code.to_string()).map_err(failed("住基 EF 0001"))?,
            common_record: layout::common_record(&card_id, &MUNICIPALITY[..5], &expiry8)
                .map_err(failed("common AP record"))?,
            collation_a: number,
            collation_b: collation_b.as_str().to_owned(),
            birth_key,
            municipality: MUNICIPALITY.to_owned(),
            expiry: expiry8,
        };
        Ok((p, security_code))
    }
}
