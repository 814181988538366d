//! Interoperability: the real `jpki` binary against real third-party tools.
//!
//! * `openssl verify` accepts both certificate kinds against their roots, and with `-crl_check`
//!   finds revoked certificates in both the complete CRL and the shard CRL the certificate's
//!   CRL DP names; `openssl crl -text` shows the right reasons. Both authority key types.
//! * pkilint (RFC 5280 linter from PyPI) finds no ERROR or FATAL in roots, both end-entity kinds,
//!   complete, shard and delta CRLs and the ARLs, for both key types; WARNING-level findings are
//!   printed and written to `target/tmp/pkilint-warnings-<key type>.txt`.
//! * The signature certificate's subjectAltName carries the basic four information (era digit
//!   included), as both `jpki cert show` and openssl decode it; the authentication certificate
//!   carries no personal data at all.
//! * Residents under 15 get no signature certificate.
//! * Bad input: one-line errors naming the field, exit 2 (usage) or 1 (failure), nothing written.
//! * Every command's `--help` exits 0.
//!
//! Tests needing openssl or pkilint print a message and pass when the tool is missing, unless
//! `JPKI_REQUIRE_INTEROP=1`, which makes a missing tool a failure. pkilint is looked for in
//! `$JPKI_VENV/bin`, then on `PATH`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Jpki, Person, describe, stderr, stdout};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Finding the tools

fn interop_required() -> bool {
    std::env::var("JPKI_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// `Some(path)` of a usable tool, `None` (after saying why) to skip; panics instead of skipping
/// when `JPKI_REQUIRE_INTEROP=1`.
fn tool_or_skip(test: &str, what: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    match found {
        Some(p) => Some(p),
        None if interop_required() => {
            panic!("{test}: {what} not found and JPKI_REQUIRE_INTEROP=1 (run scripts/test.sh to install it)")
        }
        None => {
            // Straight to the process's stderr, past the test harness's capture, so that the
            // skip shows in a normal `cargo test` run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {what} not found (install it, or run scripts/test.sh; set JPKI_REQUIRE_INTEROP=1 to make this a failure)"
            );
            None
        }
    }
}

fn on_path(exe: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(exe))
        .find(|p| p.is_file())
}

/// The openssl CLI, if it runs.
fn openssl(test: &str) -> Option<Openssl> {
    let found = on_path("openssl").filter(|p| {
        Command::new(p)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    tool_or_skip(test, "the openssl CLI", found).map(Openssl)
}

/// pkilint's `lint_pkix_cert` and `lint_crl`.
fn pkilint(test: &str) -> Option<Pkilint> {
    let find = |exe: &str| -> Option<PathBuf> {
        match std::env::var_os("JPKI_VENV") {
            Some(venv) => Some(PathBuf::from(venv).join("bin").join(exe)).filter(|p| p.is_file()),
            None => on_path(exe),
        }
    };
    let found = find("lint_pkix_cert").zip(find("lint_crl"));
    let what = "pkilint (lint_pkix_cert and lint_crl in $JPKI_VENV/bin or on PATH)";
    let cert = tool_or_skip(test, what, found.as_ref().map(|(c, _)| c.clone()))?;
    let (_, crl) = found?;
    Some(Pkilint { cert, crl })
}

#[derive(Debug)]
struct Openssl(PathBuf);

impl Openssl {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.0).args(args).output().expect("run openssl")
    }

    /// Runs openssl and asserts exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "openssl failed: {}",
            show("openssl", args, &out)
        );
        stdout(&out)
    }

    /// `openssl verify [-crl_check -CRLfile CRL] -CAfile ROOT CERT`.
    fn verify(&self, root: &Path, cert: &Path, crl: Option<&Path>) -> Output {
        let mut args = vec!["verify"];
        if let Some(crl) = crl {
            args.extend(["-crl_check", "-CRLfile", s(crl)]);
        }
        args.extend(["-CAfile", s(root), s(cert)]);
        self.run(&args)
    }

    fn assert_verifies(&self, root: &Path, cert: &Path, crl: Option<&Path>) {
        let out = self.verify(root, cert, crl);
        assert!(
            out.status.success() && stdout(&out).contains(": OK"),
            "openssl verify should accept {} (CRL {crl:?}): {}",
            cert.display(),
            show("openssl verify", &[], &out)
        );
    }

    fn assert_revoked(&self, root: &Path, cert: &Path, crl: &Path) {
        let out = self.verify(root, cert, Some(crl));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            !out.status.success() && all.contains("certificate revoked"),
            "openssl verify -crl_check should report {} revoked by {}: {}",
            cert.display(),
            crl.display(),
            show("openssl verify", &[], &out)
        );
    }

    /// Converts a DER CRL to PEM next to it (`X.crl` → `X.crl.pem`).
    fn crl_pem(&self, der: &Path) -> PathBuf {
        assert!(der.is_file(), "{} was not published", der.display());
        let pem = PathBuf::from(format!("{}.pem", der.display()));
        self.ok(&["crl", "-inform", "DER", "-in", s(der), "-out", s(&pem)]);
        pem
    }

    /// `openssl crl -text` of a PEM CRL.
    fn crl_text(&self, pem: &Path) -> String {
        self.ok(&["crl", "-in", s(pem), "-noout", "-text"])
    }
}

#[derive(Debug)]
struct Pkilint {
    cert: PathBuf,
    crl: PathBuf,
}

/// What pkilint lints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lint {
    Cert,
    Crl,
    Arl,
}

impl Pkilint {
    fn run(&self, what: Lint, severity: &str, file: &Path) -> Output {
        let mut c = match what {
            Lint::Cert => Command::new(&self.cert),
            Lint::Crl | Lint::Arl => Command::new(&self.crl),
        };
        c.args(["lint", "-s", severity]);
        match what {
            Lint::Cert => {}
            Lint::Crl => {
                c.args(["-t", "CRL", "-p", "PKIX"]);
            }
            Lint::Arl => {
                c.args(["-t", "ARL", "-p", "PKIX"]);
            }
        }
        c.arg(file).output().expect("run pkilint")
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn show(what: &str, args: &[&str], out: &Output) -> String {
    format!(
        "`{what} {}` exited {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        args.join(" "),
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

// ---------------------------------------------------------------------------------------------
// Reading openssl's text

/// Serial → reason text ("Key Compromise", …; "(none)" without a reason code) of every entry in
/// `openssl crl -text` output. Serials are lower-case hex without leading zeros.
fn crl_reasons(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if let Some(serial) = t.strip_prefix("Serial Number:") {
            let serial = norm_serial(serial);
            map.insert(serial.clone(), "(none)".to_owned());
            current = Some(serial);
        } else if t.starts_with("X509v3 CRL Reason Code") {
            let reason = lines.next().unwrap_or_default().trim().to_owned();
            if let Some(c) = &current {
                map.insert(c.clone(), reason);
            }
        } else if t.starts_with("Signature Algorithm") && !map.is_empty() {
            current = None;
        }
    }
    map
}

fn norm_serial(s: &str) -> String {
    let s = s.trim().replace(':', "").to_ascii_lowercase();
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".to_owned()
    } else {
        t.to_owned()
    }
}

/// The URI of the certificate's CRL distribution point, as openssl reads it.
fn crl_dp_uri(ossl: &Openssl, cert: &Path) -> String {
    let text = ossl.ok(&["x509", "-in", s(cert), "-noout", "-ext", "crlDistributionPoints"]);
    let uris: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("URI:"))
        .collect();
    assert_eq!(
        uris.len(),
        1,
        "one CRL DP URI expected in {}:\n{text}",
        cert.display()
    );
    uris[0].to_owned()
}

/// The file under the publish directory that a certificate's CRL DP URL names.
fn shard_crl_file(ossl: &Openssl, cert: &Path, public_url: &str, published: &Path) -> PathBuf {
    let uri = crl_dp_uri(ossl, cert);
    let rel = uri
        .strip_prefix(public_url.trim_end_matches('/'))
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or_else(|| panic!("CRL DP {uri} is not under the public URL {public_url}"));
    let f = published.join(rel);
    assert!(
        f.is_file(),
        "the CRL the certificate names ({uri}) was not published at {}",
        f.display()
    );
    f
}

// ---------------------------------------------------------------------------------------------
// openssl verify, revocation and CRL reasons

fn openssl_verify_and_revocation(key_type: &str) {
    let test = format!("openssl_verify_and_revocation_{key_type}");
    let Some(ossl) = openssl(&test) else { return };
    let j = Jpki::new();
    let init = j.init_demo(key_type);
    assert_eq!(init["key_type"], key_type, "init reports the key type");
    let public_url = init["public_url"].as_str().expect("public_url").to_owned();

    let compromised = j.add_resident(Person {
        name: "佐藤 花子",
        address: "大阪府大阪市北区梅田1-1",
        birth: "1975-06-30",
        sex: "2",
    });
    let mover = j.add_resident(Person {
        name: "鈴木 一郎",
        address: "北海道札幌市中央区北1条西2丁目",
        birth: "1990-12-01",
        sex: "1",
    });
    let keeper = j.add_resident(Person::ADULT);
    let (c1, c2, c3) = (
        j.issue_card(compromised),
        j.issue_card(mover),
        j.issue_card(keeper),
    );

    let roots: BTreeMap<&str, PathBuf> = [
        ("sign", j.export_root("sign", "root-sign.pem")),
        ("auth", j.export_root("auth", "root-auth.pem")),
    ]
    .into();
    let other = |k: &str| if k == "sign" { "auth" } else { "sign" };

    // Every certificate verifies against its own root, and not against the other one.
    let mut pem: BTreeMap<String, (&str, PathBuf)> = BTreeMap::new();
    for c in [&c1, &c2, &c3] {
        for kind in ["sign", "auth"] {
            let serial = c
                .serial(kind)
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("card {} lacks a {kind} certificate", c.card_id));
            let f = j.export_cert(&serial, &format!("{serial}.pem"));
            ossl.assert_verifies(&roots[kind], &f, None);
            let cross = ossl.verify(&roots[other(kind)], &f, None);
            assert!(
                !cross.status.success(),
                "a {kind} certificate must not verify against the {} root",
                other(kind)
            );
            pem.insert(serial, (kind, f));
        }
    }
    let sign1 = c1.sign_serial.clone().expect("sign");
    let sign2 = c2.sign_serial.clone().expect("sign");
    let sign3 = c3.sign_serial.clone().expect("sign");

    // Events: a key compromise, a hold, and a move (signature certificate → affiliationChanged).
    let r = j.json(&["revoke", "--serial", &sign1, "--reason", "key-compromise"]);
    assert_eq!(r["status"], "revoked", "{r}");
    let r = j.json(&[
        "revoke",
        "--serial",
        &c1.auth_serial,
        "--reason",
        "certificate-hold",
    ]);
    assert_eq!(r["status"], "hold", "{r}");
    let moved = j.json(&[
        "resident",
        "move",
        "--resident",
        &mover.to_string(),
        "--address",
        "北海道函館市新川町1-1",
    ]);
    let changed: Vec<&str> = moved["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .filter_map(|c| c["serial"].as_str())
        .collect();
    assert_eq!(
        changed,
        [sign2.as_str()],
        "a move revokes exactly the signature certificate: {moved}"
    );

    let published = j.publish("pub");
    let revoked = [
        (sign1.as_str(), "Key Compromise"),
        (c1.auth_serial.as_str(), "Certificate Hold"),
        (sign2.as_str(), "Affiliation Changed"),
    ];
    for (serial, reason) in revoked {
        let (kind, cert) = &pem[serial];
        let complete = ossl.crl_pem(&published.join(format!("crl/{kind}.crl")));
        let shard_der = shard_crl_file(&ossl, cert, &public_url, &published);
        assert!(
            shard_der.starts_with(published.join("crl").join(kind)),
            "the CRL DP names a shard, not the complete CRL: {}",
            shard_der.display()
        );
        let shard = ossl.crl_pem(&shard_der);
        for crl in [&complete, &shard] {
            ossl.assert_revoked(&roots[kind], cert, crl);
            let text = ossl.crl_text(crl);
            let reasons = crl_reasons(&text);
            assert_eq!(
                reasons.get(&norm_serial(serial)).map(String::as_str),
                Some(reason),
                "{} should list {serial} with reason {reason}:\n{text}",
                crl.display()
            );
        }
        let shard_text = ossl.crl_text(&shard);
        assert!(
            shard_text.contains("Issuing Distribution Point"),
            "a shard CRL carries an issuingDistributionPoint:\n{shard_text}"
        );
    }

    // Still-valid certificates pass with -crl_check against both CRLs that cover them.
    for serial in [&c2.auth_serial, &sign3, &c3.auth_serial] {
        let (kind, cert) = &pem[serial.as_str()];
        let complete = ossl.crl_pem(&published.join(format!("crl/{kind}.crl")));
        let shard = ossl.crl_pem(&shard_crl_file(&ossl, cert, &public_url, &published));
        ossl.assert_verifies(&roots[kind], cert, Some(&complete));
        ossl.assert_verifies(&roots[kind], cert, Some(&shard));
    }
}

#[test]
fn openssl_verify_and_revocation_rsa2048() {
    openssl_verify_and_revocation("rsa2048");
}

#[test]
fn openssl_verify_and_revocation_p384() {
    openssl_verify_and_revocation("p384");
}

// ---------------------------------------------------------------------------------------------
// pkilint

fn pkilint_clean(key_type: &str) {
    let test = format!("pkilint_clean_{key_type}");
    let Some(lint) = pkilint(&test) else { return };
    let j = Jpki::demo(key_type);
    let a = j.add_resident(Person::ADULT);
    let b = j.add_resident(Person {
        name: "𠮷田 花子",
        address: "京都府京都市左京区吉田本町",
        birth: "1999-03-31",
        sex: "2",
    });
    let (c1, c2) = (j.issue_card(a), j.issue_card(b));
    let sign1 = c1.sign_serial.clone().expect("sign");

    // First publication: a revocation and two holds (card reported lost).
    j.json(&["revoke", "--serial", &sign1, "--reason", "key-compromise"]);
    j.json(&["card", "report-lost", "--card-id", &c2.card_id]);
    let published = j.publish("pub");
    for kind in ["sign", "auth"] {
        assert!(
            !published.join(format!("crl/{kind}-delta.crl")).exists(),
            "no delta CRL before there is a base"
        );
    }
    // Second publication: the holds are lifted (removeFromCRL in the delta) and one more revocation.
    j.json(&["card", "found", "--card-id", &c2.card_id]);
    j.json(&[
        "revoke",
        "--serial",
        &c1.auth_serial,
        "--reason",
        "cessation-of-operation",
    ]);
    let published = j.publish("pub");

    let mut objects: Vec<(String, Lint, PathBuf)> = vec![
        (
            "sign root".into(),
            Lint::Cert,
            j.export_root("sign", "root-sign.pem"),
        ),
        (
            "auth root".into(),
            Lint::Cert,
            j.export_root("auth", "root-auth.pem"),
        ),
        (
            "signature certificate".into(),
            Lint::Cert,
            j.export_cert(&sign1, "sign-ee.pem"),
        ),
        (
            "authentication certificate".into(),
            Lint::Cert,
            j.export_cert(&c1.auth_serial, "auth-ee.pem"),
        ),
        (
            "signature certificate (substituted character)".into(),
            Lint::Cert,
            j.export_cert(c2.sign_serial.as_deref().expect("sign"), "sign-ee-2.pem"),
        ),
    ];
    for kind in ["sign", "auth"] {
        let shard = j.cert_show(if kind == "sign" { &sign1 } else { &c1.auth_serial })["crl_urls"][0]
            .as_str()
            .expect("crl_urls")
            .rsplit_once(&format!("/crl/{kind}/"))
            .map(|(_, f)| published.join("crl").join(kind).join(f))
            .expect("shard URL");
        for (what, t, f) in [
            (
                "complete CRL",
                Lint::Crl,
                published.join(format!("crl/{kind}.crl")),
            ),
            ("shard CRL", Lint::Crl, shard),
            (
                "delta CRL",
                Lint::Crl,
                published.join(format!("crl/{kind}-delta.crl")),
            ),
            ("ARL", Lint::Arl, published.join(format!("crl/{kind}-arl.crl"))),
        ] {
            assert!(f.is_file(), "{kind} {what} not published at {}", f.display());
            objects.push((format!("{kind} {what}"), t, f));
        }
    }

    // Sanity check that pkilint really parses our files: the end-entity certificate gets the
    // INFO finding every SKI computed by method 1 gets.
    let info = lint.run(Lint::Cert, "INFO", &objects[2].2);
    assert!(
        stdout(&info).contains("pkix."),
        "pkilint should report at least an INFO finding: {}",
        show("lint_pkix_cert lint -s INFO", &[], &info)
    );

    let mut report = format!("pkilint WARNING-level findings, {key_type} authority\n");
    let mut errors = Vec::new();
    for (what, t, f) in &objects {
        let out = lint.run(*t, "ERROR", f);
        let text = stdout(&out);
        let bad_line = text
            .lines()
            .any(|l| l.contains("(ERROR)") || l.contains("(FATAL)"));
        if out.status.code() != Some(0) || bad_line {
            errors.push(format!(
                "{what} ({}): {}",
                f.display(),
                show("pkilint -s ERROR", &[], &out)
            ));
        }
        let warn = lint.run(*t, "WARNING", f);
        let findings = stdout(&warn).trim().to_owned();
        report += &format!(
            "== {what} [{}]: {}\n",
            f.file_name().and_then(|n| n.to_str()).unwrap_or(""),
            if findings.is_empty() {
                "none".to_owned()
            } else {
                format!("\n{findings}")
            }
        );
    }
    eprintln!("{report}");
    let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::create_dir_all(target_tmp);
    let _ = std::fs::write(
        target_tmp.join(format!("pkilint-warnings-{key_type}.txt")),
        &report,
    );
    assert!(
        errors.is_empty(),
        "pkilint ERROR/FATAL findings:\n{}",
        errors.join("\n")
    );
}

#[test]
fn pkilint_clean_rsa2048() {
    pkilint_clean("rsa2048");
}

#[test]
fn pkilint_clean_p384() {
    pkilint_clean("p384");
}

// ---------------------------------------------------------------------------------------------
// The subjectAltName of the signature certificate; nothing personal in the authentication one

/// The six JPKI otherNames as openssl prints them, in order: (OID, value).
fn openssl_jpki_san(ossl: &Openssl, cert: &Path) -> Vec<(String, String)> {
    let text = ossl.ok(&["x509", "-in", s(cert), "-noout", "-ext", "subjectAltName"]);
    let body = text.split_once("Subject Alternative Name").map_or("", |(_, b)| b);
    let mut out = Vec::new();
    for part in body.split("othername:").skip(1) {
        let part = part.trim().trim_end_matches(',').trim();
        // "1.2.392.200149.8.5.5.1::山田 太郎" (openssl 3.0); tolerate "OID:UTF8:value" too.
        let (oid, value) = part.split_once(':').unwrap_or((part, ""));
        let value = value
            .trim_start_matches(':')
            .trim_start_matches("UTF8STRING:")
            .trim_start_matches("UTF8:");
        out.push((oid.trim().to_owned(), value.to_owned()));
    }
    out
}

#[test]
fn signature_san_carries_the_basic_four_and_auth_carries_nothing() {
    let test = "signature_san_carries_the_basic_four_and_auth_carries_nothing";
    let Some(ossl) = openssl(test) else { return };
    let j = Jpki::demo("rsa2048");
    // (person, expected EYYYYMMDD)
    let cases = [
        (Person::ADULT, "319800217"),
        (
            Person {
                name: "昭和 最後",
                address: "神奈川県横浜市中区本町1-1",
                birth: "1989-01-07",
                sex: "2",
            },
            "319890107",
        ),
        (
            Person {
                name: "平成 一日",
                address: "愛知県名古屋市中区三の丸3-1-1",
                birth: "1989-01-08",
                sex: "9",
            },
            "419890108",
        ),
        (
            Person {
                name: "𠮷田 大正",
                address: "福岡県福岡市博多区東公園7-7",
                birth: "1926-12-24",
                sex: "1",
            },
            "219261224",
        ),
    ];
    for (p, birth_digits) in cases {
        let rid = j.add_resident(p);
        let resident = j.json(&["resident", "show", "--resident", &rid.to_string()]);
        let number = resident["individual_number"]
            .as_str()
            .expect("individual_number")
            .to_owned();
        let card = j.issue_card(rid);
        let sign = card
            .sign_serial
            .clone()
            .expect("an adult gets a signature certificate");

        // jpki's own decoding.
        let show = j.cert_show(&sign);
        let san = &show["jpki"];
        assert_eq!(san["name"], p.name, "{show}");
        assert_eq!(san["address"], p.address, "{show}");
        assert_eq!(san["sex"], p.sex, "{show}");
        assert_eq!(san["birth_date"], birth_digits, "born {}: {show}", p.birth);
        let flags = |field: &str, text: &str| {
            let f = san[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} missing: {show}"));
            assert_eq!(
                f.chars().count(),
                text.chars().count(),
                "{field} has one flag per character"
            );
            assert!(
                f.chars().all(|c| c == '0' || c == '1'),
                "{field} is 0/1 flags: {f}"
            );
            f.to_owned()
        };
        let name_flags = flags("name_flags", p.name);
        let address_flags = flags("address_flags", p.address);
        if p.name.starts_with('𠮷') {
            assert_eq!(
                name_flags, "10000",
                "𠮷 is outside JIS X 0208 and must be flagged"
            );
        }

        // openssl's decoding: the six otherNames in order with the same values.
        let cert = j.export_cert(&sign, &format!("{sign}.pem"));
        let got = openssl_jpki_san(&ossl, &cert);
        let expected: Vec<(String, String)> = [
            p.name,
            name_flags.as_str(),
            p.sex,
            birth_digits,
            p.address,
            address_flags.as_str(),
        ]
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("1.2.392.200149.8.5.5.{}", i + 1), (*v).to_owned()))
        .collect();
        assert_eq!(got, expected, "openssl's view of the subjectAltName of {sign}");

        // The authentication certificate: no subjectAltName, subject exactly C=JP + CN, and no
        // personal data anywhere in the DER.
        let auth = j.export_cert(&card.auth_serial, &format!("{}.pem", card.auth_serial));
        let text = ossl.ok(&["x509", "-in", s(&auth), "-noout", "-text"]);
        assert!(
            !text.contains("Subject Alternative Name") && !text.to_lowercase().contains("othername"),
            "the authentication certificate has no subjectAltName:\n{text}"
        );
        let subject = ossl.ok(&[
            "x509",
            "-in",
            s(&auth),
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253,-esc_msb",
        ]);
        let subject = subject.trim().trim_start_matches("subject=").trim();
        let rdns: Vec<&str> = subject.split(',').collect();
        assert_eq!(rdns.len(), 2, "auth subject is C=JP plus one CN: {subject}");
        assert_eq!(rdns[1], "C=JP", "auth subject: {subject}");
        let cn = rdns[0]
            .strip_prefix("CN=")
            .unwrap_or_else(|| panic!("auth subject lacks CN: {subject}"));
        assert!(
            !cn.is_empty() && !subject.contains("L="),
            "auth subject: {subject}"
        );
        let compact_birth = p.birth.replace('-', "");
        let der_file = j.path("auth.der");
        ossl.ok(&["x509", "-in", s(&auth), "-outform", "DER", "-out", s(&der_file)]);
        let der = std::fs::read(&der_file).expect("read DER");
        let family = p.name.split(' ').next().unwrap_or(p.name);
        let prefecture: String = p.address.chars().take(3).collect();
        for secret in [
            p.name,
            family,
            p.address,
            prefecture.as_str(),
            p.birth,
            compact_birth.as_str(),
            birth_digits,
            number.as_str(),
        ] {
            assert!(!cn.contains(secret), "auth CN {cn} contains {secret}");
            assert!(
                !der.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the authentication certificate's DER contains {secret:?}"
            );
        }
        let ashow = j.cert_show(&card.auth_serial);
        assert!(
            ashow["jpki"].is_null(),
            "no JPKI fields in the auth certificate: {ashow}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Age rule, bad input, help

#[test]
fn under_15_gets_no_signature_certificate() {
    let j = Jpki::demo("p384");
    for birth in ["2019-05-01", "2015-01-01"] {
        let child = j.add_resident(Person {
            name: "令和 子",
            address: "東京都新宿区西新宿2-8-1",
            birth,
            sex: "2",
        });
        let card = j.issue_card(child);
        assert_eq!(
            card.json.get("sign_serial"),
            Some(&Value::Null),
            "born {birth}: \"sign_serial\": null expected in {}",
            card.json
        );
        assert!(card.sign_serial.is_none());
        let shown = j.json(&["card", "show", "--card-id", &card.card_id]);
        let kinds: Vec<&str> = shown["certificates"]
            .as_array()
            .expect("certificates")
            .iter()
            .filter_map(|c| c["kind"].as_str())
            .collect();
        assert_eq!(
            kinds,
            ["auth"],
            "born {birth}: only an authentication certificate: {shown}"
        );
    }
    let adult = j.add_resident(Person::ADULT);
    assert!(
        j.issue_card(adult).sign_serial.is_some(),
        "an adult gets a signature certificate"
    );
}

/// Runs a command that must fail: exit `code`, exactly one line on stderr mentioning `field`.
fn assert_refused(j: &Jpki, args: &[&str], code: i32, field: &str) -> String {
    let out = j.run(args);
    let shown = describe(args, &out);
    assert_eq!(out.status.code(), Some(code), "{shown}");
    let err = stderr(&out);
    let line = err.strip_suffix('\n').unwrap_or(&err);
    assert!(
        !line.is_empty() && !line.contains('\n'),
        "stderr must be exactly one line: {shown}"
    );
    assert!(
        line.to_lowercase().contains(field),
        "stderr must mention {field:?}: {shown}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout without --json: {shown}");
    line.to_owned()
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let j = Jpki::demo("p384");
    let before = j.snapshot();
    let long_name = "あ".repeat(101);
    let long_address = format!("東京都{}", "あ".repeat(198));
    let add = |name: &str, address: &str, birth: &str, sex: &str, number: Option<&str>| {
        let mut v: Vec<String> = [
            "resident",
            "add",
            "--name",
            name,
            "--address",
            address,
            "--birth",
            birth,
            "--sex",
            sex,
        ]
        .map(str::to_owned)
        .to_vec();
        if let Some(n) = number {
            v.extend(["--number".to_owned(), n.to_owned()]);
        }
        v
    };
    let addr = "東京都千代田区千代田1-1";
    let usage: Vec<(Vec<String>, &str)> = vec![
        (
            add("山田 太郎", addr, "1980-02-17", "1", Some("123456789017")),
            "individual number",
        ),
        (add("山田 太郎", addr, "2023-02-30", "1", None), "birth date"),
        (add("山田 太郎", addr, "1980-2-17", "1", None), "birth date"),
        (add("山田 太郎", addr, "1980-02-17", "3", None), "sex"),
        (add(&long_name, addr, "1980-02-17", "1", None), "name"),
        (add("", addr, "1980-02-17", "1", None), "name"),
        (
            add("山田 太郎", &long_address, "1980-02-17", "1", None),
            "address",
        ),
        (add("山田 太郎", "", "1980-02-17", "1", None), "address"),
        (
            ["revoke", "--serial", "abcdef", "--reason", "bogus"]
                .map(str::to_owned)
                .to_vec(),
            "reason",
        ),
        (
            ["cert", "show", "--serial", "xyz"].map(str::to_owned).to_vec(),
            "serial",
        ),
    ];
    for (args, field) in &usage {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_refused(&j, &args, 2, field);
    }
    // Failures after parsing (exit 1): the message names the field or the missing object.
    let failures: [(&[&str], &str); 4] = [
        (
            &[
                "resident",
                "add",
                "--name",
                "未来 人",
                "--address",
                addr,
                "--birth",
                "2099-01-01",
                "--sex",
                "1",
            ],
            "birth date",
        ),
        (&["cert", "show", "--serial", "abcdef"], "abcdef"),
        (
            &["revoke", "--serial", "abcdef", "--reason", "key-compromise"],
            "abcdef",
        ),
        (&["resident", "show", "--resident", "99"], "resident"),
    ];
    for (args, field) in failures {
        let line = assert_refused(&j, args, 1, field);
        // The unknown serial is reported as such: by the word "serial" or as "certificate <hex>".
        if args.contains(&"abcdef") {
            let l = line.to_lowercase();
            assert!(
                (l.contains("serial") || l.contains("certificate abcdef")) && l.contains("not found"),
                "unknown serial: {line}"
            );
        }
        // --json: one JSON object with "error" on stdout, the same line on stderr.
        let mut jargs = vec!["--json"];
        jargs.extend_from_slice(args);
        let out = j.run(&jargs);
        let shown = describe(&jargs, &out);
        assert_eq!(out.status.code(), Some(1), "{shown}");
        let text = stdout(&out);
        assert_eq!(text.trim_end().lines().count(), 1, "one JSON line: {shown}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {shown}"));
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no \"error\": {shown}"));
        assert!(msg.to_lowercase().contains(field), "{shown}");
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "only \"error\": {shown}");
        assert_eq!(
            stderr(&out).trim_end().lines().count(),
            1,
            "one line on stderr: {shown}"
        );
    }

    assert_eq!(
        j.snapshot(),
        before,
        "a refused command must not change the data directory"
    );
    let check = j.json(&["check"]);
    assert_eq!(check["consistent"], true, "{check}");
    // The registry is still empty: the first valid registration gets resident 1, with the
    // number that was refused only because of its check digit now accepted with the right one.
    let ok = j.json(&add("山田 太郎", addr, "1980-02-17", "1", Some("123456789018")));
    assert_eq!(ok["resident_id"], 1, "{ok}");
    assert_eq!(ok["individual_number"], "123456789018", "{ok}");

    // A bad reason leaves an existing certificate untouched.
    let card = j.issue_card(1);
    let after_issue = j.snapshot();
    assert_refused(
        &j,
        &["revoke", "--serial", &card.auth_serial, "--reason", "stolen"],
        2,
        "reason",
    );
    assert_eq!(j.snapshot(), after_issue, "refused revoke wrote something");
    assert_eq!(j.cert_show(&card.auth_serial)["status"], "good");
}

/// The subcommand names listed under "Commands:" in a help text (without "help").
fn subcommands(help: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            if line.trim().is_empty() || !line.starts_with(' ') {
                break;
            }
            // Entries are indented by two spaces; wrapped descriptions by more.
            if line.starts_with("  ")
                && !line.starts_with("   ")
                && let Some(name) = line.split_whitespace().next()
                && name != "help"
            {
                names.push(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn every_command_has_help() {
    let j = Jpki::new();
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut seen = Vec::new();
    while let Some(path) = todo.pop() {
        let mut args = path.clone();
        args.push("--help".to_owned());
        let out = j.run(&args);
        let shown = describe(&args, &out);
        assert_eq!(out.status.code(), Some(0), "{shown}");
        let help = stdout(&out);
        assert!(help.contains("Usage: jpki"), "{shown}");
        assert!(out.stderr.is_empty(), "{shown}");
        for sub in subcommands(&help) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        seen.push(path.join(" "));
    }
    seen.sort();
    for must in [
        "",
        "init",
        "resident add",
        "resident move",
        "card issue",
        "cert show",
        "cert export",
        "ca export",
        "revoke",
        "crl publish",
        "check",
        "demo",
    ] {
        assert!(
            seen.iter().any(|s| s == must),
            "`jpki {must} --help` not reached; saw {seen:?}"
        );
    }
    assert!(!j.data().exists(), "--help must not create the data directory");
}
