//! RFC 3161 time-stamps, with the ESSCertIDv2 signing certificate of RFC 5816: the request, the
//! authority that answers it, and the client side that checks the answer and reads the token.
//!
//! A time-stamp token is a CMS SignedData (see [`crate::signed_data`]) whose content is a `TSTInfo`:
//! the hash of the stamped data (the message imprint), the time, the TSA's policy, a serial number and
//! the request's nonce. [`TimeStampAuthority::respond`] always answers with a DER `TimeStampResp`,
//! granting or rejecting with the RFC 3161 failure codes; [`token_from_response`] checks a response
//! against its request; [`TimeStampToken`] reads a token and [`TimeStampToken::verify`] checks its
//! signature, its signing-certificate attribute and the TSA certificate's extended key usage. Path
//! validation and revocation of the TSA certificate are the caller's business.
use std::fmt;

use const_oid::ObjectIdentifier;
use der::asn1::{Any, AnyRef, BitString, GeneralizedTime, Int, OctetString, Uint};
use der::{Decode, Encode, Tag, Tagged};
use jpki_pki::{KeyType, SigningKey, oid};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::ext::pkix::name::GeneralName;

use crate::SigError;
use crate::signed_data::{
    DigestAlg, MAX_CMS_LEN, ParsedSignedData, ParsedSigner, SignedDataBuilder, attr_content_type,
    attr_message_digest, attr_signing_certificate_v2, parse_generalized_time, signed_attributes_der,
    verify_signer,
};

/// id-ct-TSTInfo (RFC 3161 §2.4.2): the eContentType of a time-stamp token.
pub const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// The largest request [`TimeStampAuthority::respond`] reads: 64 KiB.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

const REQUEST: &str = "time-stamp request";
const RESPONSE: &str = "time-stamp response";
const TOKEN: &str = "time-stamp token";

fn malformed(what: &'static str, detail: impl Into<String>) -> SigError {
    SigError::Malformed {
        what,
        detail: detail.into(),
    }
}

// ---------------------------------------------------------------------------------------------------
// ASN.1 (RFC 3161 §2.4)
// ---------------------------------------------------------------------------------------------------

/// `MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }`
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

/// `TimeStampReq` (RFC 3161 §2.4.1).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct TimeStampReq {
    version: u8,
    message_imprint: MessageImprint,
    #[asn1(optional = "true")]
    req_policy: Option<ObjectIdentifier>,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(default = "Default::default")]
    cert_req: bool,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    extensions: Option<Extensions>,
}

/// `PKIStatusInfo` (RFC 3161 §2.4.2, from RFC 2510).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct PkiStatusInfo {
    status: u32,
    /// `PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String`
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

/// `TimeStampResp` (RFC 3161 §2.4.2); the token stays encoded.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct TimeStampResp<'a> {
    status: PkiStatusInfo,
    #[asn1(optional = "true")]
    time_stamp_token: Option<AnyRef<'a>>,
}

/// `Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] OPTIONAL, micros [1] OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct AccuracyAsn {
    #[asn1(optional = "true")]
    seconds: Option<u64>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    millis: Option<u16>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    micros: Option<u16>,
}

/// `TSTInfo` (RFC 3161 §2.4.2). genTime stays an `Any` so that fractions of seconds can be read.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct TstInfo {
    version: u8,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: Any,
    #[asn1(optional = "true")]
    accuracy: Option<AccuracyAsn>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<GeneralName>,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    extensions: Option<Extensions>,
}

/// The content octets of a DER INTEGER (big-endian two's complement).
fn int_content(i: &Int) -> Result<Vec<u8>, der::Error> {
    let der = i.to_der()?;
    Ok(AnyRef::from_der(&der)?.value().to_vec())
}

/// A non-negative INTEGER's magnitude without leading zero octets (`[]` for zero); `None` if negative.
fn magnitude(i: &Int) -> Result<Option<Vec<u8>>, der::Error> {
    let content = int_content(i)?;
    if content.first().is_some_and(|b| b & 0x80 != 0) {
        return Ok(None);
    }
    let start = content.iter().position(|&b| b != 0).unwrap_or(content.len());
    Ok(Some(content[start..].to_vec()))
}

/// A positive INTEGER from unsigned big-endian bytes.
fn positive_int(bytes: &[u8]) -> Result<Int, der::Error> {
    Ok(Int::from(Uint::new(bytes)?))
}

/// The hash algorithm of a message imprint: SHA-2 with absent or NULL parameters, else `None`.
fn imprint_alg(ai: &AlgorithmIdentifierOwned) -> Option<DigestAlg> {
    let params_ok = ai.parameters.as_ref().is_none_or(|p| p.is_null());
    DigestAlg::from_oid(&ai.oid).filter(|_| params_ok)
}

// ---------------------------------------------------------------------------------------------------
// Status and failure codes
// ---------------------------------------------------------------------------------------------------

/// `PKIStatus` name (RFC 3161 §2.4.2).
fn status_name(status: u32) -> String {
    match status {
        0 => "granted".into(),
        1 => "grantedWithMods".into(),
        2 => "rejection".into(),
        3 => "waiting".into(),
        4 => "revocationWarning".into(),
        5 => "revocationNotification".into(),
        n => format!("status {n}"),
    }
}

/// `PKIFailureInfo` bits (RFC 3161 §2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailInfo {
    BadAlg = 0,
    BadRequest = 2,
    BadDataFormat = 5,
    UnacceptedPolicy = 15,
    UnacceptedExtension = 16,
    SystemFailure = 25,
}

fn fail_info_name(bit: usize) -> String {
    match bit {
        0 => "badAlg".into(),
        2 => "badRequest".into(),
        5 => "badDataFormat".into(),
        14 => "timeNotAvailable".into(),
        15 => "unacceptedPolicy".into(),
        16 => "unacceptedExtension".into(),
        17 => "addInfoNotAvailable".into(),
        25 => "systemFailure".into(),
        n => format!("failure bit {n}"),
    }
}

impl FailInfo {
    /// The named-bit BIT STRING with only this bit set, without trailing zero bits (X.690 §11.2.2).
    fn bit_string(self) -> Result<BitString, der::Error> {
        let bit = self as usize;
        let mut bytes = vec![0u8; bit / 8 + 1];
        if let Some(last) = bytes.last_mut() {
            *last = 0x80 >> (bit % 8);
        }
        // `bit % 8` is at most 7, so this fits a u8.
        BitString::new(7 - (bit % 8) as u8, bytes)
    }
}

/// A request the TSA turns down: the failure code and a short English reason.
#[derive(Debug)]
struct Rejection(FailInfo, String);

/// A rejection response for `systemFailure`, encoded by hand so that [`TimeStampAuthority::respond`]
/// can answer even if encoding fails: `SEQUENCE { SEQUENCE { INTEGER 2, BIT STRING bit 25 } }`.
const SYSTEM_FAILURE_RESPONSE: &[u8] = &[
    0x30, 0x0c, 0x30, 0x0a, 0x02, 0x01, 0x02, 0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40,
];

fn response_der(status: PkiStatusInfo, token: Option<&[u8]>) -> Result<Vec<u8>, SigError> {
    let token = token
        .map(AnyRef::from_der)
        .transpose()
        .map_err(SigError::malformed(RESPONSE))?;
    TimeStampResp {
        status,
        time_stamp_token: token,
    }
    .to_der()
    .map_err(SigError::malformed(RESPONSE))
}

fn rejection_der(r: &Rejection) -> Result<Vec<u8>, SigError> {
    response_der(
        PkiStatusInfo {
            status: 2,
            status_string: Some(vec![r.1.clone()]),
            fail_info: Some(r.0.bit_string().map_err(SigError::malformed(RESPONSE))?),
        },
        None,
    )
}

// ---------------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------------

/// A time-stamp request (RFC 3161 §2.4.1), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampRequest {
    /// The hash algorithm of the message imprint.
    pub hash_alg: DigestAlg,
    /// The hash of the data to be time-stamped.
    pub imprint: Vec<u8>,
    /// The nonce: an unsigned big-endian integer without leading zero octets.
    pub nonce: Option<Vec<u8>>,
    /// Whether the TSA is asked to include its certificate in the token.
    pub cert_req: bool,
    /// The policy under which the TSA is asked to answer.
    pub policy: Option<ObjectIdentifier>,
}

impl TimeStampRequest {
    /// A request for the time-stamp of data whose `alg` digest is `digest`, with no policy. The digest
    /// length must match the algorithm.
    pub fn for_digest(
        alg: DigestAlg,
        digest: &[u8],
        nonce: Option<[u8; 8]>,
        cert_req: bool,
    ) -> Result<Self, SigError> {
        if digest.len() != alg.output_len() {
            return Err(malformed(
                REQUEST,
                format!(
                    "a {alg} digest is {} bytes, not {}",
                    alg.output_len(),
                    digest.len()
                ),
            ));
        }
        let nonce = nonce.map(|n| {
            let start = n.iter().position(|&b| b != 0).unwrap_or(n.len());
            n[start..].to_vec()
        });
        Ok(Self {
            hash_alg: alg,
            imprint: digest.to_vec(),
            nonce,
            cert_req,
            policy: None,
        })
    }

    /// [`for_digest`](Self::for_digest) with a fresh random 64-bit nonce from the system's generator.
    pub fn with_random_nonce(alg: DigestAlg, digest: &[u8], cert_req: bool) -> Result<Self, SigError> {
        use aws_lc_rs::rand::SecureRandom;
        let mut nonce = [0u8; 8];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SigError::Crypto("random nonce: the system generator failed".into()))?;
        Self::for_digest(alg, digest, Some(nonce), cert_req)
    }

    /// Decodes a DER `TimeStampReq`. Version other than 1, a negative nonce and extensions are
    /// `Malformed`/`Unsupported`; so is a hash algorithm other than SHA-256/384/512 or an imprint of the
    /// wrong length.
    pub fn parse(der: &[u8]) -> Result<Self, SigError> {
        if der.len() > MAX_REQUEST_LEN {
            return Err(SigError::TooLarge {
                what: REQUEST,
                size: der.len(),
                limit: MAX_REQUEST_LEN,
            });
        }
        let req = TimeStampReq::from_der(der).map_err(SigError::malformed(REQUEST))?;
        Self::from_asn(&req).map_err(|r| match r.0 {
            FailInfo::BadAlg | FailInfo::UnacceptedExtension => SigError::Unsupported {
                what: REQUEST,
                detail: r.1,
            },
            _ => malformed(REQUEST, r.1),
        })
    }

    /// Checks a decoded request as a TSA would (policy aside).
    fn from_asn(req: &TimeStampReq) -> Result<Self, Rejection> {
        if req.version != 1 {
            return Err(Rejection(
                FailInfo::BadRequest,
                format!("version {} (only version 1 is defined)", req.version),
            ));
        }
        let mi = &req.message_imprint;
        let Some(alg) = imprint_alg(&mi.hash_algorithm) else {
            return Err(Rejection(
                FailInfo::BadAlg,
                format!(
                    "hash algorithm {} (SHA-256, SHA-384 or SHA-512 expected)",
                    mi.hash_algorithm.oid
                ),
            ));
        };
        let imprint = mi.hashed_message.as_bytes();
        if imprint.len() != alg.output_len() {
            return Err(Rejection(
                FailInfo::BadAlg,
                format!("a {alg} imprint of {} bytes", imprint.len()),
            ));
        }
        if req.extensions.as_ref().is_some_and(|e| !e.is_empty()) {
            return Err(Rejection(
                FailInfo::UnacceptedExtension,
                "request extensions".into(),
            ));
        }
        let nonce = match &req.nonce {
            None => None,
            Some(n) => match magnitude(n) {
                Ok(Some(m)) => Some(m),
                _ => return Err(Rejection(FailInfo::BadRequest, "negative nonce".into())),
            },
        };
        Ok(Self {
            hash_alg: alg,
            imprint: imprint.to_vec(),
            nonce,
            cert_req: req.cert_req,
            policy: req.req_policy,
        })
    }

    /// The DER `TimeStampReq`. The hash AlgorithmIdentifier carries NULL parameters, as OpenSSL writes
    /// them (some TSAs refuse absent ones).
    pub fn to_der(&self) -> Result<Vec<u8>, SigError> {
        let bad = SigError::malformed(REQUEST);
        let req = TimeStampReq {
            version: 1,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifierOwned {
                    oid: self.hash_alg.oid(),
                    parameters: Some(AnyRef::NULL.into()),
                },
                hashed_message: OctetString::new(self.imprint.as_slice())
                    .map_err(SigError::malformed(REQUEST))?,
            },
            req_policy: self.policy,
            nonce: self
                .nonce
                .as_deref()
                .map(positive_int)
                .transpose()
                .map_err(SigError::malformed(REQUEST))?,
            cert_req: self.cert_req,
            extensions: None,
        };
        req.to_der().map_err(bad)
    }
}

// ---------------------------------------------------------------------------------------------------
// Authority
// ---------------------------------------------------------------------------------------------------

/// Checks RFC 3161 §2.3: the certificate's extendedKeyUsage is present, critical, and only
/// id-kp-timeStamping.
fn check_time_stamping_eku(cert: &Certificate) -> Result<(), String> {
    let ekus: Vec<_> = cert
        .tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .filter(|e| e.extn_id == oid::EXT_KEY_USAGE)
        .collect();
    let [eku] = ekus.as_slice() else {
        return Err("the TSA certificate must have one extendedKeyUsage extension (RFC 3161 §2.3)".into());
    };
    if !eku.critical {
        return Err("the TSA certificate's extendedKeyUsage must be critical (RFC 3161 §2.3)".into());
    }
    let purposes = ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
        .map_err(|e| format!("the TSA certificate's extendedKeyUsage does not decode ({e})"))?;
    if purposes.0 != [oid::KP_TIME_STAMPING] {
        return Err(
            "the TSA certificate's extendedKeyUsage must contain only id-kp-timeStamping (RFC 3161 §2.3)"
                .into(),
        );
    }
    Ok(())
}

/// A time-stamp authority: a key, its certificate (and chain), and the policy it stamps under.
pub struct TimeStampAuthority {
    key: SigningKey,
    cert_der: Vec<u8>,
    chain: Vec<Vec<u8>>,
    policy: ObjectIdentifier,
}

impl fmt::Debug for TimeStampAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeStampAuthority")
            .field("key", &self.key)
            .field("chain_len", &self.chain.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl TimeStampAuthority {
    /// Pairs the TSA key with its DER certificate and the certificates above it (sent with the token
    /// when the request asks for certificates). Fails unless the certificate holds the key's public
    /// half and has the critical, timeStamping-only extendedKeyUsage RFC 3161 §2.3 requires. The policy
    /// is [`jpki_pki::oid::TSA_POLICY`].
    pub fn new(key: SigningKey, cert_der: Vec<u8>, chain: Vec<Vec<u8>>) -> Result<Self, SigError> {
        let cert = Certificate::from_der(&cert_der).map_err(SigError::malformed("TSA certificate"))?;
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(SigError::malformed("TSA certificate"))?;
        if spki != key.spki_der()? {
            return Err(SigError::Tsa(
                "the TSA key does not match the TSA certificate".into(),
            ));
        }
        check_time_stamping_eku(&cert).map_err(SigError::Tsa)?;
        for c in &chain {
            Certificate::from_der(c).map_err(SigError::malformed("TSA certificate chain"))?;
        }
        Ok(Self {
            key,
            cert_der,
            chain,
            policy: oid::TSA_POLICY,
        })
    }

    /// Stamps under `policy` instead of [`jpki_pki::oid::TSA_POLICY`].
    pub fn with_policy(mut self, policy: ObjectIdentifier) -> Self {
        self.policy = policy;
        self
    }

    /// The policy put in every TSTInfo.
    pub fn policy(&self) -> ObjectIdentifier {
        self.policy
    }

    /// The TSA certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Answers the DER `TimeStampReq` `request_der` at time `now` (to whole seconds, accuracy one
    /// second) with serial number `serial` (unsigned big-endian, unique per token, 1 to 20 octets
    /// without leading zeros). Always a DER `TimeStampResp`: granted with a token, or rejected with a
    /// failure code and reason (see [`try_respond`](Self::try_respond)); if the TSA itself fails, a
    /// rejection with systemFailure.
    pub fn respond(&self, request_der: &[u8], now: OffsetDateTime, serial: &[u8]) -> Vec<u8> {
        self.try_respond(request_der, now, serial).unwrap_or_else(|_| {
            rejection_der(&Rejection(
                FailInfo::SystemFailure,
                "the time-stamp authority could not produce a token".into(),
            ))
            .unwrap_or_else(|_| SYSTEM_FAILURE_RESPONSE.to_vec())
        })
    }

    /// [`respond`](Self::respond), with the TSA's own failures (signing, an unusable serial or time)
    /// as errors. A bad request is still `Ok`: a rejection response with status rejection(2) and
    /// failInfo badDataFormat (not DER, or over [`MAX_REQUEST_LEN`]), badAlg (hash algorithm other than
    /// SHA-256/384/512, or an imprint of the wrong length), unacceptedPolicy (a reqPolicy other than
    /// ours), unacceptedExtension (any request extension) or badRequest (anything else).
    pub fn try_respond(
        &self,
        request_der: &[u8],
        now: OffsetDateTime,
        serial: &[u8],
    ) -> Result<Vec<u8>, SigError> {
        match self.check_request(request_der) {
            Err(r) => rejection_der(&r),
            Ok(req) => {
                let token = self.issue_token(&req, now, serial)?;
                response_der(
                    PkiStatusInfo {
                        status: 0,
                        status_string: None,
                        fail_info: None,
                    },
                    Some(&token),
                )
            }
        }
    }

    fn check_request(&self, der: &[u8]) -> Result<TimeStampReq, Rejection> {
        if der.len() > MAX_REQUEST_LEN {
            return Err(Rejection(
                FailInfo::BadDataFormat,
                format!("request of {} bytes (limit {MAX_REQUEST_LEN})", der.len()),
            ));
        }
        let req = TimeStampReq::from_der(der).map_err(|e| {
            Rejection(
                FailInfo::BadDataFormat,
                format!("request is not DER TimeStampReq ({e})"),
            )
        })?;
        TimeStampRequest::from_asn(&req)?;
        if let Some(p) = req.req_policy
            && p != self.policy
        {
            return Err(Rejection(
                FailInfo::UnacceptedPolicy,
                format!("policy {p} (this TSA stamps under {})", self.policy),
            ));
        }
        Ok(req)
    }

    /// The token: TSTInfo echoing the request's imprint and nonce, signed with content-type,
    /// message-digest and signing-certificate-v2 attributes.
    fn issue_token(
        &self,
        req: &TimeStampReq,
        now: OffsetDateTime,
        serial: &[u8],
    ) -> Result<Vec<u8>, SigError> {
        let start = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
        let serial = &serial[start..];
        if serial.is_empty() || serial.len() > 20 {
            return Err(SigError::Tsa(format!(
                "serial number of {} significant octets (1 to 20 allowed)",
                serial.len()
            )));
        }
        let secs = u64::try_from(now.unix_timestamp())
            .map_err(|_| SigError::Tsa(format!("time {now} before 1970")))?;
        let gen_time = GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
            .map_err(|e| SigError::Tsa(format!("time {now}: {e}")))?;
        let bad = || SigError::malformed(TOKEN);
        let tst = TstInfo {
            version: 1,
            policy: self.policy,
            message_imprint: req.message_imprint.clone(),
            serial_number: positive_int(serial).map_err(bad())?,
            gen_time: Any::encode_from(&gen_time).map_err(bad())?,
            accuracy: Some(AccuracyAsn {
                seconds: Some(1),
                millis: None,
                micros: None,
            }),
            ordering: false,
            nonce: req.nonce.clone(),
            tsa: None,
            extensions: None,
        }
        .to_der()
        .map_err(bad())?;
        let digest = match self.key.key_type() {
            KeyType::P384 => DigestAlg::Sha384,
            _ => DigestAlg::Sha256,
        };
        let attrs = [
            attr_content_type(ID_CT_TST_INFO)?,
            attr_message_digest(&digest.digest(&tst))?,
            attr_signing_certificate_v2(&self.cert_der)?,
        ];
        let to_sign = signed_attributes_der(&attrs)?;
        let signature = self.key.sign(&to_sign)?;
        let mut certs = Vec::new();
        if req.cert_req {
            certs.push(self.cert_der.clone());
            certs.extend(self.chain.iter().cloned());
        }
        SignedDataBuilder::new(&self.cert_der, digest, ID_CT_TST_INFO)
            .content(&tst)
            .certificates(&certs)
            .build(&to_sign, &signature)
    }
}

// ---------------------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------------------

/// Checks a DER `TimeStampResp` against the request it answers and returns the token (DER
/// ContentInfo) it carries. The status must be granted or grantedWithMods, else `SigError::Tsa` with
/// the status, failure codes and the TSA's text; the token's imprint, nonce and (if one was asked for)
/// policy must be the request's, and if certificates were asked for the token must carry some.
///
/// This does not verify the token's signature: see [`TimeStampToken::verify`].
pub fn token_from_response(resp_der: &[u8], request: &TimeStampRequest) -> Result<Vec<u8>, SigError> {
    if resp_der.len() > MAX_CMS_LEN {
        return Err(SigError::TooLarge {
            what: RESPONSE,
            size: resp_der.len(),
            limit: MAX_CMS_LEN,
        });
    }
    let resp = TimeStampResp::from_der(resp_der).map_err(SigError::malformed(RESPONSE))?;
    let status = &resp.status;
    if status.status > 1 {
        let mut msg = status_name(status.status);
        if let Some(bits) = &status.fail_info {
            let names: Vec<String> = bits
                .bits()
                .enumerate()
                .filter(|(_, set)| *set)
                .map(|(i, _)| fail_info_name(i))
                .collect();
            if !names.is_empty() {
                msg = format!("{msg} ({})", names.join(", "));
            }
        }
        if let Some(text) = &status.status_string {
            msg = format!("{msg}: {}", text.join("; "));
        }
        return Err(SigError::Tsa(msg));
    }
    let Some(token) = resp.time_stamp_token else {
        return Err(SigError::Tsa(format!(
            "status {} but no time-stamp token",
            status_name(status.status)
        )));
    };
    let token = token.to_der().map_err(SigError::malformed(RESPONSE))?;
    let parsed = TimeStampToken::parse(&token)?;
    if parsed.imprint_alg != request.hash_alg.oid() || parsed.imprint != request.imprint {
        return Err(SigError::Tsa("the token stamps another message imprint".into()));
    }
    if parsed.nonce != request.nonce {
        return Err(SigError::Tsa("the token's nonce is not the request's".into()));
    }
    if let Some(p) = request.policy
        && parsed.policy != p
    {
        return Err(SigError::Tsa(format!(
            "the token's policy is {}, not the requested {p}",
            parsed.policy
        )));
    }
    if request.cert_req && parsed.certificates.is_empty() {
        return Err(SigError::Tsa(
            "certificates were requested but the token carries none".into(),
        ));
    }
    Ok(token)
}

/// The accuracy of a token's time (RFC 3161 §2.4.2): the time is within ± this of genTime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accuracy {
    /// Whole seconds.
    pub seconds: u64,
    /// Milliseconds (0 to 999).
    pub millis: u16,
    /// Microseconds (0 to 999).
    pub micros: u16,
}

impl Accuracy {
    /// The accuracy as a duration.
    pub fn as_duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds)
            + std::time::Duration::from_millis(u64::from(self.millis))
            + std::time::Duration::from_micros(u64::from(self.micros))
    }
}

/// A time-stamp token (a DER ContentInfo with a TSTInfo), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampToken {
    /// The time of the stamp (genTime), fractions of seconds kept.
    pub gen_time: OffsetDateTime,
    /// The serial number, lowercase hex of its content octets without a leading zero octet.
    pub serial: String,
    /// The TSA policy under which the token was issued.
    pub policy: ObjectIdentifier,
    /// The hash algorithm of the message imprint.
    pub imprint_alg: ObjectIdentifier,
    /// The hash of the stamped data.
    pub imprint: Vec<u8>,
    /// The nonce: unsigned big-endian without leading zero octets.
    pub nonce: Option<Vec<u8>>,
    /// The accuracy of genTime, if given.
    pub accuracy: Option<Accuracy>,
    /// Whether the TSA claims ordering of its tokens by genTime alone.
    pub ordering: bool,
    /// The TSA's name, if given (RFC 4514 for a directoryName).
    pub tsa_name: Option<String>,
    /// The certificates (DER) the token carries.
    pub certificates: Vec<Vec<u8>>,
    /// The SignedData around the TSTInfo.
    pub signed_data: ParsedSignedData<'static>,
    /// The TSTInfo (DER), the eContent.
    pub tst_info_der: Vec<u8>,
}

impl TimeStampToken {
    /// Decodes a DER time-stamp token. Anything but a SignedData with exactly one signer and a
    /// version 1 TSTInfo as content is `Malformed`.
    pub fn parse(der: &[u8]) -> Result<Self, SigError> {
        let signed_data = ParsedSignedData::parse(der)?.into_owned();
        if signed_data.econtent_type != ID_CT_TST_INFO {
            return Err(malformed(
                TOKEN,
                format!("content type {} is not id-ct-TSTInfo", signed_data.econtent_type),
            ));
        }
        if signed_data.signers.len() != 1 {
            return Err(malformed(
                TOKEN,
                format!("{} signers (exactly one expected)", signed_data.signers.len()),
            ));
        }
        let Some(tst_info_der) = signed_data.econtent.as_deref().map(<[u8]>::to_vec) else {
            return Err(malformed(TOKEN, "no TSTInfo (detached content)"));
        };
        let tst = TstInfo::from_der(&tst_info_der).map_err(SigError::malformed(TOKEN))?;
        if tst.version != 1 {
            return Err(malformed(TOKEN, format!("TSTInfo version {}", tst.version)));
        }
        if tst.gen_time.tag() != Tag::GeneralizedTime {
            return Err(malformed(TOKEN, "genTime is not a GeneralizedTime"));
        }
        let gen_time = parse_generalized_time(tst.gen_time.value())
            .ok_or_else(|| malformed(TOKEN, "genTime is not YYYYMMDDHHMMSS[.f]Z"))?;
        let mut serial = int_content(&tst.serial_number).map_err(SigError::malformed(TOKEN))?;
        if serial.len() > 1 && serial.first() == Some(&0) {
            serial.remove(0);
        }
        let nonce = tst
            .nonce
            .as_ref()
            .map(|n| {
                magnitude(n)
                    .map_err(SigError::malformed(TOKEN))?
                    .ok_or_else(|| malformed(TOKEN, "negative nonce"))
            })
            .transpose()?;
        let accuracy = tst.accuracy.as_ref().map(|a| Accuracy {
            seconds: a.seconds.unwrap_or(0),
            millis: a.millis.unwrap_or(0),
            micros: a.micros.unwrap_or(0),
        });
        let tsa_name = tst.tsa.as_ref().map(|g| match g {
            GeneralName::DirectoryName(n) => n.to_string(),
            GeneralName::UniformResourceIdentifier(u) => u.to_string(),
            GeneralName::DnsName(d) => d.to_string(),
            GeneralName::Rfc822Name(m) => m.to_string(),
            other => format!("{other:?}"),
        });
        Ok(Self {
            gen_time,
            serial: hex::encode(serial),
            policy: tst.policy,
            imprint_alg: tst.message_imprint.hash_algorithm.oid,
            imprint: tst.message_imprint.hashed_message.as_bytes().to_vec(),
            nonce,
            accuracy,
            ordering: tst.ordering,
            tsa_name,
            certificates: signed_data.certificates.iter().map(|c| c.to_vec()).collect(),
            signed_data,
            tst_info_der,
        })
    }

    /// The one signer (the TSA).
    pub fn signer(&self) -> Option<&ParsedSigner<'static>> {
        self.signed_data.signers.first()
    }

    /// The imprint's hash algorithm, if it is SHA-256/384/512.
    pub fn imprint_digest_alg(&self) -> Option<DigestAlg> {
        DigestAlg::from_oid(&self.imprint_alg)
    }

    /// Whether the token stamps `data`: its hash under the imprint's algorithm is the imprint.
    pub fn imprint_matches(&self, data: &[u8]) -> bool {
        self.imprint_digest_alg()
            .is_some_and(|alg| alg.digest(data) == self.imprint)
    }

    /// The TSA certificate (DER) named by the signer's sid, from the token's certificates or else
    /// from `extra`.
    pub fn signer_certificate(&self, extra: &[Vec<u8>]) -> Option<Vec<u8>> {
        let signer = self.signer()?;
        self.certificates
            .iter()
            .chain(extra)
            .find(|c| signer.sid.matches(c))
            .cloned()
    }

    /// Checks the token against the TSA certificate `tsa_cert_der`: the content is a TSTInfo and the
    /// content-type attribute says so; the message-digest attribute is the digest of the TSTInfo; a
    /// signing-certificate(-v2) attribute names this certificate; the sid names it; the signature
    /// verifies with its key; and the certificate has the critical, timeStamping-only
    /// extendedKeyUsage. Failures are `SigError::Tsa`. Path validation and revocation of the TSA
    /// certificate are not checked here.
    pub fn verify(&self, tsa_cert_der: &[u8]) -> Result<(), SigError> {
        let fail = |m: &str| Err(SigError::Tsa(format!("time-stamp token: {m}")));
        let Some(signer) = self.signer() else {
            return fail("no signer");
        };
        if self.signed_data.econtent_type != ID_CT_TST_INFO {
            return fail("the content is not a TSTInfo");
        }
        if signer.content_type()? != Some(ID_CT_TST_INFO) {
            return fail("the content-type attribute is missing or not id-ct-TSTInfo");
        }
        if !signer.message_digest_matches(&self.tst_info_der)? {
            return fail("the message-digest attribute does not match the TSTInfo");
        }
        match signer.signing_certificate_ref()? {
            None => return fail("no signing-certificate attribute"),
            Some(ess) if !ess.matches(tsa_cert_der)? => {
                return fail("the signing-certificate attribute names another certificate");
            }
            Some(_) => {}
        }
        if !signer.sid.matches(tsa_cert_der) {
            return fail("the signer identifier names another certificate");
        }
        if !verify_signer(signer, tsa_cert_der)? {
            return fail("the signature does not verify with the TSA certificate's key");
        }
        let cert = Certificate::from_der(tsa_cert_der).map_err(SigError::malformed("TSA certificate"))?;
        check_time_stamping_eku(&cert).map_err(|m| SigError::Tsa(format!("time-stamp token: {m}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed_data::testing::*;
    use crate::signed_data::{ID_DATA, set_unsigned_attribute};
    use proptest::prelude::*;
    use std::sync::OnceLock;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2031-05-09 14:59:59.75 UTC);
    const SERIAL: &[u8] = &[0x00, 0x9a, 0xbc, 0x01];

    struct Tsa {
        tsa: TimeStampAuthority,
        cert: Vec<u8>,
        root: Vec<u8>,
    }

    fn make_tsa(kt: KeyType) -> Tsa {
        let (root_key, root) = self_signed(kt, "Test Root", ca_extensions());
        let key = SigningKey::generate(kt).unwrap();
        let cert = issue(
            "Test TSA",
            &key.spki_der().unwrap(),
            (&name("Test Root"), &root_key),
            &[0x11],
            vec![ku_digital_signature(), eku_time_stamping(true)],
        );
        let tsa = TimeStampAuthority::new(key, cert.clone(), vec![root.clone()]).unwrap();
        Tsa { tsa, cert, root }
    }

    fn rsa() -> &'static Tsa {
        static T: OnceLock<Tsa> = OnceLock::new();
        T.get_or_init(|| make_tsa(KeyType::Rsa2048))
    }

    fn p384() -> &'static Tsa {
        static T: OnceLock<Tsa> = OnceLock::new();
        T.get_or_init(|| make_tsa(KeyType::P384))
    }

    fn request(cert_req: bool) -> TimeStampRequest {
        TimeStampRequest::for_digest(
            DigestAlg::Sha256,
            &DigestAlg::Sha256.digest(b"data"),
            Some([0, 0, 1, 2, 3, 4, 5, 0xff]),
            cert_req,
        )
        .unwrap()
    }

    fn granted_token() -> &'static [u8] {
        static T: OnceLock<Vec<u8>> = OnceLock::new();
        T.get_or_init(|| {
            let req = request(true);
            let resp = rsa().tsa.respond(&req.to_der().unwrap(), NOW, SERIAL);
            token_from_response(&resp, &req).unwrap()
        })
    }

    /// Status and failInfo bit numbers of a response.
    fn status_of(resp: &[u8]) -> (u32, Vec<usize>) {
        let r = TimeStampResp::from_der(resp).unwrap();
        let bits = r
            .status
            .fail_info
            .map(|b| b.bits().enumerate().filter(|(_, s)| *s).map(|(i, _)| i).collect())
            .unwrap_or_default();
        (r.status.status, bits)
    }

    #[test]
    fn request_round_trip() {
        let mut req = request(true);
        assert_eq!(req.nonce.as_deref(), Some(&[1, 2, 3, 4, 5, 0xff][..]));
        assert_eq!(TimeStampRequest::parse(&req.to_der().unwrap()).unwrap(), req);
        req.policy = Some(oid::TSA_POLICY);
        req.cert_req = false;
        req.nonce = None;
        req.hash_alg = DigestAlg::Sha512;
        req.imprint = vec![7; 64];
        assert_eq!(TimeStampRequest::parse(&req.to_der().unwrap()).unwrap(), req);
        let r = TimeStampRequest::with_random_nonce(DigestAlg::Sha384, &[1; 48], false).unwrap();
        assert!(r.nonce.is_some());
        assert!(TimeStampRequest::for_digest(DigestAlg::Sha384, &[1; 32], None, false).is_err());
        assert!(TimeStampRequest::parse(b"\x30\x00").is_err());
    }

    #[test]
    fn granted_response_verifies_for_both_key_types() {
        for (t, digest) in [
            (rsa(), crate::signed_data::DigestAlg::Sha256),
            (p384(), DigestAlg::Sha384),
        ] {
            let req = request(false);
            let resp = t.tsa.respond(&req.to_der().unwrap(), NOW, SERIAL);
            assert_eq!(status_of(&resp), (0, vec![]));
            let token = token_from_response(&resp, &req).unwrap();
            let tst = TimeStampToken::parse(&token).unwrap();
            assert_eq!(tst.gen_time, datetime!(2031-05-09 14:59:59 UTC));
            assert_eq!(tst.serial, "9abc01");
            assert_eq!(tst.policy, oid::TSA_POLICY);
            assert_eq!(
                tst.accuracy.unwrap().as_duration(),
                std::time::Duration::from_secs(1)
            );
            assert_eq!(tst.nonce, req.nonce);
            assert!(!tst.ordering);
            assert!(tst.tsa_name.is_none());
            assert!(tst.imprint_matches(b"data"));
            assert!(!tst.imprint_matches(b"date"));
            assert!(tst.certificates.is_empty());
            assert_eq!(tst.signed_data.version, 3);
            let signer = tst.signer().unwrap();
            assert_eq!(signer.digest_alg(), Some(digest));
            assert!(signer.signing_certificate_v2().unwrap().is_some());
            assert!(signer.signing_time().unwrap().is_none());
            assert_eq!(tst.signer_certificate(std::slice::from_ref(&t.root)), None);
            assert_eq!(
                tst.signer_certificate(&[t.root.clone(), t.cert.clone()]),
                Some(t.cert.clone())
            );
            tst.verify(&t.cert).unwrap();
            assert!(matches!(tst.verify(&t.root), Err(SigError::Tsa(_))));
        }
    }

    #[test]
    fn cert_req_includes_certificates() {
        let tst = TimeStampToken::parse(granted_token()).unwrap();
        assert_eq!(tst.certificates.len(), 2);
        assert!(tst.certificates.contains(&rsa().cert) && tst.certificates.contains(&rsa().root));
        assert_eq!(tst.signer_certificate(&[]), Some(rsa().cert.clone()));
        tst.verify(&rsa().cert).unwrap();
    }

    #[test]
    fn nonce_and_imprint_are_checked_by_the_client() {
        let req = request(false);
        let resp = rsa().tsa.respond(&req.to_der().unwrap(), NOW, SERIAL);
        let mut other = req.clone();
        other.nonce = Some(vec![9]);
        assert!(matches!(
            token_from_response(&resp, &other),
            Err(SigError::Tsa(_))
        ));
        other.nonce = None;
        assert!(matches!(
            token_from_response(&resp, &other),
            Err(SigError::Tsa(_))
        ));
        let mut other = req.clone();
        other.imprint[0] ^= 1;
        assert!(matches!(
            token_from_response(&resp, &other),
            Err(SigError::Tsa(_))
        ));
        let mut other = req.clone();
        other.cert_req = true;
        assert!(matches!(
            token_from_response(&resp, &other),
            Err(SigError::Tsa(_))
        ));
        // Without a nonce, none is echoed.
        let mut plain = req.clone();
        plain.nonce = None;
        let resp = rsa().tsa.respond(&plain.to_der().unwrap(), NOW, SERIAL);
        let token = token_from_response(&resp, &plain).unwrap();
        assert_eq!(TimeStampToken::parse(&token).unwrap().nonce, None);
    }

    /// A DER request built from parts, for the cases `TimeStampRequest` cannot express.
    fn raw_request(
        version: u8,
        alg: ObjectIdentifier,
        imprint: &[u8],
        policy: Option<ObjectIdentifier>,
    ) -> Vec<u8> {
        TimeStampReq {
            version,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifierOwned {
                    oid: alg,
                    parameters: None,
                },
                hashed_message: OctetString::new(imprint).unwrap(),
            },
            req_policy: policy,
            nonce: None,
            cert_req: false,
            extensions: None,
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn rejections_carry_the_right_failure() {
        let tsa = &rsa().tsa;
        let sha256 = DigestAlg::Sha256.oid();
        let sha1 = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
        let ext = x509_cert::ext::Extension {
            extn_id: ObjectIdentifier::new_unwrap("1.2.3.4"),
            critical: false,
            extn_value: OctetString::new(vec![5, 0]).unwrap(),
        };
        let mut with_ext = TimeStampReq::from_der(&raw_request(1, sha256, &[0; 32], None)).unwrap();
        with_ext.extensions = Some(vec![ext]);
        let cases: Vec<(Vec<u8>, usize, &str)> = vec![
            (raw_request(1, sha1, &[0; 20], None), 0, "badAlg"),
            (raw_request(1, sha256, &[0; 20], None), 0, "badAlg"),
            (raw_request(2, sha256, &[0; 32], None), 2, "badRequest"),
            (b"not DER at all".to_vec(), 5, "badDataFormat"),
            (vec![0x30; MAX_REQUEST_LEN + 1], 5, "badDataFormat"),
            (
                raw_request(1, sha256, &[0; 32], Some(ID_DATA)),
                15,
                "unacceptedPolicy",
            ),
            (with_ext.to_der().unwrap(), 16, "unacceptedExtension"),
        ];
        for (req, bit, name) in cases {
            let resp = tsa.respond(&req, NOW, SERIAL);
            assert_eq!(status_of(&resp), (2, vec![bit]), "{name}");
            let r = TimeStampResp::from_der(&resp).unwrap();
            assert!(r.time_stamp_token.is_none());
            assert_eq!(r.status.status_string.as_ref().map(Vec::len), Some(1));
            let err = token_from_response(&resp, &request(false))
                .unwrap_err()
                .to_string();
            assert!(err.contains("rejection") && err.contains(name), "{err}");
        }
        // Our policy, asked for explicitly, is fine.
        let resp = tsa.respond(
            &raw_request(1, sha256, &[0; 32], Some(oid::TSA_POLICY)),
            NOW,
            SERIAL,
        );
        assert_eq!(status_of(&resp).0, 0);
    }

    #[test]
    fn tsa_failures_become_system_failure() {
        let req = request(false).to_der().unwrap();
        for serial in [&[][..], &[0, 0], &[1; 21]] {
            assert!(rsa().tsa.try_respond(&req, NOW, serial).is_err());
            assert_eq!(status_of(&rsa().tsa.respond(&req, NOW, serial)), (2, vec![25]));
        }
        assert_eq!(status_of(SYSTEM_FAILURE_RESPONSE), (2, vec![25]));
        assert!(
            rsa()
                .tsa
                .try_respond(&req, datetime!(1960-01-01 0:00 UTC), SERIAL)
                .is_err()
        );
    }

    #[test]
    fn other_policy() {
        let t = make_tsa(KeyType::P384);
        let tsa = t.tsa.with_policy(ID_DATA);
        let mut req = request(false);
        req.policy = Some(ID_DATA);
        let token = token_from_response(&tsa.respond(&req.to_der().unwrap(), NOW, SERIAL), &req).unwrap();
        assert_eq!(TimeStampToken::parse(&token).unwrap().policy, ID_DATA);
    }

    #[test]
    fn tsa_certificate_requirements() {
        for (exts, what) in [
            (vec![ku_digital_signature(), eku_time_stamping(false)], "critical"),
            (vec![ku_digital_signature()], "one extendedKeyUsage"),
            (
                vec![ext(
                    "2.5.29.37",
                    true,
                    &ExtendedKeyUsage(vec![oid::KP_TIME_STAMPING, ID_DATA]),
                )],
                "only id-kp-timeStamping",
            ),
        ] {
            let (key, cert) = self_signed(KeyType::P384, "Bad TSA", exts);
            let err = TimeStampAuthority::new(key, cert, vec![])
                .unwrap_err()
                .to_string();
            assert!(err.contains(what), "{err}");
        }
        let (_, cert) = self_signed(KeyType::P384, "TSA", vec![eku_time_stamping(true)]);
        let other = SigningKey::generate(KeyType::P384).unwrap();
        let err = TimeStampAuthority::new(other, cert, vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn tampered_token_fails_verification() {
        let token = granted_token();
        let tst = TimeStampToken::parse(token).unwrap();
        // Flip a bit of the imprint inside the TSTInfo: still DER, but no longer what was signed.
        let pos = token
            .windows(tst.imprint.len())
            .position(|w| w == tst.imprint)
            .unwrap();
        let mut bad = token.to_vec();
        bad[pos + 3] ^= 0x10;
        let t = TimeStampToken::parse(&bad).unwrap();
        let err = t.verify(&rsa().cert).unwrap_err().to_string();
        assert!(err.contains("message-digest"), "{err}");
        // Flip a bit of the signature.
        let sig = &tst.signer().unwrap().signature;
        let pos = token.windows(sig.len()).position(|w| w == sig.as_ref()).unwrap();
        let mut bad = token.to_vec();
        bad[pos + 7] ^= 1;
        let err = TimeStampToken::parse(&bad)
            .unwrap()
            .verify(&rsa().cert)
            .unwrap_err()
            .to_string();
        assert!(err.contains("signature does not verify"), "{err}");
        // The certificate of another TSA with the same name does not fit the ESS attribute.
        let other = make_tsa(KeyType::Rsa2048);
        assert!(tst.verify(&other.cert).is_err());
    }

    #[test]
    fn token_is_not_a_plain_signature() {
        // A token with an unsigned attribute added still verifies (only signed parts count).
        let attr = crate::signed_data::attribute(ID_DATA, &[b"\x05\x00"]).unwrap();
        let token = set_unsigned_attribute(granted_token(), &attr).unwrap();
        TimeStampToken::parse(&token)
            .unwrap()
            .verify(&rsa().cert)
            .unwrap();
        // Something that is not a SignedData is not a token.
        let err = TimeStampToken::parse(b"\x30\x03\x02\x01\x01").unwrap_err();
        assert!(matches!(err, SigError::Malformed { .. }));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn respond_always_answers(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let resp = rsa().tsa.respond(&bytes, NOW, SERIAL);
            let (status, _) = status_of(&resp);
            prop_assert!(status == 0 || status == 2);
            let _ = TimeStampRequest::parse(&bytes);
            let _ = TimeStampToken::parse(&bytes);
            let _ = token_from_response(&bytes, &request(false));
        }

        #[test]
        fn mutated_requests_and_tokens_never_panic(cut in 0usize..8192, flips in proptest::collection::vec((0usize..8192, 0u8..8), 1..4)) {
            let req = request(true).to_der().unwrap();
            let token = granted_token();
            for src in [&req[..], token] {
                let mut m = src.to_vec();
                for (pos, bit) in &flips {
                    let i = pos % m.len();
                    m[i] ^= 1 << bit;
                }
                for input in [&src[..cut % src.len()], &m[..]] {
                    let resp = rsa().tsa.respond(input, NOW, SERIAL);
                    prop_assert!(TimeStampResp::from_der(&resp).is_ok());
                    let _ = TimeStampRequest::parse(input);
                    if let Ok(t) = TimeStampToken::parse(input) {
                        let _ = t.verify(&rsa().cert);
                        let _ = t.signer_certificate(&[]);
                    }
                }
            }
        }
    }
}
