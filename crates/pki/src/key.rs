//! Signing keys of the authority (RSA-2048/SHA-256 or ECDSA P-384/SHA-384) and their encryption at rest
//! as standard PKCS#8 `ENCRYPTED PRIVATE KEY` (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC), which
//! `openssl pkey` can also open.
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use der::Decode;
use der::asn1::{AnyRef, BitString};
use pkcs8::pkcs5::pbes2;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::{PkiError, oid};

/// Key algorithm of an authority key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA-2048 with sha256WithRSAEncryption (today's JPKI).
    Rsa2048,
    /// ECDSA P-384 with ecdsa-with-SHA384 (planned for the next-generation card).
    P384,
}

impl KeyType {
    /// The CLI name: `rsa2048` or `p384`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa2048",
            Self::P384 => "p384",
        }
    }

    /// The signature AlgorithmIdentifier this key type signs with.
    pub fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match self {
            // RFC 4055: the parameters of sha256WithRSAEncryption MUST be NULL.
            Self::Rsa2048 => AlgorithmIdentifierOwned {
                oid: oid::SHA256_WITH_RSA,
                parameters: Some(AnyRef::NULL.into()),
            },
            // RFC 5758: ecdsa-with-SHA384 has absent parameters.
            Self::P384 => AlgorithmIdentifierOwned {
                oid: oid::ECDSA_WITH_SHA384,
                parameters: None,
            },
        }
    }
}

impl std::str::FromStr for KeyType {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rsa2048" => Ok(Self::Rsa2048),
            "p384" => Ok(Self::P384),
            other => Err(PkiError::Key(format!(
                "key type: {other:?} is not rsa2048 or p384"
            ))),
        }
    }
}

/// A private key that signs certificates and CRLs.
pub enum SigningKey {
    /// RSA-2048.
    Rsa(RsaKeyPair),
    /// ECDSA P-384.
    P384(EcdsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.key_type().as_str())
    }
}

fn key_err(what: &str) -> impl FnOnce(aws_lc_rs::error::Unspecified) -> PkiError + '_ {
    move |_| PkiError::Key(format!("{what} failed"))
}

impl SigningKey {
    /// Generates a fresh key of `key_type`.
    pub fn generate(key_type: KeyType) -> Result<Self, PkiError> {
        Ok(match key_type {
            KeyType::Rsa2048 => {
                Self::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(key_err("RSA key generation"))?)
            }
            KeyType::P384 => Self::P384(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_ASN1_SIGNING)
                    .map_err(key_err("P-384 key generation"))?,
            ),
        })
    }

    /// Parses an unencrypted PKCS#8 private key of either type.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, PkiError> {
        if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
            return Ok(Self::Rsa(k));
        }
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, der)
            .map(Self::P384)
            .map_err(|e| PkiError::Key(format!("private key: not an RSA or P-384 PKCS#8 key ({e})")))
    }

    /// The unencrypted PKCS#8 encoding (zeroized on drop).
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        let der = match self {
            Self::Rsa(k) => AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(k)
                .map_err(key_err("RSA key export"))?
                .as_ref()
                .to_vec(),
            Self::P384(k) => k
                .to_pkcs8v1()
                .map_err(key_err("P-384 key export"))?
                .as_ref()
                .to_vec(),
        };
        Ok(Zeroizing::new(der))
    }

    /// Which algorithm this key is.
    pub fn key_type(&self) -> KeyType {
        match self {
            Self::Rsa(_) => KeyType::Rsa2048,
            Self::P384(_) => KeyType::P384,
        }
    }

    /// The DER SubjectPublicKeyInfo of the public half.
    pub fn spki_der(&self) -> Result<Vec<u8>, PkiError> {
        match self {
            Self::Rsa(k) => Ok(k
                .public_key()
                .as_der()
                .map_err(key_err("RSA public key export"))?
                .as_ref()
                .to_vec()),
            Self::P384(k) => Ok(k
                .public_key()
                .as_der()
                .map_err(key_err("P-384 public key export"))?
                .as_ref()
                .to_vec()),
        }
    }

    /// Signs `msg` with this key's algorithm (SHA-256 PKCS#1 v1.5 or SHA-384 ECDSA, DER signature).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        match self {
            Self::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
                    .map_err(key_err("RSA signing"))?;
                Ok(sig)
            }
            Self::P384(k) => Ok(k
                .sign(&SystemRandom::new(), msg)
                .map_err(key_err("ECDSA signing"))?
                .as_ref()
                .to_vec()),
        }
    }

    /// Encrypts the key under `passphrase` as a PEM `ENCRYPTED PRIVATE KEY` (PKCS#8 PBES2).
    pub fn to_encrypted_pem(
        &self,
        passphrase: &[u8],
        iterations: u32,
    ) -> Result<Zeroizing<String>, PkiError> {
        encrypt_pkcs8_pem(&self.to_pkcs8()?, passphrase, iterations)
    }

    /// Decrypts a PEM `ENCRYPTED PRIVATE KEY` written by [`SigningKey::to_encrypted_pem`] (or openssl).
    pub fn from_encrypted_pem(pem: &str, passphrase: &[u8]) -> Result<Self, PkiError> {
        Self::from_pkcs8(&decrypt_pkcs8_pem(pem, passphrase)?)
    }
}

/// Encrypts a PKCS#8 private key (DER) under `passphrase` as a PEM `ENCRYPTED PRIVATE KEY`
/// (PBES2: PBKDF2-SHA256 with `iterations`, AES-256-CBC).
pub fn encrypt_pkcs8_pem(
    plain: &[u8],
    passphrase: &[u8],
    iterations: u32,
) -> Result<Zeroizing<String>, PkiError> {
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rng.fill(&mut salt).map_err(key_err("random salt"))?;
    rng.fill(&mut iv).map_err(key_err("random IV"))?;
    let params = pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(iterations, &salt, iv)
        .map_err(|e| PkiError::Key(format!("key encryption parameters: {e}")))?;
    let info =
        pkcs8::PrivateKeyInfoRef::try_from(plain).map_err(|e| PkiError::Key(format!("private key: {e}")))?;
    let doc = info
        .encrypt_with_params(params, passphrase)
        .map_err(|e| PkiError::Key(format!("key encryption: {e}")))?;
    doc.to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .map_err(|e| PkiError::Key(format!("key encoding: {e}")))
}

/// Decrypts a PEM `ENCRYPTED PRIVATE KEY` (see [`encrypt_pkcs8_pem`]) to its PKCS#8 DER.
pub fn decrypt_pkcs8_pem(pem: &str, passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let (label, der) = der::Document::from_pem(pem)
        .map_err(|e| PkiError::Key(format!("authority key file: not PEM ({e})")))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(PkiError::Key(format!(
            "authority key file: PEM label is {label:?}, expected ENCRYPTED PRIVATE KEY"
        )));
    }
    let enc = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_bytes())
        .map_err(|e| PkiError::Key(format!("authority key file: {e}")))?;
    let plain = enc.decrypt(passphrase).map_err(|_| PkiError::WrongPassphrase)?;
    Ok(Zeroizing::new(plain.as_bytes().to_vec()))
}

/// A subject public key presented for certification (the card generated the pair; only this half
/// leaves it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectPublicKey {
    spki: SubjectPublicKeyInfoOwned,
    der: Vec<u8>,
}

impl SubjectPublicKey {
    /// Parses a DER SubjectPublicKeyInfo and checks that it is RSA-2048 (e = 65537) or P-384 and that
    /// the key itself parses.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der).map_err(PkiError::der("subject public key"))?;
        let raw = spki.subject_public_key.raw_bytes();
        if spki.algorithm.oid == oid::RSA_ENCRYPTION {
            signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, raw)
                .parse()
                .map_err(|e| PkiError::Key(format!("subject public key: not a usable RSA key ({e})")))?;
            let bits = rsa_modulus_bits(raw)?;
            if bits != 2048 {
                return Err(PkiError::Key(format!(
                    "subject public key: RSA-{bits}, this profile takes RSA-2048"
                )));
            }
        } else if spki.algorithm.oid == oid::EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
            if curve != Some(oid::SECP384R1) {
                return Err(PkiError::Key("subject public key: EC key not on P-384".into()));
            }
            signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_ASN1, raw)
                .parse()
                .map_err(|e| PkiError::Key(format!("subject public key: not a usable P-384 key ({e})")))?;
        } else {
            return Err(PkiError::Key(format!(
                "subject public key: algorithm {} is not RSA or EC",
                spki.algorithm.oid
            )));
        }
        Ok(Self {
            spki,
            der: der.to_vec(),
        })
    }

    /// The DER encoding.
    pub fn as_der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed structure.
    pub fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    /// The subjectPublicKey BIT STRING (what the key identifier hashes).
    pub fn bits(&self) -> &BitString {
        &self.spki.subject_public_key
    }
}

/// Bit length of the modulus of a PKCS#1 RSAPublicKey.
fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Result<usize, PkiError> {
    #[derive(der::Sequence)]
    struct RsaPublicKey<'a> {
        modulus: der::asn1::UintRef<'a>,
        _public_exponent: der::asn1::UintRef<'a>,
    }
    let k = RsaPublicKey::from_der(rsa_public_key).map_err(PkiError::der("RSA public key"))?;
    let m = k.modulus.as_bytes();
    let lead = m.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
    Ok(m.len().saturating_sub(1) * 8 + lead)
}

/// SHA-1 over the subjectPublicKey bits: RFC 5280 §4.2.1.2 method 1 key identifier.
pub fn key_identifier(bits: &BitString) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, bits.raw_bytes())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_pem_round_trip_and_wrong_passphrase() {
        for kt in [KeyType::Rsa2048, KeyType::P384] {
            let k = SigningKey::generate(kt).unwrap();
            let pem = k.to_encrypted_pem(b"correct horse", 1000).unwrap();
            assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
            let back = SigningKey::from_encrypted_pem(&pem, b"correct horse").unwrap();
            assert_eq!(back.spki_der().unwrap(), k.spki_der().unwrap());
            assert!(matches!(
                SigningKey::from_encrypted_pem(&pem, b"wrong"),
                Err(PkiError::WrongPassphrase)
            ));
            let pk = SubjectPublicKey::from_der(&k.spki_der().unwrap()).unwrap();
            assert_eq!(pk.as_der(), k.spki_der().unwrap());
        }
    }

    #[test]
    fn subject_key_rejects_garbage() {
        assert!(SubjectPublicKey::from_der(b"\x30\x03\x02\x01\x00").is_err());
    }
}
