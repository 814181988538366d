#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `POST /v1/signatures/verify` and `POST /v1/signatures/augment` of `jpki serve`, through the real
//! binary: a card signs with `jpki sign` (CAdES and PAdES, time-stamped by the served TSA), relying
//! parties ask over HTTP (curl), and what augmentation returns is checked by real tools:
//! `openssl cms -verify` still accepts the augmented .p7s and `openssl cms -cmsout -print` shows the
//! embedded OCSP response; pyHanko validates the augmented PDF (and .p7s) offline from the
//! revocation data they carry alone (`pyhanko_lt.py`); `jpki verify` without `--crl-dir` gives
//! TOTAL_PASSED from it. After the signer moves (a revocation), verify and augment show it.
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::{
    Jpki, Person, SIGN_PASSWORD, Served, have, interop_required, minimal_pdf, post_json, s, venv_python_with,
};
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("a base64 string"))
        .expect("base64")
}

/// `jpki --json verify ARGS…`: exit code and report.
fn jpki_verify(j: &Jpki, args: &[&str]) -> (i32, Value) {
    let out = j
        .command()
        .arg("--json")
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("verify {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

fn indication(v: &Value) -> (&str, &str) {
    (
        v["indication"].as_str().unwrap_or_default(),
        v["sub_indication"].as_str().unwrap_or_default(),
    )
}

/// What a relying party without personal-data must never read about the holder whose signature
/// report (as a personal-data party got it) is `with`: the name and address, and the subject DN
/// and its CN and L= values (identifier, city, prefecture).
fn personal_strings(with: &Value, person: &Person<'_>) -> Vec<String> {
    let subject = with["signer"]["subject"].as_str().expect("the signer's subject");
    let mut out = vec![
        person.name.to_owned(),
        person.address.to_owned(),
        subject.to_owned(),
    ];
    out.extend(person.name.split(' ').map(str::to_owned));
    for part in subject.split(',') {
        if let Some(v) = part.strip_prefix("CN=").or_else(|| part.strip_prefix("L=")) {
            out.push(v.to_owned());
        }
    }
    out
}

/// Fails when any of `secrets` is anywhere in the serialized answer `v`.
fn assert_names_no_one(v: &Value, secrets: &[String]) {
    let text = v.to_string();
    for secret in secrets {
        assert!(!text.contains(secret.as_str()), "{secret:?} in {v:#}");
    }
}

/// pyHanko's offline verdict on `file` from the revocation data it embeds (see pyhanko_lt.py).
fn pyhanko_lt(python: &Path, root: &Path, file: &Path, content: Option<&Path>) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyhanko_lt.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(root).arg(file);
    if let Some(c) = content {
        cmd.arg(c);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "pyhanko_lt.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn signatures_are_verified_and_augmented_by_capability() {
    if !have("curl") {
        return;
    }
    let j = Jpki::demo("rsa2048");
    let resident = j.add_resident(Person::ADULT);
    let card = j.issue_card(resident);
    let card_file = s(&card.card_file).to_owned();
    let rp = |name: &str, allow: &str| {
        j.json(&["rp", "add", "--name", name, "--allow", allow])["api_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let bank = rp("Bank", "signature-verify,augment,personal-data");
    let notary = rp("Notary", "signature-verify");
    let archive = rp("Archive", "augment");
    let checker = rp("Checker", "sign-status");
    // The CRLs where `jpki serve` publishes by default: the TSA's certificate is covered by them.
    j.publish("data/public");
    let server = Served::start(&j, &["serve"]);
    let base = format!("http://{}", server.addr());
    let tsa = format!("{base}/tsa");
    let verify_url = format!("{base}/v1/signatures/verify");
    let augment_url = format!("{base}/v1/signatures/augment");
    let call = |url: &str, key: &str, body: &Value| post_json(url, Some(key), &body.to_string());

    // Sign: CAdES-B-B, CAdES-B-T and PAdES-B-T, with the served TSA.
    let doc = j.path("contract.txt");
    std::fs::write(&doc, "I agree to the terms.\n").unwrap();
    let sign = |args: &[&str]| {
        let mut all = vec!["sign", "--card", &card_file, "--sign-password", SIGN_PASSWORD];
        all.extend_from_slice(args);
        j.json(&all)
    };
    let bb = j.path("contract.bb.p7s");
    sign(&["--out", s(&bb), s(&doc)]);
    let bt = j.path("contract.bt.p7s");
    assert_eq!(
        sign(&["--tsa", &tsa, "--out", s(&bt), s(&doc)])["format"],
        "CAdES-BASELINE-T"
    );
    let form = j.path("form.pdf");
    std::fs::write(&form, minimal_pdf()).unwrap();
    let signed_pdf = j.path("form.signed.pdf");
    assert_eq!(
        sign(&["--tsa", &tsa, "--pdf", "--out", s(&signed_pdf), s(&form)])["format"],
        "PAdES-BASELINE-T"
    );
    let doc_b64 = b64(&std::fs::read(&doc).unwrap());
    let bt_b64 = b64(&std::fs::read(&bt).unwrap());
    let bb_b64 = b64(&std::fs::read(&bb).unwrap());
    let pdf_b64 = b64(&std::fs::read(&signed_pdf).unwrap());

    // Verify: a good signature, with the four facts for personal-data.
    let (code, v) = call(
        &verify_url,
        &bank,
        &json!({ "signature": bt_b64, "content": doc_b64, "purpose": "contract check" }),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(indication(&v), ("TOTAL_PASSED", ""), "{v:#}");
    assert_eq!(v["format"], "CAdES-BASELINE-T");
    assert_eq!(v["signer"]["kind"], "sign");
    assert_eq!(v["signer"]["facts"]["name"], Person::ADULT.name, "{v:#}");
    let secrets = personal_strings(&v, &Person::ADULT);
    assert!(secrets.len() >= 6, "CN and two L= values: {secrets:?}");
    assert_eq!(v["revocation"]["status"], "good");
    assert!(
        v["revocation"]["source"]
            .as_str()
            .unwrap()
            .contains("current status"),
        "{v:#}"
    );
    assert_eq!(v["timestamp"]["status"], "valid", "{v:#}");
    // PEM works too.
    let pem = format!(
        "-----BEGIN CMS-----\n{}\n-----END CMS-----\n",
        bt_b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (code, v) = call(
        &verify_url,
        &bank,
        &json!({ "signature": pem, "content": doc_b64 }),
    );
    assert_eq!((code, indication(&v).0), (200, "TOTAL_PASSED"), "{v}");
    // Without personal-data: the verdict, never a personal datum.
    let (code, v) = call(
        &verify_url,
        &notary,
        &json!({ "signature": bt_b64, "content": doc_b64 }),
    );
    assert_eq!((code, indication(&v).0), (200, "TOTAL_PASSED"), "{v}");
    assert!(v["signer"].get("facts").is_none(), "{v:#}");
    assert!(v["signer"].get("subject").is_none(), "{v:#}");
    assert!(v["chain"][0].is_null(), "{v:#}");
    let text = v.to_string();
    assert!(
        !text.contains("山田") && !text.contains("東京") && !text.contains("千代田"),
        "{v:#}"
    );
    assert_names_no_one(&v, &secrets);
    // Tampered content, tampered signature.
    let (code, v) = call(
        &verify_url,
        &notary,
        &json!({ "signature": bt_b64, "content": b64(b"I agree to nothing.\n") }),
    );
    assert_eq!(
        (code, indication(&v)),
        (200, ("TOTAL_FAILED", "HASH_FAILURE")),
        "{v}"
    );
    assert_names_no_one(&v, &secrets);
    assert!(
        v["revocation"].is_null(),
        "a broken signature tells no status: {v:#}"
    );
    let mut flipped = std::fs::read(&bb).unwrap();
    let at = flipped.len() - 10; // inside the signature value at the end of the SignerInfo
    flipped[at] ^= 0x01;
    let (code, v) = call(
        &verify_url,
        &notary,
        &json!({ "signature": b64(&flipped), "content": doc_b64 }),
    );
    assert_eq!(
        (code, indication(&v)),
        (200, ("TOTAL_FAILED", "SIG_CRYPTO_FAILURE")),
        "{v}"
    );
    assert!(v["revocation"].is_null(), "{v:#}");
    // A PDF: every signature's report.
    let (code, v) = call(&verify_url, &notary, &json!({ "pdf": pdf_b64 }));
    assert_eq!(code, 200, "{v}");
    assert_eq!(indication(&v["signatures"][0]), ("TOTAL_PASSED", ""), "{v:#}");
    assert_eq!(v["signatures"][0]["format"], "PAdES-BASELINE-T");
    assert_names_no_one(&v, &secrets);

    // A signer from another authority (same CA names, other keys): the path fails, and its reason
    // quotes the signer's subject, which a party without personal-data never reads.
    let elsewhere = Jpki::demo("rsa2048");
    let stranger = Person {
        name: "佐藤 花子",
        address: "大阪府大阪市北区梅田1-1",
        birth: "1990-05-05",
        sex: "2",
    };
    let stranger_card = elsewhere.issue_card(elsewhere.add_resident(stranger));
    let foreign = elsewhere.path("foreign.p7s");
    elsewhere.json(&[
        "sign",
        "--card",
        s(&stranger_card.card_file),
        "--sign-password",
        SIGN_PASSWORD,
        "--out",
        s(&foreign),
        s(&doc),
    ]);
    let foreign_b64 = b64(&std::fs::read(&foreign).unwrap());
    let body = json!({ "signature": foreign_b64, "content": doc_b64 });
    let (code, with) = call(&verify_url, &bank, &body);
    assert_eq!(code, 200, "{with}");
    assert_eq!(
        indication(&with),
        ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),
        "{with:#}"
    );
    let foreign_secrets = personal_strings(&with, &stranger);
    let subject = with["signer"]["subject"].as_str().unwrap();
    assert!(
        with["reasons"].to_string().contains(subject),
        "the reason quotes the subject (for personal-data): {with:#}"
    );
    let (code, v) = call(&verify_url, &notary, &body);
    assert_eq!(code, 200, "{v}");
    assert_eq!(indication(&v), indication(&with), "{v:#}");
    assert_names_no_one(&v, &foreign_secrets);
    assert!(
        v["reasons"][0].as_str().unwrap().contains("(the signer)"),
        "{v:#}"
    );
    // Not ours: not augmented either.
    let (code, v) = call(&augment_url, &archive, &json!({ "signature": foreign_b64 }));
    assert_eq!(code, 422, "{v}");
    drop(elsewhere);

    // Capabilities.
    let (code, v) = call(
        &verify_url,
        &checker,
        &json!({ "signature": bt_b64, "content": doc_b64 }),
    );
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("signature-verify"), "{v}");
    let (code, v) = call(&augment_url, &notary, &json!({ "signature": bt_b64 }));
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("augment"), "{v}");
    let (code, _) = call(&verify_url, &archive, &json!({ "pdf": pdf_b64 }));
    assert_eq!(code, 403);

    // Bad input: 400 with one error line; never a 5xx.
    for (url, body) in [
        (&verify_url, json!({})),
        (&verify_url, json!({ "signature": "bm90IGEgQ01T" })),
        (&verify_url, json!({ "signature": "%%%" })),
        (&verify_url, json!({ "signature": bt_b64 })), // detached, no content
        (&verify_url, json!({ "pdf": b64(b"not a pdf") })),
        (&verify_url, json!({ "pdf": b64(b"%PDF-1.7 garbage") })),
        (&verify_url, json!({ "signature": bt_b64, "pdf": pdf_b64 })),
        (&verify_url, json!({ "pdf": pdf_b64, "content": doc_b64 })),
        (&verify_url, json!({ "signature": bt_b64, "extra": 1 })),
        (&augment_url, json!({ "signature": "bm90IGEgQ01T" })),
        (&augment_url, json!({ "signature": bt_b64, "content": doc_b64 })),
        (&augment_url, json!({ "pdf": b64(b"%PDF-1.7 garbage") })),
    ] {
        let (code, v) = call(url, &bank, &body);
        assert_eq!(code, 400, "{body} → {v}");
        let e = v["error"].as_str().unwrap();
        assert!(!e.contains('\n'), "{e}");
    }
    let (code, _) = post_json(&verify_url, Some(&bank), "{");
    assert_eq!(code, 400);
    // An unsigned PDF is well-formed but has nothing to verify or augment.
    for url in [&verify_url, &augment_url] {
        let (code, v) = call(url, &bank, &json!({ "pdf": b64(&minimal_pdf()) }));
        assert_eq!(code, 422, "{v}");
    }
    // Size: up to 8 MiB of JSON for these two, 64 KiB for the others.
    let big = json!({ "pdf": "A".repeat(8 * 1024 * 1024) }).to_string();
    let (code, v) = post_json(&verify_url, Some(&bank), &big);
    assert_eq!(code, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("8 MiB"), "{v}");
    let (code, _) = post_json(&augment_url, Some(&bank), &big);
    assert_eq!(code, 413);
    // A 1 MiB request is fine here (it is garbage, so 400), and too large elsewhere.
    let mid = json!({ "pdf": "A".repeat(1024 * 1024) }).to_string();
    assert_eq!(post_json(&verify_url, Some(&bank), &mid).0, 400);
    let validity_url = format!("{base}/v1/certificates/validity");
    let (code, v) = post_json(&validity_url, Some(&bank), &mid);
    assert_eq!(code, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("64 KiB"), "{v}");

    // Only a signature that verifies is augmented: a signature value that does not verify with the
    // certificate, or a PDF changed after signing, gets 422 and why, and no OCSP response.
    let (code, v) = call(&augment_url, &archive, &json!({ "signature": b64(&flipped) }));
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("SIG_CRYPTO_FAILURE"), "{v}");
    let mut changed = std::fs::read(&signed_pdf).unwrap();
    let at = changed
        .windows(b"/MediaBox".len())
        .position(|w| w == b"/MediaBox")
        .unwrap();
    changed[at + 1] = b'm';
    let (code, v) = call(&augment_url, &archive, &json!({ "pdf": b64(&changed) }));
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("HASH_FAILURE"), "{v}");

    // Augment the CAdES-B-T signature to B-LT.
    let (code, v) = call(&augment_url, &archive, &json!({ "signature": bt_b64 }));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["embedded"]["ocsp_responses"], 1, "{v}");
    assert!(v["embedded"]["crls"].as_u64().unwrap() >= 1, "the TSA's CRL: {v}");
    let lt = j.path("contract.lt.p7s");
    std::fs::write(&lt, unb64(&v["signature"])).unwrap();
    // jpki verify, without --crl-dir: the embedded data answers.
    let (code, r) = jpki_verify(&j, &[s(&lt), "--content", s(&doc)]);
    assert_eq!((code, indication(&r)), (0, ("TOTAL_PASSED", "")), "{r:#}");
    assert_eq!(r["format"], "CAdES-BASELINE-LT");
    assert!(
        r["revocation"]["source"]
            .as_str()
            .unwrap()
            .contains("OCSP response embedded"),
        "{r:#}"
    );
    assert_eq!(r["timestamp"]["status"], "valid", "{r:#}");
    let (code, r) = jpki_verify(&j, &[s(&bt), "--content", s(&doc)]);
    assert_eq!(
        (code, indication(&r)),
        (3, ("INDETERMINATE", "TRY_LATER")),
        "without the augmentation there is nothing to go on: {r:#}"
    );
    // The augmented signature verifies over the API too.
    let (code, v) = call(
        &verify_url,
        &notary,
        &json!({ "signature": b64(&std::fs::read(&lt).unwrap()), "content": doc_b64 }),
    );
    assert_eq!((code, indication(&v).0), (200, "TOTAL_PASSED"), "{v}");
    let root = j.export_root("sign", "sign-root.pem");
    if have("openssl") {
        let out = Command::new("openssl")
            .args([
                "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-out",
            ])
            .arg(j.path("openssl.out"))
            .args(["-in", s(&lt), "-content", s(&doc), "-CAfile", s(&root)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl cms -verify of the augmented signature: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("openssl")
            .args(["cms", "-cmsout", "-print", "-inform", "DER", "-in", s(&lt)])
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(printed.contains("1.3.6.1.5.5.7.16.2"), "{printed}");
        assert!(printed.contains("Basic OCSP Response"), "{printed}");
        assert!(printed.contains("version: 5"), "{printed}");
    }

    // Augment the PDF: a DSS in an incremental update.
    let (code, v) = call(&augment_url, &bank, &json!({ "pdf": pdf_b64 }));
    assert_eq!(code, 200, "{v}");
    let lt_pdf = j.path("form.lt.pdf");
    let lt_bytes = unb64(&v["pdf"]);
    assert!(lt_bytes.starts_with(&std::fs::read(&signed_pdf).unwrap()));
    std::fs::write(&lt_pdf, &lt_bytes).unwrap();
    let (code, r) = jpki_verify(&j, &[s(&lt_pdf)]);
    let first = &r["signatures"][0];
    assert_eq!((code, indication(first)), (0, ("TOTAL_PASSED", "")), "{r:#}");
    assert_eq!(first["format"], "PAdES-BASELINE-LT");
    match venv_python_with("pyhanko") {
        Some(python) => {
            let v = pyhanko_lt(&python, &root, &lt_pdf, None);
            assert_eq!(v["status"], "PASSED", "pyHanko on the DSS: {v}");
            // pyHanko's own PAdES-LTA validation reads the DSS and passes the validation at the
            // current time; without a document time-stamp it then finds no proof of existence
            // of the DSS contents for its past validation (that would take B-LTA).
            assert_eq!(v["lta"]["sub"], "NO_POE", "{v}");
            let control = pyhanko_lt(&python, &root, &signed_pdf, None);
            assert_eq!(control["status"], "INDETERMINATE", "without the DSS: {control}");
            assert_eq!(
                control["lta"]["sub"], "CERTIFICATE_CHAIN_GENERAL_FAILURE",
                "{control}"
            );
            let v = pyhanko_lt(&python, &root, &lt, Some(&doc));
            assert_eq!(v["status"], "PASSED", "pyHanko on the CMS crls: {v}");
            let control = pyhanko_lt(&python, &root, &bt, Some(&doc));
            assert_eq!(control["status"], "INDETERMINATE", "{control}");
        }
        None => {
            assert!(
                !interop_required(),
                "pyHanko is required (JPKI_REQUIRE_INTEROP=1)"
            );
            eprintln!("skipping the pyHanko checks: no .venv with pyhanko");
        }
    }

    // The signer moves: the signature certificate is revoked, and the API knows within a second.
    // (A second's wait first: the time-stamp must precede the revocation's whole second.)
    std::thread::sleep(Duration::from_millis(1100));
    j.json(&[
        "resident",
        "move",
        "--resident",
        &resident.to_string(),
        "--address",
        "大阪府大阪市北区1-1",
    ]);
    std::thread::sleep(Duration::from_millis(700));
    let (code, v) = call(
        &verify_url,
        &notary,
        &json!({ "signature": bb_b64, "content": doc_b64 }),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(indication(&v), ("INDETERMINATE", "REVOKED_NO_POE"), "{v:#}");
    assert_eq!(v["revocation"]["status"], "revoked");
    assert_eq!(v["revocation"]["reason"], "AffiliationChanged", "{v:#}");
    // A broken signature says nothing of it.
    for body in [
        json!({ "signature": bb_b64, "content": b64(b"I agree to nothing.\n") }),
        json!({ "signature": b64(&flipped), "content": doc_b64 }),
    ] {
        let (code, v) = call(&verify_url, &bank, &body);
        assert_eq!((code, indication(&v).0), (200, "TOTAL_FAILED"), "{v}");
        assert!(v["revocation"].is_null(), "{v:#}");
        let text = v.to_string();
        assert!(
            !text.contains("revoked") && !text.contains("AffiliationChanged"),
            "{v:#}"
        );
    }
    // Time-stamped before the revocation: still passed, with a warning.
    let (code, v) = call(
        &verify_url,
        &notary,
        &json!({ "signature": bt_b64, "content": doc_b64 }),
    );
    assert_eq!((code, indication(&v).0), (200, "TOTAL_PASSED"), "{v:#}");
    assert_eq!(v["revocation"]["status"], "revoked");
    assert!(!v["warnings"].as_array().unwrap().is_empty(), "{v:#}");
    // Augmenting now embeds the revocation, which `jpki verify` then reads.
    let (code, v) = call(&augment_url, &archive, &json!({ "signature": bb_b64 }));
    assert_eq!(code, 200, "{v}");
    let revoked = j.path("contract.revoked.p7s");
    std::fs::write(&revoked, unb64(&v["signature"])).unwrap();
    let (code, r) = jpki_verify(&j, &[s(&revoked), "--content", s(&doc)]);
    assert_eq!(
        (code, indication(&r)),
        (3, ("INDETERMINATE", "REVOKED_NO_POE")),
        "{r:#}"
    );
    assert_eq!(r["revocation"]["status"], "revoked");
    server.stop();
}
