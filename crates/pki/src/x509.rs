//! Certificates as a verifier reads them: any RSA or ECDSA certificate, not only ours. The fields
//! path validation and signature validation need, decoded once; public keys parsed once and kept
//! (`aws_lc_rs::signature::ParsedPublicKey`), so checking many signatures by one signer does not
//! re-parse its key.
use std::sync::OnceLock;

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier as Oid;
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage,
    KeyUsage, KeyUsages, SubjectKeyIdentifier,
};

use crate::san::JpkiSan;
use crate::{PkiError, oid, time::from_x509};

/// Largest certificate accepted (real ones are about 1–2 KiB).
pub const MAX_CERT_LEN: usize = 64 * 1024;

/// sha384WithRSAEncryption.
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption.
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// ecdsa-with-SHA256.
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA512.
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
/// secp256r1 (P-256).
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// secp521r1 (P-521).
pub const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");

/// Hash functions a signature algorithm can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// The key type of a subject public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, with its modulus length in bits.
    Rsa(usize),
    /// ECDSA on P-256.
    P256,
    /// ECDSA on P-384.
    P384,
    /// ECDSA on P-521.
    P521,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rsa(bits) => write!(f, "RSA-{bits}"),
            Self::P256 => f.write_str("P-256"),
            Self::P384 => f.write_str("P-384"),
            Self::P521 => f.write_str("P-521"),
        }
    }
}

/// A subject public key, parsed for verification on first use per algorithm.
pub struct PublicKey {
    kind: KeyKind,
    raw: Vec<u8>,
    /// One parsed key per hash (RSA keys are parsed per PKCS#1 digest; EC per hash too).
    parsed: [OnceLock<Option<ParsedPublicKey>>; 3],
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.kind)
    }
}

impl Clone for PublicKey {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            raw: self.raw.clone(),
            parsed: Default::default(),
        }
    }
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo (RSA, or EC on P-256, P-384 or P-521).
    pub fn from_spki(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<Self, PkiError> {
        let raw = spki.subject_public_key.raw_bytes().to_vec();
        let kind = if spki.algorithm.oid == oid::RSA_ENCRYPTION {
            KeyKind::Rsa(rsa_bits(&raw)?)
        } else if spki.algorithm.oid == oid::EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<Oid>().ok());
            match curve {
                Some(c) if c == SECP256R1 => KeyKind::P256,
                Some(c) if c == oid::SECP384R1 => KeyKind::P384,
                Some(c) if c == SECP521R1 => KeyKind::P521,
                _ => return Err(PkiError::Key("public key: EC key on an unsupported curve".into())),
            }
        } else {
            return Err(PkiError::Key(format!(
                "public key: algorithm {} is not RSA or EC",
                spki.algorithm.oid
            )));
        };
        Ok(Self {
            kind,
            raw,
            parsed: Default::default(),
        })
    }

    /// The key type.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    fn algorithm(&self, hash: Hash) -> &'static dyn VerificationAlgorithm {
        match (self.kind, hash) {
            (KeyKind::Rsa(_), Hash::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (KeyKind::Rsa(_), Hash::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            (KeyKind::Rsa(_), Hash::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
            (KeyKind::P256, Hash::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
            (KeyKind::P256, Hash::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
            (KeyKind::P256, Hash::Sha512) => &signature::ECDSA_P256_SHA512_ASN1,
            (KeyKind::P384, Hash::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
            (KeyKind::P384, Hash::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
            (KeyKind::P384, Hash::Sha512) => &signature::ECDSA_P384_SHA512_ASN1,
            (KeyKind::P521, Hash::Sha256) => &signature::ECDSA_P521_SHA256_ASN1,
            (KeyKind::P521, Hash::Sha384) => &signature::ECDSA_P521_SHA384_ASN1,
            (KeyKind::P521, Hash::Sha512) => &signature::ECDSA_P521_SHA512_ASN1,
        }
    }

    /// Whether `sig` is a signature over `msg` by this key with `alg` (a signature AlgorithmIdentifier
    /// OID). Returns an error only for an algorithm this key cannot use; a wrong signature is `false`.
    pub fn verify(&self, alg: &Oid, msg: &[u8], sig: &[u8]) -> Result<bool, PkiError> {
        let hash = signature_hash(alg)
            .ok_or_else(|| PkiError::Certificate(format!("unsupported signature algorithm {alg}")))?;
        let rsa_alg = [oid::SHA256_WITH_RSA, SHA384_WITH_RSA, SHA512_WITH_RSA].contains(alg);
        if rsa_alg != matches!(self.kind, KeyKind::Rsa(_)) {
            return Err(PkiError::Certificate(format!(
                "signature algorithm {alg} does not fit a {} key",
                self.kind
            )));
        }
        Ok(self.verify_with_hash(hash, msg, sig))
    }

    /// Whether `sig` is a PKCS#1 v1.5 (RSA) or ASN.1 ECDSA signature over `msg` with `hash`.
    pub fn verify_with_hash(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        let slot = &self.parsed[hash as usize];
        let parsed = slot.get_or_init(|| ParsedPublicKey::new(self.algorithm(hash), &self.raw).ok());
        parsed.as_ref().is_some_and(|k| k.verify_sig(msg, sig).is_ok())
    }

    /// Whether `sig` is a signature by this key over a message whose SHA-256 is `digest` (what a
    /// card signs when handed a caller's digest, as in a sign transaction).
    pub fn verify_sha256_digest(&self, digest: &[u8; 32], sig: &[u8]) -> bool {
        let Ok(d) = aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA256) else {
            return false;
        };
        let slot = &self.parsed[Hash::Sha256 as usize];
        let parsed = slot.get_or_init(|| ParsedPublicKey::new(self.algorithm(Hash::Sha256), &self.raw).ok());
        parsed
            .as_ref()
            .is_some_and(|k| k.verify_digest_sig(&d, sig).is_ok())
    }
}

/// The hash of a certificate/CRL/CMS signature algorithm OID, if supported.
pub fn signature_hash(alg: &Oid) -> Option<Hash> {
    match *alg {
        a if a == oid::SHA256_WITH_RSA || a == ECDSA_WITH_SHA256 => Some(Hash::Sha256),
        a if a == SHA384_WITH_RSA || a == oid::ECDSA_WITH_SHA384 => Some(Hash::Sha384),
        a if a == SHA512_WITH_RSA || a == ECDSA_WITH_SHA512 => Some(Hash::Sha512),
        _ => None,
    }
}

fn rsa_bits(rsa_public_key: &[u8]) -> Result<usize, PkiError> {
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

/// A certificate decoded for validation.
#[derive(Debug, Clone)]
pub struct ParsedCert {
    der: Vec<u8>,
    tbs_der: Vec<u8>,
    signature_algorithm: Oid,
    signature: Vec<u8>,
    /// Serial number, big-endian without leading zero bytes.
    pub serial: Vec<u8>,
    /// Subject DN, DER.
    pub subject_der: Vec<u8>,
    /// Issuer DN, DER.
    pub issuer_der: Vec<u8>,
    /// Subject DN, RFC 4514 text.
    pub subject: String,
    /// Issuer DN, RFC 4514 text.
    pub issuer: String,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// The subject public key.
    pub public_key: PublicKey,
    /// subjectKeyIdentifier.
    pub subject_key_id: Option<Vec<u8>>,
    /// authorityKeyIdentifier keyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// basicConstraints pathLenConstraint.
    pub path_len: Option<u8>,
    /// keyUsage, when present.
    pub key_usage: Option<KeyUsage>,
    /// extendedKeyUsage purposes, when present, and whether the extension is critical.
    pub extended_key_usage: Option<(Vec<Oid>, bool)>,
    /// certificatePolicies OIDs.
    pub policies: Vec<Oid>,
    /// URIs of the CRL distribution points.
    pub crl_urls: Vec<String>,
    /// The JPKI subjectAltName (the basic four information), when present and non-empty.
    pub jpki_san: Option<JpkiSan>,
    /// Critical extensions this reader does not understand (a verifier must reject the certificate).
    pub unknown_critical: Vec<Oid>,
    /// SHA-256 of the DER.
    pub sha256: [u8; 32],
}

/// A name in RFC 4514 text, exactly as x509-cert's `Display` writes it, without its linear search
/// of the whole OID database for the common attributes (that search was most of the cost of
/// parsing a certificate on the platform's request path). Anything else falls back to `Display`.
pub fn name_text(name: &x509_cert::name::Name) -> String {
    use std::fmt::Write as _;
    use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
    let short = |oid: &Oid| -> Option<&'static str> {
        Some(match oid.as_bytes() {
            [0x55, 0x04, 0x03] => "CN",
            [0x55, 0x04, 0x06] => "C",
            [0x55, 0x04, 0x07] => "L",
            [0x55, 0x04, 0x08] => "ST",
            [0x55, 0x04, 0x0a] => "O",
            [0x55, 0x04, 0x0b] => "OU",
            _ => return None,
        })
    };
    let mut out = String::with_capacity(64);
    let rdns: &x509_cert::name::RdnSequence = name.as_ref();
    let rdns: &Vec<x509_cert::name::RelativeDistinguishedName> = rdns.as_ref();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        let atvs: &der::asn1::SetOfVec<x509_cert::attr::AttributeTypeAndValue> = rdn.as_ref();
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in atvs.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let value = match der::Tagged::tag(&atv.value) {
                der::Tag::PrintableString => {
                    PrintableStringRef::try_from(&atv.value).ok().map(|s| s.as_str())
                }
                der::Tag::Utf8String => Utf8StringRef::try_from(&atv.value).ok().map(|s| s.as_str()),
                _ => None,
            };
            let (Some(key), Some(val)) = (short(&atv.oid), value) else {
                let _ = write!(out, "{atv}");
                continue;
            };
            out.push_str(key);
            out.push('=');
            let mut chars = val.char_indices().peekable();
            while let Some((k, c)) = chars.next() {
                match c {
                    '#' if k == 0 => out.push_str("\\#"),
                    ' ' if k == 0 || chars.peek().is_none() => out.push_str("\\ "),
                    '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '\x00'..='\x1f' | '\x7f' => {
                        let _ = write!(out, "\\{:02x}", c as u8);
                    }
                    _ => out.push(c),
                }
            }
        }
    }
    out
}

/// The parts of a certificate that a status check needs (serial, issuer, validity, signature), read
/// straight from the DER with [`crate::tlv`] and not decoding the rest: about a fifth of the cost of
/// [`ParsedCert::from_der`], for the platform's request path. The signature is checked over the
/// to-be-signed bytes exactly as they arrived.
#[derive(Debug, Clone)]
pub struct CertCore<'a> {
    /// The whole certificate.
    pub der: &'a [u8],
    /// The TBSCertificate TLV (what the issuer signed).
    pub tbs: &'a [u8],
    /// Serial number, big-endian without leading zero bytes.
    pub serial: &'a [u8],
    /// Issuer DN, DER (the whole Name TLV, as [`ParsedCert::issuer_der`]).
    pub issuer_der: &'a [u8],
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// The certificate signature algorithm.
    pub signature_algorithm: Oid,
    /// The signature value (the BIT STRING's octets).
    pub signature: &'a [u8],
}

impl<'a> CertCore<'a> {
    /// Reads `der`'s core; an error names the part that is not a certificate's.
    pub fn from_der(der: &'a [u8]) -> Result<Self, PkiError> {
        use crate::tlv::{TlvIter, read_tlv};
        let bad = |part: &str| PkiError::Certificate(format!("not a DER certificate ({part})"));
        if der.len() > MAX_CERT_LEN {
            return Err(PkiError::Certificate(format!(
                "{} bytes is over the limit of {MAX_CERT_LEN} bytes",
                der.len()
            )));
        }
        let outer = read_tlv(der).map_err(|_| bad("outer SEQUENCE"))?;
        if outer.tag != der::Tag::Sequence || !outer.rest.is_empty() {
            return Err(bad("outer SEQUENCE"));
        }
        let mut parts = TlvIter(outer.value);
        let mut next = |part: &'static str| -> Result<crate::tlv::Tlv<'a>, PkiError> {
            let whole = parts.next().ok_or_else(|| bad(part))?.map_err(|_| bad(part))?;
            read_tlv(whole).map_err(|_| bad(part))
        };
        let tbs = next("tbsCertificate")?;
        let alg = next("signatureAlgorithm")?;
        let sig = next("signatureValue")?;
        if parts.next().is_some() {
            return Err(bad("data after signatureValue"));
        }
        if tbs.tag != der::Tag::Sequence || alg.tag != der::Tag::Sequence || sig.tag != der::Tag::BitString {
            return Err(bad("certificate fields"));
        }
        let signature = match sig.value {
            [0, bits @ ..] => bits,
            _ => return Err(bad("signatureValue")),
        };
        let oid = read_tlv(alg.value).map_err(|_| bad("signatureAlgorithm"))?;
        if oid.tag != der::Tag::ObjectIdentifier {
            return Err(bad("signatureAlgorithm"));
        }
        let signature_algorithm = Oid::from_bytes(oid.value).map_err(|_| bad("signatureAlgorithm"))?;
        let mut fields = TlvIter(tbs.value);
        let mut field = |part: &'static str| -> Result<crate::tlv::Tlv<'a>, PkiError> {
            let whole = fields.next().ok_or_else(|| bad(part))?.map_err(|_| bad(part))?;
            read_tlv(whole).map_err(|_| bad(part))
        };
        let mut first = field("version")?;
        if first.tag.is_context_specific() {
            first = field("serialNumber")?;
        }
        if first.tag != der::Tag::Integer || first.value.is_empty() {
            return Err(bad("serialNumber"));
        }
        let mut serial = first.value;
        while let [0, rest @ ..] = serial {
            serial = rest;
        }
        let _signature = field("signature")?;
        let issuer = field("issuer")?;
        let validity = field("validity")?;
        if issuer.tag != der::Tag::Sequence || validity.tag != der::Tag::Sequence {
            return Err(bad("issuer or validity"));
        }
        let time = |whole: &[u8]| -> Result<OffsetDateTime, PkiError> {
            let t = x509_cert::time::Time::from_der(whole).map_err(|_| bad("validity"))?;
            from_x509(&t)
        };
        let mut times = TlvIter(validity.value);
        let (Some(Ok(nb)), Some(Ok(na)), None) = (times.next(), times.next(), times.next()) else {
            return Err(bad("validity"));
        };
        Ok(Self {
            der,
            tbs: tbs.whole,
            serial,
            issuer_der: issuer.whole,
            not_before: time(nb)?,
            not_after: time(na)?,
            signature_algorithm,
            signature,
        })
    }

    /// Whether this certificate's signature verifies with `issuer`'s key.
    pub fn is_signed_by(&self, issuer: &PublicKey) -> bool {
        issuer
            .verify(&self.signature_algorithm, self.tbs, self.signature)
            .unwrap_or(false)
    }

    /// Whether `at` is within the validity period.
    pub fn valid_at(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

impl ParsedCert {
    /// Decodes a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        if der.len() > MAX_CERT_LEN {
            return Err(PkiError::Certificate(format!(
                "{} bytes is over the limit of {MAX_CERT_LEN} bytes",
                der.len()
            )));
        }
        let cert = Certificate::from_der(der).map_err(PkiError::der("certificate"))?;
        let tbs = cert.tbs_certificate();
        let mut serial = tbs.serial_number().as_bytes();
        while let [0, rest @ ..] = serial {
            serial = rest;
        }
        let mut p = Self {
            der: der.to_vec(),
            tbs_der: tbs.to_der().map_err(PkiError::der("certificate"))?,
            signature_algorithm: cert.signature_algorithm().oid,
            signature: cert.signature().raw_bytes().to_vec(),
            serial: serial.to_vec(),
            subject_der: tbs.subject().to_der().map_err(PkiError::der("certificate"))?,
            issuer_der: tbs.issuer().to_der().map_err(PkiError::der("certificate"))?,
            subject: name_text(tbs.subject()),
            issuer: name_text(tbs.issuer()),
            not_before: from_x509(&tbs.validity().not_before)?,
            not_after: from_x509(&tbs.validity().not_after)?,
            public_key: PublicKey::from_spki(tbs.subject_public_key_info())?,
            subject_key_id: None,
            authority_key_id: None,
            is_ca: false,
            path_len: None,
            key_usage: None,
            extended_key_usage: None,
            policies: Vec::new(),
            crl_urls: Vec::new(),
            jpki_san: None,
            unknown_critical: Vec::new(),
            sha256: sha256(der),
        };
        let ext_err = |e: der::Error| PkiError::Der {
            what: "certificate extension",
            source: e,
        };
        for e in tbs.extensions().into_iter().flatten() {
            let v = e.extn_value.as_bytes();
            match e.extn_id {
                id if id == oid::ext::BASIC_CONSTRAINTS => {
                    let bc = BasicConstraints::from_der(v).map_err(ext_err)?;
                    p.is_ca = bc.ca;
                    p.path_len = bc.path_len_constraint;
                }
                id if id == oid::ext::KEY_USAGE => {
                    p.key_usage = Some(KeyUsage::from_der(v).map_err(ext_err)?);
                }
                id if id == oid::EXT_KEY_USAGE => {
                    p.extended_key_usage =
                        Some((ExtendedKeyUsage::from_der(v).map_err(ext_err)?.0, e.critical));
                }
                id if id == oid::ext::SKI => {
                    p.subject_key_id = Some(
                        SubjectKeyIdentifier::from_der(v)
                            .map_err(ext_err)?
                            .0
                            .into_bytes()
                            .into_vec(),
                    );
                }
                id if id == oid::ext::AKI => {
                    p.authority_key_id = AuthorityKeyIdentifier::from_der(v)
                        .map_err(ext_err)?
                        .key_identifier
                        .map(|k| k.into_bytes().into_vec());
                }
                id if id == oid::ext::CERT_POLICIES => {
                    p.policies = CertificatePolicies::from_der(v)
                        .map_err(ext_err)?
                        .0
                        .into_iter()
                        .map(|pi| pi.policy_identifier)
                        .collect();
                }
                id if id == oid::ext::CRL_DP => {
                    for dp in CrlDistributionPoints::from_der(v).map_err(ext_err)?.0 {
                        if let Some(DistributionPointName::FullName(names)) = dp.distribution_point {
                            p.crl_urls.extend(names.iter().filter_map(|g| match g {
                                GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
                                _ => None,
                            }));
                        }
                    }
                }
                id if id == oid::ext::SAN => {
                    // A SAN that is not the JPKI one (e.g. an e-mail address) is simply not JPKI data.
                    if let Ok(san) = JpkiSan::from_der(v)
                        && !san.is_empty()
                    {
                        p.jpki_san = Some(san);
                    }
                }
                id if e.critical && !KNOWN_CRITICAL.contains(&id) => p.unknown_critical.push(id),
                _ => {}
            }
        }
        Ok(p)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Whether this certificate's signature verifies with `issuer`'s key.
    pub fn is_signed_by(&self, issuer: &PublicKey) -> bool {
        issuer
            .verify(&self.signature_algorithm, &self.tbs_der, &self.signature)
            .unwrap_or(false)
    }

    /// The certificate signature algorithm.
    pub fn signature_algorithm(&self) -> &Oid {
        &self.signature_algorithm
    }

    /// Whether the subject and issuer are the same name (a self-issued certificate).
    pub fn is_self_issued(&self) -> bool {
        self.subject_der == self.issuer_der
    }

    /// Whether keyUsage allows `usage` (an absent keyUsage allows everything, RFC 5280 §4.2.1.3).
    pub fn allows(&self, usage: KeyUsages) -> bool {
        self.key_usage.as_ref().is_none_or(|ku| ku.0.contains(usage))
    }

    /// Whether `at` falls within notBefore..=notAfter.
    pub fn valid_at(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    /// "sign", "auth", "ca" or "other", by the JPKI policy OIDs and basicConstraints.
    pub fn jpki_kind(&self) -> &'static str {
        if self.is_ca {
            "ca"
        } else if self.policies.contains(&oid::POLICY_SIGN) {
            "sign"
        } else if self.policies.contains(&oid::POLICY_AUTH) {
            "auth"
        } else {
            "other"
        }
    }

    /// Serial as lowercase hex.
    pub fn serial_hex(&self) -> String {
        if self.serial.is_empty() {
            "0".into()
        } else {
            hex::encode(&self.serial)
        }
    }
}

/// Critical extensions this reader processes (RFC 5280 §4.2: a certificate with any other critical
/// extension must be rejected).
const KNOWN_CRITICAL: [Oid; 8] = [
    oid::ext::BASIC_CONSTRAINTS,
    oid::ext::KEY_USAGE,
    oid::EXT_KEY_USAGE,
    oid::ext::CERT_POLICIES,
    oid::ext::SAN,
    oid::ext::SKI,
    oid::ext::AKI,
    oid::ext::CRL_DP,
];

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Reads every certificate in a PEM bundle (or one DER certificate).
pub fn certificates_from_pem_or_der(data: &[u8]) -> Result<Vec<Vec<u8>>, PkiError> {
    let text = std::str::from_utf8(data)
        .ok()
        .filter(|t| t.contains("-----BEGIN"));
    let Some(text) = text else {
        return Ok(vec![data.to_vec()]);
    };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let block = &rest[start..];
        let end_marker = "-----END CERTIFICATE-----";
        let end = block
            .find(end_marker)
            .ok_or_else(|| PkiError::Certificate("PEM: BEGIN CERTIFICATE without END".into()))?;
        let pem = &block[..end + end_marker.len()];
        let (label, der) = der::pem::decode_vec(pem.as_bytes()).map_err(|e| PkiError::Der {
            what: "PEM certificate",
            source: e.into(),
        })?;
        if label == "CERTIFICATE" {
            out.push(der);
        }
        rest = &block[end + end_marker.len()..];
    }
    if out.is_empty() {
        return Err(PkiError::Certificate("PEM: no CERTIFICATE block".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    proptest::proptest! {
        /// The core reader never panics, and whatever it reads from bytes that also decode as a
        /// full certificate agrees with the full decoder.
        #[test]
        fn cert_core_agrees_with_parsed_cert(cut in 0usize..2000, flip in 0usize..2000, byte in 0u8..=255) {
            let der = sample_cert();
            let mut bytes = der.clone();
            if flip < bytes.len() {
                bytes[flip] = byte;
            }
            bytes.truncate(cut.max(1).min(bytes.len()));
            let core = CertCore::from_der(&bytes);
            if let (Ok(core), Ok(full)) = (&core, ParsedCert::from_der(&bytes)) {
                proptest::prop_assert_eq!(core.serial, full.serial.as_slice());
                proptest::prop_assert_eq!(core.issuer_der, full.issuer_der.as_slice());
                proptest::prop_assert_eq!(core.not_before, full.not_before);
                proptest::prop_assert_eq!(core.not_after, full.not_after);
                proptest::prop_assert_eq!(core.signature, full.signature.as_slice());
            }
        }
    }

    fn sample_cert() -> Vec<u8> {
        use std::sync::OnceLock;
        static C: OnceLock<Vec<u8>> = OnceLock::new();
        C.get_or_init(|| {
            let key = crate::SigningKey::generate(crate::KeyType::P384).unwrap();
            let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
            crate::issue_root(&crate::RootSpec {
                kind: jpki_model::CertKind::Signature,
                key: &key,
                serial: &jpki_model::Serial::from_be_bytes(&[0x80, 1, 2]).unwrap(),
                not_before: now,
                not_after: now + time::Duration::days(10),
                endpoints: &crate::Endpoints::new("http://127.0.0.1:7700").unwrap(),
                generation: 1,
            })
            .unwrap()
        })
        .clone()
    }

    #[test]
    fn cert_core_reads_what_parsed_cert_reads_and_verifies() {
        let der = sample_cert();
        let core = CertCore::from_der(&der).unwrap();
        let full = ParsedCert::from_der(&der).unwrap();
        assert_eq!(core.serial, [0x80, 1, 2]);
        assert_eq!(core.serial, full.serial.as_slice());
        assert_eq!(core.issuer_der, full.issuer_der.as_slice());
        assert_eq!(core.tbs, full.tbs_der.as_slice());
        assert_eq!(
            (core.not_before, core.not_after),
            (full.not_before, full.not_after)
        );
        assert!(core.is_signed_by(&full.public_key), "self-signed");
        let mut forged = der.clone();
        let n = forged.len();
        forged[n - 5] ^= 1;
        assert!(
            !CertCore::from_der(&forged)
                .unwrap()
                .is_signed_by(&full.public_key)
        );
        // An element after signatureValue: refused, as the full decoder refuses it.
        let mut inner = crate::tlv::read_tlv(&der).unwrap().value.to_vec();
        inner.extend_from_slice(&[0x05, 0x00]);
        let extra =
            der::Encode::to_der(&der::asn1::AnyRef::new(der::Tag::Sequence, &inner).unwrap()).unwrap();
        assert!(CertCore::from_der(&extra).is_err());
        assert!(ParsedCert::from_der(&extra).is_err());
        for bad in [&b""[..], &b"\x30\x00"[..], &der[..der.len() - 1]] {
            assert!(CertCore::from_der(bad).is_err());
        }
    }

    #[test]
    fn name_text_writes_what_x509_cert_display_writes() {
        use std::str::FromStr as _;
        for dn in [
            "CN=山田 太郎,L=東京都,C=JP",
            "CN=Japan Agency for Local Authority Information Systems,OU=JPKI for digital signature,O=JPKI,C=JP",
            "CN=\\#hash\\,comma\\+plus\\ ,O=a\\;b\\<c\\>d\\\"e\\\\f,C=JP",
            "CN=x+OU=y,ST=Tokyo,L=Chiyoda",
            "UID=jdoe,DC=example,DC=com",
            "CN=\\ lead,C=JP",
        ] {
            let name = x509_cert::name::Name::from_str(dn).unwrap();
            assert_eq!(name_text(&name), name.to_string(), "{dn}");
        }
    }
}
