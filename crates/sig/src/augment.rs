//! Augmenting signatures to the B-LT level: embedding the certificates and revocation answers a
//! verifier needs, so that the signature can be validated later without asking anyone.
//!
//! - **CAdES** (ETSI EN 319 122-1 §5.5.1): the certificates go into `SignedData.certificates`, CRLs
//!   into `SignedData.crls`, and OCSP responses into `SignedData.crls` as
//!   `RevocationInfoChoice.other` with `id-ri-ocsp-response` (1.3.6.1.5.5.7.16.2, RFC 5940). The
//!   SignerInfo, the content and everything signed are kept byte for byte, so the signature (and
//!   its time-stamp) still verify; the SignedData version becomes 5 with an OCSP response in it
//!   (RFC 5652 §5.1).
//! - **PAdES** (ETSI EN 319 142-1 §5.4): one incremental update adds a Document Security Store: a
//!   `/DSS` dictionary in the catalog with `/Certs`, `/OCSPs` and `/CRLs` arrays of streams (each
//!   the DER of one object, unfiltered). A DSS already there is kept and extended; the signed
//!   revisions are not touched.
//!
//! What to embed is the caller's choice (the platform asks its OCSP service about the signer's
//! and the TSA's certificates and adds the newest published CRLs): [`cades_needs`] and
//! [`pdf_needs`] name the certificates whose status matters. For signatures from anyone (a
//! relying party's upload), [`verified_cades_needs`] and [`verified_pdf_needs`] name them only for
//! signatures that pass [`check_signers`] (signature value and message digest verify with the
//! signer's certificate, at most [`MAX_SIGNER_INFOS`] signers): a made-up SignedData around
//! somebody's certificate would otherwise buy a signed status answer about it. A signature
//! time-stamp's TSA certificate counts only when the token verifies and stamps the signature.
//! [`EmbeddedRevocation`] reads the embedded data back as a [`RevocationSource`] for the verifier.
//!
//! A DSS is read with its streams' filters, within a budget of [`MAX_DSS_DECODED`] bytes for all
//! of them together (and at most [`MAX_DSS_ITEMS`] items): beyond it, [`pdf_dss`] and
//! [`augment_pdf`] (and so the verifier) refuse the PDF rather than inflate a decompression bomb.
use std::fmt::Write as _;

use const_oid::ObjectIdentifier as Oid;
use jpki_model::RevocationReason;
use jpki_pki::ocsp::{BasicResponse, CertStatus, IssuerHashes, OcspResponseStatus, parse_response};
use jpki_pki::revocation::{CrlStore, ParsedCrl, RevocationSource, Status};
use jpki_pki::x509::ParsedCert;
use lopdf::xref::XrefRecovery;
use lopdf::{Dictionary, Object, ObjectId};

use crate::SigError;
use crate::pdf::{self, HexSink};
use crate::signed_data::{self, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, ParsedSignedData};
use crate::tsp::TimeStampToken;

/// id-ri-ocsp-response (RFC 5940 §4.1): an OCSPResponse as `OtherRevocationInfoFormat`.
pub const ID_RI_OCSP_RESPONSE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.16.2");

/// Validation data to embed, or found embedded: DER certificates, OCSP responses and CRLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationData {
    /// X.509 certificates (DER).
    pub certificates: Vec<Vec<u8>>,
    /// OCSPResponses (DER), as the responder sent them.
    pub ocsp_responses: Vec<Vec<u8>>,
    /// CRLs (DER).
    pub crls: Vec<Vec<u8>>,
}

impl ValidationData {
    /// Whether there is no revocation information (certificates alone do not count).
    pub fn has_no_revocation_info(&self) -> bool {
        self.ocsp_responses.is_empty() && self.crls.is_empty()
    }
}

/// The certificates whose revocation status a signature's validation depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// The signing certificate of each signature (DER).
    pub signers: Vec<Vec<u8>>,
    /// The TSA certificate of each signature time-stamp (DER).
    pub tsas: Vec<Vec<u8>>,
    /// Every certificate the signatures and their time-stamps carry (DER), for finding issuers.
    pub carried: Vec<Vec<u8>>,
}

impl Needs {
    /// Adds the certificates of `parsed`: its signers' (as found by their sid) and the TSA
    /// certificate of each signature time-stamp that really stamps the signature (its token
    /// verifies with that certificate and its imprint is the digest of the signature value). A
    /// time-stamp token is an unsigned attribute, which anyone can add: an unchecked one would
    /// name any certificate it likes.
    fn add(&mut self, parsed: &ParsedSignedData<'_>) {
        let carried: Vec<Vec<u8>> = parsed.certificates.iter().map(|c| c.to_vec()).collect();
        for signer in &parsed.signers {
            if let Some(c) = parsed.find_signer_certificate(signer) {
                push_new(&mut self.signers, c);
            }
            for token in signer
                .unsigned_attribute_values(&ID_AA_SIGNATURE_TIME_STAMP_TOKEN)
                .into_iter()
                .take(MAX_TOKENS_PER_SIGNER)
            {
                let Ok(t) = TimeStampToken::parse(token) else {
                    continue;
                };
                if !t.imprint_matches(&signer.signature) {
                    continue;
                }
                if let Some(c) = t.signer_certificate(&carried)
                    && t.verify(&c).is_ok()
                {
                    push_new(&mut self.tsas, &c);
                }
                for c in &t.certificates {
                    push_new(&mut self.carried, c);
                }
            }
        }
        for c in &carried {
            push_new(&mut self.carried, c);
        }
    }
}

/// The most signature time-stamps per signer whose TSA certificate is looked at.
const MAX_TOKENS_PER_SIGNER: usize = 4;

/// The most SignerInfos a CMS signature may hold to be augmented (each signer costs a signed OCSP
/// response).
pub const MAX_SIGNER_INFOS: usize = 4;

/// The most signatures (document time-stamps included) a PDF may hold to be augmented.
pub const MAX_PDF_SIGNATURES: usize = 16;

/// Why [`verified_cades_needs`] or [`verified_pdf_needs`] gives nothing to augment.
#[derive(Debug)]
pub enum NeedsError {
    /// The input does not parse (or is too large): the caller's request is malformed.
    Malformed(SigError),
    /// The input parses but is no signature to augment: one that does not verify
    /// cryptographically, too many signers, or none with its certificate. The text says why.
    Refused(String),
}

impl std::fmt::Display for NeedsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "{e}"),
            Self::Refused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for NeedsError {}

fn push_new(list: &mut Vec<Vec<u8>>, item: &[u8]) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_vec());
    }
}

/// The digest of `parts` (hashed in order) under `alg`.
fn digest_of(alg: signed_data::DigestAlg, parts: &[&[u8]]) -> Vec<u8> {
    let algo = match alg {
        signed_data::DigestAlg::Sha256 => &aws_lc_rs::digest::SHA256,
        signed_data::DigestAlg::Sha384 => &aws_lc_rs::digest::SHA384,
        signed_data::DigestAlg::Sha512 => &aws_lc_rs::digest::SHA512,
    };
    let mut ctx = aws_lc_rs::digest::Context::new(algo);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().to_vec()
}

/// What [`augment_cades`] needs revocation data for: the signer's certificate and the TSA's. No
/// cryptographic check: for one's own signatures ([`verified_cades_needs`] for anyone's).
pub fn cades_needs(cms: &[u8]) -> Result<Needs, SigError> {
    let parsed = ParsedSignedData::parse(cms)?;
    let mut needs = Needs::default();
    needs.add(&parsed);
    if needs.signers.is_empty() {
        return Err(SigError::Malformed {
            what: "CMS signature",
            detail: "the signer's certificate is not in the signature".into(),
        });
    }
    Ok(needs)
}

/// What [`augment_pdf`] needs revocation data for: the certificates of every CAdES signature in the
/// PDF (document time-stamps included: their TSA certificate is a signer).
pub fn pdf_needs(pdf_bytes: &[u8]) -> Result<Needs, SigError> {
    pdf_signatures_needs(&pdf::signatures(pdf_bytes)?)
}

/// [`pdf_needs`] of the signatures [`pdf::signatures`] found. Fails when there is none, or none
/// with its signer's certificate.
pub fn pdf_signatures_needs(sigs: &[pdf::PdfSignature]) -> Result<Needs, SigError> {
    let mut needs = Needs::default();
    if sigs.is_empty() {
        return Err(SigError::Malformed {
            what: "PDF",
            detail: "the PDF carries no signature".into(),
        });
    }
    for sig in sigs {
        let Ok(contents) = &sig.contents else {
            continue;
        };
        if let Ok(parsed) = ParsedSignedData::parse(contents) {
            needs.add(&parsed);
        }
    }
    if needs.signers.is_empty() {
        return Err(SigError::Malformed {
            what: "PDF",
            detail: "no signature with its signer's certificate".into(),
        });
    }
    Ok(needs)
}

/// The cryptographic check a signature passes before it is augmented: at most
/// [`MAX_SIGNER_INFOS`] signers, and each signer's certificate is in the signature, its signature
/// value verifies with that certificate's key over the signed attributes, and its message-digest
/// attribute is the digest of the signed content: `content` (a PDF's byte ranges), else the
/// encapsulated content. For a detached signature whose content is not given, the message-digest
/// attribute (covered by the verified signature value) must be there, of its algorithm's length.
pub fn check_signers(parsed: &ParsedSignedData<'_>, content: Option<&[&[u8]]>) -> Result<(), String> {
    if parsed.signers.is_empty() {
        return Err("the signature has no signer".into());
    }
    if parsed.signers.len() > MAX_SIGNER_INFOS {
        return Err(format!(
            "{} signers: at most {MAX_SIGNER_INFOS} are augmented",
            parsed.signers.len()
        ));
    }
    let econtent = parsed.econtent.as_deref();
    for (i, signer) in parsed.signers.iter().enumerate() {
        let which = if parsed.signers.len() > 1 {
            format!("signer {}: ", i + 1)
        } else {
            String::new()
        };
        let Some(cert) = parsed.find_signer_certificate(signer) else {
            return Err(format!("{which}the signer's certificate is not in the signature"));
        };
        match signed_data::verify_signer(signer, cert) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "{which}the signature value does not verify with the signer's certificate \
                     (SIG_CRYPTO_FAILURE)"
                ));
            }
            Err(e) => return Err(format!("{which}the signature cannot be verified: {e}")),
        }
        let Some(alg) = signer.digest_alg() else {
            return Err(format!(
                "{which}unsupported digest algorithm {}",
                signer.digest_algorithm
            ));
        };
        let md = match signer.message_digest() {
            Ok(Some(md)) => md,
            Ok(None) => return Err(format!("{which}no message-digest signed attribute")),
            Err(e) => return Err(format!("{which}{e}")),
        };
        let want = match (content, econtent) {
            (Some(parts), _) => Some(digest_of(alg, parts)),
            (None, Some(e)) => Some(digest_of(alg, &[e])),
            (None, None) => None,
        };
        match want {
            Some(w) if w != md => {
                return Err(format!(
                    "{which}the signed content's digest differs from the message-digest attribute \
                     (HASH_FAILURE)"
                ));
            }
            None if md.len() != alg.output_len() => {
                return Err(format!(
                    "{which}the message-digest attribute is not a {alg} digest"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// What [`augment_cades`] needs revocation data for, from a CAdES signature that passes
/// [`check_signers`] (over its encapsulated content; for a detached one, its signed attributes).
pub fn verified_cades_needs(cms: &[u8]) -> Result<Needs, NeedsError> {
    let parsed = ParsedSignedData::parse(cms).map_err(NeedsError::Malformed)?;
    check_signers(&parsed, None).map_err(NeedsError::Refused)?;
    let mut needs = Needs::default();
    needs.add(&parsed);
    Ok(needs)
}

/// [`pdf_signatures_needs`], for signatures that pass the cryptographic check over the bytes they
/// cover: [`check_signers`] for a signature, and for a document time-stamp (`/ETSI.RFC3161`) its
/// token verifies with its TSA certificate and its imprint is the digest of the covered bytes.
/// A signature whose `/Contents` is no CMS at all names no certificate and is passed over; one
/// that parses but does not verify refuses the whole PDF. At most [`MAX_PDF_SIGNATURES`].
pub fn verified_pdf_needs(pdf_bytes: &[u8], sigs: &[pdf::PdfSignature]) -> Result<Needs, NeedsError> {
    if sigs.len() > MAX_PDF_SIGNATURES {
        return Err(NeedsError::Refused(format!(
            "{} signatures: at most {MAX_PDF_SIGNATURES} are augmented",
            sigs.len()
        )));
    }
    for sig in sigs {
        let Ok(contents) = &sig.contents else {
            continue;
        };
        let Ok(parsed) = ParsedSignedData::parse(contents) else {
            continue;
        };
        let refuse = |why: String| NeedsError::Refused(format!("signature {}: {why}", sig.field_name));
        let Some(covered) = sig.covered(pdf_bytes) else {
            return Err(refuse("the /ByteRange lies outside the file".into()));
        };
        if sig.is_doc_timestamp {
            let token = TimeStampToken::parse(contents).map_err(|e| refuse(e.to_string()))?;
            let tsa = token
                .signer_certificate(&[])
                .ok_or_else(|| refuse("the TSA certificate is not in the time-stamp token".into()))?;
            token.verify(&tsa).map_err(|e| refuse(e.to_string()))?;
            let imprint_ok = token
                .imprint_digest_alg()
                .is_some_and(|alg| digest_of(alg, &covered) == token.imprint);
            if !imprint_ok {
                return Err(refuse(
                    "the document time-stamp's imprint is not the digest of the bytes it covers \
                     (HASH_FAILURE)"
                        .into(),
                ));
            }
        } else {
            check_signers(&parsed, Some(&covered)).map_err(refuse)?;
        }
    }
    pdf_signatures_needs(sigs).map_err(|e| NeedsError::Refused(e.to_string()))
}

/// Augments a CAdES signature (DER ContentInfo) with `data` (see the module docs). Fails on
/// anything that is not a SignedData, or on validation data that does not parse.
pub fn augment_cades(cms: &[u8], data: &ValidationData) -> Result<Vec<u8>, SigError> {
    for r in &data.ocsp_responses {
        check_ocsp(r)?;
    }
    let others: Vec<(Oid, Vec<u8>)> = data
        .ocsp_responses
        .iter()
        .map(|r| (ID_RI_OCSP_RESPONSE, r.clone()))
        .collect();
    signed_data::add_validation_data(cms, &data.certificates, &data.crls, &others)
}

fn check_ocsp(der: &[u8]) -> Result<(), SigError> {
    match parse_response(der) {
        Ok(r) if r.status == OcspResponseStatus::Successful => Ok(()),
        Ok(r) => Err(SigError::Malformed {
            what: "OCSP response",
            detail: format!("status {:?}, not successful", r.status),
        }),
        Err(e) => Err(SigError::Malformed {
            what: "OCSP response",
            detail: e.to_string(),
        }),
    }
}

/// The validation data a CAdES signature carries: its certificates, CRLs and OCSP responses.
pub fn cades_validation_data(parsed: &ParsedSignedData<'_>) -> ValidationData {
    ValidationData {
        certificates: parsed.certificates.iter().map(|c| c.to_vec()).collect(),
        ocsp_responses: parsed
            .other_revocation_info
            .iter()
            .filter(|(f, _)| *f == ID_RI_OCSP_RESPONSE)
            .map(|(_, i)| i.to_vec())
            .collect(),
        crls: parsed.crls.iter().map(|c| c.to_vec()).collect(),
    }
}

/// The three DSS arrays and what goes into each.
const DSS_KEYS: [&[u8]; 3] = [b"Certs", b"OCSPs", b"CRLs"];

fn dss_lists(data: &ValidationData) -> [&[Vec<u8>]; 3] {
    [&data.certificates, &data.ocsp_responses, &data.crls]
}

/// The most bytes the streams of one PDF's Document Security Store may decode to, all of them
/// together (every reference counted, filtered or not). A DSS stream is read with its filters
/// (`/FlateDecode` …), so a few kilobytes of a hostile upload could otherwise inflate to gigabytes
/// (a decompression bomb), or one large stream be referenced many times over.
pub const MAX_DSS_DECODED: usize = 16 * 1024 * 1024;

/// The most items (streams) one DSS may list in its three arrays together.
pub const MAX_DSS_ITEMS: usize = 10_000;

/// Decodes DSS streams within one document's budget of [`MAX_DSS_DECODED`] bytes.
struct DssReader<'a> {
    doc: &'a lopdf::Document,
    left: usize,
    items: usize,
}

impl<'a> DssReader<'a> {
    fn new(doc: &'a lopdf::Document) -> Self {
        Self {
            doc,
            left: MAX_DSS_DECODED,
            items: 0,
        }
    }

    fn over_budget() -> SigError {
        SigError::TooLarge {
            what: "PDF Document Security Store",
            size: MAX_DSS_DECODED.saturating_add(1),
            limit: MAX_DSS_DECODED,
        }
    }

    /// The decoded bytes of the stream `o` refers to: `Ok(None)` when it is no stream or does not
    /// decode, an error when the document's budget is spent (or the DSS lists too many items).
    fn stream_bytes(&mut self, o: &Object) -> Result<Option<Vec<u8>>, SigError> {
        self.items += 1;
        if self.items > MAX_DSS_ITEMS {
            return Err(pdf::unsupported(format!(
                "a Document Security Store of more than {MAX_DSS_ITEMS} items"
            )));
        }
        let Some(stream) = pdf::deref(self.doc, o).and_then(|o| o.as_stream().ok()) else {
            return Ok(None);
        };
        let bytes = if stream.dict.has(b"Filter") {
            match stream.decompressed_content_with_limit(self.left) {
                Ok(b) => b,
                Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })) => {
                    return Err(Self::over_budget());
                }
                Err(_) => return Ok(None),
            }
        } else {
            if stream.content.len() > self.left {
                return Err(Self::over_budget());
            }
            stream.content.clone()
        };
        self.left = self.left.checked_sub(bytes.len()).ok_or_else(Self::over_budget)?;
        Ok(Some(bytes))
    }

    /// The decoded streams of the DSS array `key` (missing: none).
    fn list(&mut self, dss: &Dictionary, key: &[u8]) -> Result<Vec<Vec<u8>>, SigError> {
        let mut out = Vec::new();
        for item in pdf::dict_get(self.doc, dss, key)
            .and_then(|a| a.as_array().ok())
            .into_iter()
            .flatten()
        {
            if let Some(bytes) = self.stream_bytes(item)? {
                out.push(bytes);
            }
        }
        Ok(out)
    }
}

/// Reads a PDF's Document Security Store (`/DSS` of the catalog): empty when there is none. Fails
/// with [`SigError::TooLarge`] when its streams decode to more than [`MAX_DSS_DECODED`] bytes.
pub fn pdf_dss(pdf_bytes: &[u8]) -> Result<ValidationData, SigError> {
    pdf::check_size(pdf_bytes)?;
    let doc = pdf::load(pdf_bytes)?;
    let mut out = ValidationData::default();
    let Some(dss) = catalog(&doc).and_then(|(_, c)| pdf::get_dict(&doc, c, b"DSS")) else {
        return Ok(out);
    };
    let mut reader = DssReader::new(&doc);
    let lists = [&mut out.certificates, &mut out.ocsp_responses, &mut out.crls];
    for (key, list) in DSS_KEYS.into_iter().zip(lists) {
        *list = reader.list(dss, key)?;
    }
    Ok(out)
}

fn catalog(doc: &lopdf::Document) -> Option<(ObjectId, &Dictionary)> {
    let root_id = doc.trailer.get(b"Root").and_then(Object::as_reference).ok()?;
    doc.get_dictionary(root_id).ok().map(|c| (root_id, c))
}

/// Augments a signed PDF with `data` in a Document Security Store (see the module docs): one
/// incremental update with a stream per new item, a `/DSS` dictionary (the old one's entries
/// kept, items already there not repeated) and a new version of the catalog pointing at it.
pub fn augment_pdf(pdf_bytes: &[u8], data: &ValidationData) -> Result<Vec<u8>, SigError> {
    pdf::check_size(pdf_bytes)?;
    if !pdf_bytes.starts_with(b"%PDF-") {
        return Err(pdf::malformed("not a PDF (no %PDF- header)"));
    }
    for r in &data.ocsp_responses {
        check_ocsp(r)?;
    }
    let doc = pdf::load(pdf_bytes)?;
    if doc.xref_recovery == Some(XrefRecovery::Reconstructed) {
        return Err(pdf::malformed(
            "the cross-reference data of the last revision is damaged",
        ));
    }
    let (root_id, cat) = catalog(&doc).ok_or_else(|| pdf::malformed("the catalog cannot be read"))?;
    let old_dss = pdf::get_dict(&doc, cat, b"DSS").cloned().unwrap_or_default();
    let trailer_size = doc
        .trailer
        .get(b"Size")
        .and_then(Object::as_i64)
        .ok()
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(0);
    let mut next = trailer_size
        .max(doc.max_id.saturating_add(1))
        .max(doc.reference_table.max_id().saturating_add(1));

    let mut out = Vec::with_capacity(pdf_bytes.len() + 4096);
    out.extend_from_slice(pdf_bytes);
    if !matches!(out.last(), Some(b'\n' | b'\r')) {
        out.push(b'\n');
    }
    let mut offsets: Vec<(ObjectId, usize)> = Vec::new();
    let mut dss = old_dss.clone();
    let mut reader = DssReader::new(&doc);
    for (key, items) in DSS_KEYS.into_iter().zip(dss_lists(data)) {
        let mut array: Vec<Object> = pdf::dict_get(&doc, &old_dss, key)
            .and_then(|a| a.as_array().ok())
            .cloned()
            .unwrap_or_default();
        let mut present: Vec<Vec<u8>> = reader.list(&old_dss, key)?;
        for item in items {
            if present.contains(item) {
                continue;
            }
            if next >= 8_388_607 {
                return Err(pdf::unsupported("object numbers beyond 8388607"));
            }
            let id: ObjectId = (next, 0);
            next += 1;
            offsets.push((id, out.len()));
            let _ = write!(
                HexSink(&mut out),
                "{} 0 obj\n<</Length {}>>\nstream\n",
                id.0,
                item.len()
            );
            out.extend_from_slice(item);
            out.extend_from_slice(b"\nendstream\nendobj\n");
            array.push(Object::Reference(id));
            present.push(item.clone());
        }
        if !array.is_empty() {
            dss.set(key, Object::Array(array));
        }
    }
    let dss_id: ObjectId = (next, 0);
    next += 1;
    dss.set("Type", Object::Name(b"DSS".to_vec()));
    offsets.push((dss_id, out.len()));
    let _ = writeln!(HexSink(&mut out), "{} 0 obj", dss_id.0);
    pdf::write_object(&mut out, &Object::Dictionary(dss), 0);
    out.extend_from_slice(b"\nendobj\n");
    let mut new_catalog = cat.clone();
    new_catalog.set("DSS", Object::Reference(dss_id));
    offsets.push((root_id, out.len()));
    let _ = writeln!(HexSink(&mut out), "{} {} obj", root_id.0, root_id.1);
    pdf::write_object(&mut out, &Object::Dictionary(new_catalog), 0);
    out.extend_from_slice(b"\nendobj\n");
    pdf::write_xref_and_trailer(&mut out, &doc, pdf_bytes, root_id, offsets, next)?;

    // Read the result back: the signatures are still there and the DSS holds what was added.
    let before = pdf::signatures(pdf_bytes)?.len();
    let after = pdf::signatures(&out)?.len();
    let read = pdf_dss(&out)?;
    let complete = dss_lists(data)
        .into_iter()
        .zip([&read.certificates, &read.ocsp_responses, &read.crls])
        .all(|(want, have)| want.iter().all(|w| have.contains(w)));
    if before != after || !complete {
        return Err(pdf::malformed(
            "the cross-reference data does not match the objects (the update does not read back)",
        ));
    }
    Ok(out)
}

/// Revocation information embedded in a signature (CAdES `crls`, or a PDF's DSS), as a verifier's
/// [`RevocationSource`]. An OCSP response counts only when it is signed by the certificate's
/// issuer or by a responder certificate that issuer issued for OCSP signing (RFC 6960 §4.2.2.2);
/// the newest such answer (by thisUpdate) about the certificate wins. Without one, the embedded
/// CRLs answer, with their signatures checked as for `--crl-dir`.
#[derive(Debug)]
pub struct EmbeddedRevocation {
    ocsp: Vec<BasicResponse>,
    crls: CrlStore,
    count: usize,
}

impl EmbeddedRevocation {
    /// Reads the OCSP responses and CRLs of `data`; ones that do not parse are left out.
    pub fn new(data: &ValidationData) -> Self {
        Self::from_parts(
            data.ocsp_responses.iter().map(Vec::as_slice),
            data.crls.iter().map(Vec::as_slice),
        )
    }

    /// What a CAdES signature carries, and (for a PDF signature) the document's DSS.
    pub fn of_signature(parsed: &ParsedSignedData<'_>, dss: Option<&ValidationData>) -> Self {
        let ocsp = parsed
            .other_revocation_info
            .iter()
            .filter(|(f, _)| *f == ID_RI_OCSP_RESPONSE)
            .map(|(_, i)| i.as_ref());
        let crls = parsed.crls.iter().map(AsRef::as_ref);
        match dss {
            Some(d) => Self::from_parts(
                ocsp.chain(d.ocsp_responses.iter().map(Vec::as_slice)),
                crls.chain(d.crls.iter().map(Vec::as_slice)),
            ),
            None => Self::from_parts(ocsp, crls),
        }
    }

    /// Reads DER OCSP responses and CRLs; ones that do not parse are left out.
    pub fn from_parts<'a>(
        ocsp_responses: impl IntoIterator<Item = &'a [u8]>,
        crls: impl IntoIterator<Item = &'a [u8]>,
    ) -> Self {
        let ocsp: Vec<BasicResponse> = ocsp_responses
            .into_iter()
            .filter_map(|r| parse_response(r).ok()?.basic)
            .collect();
        let mut store = CrlStore::new();
        let mut n = 0;
        for c in crls {
            if let Ok(crl) = ParsedCrl::from_der(c, "embedded in the signature") {
                store.add(crl);
                n += 1;
            }
        }
        Self {
            count: ocsp.len() + n,
            ocsp,
            crls: store,
        }
    }

    /// Whether nothing usable was embedded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Whether `r` speaks for `issuer`: signed by it, or by a delegated responder it issued.
fn authorised(r: &BasicResponse, issuer: &ParsedCert) -> bool {
    if r.is_signed_by(&issuer.public_key) {
        return true;
    }
    r.certs.iter().any(|der| {
        ParsedCert::from_der(der).is_ok_and(|c| {
            c.issuer_der == issuer.subject_der
                && c.is_signed_by(&issuer.public_key)
                && c.extended_key_usage
                    .as_ref()
                    .is_some_and(|(ekus, _)| ekus.contains(&jpki_pki::oid::KP_OCSP_SIGNING))
                && c.valid_at(r.produced_at)
                && r.is_signed_by(&c.public_key)
        })
    })
}

fn strip(mut s: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = s {
        s = rest;
    }
    s
}

impl RevocationSource for EmbeddedRevocation {
    fn status(&self, cert: &ParsedCert, issuer: &ParsedCert) -> Status {
        if let Ok(hashes) = IssuerHashes::from_cert_der(issuer.der()) {
            let serial = strip(&cert.serial);
            let mut best: Option<(&BasicResponse, &jpki_pki::ocsp::SingleStatus)> = None;
            for r in &self.ocsp {
                let mine: Vec<_> = r
                    .responses
                    .iter()
                    .filter(|(id, s)| {
                        hashes.matches(id)
                            && id.serial_magnitude() == serial
                            && s.status != CertStatus::Unknown
                    })
                    .collect();
                if mine.is_empty() || !authorised(r, issuer) {
                    continue;
                }
                for (_, s) in mine {
                    if best.is_none_or(|(_, b)| s.this_update > b.this_update) {
                        best = Some((r, s));
                    }
                }
            }
            if let Some((r, s)) = best {
                let source = format!(
                    "OCSP response embedded in the signature (produced {})",
                    crate::validate::rfc3339(r.produced_at)
                );
                match s.status {
                    CertStatus::Revoked { at, reason } => {
                        return Status::Revoked {
                            at,
                            reason: reason.unwrap_or(RevocationReason::Unspecified),
                            source,
                        };
                    }
                    _ => {
                        return Status::Good {
                            source,
                            this_update: s.this_update,
                            next_update: s.next_update,
                        };
                    }
                }
            }
        }
        match self.crls.status(cert, issuer) {
            Status::Unknown { why } => Status::Unknown {
                why: format!("embedded revocation information: {why}"),
            },
            s => s,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::signed_data::testing::{ca_extensions, ext, issue, ku_digital_signature, name, self_signed};
    use jpki_pki::ocsp::{CertId, CertIdHash, Responder, SingleStatus};
    use jpki_pki::{KeyType, SigningKey};
    use time::OffsetDateTime;
    use x509_cert::ext::pkix::ExtendedKeyUsage;

    struct Fixture {
        ca: Vec<u8>,
        signer: Vec<u8>,
        signer_key: SigningKey,
        responder: Responder,
        responder_cert: Vec<u8>,
    }

    fn fixture() -> Fixture {
        let (ca_key, ca) = self_signed(KeyType::P384, "Test CA", ca_extensions());
        let signer_key = SigningKey::generate(KeyType::Rsa2048).unwrap();
        let signer = issue(
            "Signer",
            &signer_key.spki_der().unwrap(),
            (&name("Test CA"), &ca_key),
            &[0x40, 0x01, 0x02],
            vec![ku_digital_signature()],
        );
        let rkey = SigningKey::generate(KeyType::P384).unwrap();
        let responder_cert = issue(
            "OCSP",
            &rkey.spki_der().unwrap(),
            (&name("Test CA"), &ca_key),
            &[0x40, 0x09],
            vec![
                ku_digital_signature(),
                ext(
                    "2.5.29.37",
                    false,
                    &ExtendedKeyUsage(vec![jpki_pki::oid::KP_OCSP_SIGNING]),
                ),
            ],
        );
        let responder = Responder::new(rkey, responder_cert.clone()).unwrap();
        Fixture {
            ca,
            signer,
            signer_key,
            responder,
            responder_cert,
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn sign(f: &Fixture, doc_digest: &[u8; 32], time: Option<OffsetDateTime>) -> Vec<u8> {
        let p = crate::cades::prepare(doc_digest, &f.signer, std::slice::from_ref(&f.ca), time).unwrap();
        p.finish(&f.signer_key.sign(p.to_be_signed()).unwrap()).unwrap()
    }

    fn ocsp(f: &Fixture, status: CertStatus) -> Vec<u8> {
        let id = CertId::for_certificate(&f.ca, &[0x40, 0x01, 0x02], CertIdHash::Sha1).unwrap();
        f.responder
            .prebuild(
                &id,
                SingleStatus {
                    status,
                    this_update: now(),
                    next_update: Some(now() + time::Duration::hours(1)),
                },
                now(),
            )
            .unwrap()
    }

    fn certs(f: &Fixture) -> (ParsedCert, ParsedCert) {
        (
            ParsedCert::from_der(&f.signer).unwrap(),
            ParsedCert::from_der(&f.ca).unwrap(),
        )
    }

    #[test]
    fn cades_gets_the_ocsp_response_and_keeps_its_signature() {
        let f = fixture();
        let digest = jpki_pki::x509::sha256(b"contract");
        let cms = sign(&f, &digest, Some(now()));
        let needs = cades_needs(&cms).unwrap();
        assert_eq!(needs.signers, vec![f.signer.clone()]);
        assert!(needs.tsas.is_empty());
        let response = ocsp(&f, CertStatus::Good);
        let data = ValidationData {
            certificates: vec![f.ca.clone(), f.responder_cert.clone()],
            ocsp_responses: vec![response.clone()],
            crls: Vec::new(),
        };
        let lt = augment_cades(&cms, &data).unwrap();
        let parsed = ParsedSignedData::parse(&lt).unwrap();
        let before = ParsedSignedData::parse(&cms).unwrap();
        assert_eq!(
            parsed.version, 5,
            "an OCSP response as other revocation info makes it v5"
        );
        assert_eq!(parsed.signers, before.signers, "the signer info is untouched");
        assert_eq!(parsed.certificates.len(), 3, "signer, CA (once) and responder");
        assert_eq!(
            parsed.other_revocation_info,
            vec![(
                ID_RI_OCSP_RESPONSE,
                std::borrow::Cow::Borrowed(response.as_slice())
            )]
        );
        assert!(signed_data::verify_signer(&parsed.signers[0], &f.signer).unwrap());
        // Augmenting again adds nothing twice.
        let again = augment_cades(&lt, &data).unwrap();
        assert_eq!(again, lt);
        // The embedded answer is what the verifier reads.
        let (cert, ca) = certs(&f);
        let embedded = EmbeddedRevocation::of_signature(&parsed, None);
        assert!(!embedded.is_empty());
        assert!(matches!(embedded.status(&cert, &ca), Status::Good { .. }));
        assert!(EmbeddedRevocation::of_signature(&before, None).is_empty());
    }

    #[test]
    fn embedded_answers_must_come_from_the_issuer_or_its_responder() {
        let f = fixture();
        let (cert, ca) = certs(&f);
        let revoked = ocsp(
            &f,
            CertStatus::Revoked {
                at: now() - time::Duration::hours(2),
                reason: Some(RevocationReason::KeyCompromise),
            },
        );
        let e = EmbeddedRevocation::from_parts([revoked.as_slice()], []);
        assert!(matches!(
            e.status(&cert, &ca),
            Status::Revoked {
                reason: RevocationReason::KeyCompromise,
                ..
            }
        ));
        // A responder the CA did not authorise: its answer is not believed.
        let (other_key, other) = self_signed(KeyType::P384, "Impostor", vec![]);
        let impostor = Responder::new(other_key, other).unwrap();
        let id = CertId::for_certificate(&f.ca, &[0x40, 0x01, 0x02], CertIdHash::Sha1).unwrap();
        let forged = impostor
            .prebuild(
                &id,
                SingleStatus {
                    status: CertStatus::Good,
                    this_update: now(),
                    next_update: None,
                },
                now(),
            )
            .unwrap();
        let e = EmbeddedRevocation::from_parts([forged.as_slice()], []);
        assert!(matches!(e.status(&cert, &ca), Status::Unknown { .. }));
        // Garbage is left out, and refused when augmenting.
        assert!(EmbeddedRevocation::from_parts([b"junk".as_slice()], [b"junk".as_slice()]).is_empty());
        let cms = sign(&f, &[7; 32], None);
        let bad = ValidationData {
            ocsp_responses: vec![b"junk".to_vec()],
            ..ValidationData::default()
        };
        assert!(augment_cades(&cms, &bad).is_err());
        assert!(augment_cades(b"not a cms", &ValidationData::default()).is_err());
    }

    fn signed_pdf(f: &Fixture, xref_stream: bool) -> Vec<u8> {
        let doc = if xref_stream {
            pdf::minimal_pdf_xref_stream("B-LT test")
        } else {
            pdf::minimal_pdf("B-LT test")
        };
        let prepared = pdf::prepare(&doc, &pdf::SignOptions::new(now())).unwrap();
        let cms = sign(f, &prepared.digest_sha256(), None);
        prepared.finish(&cms).unwrap()
    }

    #[test]
    fn pades_gets_a_dss_in_an_incremental_update() {
        let f = fixture();
        for xref_stream in [false, true] {
            let signed = signed_pdf(&f, xref_stream);
            let needs = pdf_needs(&signed).unwrap();
            assert_eq!(needs.signers, vec![f.signer.clone()]);
            assert_eq!(pdf_dss(&signed).unwrap(), ValidationData::default());
            let data = ValidationData {
                certificates: vec![f.ca.clone(), f.signer.clone(), f.responder_cert.clone()],
                ocsp_responses: vec![ocsp(&f, CertStatus::Good)],
                crls: Vec::new(),
            };
            let lt = augment_pdf(&signed, &data).unwrap();
            assert!(
                lt.starts_with(&signed),
                "an incremental update: the signed bytes stay"
            );
            assert_eq!(pdf_dss(&lt).unwrap(), data);
            let sigs = pdf::signatures(&lt).unwrap();
            assert_eq!(sigs.len(), 1);
            assert!(matches!(
                sigs[0].coverage,
                pdf::Coverage::WholeRevision {
                    later_revisions: true,
                    ..
                }
            ));
            // A second augmentation keeps the first DSS and repeats nothing.
            let more = ValidationData {
                ocsp_responses: vec![ocsp(
                    &f,
                    CertStatus::Revoked {
                        at: now(),
                        reason: None,
                    },
                )],
                ..data.clone()
            };
            let lt2 = augment_pdf(&lt, &more).unwrap();
            let dss = pdf_dss(&lt2).unwrap();
            assert_eq!(dss.certificates, data.certificates);
            assert_eq!(dss.ocsp_responses.len(), 2);
            assert!(augment_pdf(b"%PDF-1.7 nothing", &data).is_err());
            assert!(pdf_needs(&pdf::minimal_pdf("unsigned")).is_err());
        }
    }

    /// A PDF (classic cross-reference table) whose catalog has a DSS listing `certs` (references to
    /// the streams, which follow as objects 5, 6, …).
    fn pdf_with_dss(streams: &[lopdf::Stream], certs: &[u32]) -> Vec<u8> {
        let refs: String = certs.iter().map(|n| format!("{n} 0 R ")).collect();
        let mut objects: Vec<Vec<u8>> = vec![
            b"<< /Type /Catalog /Pages 2 0 R /DSS 4 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>".to_vec(),
            format!("<< /Type /DSS /Certs [{refs}] >>").into_bytes(),
        ];
        for st in streams {
            let mut o = Vec::new();
            pdf::write_object(&mut o, &Object::Dictionary(st.dict.clone()), 0);
            o.extend_from_slice(b"\nstream\n");
            o.extend_from_slice(&st.content);
            o.extend_from_slice(b"\nendstream");
            objects.push(o);
        }
        let mut out = b"%PDF-1.7\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            out.extend_from_slice(o);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    /// A FlateDecode stream of `len` zero bytes.
    fn flate_zeros(len: usize) -> lopdf::Stream {
        let mut st = lopdf::Stream::new(Dictionary::new(), vec![0u8; len]);
        st.compress().unwrap();
        assert!(st.dict.has(b"Filter"));
        st
    }

    #[test]
    fn dss_streams_are_decoded_within_a_budget() {
        // A small compressed DSS stream still reads.
        let f = fixture();
        let mut small = lopdf::Stream::new(Dictionary::new(), f.ca.clone());
        small.compress().unwrap();
        let ok = pdf_with_dss(&[small], &[5, 5]);
        assert_eq!(
            pdf_dss(&ok).unwrap().certificates,
            vec![f.ca.clone(), f.ca.clone()]
        );

        // One stream inflating past the whole budget: a few kilobytes in the file.
        let bomb = flate_zeros(MAX_DSS_DECODED + 1024 * 1024);
        assert!(bomb.content.len() < 64 * 1024, "{}", bomb.content.len());
        let one = pdf_with_dss(&[bomb], &[5]);
        assert!(one.len() < 100 * 1024);
        // Many references to one stream within the budget each: together beyond it.
        let many = pdf_with_dss(&[flate_zeros(1024 * 1024)], &[5; 40]);
        // A raw (unfiltered) stream referenced again and again counts too.
        let raw = lopdf::Stream::new(Dictionary::new(), vec![7u8; 2 * 1024 * 1024]);
        let raw_many = pdf_with_dss(&[raw], &[5; 10]);
        for (what, pdf_bytes) in [("one bomb", &one), ("many references", &many), ("raw", &raw_many)] {
            match pdf_dss(pdf_bytes) {
                Err(SigError::TooLarge { limit, .. }) => assert_eq!(limit, MAX_DSS_DECODED, "{what}"),
                other => panic!("{what}: {other:?}"),
            }
            // Verifying and augmenting refuse it too, and do not decode it whole.
            let verifier = crate::validate::Verifier::new(
                jpki_pki::path::TrustAnchors::new(),
                std::sync::Arc::new(EmbeddedRevocation::new(&ValidationData::default())),
            );
            assert!(
                matches!(
                    verifier.verify_pdf(pdf_bytes, now()),
                    Err(SigError::TooLarge { .. })
                ),
                "{what}"
            );
            let data = ValidationData {
                certificates: vec![f.ca.clone()],
                ..ValidationData::default()
            };
            assert!(
                matches!(augment_pdf(pdf_bytes, &data), Err(SigError::TooLarge { .. })),
                "{what}"
            );
        }
        // Too many items, each tiny.
        let mut tiny = lopdf::Stream::new(Dictionary::new(), b"x".to_vec());
        tiny.compress().unwrap();
        let crowd = pdf_with_dss(&[tiny], &vec![5; MAX_DSS_ITEMS + 1]);
        assert!(matches!(pdf_dss(&crowd), Err(SigError::Unsupported { .. })));
    }

    #[test]
    fn only_signatures_that_verify_are_augmented() {
        let f = fixture();
        let digest = jpki_pki::x509::sha256(b"contract");
        let genuine = sign(&f, &digest, Some(now()));
        let needs = verified_cades_needs(&genuine).unwrap();
        assert_eq!(needs.signers, vec![f.signer.clone()]);
        // The same certificate around a signature value made with another key: refused.
        let other = SigningKey::generate(KeyType::Rsa2048).unwrap();
        let p = crate::cades::prepare(&digest, &f.signer, std::slice::from_ref(&f.ca), Some(now())).unwrap();
        let forged = p.finish(&other.sign(p.to_be_signed()).unwrap()).unwrap();
        assert!(cades_needs(&forged).is_ok(), "it parses");
        match verified_cades_needs(&forged) {
            Err(NeedsError::Refused(why)) => assert!(why.contains("SIG_CRYPTO_FAILURE"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            verified_cades_needs(b"not a cms"),
            Err(NeedsError::Malformed(_))
        ));
        // A PDF: the signature must verify over the bytes it covers.
        let signed = signed_pdf(&f, false);
        let sigs = pdf::signatures(&signed).unwrap();
        assert_eq!(
            verified_pdf_needs(&signed, &sigs).unwrap().signers,
            vec![f.signer.clone()]
        );
        let mut tampered = signed.clone();
        let at = tampered
            .windows(b"B-LT test".len())
            .position(|w| w == b"B-LT test")
            .unwrap();
        tampered[at] = b'C';
        let sigs = pdf::signatures(&tampered).unwrap();
        match verified_pdf_needs(&tampered, &sigs) {
            Err(NeedsError::Refused(why)) => assert!(why.contains("HASH_FAILURE"), "{why}"),
            other => panic!("{other:?}"),
        }
        // A PDF whose signature is by the wrong key.
        let doc = pdf::minimal_pdf("forged");
        let prepared = pdf::prepare(&doc, &pdf::SignOptions::new(now())).unwrap();
        let p = crate::cades::prepare(
            &prepared.digest_sha256(),
            &f.signer,
            std::slice::from_ref(&f.ca),
            None,
        )
        .unwrap();
        let forged_pdf = prepared
            .finish(&p.finish(&other.sign(p.to_be_signed()).unwrap()).unwrap())
            .unwrap();
        let sigs = pdf::signatures(&forged_pdf).unwrap();
        assert!(pdf_signatures_needs(&sigs).is_ok(), "it names a signer");
        assert!(matches!(
            verified_pdf_needs(&forged_pdf, &sigs),
            Err(NeedsError::Refused(_))
        ));
    }

    /// Counts the questions asked.
    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl RevocationSource for Counting {
        fn status(&self, _: &ParsedCert, _: &ParsedCert) -> Status {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Status::Revoked {
                at: now() - time::Duration::days(1),
                reason: RevocationReason::KeyCompromise,
                source: "test".into(),
            }
        }
    }

    #[test]
    fn a_broken_signature_is_not_a_status_check() {
        let f = fixture();
        let counting = std::sync::Arc::new(Counting::default());
        let mut anchors = jpki_pki::path::TrustAnchors::new();
        anchors.add_der(&f.ca).unwrap();
        let verifier = crate::validate::Verifier::new(anchors, counting.clone());
        let content = b"contract";
        let cms = sign(&f, &jpki_pki::x509::sha256(content), Some(now()));
        let asked = || counting.0.load(std::sync::atomic::Ordering::SeqCst);
        let good = verifier.verify_cades(&cms, Some(content), now()).unwrap();
        assert_eq!(good.revocation.as_ref().unwrap().status, "revoked");
        assert_eq!(asked(), 1);
        // Another content (HASH_FAILURE), another key (SIG_CRYPTO_FAILURE): the signer's status is
        // neither asked nor told.
        let other = SigningKey::generate(KeyType::Rsa2048).unwrap();
        let p = crate::cades::prepare(
            &jpki_pki::x509::sha256(content),
            &f.signer,
            std::slice::from_ref(&f.ca),
            Some(now()),
        )
        .unwrap();
        let forged = p.finish(&other.sign(p.to_be_signed()).unwrap()).unwrap();
        for (cms, content, sub) in [
            (
                &cms,
                b"tampered".as_slice(),
                crate::report::SubIndication::HashFailure,
            ),
            (
                &forged,
                content.as_slice(),
                crate::report::SubIndication::SigCryptoFailure,
            ),
        ] {
            let r = verifier.verify_cades(cms, Some(content), now()).unwrap();
            assert_eq!(r.sub_indication, Some(sub));
            assert!(r.revocation.is_none(), "{r:?}");
            let text = format!("{:?} {:?}", r.reasons, r.warnings);
            assert!(
                !text.contains("revoked") && !text.contains("KeyCompromise"),
                "{text}"
            );
            assert_eq!(asked(), 1);
        }
    }

    #[test]
    fn a_tsa_certificate_counts_only_for_a_token_that_stamps_the_signature() {
        use crate::signed_data::DigestAlg;
        use crate::signed_data::testing::eku_time_stamping;
        use crate::tsp::{TimeStampAuthority, TimeStampRequest, token_from_response};
        let f = fixture();
        let (root_key, root) = self_signed(KeyType::P384, "TSA Root", ca_extensions());
        let key = SigningKey::generate(KeyType::P384).unwrap();
        let tsa_cert = issue(
            "TSA",
            &key.spki_der().unwrap(),
            (&name("TSA Root"), &root_key),
            &[0x11],
            vec![ku_digital_signature(), eku_time_stamping(true)],
        );
        let tsa = TimeStampAuthority::new(key, tsa_cert.clone(), vec![root]).unwrap();
        let stamp = |data: &[u8]| {
            let req =
                TimeStampRequest::for_digest(DigestAlg::Sha256, &DigestAlg::Sha256.digest(data), None, true)
                    .unwrap();
            token_from_response(&tsa.respond(&req.to_der().unwrap(), now(), &[1]), &req).unwrap()
        };
        let with_token = |cms: &[u8], token: &[u8]| {
            let attr = signed_data::attribute(ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &[token]).unwrap();
            signed_data::set_unsigned_attribute(cms, &attr).unwrap()
        };
        let cms = sign(&f, &[9; 32], Some(now()));
        let value = crate::cades::signature_value(&cms).unwrap();
        // A token over the signature value: its TSA's certificate counts.
        let good = with_token(&cms, &stamp(&value));
        assert_eq!(verified_cades_needs(&good).unwrap().tsas, vec![tsa_cert.clone()]);
        // A token over something else, or one whose signature is broken: anyone can add such an
        // unsigned attribute, naming whatever certificate it likes; it counts for nothing.
        let elsewhere = with_token(&cms, &stamp(b"another signature"));
        assert!(verified_cades_needs(&elsewhere).unwrap().tsas.is_empty());
        let mut broken = stamp(&value);
        let last = broken.len() - 1;
        broken[last] ^= 0x01;
        let broken = with_token(&cms, &broken);
        let needs = verified_cades_needs(&broken).unwrap();
        assert!(needs.tsas.is_empty());
        assert_eq!(
            needs.signers,
            vec![f.signer.clone()],
            "the signature itself still verifies"
        );
    }
}
