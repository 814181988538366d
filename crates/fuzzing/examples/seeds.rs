//! Writes valid samples of what each fuzz target reads, and edge cases of them (empty, truncated),
//! as DIR/TARGET/seed-NAME:
//!
//!   cargo run -p jpki-fuzzing --example seeds -- fuzz/regressions
//!
//! They seed the fuzzer (scripts/fuzz.sh reads fuzz/regressions/TARGET as a second corpus) so it
//! starts past the outer DER layers, and the regression test replays them through the deep paths.
//! The keys are fresh on every run, so the samples differ from run to run: run it only to add
//! samples, not to refresh the ones committed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use jpki_fuzzing::{ISSUED, NOW, fixtures};
use jpki_model::{RevocationReason, Serial};
use jpki_pki::ocsp::{CertStatus, OcspResponseStatus, SingleStatus, error_response};
use jpki_pki::{CertId, CertIdHash, CrlEntry, CrlScope, CrlSpec, Endpoints, OcspRequest};
use jpki_platform::Statement;
use jpki_sig::pdf::{SignOptions, prepare};
use jpki_sig::tsp::token_from_response;
use time::Duration;

struct Out {
    dir: PathBuf,
    written: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        assert!(jpki_fuzzing::target(target).is_some(), "no target {target}");
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("seed-{name}"));
        std::fs::write(&path, bytes).unwrap();
        println!("{} ({} bytes)", path.display(), bytes.len());
        self.written += 1;
    }

    /// A DER sample, and the same cut in half (a truncated read).
    fn der(&mut self, target: &str, name: &str, bytes: &[u8]) {
        self.put(target, name, bytes);
        self.put(target, &format!("{name}-truncated"), &bytes[..bytes.len() / 2]);
    }
}

/// A one-page PDF with a correct cross-reference table.
fn minimal_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ];
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        pdf.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: seeds DIR");
    let mut out = Out {
        dir: Path::new(&dir).to_owned(),
        written: 0,
    };
    let f = fixtures();
    let endpoints = Endpoints::new("http://127.0.0.1:7700").unwrap();
    for t in jpki_fuzzing::TARGETS.iter().map(|(n, _)| *n) {
        out.put(t, "empty", b"");
    }

    // CRLs: complete (PEM too), shard, delta.
    let entries = [
        CrlEntry {
            serial: Serial::generate([9; 16], 3),
            revoked_at: ISSUED,
            reason: RevocationReason::KeyCompromise,
        },
        CrlEntry {
            serial: Serial::generate([8; 16], 3),
            revoked_at: ISSUED,
            reason: RevocationReason::CertificateHold,
        },
    ];
    let spec = |scope, number| CrlSpec {
        scope,
        number,
        this_update: ISSUED,
        next_update: ISSUED + Duration::days(2),
        endpoints: &endpoints,
    };
    let complete = f.issuer.crl(&spec(CrlScope::Complete, 7), &entries).unwrap();
    out.der("crl", "complete", &complete);
    let pem = format!(
        "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
        base64::engine::general_purpose::STANDARD.encode(&complete)
    );
    out.put("crl", "complete-pem", pem.as_bytes());
    out.der(
        "crl",
        "shard",
        &f.issuer.crl(&spec(CrlScope::Shard(3), 8), &entries).unwrap(),
    );
    let removed = [CrlEntry {
        serial: Serial::generate([8; 16], 3),
        revoked_at: ISSUED,
        reason: RevocationReason::RemoveFromCrl,
    }];
    out.der(
        "crl",
        "delta",
        &f.issuer
            .crl(&spec(CrlScope::Delta { base: 7 }, 9), &removed)
            .unwrap(),
    );

    // OCSP: a request, a signed response with every status, an error response.
    let id = |serial: &Serial, hash| CertId::for_certificate(&f.root, serial.as_be_bytes(), hash).unwrap();
    let good = id(&Serial::generate([1; 16], 3), CertIdHash::Sha1);
    let revoked = id(&entries[0].serial, CertIdHash::Sha256);
    let unknown = id(&Serial::generate([2; 16], 3), CertIdHash::Sha1);
    let request = OcspRequest::build(&[good.clone(), revoked.clone()], Some(&[0x5A; 16])).unwrap();
    out.der("ocsp_request", "two-ids-nonce", &request);
    out.der(
        "ocsp_request",
        "one-id",
        &OcspRequest::build(std::slice::from_ref(&good), None).unwrap(),
    );
    let single = |status| SingleStatus {
        status,
        this_update: ISSUED,
        next_update: Some(ISSUED + Duration::hours(1)),
    };
    let response = f
        .responder
        .respond(
            &[
                (good, single(CertStatus::Good)),
                (
                    revoked,
                    single(CertStatus::Revoked {
                        at: ISSUED,
                        reason: Some(RevocationReason::KeyCompromise),
                    }),
                ),
                (unknown, single(CertStatus::Unknown)),
            ],
            Some(&[0x5A; 16]),
            ISSUED,
        )
        .unwrap();
    out.der("ocsp_response", "three-statuses", &response);
    out.put(
        "ocsp_response",
        "try-later",
        &error_response(OcspResponseStatus::TryLater),
    );

    // Time-stamps: requests, granted replies to the requests tsa_reply checks, a rejection, a token.
    let mut token = Vec::new();
    for (i, req) in f.tsa_requests.iter().enumerate() {
        let der = req.to_der().unwrap();
        out.der("tsa_request", &format!("request-{i}"), &der);
        let reply = f.tsa.respond(&der, NOW, &[0x10, i as u8]);
        token = token_from_response(&reply, req).unwrap();
        out.der("tsa_reply", &format!("granted-{i}"), &reply);
    }
    out.put(
        "tsa_reply",
        "rejection",
        &f.tsa.respond(b"\x30\x00", NOW, &[0x11]),
    );
    out.der("tsa_reply", "token", &token);
    out.der("cms_signature", "tsa-token", &token);
    out.der("consent_statement", "cms-with-signed-attributes", &token);

    // Certificates and keys.
    out.der("certificate", "root", &f.root);
    out.der("certificate", "ocsp-responder", f.responder.cert_der());
    out.der("certificate", "tsa", f.tsa.cert_der());
    let spki = jpki_pki::SigningKey::generate(jpki_pki::KeyType::P384)
        .unwrap()
        .spki_der()
        .unwrap();
    out.der("subject_public_key", "p384", &spki);

    // The consent statement, and JSON API bodies (first byte: the operation).
    out.put(
        "consent_statement",
        "statement",
        &Statement::new("rp-0123456789abcdef", ISSUED).to_bytes(),
    );
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let bodies: [(u8, String); 6] = [
        (
            0,
            format!(r#"{{"certificate":"{}","purpose":"fuzz"}}"#, b64(&f.root)),
        ),
        (
            1,
            format!(r#"{{"certificate":"{}","at_least":18}}"#, b64(&f.root)),
        ),
        (3, format!(r#"{{"certificate":"{}"}}"#, b64(f.tsa.cert_der()))),
        (5, format!(r#"{{"statement":"{}"}}"#, b64(&token))),
        (
            7,
            format!(
                r#"{{"signature":"{}","content":"{}"}}"#,
                b64(&token),
                b64(b"content")
            ),
        ),
        (8, format!(r#"{{"signature":"{}"}}"#, b64(&token))),
    ];
    for (op, body) in bodies {
        let mut input = vec![op];
        input.extend_from_slice(body.as_bytes());
        out.put("api_body", &format!("operation-{op}"), &input);
    }

    // PDFs: unsigned, and signed (the token standing in for a CMS signature).
    let pdf = minimal_pdf();
    out.put("pdf_signatures", "unsigned", &pdf);
    let mut opts = SignOptions::new(ISSUED);
    opts.reserved = 8192;
    let signed = prepare(&pdf, &opts).unwrap().finish(&token).unwrap();
    out.put("pdf_signatures", "signed", &signed);
    out.put("pdf_signatures", "signed-truncated", &signed[..signed.len() - 40]);

    // APDUs and card data.
    let select_jpki = [
        0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01,
    ];
    out.put("apdu", "select-jpki", &select_jpki);
    out.put(
        "apdu",
        "extended-read-binary",
        &[0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00],
    );
    out.put("apdu", "status-word", &[0x90, 0x00]);
    let mut session = select_jpki.to_vec();
    for apdu in [
        &[0xFF, 0xFE, 0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A][..], // SELECT EF 000A (a certificate)
        &[0xFF, 0xFE, 0x00, 0xB0, 0x00, 0x00, 0x04],                 // READ BINARY 4
        &[0xFF, 0xFE, 0x00, 0x20, 0x00, 0x80],                       // VERIFY: PIN status
    ] {
        session.extend_from_slice(apdu);
    }
    out.put("card_transmit", "select-read-verify", &session);
    out.put(
        "card_layout",
        "ber-long-length",
        &[0x5F, 0x29, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
    );
    out.put(
        "card_layout",
        "nested-tlv",
        &[0x7F, 0x21, 0x04, 0x5F, 0x29, 0x01, 0x00],
    );

    // Typed text.
    for (name, text) in [
        ("individual-number", "123456789018"),
        ("serial", "40000312345678901234567890abcdef"),
        ("birth-date", "H01.01.08"),
        ("fullwidth", "ｱｲｳ　山田"),
    ] {
        out.put("model_text", name, text.as_bytes());
    }
    println!("{} files", out.written);
}
