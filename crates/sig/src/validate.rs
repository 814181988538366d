//! Signature validation after ETSI EN 319 102-1: the basic validation (format, identification of the
//! signing certificate, cryptographic verification, X.509 validation, signature acceptance) and the
//! validation with time (time-stamps as proof of existence), ending in one
//! [`Report`](crate::report::Report).
//!
//! The verdict rules, by case:
//! - content digest differs → FAILED / HASH_FAILURE; signature value wrong → FAILED / SIG_CRYPTO_FAILURE;
//! - no signing-certificate(-v2) reference, or it names another certificate → INDETERMINATE /
//!   NO_SIGNING_CERTIFICATE_FOUND;
//! - no path to a trust anchor → INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND; a path that breaks the CA
//!   rules, or a signing certificate that is not a JPKI signature certificate (a user-authentication
//!   certificate is never accepted for a document signature) or whose keyUsage lacks
//!   nonRepudiation → INDETERMINATE / CHAIN_CONSTRAINTS_FAILURE;
//! - times are bounds: a signature time-stamp proves the signature existed by its time (an upper
//!   bound on when it was made, as is the validation time itself); a content time-stamp (signed
//!   attribute id-aa-ets-contentTimestamp) proves it was made after its time (a lower bound). The
//!   claimed signing time proves nothing;
//! - revoked: existence proven before the revocation → passed; made provably after it (content
//!   time-stamp) → FAILED / REVOKED; otherwise — including a signature time-stamp after the
//!   revocation, which shows existence, not creation — INDETERMINATE / REVOKED_NO_POE. On hold
//!   without proof before the hold → INDETERMINATE / TRY_LATER (a hold can be lifted);
//! - expired now: existence proven within the validity → passed; made provably after the expiry →
//!   INDETERMINATE / EXPIRED (as EN 319 102-1 V1.3.1 and pyHanko file it); otherwise
//!   INDETERMINATE / OUT_OF_BOUNDS_NO_POE;
//! - made (proven, or claimed) before notBefore → FAILED / NOT_YET_VALID (the "signing time lies
//!   before the issuance date" of EN 319 102-1);
//! - no revocation information, or only an expired CRL → INDETERMINATE / TRY_LATER;
//! - a signature that fails the format, digest or signature-value check is not answered with its
//!   signer's revocation status: the report then has no `revocation` and says nothing about it (a
//!   bogus signature wrapped around somebody's certificate must not be a free status check).
//!
//! Path building is cached per signing certificate, and certificates keep their parsed public keys,
//! so a batch of signatures by one signer costs one RSA verification each plus hashing.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use const_oid::ObjectIdentifier as Oid;
use jpki_model::RevocationReason;
use jpki_pki::path::{self, CertPath, PathError, TrustAnchors};
use jpki_pki::revocation::{RevocationSource, Status};
use jpki_pki::x509::{Hash, ParsedCert};
use jpki_pki::{oid, x509};
use time::OffsetDateTime;
use x509_cert::ext::pkix::KeyUsages;

use crate::augment::{self, EmbeddedRevocation};
use crate::pdf::{self, Coverage};
use crate::report::{Facts, Indication, Report, Revocation, Signer, SigningTime, SubIndication, Timestamp};
use crate::signed_data::{
    DigestAlg, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, ID_DATA, ParsedSignedData, ParsedSigner,
};
use crate::tsp::TimeStampToken;
use crate::{SigError, ident};

/// JPKI test-hierarchy signature policy (the real test CA's 1.2.392.200149.8.5.1.0.20).
pub const POLICY_SIGN_TEST: Oid = Oid::new_unwrap("1.2.392.200149.8.5.1.0.20");

/// What the verifier accepts beyond the standard's checks.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Certificate policies that mark a signature certificate (any one suffices).
    pub signature_policies: Vec<Oid>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            signature_policies: vec![oid::POLICY_SIGN, POLICY_SIGN_TEST],
        }
    }
}

/// Validates signatures against configured trust anchors and revocation information.
pub struct Verifier {
    anchors: TrustAnchors,
    revocation: Arc<dyn RevocationSource>,
    policy: Policy,
    extra: Vec<Arc<ParsedCert>>,
    certs: Mutex<HashMap<[u8; 32], Arc<ParsedCert>>>,
    recent: Mutex<Vec<Arc<ParsedCert>>>,
    paths: Mutex<HashMap<[u8; 32], CertPath>>,
    /// The report's description of each signing certificate seen, which does not change.
    signers: Mutex<HashMap<[u8; 32], Arc<Signer>>>,
    /// Whether revocation information embedded in a signature answers instead of `revocation`.
    use_embedded: bool,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({} anchors)", self.anchors.len())
    }
}

/// One verdict candidate; the most severe wins (FAILED over INDETERMINATE, then by this order).
#[derive(Debug)]
struct Finding {
    sub: SubIndication,
    reason: String,
}

/// RFC 3339, as `time` writes it (`Z` for UTC, fractions of seconds without trailing zeros). UTC
/// times in years 0–9999 (all the verifier meets) are written by hand: `time`'s general formatter
/// cost as much as the rest of a report.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    let year = t.year();
    if !t.offset().is_utc() || !(0..=9999).contains(&year) {
        return t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string());
    }
    fn digits(out: &mut String, v: u32, width: u32) {
        for i in (0..width).rev() {
            let d = (v / 10u32.pow(i)) % 10;
            out.push(char::from(b'0' + d as u8));
        }
    }
    let mut out = String::with_capacity(30);
    digits(&mut out, year.unsigned_abs(), 4);
    out.push('-');
    digits(&mut out, u32::from(u8::from(t.month())), 2);
    out.push('-');
    digits(&mut out, u32::from(t.day()), 2);
    out.push('T');
    digits(&mut out, u32::from(t.hour()), 2);
    out.push(':');
    digits(&mut out, u32::from(t.minute()), 2);
    out.push(':');
    digits(&mut out, u32::from(t.second()), 2);
    let mut nanos = t.nanosecond();
    if nanos != 0 {
        let mut width = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            width -= 1;
        }
        out.push('.');
        digits(&mut out, nanos, width);
    }
    out.push('Z');
    out
}

/// Whether `sub` says the signature itself is broken (format, content digest, signature value).
fn is_broken(sub: SubIndication) -> bool {
    matches!(
        sub,
        SubIndication::HashFailure | SubIndication::SigCryptoFailure | SubIndication::FormatFailure
    )
}

fn severity(sub: SubIndication) -> u8 {
    use SubIndication::*;
    match sub {
        HashFailure => 0,
        SigCryptoFailure => 1,
        FormatFailure => 2,
        Revoked => 3,
        NotYetValid => 5,
        NoSigningCertificateFound => 10,
        NoCertificateChainFound => 11,
        ChainConstraintsFailure => 12,
        RevokedNoPoe => 13,
        RevokedCaNoPoe => 14,
        Expired => 15,
        OutOfBoundsNoPoe => 16,
        _ => 16,
    }
}

/// Content to check a signature against: slices hashed in order (a detached file, or a PDF's two
/// byte ranges).
#[derive(Debug, Clone, Copy)]
pub struct Content<'a>(pub &'a [&'a [u8]]);

impl Content<'_> {
    fn digest(&self, alg: DigestAlg) -> Vec<u8> {
        let algo = match alg {
            DigestAlg::Sha256 => &aws_lc_rs::digest::SHA256,
            DigestAlg::Sha384 => &aws_lc_rs::digest::SHA384,
            DigestAlg::Sha512 => &aws_lc_rs::digest::SHA512,
        };
        let mut ctx = aws_lc_rs::digest::Context::new(algo);
        for part in self.0 {
            ctx.update(part);
        }
        ctx.finish().as_ref().to_vec()
    }
}

fn hash_of(alg: DigestAlg) -> Hash {
    match alg {
        DigestAlg::Sha256 => Hash::Sha256,
        DigestAlg::Sha384 => Hash::Sha384,
        DigestAlg::Sha512 => Hash::Sha512,
    }
}

/// Verifies a SignerInfo's signature over its signed attributes with a parsed certificate's key.
fn signature_verifies(signer: &ParsedSigner<'_>, cert: &ParsedCert) -> Result<bool, String> {
    let Some(signed) = &signer.signed_attrs_der else {
        return Err("the signer has no signed attributes (not CAdES)".into());
    };
    let digest = signer
        .digest_alg()
        .ok_or_else(|| format!("unsupported digest algorithm {}", signer.digest_algorithm))?;
    let alg = &signer.signature_algorithm.oid;
    if *alg == oid::RSA_ENCRYPTION {
        if !matches!(cert.public_key.kind(), x509::KeyKind::Rsa(_)) {
            return Err("rsaEncryption signature with a non-RSA key".into());
        }
        return Ok(cert
            .public_key
            .verify_with_hash(hash_of(digest), signed, &signer.signature));
    }
    match x509::signature_hash(alg) {
        Some(h) if h != hash_of(digest) => Err(format!(
            "the signature algorithm {alg} does not hash with the digest algorithm {digest}"
        )),
        Some(_) => cert
            .public_key
            .verify(alg, signed, &signer.signature)
            .map_err(|e| e.to_string()),
        None => Err(format!("unsupported signature algorithm {alg}")),
    }
}

/// What the signature's time-stamp proves, if anything.
struct TimeProof {
    time: OffsetDateTime,
    report: Timestamp,
}

impl Verifier {
    /// A verifier trusting `anchors`, asking `revocation` for status.
    pub fn new(anchors: TrustAnchors, revocation: Arc<dyn RevocationSource>) -> Self {
        Self {
            anchors,
            revocation,
            policy: Policy::default(),
            extra: Vec::new(),
            certs: Mutex::new(HashMap::new()),
            recent: Mutex::new(Vec::new()),
            paths: Mutex::new(HashMap::new()),
            signers: Mutex::new(HashMap::new()),
            use_embedded: false,
        }
    }

    /// Answers revocation questions from the data a signature carries (B-LT: OCSP responses and
    /// CRLs in the CMS, or a PDF's DSS) when it carries any, instead of the configured source. For
    /// a verifier given no revocation information of its own.
    pub fn with_embedded_revocation(mut self) -> Self {
        self.use_embedded = true;
        self
    }

    /// The status of `cert` from the embedded data (when used and present), else the configured
    /// source.
    fn status(&self, embedded: &EmbeddedRevocation, cert: &ParsedCert, issuer: &ParsedCert) -> Status {
        if self.use_embedded && !embedded.is_empty() {
            embedded.status(cert, issuer)
        } else {
            self.revocation.status(cert, issuer)
        }
    }

    /// Replaces the policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Certificates offered for path building besides those a signature carries.
    pub fn with_extra_certificates(mut self, certs: &[Vec<u8>]) -> Result<Self, SigError> {
        for der in certs {
            self.extra.push(Arc::new(ParsedCert::from_der(der)?));
        }
        Ok(self)
    }

    fn cert(&self, der: &[u8]) -> Result<Arc<ParsedCert>, jpki_pki::PkiError> {
        // The certificates of the last few signatures, compared byte for byte: a batch by one signer
        // finds them here without hashing them.
        if let Ok(recent) = self.recent.lock()
            && let Some(c) = recent.iter().find(|c| c.der() == der)
        {
            return Ok(c.clone());
        }
        let c = self.cert_by_hash(der)?;
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= 8 {
                recent.remove(0);
            }
            recent.push(c.clone());
        }
        Ok(c)
    }

    fn cert_by_hash(&self, der: &[u8]) -> Result<Arc<ParsedCert>, jpki_pki::PkiError> {
        let key = x509::sha256(der);
        if let Ok(cache) = self.certs.lock()
            && let Some(c) = cache.get(&key)
        {
            return Ok(c.clone());
        }
        let c = Arc::new(ParsedCert::from_der(der)?);
        if let Ok(mut cache) = self.certs.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, c.clone());
        }
        Ok(c)
    }

    /// The report's description of the signing certificate `cert`, made once per certificate.
    fn signer_report(&self, cert: &ParsedCert) -> Arc<Signer> {
        if let Ok(cache) = self.signers.lock()
            && let Some(s) = cache.get(&cert.sha256)
        {
            return s.clone();
        }
        let s = Arc::new(Signer {
            subject: cert.subject.clone(),
            issuer: cert.issuer.clone(),
            serial: cert.serial_hex(),
            kind: cert.jpki_kind().to_owned(),
            key: cert.public_key.kind().to_string(),
            not_before: rfc3339(cert.not_before),
            not_after: rfc3339(cert.not_after),
            sha256: hex::encode(cert.sha256),
            facts: cert.jpki_san.as_ref().map(Facts::from_san),
        });
        if let Ok(mut cache) = self.signers.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(cert.sha256, s.clone());
        }
        s
    }

    fn path<B: AsRef<[u8]>>(&self, ee: &Arc<ParsedCert>, offered: &[B]) -> Result<CertPath, PathError> {
        // The cache holds built paths only, and one is reused only when this signature (or the
        // configured extra certificates) offers each of its intermediates too: a verdict must not
        // depend on what earlier signatures carried. (Caching failures made a signature that lacks
        // its intermediate spoil every later signature by the same signer that carries it.)
        if let Ok(cache) = self.paths.lock()
            && let Some(p) = cache.get(&ee.sha256)
            && let intermediates = p.certs.get(1..p.certs.len().saturating_sub(1)).unwrap_or(&[])
            && intermediates.iter().all(|ca| {
                offered.iter().any(|d| d.as_ref() == ca.der())
                    || self.extra.iter().any(|x| x.sha256 == ca.sha256)
            })
        {
            return Ok(p.clone());
        }
        let mut pool: Vec<Arc<ParsedCert>> = offered
            .iter()
            .filter_map(|d| self.cert(d.as_ref()).ok())
            .filter(|c| c.sha256 != ee.sha256)
            .collect();
        pool.extend(self.extra.iter().cloned());
        let result = path::build(ee.clone(), &pool, &self.anchors);
        if let Ok(p) = &result
            && let Ok(mut cache) = self.paths.lock()
        {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(ee.sha256, p.clone());
        }
        result
    }

    /// Validates a CAdES signature (DER ContentInfo). `content` is the detached content; `None` uses
    /// the encapsulated content. `now` is the validation time.
    pub fn verify_cades(
        &self,
        cms: &[u8],
        content: Option<&[u8]>,
        now: OffsetDateTime,
    ) -> Result<Report, SigError> {
        let parsed = ParsedSignedData::parse(cms)?;
        let data = match (content, &parsed.econtent) {
            (Some(c), _) => c,
            (None, Some(e)) => e.as_ref(),
            (None, None) => {
                return Err(SigError::Malformed {
                    what: "CMS signature",
                    detail: "the signature is detached: give the signed content (--content FILE)".into(),
                });
            }
        };
        let embedded = EmbeddedRevocation::of_signature(&parsed, None);
        Ok(self.verify_parsed(
            &parsed,
            Content(&[data]),
            now,
            &Format::Cades,
            PdfFacts::default(),
            &embedded,
        ))
    }

    /// Validates every signature of a PDF, in document order.
    pub fn verify_pdf(&self, pdf_bytes: &[u8], now: OffsetDateTime) -> Result<Vec<Report>, SigError> {
        let sigs = pdf::signatures(pdf_bytes)?;
        self.verify_pdf_signatures(pdf_bytes, sigs, now)
    }

    /// [`Self::verify_pdf`] for the signatures [`pdf::signatures`] already read from `pdf_bytes`.
    pub fn verify_pdf_signatures(
        &self,
        pdf_bytes: &[u8],
        sigs: Vec<pdf::PdfSignature>,
        now: OffsetDateTime,
    ) -> Result<Vec<Report>, SigError> {
        let mut out = Vec::new();
        // A DSS whose streams decode to more than its budget (a decompression bomb) refuses the
        // PDF; one that cannot be read otherwise counts as none.
        let dss = match augment::pdf_dss(pdf_bytes) {
            Ok(d) => d,
            Err(e @ (SigError::TooLarge { .. } | SigError::Unsupported { .. })) => return Err(e),
            Err(_) => augment::ValidationData::default(),
        };
        for sig in sigs {
            let claimed = sig.signing_time_m;
            let parsed = match &sig.contents {
                Ok(c) => ParsedSignedData::parse(c),
                Err(e) => Err(SigError::Malformed {
                    what: "PDF signature",
                    detail: e.to_string(),
                }),
            };
            let mut report = match (parsed, sig.covered(pdf_bytes)) {
                (Err(e), _) => failed_format(
                    now,
                    format!("the signature's /Contents is not a CMS signature: {e}"),
                ),
                (Ok(_), None) => failed_format(now, "the /ByteRange lies outside the file".into()),
                (Ok(parsed), Some([first, second])) => {
                    let format = if sig.sub_filter == "ETSI.CAdES.detached" {
                        Format::Pades
                    } else {
                        Format::PdfPkcs7(sig.sub_filter.clone())
                    };
                    let embedded = EmbeddedRevocation::of_signature(&parsed, Some(&dss));
                    // A signature that does not cover its revision is a format failure, decided
                    // before anything else (so that, like any broken signature, it is not
                    // answered with its signer's revocation status).
                    let broken = match &sig.coverage {
                        Coverage::Broken(why) => {
                            Some(format!("the signature does not cover its revision: {why}"))
                        }
                        Coverage::WholeRevision { .. } => None,
                    };
                    self.verify_parsed(
                        &parsed,
                        Content(&[first, second]),
                        now,
                        &format,
                        PdfFacts { claimed, broken },
                        &embedded,
                    )
                }
            };
            report.field = Some(sig.field_name.clone());
            match &sig.coverage {
                Coverage::WholeRevision { later_revisions, .. } => {
                    if *later_revisions {
                        report.warnings.push(
                            "the document was updated after this signature (later incremental updates are \
                             not covered by it)"
                                .into(),
                        );
                    }
                }
                Coverage::Broken(why) => {
                    report.revocation = None;
                    if report.indication != Indication::TotalFailed {
                        report.indication = Indication::TotalFailed;
                        report.sub_indication = Some(SubIndication::FormatFailure);
                        report
                            .reasons
                            .insert(0, format!("the signature does not cover its revision: {why}"));
                    }
                }
            }
            if sig.is_doc_timestamp {
                report
                    .warnings
                    .push("a document time-stamp (/DocTimeStamp), not a signature".into());
            }
            out.push(report);
        }
        Ok(out)
    }

    fn verify_parsed(
        &self,
        parsed: &ParsedSignedData<'_>,
        content: Content<'_>,
        now: OffsetDateTime,
        format: &Format,
        pdf_facts: PdfFacts,
        embedded: &EmbeddedRevocation,
    ) -> Report {
        let PdfFacts {
            claimed: claimed_pdf,
            broken: format_failure,
        } = pdf_facts;
        let mut findings: Vec<Finding> = Vec::new();
        if let Some(reason) = format_failure {
            findings.push(Finding {
                sub: SubIndication::FormatFailure,
                reason,
            });
        }
        let mut warnings = Vec::new();
        let mut report = Report {
            indication: Indication::TotalPassed,
            sub_indication: None,
            reasons: Vec::new(),
            warnings: Vec::new(),
            format: String::new(),
            field: None,
            validation_time: rfc3339(now),
            signing_time: SigningTime::default(),
            signer: None,
            chain: Vec::new(),
            revocation: None,
            timestamp: None,
            digest_algorithm: None,
        };
        // Whether a format, digest or signature-value check failed (see the module docs).
        let broken = std::cell::Cell::new(findings.iter().any(|f| is_broken(f.sub)));
        let mut fail = |sub: SubIndication, reason: String| {
            if is_broken(sub) {
                broken.set(true);
            }
            findings.push(Finding { sub, reason });
        };
        let Some(signer) = parsed.signers.first() else {
            return failed_format(now, "the CMS carries no signer".into());
        };
        if parsed.signers.len() > 1 {
            warnings.push(format!(
                "{} signers: only the first is validated",
                parsed.signers.len()
            ));
        }
        let has_ts = !signer
            .unsigned_attribute_values(&ID_AA_SIGNATURE_TIME_STAMP_TOKEN)
            .is_empty();
        report.format = format.name(has_ts, !embedded.is_empty());
        if parsed.econtent_type != ID_DATA {
            fail(
                SubIndication::FormatFailure,
                format!("the signed content type is {}, not id-data", parsed.econtent_type),
            );
        }
        // Format: signed attributes as CAdES requires.
        match signer.content_type() {
            Ok(Some(ct)) if ct == parsed.econtent_type => {}
            Ok(_) => fail(
                SubIndication::FormatFailure,
                "the content-type signed attribute is missing or differs from the content".into(),
            ),
            Err(e) => fail(SubIndication::FormatFailure, e.to_string()),
        }
        let claimed = match signer.signing_time() {
            Ok(t) => t,
            Err(e) => {
                fail(SubIndication::FormatFailure, e.to_string());
                None
            }
        };
        if matches!(format, Format::Pades) && claimed.is_some() {
            warnings.push(
                "PAdES baseline puts the signing time in /M, not in a CMS signing-time attribute".into(),
            );
        }
        let claimed = claimed.or(claimed_pdf);
        report.signing_time.claimed = claimed.map(rfc3339);
        // Hash of the content.
        match signer.digest_alg() {
            None => fail(
                SubIndication::FormatFailure,
                format!("unsupported digest algorithm {}", signer.digest_algorithm),
            ),
            Some(alg) => {
                report.digest_algorithm = Some(alg.name().to_owned());
                match signer.message_digest() {
                    Ok(Some(md)) if md == content.digest(alg) => {}
                    Ok(Some(_)) => fail(
                        SubIndication::HashFailure,
                        "the signed content has changed: its digest differs from the one the signature covers"
                            .into(),
                    ),
                    Ok(None) => fail(SubIndication::FormatFailure, "no message-digest signed attribute".into()),
                    Err(e) => fail(SubIndication::FormatFailure, e.to_string()),
                }
            }
        }
        // Identification of the signing certificate.
        // The signer's certificate: among those the signature carries, else the extra ones given.
        let found = parsed
            .certificates
            .iter()
            .filter_map(|d| self.cert(d).ok())
            .chain(self.extra.iter().cloned())
            .find(|c| ident::sid_matches(&signer.sid, c));
        let Some(cert) = found else {
            fail(
                SubIndication::NoSigningCertificateFound,
                "the signing certificate is neither in the signature nor among the given certificates".into(),
            );
            return finish(report, findings, warnings);
        };
        report.signer = Some(self.signer_report(&cert));
        match signer.signing_certificate_ref() {
            Ok(Some(ess)) => match ident::ess_matches(&ess, &cert) {
                Ok(true) => {}
                Ok(false) => fail(
                    SubIndication::NoSigningCertificateFound,
                    "the signing-certificate attribute names another certificate than the one that signed"
                        .into(),
                ),
                Err(e) => fail(SubIndication::NoSigningCertificateFound, e.to_string()),
            },
            Ok(None) => fail(
                SubIndication::NoSigningCertificateFound,
                "no signing-certificate-v2 signed attribute (CAdES baseline requires it)".into(),
            ),
            Err(e) => fail(SubIndication::NoSigningCertificateFound, e.to_string()),
        }
        // Cryptographic verification.
        match signature_verifies(signer, &cert) {
            Ok(true) => {}
            Ok(false) => fail(
                SubIndication::SigCryptoFailure,
                "the signature value does not verify with the signing certificate's public key".into(),
            ),
            Err(e) => fail(SubIndication::SigCryptoFailure, e),
        }
        // Signature acceptance: what a document signature must be made with.
        match cert.jpki_kind() {
            "auth" => fail(
                SubIndication::ChainConstraintsFailure,
                "signed with a user-authentication certificate, which proves a login, never a document \
                 signature; only the signature certificate can sign documents"
                    .into(),
            ),
            "ca" => fail(
                SubIndication::ChainConstraintsFailure,
                "signed with a CA certificate, not a signature certificate".into(),
            ),
            _ if !cert
                .policies
                .iter()
                .any(|p| self.policy.signature_policies.contains(p)) =>
            {
                fail(
                    SubIndication::ChainConstraintsFailure,
                    "the signing certificate carries no JPKI signature-certificate policy".into(),
                );
            }
            _ => {}
        }
        if !cert.allows(KeyUsages::NonRepudiation) || !cert.allows(KeyUsages::DigitalSignature) {
            fail(
                SubIndication::ChainConstraintsFailure,
                "the signing certificate's keyUsage lacks digitalSignature or nonRepudiation".into(),
            );
        }
        // Proof of existence from a signature time-stamp.
        let proof = self.time_proof(signer, parsed, now, embedded, &mut warnings);
        if let Some(p) = &proof {
            report.signing_time.proven = Some(rfc3339(p.time));
            report.signing_time.proof = format!(
                "signature time-stamp serial {} by {}",
                p.report.serial,
                p.report.tsa.as_deref().unwrap_or("the TSA")
            );
        } else {
            report.signing_time.proof = if has_ts {
                "the time-stamp is not valid".into()
            } else {
                "no signature time-stamp (B-B level)".into()
            };
        }
        report.timestamp = self.timestamp_report(signer, parsed, now, proof.as_ref(), embedded);
        let best_time = proof.as_ref().map(|p| p.time);
        // A content time-stamp is the opposite bound: the signature was made after it.
        let made_after = self.content_proof(signer, parsed, content, now, embedded, &mut warnings);
        // Path.
        let chain = match self.path(&cert, &parsed.certificates) {
            Ok(p) => p,
            Err(PathError::NoChain(why)) => {
                fail(SubIndication::NoCertificateChainFound, why);
                return finish(report, findings, warnings);
            }
            Err(PathError::Constraints(why)) => {
                fail(SubIndication::ChainConstraintsFailure, why);
                return finish(report, findings, warnings);
            }
        };
        report.chain = chain.certs.iter().map(|c| c.subject.clone()).collect();
        // Validity period of the signing certificate.
        let signed_at = best_time.or(claimed);
        if let Some(t) = signed_at
            && t < cert.not_before
        {
            fail(
                SubIndication::NotYetValid,
                format!(
                    "the signature was made at {} ({}), before the certificate became valid at {}",
                    rfc3339(t),
                    if best_time.is_some() {
                        "proven by time-stamp"
                    } else {
                        "claimed"
                    },
                    rfc3339(cert.not_before)
                ),
            );
        } else if !cert.valid_at(now) {
            match (best_time, made_after) {
                (Some(t), _) if cert.valid_at(t) => {}
                (_, Some(l)) if l > cert.not_after => fail(
                    SubIndication::Expired,
                    format!(
                        "the certificate expired at {}, and a content time-stamp proves the signature was made \
                         later (not before {})",
                        rfc3339(cert.not_after),
                        rfc3339(l)
                    ),
                ),
                _ if now < cert.not_before => fail(
                    SubIndication::NotYetValid,
                    format!("the certificate is not valid before {}", rfc3339(cert.not_before)),
                ),
                (Some(t), _) => fail(
                    SubIndication::OutOfBoundsNoPoe,
                    format!(
                        "the certificate expired at {}; the time-stamp proves the signature existed at {}, which \
                         does not show it was made before the expiry",
                        rfc3339(cert.not_after),
                        rfc3339(t)
                    ),
                ),
                _ => fail(
                    SubIndication::OutOfBoundsNoPoe,
                    format!(
                        "the certificate expired at {} and no time-stamp proves the signature was made before",
                        rfc3339(cert.not_after)
                    ),
                ),
            }
        }
        // Intermediate CAs: validity and revocation (the anchor is configuration).
        for (ca, issuer) in chain.links().skip(1) {
            if !ca.valid_at(best_time.unwrap_or(now)) {
                fail(
                    SubIndication::OutOfBoundsNoPoe,
                    format!("the CA certificate {} is outside its validity period", ca.subject),
                );
            }
            match self.status(embedded, ca, issuer) {
                Status::Revoked { at, .. } if best_time.is_none_or(|t| t >= at) => fail(
                    SubIndication::RevokedCaNoPoe,
                    format!("the CA certificate {} was revoked at {}", ca.subject, rfc3339(at)),
                ),
                Status::Unknown { why } => fail(SubIndication::TryLater, format!("CA {}: {why}", ca.subject)),
                _ => {}
            }
        }
        // Revocation of the signing certificate: only for a signature that is what it claims. One
        // whose content digest, signature value or format fails proves nothing about its signer,
        // and its report must not become a way to ask the status of any certificate one holds.
        let issuer = chain.certs.get(1).map_or(&cert, |c| c);
        if chain.certs.len() > 1 && !broken.get() {
            let status = self.status(embedded, &cert, issuer);
            report.revocation = Some(revocation_report(&status));
            match status {
                Status::Good {
                    next_update, source, ..
                } => {
                    if let Some(n) = next_update
                        && n < now
                    {
                        fail(
                            SubIndication::TryLater,
                            format!(
                                "the newest revocation information ({source}) expired at {}; get a newer CRL",
                                rfc3339(n)
                            ),
                        );
                    }
                }
                Status::Revoked { at, reason, .. } => {
                    let hold = reason == RevocationReason::CertificateHold;
                    match best_time {
                        Some(t) if t < at => {
                            warnings.push(format!(
                                "the certificate was {} at {}, after the time-stamp proves the signature existed",
                                if hold { "put on hold" } else { "revoked" },
                                rfc3339(at)
                            ));
                        }
                        // Revocation dates have whole-second precision: a content time-stamp within the
                        // same second proves neither order.
                        _ if !hold && made_after.is_some_and(|l| l >= at + time::Duration::SECOND) => fail(
                            SubIndication::Revoked,
                            format!(
                                "the certificate was revoked at {} ({}), and a content time-stamp proves the \
                                 signature was made later (not before {})",
                                rfc3339(at),
                                reason_name(reason),
                                made_after.map(rfc3339).unwrap_or_default()
                            ),
                        ),
                        Some(t) if !hold => fail(
                            SubIndication::RevokedNoPoe,
                            format!(
                                "the certificate was revoked at {} ({}); the time-stamp proves the signature \
                                 existed at {}, which does not show it was made before the revocation",
                                rfc3339(at),
                                reason_name(reason),
                                rfc3339(t)
                            ),
                        ),
                        _ if hold => fail(
                            SubIndication::TryLater,
                            format!(
                                "the certificate is on hold since {} (a reported loss); the hold may be lifted or \
                                 turned into a revocation: try later",
                                rfc3339(at)
                            ),
                        ),
                        _ => fail(
                            SubIndication::RevokedNoPoe,
                            format!(
                                "the certificate was revoked at {} ({}) and no time-stamp proves the signature \
                                 was made before",
                                rfc3339(at),
                                reason_name(reason)
                            ),
                        ),
                    }
                }
                Status::Unknown { why } => {
                    fail(SubIndication::TryLater, format!("no revocation status: {why}"));
                }
            }
        }
        finish(report, findings, warnings)
    }

    /// The latest valid content time-stamp's time: the signature was made after it.
    fn content_proof(
        &self,
        signer: &ParsedSigner<'_>,
        parsed: &ParsedSignedData<'_>,
        content: Content<'_>,
        now: OffsetDateTime,
        embedded: &EmbeddedRevocation,
        warnings: &mut Vec<String>,
    ) -> Option<OffsetDateTime> {
        let mut best: Option<OffsetDateTime> = None;
        for token_der in signer.signed_attribute_values(&crate::cades::ID_AA_CONTENT_TIME_STAMP) {
            match self.check_token(token_der, Imprint::Content(content), parsed, now, embedded) {
                Ok(p) => best = Some(best.map_or(p.time, |b| b.max(p.time))),
                Err(why) => warnings.push(format!("content time-stamp not usable: {why}")),
            }
        }
        best
    }

    /// The earliest valid signature time-stamp's time.
    fn time_proof(
        &self,
        signer: &ParsedSigner<'_>,
        parsed: &ParsedSignedData<'_>,
        now: OffsetDateTime,
        embedded: &EmbeddedRevocation,
        warnings: &mut Vec<String>,
    ) -> Option<TimeProof> {
        let mut best: Option<TimeProof> = None;
        for token_der in signer.unsigned_attribute_values(&ID_AA_SIGNATURE_TIME_STAMP_TOKEN) {
            match self.check_token(
                token_der,
                Imprint::SignatureValue(&signer.signature),
                parsed,
                now,
                embedded,
            ) {
                Ok(p) => {
                    if best.as_ref().is_none_or(|b| p.time < b.time) {
                        best = Some(p);
                    }
                }
                Err(why) => warnings.push(format!("signature time-stamp not usable: {why}")),
            }
        }
        best
    }

    fn timestamp_report(
        &self,
        signer: &ParsedSigner<'_>,
        parsed: &ParsedSignedData<'_>,
        now: OffsetDateTime,
        proof: Option<&TimeProof>,
        embedded: &EmbeddedRevocation,
    ) -> Option<Timestamp> {
        if let Some(p) = proof {
            return Some(p.report.clone());
        }
        let token_der = signer
            .unsigned_attribute_values(&ID_AA_SIGNATURE_TIME_STAMP_TOKEN)
            .into_iter()
            .next()?;
        let why = self
            .check_token(
                token_der,
                Imprint::SignatureValue(&signer.signature),
                parsed,
                now,
                embedded,
            )
            .err()
            .unwrap_or_default();
        let t = TimeStampToken::parse(token_der).ok();
        Some(Timestamp {
            time: t.as_ref().map(|t| rfc3339(t.gen_time)).unwrap_or_default(),
            tsa: None,
            serial: t.map(|t| t.serial).unwrap_or_default(),
            status: format!("invalid: {why}"),
        })
    }

    fn check_token(
        &self,
        token_der: &[u8],
        imprint_of: Imprint<'_>,
        parsed: &ParsedSignedData<'_>,
        now: OffsetDateTime,
        embedded: &EmbeddedRevocation,
    ) -> Result<TimeProof, String> {
        let token = TimeStampToken::parse(token_der).map_err(|e| e.to_string())?;
        match imprint_of {
            Imprint::SignatureValue(v) if !token.imprint_matches(v) => {
                return Err("its imprint is not the digest of this signature's value".into());
            }
            Imprint::Content(c)
                if token
                    .imprint_digest_alg()
                    .is_none_or(|alg| c.digest(alg) != token.imprint) =>
            {
                return Err("its imprint is not the digest of the signed content".into());
            }
            _ => {}
        }
        let mut offered: Vec<Vec<u8>> = parsed.certificates.iter().map(|c| c.to_vec()).collect();
        offered.extend(self.extra.iter().map(|c| c.der().to_vec()));
        let tsa_der = token
            .signer_certificate(&offered)
            .ok_or("the TSA certificate is neither in the token nor in the signature")?;
        token.verify(&tsa_der).map_err(|e| e.to_string())?;
        let tsa = self.cert(&tsa_der).map_err(|e| e.to_string())?;
        let mut pool = token.certificates.clone();
        pool.extend(offered);
        let chain = self
            .path(&tsa, &pool)
            .map_err(|e| format!("TSA certificate: {e}"))?;
        if !tsa.valid_at(token.gen_time) {
            return Err(format!(
                "the TSA certificate was not valid at {}",
                rfc3339(token.gen_time)
            ));
        }
        if token.gen_time > now {
            return Err(format!("its time {} is in the future", rfc3339(token.gen_time)));
        }
        if let Some(issuer) = chain.certs.get(1) {
            match self.status(embedded, &tsa, issuer) {
                Status::Revoked { at, .. } if at <= token.gen_time => {
                    return Err(format!("the TSA certificate was revoked at {}", rfc3339(at)));
                }
                Status::Unknown { why } => return Err(format!("TSA certificate revocation status: {why}")),
                _ => {}
            }
        }
        Ok(TimeProof {
            time: token.gen_time,
            report: Timestamp {
                time: rfc3339(token.gen_time),
                tsa: Some(tsa.subject.clone()),
                serial: token.serial.clone(),
                status: "valid".into(),
            },
        })
    }
}

/// What the PDF around a signature says of it (nothing for a CAdES signature).
#[derive(Debug, Default)]
struct PdfFacts {
    /// The signing time the signature dictionary claims (`/M`).
    claimed: Option<OffsetDateTime>,
    /// Why the signature does not cover its revision, if it does not (a format failure).
    broken: Option<String>,
}

/// What a time-stamp token's imprint must cover.
#[derive(Debug, Clone, Copy)]
enum Imprint<'a> {
    /// The signature value (a signature time-stamp).
    SignatureValue(&'a [u8]),
    /// The signed content (a content time-stamp).
    Content(Content<'a>),
}

#[derive(Debug, Clone)]
enum Format {
    Cades,
    Pades,
    PdfPkcs7(String),
}

impl Format {
    fn name(&self, has_ts: bool, has_revocation_data: bool) -> String {
        let level = match (has_ts, has_revocation_data) {
            (true, true) => "LT",
            (true, false) => "T",
            _ => "B",
        };
        match self {
            Self::Cades => format!("CAdES-BASELINE-{level}"),
            Self::Pades => format!("PAdES-BASELINE-{level}"),
            Self::PdfPkcs7(sf) => format!("PDF {sf} (not PAdES)"),
        }
    }
}

fn reason_name(r: RevocationReason) -> String {
    format!("{r:?}")
}

fn revocation_report(s: &Status) -> Revocation {
    match s {
        Status::Good { source, .. } => Revocation {
            status: "good".into(),
            source: source.clone(),
            revoked_at: None,
            reason: None,
        },
        Status::Revoked { at, reason, source } => Revocation {
            status: if *reason == RevocationReason::CertificateHold {
                "on-hold"
            } else {
                "revoked"
            }
            .into(),
            source: source.clone(),
            revoked_at: Some(rfc3339(*at)),
            reason: Some(reason_name(*reason)),
        },
        Status::Unknown { why } => Revocation {
            status: "unknown".into(),
            source: why.clone(),
            revoked_at: None,
            reason: None,
        },
    }
}

fn failed_format(now: OffsetDateTime, reason: String) -> Report {
    Report {
        indication: Indication::TotalFailed,
        sub_indication: Some(SubIndication::FormatFailure),
        reasons: vec![reason],
        warnings: Vec::new(),
        format: "unknown".into(),
        field: None,
        validation_time: rfc3339(now),
        signing_time: SigningTime {
            proof: "none".into(),
            ..SigningTime::default()
        },
        signer: None,
        chain: Vec::new(),
        revocation: None,
        timestamp: None,
        digest_algorithm: None,
    }
}

fn finish(mut report: Report, mut findings: Vec<Finding>, warnings: Vec<String>) -> Report {
    findings.sort_by_key(|f| severity(f.sub));
    report.warnings.extend(warnings);
    if let Some(first) = findings.first() {
        report.indication = first.sub.indication();
        report.sub_indication = Some(first.sub);
    }
    report.reasons = findings.into_iter().map(|f| f.reason).collect();
    report
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The hand-written RFC 3339 writer says exactly what `time`'s formatter says, fractions of
        /// seconds and the year range's edges included.
        #[test]
        fn rfc3339_matches_time(secs in -62_167_219_200i64..253_402_300_799i64, nanos in prop_oneof![
            Just(0u32), Just(500_000_000u32), Just(1u32), Just(120_000u32), 0u32..1_000_000_000u32
        ]) {
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap().replace_nanosecond(nanos).unwrap();
            let want = t.format(&time::format_description::well_known::Rfc3339).unwrap();
            prop_assert_eq!(rfc3339(t), want);
        }
    }

    #[test]
    fn rfc3339_non_utc_offsets_fall_back_to_time() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .unwrap()
            .to_offset(time::macros::offset!(+9));
        assert_eq!(rfc3339(t), "2023-11-15T07:13:20+09:00");
    }
}
