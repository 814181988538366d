//! `jpki sign`, `jpki verify` and `jpki tsa serve` end to end with a card file: CAdES B-B and B-T,
//! PAdES, the time-stamp authority over HTTP (checked by `openssl ts -verify` and `openssl cms
//! -verify`), verdicts after revocation, and one-line errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Jpki, Person, SIGN_PASSWORD, Served, have, minimal_pdf, s};
use serde_json::Value;

/// Runs `jpki --json ARGS` and returns (exit code, parsed stdout, stderr).
fn run_json(j: &Jpki, args: &[&str]) -> (i32, Value, String) {
    let out = j.command().arg("--json").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout of {args:?} is not JSON ({e}): {stderr}"));
    (out.status.code().unwrap(), v, stderr)
}

/// `jpki tsa serve` on a free loopback port, killed on drop.
struct Tsa {
    served: Served,
    url: String,
}

impl Tsa {
    fn start(j: &Jpki) -> Self {
        let served = Served::start(j, &["tsa", "serve"]);
        let url = served.ready["url"].as_str().unwrap().to_owned();
        Self { served, url }
    }

    fn stop(self) -> std::process::ExitStatus {
        self.served.stop()
    }
}

fn verify(j: &Jpki, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    let (code, v, _) = run_json(j, &all);
    (code, v)
}

fn indication(v: &Value) -> (String, String) {
    (
        v["indication"].as_str().unwrap().to_owned(),
        v["sub_indication"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn sign_verify_timestamp_pdf_and_revocation() {
    for key_type in ["rsa2048", "p384"] {
        let j = Jpki::demo(key_type);
        let r = j.add_resident(Person::ADULT);
        let card = j.issue_card(r);
        let card_file = s(&card.card_file).to_owned();
        let doc = j.path("contract.txt");
        std::fs::write(&doc, "I agree to the terms.\n").unwrap();
        let root = j.export_root("sign", "sign-root.pem");

        // B-B, verified by us and by openssl.
        let (code, v, err) = run_json(
            &j,
            &[
                "sign",
                "--card",
                &card_file,
                "--sign-password",
                SIGN_PASSWORD,
                s(&doc),
            ],
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["format"], "CAdES-BASELINE-B");
        let p7s = PathBuf::from(v["out"].as_str().unwrap());
        assert_eq!(p7s, j.path("contract.txt.p7s"));
        let crl = j.publish("crl");
        let (code, v) = verify(&j, &[s(&p7s), "--content", s(&doc), "--crl-dir", s(&crl)]);
        assert_eq!(
            (code, indication(&v)),
            (0, ("TOTAL_PASSED".into(), String::new())),
            "{v:#}"
        );
        assert_eq!(v["signer"]["kind"], "sign");
        assert_eq!(v["signer"]["facts"]["name"], Person::ADULT.name);
        assert_eq!(v["signer"]["facts"]["birth_date"], Person::ADULT.birth);
        assert!(
            v["revocation"]["source"].as_str().unwrap().contains("CRL"),
            "{v:#}"
        );
        if have("openssl") {
            let out = Command::new("openssl")
                .args([
                    "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-out",
                ])
                .arg(j.path("openssl.out"))
                .args(["-in", s(&p7s), "-content", s(&doc), "-CAfile", s(&root)])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl cms -verify: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }

        // Changed content fails; no revocation information is indeterminate.
        let changed = j.path("changed.txt");
        std::fs::write(&changed, "I agree to the terms!\n").unwrap();
        let (code, v) = verify(&j, &[s(&p7s), "--content", s(&changed), "--crl-dir", s(&crl)]);
        assert_eq!(
            (code, indication(&v)),
            (1, ("TOTAL_FAILED".into(), "HASH_FAILURE".into()))
        );
        let (code, v) = verify(&j, &[s(&p7s), "--content", s(&doc)]);
        assert_eq!(
            (code, indication(&v)),
            (3, ("INDETERMINATE".into(), "TRY_LATER".into()))
        );

        // B-T through the authority's TSA over HTTP, and a PAdES-T PDF.
        let tsa = Tsa::start(&j);
        let t_out = j.path("contract-t.p7s");
        let (code, v, err) = run_json(
            &j,
            &[
                "sign",
                "--card",
                &card_file,
                "--sign-password",
                SIGN_PASSWORD,
                "--tsa",
                &tsa.url,
                "--out",
                s(&t_out),
                s(&doc),
            ],
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["format"], "CAdES-BASELINE-T");
        let pdf = j.path("form.pdf");
        std::fs::write(&pdf, minimal_pdf()).unwrap();
        let (code, v, err) = run_json(
            &j,
            &[
                "sign",
                "--card",
                &card_file,
                "--sign-password",
                SIGN_PASSWORD,
                "--tsa",
                &tsa.url,
                "--pdf",
                s(&pdf),
            ],
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["format"], "PAdES-BASELINE-T");
        let signed_pdf = j.path("form.signed.pdf");
        if have("openssl") && have("curl") {
            openssl_ts_verify(&j, &tsa.url, &root);
        }
        assert!(tsa.stop().success(), "tsa serve exits 0 on SIGTERM");
        let crl = j.publish("crl2");
        let (code, v) = verify(&j, &[s(&t_out), "--content", s(&doc), "--crl-dir", s(&crl)]);
        assert_eq!(code, 0, "{v:#}");
        assert_eq!(v["timestamp"]["status"], "valid");
        assert!(v["signing_time"]["proven"].is_string());
        let (code, v) = verify(&j, &[s(&signed_pdf), "--crl-dir", s(&crl)]);
        assert_eq!(code, 0, "{v:#}");
        assert_eq!(v["signatures"][0]["format"], "PAdES-BASELINE-T");

        // After the signature certificate is revoked (the holder moved), the time-stamped signature
        // still passes (made before), the B-B one cannot be placed before the revocation.
        // Revocation times are whole seconds: move on to the next second first.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        j.json(&[
            "resident",
            "move",
            "--resident",
            &r.to_string(),
            "--address",
            "大阪府大阪市北区1-1",
        ]);
        let crl = j.publish("crl3");
        let (code, v) = verify(&j, &[s(&t_out), "--content", s(&doc), "--crl-dir", s(&crl)]);
        assert_eq!(code, 0, "{v:#}");
        assert_eq!(v["revocation"]["status"], "revoked");
        let (code, v) = verify(&j, &[s(&p7s), "--content", s(&doc), "--crl-dir", s(&crl)]);
        assert_eq!(
            (code, indication(&v)),
            (3, ("INDETERMINATE".into(), "REVOKED_NO_POE".into())),
            "{v:#}"
        );
        let text = j.run(&["verify", s(&p7s), "--content", s(&doc), "--crl-dir", s(&crl)]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("INDETERMINATE / REVOKED_NO_POE"), "{text}");
        assert!(text.contains(Person::ADULT.name), "{text}");
    }
}

/// openssl asks our TSA (over HTTP, with curl) and verifies the reply against the signature root.
fn openssl_ts_verify(j: &Jpki, url: &str, root: &Path) {
    let data = j.path("ts-data.txt");
    std::fs::write(&data, "stamp me").unwrap();
    let (q, r) = (j.path("q.tsq"), j.path("r.tsr"));
    let ok = |c: &mut Command, what: &str| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(
        Command::new("openssl").args([
            "ts",
            "-query",
            "-sha256",
            "-cert",
            "-data",
            s(&data),
            "-out",
            s(&q),
        ]),
        "openssl ts -query",
    );
    ok(
        Command::new("curl")
            .args([
                "-sS",
                "-f",
                "--noproxy",
                "*",
                "-H",
                "Content-Type: application/timestamp-query",
            ])
            .arg("--data-binary")
            .arg(format!("@{}", s(&q)))
            .args(["-o", s(r.as_path()), url]),
        "curl to the TSA",
    );
    let tsa_pem = j.path("tsa.pem");
    j.json(&["tsa", "cert", "--out", s(&tsa_pem)]);
    let out = ok(
        Command::new("openssl").args([
            "ts",
            "-verify",
            "-in",
            s(&r),
            "-queryfile",
            s(&q),
            "-CAfile",
            s(root),
            "-untrusted",
            s(&tsa_pem),
        ]),
        "openssl ts -verify",
    );
    assert!(out.contains("Verification: OK"), "{out}");
}

#[test]
fn bad_input_gives_one_line_errors_and_writes_nothing() {
    let j = Jpki::demo("rsa2048");
    let r = j.add_resident(Person::ADULT);
    let card = j.issue_card(r);
    let card_file = s(&card.card_file).to_owned();
    let doc = j.path("doc.txt");
    std::fs::write(&doc, "text").unwrap();
    let one_line = |args: &[&str], code: i32| {
        let out = j.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line, got {err:?}"
        );
        assert!(!err.contains("panicked"), "{err}");
        err.into_owned()
    };

    // Signing: wrong password (the card counts it), missing file, not a PDF, B-T without a TSA, an
    // unreachable TSA, an existing output — none leaves an output file behind.
    let err = one_line(
        &[
            "sign",
            "--card",
            &card_file,
            "--sign-password",
            "WRONG999",
            s(&doc),
        ],
        1,
    );
    assert!(err.contains("tries left"), "{err}");
    one_line(
        &[
            "sign",
            "--card",
            &card_file,
            "--sign-password",
            SIGN_PASSWORD,
            s(&j.path("nope.txt")),
        ],
        2,
    );
    let err = one_line(
        &[
            "sign",
            "--card",
            &card_file,
            "--sign-password",
            SIGN_PASSWORD,
            "--pdf",
            s(&doc),
        ],
        1,
    );
    assert!(err.contains("PDF"), "{err}");
    one_line(
        &[
            "sign",
            "--card",
            &card_file,
            "--sign-password",
            SIGN_PASSWORD,
            "--level",
            "t",
            s(&doc),
        ],
        2,
    );
    one_line(
        &[
            "sign",
            "--card",
            &card_file,
            "--sign-password",
            SIGN_PASSWORD,
            "--tsa",
            "http://127.0.0.1:9/tsa",
            s(&doc),
        ],
        1,
    );
    assert!(!j.path("doc.txt.p7s").exists() && !j.path("doc.signed.pdf").exists());
    j.json(&[
        "sign",
        "--card",
        &card_file,
        "--sign-password",
        SIGN_PASSWORD,
        s(&doc),
    ]);
    one_line(
        &[
            "sign",
            "--card",
            &card_file,
            "--sign-password",
            SIGN_PASSWORD,
            s(&doc),
        ],
        2,
    );

    // Verifying: garbage, empty, truncated, oversized, a PDF without signature, bad trust file.
    let p7s = std::fs::read(j.path("doc.txt.p7s")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage.p7s", b"this is not a signature".to_vec()),
        ("empty.p7s", Vec::new()),
        ("truncated.p7s", p7s[..p7s.len() / 2].to_vec()),
        ("nosig.pdf", minimal_pdf()),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog".to_vec()),
    ];
    for (name, bytes) in cases {
        let f = j.path(name);
        std::fs::write(&f, bytes).unwrap();
        one_line(&["verify", s(&f), "--content", s(&doc)], 2);
    }
    let big = j.path("big.p7s");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(17 * 1024 * 1024)
        .unwrap();
    let err = one_line(&["verify", s(&big), "--content", s(&doc)], 2);
    assert!(err.contains("limit"), "{err}");
    let junk = j.path("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    one_line(
        &[
            "verify",
            s(&j.path("doc.txt.p7s")),
            "--content",
            s(&doc),
            "--trust",
            s(&junk),
        ],
        2,
    );
    one_line(
        &[
            "verify",
            s(&j.path("doc.txt.p7s")),
            "--content",
            s(&doc),
            "--at",
            "yesterday",
        ],
        2,
    );
    // Detached without its content.
    let err = one_line(&["verify", s(&j.path("doc.txt.p7s"))], 2);
    assert!(err.contains("--content"), "{err}");
}

/// The README's main job: `jpki demo` runs end to end, and the contract it signs verifies.
#[test]
fn demo_runs_and_its_signed_contract_verifies() {
    let j = Jpki::new();
    let v = j.json(&["demo"]);
    assert_eq!(v["consistent"], true, "{v:#}");
    let contract = j.data().join("demo-contract.signed.pdf");
    let crl = j.data().join("public").join("crl");
    let (code, v) = verify(&j, &[s(&contract), "--crl-dir", s(&crl)]);
    assert_eq!(code, 0, "{v:#}");
    let sig = &v["signatures"][0];
    assert_eq!(sig["format"], "PAdES-BASELINE-T");
    assert_eq!(
        sig["revocation"]["status"], "revoked",
        "the demo's move revoked it after signing"
    );
}
