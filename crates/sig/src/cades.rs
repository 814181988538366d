//! CAdES baseline signatures (ETSI EN 319 122-1) as detached CMS SignedData: B-B carries the
//! content-type, message-digest and signing-certificate-v2 signed attributes (and signing-time,
//! except inside a PDF where PAdES puts the time in the signature dictionary); B-T adds a signature
//! time-stamp token (RFC 3161) as an unsigned attribute.
//!
//! Signing is two-phase because the private key is on a card: [`prepare`] gives the bytes to sign
//! (and their SHA-256, which the card wraps in a DigestInfo and signs with PKCS#1 v1.5), and
//! [`Prepared::finish`] assembles the SignedData around the card's signature.
use time::OffsetDateTime;

use crate::SigError;
use crate::signed_data::{
    self, Attribute, DigestAlg, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, ID_DATA, ParsedSignedData,
    SignedDataBuilder,
};

/// id-aa-ets-contentTimestamp (RFC 5126 §5.11.4): a time-stamp over the content, signed.
pub const ID_AA_CONTENT_TIME_STAMP: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.20");

/// A signature ready for the card: the DER of the signed attributes and what assembles the rest.
#[derive(Debug, Clone)]
pub struct Prepared {
    signer_cert: Vec<u8>,
    certificates: Vec<Vec<u8>>,
    signed_attrs: Vec<u8>,
}

/// Prepares a detached CAdES signature over content whose SHA-256 is `content_digest`, by the holder
/// of `signer_cert` (DER), carrying `chain` (DER, e.g. the CA certificate) besides the signer's own
/// certificate. `signing_time` is the claimed signing time (None inside a PDF).
pub fn prepare(
    content_digest: &[u8; 32],
    signer_cert: &[u8],
    chain: &[Vec<u8>],
    signing_time: Option<OffsetDateTime>,
) -> Result<Prepared, SigError> {
    prepare_with_content_timestamp(content_digest, signer_cert, chain, signing_time, None)
}

/// As [`prepare`], with a content time-stamp token (RFC 3161 over the content's digest) as the
/// signed attribute id-aa-ets-contentTimestamp: proof that the content, and so the signature, did not
/// exist before the token's time (EN 319 122-1 §5.2.8).
pub fn prepare_with_content_timestamp(
    content_digest: &[u8; 32],
    signer_cert: &[u8],
    chain: &[Vec<u8>],
    signing_time: Option<OffsetDateTime>,
    content_timestamp: Option<&[u8]>,
) -> Result<Prepared, SigError> {
    let mut attrs: Vec<Attribute> = vec![
        signed_data::attr_content_type(ID_DATA)?,
        signed_data::attr_message_digest(content_digest)?,
        signed_data::attr_signing_certificate_v2(signer_cert)?,
    ];
    if let Some(t) = signing_time {
        attrs.push(signed_data::attr_signing_time(t)?);
    }
    if let Some(token) = content_timestamp {
        let t = crate::tsp::TimeStampToken::parse(token)?;
        if t.imprint_digest_alg() != Some(DigestAlg::Sha256) || t.imprint != content_digest {
            return Err(SigError::Tsa(
                "the content time-stamp token is not over this content's SHA-256".into(),
            ));
        }
        attrs.push(signed_data::attribute(ID_AA_CONTENT_TIME_STAMP, &[token])?);
    }
    let mut certificates = vec![signer_cert.to_vec()];
    certificates.extend(chain.iter().cloned());
    Ok(Prepared {
        signer_cert: signer_cert.to_vec(),
        certificates,
        signed_attrs: signed_data::signed_attributes_der(&attrs)?,
    })
}

impl Prepared {
    /// The exact bytes the signature covers (DER SET OF the signed attributes).
    pub fn to_be_signed(&self) -> &[u8] {
        &self.signed_attrs
    }

    /// SHA-256 of [`Prepared::to_be_signed`]: what the card signs.
    pub fn digest(&self) -> [u8; 32] {
        jpki_pki::x509::sha256(&self.signed_attrs)
    }

    /// Assembles the DER ContentInfo around `signature` (RSA PKCS#1 v1.5 over SHA-256, or ECDSA).
    pub fn finish(&self, signature: &[u8]) -> Result<Vec<u8>, SigError> {
        SignedDataBuilder::new(&self.signer_cert, DigestAlg::Sha256, ID_DATA)
            .certificates(&self.certificates)
            .build(&self.signed_attrs, signature)
    }
}

/// The signature value of the (first) signer: what a signature time-stamp's imprint covers.
pub fn signature_value(cms: &[u8]) -> Result<Vec<u8>, SigError> {
    let parsed = ParsedSignedData::parse(cms)?;
    parsed
        .signers
        .into_iter()
        .next()
        .map(|s| s.signature.into_owned())
        .ok_or_else(|| SigError::Malformed {
            what: "CMS signature",
            detail: "no SignerInfo".into(),
        })
}

/// Adds (or replaces) the signature time-stamp token (B-B → B-T). The token's imprint must be the
/// digest of the signature value.
pub fn add_signature_timestamp(cms: &[u8], token: &[u8]) -> Result<Vec<u8>, SigError> {
    let t = crate::tsp::TimeStampToken::parse(token)?;
    if !t.imprint_matches(&signature_value(cms)?) {
        return Err(SigError::Tsa(
            "the time-stamp token is not over this signature's value".into(),
        ));
    }
    let attr = signed_data::attribute(ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &[token])?;
    signed_data::set_unsigned_attribute(cms, &attr)
}

/// Reads a CMS signature given as DER or PEM (`-----BEGIN CMS-----` / `PKCS7`).
pub fn from_pem_or_der(data: &[u8]) -> Result<Vec<u8>, SigError> {
    if data.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(data).map_err(|e| SigError::Malformed {
            what: "CMS signature",
            detail: format!("PEM: {e}"),
        })?;
        if !matches!(label, "CMS" | "PKCS7" | "PKCS #7 SIGNED DATA") {
            return Err(SigError::Malformed {
                what: "CMS signature",
                detail: format!("PEM label {label} is not CMS or PKCS7"),
            });
        }
        return Ok(der);
    }
    Ok(data.to_vec())
}
