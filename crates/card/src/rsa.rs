//! The card's RSA-2048 private-key operations.
//!
//! A real card pads whatever the client hands it: `80 2A 00 80` carries a DigestInfo (SHA-256,
//! SHA-1 from older clients, anything) and the card applies PKCS#1 v1.5 type-1 padding and the
//! private-key operation. aws-lc-rs only signs messages it hashes itself, so the raw operation
//! comes from aws-lc-sys — the same AWS-LC library aws-lc-rs links, constant-time and blinded —
//! through the three calls below. Keys are generated and stored as PKCS#8 by aws-lc-rs.
#![allow(unsafe_code)]

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use zeroize::Zeroizing;

use crate::CardError;

/// Bytes of an RSA-2048 signature.
pub(crate) const SIGNATURE_LEN: usize = 256;
/// Longest input PKCS#1 v1.5 type-1 padding can carry in a 2048-bit block (256 − 11).
pub(crate) const MAX_PKCS1_INPUT: usize = SIGNATURE_LEN - 11;

fn crypto(what: &str) -> CardError {
    CardError::Crypto(what.to_owned())
}

/// A fresh RSA-2048 key pair: (PKCS#8 private key, DER SubjectPublicKeyInfo).
pub(crate) fn generate() -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CardError> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| crypto("RSA key generation failed"))?;
    let pkcs8 = AsDer::<Pkcs8V1Der<'_>>::as_der(&key).map_err(|_| crypto("key export failed"))?;
    let spki = key
        .public_key()
        .as_der()
        .map_err(|_| crypto("public key export failed"))?;
    Ok((Zeroizing::new(pkcs8.as_ref().to_vec()), spki.as_ref().to_vec()))
}

/// The DER SubjectPublicKeyInfo of a stored private key.
pub(crate) fn public_key(pkcs8: &[u8]) -> Result<Vec<u8>, CardError> {
    let key =
        KeyPair::from_pkcs8(pkcs8).map_err(|_| CardError::Damaged("stored key is not an RSA key".into()))?;
    Ok(key
        .public_key()
        .as_der()
        .map_err(|_| crypto("public key export failed"))?
        .as_ref()
        .to_vec())
}

/// An AWS-LC `RSA` object parsed from a PKCS#8 key; freed on drop.
struct Rsa(*mut aws_lc_sys::RSA);

impl Rsa {
    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, CardError> {
        use pkcs8::der::Decode as _;
        let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8)
            .map_err(|_| CardError::Damaged("stored key is not PKCS#8".into()))?;
        let pkcs1 = info.private_key.as_bytes();
        // SAFETY: the pointer and length describe `pkcs1`, which outlives the call; AWS-LC copies
        // what it needs and returns either a new RSA object we own or null.
        let rsa = unsafe { aws_lc_sys::RSA_private_key_from_bytes(pkcs1.as_ptr(), pkcs1.len()) };
        if rsa.is_null() {
            return Err(CardError::Damaged("stored key is not an RSA private key".into()));
        }
        Ok(Self(rsa))
    }
}

impl Drop for Rsa {
    fn drop(&mut self) {
        // SAFETY: `self.0` is the non-null object RSA_private_key_from_bytes returned, freed once.
        unsafe { aws_lc_sys::RSA_free(self.0) }
    }
}

/// PKCS#1 v1.5 type-1 padding of `input` (1–245 bytes, usually a DigestInfo) and the private-key
/// operation: what `80 2A 00 80` does.
pub(crate) fn sign_pkcs1(pkcs8: &[u8], input: &[u8]) -> Result<Vec<u8>, CardError> {
    if input.is_empty() || input.len() > MAX_PKCS1_INPUT {
        return Err(crypto("input does not fit PKCS#1 v1.5 padding"));
    }
    let rsa = Rsa::from_pkcs8(pkcs8)?;
    let mut out = vec![0u8; SIGNATURE_LEN];
    let mut len = 0usize;
    // SAFETY: `rsa.0` is a valid RSA object; `out` has `out.len()` writable bytes and `input`
    // `input.len()` readable ones; AWS-LC writes at most max_out bytes and sets `len`.
    let ok = unsafe {
        aws_lc_sys::RSA_sign_raw(
            rsa.0,
            &mut len,
            out.as_mut_ptr(),
            out.len(),
            input.as_ptr(),
            input.len(),
            aws_lc_sys::RSA_PKCS1_PADDING,
        )
    };
    if ok != 1 || len != SIGNATURE_LEN {
        return Err(crypto("RSA signing failed"));
    }
    Ok(out)
}

/// RSASSA-PSS with SHA-256 and MGF1-SHA-256, salt as long as the hash, over a given SHA-256 digest.
pub(crate) fn sign_pss_sha256(pkcs8: &[u8], digest: &[u8]) -> Result<Vec<u8>, CardError> {
    if digest.len() != 32 {
        return Err(crypto("PSS needs a 32-byte SHA-256 digest"));
    }
    let rsa = Rsa::from_pkcs8(pkcs8)?;
    let mut out = vec![0u8; SIGNATURE_LEN];
    let mut len = 0usize;
    // SAFETY: as in `sign_pkcs1`; EVP_sha256 returns a static object.
    let ok = unsafe {
        let md = aws_lc_sys::EVP_sha256();
        aws_lc_sys::RSA_sign_pss_mgf1(
            rsa.0,
            &mut len,
            out.as_mut_ptr(),
            out.len(),
            digest.as_ptr(),
            digest.len(),
            md,
            md,
            aws_lc_sys::RSA_PSS_SALTLEN_DIGEST,
        )
    };
    if ok != 1 || len != SIGNATURE_LEN {
        return Err(crypto("RSA-PSS signing failed"));
    }
    Ok(out)
}

/// The DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1).
pub const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0x04, 0x20,
];

/// DigestInfo(SHA-256, `digest`).
pub fn sha256_digest_info(digest: &[u8; 32]) -> Vec<u8> {
    let mut v = SHA256_DIGEST_INFO_PREFIX.to_vec();
    v.extend_from_slice(digest);
    v
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{self, UnparsedPublicKey};

    #[test]
    fn raw_pkcs1_over_a_sha256_digest_info_is_a_standard_signature() {
        let (sk, spki) = generate().unwrap();
        let msg = b"challenge";
        let sig = sign_pkcs1(&sk, &sha256_digest_info(&sha256(msg))).unwrap();
        // aws-lc-rs verifies with the RSAPublicKey inside the SPKI.
        let inner = spki_inner(&spki);
        let pk2 = UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, inner);
        assert!(pk2.verify(msg, &sig).is_ok());
        assert!(pk2.verify(b"other", &sig).is_err());
        let pss = sign_pss_sha256(&sk, &sha256(msg)).unwrap();
        let pk3 = UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, inner);
        assert!(pk3.verify(msg, &pss).is_ok());
        assert!(sign_pkcs1(&sk, &[0u8; 246]).is_err());
        assert!(sign_pkcs1(&sk, &[]).is_err());
    }

    /// The BIT STRING content of a SubjectPublicKeyInfo (the RSAPublicKey).
    fn spki_inner(spki: &[u8]) -> &[u8] {
        use pkcs8::der::Decode as _;
        let s = pkcs8::spki::SubjectPublicKeyInfoRef::from_der(spki).unwrap();
        s.subject_public_key.raw_bytes()
    }
}
