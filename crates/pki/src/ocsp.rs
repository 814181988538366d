//! OCSP (RFC 6960) encoding: requests read and built, CertIDs computed and recognised, responses signed
//! by a (delegated) responder and read back. Pure: no clock, no network; callers pass times and bytes.
//!
//! No crate is used for the ASN.1: RustCrypto's `x509-ocsp` 0.2 is built on `der` 0.7 and
//! `x509-cert` 0.2, while this workspace is on `der` 0.8 and `x509-cert` 0.3; mixing them would mean two
//! copies of every shared type (names, extensions, certificates) and conversions through DER at each
//! boundary. The structures are few, so they are declared here with `der`'s derive macros, reusing the
//! `x509-cert` and `spki` types.
//!
//! What a request may carry (see [`OcspRequest::parse`]): version 1 only; 1 to [`MAX_CERT_IDS`] CertIDs
//! hashed with SHA-1 or SHA-256; a nonce of 1 to [`MAX_NONCE_LEN`] octets (RFC 8954); a requestorName
//! and an optionalSignature, which are accepted and **not** checked (the signature only sets
//! [`OcspRequest::signed`]); unknown non-critical extensions, which are ignored. Anything else, and any
//! request over [`MAX_REQUEST_LEN`] bytes, is an error, which a server answers with
//! [`OcspResponseStatus::MalformedRequest`].
//!
//! Speed: [`Responder::new`] encodes the constant parts once (signature algorithm, responderID key hash;
//! the certificate is copied as bytes, never re-encoded), and a response without a nonce for one
//! CertID ([`Responder::prebuild`]) can be cached and served to every request that
//! [`OcspRequest::cacheable_id`] says it answers, until its nextUpdate.
use std::time::Duration;

use aws_lc_rs::digest;
use const_oid::ObjectIdentifier as Oid;
use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, IntRef, Null, OctetStringRef};
use der::{Decode, Encode};
use jpki_model::RevocationReason;
use spki::AlgorithmIdentifierRef;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::name::Name;

use crate::x509::PublicKey;
use crate::{PkiError, SigningKey, oid};

/// Largest request [`OcspRequest::parse`] reads (real ones are about 100 bytes per CertID).
pub const MAX_REQUEST_LEN: usize = 64 * 1024;
/// Most CertIDs one request may ask about.
pub const MAX_CERT_IDS: usize = 64;
/// Longest nonce accepted (RFC 8954 §2.1: `Nonce ::= OCTET STRING (SIZE(1..32))`).
pub const MAX_NONCE_LEN: usize = 32;
/// Largest response [`parse_response`] reads.
pub const MAX_RESPONSE_LEN: usize = 1024 * 1024;

fn ocsp_err(msg: impl Into<String>) -> PkiError {
    PkiError::Ocsp(msg.into())
}

// ---------------------------------------------------------------------------------------------------
// Wire structures (RFC 6960 §4.1.1, §4.2.1; the module is EXPLICIT TAGS)
// ---------------------------------------------------------------------------------------------------

#[derive(der::Sequence)]
struct ExtensionRef<'a> {
    extn_id: Oid,
    #[asn1(default = "Default::default")]
    critical: bool,
    extn_value: &'a OctetStringRef,
}

#[derive(der::Sequence)]
struct CertIdWire<'a> {
    hash_algorithm: AlgorithmIdentifierRef<'a>,
    issuer_name_hash: &'a OctetStringRef,
    issuer_key_hash: &'a OctetStringRef,
    serial_number: IntRef<'a>,
}

#[derive(der::Sequence)]
struct RequestWire<'a> {
    req_cert: CertIdWire<'a>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    single_request_extensions: Option<Vec<ExtensionRef<'a>>>,
}

#[derive(der::Sequence)]
struct TbsRequestWire<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<u8>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    requestor_name: Option<AnyRef<'a>>,
    request_list: Vec<RequestWire<'a>>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    request_extensions: Option<Vec<ExtensionRef<'a>>>,
}

#[derive(der::Sequence)]
struct OcspRequestWire<'a> {
    tbs_request: TbsRequestWire<'a>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    optional_signature: Option<AnyRef<'a>>,
}

#[derive(der::Sequence)]
struct ResponseBytesWire<'a> {
    response_type: Oid,
    response: &'a OctetStringRef,
}

#[derive(der::Sequence)]
struct OcspResponseWire<'a> {
    response_status: OcspResponseStatus,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    response_bytes: Option<ResponseBytesWire<'a>>,
}

/// BasicOCSPResponse. The signed data and the algorithm stay raw TLVs: the responder pastes its
/// pre-encoded parts in, the reader keeps the exact bytes that were signed.
#[derive(der::Sequence)]
struct BasicResponseWire<'a> {
    tbs_response_data: AnyRef<'a>,
    signature_algorithm: AnyRef<'a>,
    signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    certs: Option<Vec<AnyRef<'a>>>,
}

#[derive(der::Choice)]
enum ResponderIdWire<'a> {
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(&'a OctetStringRef),
}

#[derive(der::Sequence)]
struct ResponseDataWire<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<u8>,
    responder_id: ResponderIdWire<'a>,
    produced_at: GeneralizedTime,
    responses: Vec<SingleResponseWire<'a>>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    response_extensions: Option<Vec<ExtensionRef<'a>>>,
}

#[derive(der::Sequence)]
struct SingleResponseWire<'a> {
    cert_id: CertIdWire<'a>,
    cert_status: CertStatusWire,
    this_update: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    single_extensions: Option<Vec<ExtensionRef<'a>>>,
}

#[derive(der::Choice)]
enum CertStatusWire {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfoWire),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

#[derive(der::Sequence)]
struct RevokedInfoWire {
    revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    revocation_reason: Option<CrlReason>,
}

// ---------------------------------------------------------------------------------------------------
// CertID
// ---------------------------------------------------------------------------------------------------

/// The hash a CertID uses for the issuer's name and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// SHA-1: what openssl and most clients send.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl CertIdHash {
    /// The hash AlgorithmIdentifier OID.
    pub fn oid(self) -> Oid {
        match self {
            Self::Sha1 => oid::SHA1,
            Self::Sha256 => oid::SHA256,
        }
    }

    /// The hash of `oid`, if supported.
    pub fn from_oid(oid: &Oid) -> Option<Self> {
        match *oid {
            o if o == oid::SHA1 => Some(Self::Sha1),
            o if o == oid::SHA256 => Some(Self::Sha256),
            _ => None,
        }
    }

    /// Length of the digest in octets.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

/// Which certificate a request asks about (RFC 6960 §4.1.1 CertID).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    /// hashAlgorithm (encoded with NULL parameters; absent parameters are accepted on reading).
    pub hash: CertIdHash,
    /// Hash of the issuer's subject Name DER.
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's subjectPublicKey BIT STRING value (no tag, length or unused-bits octet).
    pub issuer_key_hash: Vec<u8>,
    /// serialNumber as DER INTEGER content octets (two's complement, minimal).
    pub serial: Vec<u8>,
}

/// INTEGER content octets of the unsigned big-endian `magnitude`.
fn integer_content(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude.iter().position(|&b| b != 0).unwrap_or(magnitude.len());
    let m = &magnitude[start..];
    let mut out = Vec::with_capacity(m.len() + 1);
    if m.first().is_none_or(|&b| b & 0x80 != 0) {
        out.push(0);
    }
    out.extend_from_slice(m);
    out
}

impl CertId {
    /// The CertID of the certificate with serial `serial` (unsigned big-endian, as
    /// `Serial::as_be_bytes` or `ParsedCert::serial` give it) issued by the CA whose certificate is
    /// `issuer_cert_der`.
    pub fn for_certificate(
        issuer_cert_der: &[u8],
        serial: &[u8],
        hash: CertIdHash,
    ) -> Result<Self, PkiError> {
        Ok(IssuerHashes::from_cert_der(issuer_cert_der)?.cert_id(hash, serial))
    }

    /// The serial as an unsigned big-endian magnitude without leading zeros (the form registries and
    /// `ParsedCert::serial` use). A negative serial (invalid under RFC 5280) is returned as its raw
    /// content octets, which match no positive serial.
    pub fn serial_magnitude(&self) -> &[u8] {
        let start = self
            .serial
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(self.serial.len());
        &self.serial[start..]
    }

    fn to_wire(&self) -> Result<CertIdWire<'_>, PkiError> {
        let e = || PkiError::der("OCSP CertID");
        Ok(CertIdWire {
            hash_algorithm: AlgorithmIdentifierRef {
                oid: self.hash.oid(),
                parameters: Some(AnyRef::NULL),
            },
            issuer_name_hash: OctetStringRef::new(&self.issuer_name_hash).map_err(e())?,
            issuer_key_hash: OctetStringRef::new(&self.issuer_key_hash).map_err(e())?,
            serial_number: IntRef::new(&self.serial).map_err(e())?,
        })
    }

    fn from_wire(w: &CertIdWire<'_>) -> Result<Self, PkiError> {
        let alg = &w.hash_algorithm;
        let hash = CertIdHash::from_oid(&alg.oid).ok_or_else(|| {
            ocsp_err(format!(
                "CertID hash algorithm {} is not SHA-1 or SHA-256",
                alg.oid
            ))
        })?;
        if alg.parameters.is_some_and(|p| !p.is_null()) {
            return Err(ocsp_err(
                "CertID hash algorithm parameters are not NULL or absent",
            ));
        }
        let (name, key) = (w.issuer_name_hash.as_bytes(), w.issuer_key_hash.as_bytes());
        if name.len() != hash.output_len() || key.len() != hash.output_len() {
            return Err(ocsp_err(format!(
                "CertID issuer hashes are {} and {} octets, {hash:?} gives {}",
                name.len(),
                key.len(),
                hash.output_len()
            )));
        }
        Ok(Self {
            hash,
            issuer_name_hash: name.to_vec(),
            issuer_key_hash: key.to_vec(),
            serial: w.serial_number.as_bytes().to_vec(),
        })
    }
}

/// Both CertID hashes of one CA, computed once, so a responder recognises which CA a CertID is for
/// with two comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerHashes {
    sha1_name: Vec<u8>,
    sha1_key: Vec<u8>,
    sha256_name: Vec<u8>,
    sha256_key: Vec<u8>,
}

impl IssuerHashes {
    /// The hashes of the CA whose certificate is `cert_der`.
    pub fn from_cert_der(cert_der: &[u8]) -> Result<Self, PkiError> {
        let cert = Certificate::from_der(cert_der).map_err(PkiError::der("OCSP issuer certificate"))?;
        let tbs = cert.tbs_certificate();
        let name = tbs
            .subject()
            .to_der()
            .map_err(PkiError::der("OCSP issuer certificate"))?;
        Ok(Self::from_parts(
            &name,
            tbs.subject_public_key_info().subject_public_key.raw_bytes(),
        ))
    }

    /// The hashes from the CA's subject Name DER and subjectPublicKey BIT STRING value.
    pub fn from_parts(subject_der: &[u8], public_key_bits: &[u8]) -> Self {
        Self {
            sha1_name: CertIdHash::Sha1.digest(subject_der),
            sha1_key: CertIdHash::Sha1.digest(public_key_bits),
            sha256_name: CertIdHash::Sha256.digest(subject_der),
            sha256_key: CertIdHash::Sha256.digest(public_key_bits),
        }
    }

    fn pair(&self, hash: CertIdHash) -> (&[u8], &[u8]) {
        match hash {
            CertIdHash::Sha1 => (&self.sha1_name, &self.sha1_key),
            CertIdHash::Sha256 => (&self.sha256_name, &self.sha256_key),
        }
    }

    /// Whether `id` names a certificate of this CA (its issuer hashes are this CA's).
    pub fn matches(&self, id: &CertId) -> bool {
        let (name, key) = self.pair(id.hash);
        id.issuer_name_hash == name && id.issuer_key_hash == key
    }

    /// The CertID of this CA's certificate with serial `serial` (unsigned big-endian).
    pub fn cert_id(&self, hash: CertIdHash, serial: &[u8]) -> CertId {
        let (name, key) = self.pair(hash);
        CertId {
            hash,
            issuer_name_hash: name.to_vec(),
            issuer_key_hash: key.to_vec(),
            serial: integer_content(serial),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------

/// An OCSP request as read by [`OcspRequest::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    /// The certificates asked about, in request order (1 to [`MAX_CERT_IDS`]).
    pub cert_ids: Vec<CertId>,
    /// The nonce (the OCTET STRING's content, 1 to [`MAX_NONCE_LEN`] octets), to echo in the response.
    pub nonce: Option<Vec<u8>>,
    /// Whether the request carried an optionalSignature. It is accepted and not verified: this
    /// responder answers unsigned requests alike, so the signature grants nothing.
    pub signed: bool,
}

fn nonce_from_extension(value: &[u8]) -> Result<Vec<u8>, PkiError> {
    let inner = <&OctetStringRef>::from_der(value).map_err(PkiError::der("OCSP nonce"))?;
    let n = inner.as_bytes();
    if n.is_empty() || n.len() > MAX_NONCE_LEN {
        return Err(ocsp_err(format!(
            "nonce of {} octets (RFC 8954 allows 1 to {MAX_NONCE_LEN})",
            n.len()
        )));
    }
    Ok(n.to_vec())
}

fn check_nonce_len(nonce: &[u8]) -> Result<(), PkiError> {
    if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
        return Err(ocsp_err(format!(
            "nonce of {} octets (RFC 8954 allows 1 to {MAX_NONCE_LEN})",
            nonce.len()
        )));
    }
    Ok(())
}

/// Encodes the nonce extension's extnValue: the DER OCTET STRING holding `nonce`.
fn nonce_extension_value(nonce: &[u8]) -> Result<Vec<u8>, PkiError> {
    check_nonce_len(nonce)?;
    OctetStringRef::new(nonce)
        .and_then(|o| o.to_der())
        .map_err(PkiError::der("OCSP nonce"))
}

impl OcspRequest {
    /// Reads a DER OCSPRequest. Errors say in one line what is wrong; a server answers any of them with
    /// `malformedRequest`. Never panics.
    pub fn parse(der: &[u8]) -> Result<Self, PkiError> {
        if der.len() > MAX_REQUEST_LEN {
            return Err(ocsp_err(format!(
                "request of {} bytes is over the limit of {MAX_REQUEST_LEN}",
                der.len()
            )));
        }
        let req = OcspRequestWire::from_der(der).map_err(PkiError::der("OCSP request"))?;
        let tbs = &req.tbs_request;
        if let Some(v) = tbs.version
            && v != 0
        {
            return Err(ocsp_err(format!(
                "request version v{} (only v1 exists)",
                u16::from(v) + 1
            )));
        }
        if tbs.request_list.is_empty() {
            return Err(ocsp_err("request asks about no certificate"));
        }
        if tbs.request_list.len() > MAX_CERT_IDS {
            return Err(ocsp_err(format!(
                "request asks about {} certificates (at most {MAX_CERT_IDS})",
                tbs.request_list.len()
            )));
        }
        let mut cert_ids = Vec::with_capacity(tbs.request_list.len());
        for r in &tbs.request_list {
            for e in r.single_request_extensions.iter().flatten() {
                if e.critical {
                    return Err(ocsp_err(format!(
                        "unknown critical single request extension {}",
                        e.extn_id
                    )));
                }
            }
            cert_ids.push(CertId::from_wire(&r.req_cert)?);
        }
        let mut nonce = None;
        for e in tbs.request_extensions.iter().flatten() {
            if e.extn_id == oid::PKIX_OCSP_NONCE {
                if nonce.is_some() {
                    return Err(ocsp_err("two nonce extensions"));
                }
                nonce = Some(nonce_from_extension(e.extn_value.as_bytes())?);
            } else if e.critical {
                return Err(ocsp_err(format!(
                    "unknown critical request extension {}",
                    e.extn_id
                )));
            }
        }
        Ok(Self {
            cert_ids,
            nonce,
            signed: req.optional_signature.is_some(),
        })
    }

    /// Builds an unsigned DER OCSPRequest for `cert_ids` (1 to [`MAX_CERT_IDS`]) with an optional nonce
    /// (1 to [`MAX_NONCE_LEN`] octets).
    pub fn build(cert_ids: &[CertId], nonce: Option<&[u8]>) -> Result<Vec<u8>, PkiError> {
        if cert_ids.is_empty() || cert_ids.len() > MAX_CERT_IDS {
            return Err(ocsp_err(format!(
                "a request asks about 1 to {MAX_CERT_IDS} certificates, not {}",
                cert_ids.len()
            )));
        }
        let nonce_value = nonce.map(nonce_extension_value).transpose()?;
        let request_extensions = match &nonce_value {
            Some(v) => Some(vec![ExtensionRef {
                extn_id: oid::PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetStringRef::new(v).map_err(PkiError::der("OCSP nonce"))?,
            }]),
            None => None,
        };
        let request_list = cert_ids
            .iter()
            .map(|id| {
                Ok(RequestWire {
                    req_cert: id.to_wire()?,
                    single_request_extensions: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        OcspRequestWire {
            tbs_request: TbsRequestWire {
                version: None,
                requestor_name: None,
                request_list,
                request_extensions,
            },
            optional_signature: None,
        }
        .to_der()
        .map_err(PkiError::der("OCSP request"))
    }

    /// The CertID a cached, nonce-less response can answer: `Some` when the request asks about exactly
    /// one certificate and carries no nonce (a response from [`Responder::prebuild`] then fits it).
    pub fn cacheable_id(&self) -> Option<&CertId> {
        match (self.cert_ids.as_slice(), &self.nonce) {
            ([id], None) => Some(id),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------------

/// OCSPResponseStatus (RFC 6960 §4.2.1; 4 is not used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, der::Enumerated)]
#[repr(u32)]
pub enum OcspResponseStatus {
    /// 0: the response has valid confirmations.
    Successful = 0,
    /// 1: illegal confirmation request.
    MalformedRequest = 1,
    /// 2: internal error in the issuer.
    InternalError = 2,
    /// 3: try again later.
    TryLater = 3,
    /// 5: the request must be signed.
    SigRequired = 5,
    /// 6: the request is unauthorized (e.g. a CA this responder does not serve).
    Unauthorized = 6,
}

/// The OCSPResponse for an error status: no responseBytes. A server can send it as a constant.
/// [`OcspResponseStatus::Successful`] is accepted but gives a response clients reject: successful
/// responses come from [`Responder::respond`].
pub const fn error_response(status: OcspResponseStatus) -> [u8; 5] {
    let code = match status {
        OcspResponseStatus::Successful => 0,
        OcspResponseStatus::MalformedRequest => 1,
        OcspResponseStatus::InternalError => 2,
        OcspResponseStatus::TryLater => 3,
        OcspResponseStatus::SigRequired => 5,
        OcspResponseStatus::Unauthorized => 6,
    };
    [0x30, 0x03, 0x0a, 0x01, code]
}

/// The status of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked (RFC 6960 §2.2: and, for this responder, issued by the CA).
    Good,
    /// Revoked, or on hold (reason certificateHold).
    Revoked {
        /// revocationTime.
        at: OffsetDateTime,
        /// revocationReason; `None` leaves it out. removeFromCRL is refused.
        reason: Option<RevocationReason>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// One SingleResponse's status and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingleStatus {
    /// The status.
    pub status: CertStatus,
    /// thisUpdate: when the status was known to be correct.
    pub this_update: OffsetDateTime,
    /// nextUpdate: when newer information will be available (`None`: at any time).
    pub next_update: Option<OffsetDateTime>,
}

fn gen_time(what: &'static str, t: OffsetDateTime) -> Result<GeneralizedTime, PkiError> {
    u64::try_from(t.unix_timestamp())
        .ok()
        .and_then(|s| GeneralizedTime::from_unix_duration(Duration::from_secs(s)).ok())
        .ok_or_else(|| ocsp_err(format!("{what}: {t} cannot be a GeneralizedTime (1970 to 9999)")))
}

fn from_gen_time(t: &GeneralizedTime) -> Result<OffsetDateTime, PkiError> {
    i64::try_from(t.to_unix_duration().as_secs())
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| ocsp_err("time out of range"))
}

fn status_to_wire(s: &CertStatus) -> Result<CertStatusWire, PkiError> {
    Ok(match *s {
        CertStatus::Good => CertStatusWire::Good(Null),
        CertStatus::Unknown => CertStatusWire::Unknown(Null),
        CertStatus::Revoked { at, reason } => {
            let revocation_reason = match reason {
                None => None,
                Some(RevocationReason::RemoveFromCrl) => {
                    return Err(ocsp_err("removeFromCRL is no revocation reason for OCSP"));
                }
                Some(r) => Some(
                    CrlReason::try_from(u32::from(r.code()))
                        .map_err(|_| ocsp_err(format!("revocation reason code {}", r.code())))?,
                ),
            };
            CertStatusWire::Revoked(RevokedInfoWire {
                revocation_time: gen_time("revocationTime", at)?,
                revocation_reason,
            })
        }
    })
}

fn status_from_wire(w: &CertStatusWire) -> Result<CertStatus, PkiError> {
    Ok(match w {
        CertStatusWire::Good(_) => CertStatus::Good,
        CertStatusWire::Unknown(_) => CertStatus::Unknown,
        CertStatusWire::Revoked(r) => CertStatus::Revoked {
            at: from_gen_time(&r.revocation_time)?,
            reason: match r.revocation_reason {
                None => None,
                Some(c) => Some(
                    RevocationReason::from_code(c as u8)
                        .ok_or_else(|| ocsp_err(format!("revocation reason {c:?}")))?,
                ),
            },
        },
    })
}

/// An OCSP responder: the key that signs responses and its certificate (a delegated responder's, from
/// `Issuer::issue_ocsp_responder`, or the CA's own), with the constant parts of every response
/// encoded once.
#[derive(Debug)]
pub struct Responder {
    key: SigningKey,
    cert_der: Vec<u8>,
    key_hash: Vec<u8>,
    algorithm_der: Vec<u8>,
}

impl Responder {
    /// Pairs the signing key with its certificate (included in every response's `certs`); fails when
    /// they do not match. The certificate's extensions are not checked here.
    pub fn new(key: SigningKey, cert_der: Vec<u8>) -> Result<Self, PkiError> {
        let cert = Certificate::from_der(&cert_der).map_err(PkiError::der("OCSP responder certificate"))?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        let spki_der = spki
            .to_der()
            .map_err(PkiError::der("OCSP responder certificate"))?;
        if spki_der != key.spki_der()? {
            return Err(PkiError::Key(
                "the OCSP signing key does not match the responder certificate".into(),
            ));
        }
        let key_hash = CertIdHash::Sha1.digest(spki.subject_public_key.raw_bytes());
        let algorithm_der = key
            .key_type()
            .signature_algorithm()
            .to_der()
            .map_err(PkiError::der("OCSP signature algorithm"))?;
        Ok(Self {
            key,
            cert_der,
            key_hash,
            algorithm_der,
        })
    }

    /// The responder certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// responderID byKey: SHA-1 of the responder's subjectPublicKey BIT STRING value.
    pub fn key_hash(&self) -> &[u8] {
        &self.key_hash
    }

    /// A signed OCSPResponse (successful, BasicOCSPResponse) answering `entries` in order, echoing
    /// `nonce` in responseExtensions when given, signed with the key's signature algorithm (as CRLs
    /// are). Times are GeneralizedTime to whole seconds.
    pub fn respond(
        &self,
        entries: &[(CertId, SingleStatus)],
        nonce: Option<&[u8]>,
        produced_at: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        if entries.is_empty() {
            return Err(ocsp_err("a response answers at least one CertID"));
        }
        let e = || PkiError::der("OCSP response");
        let mut responses = Vec::with_capacity(entries.len());
        for (id, s) in entries {
            responses.push(SingleResponseWire {
                cert_id: id.to_wire()?,
                cert_status: status_to_wire(&s.status)?,
                this_update: gen_time("thisUpdate", s.this_update)?,
                next_update: s.next_update.map(|t| gen_time("nextUpdate", t)).transpose()?,
                single_extensions: None,
            });
        }
        let nonce_value = nonce.map(nonce_extension_value).transpose()?;
        let response_extensions = match &nonce_value {
            Some(v) => Some(vec![ExtensionRef {
                extn_id: oid::PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetStringRef::new(v).map_err(e())?,
            }]),
            None => None,
        };
        let tbs = ResponseDataWire {
            version: None,
            responder_id: ResponderIdWire::ByKey(OctetStringRef::new(&self.key_hash).map_err(e())?),
            produced_at: gen_time("producedAt", produced_at)?,
            responses,
            response_extensions,
        }
        .to_der()
        .map_err(e())?;
        let signature = self.key.sign(&tbs)?;
        let basic = BasicResponseWire {
            tbs_response_data: AnyRef::from_der(&tbs).map_err(e())?,
            signature_algorithm: AnyRef::from_der(&self.algorithm_der).map_err(e())?,
            signature: BitStringRef::from_bytes(&signature).map_err(e())?,
            certs: Some(vec![AnyRef::from_der(&self.cert_der).map_err(e())?]),
        }
        .to_der()
        .map_err(e())?;
        OcspResponseWire {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytesWire {
                response_type: oid::PKIX_OCSP_BASIC,
                response: OctetStringRef::new(&basic).map_err(e())?,
            }),
        }
        .to_der()
        .map_err(e())
    }

    /// A response for one certificate without a nonce: the same bytes answer every request whose
    /// [`OcspRequest::cacheable_id`] is `id`, so a server can sign it once and serve it from a cache
    /// until `status.next_update`.
    pub fn prebuild(
        &self,
        id: &CertId,
        status: SingleStatus,
        produced_at: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        self.respond(&[(id.clone(), status)], None, produced_at)
    }
}

/// How a response names its signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponderId {
    /// byName: the responder's subject Name, DER.
    ByName(Vec<u8>),
    /// byKey: SHA-1 of the responder's subjectPublicKey BIT STRING value.
    ByKey(Vec<u8>),
}

/// A BasicOCSPResponse as read by [`parse_response`].
#[derive(Debug, Clone)]
pub struct BasicResponse {
    /// responderID.
    pub responder: ResponderId,
    /// producedAt.
    pub produced_at: OffsetDateTime,
    /// The SingleResponses, in order.
    pub responses: Vec<(CertId, SingleStatus)>,
    /// The nonce in responseExtensions (the OCTET STRING's content).
    pub nonce: Option<Vec<u8>>,
    /// certs (DER), usually the responder's certificate.
    pub certs: Vec<Vec<u8>>,
    /// The signed bytes: tbsResponseData, DER.
    pub tbs_response_data: Vec<u8>,
    /// signatureAlgorithm OID.
    pub signature_algorithm: Oid,
    /// The signature.
    pub signature: Vec<u8>,
}

impl BasicResponse {
    /// Whether the signature verifies with `key` (the responder certificate's key). Checking that the
    /// key belongs to an authorised responder is the caller's part.
    pub fn is_signed_by(&self, key: &PublicKey) -> bool {
        key.verify(
            &self.signature_algorithm,
            &self.tbs_response_data,
            &self.signature,
        )
        .unwrap_or(false)
    }
}

/// An OCSPResponse as read by [`parse_response`].
#[derive(Debug, Clone)]
pub struct OcspResponse {
    /// responseStatus.
    pub status: OcspResponseStatus,
    /// The BasicOCSPResponse; present exactly when the status is successful.
    pub basic: Option<BasicResponse>,
}

/// Reads a DER OCSPResponse (for tests and clients; a minimal reader: the signature is kept for
/// [`BasicResponse::is_signed_by`], not checked here). Only GeneralizedTimes in whole seconds are read.
pub fn parse_response(der: &[u8]) -> Result<OcspResponse, PkiError> {
    if der.len() > MAX_RESPONSE_LEN {
        return Err(ocsp_err(format!(
            "response of {} bytes is over the limit of {MAX_RESPONSE_LEN}",
            der.len()
        )));
    }
    let e = || PkiError::der("OCSP response");
    let resp = OcspResponseWire::from_der(der).map_err(e())?;
    let bytes = match (resp.response_status, resp.response_bytes) {
        (OcspResponseStatus::Successful, Some(b)) => b,
        (OcspResponseStatus::Successful, None) => return Err(ocsp_err("successful response without a body")),
        (status, None) => return Ok(OcspResponse { status, basic: None }),
        (status, Some(_)) => return Err(ocsp_err(format!("{status:?} response with a body"))),
    };
    if bytes.response_type != oid::PKIX_OCSP_BASIC {
        return Err(ocsp_err(format!(
            "response type {} is not id-pkix-ocsp-basic",
            bytes.response_type
        )));
    }
    let basic = BasicResponseWire::from_der(bytes.response.as_bytes()).map_err(e())?;
    let tbs_response_data = basic.tbs_response_data.to_der().map_err(e())?;
    let alg: AlgorithmIdentifierRef<'_> = basic.signature_algorithm.decode_as().map_err(e())?;
    let data = ResponseDataWire::from_der(&tbs_response_data).map_err(e())?;
    if data.version.is_some_and(|v| v != 0) {
        return Err(ocsp_err("response version is not v1"));
    }
    let responder = match &data.responder_id {
        ResponderIdWire::ByName(n) => ResponderId::ByName(n.to_der().map_err(e())?),
        ResponderIdWire::ByKey(k) => ResponderId::ByKey(k.as_bytes().to_vec()),
    };
    let mut responses = Vec::with_capacity(data.responses.len());
    for r in &data.responses {
        responses.push((
            CertId::from_wire(&r.cert_id)?,
            SingleStatus {
                status: status_from_wire(&r.cert_status)?,
                this_update: from_gen_time(&r.this_update)?,
                next_update: r.next_update.as_ref().map(from_gen_time).transpose()?,
            },
        ));
    }
    let mut nonce = None;
    for x in data.response_extensions.iter().flatten() {
        if x.extn_id == oid::PKIX_OCSP_NONCE {
            nonce = Some(nonce_from_extension(x.extn_value.as_bytes())?);
        }
    }
    let certs = basic
        .certs
        .iter()
        .flatten()
        .map(|c| c.to_der().map_err(e()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OcspResponse {
        status: OcspResponseStatus::Successful,
        basic: Some(BasicResponse {
            responder,
            produced_at: from_gen_time(&data.produced_at)?,
            responses,
            nonce,
            certs,
            tbs_response_data,
            signature_algorithm: alg.oid,
            signature: basic.signature.raw_bytes().to_vec(),
        }),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::x509::ParsedCert;
    use crate::{Endpoints, Issuer, KeyType, RootSpec, SubjectPublicKey, issue_root};
    use jpki_model::{CertKind, Serial};
    use proptest::prelude::*;
    use time::Duration as TimeDuration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-21 03:00:00 UTC);

    fn root(kt: KeyType) -> Issuer {
        let key = SigningKey::generate(kt).unwrap();
        let cert = issue_root(&RootSpec {
            kind: CertKind::Authentication,
            key: &key,
            serial: &Serial::from_be_bytes(&[1]).unwrap(),
            not_before: NOW - TimeDuration::days(1),
            not_after: NOW + TimeDuration::days(3650),
            endpoints: &Endpoints::new("http://127.0.0.1:7700").unwrap(),
            generation: 1,
        })
        .unwrap();
        Issuer::new(CertKind::Authentication, key, cert).unwrap()
    }

    fn responder(ca: &Issuer) -> Responder {
        let key = SigningKey::generate(KeyType::P384).unwrap();
        let pk = SubjectPublicKey::from_der(&key.spki_der().unwrap()).unwrap();
        let cert = ca
            .issue_ocsp_responder(
                &Serial::from_be_bytes(&[2]).unwrap(),
                &pk,
                NOW - TimeDuration::hours(1),
                NOW + TimeDuration::days(30),
                &Endpoints::new("http://127.0.0.1:7700").unwrap(),
            )
            .unwrap();
        Responder::new(key, cert).unwrap()
    }

    fn id(ca: &Issuer, serial: &[u8]) -> CertId {
        CertId::for_certificate(ca.cert_der(), serial, CertIdHash::Sha1).unwrap()
    }

    /// A request with arbitrary parts, bypassing `build`'s checks.
    fn raw_request(ids: &[CertId], extensions: Vec<ExtensionRef<'_>>, version: Option<u8>) -> Vec<u8> {
        OcspRequestWire {
            tbs_request: TbsRequestWire {
                version,
                requestor_name: None,
                request_list: ids
                    .iter()
                    .map(|i| RequestWire {
                        req_cert: i.to_wire().unwrap(),
                        single_request_extensions: None,
                    })
                    .collect(),
                request_extensions: (!extensions.is_empty()).then_some(extensions),
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    fn err(der: &[u8]) -> String {
        OcspRequest::parse(der).unwrap_err().to_string()
    }

    #[test]
    fn cert_id_hashes_name_and_key_bits() {
        let ca = root(KeyType::P384);
        let cert = Certificate::from_der(ca.cert_der()).unwrap();
        let tbs = cert.tbs_certificate();
        let name = tbs.subject().to_der().unwrap();
        let bits = tbs.subject_public_key_info().subject_public_key.raw_bytes();
        let sha1 = id(&ca, &[0x80, 1]);
        assert_eq!(sha1.issuer_name_hash, CertIdHash::Sha1.digest(&name));
        assert_eq!(sha1.issuer_key_hash, CertIdHash::Sha1.digest(bits));
        // The key hash is the method-1 key identifier, i.e. the CA's SKI.
        assert_eq!(sha1.issuer_key_hash, ca.key_id());
        assert_eq!(sha1.serial, [0, 0x80, 1]);
        assert_eq!(sha1.serial_magnitude(), [0x80, 1]);
        let sha256 = CertId::for_certificate(ca.cert_der(), &[0, 0, 5], CertIdHash::Sha256).unwrap();
        assert_eq!(sha256.issuer_key_hash.len(), 32);
        assert_eq!(sha256.serial, [5]);
        let hashes = IssuerHashes::from_cert_der(ca.cert_der()).unwrap();
        assert!(hashes.matches(&sha1) && hashes.matches(&sha256));
        let other = root(KeyType::P384);
        assert!(
            !IssuerHashes::from_cert_der(other.cert_der())
                .unwrap()
                .matches(&sha1)
        );
        assert!(CertId::for_certificate(b"junk", &[1], CertIdHash::Sha1).is_err());
    }

    #[test]
    fn request_round_trips() {
        let ca = root(KeyType::P384);
        let ids = vec![
            id(&ca, &[1, 2, 3]),
            CertId::for_certificate(ca.cert_der(), &[0xff; 16], CertIdHash::Sha256).unwrap(),
        ];
        let der = OcspRequest::build(&ids, None).unwrap();
        let r = OcspRequest::parse(&der).unwrap();
        assert_eq!(
            (r.cert_ids.as_slice(), r.nonce.as_ref(), r.signed),
            (ids.as_slice(), None, false)
        );
        assert_eq!(r.cacheable_id(), None);
        let nonce = [7u8; 32];
        let der = OcspRequest::build(&ids[..1], Some(&nonce)).unwrap();
        let r = OcspRequest::parse(&der).unwrap();
        assert_eq!(r.nonce.as_deref(), Some(&nonce[..]));
        assert_eq!(r.cacheable_id(), None);
        let r = OcspRequest::parse(&OcspRequest::build(&ids[..1], None).unwrap()).unwrap();
        assert_eq!(r.cacheable_id(), Some(&ids[0]));
    }

    #[test]
    fn malformed_requests_are_errors() {
        let ca = root(KeyType::P384);
        let one = id(&ca, &[9]);
        let good = OcspRequest::build(std::slice::from_ref(&one), Some(b"0123456789abcdef")).unwrap();
        assert!(err(&[]).contains("malformed DER"));
        for cut in 1..good.len() {
            assert!(OcspRequest::parse(&good[..cut]).is_err(), "truncated at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(OcspRequest::parse(&trailing).is_err());
        assert!(err(b"GET / HTTP/1.1\r\n").contains("malformed DER"));
        assert!(err(&vec![0x30; MAX_REQUEST_LEN + 1]).contains("over the limit"));

        let many = vec![one.clone(); MAX_CERT_IDS + 1];
        assert!(OcspRequest::build(&many, None).is_err());
        assert!(err(&raw_request(&many, vec![], None)).contains("at most 64"));
        assert!(OcspRequest::parse(&raw_request(&many[..MAX_CERT_IDS], vec![], None)).is_ok());
        assert!(err(&raw_request(&[], vec![], None)).contains("no certificate"));
        assert!(
            err(&raw_request(std::slice::from_ref(&one), vec![], Some(1)))
                .contains("version v2 (only v1 exists)")
        );
        assert!(OcspRequest::parse(&raw_request(std::slice::from_ref(&one), vec![], Some(0))).is_ok());

        let nonce_ext = |value: &[u8]| OctetStringRef::new(value).unwrap().to_der().unwrap();
        for (len, ok) in [(0, false), (1, true), (32, true), (33, false)] {
            let v = nonce_ext(&vec![1u8; len]);
            let ext = ExtensionRef {
                extn_id: oid::PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetStringRef::new(&v).unwrap(),
            };
            let r = OcspRequest::parse(&raw_request(std::slice::from_ref(&one), vec![ext], None));
            assert_eq!(r.is_ok(), ok, "nonce of {len}: {r:?}");
            if !ok {
                assert!(r.unwrap_err().to_string().contains("RFC 8954"));
            }
            assert_eq!(
                OcspRequest::build(std::slice::from_ref(&one), Some(&vec![1u8; len])).is_ok(),
                ok
            );
        }
        // A nonce not wrapped in an OCTET STRING.
        let ext = ExtensionRef {
            extn_id: oid::PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetStringRef::new(&[0x04, 0x05, 1]).unwrap(),
        };
        assert!(OcspRequest::parse(&raw_request(std::slice::from_ref(&one), vec![ext], None)).is_err());
        let unknown = |critical| ExtensionRef {
            extn_id: Oid::new_unwrap("1.2.3.4"),
            critical,
            extn_value: OctetStringRef::new(&[5, 0]).unwrap(),
        };
        assert!(
            OcspRequest::parse(&raw_request(
                std::slice::from_ref(&one),
                vec![unknown(false)],
                None
            ))
            .is_ok()
        );
        assert!(
            err(&raw_request(
                std::slice::from_ref(&one),
                vec![unknown(true)],
                None
            ))
            .contains("unknown critical request extension 1.2.3.4")
        );

        let mut w = raw_request(std::slice::from_ref(&one), vec![], None);
        // Turn the SHA-1 OID (2b 0e 03 02 1a) into 1.3.14.3.2.27 (dsaWithSHA1), same length.
        let pos = w
            .windows(5)
            .position(|x| x == [0x2b, 0x0e, 0x03, 0x02, 0x1a])
            .unwrap();
        w[pos + 4] = 0x1b;
        assert!(err(&w).contains("is not SHA-1 or SHA-256"));
        let mut bad_len = one.clone();
        bad_len.issuer_key_hash.pop();
        assert!(err(&raw_request(&[bad_len], vec![], None)).contains("octets"));
    }

    #[test]
    fn signed_requests_are_accepted_unchecked() {
        let ca = root(KeyType::P384);
        let mut w = raw_request(&[id(&ca, &[9])], vec![], None);
        // optionalSignature [0] EXPLICIT SEQUENCE { ecdsa-with-SHA384, BIT STRING (empty) }, appended to
        // the outer SEQUENCE (short lengths throughout).
        let alg = [
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ];
        let mut seq = vec![0x30, u8::try_from(alg.len() + 3).unwrap()];
        seq.extend_from_slice(&alg);
        seq.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut tagged = vec![0xa0, u8::try_from(seq.len()).unwrap()];
        tagged.extend_from_slice(&seq);
        assert!(usize::from(w[1]) + tagged.len() < 0x80);
        w[1] += u8::try_from(tagged.len()).unwrap();
        w.extend_from_slice(&tagged);
        let r = OcspRequest::parse(&w).unwrap();
        assert!(r.signed);
    }

    #[test]
    fn responses_round_trip_and_verify() {
        for kt in [KeyType::P384, KeyType::Rsa2048] {
            let ca = root(kt);
            let resp = responder(&ca);
            let t = NOW + TimeDuration::milliseconds(999);
            let entries = [
                (id(&ca, &[1]), CertStatus::Good),
                (
                    id(&ca, &[2]),
                    CertStatus::Revoked {
                        at: NOW - TimeDuration::days(1),
                        reason: Some(RevocationReason::KeyCompromise),
                    },
                ),
                (
                    id(&ca, &[3]),
                    CertStatus::Revoked {
                        at: NOW - TimeDuration::days(2),
                        reason: Some(RevocationReason::CertificateHold),
                    },
                ),
                (
                    id(&ca, &[4]),
                    CertStatus::Revoked {
                        at: NOW - TimeDuration::days(3),
                        reason: None,
                    },
                ),
                (
                    CertId::for_certificate(ca.cert_der(), &[5], CertIdHash::Sha256).unwrap(),
                    CertStatus::Unknown,
                ),
            ]
            .map(|(i, status)| {
                (
                    i,
                    SingleStatus {
                        status,
                        this_update: t,
                        next_update: Some(NOW + TimeDuration::days(1)),
                    },
                )
            });
            let der = resp.respond(&entries, Some(b"nonce-nonce-1234"), t).unwrap();
            let parsed = parse_response(&der).unwrap();
            assert_eq!(parsed.status, OcspResponseStatus::Successful);
            let b = parsed.basic.unwrap();
            assert_eq!(b.responder, ResponderId::ByKey(resp.key_hash().to_vec()));
            assert_eq!(b.produced_at, NOW, "whole seconds");
            assert_eq!(b.nonce.as_deref(), Some(&b"nonce-nonce-1234"[..]));
            assert_eq!(b.certs, vec![resp.cert_der().to_vec()]);
            assert_eq!(b.responses.len(), entries.len());
            for ((gi, gs), (wi, ws)) in b.responses.iter().zip(&entries) {
                assert_eq!(gi, wi);
                assert_eq!(gs.status, ws.status);
                assert_eq!(gs.this_update, NOW);
                assert_eq!(gs.next_update, ws.next_update);
            }
            let signer = ParsedCert::from_der(resp.cert_der()).unwrap();
            assert_eq!(signer.subject_key_id.as_deref(), Some(resp.key_hash()));
            assert_eq!(
                signer.extended_key_usage,
                Some((vec![oid::KP_OCSP_SIGNING], false))
            );
            assert!(signer.is_signed_by(&ParsedCert::from_der(ca.cert_der()).unwrap().public_key));
            assert!(b.is_signed_by(&signer.public_key));
            let mut forged = b.clone();
            forged.tbs_response_data[10] ^= 1;
            assert!(!forged.is_signed_by(&signer.public_key));

            let cached = resp.prebuild(&entries[0].0, entries[0].1, NOW).unwrap();
            let c = parse_response(&cached).unwrap().basic.unwrap();
            assert_eq!((c.nonce, c.responses.len()), (None, 1));
        }
    }

    #[test]
    fn responder_refuses_bad_input() {
        let ca = root(KeyType::P384);
        let resp = responder(&ca);
        let good = SingleStatus {
            status: CertStatus::Good,
            this_update: NOW,
            next_update: None,
        };
        assert!(resp.respond(&[], None, NOW).is_err());
        assert!(
            resp.respond(&[(id(&ca, &[1]), good)], Some(&[0; 33]), NOW)
                .is_err()
        );
        assert!(resp.respond(&[(id(&ca, &[1]), good)], Some(&[]), NOW).is_err());
        let remove = SingleStatus {
            status: CertStatus::Revoked {
                at: NOW,
                reason: Some(RevocationReason::RemoveFromCrl),
            },
            ..good
        };
        assert!(resp.respond(&[(id(&ca, &[1]), remove)], None, NOW).is_err());
        let early = SingleStatus {
            this_update: datetime!(1960-01-01 00:00:00 UTC),
            ..good
        };
        assert!(resp.respond(&[(id(&ca, &[1]), early)], None, NOW).is_err());
        // A key that is not the certificate's.
        let other = SigningKey::generate(KeyType::P384).unwrap();
        assert!(Responder::new(other, resp.cert_der().to_vec()).is_err());
    }

    #[test]
    fn error_responses() {
        for s in [
            OcspResponseStatus::MalformedRequest,
            OcspResponseStatus::InternalError,
            OcspResponseStatus::TryLater,
            OcspResponseStatus::SigRequired,
            OcspResponseStatus::Unauthorized,
        ] {
            let der = error_response(s);
            assert_eq!(
                der.to_vec(),
                OcspResponseWire {
                    response_status: s,
                    response_bytes: None
                }
                .to_der()
                .unwrap()
            );
            let p = parse_response(&der).unwrap();
            assert_eq!((p.status, p.basic.is_none()), (s, true));
        }
        assert!(parse_response(&error_response(OcspResponseStatus::Successful)).is_err());
        assert!(parse_response(&[0x30, 0x03, 0x0a, 0x01, 4]).is_err());
        assert!(parse_response(b"").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = OcspRequest::parse(&bytes);
            let _ = parse_response(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_requests(
            idx in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let id = CertId {
                hash: CertIdHash::Sha1,
                issuer_name_hash: vec![1; 20],
                issuer_key_hash: vec![2; 20],
                serial: vec![0x40, 1, 2],
            };
            let mut der = OcspRequest::build(&[id], Some(b"0123456789abcdef")).unwrap();
            let i = idx.index(der.len());
            der[i] = byte;
            let _ = OcspRequest::parse(&der);
            let _ = OcspRequest::parse(&der[..cut.index(der.len())]);
        }

        #[test]
        fn build_parse_round_trip(
            serials in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..21), 1..=MAX_CERT_IDS),
            sha256 in any::<bool>(),
            nonce in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..=MAX_NONCE_LEN)),
        ) {
            let hash = if sha256 { CertIdHash::Sha256 } else { CertIdHash::Sha1 };
            let hashes = IssuerHashes::from_parts(b"name", b"key");
            let ids: Vec<CertId> = serials.iter().map(|s| hashes.cert_id(hash, s)).collect();
            let der = OcspRequest::build(&ids, nonce.as_deref()).unwrap();
            let r = OcspRequest::parse(&der).unwrap();
            prop_assert_eq!(&r.cert_ids, &ids);
            prop_assert_eq!(r.nonce, nonce);
            prop_assert!(r.cert_ids.iter().all(|i| hashes.matches(i)));
            for (i, s) in r.cert_ids.iter().zip(&serials) {
                let start = s.iter().position(|&b| b != 0).unwrap_or(s.len());
                prop_assert_eq!(i.serial_magnitude(), &s[start..]);
            }
        }
    }
}
