//! CA key rollover end to end (`jpki ca rollover`), on SQLite and on PostgreSQL when
//! `JPKI_TEST_POSTGRES` names a server: after a new root generation, certificates of both
//! generations verify with openssl through the link certificates (a relying party trusting only
//! the old root validates new certificates, and the other way round), each generation's CRLs are
//! signed by that generation and list what it issued; a server running through the rollover takes
//! up the new generation without a restart and answers OCSP for both, each through a responder of
//! that generation; and a restore from backup into an empty data directory answers all of it as
//! before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Jpki, Person, have, interop_required, s};

fn der_to_pem(der: &Path) -> PathBuf {
    let pem = der.with_extension("pem");
    let out = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in", s(der), "-out", s(&pem)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    pem
}

/// `openssl verify -CAfile anchor [-untrusted link] cert`: stdout and stderr.
fn verify(anchor: &Path, link: Option<&Path>, cert: &Path) -> (bool, String) {
    let mut c = Command::new("openssl");
    c.args(["verify", "-CAfile", s(anchor)]);
    if let Some(l) = link {
        c.args(["-untrusted", s(l)]);
    }
    let out = c.arg(s(cert)).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains(": OK"), text)
}

/// What relying parties check after a rollover, given the published directory of `j`.
fn checks(j: &Jpki, pub_dir: &Path, old_cert: &Path, new_cert: &Path, revoked: &str) {
    let ca = pub_dir.join("ca");
    let root1 = der_to_pem(&ca.join("sign.cer"));
    let root2 = der_to_pem(&ca.join("sign-g2.cer"));
    let new_with_old = der_to_pem(&ca.join("sign-link-g1-g2.cer"));
    let old_with_new = der_to_pem(&ca.join("sign-link-g2-g1.cer"));
    let (ok, text) = verify(&root1, Some(&new_with_old), new_cert);
    assert!(ok, "old root + new-with-old validates a new certificate: {text}");
    let (ok, text) = verify(&root2, Some(&old_with_new), old_cert);
    assert!(ok, "new root + old-with-new validates an old certificate: {text}");
    assert!(!verify(&root1, None, new_cert).0, "not without the link");
    assert!(!verify(&root2, None, old_cert).0, "not without the link");
    // Each generation's complete CRL is signed by that generation and lists what it revoked.
    for (crl, root, lists) in [("sign.crl", &root1, true), ("sign-g2.crl", &root2, false)] {
        let out = Command::new("openssl")
            .args([
                "crl",
                "-inform",
                "DER",
                "-in",
                s(&pub_dir.join("crl").join(crl)),
                "-CAfile",
                s(root),
                "-noout",
                "-text",
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("verify OK"), "{crl}: {text}");
        assert_eq!(
            text.to_uppercase().contains(&revoked.to_uppercase()),
            lists,
            "{crl} lists {revoked}: {text}"
        );
    }
    assert_eq!(j.json(&["check"])["consistent"], true);
}

/// What a server answers after the rollover: the validity API for both generations, and OCSP
/// for each through a responder its own generation certified (openssl checks that the responder
/// was issued by the issuer the CertID names).
fn answers(
    server: &common::Served,
    key: &str,
    old_cert: &Path,
    new_cert: &Path,
    root1: &Path,
    root2: &Path,
) -> Result<(), String> {
    for (pem, status) in [(old_cert, "revoked"), (new_cert, "good")] {
        let url = format!("http://{}/v1/certificates/validity", server.addr());
        let body = serde_json::json!({ "certificate": std::fs::read_to_string(pem).unwrap() }).to_string();
        let (code, v) = common::post_json(&url, Some(key), &body);
        if (code, v["status"].as_str()) != (200, Some(status)) {
            return Err(format!("validity of {}: {code} {v}", pem.display()));
        }
    }
    for (root, cert, status) in [(root1, old_cert, "revoked"), (root2, new_cert, "good")] {
        let out = common::openssl_ocsp(
            &format!("http://{}/ocsp/sign", server.addr()),
            root,
            cert,
            &["-no_nonce", "-header", &format!("Authorization=Bearer {key}")],
        );
        if !(out.contains("Response verify OK") && out.contains(&format!("Cert Status: {status}"))) {
            return Err(format!("OCSP for {}: {out}", cert.display()));
        }
    }
    Ok(())
}

fn rollover(db: Option<&str>) {
    let j = Jpki::new();
    let mut init = vec!["init", "--demo", "--kdf-iterations", "1000"];
    if let Some(url) = db {
        init.extend(["--db", url]);
    }
    j.json(&init);
    let resident = j.add_resident(Person::ADULT);
    let old = j.issue_card(resident);
    let key = j.json(&["rp", "add", "--name", "Bank", "--allow", "sign-status"])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    // A server running through the rollover.
    let running = common::Served::start(&j, &["serve"]);
    let v = j.json(&["ca", "rollover", "--kdf-iterations", "1000"]);
    let generations: Vec<u64> = v["rollover"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["generation"].as_u64().unwrap())
        .collect();
    assert_eq!(generations, [2, 2]);
    let new = j.issue_card(resident); // supersedes the old card: its certificates go on the gen-1 CRL
    let old_cert = j.export_cert(old.serial("sign").unwrap(), "old-sign.pem");
    let new_cert = j.export_cert(new.serial("sign").unwrap(), "new-sign.pem");
    let pub_dir = j.path("pub");
    j.json(&["crl", "publish", "--out", s(&pub_dir)]);
    let revoked = old.serial("sign").unwrap();
    checks(&j, &pub_dir, &old_cert, &new_cert, revoked);
    let root1 = der_to_pem(&pub_dir.join("ca").join("sign.cer"));
    let root2 = der_to_pem(&pub_dir.join("ca").join("sign-g2.cer"));
    // The running server takes up the new generation: a certificate it issued is answered (the
    // change log names a generation not served yet, which brings the upkeep forward to ≤ 5 s).
    let started = std::time::Instant::now();
    loop {
        if answers(&running, &key, &old_cert, &new_cert, &root1, &root2).is_ok() {
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let why = answers(&running, &key, &old_cert, &new_cert, &root1, &root2).unwrap_err();
            panic!("the running server did not take up generation 2 in 30 s: {why}");
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    println!(
        "running server took up generation 2 in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(running.stop().success());
    // A server started after the rollover answers the same.
    let server = common::Served::start(&j, &["serve"]);
    answers(&server, &key, &old_cert, &new_cert, &root1, &root2).unwrap();
    assert!(server.stop().success());
    // The audit trail names the rollover.
    let audit = j.json(&["audit"]);
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "ca-rollover")
    );

    // Backup, restore into an empty data directory (SQLite), publish from it: the same answers.
    let file = j.path("after-rollover.jpkibak");
    j.json(&["backup", "--out", s(&file)]);
    let passphrase = std::fs::read_to_string(j.data().join("authority-passphrase")).unwrap();
    let r = Jpki::new();
    let out = r
        .command()
        .env("JPKI_AUTHORITY_PASSPHRASE", passphrase.trim())
        .args(["--json", "restore", "--from", s(&file)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r_pub = r.path("pub");
    let out = r
        .command()
        .env("JPKI_AUTHORITY_PASSPHRASE", passphrase.trim())
        .args(["--json", "crl", "publish", "--out", s(&r_pub)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    checks(&r, &r_pub, &old_cert, &new_cert, revoked);
    for serial in [old.serial("sign").unwrap(), new.serial("sign").unwrap()] {
        let a = j.json(&["cert", "show", "--serial", serial]);
        let b = r.json(&["cert", "show", "--serial", serial]);
        assert_eq!((&a["status"], &a["reason"]), (&b["status"], &b["reason"]));
    }
}

#[test]
fn certificates_of_both_generations_verify_through_the_links() {
    if !have("openssl") {
        assert!(!interop_required(), "openssl is required");
        return;
    }
    rollover(None);
}

#[test]
fn rollover_on_postgres() {
    let Some(server) = std::env::var("JPKI_TEST_POSTGRES").ok().filter(|s| !s.is_empty()) else {
        assert!(
            !interop_required(),
            "JPKI_REQUIRE_INTEROP is set but JPKI_TEST_POSTGRES names no server"
        );
        return;
    };
    let url = jpki_db::scratch_postgres(&server, "jpki_rollover_test").unwrap();
    rollover(Some(&url));
}
