//! Validation corpus: generated CAdES and PAdES signatures, each with the exact ETSI EN 319 102-1
//! indication and sub-indication our [`Verifier`] must give, compared with pyHanko's AdES
//! validation (`ades_check.py`, PyPI `pyhanko` 0.38 / `pyhanko-certvalidator` 0.33).
//!
//! Every case is built here from code, against the real current time (pyHanko validates "now"):
//! roots valid from 400 days ago, signers from 30 days ago, signatures made 2 days ago, CRLs issued
//! an hour ago. The hierarchy-dependent cases run twice, under an RSA-2048 and under a P-384
//! authority (roots, intermediate, time-stamp authority); the signer's key is always RSA-2048, as on
//! the card, signed in software (PKCS#1 v1.5 over SHA-256).
//!
//! pyHanko runs once for all cases, offline: the CRLs are handed over as local knowledge
//! (`LocalKnowledge.known_crls`, `RevinfoOnlineFetchingRule.LOCAL_ONLY`, certificate fetching off;
//! no HTTP server needed), revocation information is required (`REQUIRE_REVINFO`), and the signer's
//! keyUsage must carry digitalSignature and nonRepudiation (`KeyUsageConstraints`). B-B cases use
//! `ades_basic_validation`, B-T cases `ades_with_time_validation`. The main indications must agree
//! (TOTAL_PASSED↔PASSED, TOTAL_FAILED↔FAILED, INDETERMINATE↔INDETERMINATE) except where pyHanko is
//! known to judge otherwise; there its exact answer is asserted, so a change in pyHanko shows:
//!
//! * Time-stamp after the certificate's expiry (case 10): pyHanko's validation with time only checks
//!   a proven time against notBefore ("we can't process expiration here", ades.py) and passes the
//!   signature. A signature time-stamp proves existence, not creation: the signature may have been
//!   made before the expiry, so we say INDETERMINATE/OUT_OF_BOUNDS_NO_POE. (Revoked before the
//!   time-stamp, case 12, is the same reasoning, and there pyHanko agrees: REVOKED_NO_POE.)
//! * REVOKED (FAILED) and EXPIRED (INDETERMINATE, as pyHanko and EN 319 102-1 V1.3.1 file it) need
//!   proof the signature was made after the event: a content time-stamp, a signed attribute
//!   (cases 26, 27). pyHanko agrees on both.
//! * Not yet valid (case 11, notBefore tomorrow): pyHanko's basic validation turns the path
//!   validator's not-yet-valid error into INDETERMINATE/CERTIFICATE_CHAIN_GENERAL_FAILURE. We give
//!   TOTAL_FAILED/NOT_YET_VALID: the signature exists now (the validation time is a proof of
//!   existence) and now is before notBefore, so it was provably made before the certificate became
//!   valid — the verdict EN 319 102-1 §5.5.4 and pyHanko's own past-signature validation give for a
//!   best-signature-time before notBefore.
//!
//! Same main indication, other sub-indication (recorded in the table, not asserted):
//! * On hold (case 16): pyHanko treats certificateHold like a revocation, REVOKED_NO_POE; we say
//!   TRY_LATER, as EN 319 102-1 §5.2.6 does for a suspended certificate (the hold may be lifted).
//! * No CRL (case 22): pyHanko says CERTIFICATE_CHAIN_GENERAL_FAILURE (the path validator's
//!   "no revocation information" error); we say TRY_LATER.
//!
//! pyHanko n/a (its result is recorded in the table, not asserted):
//! * Missing signing-certificate-v2 (case 24): pyHanko's CMS validation checks an ESS
//!   signing-certificate(-v2) attribute only when one is present, so it passes the signature; the
//!   CAdES baseline (EN 319 122-1) requires the attribute, hence our NO_SIGNING_CERTIFICATE_FOUND.
//!
//! Case 25 feeds garbage, truncated, empty and oversized CMS and PDF input: an `Err` with a one-line
//! message, never a panic (no pyHanko there). A signed PDF cut short is the one exception to `Err`:
//! cut inside the signature's incremental update it is the earlier, unsigned revision (no
//! signature, which `jpki verify` reports as an error); cut after the signature's /Contents its
//! byte range lies outside the file (TOTAL_FAILED/FORMAT_FAILURE). Either way never a pass.
//!
//! pyHanko is looked for in `$JPKI_VENV` (default `<workspace>/.venv`); when it is missing the
//! comparison is skipped with a message, unless `JPKI_REQUIRE_INTEROP=1`, which makes that a
//! failure. Our own assertions always run. `JPKI_CORPUS_DIR=DIR` keeps the artefacts (signatures,
//! contents, roots, CRLs, `manifest.json`) in DIR instead of a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use jpki_model::{BasicFour, CertKind, RevocationReason, Serial};
use jpki_pki::path::TrustAnchors;
use jpki_pki::revocation::{CrlStore, ParsedCrl};
use jpki_pki::{
    CrlEntry, CrlScope, CrlSpec, CustomSpec, EndEntitySpec, Endpoints, Issuer, KeyType, RootSpec, SigningKey,
    SubjectPublicKey, extensions, issue_root, name, oid,
};
use jpki_sig::report::{Indication, Report, SubIndication};
use jpki_sig::signed_data::{
    DigestAlg, ID_DATA, SignedDataBuilder, attr_content_type, attr_message_digest, attr_signing_time,
    signed_attributes_der,
};
use jpki_sig::tsp::{TimeStampAuthority, TimeStampRequest, token_from_response};
use jpki_sig::validate::Verifier;
use jpki_sig::{SigError, cades, pdf};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

/// The CRL shard every end-entity certificate (and the TSA's) of the corpus carries.
const SHARD: u16 = 1;
const CONTENT: &[u8] = b"openjpki corpus: the signed document\n";
const PDF_TEXT: &str = "openjpki corpus\nPAdES test document";

fn days(n: i64) -> Duration {
    Duration::days(n)
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b
}

fn serial() -> Serial {
    Serial::generate(random16(), SHARD)
}

// ---------------------------------------------------------------------------------------------
// The world: time, URLs, the signer's key and facts; one authority per key type

struct World {
    now: OffsetDateTime,
    ep: Endpoints,
    signer_key: SigningKey,
    signer_spki: SubjectPublicKey,
    facts: BasicFour,
}

impl World {
    fn new() -> Self {
        let signer_key = SigningKey::generate(KeyType::Rsa2048).unwrap();
        let signer_spki = SubjectPublicKey::from_der(&signer_key.spki_der().unwrap()).unwrap();
        Self {
            now: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
            ep: Endpoints::new("http://127.0.0.1:7700").unwrap(),
            signer_key,
            signer_spki,
            facts: BasicFour {
                name: "山田　太郎".parse().unwrap(),
                address: "東京都千代田区霞が関2-1-2".parse().unwrap(),
                birth_date: jpki_model::parse_birth_date("1980-04-01").unwrap(),
                sex: "1".parse().unwrap(),
            },
        }
    }

    /// When the corpus' signatures are made.
    fn signed_at(&self) -> OffsetDateTime {
        self.now - days(2)
    }
}

/// One authority, all its keys of one type.
struct Authority {
    label: &'static str,
    /// The signature root (trusted).
    root: Issuer,
    /// Another root of the same name and kind, with its own key (never trusted).
    impostor: Issuer,
    /// The user-authentication root (trusted where a case says so).
    auth_root: Issuer,
    /// An intermediate CA under `root`.
    mid: Issuer,
    tsa: TimeStampAuthority,
}

/// A self-signed root of `kind` with a fresh key: every call gives the same name and another key.
fn new_root(w: &World, kt: KeyType, kind: CertKind) -> Issuer {
    let key = SigningKey::generate(kt).unwrap();
    let cert = issue_root(&RootSpec {
        kind,
        key: &key,
        serial: &Serial::from_be_bytes(&[1]).unwrap(),
        not_before: w.now - days(400),
        not_after: w.now + days(3650),
        endpoints: &w.ep,
        generation: 1,
    })
    .unwrap();
    Issuer::new(kind, key, cert).unwrap()
}

impl Authority {
    fn new(w: &World, kt: KeyType, label: &'static str) -> Self {
        let root = new_root(w, kt, CertKind::Signature);
        let impostor = new_root(w, kt, CertKind::Signature);
        let auth_root = new_root(w, kt, CertKind::Authentication);
        let mid_key = SigningKey::generate(kt).unwrap();
        let mid_spki = SubjectPublicKey::from_der(&mid_key.spki_der().unwrap()).unwrap();
        let mid_cert = root
            .issue_custom(CustomSpec {
                serial: &serial(),
                subject: name::custom(&[
                    ("C", "JP"),
                    ("O", "OpenJPKI"),
                    ("CN", "OpenJPKI Corpus Intermediate"),
                ])
                .unwrap(),
                subject_key: &mid_spki,
                not_before: w.now - days(300),
                not_after: w.now + days(1000),
                extensions: vec![
                    extensions::basic_constraints(true, Some(0)).unwrap(),
                    extensions::key_usage(KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)).unwrap(),
                    extensions::crl_distribution_point(&w.ep.url(&Endpoints::arl_path(CertKind::Signature)))
                        .unwrap(),
                ],
            })
            .unwrap();
        let mid = Issuer::new(CertKind::Signature, mid_key, mid_cert).unwrap();
        let tsa_key = SigningKey::generate(kt).unwrap();
        let tsa_spki = SubjectPublicKey::from_der(&tsa_key.spki_der().unwrap()).unwrap();
        let tsa_cert = root
            .issue_tsa(&serial(), &tsa_spki, w.now - days(300), w.now + days(1000), &w.ep)
            .unwrap();
        let tsa = TimeStampAuthority::new(tsa_key, tsa_cert, vec![root.cert_der().to_vec()]).unwrap();
        Self {
            label,
            root,
            impostor,
            auth_root,
            mid,
            tsa,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates, CRLs, signatures

/// An end-entity certificate of `issuer`'s kind (signature certificates carry the basic four) for
/// the corpus signer's key, valid `not_before..not_after`.
fn ee(
    w: &World,
    issuer: &Issuer,
    s: &Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Vec<u8> {
    issuer
        .issue(
            &EndEntitySpec {
                serial: s,
                subject_key: &w.signer_spki,
                subject_id: "CORPUS0123456789",
                not_before,
                not_after,
                facts: (issuer.kind() == CertKind::Signature).then_some(&w.facts),
            },
            &w.ep,
        )
        .unwrap()
}

/// A signer certificate valid from 30 days ago for a year.
fn signer(w: &World, issuer: &Issuer) -> (Vec<u8>, Serial) {
    let s = serial();
    (ee(w, issuer, &s, w.now - days(30), w.now + days(365)), s)
}

struct CrlFile {
    source: String,
    der: Vec<u8>,
}

fn crl_at(
    w: &World,
    issuer: &Issuer,
    scope: CrlScope,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    entries: &[CrlEntry],
    source: &str,
) -> CrlFile {
    let der = issuer
        .crl(
            &CrlSpec {
                scope,
                number: 1,
                this_update,
                next_update,
                endpoints: &w.ep,
            },
            entries,
        )
        .unwrap();
    CrlFile {
        source: source.to_owned(),
        der,
    }
}

/// The shard CRL of `issuer` (issued an hour ago, next update tomorrow) listing `entries`.
fn shard_crl(w: &World, issuer: &Issuer, entries: &[CrlEntry], source: &str) -> CrlFile {
    crl_at(
        w,
        issuer,
        CrlScope::Shard(SHARD),
        w.now - Duration::hours(1),
        w.now + days(1),
        entries,
        source,
    )
}

fn entry(s: &Serial, at: OffsetDateTime, reason: RevocationReason) -> CrlEntry {
    CrlEntry {
        serial: s.clone(),
        revoked_at: at,
        reason,
    }
}

/// A detached CAdES-B-B signature over `content` with the corpus signer's key.
fn cades_bb(
    w: &World,
    cert: &[u8],
    chain: &[Vec<u8>],
    content: &[u8],
    claimed: Option<OffsetDateTime>,
) -> Vec<u8> {
    let p = cades::prepare(&jpki_pki::x509::sha256(content), cert, chain, claimed).unwrap();
    p.finish(&w.signer_key.sign(p.to_be_signed()).unwrap()).unwrap()
}

/// A CAdES signature carrying a content time-stamp (made by `tsa` at `at`, over the content's SHA-256)
/// as a signed attribute: proof the signature was made after `at`.
fn cades_content_ts(
    w: &World,
    tsa: &TimeStampAuthority,
    cert: &[u8],
    chain: &[Vec<u8>],
    content: &[u8],
    at: OffsetDateTime,
) -> Vec<u8> {
    let digest = jpki_pki::x509::sha256(content);
    let req = TimeStampRequest::for_digest(
        DigestAlg::Sha256,
        &digest,
        Some(random16()[..8].try_into().unwrap()),
        true,
    )
    .unwrap();
    let resp = tsa.respond(&req.to_der().unwrap(), at, &random16()[..8]);
    let token = token_from_response(&resp, &req).unwrap();
    let p = cades::prepare_with_content_timestamp(&digest, cert, chain, Some(at), Some(&token)).unwrap();
    p.finish(&w.signer_key.sign(p.to_be_signed()).unwrap()).unwrap()
}

/// Adds a signature time-stamp made by `tsa` at `at` (B-B → B-T).
fn stamp(tsa: &TimeStampAuthority, cms: &[u8], at: OffsetDateTime) -> Vec<u8> {
    let value = cades::signature_value(cms).unwrap();
    let req = TimeStampRequest::for_digest(
        DigestAlg::Sha256,
        &jpki_pki::x509::sha256(&value),
        Some(random16()[..8].try_into().unwrap()),
        true,
    )
    .unwrap();
    let resp = tsa.respond(&req.to_der().unwrap(), at, &random16()[..8]);
    let token = token_from_response(&resp, &req).unwrap();
    cades::add_signature_timestamp(cms, &token).unwrap()
}

/// A PAdES signature (no signing-time attribute; /M claims `at`) on the minimal PDF, optionally
/// time-stamped by `tsa` a minute after `at`.
fn pades(
    w: &World,
    cert: &[u8],
    chain: &[Vec<u8>],
    at: OffsetDateTime,
    tsa: Option<&TimeStampAuthority>,
) -> Vec<u8> {
    let prepared = pdf::prepare(&pdf::minimal_pdf(PDF_TEXT), &pdf::SignOptions::new(at)).unwrap();
    let p = cades::prepare(&prepared.digest_sha256(), cert, chain, None).unwrap();
    let mut cms = p.finish(&w.signer_key.sign(p.to_be_signed()).unwrap()).unwrap();
    if let Some(tsa) = tsa {
        cms = stamp(tsa, &cms, at + Duration::minutes(1));
    }
    prepared.finish(&cms).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Cases

enum Input {
    Cms { sig: Vec<u8>, content: Vec<u8> },
    Pdf(Vec<u8>),
}

/// What pyHanko is expected to say.
enum Py {
    /// The same main indication as ours.
    Agrees,
    /// A documented difference (see the module docs): pyHanko's exact "STATUS SUB-INDICATION".
    Differs(&'static str),
    /// pyHanko cannot judge this the same way (reason); its answer is only recorded.
    NotApplicable(&'static str),
}

struct Case {
    name: String,
    input: Input,
    /// B-T: pyHanko validates with time.
    timestamped: bool,
    anchors: Vec<Vec<u8>>,
    crls: Vec<CrlFile>,
    indication: Indication,
    sub: Option<SubIndication>,
    /// A phrase of the first reason.
    reason: Option<&'static str>,
    /// Further checks of the report.
    check: fn(&Report),
    py: Py,
}

fn no_check(_: &Report) {}

/// The facts, signer kind, CRL source of a passed signature.
fn check_valid(r: &Report) {
    let s = r.signer.as_ref().expect("signer");
    assert_eq!(s.kind, "sign");
    assert_eq!(s.key, "RSA-2048");
    let f = s.facts.as_ref().expect("the basic four");
    assert_eq!(f.name.as_deref(), Some("山田　太郎"));
    assert_eq!(f.address.as_deref(), Some("東京都千代田区霞が関2-1-2"));
    assert_eq!(f.birth_date.as_deref(), Some("1980-04-01"));
    assert_eq!(f.sex.as_deref(), Some("male"));
    let rev = r.revocation.as_ref().expect("revocation");
    assert_eq!(rev.status, "good");
    assert!(rev.source.contains("sign-shard.crl"), "{}", rev.source);
    assert_eq!(r.digest_algorithm.as_deref(), Some("SHA-256"));
    assert!(r.reasons.is_empty(), "{:?}", r.reasons);
    // No warnings: in particular none about a CMS signing-time attribute in a PAdES signature.
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // The claimed time: the signing-time attribute (CAdES) or /M (PAdES).
    assert!(r.signing_time.claimed.is_some());
    assert_eq!(r.chain.len(), 2, "{:?}", r.chain);
}

fn check_bb(r: &Report) {
    check_valid(r);
    assert!(r.format.ends_with("-BASELINE-B"), "{}", r.format);
    assert!(r.timestamp.is_none());
    assert!(r.signing_time.proven.is_none());
}

fn check_bt(r: &Report) {
    check_valid(r);
    assert!(r.format.ends_with("-BASELINE-T"), "{}", r.format);
    let ts = r.timestamp.as_ref().expect("timestamp");
    assert_eq!(ts.status, "valid");
    assert!(ts.tsa.is_some());
    assert!(r.signing_time.proven.is_some(), "{:?}", r.signing_time);
    assert!(
        r.signing_time.proof.contains("time-stamp"),
        "{}",
        r.signing_time.proof
    );
}

fn check_revoked_after(r: &Report) {
    assert_eq!(r.revocation.as_ref().unwrap().status, "revoked");
    assert!(r.signing_time.proven.is_some());
    assert!(
        r.warnings.iter().any(|w| w.contains("after the time-stamp")),
        "{:?}",
        r.warnings
    );
}

fn check_hold(r: &Report) {
    assert_eq!(r.revocation.as_ref().unwrap().status, "on-hold");
}

fn check_auth(r: &Report) {
    assert_eq!(r.signer.as_ref().unwrap().kind, "auth");
    assert!(r.signer.as_ref().unwrap().facts.is_none());
}

fn cases(w: &World, a: &Authority) -> Vec<Case> {
    let root = a.root.cert_der().to_vec();
    let chain = std::slice::from_ref(&root);
    let at = w.signed_at();
    let ts_at = at + Duration::minutes(1);
    let mut out = Vec::new();
    let add = |n: u32,
               what: &str,
               input: Input,
               timestamped: bool,
               crls: Vec<CrlFile>,
               expect: (Indication, Option<SubIndication>),
               reason: Option<&'static str>,
               check: fn(&Report),
               py: Py| Case {
        name: format!("{n:02} {what} [{}]", a.label),
        input,
        timestamped,
        anchors: vec![root.clone()],
        crls,
        indication: expect.0,
        sub: expect.1,
        reason,
        check,
        py,
    };
    use Indication::{Indeterminate, TotalFailed, TotalPassed};
    use SubIndication as S;
    let passed = (TotalPassed, None);
    let cms = |sig: Vec<u8>| Input::Cms {
        sig,
        content: CONTENT.to_vec(),
    };
    let good_crl = || shard_crl(w, &a.root, &[], "sign-shard.crl");

    // 1-4: valid B-B and B-T, CAdES and PAdES.
    let (cert, _) = signer(w, &a.root);
    let bb = cades_bb(w, &cert, chain, CONTENT, Some(at));
    out.push(add(
        1,
        "CAdES B-B valid",
        cms(bb.clone()),
        false,
        vec![good_crl()],
        passed,
        None,
        check_bb,
        Py::Agrees,
    ));
    let bt = stamp(&a.tsa, &bb, ts_at);
    out.push(add(
        2,
        "CAdES B-T valid",
        cms(bt),
        true,
        vec![good_crl()],
        passed,
        None,
        check_bt,
        Py::Agrees,
    ));
    let pdf_bb = pades(w, &cert, chain, at, None);
    out.push(add(
        3,
        "PAdES B-B valid",
        Input::Pdf(pdf_bb.clone()),
        false,
        vec![good_crl()],
        passed,
        None,
        check_bb,
        Py::Agrees,
    ));
    let pdf_bt = pades(w, &cert, chain, at, Some(&a.tsa));
    out.push(add(
        4,
        "PAdES B-T valid",
        Input::Pdf(pdf_bt),
        true,
        vec![good_crl()],
        passed,
        None,
        check_bt,
        Py::Agrees,
    ));

    // 5-7: tampered content, tampered PDF, flipped signature bit.
    let mut changed = CONTENT.to_vec();
    changed[0] ^= 0x20;
    out.push(add(
        5,
        "CAdES tampered content",
        Input::Cms {
            sig: bb.clone(),
            content: changed,
        },
        false,
        vec![good_crl()],
        (TotalFailed, Some(S::HashFailure)),
        Some("content has changed"),
        no_check,
        Py::Agrees,
    ));
    let mut tampered = pdf_bb.clone();
    let pos = tampered
        .windows(6)
        .position(|w| w == b"corpus")
        .expect("the page text");
    tampered[pos] = b'C';
    out.push(add(
        6,
        "PAdES tampered byte in range",
        Input::Pdf(tampered),
        false,
        vec![good_crl()],
        (TotalFailed, Some(S::HashFailure)),
        Some("content has changed"),
        no_check,
        Py::Agrees,
    ));
    let p = cades::prepare(&jpki_pki::x509::sha256(CONTENT), &cert, chain, Some(at)).unwrap();
    let mut sig = w.signer_key.sign(p.to_be_signed()).unwrap();
    sig[17] ^= 0x04;
    out.push(add(
        7,
        "CAdES signature bit flipped",
        cms(p.finish(&sig).unwrap()),
        false,
        vec![good_crl()],
        (TotalFailed, Some(S::SigCryptoFailure)),
        Some("does not verify"),
        no_check,
        Py::Agrees,
    ));

    // 8-11: validity period.
    let s = serial();
    let expired = ee(w, &a.root, &s, w.now - days(60), w.now - days(10));
    let bb = cades_bb(w, &expired, chain, CONTENT, Some(w.now - days(20)));
    out.push(add(
        8,
        "expired, no time-stamp",
        cms(bb.clone()),
        false,
        vec![good_crl()],
        (Indeterminate, Some(S::OutOfBoundsNoPoe)),
        Some("expired at"),
        no_check,
        Py::Agrees,
    ));
    out.push(add(
        9,
        "expired, time-stamp within validity",
        cms(stamp(&a.tsa, &bb, w.now - days(20))),
        true,
        vec![good_crl()],
        passed,
        None,
        no_check,
        Py::Agrees,
    ));
    let late = cades_bb(w, &expired, chain, CONTENT, Some(w.now - days(5)));
    out.push(add(
        10,
        "time-stamp after expiry",
        cms(stamp(&a.tsa, &late, w.now - days(5))),
        true,
        vec![good_crl()],
        (Indeterminate, Some(S::OutOfBoundsNoPoe)),
        Some("does not show it was made before the expiry"),
        no_check,
        Py::Differs("PASSED OK"),
    ));
    let s = serial();
    let future = ee(w, &a.root, &s, w.now + days(1), w.now + days(365));
    out.push(add(
        11,
        "not yet valid",
        cms(cades_bb(w, &future, chain, CONTENT, Some(w.now))),
        false,
        vec![good_crl()],
        (TotalFailed, Some(S::NotYetValid)),
        Some("before the certificate became valid"),
        no_check,
        Py::Differs("INDETERMINATE CERTIFICATE_CHAIN_GENERAL_FAILURE"),
    ));

    // 12-16: revocation and hold.
    let revoked = |when: OffsetDateTime, reason: RevocationReason, stamped: bool| {
        let (cert, s) = signer(w, &a.root);
        let mut sig = cades_bb(w, &cert, chain, CONTENT, Some(at));
        if stamped {
            sig = stamp(&a.tsa, &sig, ts_at);
        }
        let crl = shard_crl(w, &a.root, &[entry(&s, when, reason)], "sign-shard.crl");
        (sig, crl)
    };
    let (sig, crl) = revoked(at - days(1), RevocationReason::KeyCompromise, true);
    out.push(add(
        12,
        "revoked before time-stamp",
        cms(sig),
        true,
        vec![crl],
        (Indeterminate, Some(S::RevokedNoPoe)),
        Some("does not show it was made before the revocation"),
        no_check,
        Py::Agrees,
    ));
    let (sig, crl) = revoked(at + days(1), RevocationReason::AffiliationChanged, true);
    out.push(add(
        13,
        "revoked after time-stamp",
        cms(sig),
        true,
        vec![crl],
        passed,
        None,
        check_revoked_after,
        Py::Agrees,
    ));
    let (sig, crl) = revoked(at - days(1), RevocationReason::KeyCompromise, false);
    out.push(add(
        14,
        "revoked before, no time-stamp",
        cms(sig),
        false,
        vec![crl],
        (Indeterminate, Some(S::RevokedNoPoe)),
        Some("no time-stamp proves"),
        no_check,
        Py::Agrees,
    ));
    let (sig, crl) = revoked(at + days(1), RevocationReason::AffiliationChanged, false);
    out.push(add(
        15,
        "revoked after, no time-stamp",
        cms(sig),
        false,
        vec![crl],
        (Indeterminate, Some(S::RevokedNoPoe)),
        Some("no time-stamp proves"),
        no_check,
        Py::Agrees,
    ));
    let (sig, crl) = revoked(at + days(1), RevocationReason::CertificateHold, false);
    out.push(add(
        16,
        "on hold, no time-stamp",
        cms(sig),
        false,
        vec![crl],
        (Indeterminate, Some(S::TryLater)),
        Some("on hold"),
        check_hold,
        Py::Agrees,
    ));

    // 26-27: a content time-stamp proves the signature was made after its time.
    let (cert, s) = signer(w, &a.root);
    let made_after = cades_content_ts(w, &a.tsa, &cert, chain, CONTENT, at);
    let crl = shard_crl(
        w,
        &a.root,
        &[entry(&s, at - days(1), RevocationReason::KeyCompromise)],
        "sign-shard.crl",
    );
    out.push(add(
        26,
        "revoked before a content time-stamp",
        cms(made_after),
        false,
        vec![crl],
        (TotalFailed, Some(S::Revoked)),
        Some("content time-stamp proves the signature was made later"),
        no_check,
        Py::Agrees,
    ));
    let s = serial();
    let expired_then = ee(w, &a.root, &s, w.now - days(60), w.now - days(10));
    out.push(add(
        27,
        "content time-stamp after expiry",
        cms(cades_content_ts(
            w,
            &a.tsa,
            &expired_then,
            chain,
            CONTENT,
            w.now - days(5),
        )),
        false,
        vec![good_crl()],
        (Indeterminate, Some(S::Expired)),
        Some("content time-stamp proves the signature was made"),
        no_check,
        Py::Agrees,
    ));

    // 17-19: chains.
    let (cert, _) = signer(w, &a.impostor);
    let imp_root = a.impostor.cert_der().to_vec();
    out.push(add(
        17,
        "wrong issuer (untrusted root, same name)",
        cms(cades_bb(
            w,
            &cert,
            std::slice::from_ref(&imp_root),
            CONTENT,
            Some(at),
        )),
        false,
        vec![good_crl(), shard_crl(w, &a.impostor, &[], "impostor-shard.crl")],
        (Indeterminate, Some(S::NoCertificateChainFound)),
        Some("another key"),
        no_check,
        Py::Agrees,
    ));
    let (cert, _) = signer(w, &a.mid);
    let mid_crls = || {
        vec![
            crl_at(
                w,
                &a.root,
                CrlScope::Authority,
                w.now - Duration::hours(1),
                w.now + days(1),
                &[],
                "sign-arl.crl",
            ),
            shard_crl(w, &a.mid, &[], "mid-shard.crl"),
        ]
    };
    out.push(add(
        18,
        "intermediate missing",
        cms(cades_bb(w, &cert, &[], CONTENT, Some(at))),
        false,
        mid_crls(),
        (Indeterminate, Some(S::NoCertificateChainFound)),
        Some("neither a trust anchor"),
        no_check,
        Py::Agrees,
    ));
    out.push(add(
        19,
        "intermediate included",
        cms(cades_bb(
            w,
            &cert,
            &[a.mid.cert_der().to_vec(), root.clone()],
            CONTENT,
            Some(at),
        )),
        false,
        mid_crls(),
        passed,
        None,
        |r| assert_eq!(r.chain.len(), 3, "{:?}", r.chain),
        Py::Agrees,
    ));

    // 20-21: certificate kind and key usage.
    let (cert, _) = signer(w, &a.auth_root);
    let auth_root = a.auth_root.cert_der().to_vec();
    out.push(Case {
        name: format!("20 user-authentication certificate [{}]", a.label),
        input: cms(cades_bb(
            w,
            &cert,
            std::slice::from_ref(&auth_root),
            CONTENT,
            Some(at),
        )),
        timestamped: false,
        anchors: vec![root.clone(), auth_root.clone()],
        crls: vec![good_crl(), shard_crl(w, &a.auth_root, &[], "auth-shard.crl")],
        indication: Indeterminate,
        sub: Some(S::ChainConstraintsFailure),
        reason: Some("signed with a user-authentication certificate"),
        check: check_auth,
        py: Py::Agrees,
    });
    let wrong_ku = a
        .root
        .issue_custom(CustomSpec {
            serial: &serial(),
            subject: name::end_entity("CORPUSWRONGKU001", &["東京都"]).unwrap(),
            subject_key: &w.signer_spki,
            not_before: w.now - days(30),
            not_after: w.now + days(365),
            extensions: vec![
                extensions::key_usage(KeyUsage(KeyUsages::KeyEncipherment.into())).unwrap(),
                extensions::policy(oid::POLICY_SIGN).unwrap(),
                extensions::jpki_san(&w.facts).unwrap(),
                extensions::crl_distribution_point(
                    &w.ep.url(&Endpoints::shard_crl_path(CertKind::Signature, SHARD)),
                )
                .unwrap(),
            ],
        })
        .unwrap();
    out.push(add(
        21,
        "keyUsage keyEncipherment only",
        cms(cades_bb(w, &wrong_ku, chain, CONTENT, Some(at))),
        false,
        vec![good_crl()],
        (Indeterminate, Some(S::ChainConstraintsFailure)),
        Some("keyUsage lacks"),
        |r| assert_eq!(r.signer.as_ref().unwrap().kind, "sign"),
        Py::Agrees,
    ));

    // 22-23: revocation information missing or stale.
    let (cert, _) = signer(w, &a.root);
    let bb = cades_bb(w, &cert, chain, CONTENT, Some(at));
    out.push(add(
        22,
        "no CRL",
        cms(bb.clone()),
        false,
        vec![],
        (Indeterminate, Some(S::TryLater)),
        Some("no revocation status"),
        no_check,
        Py::Agrees,
    ));
    out.push(add(
        23,
        "CRL expired",
        cms(bb),
        false,
        vec![crl_at(
            w,
            &a.root,
            CrlScope::Shard(SHARD),
            w.now - days(10),
            w.now - days(3),
            &[],
            "sign-shard.crl",
        )],
        (Indeterminate, Some(S::TryLater)),
        Some("expired at"),
        no_check,
        Py::Agrees,
    ));

    // 24: no signing-certificate-v2.
    let attrs = [
        attr_content_type(ID_DATA).unwrap(),
        attr_message_digest(&jpki_pki::x509::sha256(CONTENT)).unwrap(),
        attr_signing_time(at).unwrap(),
    ];
    let signed = signed_attributes_der(&attrs).unwrap();
    let certs = [cert.clone(), root.clone()];
    let sig = SignedDataBuilder::new(&cert, DigestAlg::Sha256, ID_DATA)
        .certificates(&certs)
        .build(&signed, &w.signer_key.sign(&signed).unwrap())
        .unwrap();
    out.push(add(
        24,
        "no signing-certificate-v2",
        cms(sig),
        false,
        vec![good_crl()],
        (Indeterminate, Some(S::NoSigningCertificateFound)),
        Some("no signing-certificate-v2"),
        no_check,
        Py::NotApplicable("pyHanko checks ESS signing-certificate(-v2) only when present"),
    ));
    out
}

// ---------------------------------------------------------------------------------------------
// Running ours

fn verifier(case: &Case) -> Verifier {
    let mut anchors = TrustAnchors::new();
    for a in &case.anchors {
        anchors.add_der(a).unwrap();
    }
    let mut store = CrlStore::new();
    for c in &case.crls {
        store.add(ParsedCrl::from_der(&c.der, &c.source).unwrap());
    }
    Verifier::new(anchors, Arc::new(store))
}

fn verdict(r: &Report) -> String {
    match r.sub_indication {
        Some(s) => format!("{} {}", r.indication.as_str(), s.as_str()),
        None => r.indication.as_str().to_owned(),
    }
}

fn ours(case: &Case, now: OffsetDateTime) -> Report {
    let v = verifier(case);
    let r = match &case.input {
        Input::Cms { sig, content } => v.verify_cades(sig, Some(content), now).unwrap(),
        Input::Pdf(doc) => {
            let mut reports = v.verify_pdf(doc, now).unwrap();
            assert_eq!(reports.len(), 1, "{}", case.name);
            reports.remove(0)
        }
    };
    let got = (r.indication, r.sub_indication);
    assert_eq!(
        got,
        (case.indication, case.sub),
        "{}: {}\n{}",
        case.name,
        verdict(&r),
        r.to_text()
    );
    if let Some(phrase) = case.reason {
        let first = r.reasons.first().map(String::as_str).unwrap_or_default();
        assert!(
            first.contains(phrase),
            "{}: first reason {first:?} lacks {phrase:?}",
            case.name
        );
    }
    (case.check)(&r);
    r
}

/// One verifier for a batch: a signature that lacks its intermediate (case 18) must not spoil the
/// next one by the same signer that carries it (case 19), and every verdict stays the same when
/// each case is validated a second time by the same verifier.
fn one_verifier_for_many(all: &[Case], now: OffsetDateTime) {
    let sig_of = |c: &Case| match &c.input {
        Input::Cms { sig, .. } => sig.clone(),
        Input::Pdf(_) => unreachable!(),
    };
    for label in ["[RSA-2048]", "[P-384]"] {
        let find = |n: &str| {
            all.iter()
                .find(|c| c.name.starts_with(n) && c.name.ends_with(label))
                .expect("case")
        };
        let (missing, included) = (find("18 "), find("19 "));
        let v = verifier(included);
        for (case, again) in [
            (missing, false),
            (included, false),
            (missing, true),
            (included, true),
        ] {
            let r = v.verify_cades(&sig_of(case), Some(CONTENT), now).unwrap();
            assert_eq!(
                (r.indication, r.sub_indication),
                (case.indication, case.sub),
                "{} (shared verifier{}): {}",
                case.name,
                if again { ", second time" } else { "" },
                r.to_text()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// pyHanko

fn interop_required() -> bool {
    std::env::var("JPKI_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("JPKI_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
        PathBuf::from,
    );
    let py = venv.join("bin").join("python");
    let ok = Command::new(&py)
        .args(["-c", "import pyhanko.sign.validation.ades, pyhanko_certvalidator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    assert!(
        !interop_required(),
        "pyHanko not found in {} and JPKI_REQUIRE_INTEROP=1 (run scripts/test.sh to install it)",
        venv.display()
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED the pyHanko comparison: pyHanko not found in {} (set JPKI_REQUIRE_INTEROP=1 to make this \
         a failure)",
        venv.display()
    );
    None
}

#[derive(Debug, Clone)]
struct PyResult {
    status: String,
    sub: String,
    msg: String,
}

/// Writes each case's artefacts under `dir` and runs ades_check.py once over all of them.
fn pyhanko(py: &Path, dir: &Path, cases: &[Case]) -> HashMap<String, PyResult> {
    let mut manifest = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let d = dir.join(format!("case{i:03}"));
        std::fs::create_dir_all(&d).unwrap();
        let write = |name: &str, data: &[u8]| {
            let p = d.join(name);
            std::fs::write(&p, data).unwrap();
            p.to_str().unwrap().to_owned()
        };
        let mut entry = serde_json::json!({
            "name": case.name,
            "mode": if case.timestamped { "time" } else { "basic" },
        });
        match &case.input {
            Input::Cms { sig, content } => {
                entry["kind"] = "cms".into();
                entry["sig"] = write("signature.p7s", sig).into();
                entry["content"] = write("content.bin", content).into();
            }
            Input::Pdf(doc) => {
                entry["kind"] = "pdf".into();
                entry["sig"] = write("signed.pdf", doc).into();
            }
        }
        let roots: Vec<String> = case
            .anchors
            .iter()
            .enumerate()
            .map(|(j, a)| write(&format!("root{j}.cer"), a))
            .collect();
        let crls: Vec<String> = case.crls.iter().map(|c| write(&c.source, &c.der)).collect();
        entry["roots"] = roots.into();
        entry["crls"] = crls.into();
        manifest.push(entry);
    }
    let manifest_path = dir.join("manifest.json");
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ades_check.py");
    let out = Command::new(py)
        .arg(&script)
        .arg(&manifest_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ades_check.py: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut results = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("ades_check.py prints JSON lines");
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        results.insert(
            s("name"),
            PyResult {
                status: s("status"),
                sub: s("sub"),
                msg: s("msg"),
            },
        );
    }
    results
}

fn py_main(ind: Indication) -> &'static str {
    match ind {
        Indication::TotalPassed => "PASSED",
        Indication::TotalFailed => "FAILED",
        Indication::Indeterminate => "INDETERMINATE",
    }
}

// ---------------------------------------------------------------------------------------------
// Case 25: bad input

/// Returns the table entry: how many inputs gave `Err`, and how many cut PDFs gave no passing report.
fn bad_inputs(signed_cms: &[u8], signed_pdf: &[u8], now: OffsetDateTime) -> String {
    let v = Verifier::new(TrustAnchors::new(), Arc::new(CrlStore::new()));
    let one_line = |what: &str, e: &SigError| {
        let shown = e.to_string();
        assert!(!shown.is_empty() && !shown.contains('\n'), "{what}: {shown:?}");
    };
    let mut n = 0;
    let huge_len = [0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01];
    let oversized_cms = vec![0x30; jpki_sig::signed_data::MAX_CMS_LEN + 1];
    let cms_inputs: [(&str, &[u8]); 7] = [
        ("empty CMS", b""),
        ("garbage CMS", b"this is not a CMS signature at all"),
        ("truncated CMS", &signed_cms[..signed_cms.len() / 2]),
        ("CMS cut by one byte", &signed_cms[..signed_cms.len() - 1]),
        ("CMS with a huge length", &huge_len),
        ("oversized CMS", &oversized_cms),
        ("a PDF given as CMS", signed_pdf),
    ];
    for (what, data) in cms_inputs {
        for content in [Some(CONTENT), None] {
            let e = v.verify_cades(data, content, now).expect_err(what);
            one_line(what, &e);
            n += 1;
        }
    }
    // A detached signature without its content.
    let e = v.verify_cades(signed_cms, None, now).unwrap_err();
    one_line("detached without content", &e);
    n += 1;

    let oversized_pdf = vec![b' '; pdf::MAX_PDF_SIZE + 1];
    let pdf_inputs: [(&str, &[u8]); 5] = [
        ("empty PDF", b""),
        ("garbage PDF", b"this is not a PDF"),
        ("PDF header only", b"%PDF-1.7\n"),
        ("a CMS given as PDF", signed_cms),
        ("oversized PDF", &oversized_pdf),
    ];
    for (what, data) in pdf_inputs {
        let e = v.verify_pdf(data, now).expect_err(what);
        one_line(what, &e);
        n += 1;
    }
    // A cut PDF: a cut inside the signature's update leaves the earlier, unsigned revision (a prefix
    // of an incrementally updated file is that revision): no signature; a cut after the signature's
    // /Contents leaves a byte range outside the file: TOTAL_FAILED/FORMAT_FAILURE. Never a pass.
    let mut cut_ok = 0;
    for cut in [
        1,
        10,
        100,
        signed_pdf.len() / 4,
        signed_pdf.len() / 2,
        signed_pdf.len() - 500,
    ] {
        let what = format!("PDF without its last {cut} bytes");
        match v.verify_pdf(&signed_pdf[..signed_pdf.len() - cut], now) {
            Err(e) => {
                one_line(&what, &e);
                n += 1;
            }
            Ok(reports) => {
                assert!(
                    reports.iter().all(|r| r.indication == Indication::TotalFailed),
                    "{what}: {:?}",
                    reports.iter().map(verdict).collect::<Vec<_>>()
                );
                cut_ok += 1;
            }
        }
    }
    format!("Err x{n}; cut PDF not passed x{cut_ok}")
}

// ---------------------------------------------------------------------------------------------
// The test

#[test]
fn corpus_verdicts_agree_with_pyhanko() {
    let w = World::new();
    let authorities = [
        Authority::new(&w, KeyType::Rsa2048, "RSA-2048"),
        Authority::new(&w, KeyType::P384, "P-384"),
    ];
    let all: Vec<Case> = authorities.iter().flat_map(|a| cases(&w, a)).collect();
    assert!(all.len() >= 46, "{} cases", all.len());

    // Ours, always.
    let reports: Vec<Report> = all.iter().map(|c| ours(c, w.now)).collect();
    one_verifier_for_many(&all, w.now);

    // Case 25: bad input.
    let a = &authorities[0];
    let (cert, _) = signer(&w, &a.root);
    let chain = [a.root.cert_der().to_vec()];
    let bad = bad_inputs(
        &cades_bb(&w, &cert, &chain, CONTENT, Some(w.signed_at())),
        &pades(&w, &cert, &chain, w.signed_at(), None),
        w.now,
    );

    // pyHanko, once for all cases.
    let theirs = python().map(|py| {
        let keep = std::env::var_os("JPKI_CORPUS_DIR").map(PathBuf::from);
        let tmp = tempfile::tempdir().unwrap();
        let dir = keep.unwrap_or_else(|| tmp.path().to_path_buf());
        std::fs::create_dir_all(&dir).unwrap();
        pyhanko(&py, &dir, &all)
    });

    // The table, then the comparison.
    let mut table = String::new();
    let mut problems = Vec::new();
    let _ = writeln_table(&mut table, "case", "ours", "pyHanko", "");
    for (case, r) in all.iter().zip(&reports) {
        let (theirs_shown, note) = match theirs.as_ref().map(|t| t.get(&case.name)) {
            None => ("(skipped)".to_owned(), String::new()),
            Some(None) => {
                problems.push(format!("{}: no pyHanko result", case.name));
                ("(missing)".to_owned(), String::new())
            }
            Some(Some(p)) => {
                let shown = format!("{} {}", p.status, p.sub);
                let note = match &case.py {
                    Py::Agrees => {
                        let our_sub = r.sub_indication.map_or("OK", SubIndication::as_str);
                        if p.status != py_main(r.indication) {
                            problems.push(format!(
                                "{}: ours {}, pyHanko {shown} ({})",
                                case.name,
                                verdict(r),
                                p.msg
                            ));
                            String::new()
                        } else if p.sub == our_sub {
                            "agree".to_owned()
                        } else {
                            "agree (other sub-indication)".to_owned()
                        }
                    }
                    Py::Differs(expected) => {
                        if shown != *expected {
                            problems.push(format!(
                                "{}: pyHanko was documented to say {expected}, said {shown} ({})",
                                case.name, p.msg
                            ));
                        }
                        "known difference".to_owned()
                    }
                    Py::NotApplicable(why) => format!("pyHanko n/a: {why}"),
                };
                (shown, note)
            }
        };
        let _ = writeln_table(&mut table, &case.name, &verdict(r), &theirs_shown, &note);
    }
    let _ = writeln_table(
        &mut table,
        "25 garbage/truncated/empty/oversized",
        &bad,
        "n/a",
        "",
    );
    let _ = writeln!(std::io::stderr(), "{table}");
    assert!(problems.is_empty(), "pyHanko disagrees:\n{}", problems.join("\n"));
}

fn writeln_table(out: &mut String, case: &str, ours: &str, theirs: &str, note: &str) -> std::fmt::Result {
    use std::fmt::Write as _;
    writeln!(out, "{case:<52} {ours:<42} {theirs:<42} {note}")
}
