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
//! [`pdf_needs`] name the certificates whose status matters. [`EmbeddedRevocation`] reads the
//! embedded data back as a [`RevocationSource`] for the verifier.
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
    fn add(&mut self, parsed: &ParsedSignedData<'_>) {
        let carried: Vec<Vec<u8>> = parsed.certificates.iter().map(|c| c.to_vec()).collect();
        for signer in &parsed.signers {
            if let Some(c) = parsed.find_signer_certificate(signer) {
                push_new(&mut self.signers, c);
            }
            for token in signer.unsigned_attribute_values(&ID_AA_SIGNATURE_TIME_STAMP_TOKEN) {
                let Ok(t) = TimeStampToken::parse(token) else {
                    continue;
                };
                if let Some(c) = t.signer_certificate(&carried) {
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

fn push_new(list: &mut Vec<Vec<u8>>, item: &[u8]) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_vec());
    }
}

/// What [`augment_cades`] needs revocation data for: the signer's certificate and the TSA's.
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

/// Reads a PDF's Document Security Store (`/DSS` of the catalog): empty when there is none.
pub fn pdf_dss(pdf_bytes: &[u8]) -> Result<ValidationData, SigError> {
    pdf::check_size(pdf_bytes)?;
    let doc = pdf::load(pdf_bytes)?;
    let mut out = ValidationData::default();
    let Some(dss) = catalog(&doc).and_then(|(_, c)| pdf::get_dict(&doc, c, b"DSS")) else {
        return Ok(out);
    };
    let lists = [&mut out.certificates, &mut out.ocsp_responses, &mut out.crls];
    for (key, list) in DSS_KEYS.into_iter().zip(lists) {
        for item in pdf::dict_get(&doc, dss, key)
            .and_then(|a| a.as_array().ok())
            .into_iter()
            .flatten()
        {
            if let Some(bytes) = stream_bytes(&doc, item) {
                list.push(bytes);
            }
        }
    }
    Ok(out)
}

fn catalog(doc: &lopdf::Document) -> Option<(ObjectId, &Dictionary)> {
    let root_id = doc.trailer.get(b"Root").and_then(Object::as_reference).ok()?;
    doc.get_dictionary(root_id).ok().map(|c| (root_id, c))
}

/// The decoded bytes of the stream `o` refers to.
fn stream_bytes(doc: &lopdf::Document, o: &Object) -> Option<Vec<u8>> {
    let stream = pdf::deref(doc, o)?.as_stream().ok()?;
    if stream.dict.has(b"Filter") {
        stream.decompressed_content().ok()
    } else {
        Some(stream.content.clone())
    }
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
    for (key, items) in DSS_KEYS.into_iter().zip(dss_lists(data)) {
        let mut array: Vec<Object> = pdf::dict_get(&doc, &old_dss, key)
            .and_then(|a| a.as_array().ok())
            .cloned()
            .unwrap_or_default();
        let mut present: Vec<Vec<u8>> = array.iter().filter_map(|o| stream_bytes(&doc, o)).collect();
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
}
