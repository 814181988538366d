//! The provider's ID-token signing keys (ES256 on P-256, RS256 on RSA-2048) and their JWKS.
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::OidcError;

/// An algorithm ID tokens are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (OpenID Connect's default).
    RS256,
}

impl SigningAlg {
    /// Both, in the order discovery lists them.
    pub const ALL: [Self; 2] = [Self::RS256, Self::ES256];

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    /// From its JOSE name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::ES256),
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }

    pub(crate) fn jose(self) -> Algorithm {
        match self {
            Self::ES256 => Algorithm::ES256,
            Self::RS256 => Algorithm::RS256,
        }
    }
}

/// One signing key: its id, the key, and its public JWK.
struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

/// The provider's signing keys, one per algorithm. The private keys are PKCS#8 DER, kept by the
/// caller (encrypted at rest) and given back to [`SigningKeys::from_pkcs8`].
pub struct SigningKeys {
    es256: Key,
    rs256: Key,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("es256", &self.es256.kid)
            .field("rs256", &self.rs256.kid)
            .finish_non_exhaustive()
    }
}

/// A private key as PKCS#8 DER, wiped when dropped.
pub type Pkcs8Der = Zeroizing<Vec<u8>>;

/// New private keys (PKCS#8 DER) for [`SigningKeys::from_pkcs8`]: a P-256 and an RSA-2048 key.
pub fn generate_pkcs8() -> Result<(Pkcs8Der, Pkcs8Der), OidcError> {
    let ec = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map_err(|_| OidcError::Key("cannot generate a P-256 key".into()))?;
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| OidcError::Key("cannot generate an RSA-2048 key".into()))?;
    let rsa_der = rsa
        .as_der()
        .map_err(|_| OidcError::Key("cannot encode the RSA key".into()))?;
    Ok((
        Zeroizing::new(ec.as_ref().to_vec()),
        Zeroizing::new(rsa_der.as_ref().to_vec()),
    ))
}

/// The PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (what the JWS signer takes).
fn pkcs1_of(pkcs8: &[u8]) -> Result<Zeroizing<Vec<u8>>, OidcError> {
    use pkcs8::der::Decode as _;
    let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8)
        .map_err(|e| OidcError::Key(format!("RSA key: not PKCS#8: {e}")))?;
    Ok(Zeroizing::new(info.private_key.as_bytes().to_vec()))
}

/// The key id: the RFC 7638 thumbprint of the public key.
fn key(alg: SigningAlg, encoding: EncodingKey) -> Result<Key, OidcError> {
    let mut jwk = Jwk::from_encoding_key(&encoding, alg.jose())
        .map_err(|e| OidcError::Key(format!("{}: {e}", alg.as_str())))?;
    let kid = jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256);
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(match alg {
        SigningAlg::ES256 => KeyAlgorithm::ES256,
        SigningAlg::RS256 => KeyAlgorithm::RS256,
    });
    Ok(Key { kid, encoding, jwk })
}

impl SigningKeys {
    /// The keys from their PKCS#8 DER (see [`generate_pkcs8`]).
    pub fn from_pkcs8(es256: &[u8], rs256: &[u8]) -> Result<Self, OidcError> {
        // Checked here, so that signing never meets a bad key.
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, es256)
            .map_err(|_| OidcError::Key("ES256: not a P-256 PKCS#8 key".into()))?;
        aws_lc_rs::rsa::KeyPair::from_pkcs8(rs256)
            .map_err(|_| OidcError::Key("RS256: not an RSA PKCS#8 key".into()))?;
        Ok(Self {
            es256: key(SigningAlg::ES256, EncodingKey::from_ec_der(es256))?,
            rs256: key(SigningAlg::RS256, EncodingKey::from_rsa_der(&pkcs1_of(rs256)?))?,
        })
    }

    /// New keys (for tests and sandboxes; a server keeps its keys with [`generate_pkcs8`]).
    pub fn generate() -> Result<Self, OidcError> {
        let (ec, rsa) = generate_pkcs8()?;
        Self::from_pkcs8(&ec, &rsa)
    }

    fn get(&self, alg: SigningAlg) -> &Key {
        match alg {
            SigningAlg::ES256 => &self.es256,
            SigningAlg::RS256 => &self.rs256,
        }
    }

    /// The public keys, as the JWKS endpoint serves them.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.rs256.jwk.clone(), self.es256.jwk.clone()],
        }
    }

    /// A compact JWS of `claims` signed with `alg`, its `kid` in the header.
    pub(crate) fn sign<T: Serialize>(&self, alg: SigningAlg, claims: &T) -> Result<String, OidcError> {
        let key = self.get(alg);
        let mut header = jsonwebtoken::Header::new(alg.jose());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| OidcError::Key(format!("signing an ID token: {e}")))
    }
}

/// A relying party's JWKS document (`jpki rp add --jwks FILE`), checked for private_key_jwt:
/// JSON `{"keys": [...]}` with at least one key, each an EC P-256/P-384 or RSA (2048 bits or more)
/// public key; no private parts (`d` and the like: the relying party keeps those), no symmetric
/// keys, and `use`, when given, "sig".
pub fn check_client_jwks(text: &str) -> Result<JwkSet, OidcError> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
    let bad = |why: String| OidcError::Input(format!("JWKS: {why}"));
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let keys = raw
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| bad("no \"keys\" array".into()))?;
    if keys.is_empty() {
        return Err(bad("no key".into()));
    }
    for (i, k) in keys.iter().enumerate() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            if k.get(private).is_some() {
                return Err(bad(format!(
                    "key {i} has a private part ({private:?}): register the public keys only"
                )));
            }
        }
    }
    let set: JwkSet = serde_json::from_value(raw).map_err(|e| bad(e.to_string()))?;
    for (i, k) in set.keys.iter().enumerate() {
        match &k.algorithm {
            AlgorithmParameters::EllipticCurve(p)
                if matches!(p.curve, EllipticCurve::P256 | EllipticCurve::P384) => {}
            AlgorithmParameters::RSA(p) => {
                use base64::Engine as _;
                let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p.n.trim_end_matches('='))
                    .map_err(|_| bad(format!("key {i}: n is not base64url")))?;
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if bits < 2048 {
                    return Err(bad(format!(
                        "key {i}: RSA key of {bits} bits, 2048 or more needed"
                    )));
                }
            }
            _ => return Err(bad(format!("key {i}: only EC P-256/P-384 and RSA public keys"))),
        }
        if k.common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return Err(bad(format!("key {i}: \"use\" must be \"sig\"")));
        }
        if DecodingKey::from_jwk(k).is_err() {
            return Err(bad(format!("key {i}: not a usable public key")));
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn client_jwks_take_public_signing_keys_only() {
        let keys = SigningKeys::generate().unwrap();
        let published = serde_json::to_string(&keys.jwks()).unwrap();
        assert_eq!(check_client_jwks(&published).unwrap().keys.len(), 2);
        let mut with_private: serde_json::Value = serde_json::from_str(&published).unwrap();
        with_private["keys"][0]["d"] = "AAAA".into();
        let e = check_client_jwks(&with_private.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("private part"), "{e}");
        for bad in [
            "",
            "{}",
            r#"{"keys": []}"#,
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
            r#"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#,
        ] {
            assert!(check_client_jwks(bad).is_err(), "{bad}");
        }
        let mut enc: serde_json::Value = serde_json::from_str(&published).unwrap();
        enc["keys"][0]["use"] = "enc".into();
        assert!(check_client_jwks(&enc.to_string()).is_err());
    }
}
