//! CMS `SignedData` (RFC 5652): building, reading and checking one signer's signature.
//!
//! This is the layer under CAdES signatures and RFC 3161 time-stamp tokens, and it knows nothing about
//! either: it assembles and takes apart the structure, and checks signatures with aws-lc-rs.
//!
//! Building is two-phase on purpose, because the private key usually lives on a card:
//!
//! 1. the caller collects the signed attributes ([`attr_content_type`], [`attr_message_digest`],
//!    [`attr_signing_time`], [`attr_signing_certificate_v2`], or any [`attribute`]) and takes
//!    [`signed_attributes_der`]: the exact bytes the signature covers (RFC 5652 §5.4);
//! 2. something signs those bytes (the card signs a DigestInfo of their SHA-256), and
//!    [`SignedDataBuilder::build`] assembles the `ContentInfo` around the signature.
//!
//! [`set_unsigned_attribute`] adds an unsigned attribute (a signature time-stamp, say) to an existing
//! signature without touching anything that is signed.
//!
//! Reading ([`ParsedSignedData::parse`]) is DER only (no BER indefinite lengths), accepts at most
//! [`MAX_CMS_LEN`] bytes, never panics, and keeps the signed attributes exactly as they were signed,
//! so that a signature whose attributes are not DER-sorted still verifies. [`verify_signer`] checks
//! one signer's signature with a certificate's key; what the attributes say (message digest, signing
//! certificate) is for the caller to compare, with the accessors on [`ParsedSigner`].
//!
//! Certificates in a built `SignedData` are DER-sorted (a `SET OF` in DER, as PAdES requires), not in
//! the order given; [`ParsedSignedData::find_signer_certificate`] finds the signer's among them.
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier;
use std::borrow::Cow;

use der::asn1::{Any, AnyRef, GeneralizedTime, Int, OctetString, OctetStringRef, SetOfVec, UtcTime};
use der::{Decode, Encode, Tag, TagNumber};
use jpki_pki::tlv::{Tlv, TlvIter, read_tlv, tlvs};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::ext::pkix::name::GeneralName;

pub use x509_cert::attr::Attribute;

use crate::SigError;

/// The largest CMS object [`ParsedSignedData::parse`] reads: 16 MiB.
pub const MAX_CMS_LEN: usize = 16 * 1024 * 1024;

const WHAT: &str = "CMS signature";

/// id-data (RFC 5652 §4): the eContentType of a plain document signature.
pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData (RFC 5652 §5).
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-contentType signed attribute (RFC 5652 §11.1).
pub const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest signed attribute (RFC 5652 §11.2).
pub const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime signed attribute (RFC 5652 §11.3).
pub const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
/// id-aa-signingCertificate (RFC 2634 §5.4, ESSCertID with SHA-1).
pub const ID_AA_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
/// id-aa-signingCertificateV2 (RFC 5035 §3, ESSCertIDv2).
pub const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// id-aa-signatureTimeStampToken unsigned attribute (RFC 3161 appendix A): a time-stamp token over
/// the signature value.
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");

const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// `[0]` constructed, context-specific (IMPLICIT SET OF certificates or signed attributes, EXPLICIT
/// content).
const CTX0: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber(0),
};
/// `[1]` constructed, context-specific (IMPLICIT SET OF CRLs or unsigned attributes).
const CTX1: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber(1),
};
/// `[0]` primitive, context-specific (IMPLICIT SubjectKeyIdentifier in a SignerIdentifier).
const CTX0_PRIMITIVE: Tag = Tag::ContextSpecific {
    constructed: false,
    number: TagNumber(0),
};

fn malformed(detail: impl Into<String>) -> SigError {
    SigError::Malformed {
        what: WHAT,
        detail: detail.into(),
    }
}

/// Maps a DER error to a one-line `Malformed` naming the part being read.
fn der_err(part: &'static str) -> impl FnOnce(der::Error) -> SigError {
    move |e| malformed(format!("{part}: {e}"))
}

fn unsupported(detail: impl Into<String>) -> SigError {
    SigError::Unsupported {
        what: WHAT,
        detail: detail.into(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Digest algorithms
// ---------------------------------------------------------------------------------------------------

/// A SHA-2 digest algorithm, as used for message digests and in signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlg {
    /// SHA-256 (2.16.840.1.101.3.4.2.1).
    Sha256,
    /// SHA-384 (2.16.840.1.101.3.4.2.2).
    Sha384,
    /// SHA-512 (2.16.840.1.101.3.4.2.3).
    Sha512,
}

impl DigestAlg {
    /// The algorithm's object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha256 => ID_SHA256,
            Self::Sha384 => ID_SHA384,
            Self::Sha512 => ID_SHA512,
        }
    }

    /// The algorithm with this object identifier, if it is one of ours.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|a| a.oid() == *oid)
    }

    /// The AlgorithmIdentifier with absent parameters (RFC 5754 §2: "SHOULD omit").
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(self.aws(), data).as_ref().to_vec()
    }

    /// Length of a digest in bytes (32, 48 or 64).
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The conventional name: `SHA-256`, `SHA-384` or `SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    fn aws(self) -> &'static aws_lc_rs::digest::Algorithm {
        match self {
            Self::Sha256 => &aws_lc_rs::digest::SHA256,
            Self::Sha384 => &aws_lc_rs::digest::SHA384,
            Self::Sha512 => &aws_lc_rs::digest::SHA512,
        }
    }
}

impl std::fmt::Display for DigestAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------------
// Attributes
// ---------------------------------------------------------------------------------------------------

/// An attribute of type `oid` with the given DER-encoded values.
pub fn attribute(oid: ObjectIdentifier, values_der: &[&[u8]]) -> Result<Attribute, SigError> {
    let values = values_der
        .iter()
        .map(|v| Any::from_der(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(der_err("attribute value"))?;
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(values).map_err(der_err("attribute values"))?,
    })
}

fn single_valued<T: der::Tagged + der::EncodeValue>(
    oid: ObjectIdentifier,
    value: &T,
) -> Result<Attribute, SigError> {
    let any = Any::encode_from(value).map_err(der_err("attribute value"))?;
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![any]).map_err(der_err("attribute values"))?,
    })
}

/// The content-type attribute (RFC 5652 §11.1): the eContentType, signed.
pub fn attr_content_type(econtent_type: ObjectIdentifier) -> Result<Attribute, SigError> {
    single_valued(ID_CONTENT_TYPE, &econtent_type)
}

/// The message-digest attribute (RFC 5652 §11.2): the digest of the content.
pub fn attr_message_digest(digest: &[u8]) -> Result<Attribute, SigError> {
    let octets = OctetStringRef::new(digest).map_err(der_err("message digest"))?;
    single_valued(ID_MESSAGE_DIGEST, &octets)
}

/// The signing-time attribute (RFC 5652 §11.3), to whole seconds: UTCTime through 2049,
/// GeneralizedTime from 2050. Times before 1970 are refused.
pub fn attr_signing_time(when: OffsetDateTime) -> Result<Attribute, SigError> {
    let secs = u64::try_from(when.unix_timestamp()).map_err(|_| SigError::Unsupported {
        what: "signing time",
        detail: format!("{when} (before 1970)"),
    })?;
    let duration = std::time::Duration::from_secs(secs);
    let bad = |e: der::Error| SigError::Unsupported {
        what: "signing time",
        detail: format!("{when} ({e})"),
    };
    if when.year() < 2050 {
        single_valued(
            ID_SIGNING_TIME,
            &UtcTime::from_unix_duration(duration).map_err(bad)?,
        )
    } else {
        single_valued(
            ID_SIGNING_TIME,
            &GeneralizedTime::from_unix_duration(duration).map_err(bad)?,
        )
    }
}

/// `SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies … OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct SigningCertificateV2Asn {
    certs: Vec<EssCertIdV2Asn>,
    #[asn1(optional = "true")]
    policies: Option<Vec<Any>>,
}

/// `ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT {id-sha256}, certHash, issuerSerial OPTIONAL }`
/// (the DEFAULT is handled by hand: `None` is SHA-256, and SHA-256 is written as `None`).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct EssCertIdV2Asn {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerialAsn>,
}

/// `IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }`
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct IssuerSerialAsn {
    issuer: Vec<GeneralName>,
    serial_number: Int,
}

/// The signing-certificate-v2 attribute (RFC 5035 §3) for the DER certificate `cert_der`: one
/// ESSCertIDv2 with the SHA-256 certHash (hashAlgorithm omitted: SHA-256 is the default) and
/// issuerSerial naming the certificate's issuer as a directoryName and its serial number.
pub fn attr_signing_certificate_v2(cert_der: &[u8]) -> Result<Attribute, SigError> {
    let cert = Certificate::from_der(cert_der).map_err(der_err("signing certificate"))?;
    let tbs = cert.tbs_certificate();
    let serial = tbs
        .serial_number()
        .to_der()
        .map_err(der_err("signing certificate"))?;
    let value = SigningCertificateV2Asn {
        certs: vec![EssCertIdV2Asn {
            // SHA-256 is the DEFAULT, which DER leaves out.
            hash_algorithm: None,
            cert_hash: OctetString::new(DigestAlg::Sha256.digest(cert_der))
                .map_err(der_err("signing certificate"))?,
            issuer_serial: Some(IssuerSerialAsn {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
                serial_number: Int::from_der(&serial).map_err(der_err("signing certificate"))?,
            }),
        }],
        policies: None,
    };
    single_valued(ID_AA_SIGNING_CERTIFICATE_V2, &value)
}

/// The DER `SET OF Attribute` that a signature covers (RFC 5652 §5.4): the signed attributes with the
/// universal SET tag (not the `[0] IMPLICIT` tag they carry inside a SignerInfo), DER-sorted.
///
/// Refuses an empty list and two attributes of the same type.
pub fn signed_attributes_der(attrs: &[Attribute]) -> Result<Vec<u8>, SigError> {
    if attrs.is_empty() {
        return Err(malformed("signed attributes: none given"));
    }
    for (i, a) in attrs.iter().enumerate() {
        if attrs[..i].iter().any(|b| b.oid == a.oid) {
            return Err(malformed(format!("signed attributes: {} appears twice", a.oid)));
        }
        if a.values.is_empty() {
            return Err(malformed(format!("signed attributes: {} has no value", a.oid)));
        }
    }
    let set = SetOfVec::try_from(attrs.to_vec()).map_err(der_err("signed attributes"))?;
    set.to_der().map_err(der_err("signed attributes"))
}

// ---------------------------------------------------------------------------------------------------
// Raw TLV handling
// ---------------------------------------------------------------------------------------------------

/// Exactly `N` consecutive TLVs of `bytes`; `None` if there are more or fewer.
fn exactly<const N: usize>(bytes: &[u8]) -> der::Result<Option<[&[u8]; N]>> {
    let mut out = [&[][..]; N];
    let mut it = TlvIter(bytes);
    for slot in &mut out {
        match it.next() {
            Some(t) => *slot = t?,
            None => return Ok(None),
        }
    }
    Ok(it.next().is_none().then_some(out))
}

/// An OBJECT IDENTIFIER TLV, decoded.
fn oid_of(tlv: &[u8], part: &'static str) -> Result<ObjectIdentifier, SigError> {
    ObjectIdentifier::from_bytes(value_of(tlv, Tag::ObjectIdentifier, part)?)
        .map_err(|e| malformed(format!("{part}: {e}")))
}

/// The algorithm of an `AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }`.
fn algorithm_oid(tlv: &[u8], part: &'static str) -> Result<ObjectIdentifier, SigError> {
    let mut it = TlvIter(value_of(tlv, Tag::Sequence, part)?);
    let oid = match it.next() {
        Some(o) => oid_of(o.map_err(der_err(part))?, part)?,
        None => return Err(malformed(format!("{part}: no algorithm"))),
    };
    it.next().transpose().map_err(der_err(part))?;
    if it.next().is_some() {
        return Err(malformed(format!(
            "{part}: unexpected field after the parameters"
        )));
    }
    Ok(oid)
}

/// The tag and the value of one complete TLV (nothing may follow it).
fn split(tlv: &[u8]) -> der::Result<(Tag, &[u8])> {
    let t = read_tlv(tlv)?;
    if !t.rest.is_empty() {
        return Err(der::ErrorKind::TrailingData {
            decoded: der::Length::try_from(t.whole.len()).unwrap_or(der::Length::MAX),
            remaining: der::Length::try_from(t.rest.len()).unwrap_or(der::Length::MAX),
        }
        .into());
    }
    Ok((t.tag, t.value))
}

/// The value of `tlv`, which must carry `tag`.
fn value_of<'a>(tlv: &'a [u8], tag: Tag, part: &'static str) -> Result<&'a [u8], SigError> {
    let (t, v) = split(tlv).map_err(der_err(part))?;
    if t != tag {
        return Err(malformed(format!("{part}: expected {tag}, found {t}")));
    }
    Ok(v)
}

fn tag_of(tlv: &[u8]) -> Option<Tag> {
    split(tlv).ok().map(|(t, _)| t)
}

/// Encodes one TLV of `tag` whose value is the concatenation of `parts`.
fn tlv(tag: Tag, parts: &[&[u8]]) -> Result<Vec<u8>, SigError> {
    let value = parts.concat();
    AnyRef::new(tag, &value)
        .and_then(|a| a.to_der())
        .map_err(der_err("encoding"))
}

/// The value of a DER `SET OF` from its elements' encodings: sorted (X.690 §11.6), duplicates dropped.
fn set_of_value(mut items: Vec<&[u8]>) -> Vec<u8> {
    items.sort_unstable();
    items.dedup();
    items.concat()
}

/// Reads the single top-level TLV of `der`, allowing trailing zero padding (as in a PDF `/Contents`).
fn single_tlv(der: &[u8]) -> Result<&[u8], SigError> {
    if der.len() > MAX_CMS_LEN {
        return Err(SigError::TooLarge {
            what: WHAT,
            size: der.len(),
            limit: MAX_CMS_LEN,
        });
    }
    let Tlv {
        whole: first, rest, ..
    } = read_tlv(der).map_err(der_err("ContentInfo"))?;
    if rest.iter().any(|&b| b != 0) {
        return Err(malformed("ContentInfo: trailing data after the structure"));
    }
    Ok(first)
}

/// The SignedData TLV inside a ContentInfo.
fn signed_data_tlv(content_info: &[u8]) -> Result<&[u8], SigError> {
    let Some([content_type, content]) =
        exactly(value_of(content_info, Tag::Sequence, "ContentInfo")?).map_err(der_err("ContentInfo"))?
    else {
        return Err(malformed("ContentInfo: expected contentType and content"));
    };
    let ct = oid_of(content_type, "ContentInfo contentType")?;
    if ct != ID_SIGNED_DATA {
        return Err(malformed(format!(
            "ContentInfo: content type is {ct}, not id-signedData"
        )));
    }
    match exactly(value_of(content, CTX0, "ContentInfo content")?).map_err(der_err("ContentInfo content"))? {
        Some([sd]) => Ok(sd),
        None => Err(malformed("ContentInfo: content must hold exactly one value")),
    }
}

/// The fields of a SignedData, each as its complete TLV.
struct RawSignedData<'a> {
    version: &'a [u8],
    digest_algorithms: &'a [u8],
    encap: &'a [u8],
    certificates: Option<&'a [u8]>,
    crls: Option<&'a [u8]>,
    signer_infos: Vec<RawSignerInfo<'a>>,
    /// The signerInfos SET as found.
    signer_infos_tlv: &'a [u8],
}

/// The fields of a SignerInfo, each as its complete TLV.
struct RawSignerInfo<'a> {
    version: &'a [u8],
    sid: &'a [u8],
    digest_alg: &'a [u8],
    signed_attrs: Option<&'a [u8]>,
    signature_alg: &'a [u8],
    signature: &'a [u8],
    unsigned_attrs: Option<&'a [u8]>,
}

impl<'a> RawSignedData<'a> {
    fn parse(sd: &'a [u8]) -> Result<Self, SigError> {
        let mut it = TlvIter(value_of(sd, Tag::Sequence, "SignedData")?);
        let mut next = |part: &'static str| {
            it.next()
                .ok_or_else(|| malformed(format!("SignedData: no {part}")))?
                .map_err(der_err("SignedData"))
        };
        let version = next("version")?;
        let digest_algorithms = next("digestAlgorithms")?;
        let encap = next("encapContentInfo")?;
        let mut certificates = None;
        let mut crls = None;
        let mut signer_infos = next("signerInfos")?;
        if tag_of(signer_infos) == Some(CTX0) {
            certificates = Some(signer_infos);
            signer_infos = next("signerInfos")?;
        }
        if tag_of(signer_infos) == Some(CTX1) {
            crls = Some(signer_infos);
            signer_infos = next("signerInfos")?;
        }
        if it.next().is_some() {
            return Err(malformed("SignedData: unexpected field after signerInfos"));
        }
        let signer_infos_tlv = signer_infos;
        let signer_infos = TlvIter(value_of(signer_infos, Tag::Set, "signerInfos")?)
            .map(|si| RawSignerInfo::parse(si.map_err(der_err("signerInfos"))?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            version,
            digest_algorithms,
            encap,
            certificates,
            crls,
            signer_infos,
            signer_infos_tlv,
        })
    }
}

impl<'a> RawSignerInfo<'a> {
    fn parse(si: &'a [u8]) -> Result<Self, SigError> {
        let mut it = TlvIter(value_of(si, Tag::Sequence, "SignerInfo")?);
        let mut next = |part: &'static str| {
            it.next()
                .ok_or_else(|| malformed(format!("SignerInfo: no {part}")))?
                .map_err(der_err("SignerInfo"))
        };
        let version = next("version")?;
        let sid = next("sid")?;
        let digest_alg = next("digestAlgorithm")?;
        let mut signature_alg = next("signatureAlgorithm")?;
        let mut signed_attrs = None;
        if tag_of(signature_alg) == Some(CTX0) {
            signed_attrs = Some(signature_alg);
            signature_alg = next("signatureAlgorithm")?;
        }
        let signature = next("signature")?;
        let unsigned_attrs = it.next().transpose().map_err(der_err("SignerInfo"))?;
        if let Some(u) = unsigned_attrs
            && tag_of(u) != Some(CTX1)
        {
            return Err(malformed("SignerInfo: unexpected field after the signature"));
        }
        if it.next().is_some() {
            return Err(malformed("SignerInfo: unexpected field after unsignedAttrs"));
        }
        Ok(Self {
            version,
            sid,
            digest_alg,
            signed_attrs,
            signature_alg,
            signature,
            unsigned_attrs,
        })
    }

    /// Re-encodes this SignerInfo with `unsigned_attrs` (the complete `[1]` TLV, or none).
    fn encode(&self, unsigned_attrs: Option<&[u8]>) -> Result<Vec<u8>, SigError> {
        let mut parts = vec![self.version, self.sid, self.digest_alg];
        parts.extend(self.signed_attrs);
        parts.extend([self.signature_alg, self.signature]);
        parts.extend(unsigned_attrs);
        tlv(Tag::Sequence, &parts)
    }
}

// ---------------------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------------------

/// The public-key algorithm of a certificate, as far as signatures here are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    P521,
}

fn key_kind(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyKind, SigError> {
    if spki.algorithm.oid == RSA_ENCRYPTION {
        return Ok(KeyKind::Rsa);
    }
    if spki.algorithm.oid == EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        return match curve {
            Some(c) if c == SECP256R1 => Ok(KeyKind::P256),
            Some(c) if c == SECP384R1 => Ok(KeyKind::P384),
            Some(c) if c == SECP521R1 => Ok(KeyKind::P521),
            Some(c) => Err(unsupported(format!("EC curve {c}"))),
            None => Err(unsupported("an EC key without a named curve")),
        };
    }
    Err(unsupported(format!(
        "public-key algorithm {}",
        spki.algorithm.oid
    )))
}

/// The signatureAlgorithm a key of `kind` signs with when hashing with `digest`.
fn signature_algorithm(kind: KeyKind, digest: DigestAlg) -> AlgorithmIdentifierOwned {
    match kind {
        // RFC 4055 §5: the parameters of the sha*WithRSAEncryption identifiers MUST be NULL.
        KeyKind::Rsa => AlgorithmIdentifierOwned {
            oid: match digest {
                DigestAlg::Sha256 => SHA256_WITH_RSA,
                DigestAlg::Sha384 => SHA384_WITH_RSA,
                DigestAlg::Sha512 => SHA512_WITH_RSA,
            },
            parameters: Some(AnyRef::NULL.into()),
        },
        // RFC 5758 §3.2: ecdsa-with-SHA* have absent parameters.
        KeyKind::P256 | KeyKind::P384 | KeyKind::P521 => AlgorithmIdentifierOwned {
            oid: match digest {
                DigestAlg::Sha256 => ECDSA_WITH_SHA256,
                DigestAlg::Sha384 => ECDSA_WITH_SHA384,
                DigestAlg::Sha512 => ECDSA_WITH_SHA512,
            },
            parameters: None,
        },
    }
}

/// Assembles a DER `ContentInfo` of type id-signedData with one signer, once the signed attributes
/// are signed.
///
/// ```text
/// let attrs = [attr_content_type(ID_DATA)?, attr_message_digest(&DigestAlg::Sha256.digest(doc))?, …];
/// let to_sign = signed_attributes_der(&attrs)?;
/// let signature = card.sign(&to_sign)?;                 // RSA PKCS#1 v1.5 over SHA-256(to_sign)
/// let cms = SignedDataBuilder::new(&cert, DigestAlg::Sha256, ID_DATA)
///     .certificates(&[cert.clone(), ca.clone()])
///     .build(&to_sign, &signature)?;
/// ```
///
/// The SignedData follows RFC 5652: version 1 or 3 by §5.1 (3 when the eContentType is not id-data);
/// one digestAlgorithm; the eContent only if [`content`](Self::content) was given (detached
/// otherwise); the certificates as a DER-sorted SET; one SignerInfo (version 1) identifying the signer
/// by issuerAndSerialNumber, whose signatureAlgorithm follows the signer certificate's key:
/// sha256/384/512WithRSAEncryption for RSA, ecdsa-with-SHA256/384/512 for EC, by the digest algorithm.
#[derive(Debug, Clone)]
pub struct SignedDataBuilder<'a> {
    signer_cert: &'a [u8],
    digest_alg: DigestAlg,
    econtent_type: ObjectIdentifier,
    econtent: Option<&'a [u8]>,
    certificates: Vec<&'a [u8]>,
    unsigned_attrs: Vec<Attribute>,
}

impl<'a> SignedDataBuilder<'a> {
    /// A detached signature by the holder of `signer_cert_der` over content of type `econtent_type`,
    /// with message digest and signature hash `digest_alg`. No certificates are included unless given.
    pub fn new(signer_cert_der: &'a [u8], digest_alg: DigestAlg, econtent_type: ObjectIdentifier) -> Self {
        Self {
            signer_cert: signer_cert_der,
            digest_alg,
            econtent_type,
            econtent: None,
            certificates: Vec::new(),
            unsigned_attrs: Vec::new(),
        }
    }

    /// Encapsulates `econtent` (the SignedData is then not detached).
    pub fn content(mut self, econtent: &'a [u8]) -> Self {
        self.econtent = Some(econtent);
        self
    }

    /// Adds DER certificates to the `certificates` field (usually the signer's first, then its chain;
    /// they end up DER-sorted and without duplicates).
    pub fn certificates(mut self, certs: &'a [Vec<u8>]) -> Self {
        self.certificates.extend(certs.iter().map(Vec::as_slice));
        self
    }

    /// Adds an unsigned attribute to the SignerInfo.
    pub fn unsigned_attribute(mut self, attr: Attribute) -> Self {
        self.unsigned_attrs.push(attr);
        self
    }

    /// Assembles the DER ContentInfo. `signed_attrs_der` must be the output of
    /// [`signed_attributes_der`] (the bytes that were signed) and `signature` the signature over them.
    pub fn build(&self, signed_attrs_der: &[u8], signature: &[u8]) -> Result<Vec<u8>, SigError> {
        // The signed attributes go in exactly as signed, only re-tagged [0] IMPLICIT; they must be a
        // DER SET OF Attribute (decoding and re-encoding gives the same bytes).
        let attrs =
            SetOfVec::<Attribute>::from_der(signed_attrs_der).map_err(der_err("signed attributes"))?;
        if attrs.is_empty() || attrs.to_der().map_err(der_err("signed attributes"))? != signed_attrs_der {
            return Err(malformed(
                "signed attributes: not a non-empty DER SET OF Attribute",
            ));
        }
        let signed_attrs_value = value_of(signed_attrs_der, Tag::Set, "signed attributes")?;
        // RFC 5652 §5.3: with signed attributes, content-type (equal to the eContentType) and
        // message-digest are required; for encapsulated content the digest can be checked here.
        let parsed = parse_attributes(signed_attrs_value)?;
        let single = |oid: &ObjectIdentifier| match values_of(&parsed, oid).as_slice() {
            [v] => Some(v.to_vec()),
            _ => None,
        };
        let content_type = single(&ID_CONTENT_TYPE).and_then(|v| ObjectIdentifier::from_der(&v).ok());
        if content_type != Some(self.econtent_type) {
            return Err(malformed(format!(
                "signed attributes: the content-type attribute must be present and be {}",
                self.econtent_type
            )));
        }
        let Some(md) = single(&ID_MESSAGE_DIGEST) else {
            return Err(malformed("signed attributes: no message-digest attribute"));
        };
        if let Some(content) = self.econtent {
            let expected = OctetStringRef::new(&self.digest_alg.digest(content))
                .and_then(|o| o.to_der())
                .map_err(der_err("message digest"))?;
            if md != expected {
                return Err(malformed(
                    "signed attributes: the message digest is not the digest of the content",
                ));
            }
        }

        let cert = Certificate::from_der(self.signer_cert).map_err(der_err("signer certificate"))?;
        let tbs = cert.tbs_certificate();
        let kind = key_kind(tbs.subject_public_key_info())?;
        let issuer = tbs.issuer().to_der().map_err(der_err("signer certificate"))?;
        let serial = tbs
            .serial_number()
            .to_der()
            .map_err(der_err("signer certificate"))?;
        let sid = tlv(Tag::Sequence, &[&issuer, &serial])?;
        let digest_alg = self
            .digest_alg
            .algorithm_identifier()
            .to_der()
            .map_err(der_err("digestAlgorithm"))?;
        let sig_alg = signature_algorithm(kind, self.digest_alg)
            .to_der()
            .map_err(der_err("signatureAlgorithm"))?;
        let signature = OctetStringRef::new(signature)
            .and_then(|o| o.to_der())
            .map_err(der_err("signature"))?;
        let unsigned = match self.unsigned_attrs.as_slice() {
            [] => None,
            list => {
                let encoded = list
                    .iter()
                    .map(Encode::to_der)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(der_err("unsigned attributes"))?;
                let value = set_of_value(encoded.iter().map(Vec::as_slice).collect());
                Some(tlv(CTX1, &[&value])?)
            }
        };
        let mut signer_info_parts: Vec<&[u8]> = vec![&[0x02, 0x01, 0x01], &sid, &digest_alg];
        let signed_attrs = tlv(CTX0, &[signed_attrs_value])?;
        signer_info_parts.extend([signed_attrs.as_slice(), &sig_alg, &signature]);
        signer_info_parts.extend(unsigned.as_deref());
        let signer_info = tlv(Tag::Sequence, &signer_info_parts)?;

        for c in &self.certificates {
            Certificate::from_der(c).map_err(der_err("certificate"))?;
        }
        let certificates = match self.certificates.as_slice() {
            [] => None,
            list => Some(tlv(CTX0, &[&set_of_value(list.to_vec())])?),
        };
        let econtent_type = self.econtent_type.to_der().map_err(der_err("eContentType"))?;
        let econtent = match self.econtent {
            Some(c) => {
                let octets = OctetStringRef::new(c)
                    .and_then(|o| o.to_der())
                    .map_err(der_err("eContent"))?;
                Some(tlv(CTX0, &[&octets])?)
            }
            None => None,
        };
        let mut encap_parts = vec![econtent_type.as_slice()];
        encap_parts.extend(econtent.as_deref());
        let encap = tlv(Tag::Sequence, &encap_parts)?;
        // RFC 5652 §5.1: no other-format certificates or CRLs, no attribute certificates, and the one
        // SignerInfo is version 1, so the version is 3 exactly when the eContentType is not id-data.
        let version: &[u8] = if self.econtent_type == ID_DATA {
            &[0x02, 0x01, 0x01]
        } else {
            &[0x02, 0x01, 0x03]
        };
        let digest_algorithms = tlv(Tag::Set, &[&digest_alg])?;
        let signer_infos = tlv(Tag::Set, &[&signer_info])?;
        let mut sd_parts = vec![version, &digest_algorithms, &encap];
        sd_parts.extend(certificates.as_deref());
        sd_parts.push(&signer_infos);
        let signed_data = tlv(Tag::Sequence, &sd_parts)?;
        let content_type = ID_SIGNED_DATA.to_der().map_err(der_err("ContentInfo"))?;
        tlv(Tag::Sequence, &[&content_type, &tlv(CTX0, &[&signed_data])?])
    }
}

/// Sets an unsigned attribute on the first SignerInfo of the DER ContentInfo `content_info_der`:
/// every existing attribute of the same type is replaced by `attr` (so to keep several time-stamps,
/// give them all as values of `attr`). Everything else, in particular what is signed, is kept byte for
/// byte; the unsigned attributes are re-encoded as a DER-sorted SET.
pub fn set_unsigned_attribute(content_info_der: &[u8], attr: &Attribute) -> Result<Vec<u8>, SigError> {
    let new_attr = attr.to_der().map_err(der_err("unsigned attribute"))?;
    rewrite_first_signer(content_info_der, |first| {
        let mut kept: Vec<&[u8]> = Vec::new();
        if let Some(u) = first.unsigned_attrs {
            for a in tlvs(value_of(u, CTX1, "unsignedAttrs")?).map_err(der_err("unsignedAttrs"))? {
                if parse_attribute(a)?.oid != attr.oid {
                    kept.push(a);
                }
            }
        }
        kept.push(&new_attr);
        let unsigned = tlv(CTX1, &[&set_of_value(kept)])?;
        first.encode(Some(&unsigned))
    })
}

/// Adds certificates and revocation information to the DER ContentInfo `content_info_der` (as a
/// CAdES-B-LT augmentation does, ETSI EN 319 122-1 §5.5.1): each of `certificates` (DER X.509)
/// into `certificates`, each of `crls` (DER CRLs) and each `(format, info DER)` of `others` (an
/// OtherRevocationInfoFormat, e.g. an OCSP response under id-ri-ocsp-response) into `crls`. What
/// is there stays; duplicates are dropped; both sets are re-encoded DER-sorted. The signer infos,
/// the content and everything signed are kept byte for byte. With other revocation formats present
/// the version becomes 5 (RFC 5652 §5.1).
pub fn add_validation_data(
    content_info_der: &[u8],
    certificates: &[Vec<u8>],
    crls: &[Vec<u8>],
    others: &[(ObjectIdentifier, Vec<u8>)],
) -> Result<Vec<u8>, SigError> {
    let content_info = single_tlv(content_info_der)?;
    let sd = RawSignedData::parse(signed_data_tlv(content_info)?)?;
    for c in certificates {
        Certificate::from_der(c).map_err(der_err("certificate"))?;
    }
    for c in crls {
        x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(c)
            .map_err(der_err("CRL"))?;
    }
    let mut cert_items: Vec<&[u8]> = match sd.certificates {
        Some(c) => tlvs(value_of(c, CTX0, "certificates")?).map_err(der_err("certificates"))?,
        None => Vec::new(),
    };
    cert_items.extend(certificates.iter().map(Vec::as_slice));
    let mut crl_items: Vec<&[u8]> = match sd.crls {
        Some(c) => tlvs(value_of(c, CTX1, "crls")?).map_err(der_err("crls"))?,
        None => Vec::new(),
    };
    crl_items.extend(crls.iter().map(Vec::as_slice));
    let mut other_tlvs = Vec::with_capacity(others.len());
    for (format, info) in others {
        // The info must be one DER value (an OCSPResponse is a SEQUENCE).
        split(info).map_err(der_err("other revocation info"))?;
        let format = format.to_der().map_err(der_err("otherRevInfoFormat"))?;
        other_tlvs.push(tlv(CTX1, &[&format, info])?);
    }
    crl_items.extend(other_tlvs.iter().map(Vec::as_slice));
    let has_other = crl_items.iter().any(|c| tag_of(c) == Some(CTX1));
    let certificates = if cert_items.is_empty() {
        None
    } else {
        Some(tlv(CTX0, &[&set_of_value(cert_items)])?)
    };
    let crls = if crl_items.is_empty() {
        None
    } else {
        Some(tlv(CTX1, &[&set_of_value(crl_items)])?)
    };
    let version: &[u8] = if has_other {
        &[0x02, 0x01, 0x05]
    } else {
        sd.version
    };
    if sd.signer_infos.is_empty() {
        return Err(malformed("SignedData: no SignerInfo"));
    }
    let mut parts = vec![version, sd.digest_algorithms, sd.encap];
    parts.extend(certificates.as_deref());
    parts.extend(crls.as_deref());
    parts.push(sd.signer_infos_tlv);
    let signed_data = tlv(Tag::Sequence, &parts)?;
    let content_type = ID_SIGNED_DATA.to_der().map_err(der_err("ContentInfo"))?;
    tlv(Tag::Sequence, &[&content_type, &tlv(CTX0, &[&signed_data])?])
}

/// Re-encodes the DER ContentInfo `content_info_der` with its first SignerInfo replaced by what
/// `rewrite` makes of it; every other field is kept byte for byte.
fn rewrite_first_signer(
    content_info_der: &[u8],
    rewrite: impl FnOnce(&RawSignerInfo<'_>) -> Result<Vec<u8>, SigError>,
) -> Result<Vec<u8>, SigError> {
    let content_info = single_tlv(content_info_der)?;
    let sd = RawSignedData::parse(signed_data_tlv(content_info)?)?;
    let Some(first) = sd.signer_infos.first() else {
        return Err(malformed("SignedData: no SignerInfo"));
    };
    let mut signer_infos: Vec<Vec<u8>> = vec![rewrite(first)?];
    for si in sd.signer_infos.iter().skip(1) {
        signer_infos.push(si.encode(si.unsigned_attrs)?);
    }
    let signer_infos = tlv(
        Tag::Set,
        &[&set_of_value(signer_infos.iter().map(Vec::as_slice).collect())],
    )?;
    let mut parts = vec![sd.version, sd.digest_algorithms, sd.encap];
    parts.extend(sd.certificates);
    parts.extend(sd.crls);
    parts.push(&signer_infos);
    let signed_data = tlv(Tag::Sequence, &parts)?;
    let content_type = ID_SIGNED_DATA.to_der().map_err(der_err("ContentInfo"))?;
    tlv(Tag::Sequence, &[&content_type, &tlv(CTX0, &[&signed_data])?])
}

// ---------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------

/// One attribute as found in a SignerInfo: its type and each value's DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// The attribute type.
    pub oid: ObjectIdentifier,
    /// The DER encoding of each value, in the order found.
    pub values: Vec<Cow<'a, [u8]>>,
}

impl RawAttribute<'_> {
    /// The same attribute, owning its values.
    pub fn into_owned(self) -> RawAttribute<'static> {
        RawAttribute {
            oid: self.oid,
            values: self.values.into_iter().map(owned).collect(),
        }
    }
}

fn owned(c: Cow<'_, [u8]>) -> Cow<'static, [u8]> {
    Cow::Owned(c.into_owned())
}

fn parse_attribute(tlv: &[u8]) -> Result<RawAttribute<'_>, SigError> {
    let Some([oid, values]) =
        exactly(value_of(tlv, Tag::Sequence, "attribute")?).map_err(der_err("attribute"))?
    else {
        return Err(malformed("attribute: expected type and values"));
    };
    let oid = oid_of(oid, "attribute type")?;
    let values = TlvIter(value_of(values, Tag::Set, "attribute values")?)
        .map(|v| v.map(Cow::Borrowed))
        .collect::<der::Result<_>>()
        .map_err(der_err("attribute values"))?;
    Ok(RawAttribute { oid, values })
}

fn parse_attributes(set_value: &[u8]) -> Result<Vec<RawAttribute<'_>>, SigError> {
    TlvIter(set_value)
        .map(|a| parse_attribute(a.map_err(der_err("attributes"))?))
        .collect()
}

/// How a SignerInfo names its signer's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId<'a> {
    /// issuerAndSerialNumber.
    IssuerSerial {
        /// The issuer Name, DER.
        issuer: Cow<'a, [u8]>,
        /// The serial number: the INTEGER's content octets (big-endian two's complement).
        serial: Cow<'a, [u8]>,
    },
    /// subjectKeyIdentifier: the certificate's SKI extension value.
    SubjectKeyId(Cow<'a, [u8]>),
}

impl SignerId<'_> {
    /// Whether the DER certificate `cert_der` is the one this identifier names (issuer DER and serial
    /// equal, or SKI extension equal). A certificate that does not decode matches nothing.
    pub fn matches(&self, cert_der: &[u8]) -> bool {
        let Ok(cert) = Certificate::from_der(cert_der) else {
            return false;
        };
        let tbs = cert.tbs_certificate();
        match self {
            Self::IssuerSerial { issuer, serial } => {
                let same_issuer = tbs.issuer().to_der().is_ok_and(|d| d == issuer.as_ref());
                let same_serial = tbs
                    .serial_number()
                    .to_der()
                    .ok()
                    .and_then(|d| split(&d).ok().map(|(_, v)| v == serial.as_ref()))
                    .unwrap_or(false);
                same_issuer && same_serial
            }
            Self::SubjectKeyId(kid) => matches!(
                tbs.get_extension::<SubjectKeyIdentifier>(),
                Ok(Some((_, ski))) if ski.0.as_bytes() == kid.as_ref()
            ),
        }
    }

    /// The same identifier, owning its bytes.
    pub fn into_owned(self) -> SignerId<'static> {
        match self {
            Self::IssuerSerial { issuer, serial } => SignerId::IssuerSerial {
                issuer: owned(issuer),
                serial: owned(serial),
            },
            Self::SubjectKeyId(k) => SignerId::SubjectKeyId(owned(k)),
        }
    }
}

impl<'a> SignerId<'a> {
    fn parse(tlv: &'a [u8]) -> Result<Self, SigError> {
        let (tag, value) = split(tlv).map_err(der_err("sid"))?;
        if tag == Tag::Sequence {
            let fields = tlvs(value).map_err(der_err("issuerAndSerialNumber"))?;
            let [issuer, serial] = fields.as_slice() else {
                return Err(malformed(
                    "issuerAndSerialNumber: expected issuer and serialNumber",
                ));
            };
            value_of(issuer, Tag::Sequence, "issuerAndSerialNumber issuer")?;
            let serial = integer_content(serial, "issuerAndSerialNumber serialNumber")?;
            Ok(Self::IssuerSerial {
                issuer: Cow::Borrowed(issuer),
                serial: Cow::Borrowed(serial),
            })
        } else if tag == CTX0_PRIMITIVE {
            Ok(Self::SubjectKeyId(Cow::Borrowed(value)))
        } else {
            Err(malformed(format!("sid: unexpected {tag}")))
        }
    }
}

/// The content octets of a DER INTEGER, checked to be a valid encoding.
fn integer_content<'a>(tlv: &'a [u8], part: &'static str) -> Result<&'a [u8], SigError> {
    let v = value_of(tlv, Tag::Integer, part)?;
    match v {
        [] => Err(malformed(format!("{part}: an empty INTEGER"))),
        [0x00, next, ..] if next & 0x80 == 0 => Err(malformed(format!("{part}: a non-minimal INTEGER"))),
        [0xff, next, ..] if next & 0x80 != 0 => Err(malformed(format!("{part}: a non-minimal INTEGER"))),
        _ => Ok(v),
    }
}

/// The issuerSerial of an ESSCertID(v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EssIssuerSerial {
    /// The issuer's directoryName entries (DER Names); other GeneralName forms are left out.
    pub directory_names: Vec<Vec<u8>>,
    /// The serial number: the INTEGER's content octets.
    pub serial: Vec<u8>,
}

/// One certificate reference of a signing-certificate (v1) or signing-certificate-v2 attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EssCertId {
    /// The hash algorithm of `cert_hash` (SHA-1 for v1; SHA-256 when a v2 reference omits it).
    pub hash_algorithm: ObjectIdentifier,
    /// The hash of the whole DER certificate.
    pub cert_hash: Vec<u8>,
    /// Issuer and serial number of the certificate, if given.
    pub issuer_serial: Option<EssIssuerSerial>,
}

/// `[4]` constructed, context-specific: the directoryName choice of a GeneralName (EXPLICIT, as
/// GeneralName is a CHOICE).
const CTX4: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber(4),
};

/// Decodes `SigningCertificate(V2) ::= SEQUENCE { certs SEQUENCE OF ESSCertID(v2), policies … OPTIONAL }`
/// (RFC 2634 §5.4, RFC 5035 §3). `v2` allows the leading hashAlgorithm (DEFAULT SHA-256); v1 hashes
/// are SHA-1. Walked TLV by TLV: the issuer names are kept as their DER, not decoded.
fn parse_signing_certificate(der: &[u8], v2: bool, part: &'static str) -> Result<Vec<EssCertId>, SigError> {
    let fields = tlvs(value_of(der, Tag::Sequence, part)?).map_err(der_err(part))?;
    let certs = match fields.as_slice() {
        [certs] => certs,
        [certs, policies] => {
            value_of(policies, Tag::Sequence, part)?;
            certs
        }
        _ => return Err(malformed(format!("{part}: expected certs and optional policies"))),
    };
    let certs = tlvs(value_of(certs, Tag::Sequence, part)?).map_err(der_err(part))?;
    if certs.is_empty() {
        return Err(malformed(format!("{part}: no certificate reference")));
    }
    certs
        .into_iter()
        .map(|c| {
            let fields = tlvs(value_of(c, Tag::Sequence, part)?).map_err(der_err(part))?;
            let mut it = fields.into_iter().peekable();
            let mut hash_algorithm = if v2 { ID_SHA256 } else { ID_SHA1 };
            if v2 && it.peek().and_then(|f| tag_of(f)) == Some(Tag::Sequence) {
                let alg = it.next().unwrap_or_default();
                hash_algorithm = AlgorithmIdentifierRef::from_der(alg).map_err(der_err(part))?.oid;
            }
            let hash = it
                .next()
                .ok_or_else(|| malformed(format!("{part}: no certHash")))?;
            let cert_hash = value_of(hash, Tag::OctetString, part)?.to_vec();
            let issuer_serial = it
                .next()
                .map(|is| parse_ess_issuer_serial(is, part))
                .transpose()?;
            if it.next().is_some() {
                return Err(malformed(format!("{part}: unexpected field after issuerSerial")));
            }
            Ok(EssCertId {
                hash_algorithm,
                cert_hash,
                issuer_serial,
            })
        })
        .collect()
}

/// `IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }`.
fn parse_ess_issuer_serial(tlv: &[u8], part: &'static str) -> Result<EssIssuerSerial, SigError> {
    let fields = tlvs(value_of(tlv, Tag::Sequence, part)?).map_err(der_err(part))?;
    let [names, serial] = fields.as_slice() else {
        return Err(malformed(format!(
            "{part}: issuerSerial needs issuer and serialNumber"
        )));
    };
    let mut directory_names = Vec::new();
    for name in tlvs(value_of(names, Tag::Sequence, part)?).map_err(der_err(part))? {
        if tag_of(name) == Some(CTX4) {
            let inner = value_of(name, CTX4, part)?;
            value_of(inner, Tag::Sequence, part)?;
            directory_names.push(inner.to_vec());
        }
    }
    Ok(EssIssuerSerial {
        directory_names,
        serial: integer_content(serial, part)?.to_vec(),
    })
}

impl EssCertId {
    /// Whether this reference names the DER certificate `cert_der`: the hash matches, and so do the
    /// issuer and serial if given. Hash algorithms other than SHA-1 and SHA-2 are `Unsupported`.
    pub fn matches(&self, cert_der: &[u8]) -> Result<bool, SigError> {
        let hash = if self.hash_algorithm == ID_SHA1 {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der)
                .as_ref()
                .to_vec()
        } else {
            DigestAlg::from_oid(&self.hash_algorithm)
                .ok_or_else(|| {
                    unsupported(format!("ESS certificate hash algorithm {}", self.hash_algorithm))
                })?
                .digest(cert_der)
        };
        if hash != self.cert_hash {
            return Ok(false);
        }
        let Some(is) = &self.issuer_serial else {
            return Ok(true);
        };
        let cert = Certificate::from_der(cert_der).map_err(der_err("certificate"))?;
        let tbs = cert.tbs_certificate();
        let issuer = tbs.issuer().to_der().map_err(der_err("certificate"))?;
        let serial = tbs.serial_number().to_der().map_err(der_err("certificate"))?;
        let serial = value_of(&serial, Tag::Integer, "certificate serialNumber")?;
        Ok(serial == is.serial.as_slice() && is.directory_names.contains(&issuer))
    }
}

/// One SignerInfo, decoded. Byte fields borrow from the parsed input
/// ([`into_owned`](Self::into_owned) detaches them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSigner<'a> {
    /// The SignerInfo version (1 for issuerAndSerialNumber, 3 for subjectKeyIdentifier).
    pub version: u8,
    /// Which certificate signed.
    pub sid: SignerId<'a>,
    /// The digestAlgorithm (message digest, and the hash of the signature).
    pub digest_algorithm: ObjectIdentifier,
    /// The signed attributes exactly as they must be verified: the original encoding, with the
    /// universal SET OF tag (0x31) in place of the `[0] IMPLICIT` tag. `None` if there are none.
    pub signed_attrs_der: Option<Vec<u8>>,
    /// The signed attributes, decoded into types and values.
    pub signed_attrs: Vec<RawAttribute<'a>>,
    /// The signatureAlgorithm.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// The signature value.
    pub signature: Cow<'a, [u8]>,
    /// The unsigned attributes.
    pub unsigned_attrs: Vec<RawAttribute<'a>>,
}

fn values_of<'s>(attrs: &'s [RawAttribute<'_>], oid: &ObjectIdentifier) -> Vec<&'s [u8]> {
    attrs
        .iter()
        .filter(|a| a.oid == *oid)
        .flat_map(|a| a.values.iter().map(AsRef::as_ref))
        .collect()
}

impl<'a> ParsedSigner<'a> {
    fn parse(raw: &RawSignerInfo<'a>) -> Result<Self, SigError> {
        let version = u8::from_der(raw.version).map_err(der_err("SignerInfo version"))?;
        let sid = SignerId::parse(raw.sid)?;
        let digest_algorithm = algorithm_oid(raw.digest_alg, "SignerInfo digestAlgorithm")?;
        let (signed_attrs_der, signed_attrs) = match raw.signed_attrs {
            Some(tlv) => {
                let value = value_of(tlv, CTX0, "signedAttrs")?;
                let mut der = tlv.to_vec();
                // RFC 5652 §5.4: the signature covers the EXPLICIT SET OF encoding; only the
                // identifier octet differs ([0] constructed is one octet, as is SET).
                if let Some(tag) = der.first_mut() {
                    *tag = 0x31;
                }
                (Some(der), parse_attributes(value)?)
            }
            None => (None, Vec::new()),
        };
        let signature_algorithm = AlgorithmIdentifierOwned::from_der(raw.signature_alg)
            .map_err(der_err("SignerInfo signatureAlgorithm"))?;
        let signature = Cow::Borrowed(value_of(raw.signature, Tag::OctetString, "SignerInfo signature")?);
        let unsigned_attrs = match raw.unsigned_attrs {
            Some(tlv) => parse_attributes(value_of(tlv, CTX1, "unsignedAttrs")?)?,
            None => Vec::new(),
        };
        Ok(Self {
            version,
            sid,
            digest_algorithm,
            signed_attrs_der,
            signed_attrs,
            signature_algorithm,
            signature,
            unsigned_attrs,
        })
    }
}

impl ParsedSigner<'_> {
    /// The same signer, owning its bytes.
    pub fn into_owned(self) -> ParsedSigner<'static> {
        ParsedSigner {
            version: self.version,
            sid: self.sid.into_owned(),
            digest_algorithm: self.digest_algorithm,
            signed_attrs_der: self.signed_attrs_der,
            signed_attrs: self
                .signed_attrs
                .into_iter()
                .map(RawAttribute::into_owned)
                .collect(),
            signature_algorithm: self.signature_algorithm,
            signature: owned(self.signature),
            unsigned_attrs: self
                .unsigned_attrs
                .into_iter()
                .map(RawAttribute::into_owned)
                .collect(),
        }
    }

    /// The digest algorithm, if it is one this crate computes.
    pub fn digest_alg(&self) -> Option<DigestAlg> {
        DigestAlg::from_oid(&self.digest_algorithm)
    }

    /// Every value (DER) of the signed attributes of type `oid`.
    pub fn signed_attribute_values(&self, oid: &ObjectIdentifier) -> Vec<&[u8]> {
        values_of(&self.signed_attrs, oid)
    }

    /// Every value (DER) of the unsigned attributes of type `oid`, across all attributes of that type.
    pub fn unsigned_attribute_values(&self, oid: &ObjectIdentifier) -> Vec<&[u8]> {
        values_of(&self.unsigned_attrs, oid)
    }

    /// The single value of the signed attribute `oid`, if present; more than one attribute or
    /// value of that type is `Malformed` (RFC 5652 §11 allows one for the standard attributes).
    fn single_signed(&self, oid: &ObjectIdentifier, name: &str) -> Result<Option<&[u8]>, SigError> {
        let mut found = self.signed_attrs.iter().filter(|a| a.oid == *oid);
        match (found.next(), found.next()) {
            (None, _) => Ok(None),
            (Some(a), None) => match a.values.as_slice() {
                [v] => Ok(Some(v)),
                _ => Err(malformed(format!("{name} attribute must have exactly one value"))),
            },
            (Some(_), Some(_)) => Err(malformed(format!("{name} attribute appears more than once"))),
        }
    }

    /// The content-type signed attribute.
    pub fn content_type(&self) -> Result<Option<ObjectIdentifier>, SigError> {
        self.single_signed(&ID_CONTENT_TYPE, "content-type")?
            .map(|v| oid_of(v, "content-type attribute"))
            .transpose()
    }

    /// The message-digest signed attribute.
    pub fn message_digest(&self) -> Result<Option<&[u8]>, SigError> {
        self.single_signed(&ID_MESSAGE_DIGEST, "message-digest")?
            .map(|v| value_of(v, Tag::OctetString, "message-digest attribute"))
            .transpose()
    }

    /// Whether the message-digest attribute equals the digest of `content` under the
    /// digestAlgorithm. No message-digest attribute is `Malformed`; an unknown algorithm
    /// `Unsupported`.
    pub fn message_digest_matches(&self, content: &[u8]) -> Result<bool, SigError> {
        let alg = self
            .digest_alg()
            .ok_or_else(|| unsupported(format!("digest algorithm {}", self.digest_algorithm)))?;
        let md = self
            .message_digest()?
            .ok_or_else(|| malformed("no message-digest attribute"))?;
        Ok(md == alg.digest(content).as_slice())
    }

    /// The signing-time signed attribute (UTCTime or GeneralizedTime, fractions of seconds kept).
    pub fn signing_time(&self) -> Result<Option<OffsetDateTime>, SigError> {
        self.single_signed(&ID_SIGNING_TIME, "signing-time")?
            .map(parse_time)
            .transpose()
    }

    /// The certificate references of the signing-certificate-v2 attribute (RFC 5035), first the
    /// signer's; `None` if absent.
    pub fn signing_certificate_v2(&self) -> Result<Option<Vec<EssCertId>>, SigError> {
        self.single_signed(&ID_AA_SIGNING_CERTIFICATE_V2, "signing-certificate-v2")?
            .map(|v| parse_signing_certificate(v, true, "signing-certificate-v2 attribute"))
            .transpose()
    }

    /// The certificate references of the (v1, SHA-1) signing-certificate attribute (RFC 2634), first
    /// the signer's; `None` if absent.
    pub fn signing_certificate_v1(&self) -> Result<Option<Vec<EssCertId>>, SigError> {
        self.single_signed(&ID_AA_SIGNING_CERTIFICATE, "signing-certificate")?
            .map(|v| parse_signing_certificate(v, false, "signing-certificate attribute"))
            .transpose()
    }

    /// The reference to the signer's own certificate: the first of signing-certificate-v2, else of
    /// signing-certificate (v1); `None` if the signer carries neither.
    pub fn signing_certificate_ref(&self) -> Result<Option<EssCertId>, SigError> {
        if let Some(v2) = self.signing_certificate_v2()? {
            return Ok(v2.into_iter().next());
        }
        Ok(self
            .signing_certificate_v1()?
            .and_then(|v1| v1.into_iter().next()))
    }
}

/// Decodes a `Time` (UTCTime or GeneralizedTime) value.
fn parse_time(tlv: &[u8]) -> Result<OffsetDateTime, SigError> {
    let (tag, value) = split(tlv).map_err(der_err("time"))?;
    if tag == Tag::UtcTime {
        let t = UtcTime::from_der(tlv).map_err(der_err("UTCTime"))?;
        let secs =
            i64::try_from(t.to_unix_duration().as_secs()).map_err(|_| malformed("UTCTime out of range"))?;
        OffsetDateTime::from_unix_timestamp(secs).map_err(|e| malformed(format!("UTCTime: {e}")))
    } else if tag == Tag::GeneralizedTime {
        parse_generalized_time(value).ok_or_else(|| malformed("GeneralizedTime: not YYYYMMDDHHMMSS[.f]Z"))
    } else {
        Err(malformed(format!("time: unexpected {tag}")))
    }
}

/// Decodes the value of a GeneralizedTime in the form RFC 5280 and RFC 3161 allow:
/// `YYYYMMDDHHMMSS[.f…]Z`, with any number of fraction digits (nanosecond precision is kept).
pub(crate) fn parse_generalized_time(value: &[u8]) -> Option<OffsetDateTime> {
    let s = std::str::from_utf8(value).ok()?;
    let s = s.strip_suffix('Z')?;
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| whole.get(r)?.parse::<u32>().ok();
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(num(6..8)?).ok()?).ok()?;
    let mut nanos = 0u32;
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        for (i, d) in f.bytes().take(9).enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
    }
    let t = time::Time::from_hms_nano(
        u8::try_from(num(8..10)?).ok()?,
        u8::try_from(num(10..12)?).ok()?,
        u8::try_from(num(12..14)?).ok()?,
        nanos,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

/// A CMS SignedData, decoded. Byte fields borrow from the parsed input, so that a verifier reads a
/// signature without copying it; [`into_owned`](Self::into_owned) detaches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignedData<'a> {
    /// The SignedData version.
    pub version: u8,
    /// The digestAlgorithms set.
    pub digest_algorithms: Vec<ObjectIdentifier>,
    /// The eContentType.
    pub econtent_type: ObjectIdentifier,
    /// The encapsulated content; `None` for a detached signature.
    pub econtent: Option<Cow<'a, [u8]>>,
    /// The X.509 certificates (DER) in the certificates field, in the order found; other certificate
    /// formats are left out.
    pub certificates: Vec<Cow<'a, [u8]>>,
    /// The X.509 CRLs (DER) in the crls field.
    pub crls: Vec<Cow<'a, [u8]>>,
    /// OtherRevocationInfoFormat entries of the crls field (RFC 5652 §10.2.1): format and info DER,
    /// e.g. OCSP responses under id-ri-ocsp-response (RFC 5940).
    pub other_revocation_info: Vec<(ObjectIdentifier, Cow<'a, [u8]>)>,
    /// The signers.
    pub signers: Vec<ParsedSigner<'a>>,
}

impl<'a> ParsedSignedData<'a> {
    /// Decodes a DER ContentInfo of type id-signedData. Trailing zero bytes (padding, as in a PDF
    /// `/Contents`) are ignored. Over [`MAX_CMS_LEN`] bytes is `TooLarge`; anything not a SignedData
    /// is `Malformed`.
    pub fn parse(der: &'a [u8]) -> Result<Self, SigError> {
        let content_info = single_tlv(der)?;
        let raw = RawSignedData::parse(signed_data_tlv(content_info)?)?;
        let version = u8::from_der(raw.version).map_err(der_err("SignedData version"))?;
        let digest_algorithms = TlvIter(value_of(raw.digest_algorithms, Tag::Set, "digestAlgorithms")?)
            .map(|a| algorithm_oid(a.map_err(der_err("digestAlgorithms"))?, "digestAlgorithms"))
            .collect::<Result<Vec<_>, _>>()?;
        let encap = tlvs(value_of(raw.encap, Tag::Sequence, "encapContentInfo")?)
            .map_err(der_err("encapContentInfo"))?;
        let (econtent_type, econtent) = match encap.as_slice() {
            [ct] => (ct, None),
            [ct, c] => (ct, Some(c)),
            _ => return Err(malformed("encapContentInfo: expected eContentType and eContent")),
        };
        let econtent_type = oid_of(econtent_type, "eContentType")?;
        let econtent = match econtent {
            Some(c) => {
                let inner = value_of(c, CTX0, "eContent")?;
                Some(Cow::Borrowed(value_of(inner, Tag::OctetString, "eContent")?))
            }
            None => None,
        };
        let mut certificates = Vec::new();
        if let Some(c) = raw.certificates {
            for cert in TlvIter(value_of(c, CTX0, "certificates")?) {
                let cert = cert.map_err(der_err("certificates"))?;
                // Only the `certificate` choice (a SEQUENCE); attribute and other formats are tagged.
                if tag_of(cert) == Some(Tag::Sequence) {
                    certificates.push(Cow::Borrowed(cert));
                }
            }
        }
        let mut crls = Vec::new();
        let mut other_revocation_info = Vec::new();
        if let Some(c) = raw.crls {
            for crl in tlvs(value_of(c, CTX1, "crls")?).map_err(der_err("crls"))? {
                match tag_of(crl) {
                    Some(Tag::Sequence) => crls.push(Cow::Borrowed(crl)),
                    Some(t) if t == CTX1 => {
                        let fields = tlvs(value_of(crl, CTX1, "otherRevocationInfo")?)
                            .map_err(der_err("otherRevocationInfo"))?;
                        let [format, info] = fields.as_slice() else {
                            return Err(malformed("otherRevocationInfo: expected format and info"));
                        };
                        let format =
                            ObjectIdentifier::from_der(format).map_err(der_err("otherRevInfoFormat"))?;
                        other_revocation_info.push((format, Cow::Borrowed(*info)));
                    }
                    _ => return Err(malformed("crls: neither a CRL nor other revocation info")),
                }
            }
        }
        let signers = raw
            .signer_infos
            .iter()
            .map(ParsedSigner::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            version,
            digest_algorithms,
            econtent_type,
            econtent,
            certificates,
            crls,
            other_revocation_info,
            signers,
        })
    }
}

impl ParsedSignedData<'_> {
    /// The same SignedData, owning its bytes.
    pub fn into_owned(self) -> ParsedSignedData<'static> {
        ParsedSignedData {
            version: self.version,
            digest_algorithms: self.digest_algorithms,
            econtent_type: self.econtent_type,
            econtent: self.econtent.map(owned),
            certificates: self.certificates.into_iter().map(owned).collect(),
            crls: self.crls.into_iter().map(owned).collect(),
            other_revocation_info: self
                .other_revocation_info
                .into_iter()
                .map(|(f, i)| (f, owned(i)))
                .collect(),
            signers: self.signers.into_iter().map(ParsedSigner::into_owned).collect(),
        }
    }

    /// The certificate (DER) among [`certificates`](Self::certificates) that `signer`'s sid names.
    pub fn find_signer_certificate(&self, signer: &ParsedSigner<'_>) -> Option<&[u8]> {
        self.certificates
            .iter()
            .map(AsRef::as_ref)
            .find(|c| signer.sid.matches(c))
    }
}

// ---------------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    RsaPkcs1,
    Ecdsa,
}

/// The scheme of a signatureAlgorithm and the hash it names (`None`: the digestAlgorithm's).
fn signature_scheme(alg: &AlgorithmIdentifierOwned) -> Result<(Scheme, Option<DigestAlg>), SigError> {
    Ok(match alg.oid {
        o if o == RSA_ENCRYPTION => (Scheme::RsaPkcs1, None),
        o if o == SHA256_WITH_RSA => (Scheme::RsaPkcs1, Some(DigestAlg::Sha256)),
        o if o == SHA384_WITH_RSA => (Scheme::RsaPkcs1, Some(DigestAlg::Sha384)),
        o if o == SHA512_WITH_RSA => (Scheme::RsaPkcs1, Some(DigestAlg::Sha512)),
        o if o == EC_PUBLIC_KEY => (Scheme::Ecdsa, None),
        o if o == ECDSA_WITH_SHA256 => (Scheme::Ecdsa, Some(DigestAlg::Sha256)),
        o if o == ECDSA_WITH_SHA384 => (Scheme::Ecdsa, Some(DigestAlg::Sha384)),
        o if o == ECDSA_WITH_SHA512 => (Scheme::Ecdsa, Some(DigestAlg::Sha512)),
        o if o == RSASSA_PSS => return Err(unsupported("signature algorithm RSASSA-PSS")),
        o => return Err(unsupported(format!("signature algorithm {o}"))),
    })
}

fn verification_algorithm(
    scheme: Scheme,
    key: KeyKind,
    hash: DigestAlg,
) -> Result<&'static dyn VerificationAlgorithm, SigError> {
    use DigestAlg::{Sha256, Sha384, Sha512};
    Ok(match (scheme, key, hash) {
        (Scheme::RsaPkcs1, KeyKind::Rsa, Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (Scheme::RsaPkcs1, KeyKind::Rsa, Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (Scheme::RsaPkcs1, KeyKind::Rsa, Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (Scheme::Ecdsa, KeyKind::P256, Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (Scheme::Ecdsa, KeyKind::P256, Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
        (Scheme::Ecdsa, KeyKind::P256, Sha512) => &signature::ECDSA_P256_SHA512_ASN1,
        (Scheme::Ecdsa, KeyKind::P384, Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
        (Scheme::Ecdsa, KeyKind::P384, Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
        (Scheme::Ecdsa, KeyKind::P384, Sha512) => &signature::ECDSA_P384_SHA512_ASN1,
        (Scheme::Ecdsa, KeyKind::P521, Sha256) => &signature::ECDSA_P521_SHA256_ASN1,
        (Scheme::Ecdsa, KeyKind::P521, Sha384) => &signature::ECDSA_P521_SHA384_ASN1,
        (Scheme::Ecdsa, KeyKind::P521, Sha512) => &signature::ECDSA_P521_SHA512_ASN1,
        (Scheme::RsaPkcs1, _, _) => {
            return Err(malformed("an RSA signature, but the certificate's key is EC"));
        }
        (Scheme::Ecdsa, _, _) => {
            return Err(malformed("an ECDSA signature, but the certificate's key is RSA"));
        }
    })
}

/// Checks `signer`'s signature over its signed attributes with the public key of the DER certificate
/// `cert_der`: `Ok(true)` if it verifies, `Ok(false)` if not.
///
/// Supported: RSA PKCS#1 v1.5 (sha256/384/512WithRSAEncryption, or rsaEncryption with the hash of the
/// digestAlgorithm, as OpenSSL writes) with 2048- to 8192-bit keys, and ECDSA on P-256, P-384 and
/// P-521 with SHA-256/384/512. RSASSA-PSS and signers without signed attributes are `Unsupported`; a
/// signatureAlgorithm whose hash differs from the digestAlgorithm, or that does not fit the key, is
/// `Malformed`. This does not look at what the attributes say (see
/// [`ParsedSigner::message_digest_matches`]) nor at the certificate's validity.
pub fn verify_signer(signer: &ParsedSigner<'_>, cert_der: &[u8]) -> Result<bool, SigError> {
    let Some(signed) = &signer.signed_attrs_der else {
        return Err(unsupported("a signer without signed attributes"));
    };
    let digest = signer
        .digest_alg()
        .ok_or_else(|| unsupported(format!("digest algorithm {}", signer.digest_algorithm)))?;
    let (scheme, hash) = signature_scheme(&signer.signature_algorithm)?;
    if let Some(h) = hash
        && h != digest
    {
        return Err(malformed(format!(
            "signatureAlgorithm hashes with {h} but digestAlgorithm is {digest}"
        )));
    }
    let cert = Certificate::from_der(cert_der).map_err(der_err("signer certificate"))?;
    let spki = cert.tbs_certificate().subject_public_key_info();
    let alg = verification_algorithm(scheme, key_kind(spki)?, digest)?;
    Ok(UnparsedPublicKey::new(alg, spki.subject_public_key.raw_bytes())
        .verify(signed, &signer.signature)
        .is_ok())
}

/// Certificates for tests: a small issuer built with x509-cert types and [`jpki_pki::SigningKey`].
#[cfg(test)]
pub(crate) mod testing {
    use der::asn1::{BitString, OctetString, Uint, Utf8StringRef};
    use der::{Decode, Encode};
    use jpki_pki::{KeyType, SigningKey};
    use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    use x509_cert::attr::AttributeTypeAndValue;
    use x509_cert::certificate::Version;
    use x509_cert::ext::Extension;
    use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
    use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
    use x509_cert::time::Validity;

    #[derive(der::Sequence)]
    struct Tbs {
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
        version: Version,
        serial_number: Uint,
        signature: AlgorithmIdentifierOwned,
        issuer: Name,
        validity: Validity,
        subject: Name,
        subject_public_key_info: SubjectPublicKeyInfoOwned,
        #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
        extensions: Vec<Extension>,
    }

    #[derive(der::Sequence)]
    struct Signed<'a> {
        tbs: der::asn1::AnyRef<'a>,
        algorithm: AlgorithmIdentifierOwned,
        signature: BitString,
    }

    /// `CN=<cn>, O=OpenJPKI Test`.
    pub(crate) fn name(cn: &str) -> Name {
        let mut seq = RdnSequence::default();
        for (oid, v) in [("2.5.4.10", "OpenJPKI Test"), ("2.5.4.3", cn)] {
            let atv = AttributeTypeAndValue {
                oid: const_oid::ObjectIdentifier::new_unwrap(oid),
                value: der::Any::encode_from(&Utf8StringRef::new(v).unwrap()).unwrap(),
            };
            seq.push(RelativeDistinguishedName::try_from(vec![atv]).unwrap());
        }
        Name::hazmat_from_rdn_sequence(seq)
    }

    pub(crate) fn ext<T: Encode>(id: &str, critical: bool, v: &T) -> Extension {
        Extension {
            extn_id: const_oid::ObjectIdentifier::new_unwrap(id),
            critical,
            extn_value: OctetString::new(v.to_der().unwrap()).unwrap(),
        }
    }

    /// extendedKeyUsage id-kp-timeStamping.
    pub(crate) fn eku_time_stamping(critical: bool) -> Extension {
        ext(
            "2.5.29.37",
            critical,
            &ExtendedKeyUsage(vec![jpki_pki::oid::KP_TIME_STAMPING]),
        )
    }

    /// keyUsage digitalSignature (critical).
    pub(crate) fn ku_digital_signature() -> Extension {
        ext("2.5.29.15", true, &KeyUsage(KeyUsages::DigitalSignature.into()))
    }

    /// basicConstraints CA (critical) and keyUsage keyCertSign.
    pub(crate) fn ca_extensions() -> Vec<Extension> {
        vec![
            ext(
                "2.5.29.19",
                true,
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                },
            ),
            ext("2.5.29.15", true, &KeyUsage(KeyUsages::KeyCertSign.into())),
        ]
    }

    /// A certificate for `subject_spki_der` named `CN=<cn>`, signed by `issuer` (name and key).
    pub(crate) fn issue(
        cn: &str,
        subject_spki_der: &[u8],
        issuer: (&Name, &SigningKey),
        serial: &[u8],
        extensions: Vec<Extension>,
    ) -> Vec<u8> {
        let t = |s: i64| {
            jpki_pki::time::to_x509("validity", time::OffsetDateTime::from_unix_timestamp(s).unwrap())
                .unwrap()
        };
        let tbs = Tbs {
            version: Version::V3,
            serial_number: Uint::new(serial).unwrap(),
            signature: issuer.1.key_type().signature_algorithm(),
            issuer: issuer.0.clone(),
            validity: Validity::new(t(1_600_000_000), t(4_000_000_000)),
            subject: name(cn),
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(subject_spki_der).unwrap(),
            extensions,
        }
        .to_der()
        .unwrap();
        let sig = issuer.1.sign(&tbs).unwrap();
        Signed {
            tbs: der::asn1::AnyRef::from_der(&tbs).unwrap(),
            algorithm: issuer.1.key_type().signature_algorithm(),
            signature: BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    /// A fresh key and a self-signed certificate for it with `extensions`.
    pub(crate) fn self_signed(kt: KeyType, cn: &str, extensions: Vec<Extension>) -> (SigningKey, Vec<u8>) {
        let key = SigningKey::generate(kt).unwrap();
        let cert = issue(
            cn,
            &key.spki_der().unwrap(),
            (&name(cn), &key),
            &[0x42, 0x01],
            extensions,
        );
        (key, cert)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use der::Tagged;
    use jpki_pki::{KeyType, SigningKey};
    use proptest::prelude::*;
    use std::sync::OnceLock;
    use time::macros::datetime;

    struct Fixture {
        key: SigningKey,
        cert: Vec<u8>,
        ca: Vec<u8>,
    }

    fn rsa() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| fixture(KeyType::Rsa2048))
    }

    fn fixture(kt: KeyType) -> Fixture {
        let (ca_key, ca) = self_signed(kt, "Test CA", ca_extensions());
        let key = SigningKey::generate(kt).unwrap();
        let cert = issue(
            "Signer",
            &key.spki_der().unwrap(),
            (&name("Test CA"), &ca_key),
            &[0x00, 0x81, 0x02],
            vec![ku_digital_signature()],
        );
        Fixture { key, cert, ca }
    }

    fn digest_for(key: &SigningKey) -> DigestAlg {
        match key.key_type() {
            KeyType::Rsa2048 => DigestAlg::Sha256,
            _ => DigestAlg::Sha384,
        }
    }

    /// A detached id-data signature over `doc` by the fixture, with the usual CAdES attributes.
    fn sign(f: &Fixture, doc: &[u8], content: bool) -> Vec<u8> {
        let alg = digest_for(&f.key);
        let attrs = [
            attr_signing_time(datetime!(2031-05-09 14:59:59 UTC)).unwrap(),
            attr_content_type(ID_DATA).unwrap(),
            attr_message_digest(&alg.digest(doc)).unwrap(),
            attr_signing_certificate_v2(&f.cert).unwrap(),
        ];
        let to_sign = signed_attributes_der(&attrs).unwrap();
        let sig = f.key.sign(&to_sign).unwrap();
        let certs = [f.cert.clone(), f.ca.clone()];
        let mut b = SignedDataBuilder::new(&f.cert, alg, ID_DATA).certificates(&certs);
        if content {
            b = b.content(doc);
        }
        b.build(&to_sign, &sig).unwrap()
    }

    fn sample() -> &'static [u8] {
        static S: OnceLock<Vec<u8>> = OnceLock::new();
        S.get_or_init(|| {
            let cms = sign(rsa(), b"hello", false);
            let ts = attribute(ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &[&cms]).unwrap();
            set_unsigned_attribute(&cms, &ts).unwrap()
        })
    }

    #[test]
    fn digest_algorithms() {
        for a in [DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512] {
            assert_eq!(DigestAlg::from_oid(&a.oid()), Some(a));
            assert_eq!(a.digest(b"x").len(), a.output_len());
        }
        assert_eq!(DigestAlg::from_oid(&ID_SHA1), None);
        assert_eq!(
            hex::encode(DigestAlg::Sha256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn signing_time_encoding() {
        let utc = attr_signing_time(datetime!(2049-12-31 23:59:59 UTC)).unwrap();
        assert_eq!(utc.values.get(0).unwrap().tag(), Tag::UtcTime);
        let gen_t = attr_signing_time(datetime!(2050-01-01 00:00:00.7 UTC)).unwrap();
        assert_eq!(gen_t.values.get(0).unwrap().tag(), Tag::GeneralizedTime);
        assert!(attr_signing_time(datetime!(1969-12-31 23:59:59 UTC)).is_err());
    }

    #[test]
    fn signed_attributes_are_sorted_and_unique() {
        let a = attr_message_digest(&[1; 32]).unwrap();
        let b = attr_content_type(ID_DATA).unwrap();
        let one = signed_attributes_der(&[a.clone(), b.clone()]).unwrap();
        let two = signed_attributes_der(&[b.clone(), a.clone()]).unwrap();
        assert_eq!(one, two);
        assert_eq!(one[0], 0x31);
        assert!(signed_attributes_der(&[a.clone(), a]).is_err());
        assert!(signed_attributes_der(&[]).is_err());
    }

    #[test]
    fn build_parse_verify_rsa_and_p384() {
        let p384 = fixture(KeyType::P384);
        for (f, content) in [(rsa(), false), (rsa(), true), (&p384, false)] {
            let cms = sign(f, b"document", content);
            let p = ParsedSignedData::parse(&cms).unwrap();
            assert_eq!(p.version, 1);
            assert_eq!(p.econtent_type, ID_DATA);
            assert_eq!(p.econtent.as_deref(), content.then_some(&b"document"[..]));
            assert_eq!(p.certificates.len(), 2);
            assert!(
                p.certificates.iter().any(|c| c.as_ref() == f.cert.as_slice())
                    && p.certificates.iter().any(|c| c.as_ref() == f.ca.as_slice())
            );
            assert_eq!(p.signers.len(), 1);
            let s = &p.signers[0];
            assert_eq!(s.version, 1);
            assert_eq!(p.find_signer_certificate(s), Some(f.cert.as_slice()));
            assert_eq!(s.content_type().unwrap(), Some(ID_DATA));
            assert!(s.message_digest_matches(b"document").unwrap());
            assert!(!s.message_digest_matches(b"documenT").unwrap());
            assert_eq!(
                s.signing_time().unwrap(),
                Some(datetime!(2031-05-09 14:59:59 UTC))
            );
            let ess = s.signing_certificate_v2().unwrap().unwrap();
            assert_eq!(ess.len(), 1);
            assert_eq!(ess[0].hash_algorithm, ID_SHA256);
            assert!(ess[0].matches(&f.cert).unwrap());
            assert!(!ess[0].matches(&f.ca).unwrap());
            assert_eq!(
                ess[0].issuer_serial.as_ref().unwrap().serial,
                vec![0x00, 0x81, 0x02]
            );
            assert!(s.signing_certificate_v1().unwrap().is_none());
            assert_eq!(s.signing_certificate_ref().unwrap().as_ref(), Some(&ess[0]));
            assert!(verify_signer(s, &f.cert).unwrap());
            // Another key does not verify; the CA certificate has the same key type.
            assert!(!verify_signer(s, &f.ca).unwrap());
        }
    }

    #[test]
    fn signature_algorithm_follows_key_and_digest() {
        let cms = sign(rsa(), b"x", false);
        let p = ParsedSignedData::parse(&cms).unwrap();
        let sa = &p.signers[0].signature_algorithm;
        assert_eq!(sa.oid, SHA256_WITH_RSA);
        assert_eq!(sa.parameters.as_ref().map(|a| a.is_null()), Some(true));
        let p384 = fixture(KeyType::P384);
        let cms = sign(&p384, b"x", false);
        let p = ParsedSignedData::parse(&cms).unwrap();
        assert_eq!(p.signers[0].signature_algorithm.oid, ECDSA_WITH_SHA384);
        assert!(p.signers[0].signature_algorithm.parameters.is_none());
        assert_eq!(p.signers[0].digest_algorithm, ID_SHA384);
    }

    #[test]
    fn version_3_for_other_content_types() {
        let f = rsa();
        let attrs = [
            attr_content_type(jpki_pki::oid::TSA_POLICY).unwrap(),
            attr_message_digest(&DigestAlg::Sha256.digest(b"c")).unwrap(),
        ];
        let to_sign = signed_attributes_der(&attrs).unwrap();
        let sig = f.key.sign(&to_sign).unwrap();
        let cms = SignedDataBuilder::new(&f.cert, DigestAlg::Sha256, jpki_pki::oid::TSA_POLICY)
            .content(b"c")
            .build(&to_sign, &sig)
            .unwrap();
        let p = ParsedSignedData::parse(&cms).unwrap();
        assert_eq!(p.version, 3);
        assert!(p.certificates.is_empty());
        assert!(verify_signer(&p.signers[0], &f.cert).unwrap());
    }

    #[test]
    fn builder_refuses_attributes_that_were_not_signed_form() {
        let f = rsa();
        let md = attr_message_digest(&DigestAlg::Sha256.digest(b"c")).unwrap();
        let attrs = signed_attributes_der(&[attr_content_type(ID_DATA).unwrap(), md.clone()]).unwrap();
        let mut tagged = attrs.clone();
        tagged[0] = 0xA0;
        let b = SignedDataBuilder::new(&f.cert, DigestAlg::Sha256, ID_DATA);
        assert!(b.build(&tagged, b"sig").is_err());
        assert!(b.build(b"\x31\x00", b"sig").is_err());
        assert!(
            SignedDataBuilder::new(b"junk", DigestAlg::Sha256, ID_DATA)
                .build(&attrs, b"s")
                .is_err()
        );
        // The attributes must agree with the content.
        assert!(b.build(&attrs, b"sig").is_ok());
        assert!(b.clone().content(b"c").build(&attrs, b"sig").is_ok());
        let err = b
            .clone()
            .content(b"d")
            .build(&attrs, b"sig")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not the digest of the content"), "{err}");
        let other = SignedDataBuilder::new(&f.cert, DigestAlg::Sha256, jpki_pki::oid::TSA_POLICY);
        let err = other.build(&attrs, b"sig").unwrap_err().to_string();
        assert!(err.contains("content-type"), "{err}");
        let no_md = signed_attributes_der(&[attr_content_type(ID_DATA).unwrap()]).unwrap();
        let err = b.build(&no_md, b"sig").unwrap_err().to_string();
        assert!(err.contains("message-digest"), "{err}");
    }

    #[test]
    fn unsigned_attribute_added_and_replaced() {
        let cms = sign(rsa(), b"hello", false);
        let before = ParsedSignedData::parse(&cms).unwrap();
        let t1 = attribute(ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &[b"\x04\x01\x01"]).unwrap();
        let once = set_unsigned_attribute(&cms, &t1).unwrap();
        let p = ParsedSignedData::parse(&once).unwrap();
        let s = &p.signers[0];
        assert_eq!(
            s.unsigned_attribute_values(&ID_AA_SIGNATURE_TIME_STAMP_TOKEN),
            vec![&b"\x04\x01\x01"[..]]
        );
        assert_eq!(s.signed_attrs_der, before.signers[0].signed_attrs_der);
        assert_eq!(s.signature, before.signers[0].signature);
        assert!(verify_signer(s, &rsa().cert).unwrap());
        let other = attribute(ID_DATA, &[b"\x05\x00"]).unwrap();
        let t2 = attribute(
            ID_AA_SIGNATURE_TIME_STAMP_TOKEN,
            &[b"\x04\x01\x02", b"\x04\x01\x03"],
        )
        .unwrap();
        let twice = set_unsigned_attribute(&set_unsigned_attribute(&once, &other).unwrap(), &t2).unwrap();
        let p = ParsedSignedData::parse(&twice).unwrap();
        let s = &p.signers[0];
        assert_eq!(
            s.unsigned_attribute_values(&ID_AA_SIGNATURE_TIME_STAMP_TOKEN),
            vec![&b"\x04\x01\x02"[..], &b"\x04\x01\x03"[..]]
        );
        assert_eq!(s.unsigned_attribute_values(&ID_DATA).len(), 1);
        assert_eq!(s.unsigned_attrs.len(), 2);
        assert_eq!(p.certificates, before.certificates);
        assert!(set_unsigned_attribute(b"\x30\x00", &t1).is_err());
    }

    #[test]
    fn signed_attributes_kept_as_encoded() {
        // Unsorted (non-DER) signed attributes are verified over their original bytes.
        let f = rsa();
        let ct = attr_content_type(ID_DATA).unwrap().to_der().unwrap();
        let md = attr_message_digest(&DigestAlg::Sha256.digest(b"d"))
            .unwrap()
            .to_der()
            .unwrap();
        let (first, second) = if ct > md { (&ct, &md) } else { (&md, &ct) };
        let unsorted = tlv(Tag::Set, &[first, second]).unwrap();
        let sig = f.key.sign(&unsorted).unwrap();
        // Put them into a normal signature in place of its own signed attributes and signature.
        let cms = rewrite_first_signer(&sign(f, b"d", false), |si| {
            let signed = tlv(CTX0, &[value_of(&unsorted, Tag::Set, "test").unwrap()]).unwrap();
            let sig = OctetStringRef::new(&sig).unwrap().to_der().unwrap();
            tlv(
                Tag::Sequence,
                &[si.version, si.sid, si.digest_alg, &signed, si.signature_alg, &sig],
            )
        })
        .unwrap();
        let q = ParsedSignedData::parse(&cms).unwrap();
        assert_eq!(
            q.signers[0].signed_attrs_der.as_deref(),
            Some(unsorted.as_slice())
        );
        assert!(verify_signer(&q.signers[0], &f.cert).unwrap());
        assert!(q.signers[0].message_digest_matches(b"d").unwrap());
    }

    #[test]
    fn rejects_other_content_and_garbage() {
        assert!(matches!(
            ParsedSignedData::parse(b""),
            Err(SigError::Malformed {
                what: "CMS signature",
                ..
            })
        ));
        let data_ci = tlv(
            Tag::Sequence,
            &[&ID_DATA.to_der().unwrap(), &tlv(CTX0, &[b"\x04\x00"]).unwrap()],
        )
        .unwrap();
        assert!(ParsedSignedData::parse(&data_ci).is_err());
        let big = vec![0u8; MAX_CMS_LEN + 1];
        assert!(matches!(
            ParsedSignedData::parse(&big),
            Err(SigError::TooLarge { .. })
        ));
        // Zero padding after the structure is fine, anything else is not.
        let mut padded = sample().to_vec();
        padded.extend([0; 100]);
        assert!(ParsedSignedData::parse(&padded).is_ok());
        padded.push(1);
        assert!(ParsedSignedData::parse(&padded).is_err());
    }

    #[test]
    fn verify_checks_algorithms() {
        let f = rsa();
        let cms = sign(f, b"x", false);
        let p = ParsedSignedData::parse(&cms).unwrap();
        let mut s = p.signers[0].clone();
        s.digest_algorithm = ID_SHA384;
        assert!(matches!(
            verify_signer(&s, &f.cert),
            Err(SigError::Malformed { .. })
        ));
        s.signature_algorithm.oid = RSA_ENCRYPTION;
        s.digest_algorithm = ID_SHA256;
        assert!(verify_signer(&s, &f.cert).unwrap());
        s.signature_algorithm.oid = RSASSA_PSS;
        assert!(matches!(
            verify_signer(&s, &f.cert),
            Err(SigError::Unsupported { .. })
        ));
        s.signature_algorithm.oid = ECDSA_WITH_SHA256;
        assert!(matches!(
            verify_signer(&s, &f.cert),
            Err(SigError::Malformed { .. })
        ));
        let mut s = p.signers[0].clone();
        s.signed_attrs_der = None;
        assert!(matches!(
            verify_signer(&s, &f.cert),
            Err(SigError::Unsupported { .. })
        ));
        let mut s = p.signers[0].clone();
        s.signature.to_mut()[10] ^= 1;
        assert!(!verify_signer(&s, &f.cert).unwrap());
    }

    #[test]
    fn p256_signatures_verify() {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let f = rsa();
        let k = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let spki = k.public_key().as_der().unwrap();
        // The RSA signer issues the P-256 certificate; only its key matters here.
        let cert = issue(
            "P-256 signer",
            spki.as_ref(),
            (&name("Signer"), &f.key),
            &[7],
            vec![],
        );
        let attrs = [
            attr_content_type(ID_DATA).unwrap(),
            attr_message_digest(&DigestAlg::Sha256.digest(b"p")).unwrap(),
        ];
        let to_sign = signed_attributes_der(&attrs).unwrap();
        let sig = k.sign(&aws_lc_rs::rand::SystemRandom::new(), &to_sign).unwrap();
        let cms = SignedDataBuilder::new(&cert, DigestAlg::Sha256, ID_DATA)
            .build(&to_sign, sig.as_ref())
            .unwrap();
        let p = ParsedSignedData::parse(&cms).unwrap();
        assert_eq!(p.signers[0].signature_algorithm.oid, ECDSA_WITH_SHA256);
        assert!(verify_signer(&p.signers[0], &cert).unwrap());
        assert!(matches!(
            verify_signer(&p.signers[0], &f.cert),
            Err(SigError::Malformed { .. })
        ));
    }

    #[test]
    fn subject_key_identifier_sid() {
        let f = rsa();
        let ski = x509_cert::ext::pkix::SubjectKeyIdentifier(OctetString::new(vec![9; 20]).unwrap());
        let cert = issue(
            "SKI",
            &f.key.spki_der().unwrap(),
            (&name("Test CA"), &f.key),
            &[5],
            vec![ext("2.5.29.14", false, &ski)],
        );
        let sid = SignerId::SubjectKeyId(vec![9; 20].into());
        assert!(sid.matches(&cert));
        assert!(!sid.matches(&f.cert));
        assert!(!sid.matches(b"garbage"));
        assert!(SignerId::parse(&tlv(CTX0_PRIMITIVE, &[&[9; 20]]).unwrap()).unwrap() == sid);
    }

    #[test]
    fn generalized_time_with_fractions() {
        assert_eq!(
            parse_generalized_time(b"20310509145959.25Z"),
            Some(datetime!(2031-05-09 14:59:59.25 UTC))
        );
        assert_eq!(
            parse_generalized_time(b"20310509145959Z"),
            Some(datetime!(2031-05-09 14:59:59 UTC))
        );
        for bad in [
            &b"20310509145959"[..],
            b"2031050914595Z",
            b"20311309145959Z",
            b"20310509145959.Z",
            b"2031050914595+Z",
        ] {
            assert_eq!(parse_generalized_time(bad), None);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ParsedSignedData::parse(&bytes);
            let mut with_header = vec![0x30, 0x82, 0x01, 0x00];
            with_header.extend(&bytes);
            let _ = ParsedSignedData::parse(&with_header);
        }

        #[test]
        fn mutations_never_panic(cut in 0usize..4096, flips in proptest::collection::vec((0usize..4096, 0u8..8), 1..4)) {
            let s = sample();
            let _ = ParsedSignedData::parse(&s[..cut % s.len()]);
            let mut m = s.to_vec();
            for (pos, bit) in flips {
                let i = pos % m.len();
                m[i] ^= 1 << bit;
            }
            if let Ok(p) = ParsedSignedData::parse(&m) {
                for signer in &p.signers {
                    let _ = signer.content_type();
                    let _ = signer.message_digest();
                    let _ = signer.signing_time();
                    let _ = signer.signing_certificate_ref();
                    let _ = p.find_signer_certificate(signer);
                    let _ = verify_signer(signer, &rsa().cert);
                }
            }
            let t = attribute(ID_DATA, &[b"\x05\x00"]).unwrap();
            let _ = set_unsigned_attribute(&m, &t);
        }
    }
}
