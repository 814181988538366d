//! `jpki serve` end to end: the OCSP responder for both CAs at the URLs the certificates name,
//! checked with the real `openssl ocsp` (POST) and `curl` (GET, then `openssl ocsp -respin`):
//! good, then revoked with its reason within a second of `jpki revoke` in another process; a hold
//! answered as certificateHold; an unknown serial; and, without `--public-revocation`, 401 for a
//! request without a registered key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use base64::Engine as _;
use common::{
    Jpki, Person, Served, have, interop_required, openssl_ocsp, post_json, s, venv, venv_python_with,
};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn ocsp_over_http_follows_revocations() {
    if !have("openssl") || !have("curl") {
        return;
    }
    let j = Jpki::demo("rsa2048");
    let card = j.issue_card(j.add_resident(Person::ADULT));
    let sign_serial = card.serial("sign").unwrap().to_owned();
    let auth_serial = card.serial("auth").unwrap().to_owned();
    let sign_cert = j.export_cert(&sign_serial, "sign.pem");
    let auth_cert = j.export_cert(&auth_serial, "auth.pem");
    let sign_root = j.export_root("sign", "sign-root.pem");
    let auth_root = j.export_root("auth", "auth-root.pem");

    let server = Served::start(&j, &["serve", "--public-revocation"]);
    let addr = server.addr();
    assert_eq!(server.ready["public_revocation"], true);
    let sign_url = format!("http://{addr}/ocsp/sign");
    let auth_url = format!("http://{addr}/ocsp/auth");

    // Good, for both CAs, with openssl's nonce echoed.
    let out = openssl_ocsp(&sign_url, &sign_root, &sign_cert, &[]);
    assert!(
        out.contains("sign.pem: good") && out.contains("Response verify OK"),
        "{out}"
    );
    assert!(out.contains("OCSP Nonce"), "the nonce is echoed: {out}");
    let out = openssl_ocsp(&auth_url, &auth_root, &auth_cert, &["-no_nonce"]);
    assert!(
        out.contains("auth.pem: good") && out.contains("Response verify OK"),
        "{out}"
    );

    // Revoked in another process: answered within a second (the cached "good" is dropped).
    let revoked = j.run(&["revoke", "--serial", &sign_serial, "--reason", "key-compromise"]);
    assert!(revoked.status.success(), "{}", text(&revoked));
    let start = Instant::now();
    let out = loop {
        let out = openssl_ocsp(&sign_url, &sign_root, &sign_cert, &["-no_nonce"]);
        if out.contains("sign.pem: revoked") || start.elapsed() > Duration::from_secs(5) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = start.elapsed();
    assert!(
        out.contains("sign.pem: revoked") && out.contains("Reason: keyCompromise"),
        "{out}"
    );
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(
        took < Duration::from_secs(2),
        "the revocation took {took:?} to show"
    );

    // A hold on the auth certificate.
    let held = j.run(&["revoke", "--serial", &auth_serial, "--reason", "certificate-hold"]);
    assert!(held.status.success(), "{}", text(&held));
    std::thread::sleep(Duration::from_millis(600));
    let out = openssl_ocsp(&auth_url, &auth_root, &auth_cert, &[]);
    assert!(
        out.contains("auth.pem: revoked") && out.contains("Reason: certificateHold"),
        "{out}"
    );

    // GET: curl with the base64 request below the per-CA URL, then openssl reads the answer.
    let req = j.path("req.der");
    let made = Command::new("openssl")
        .args([
            "ocsp",
            "-issuer",
            s(&sign_root),
            "-cert",
            s(&sign_cert),
            "-no_nonce",
            "-reqout",
            s(&req),
        ])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).unwrap());
    let encoded = b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let resp = j.path("resp.der");
    let got = Command::new("curl")
        .args(["-sS", "--fail", "-o", s(&resp), &format!("{sign_url}/{encoded}")])
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", text(&got));
    let out = Command::new("openssl")
        .args([
            "ocsp",
            "-respin",
            s(&resp),
            "-issuer",
            s(&sign_root),
            "-cert",
            s(&sign_cert),
            "-CAfile",
            s(&sign_root),
            "-resp_text",
            "-no_nonce",
        ])
        .output()
        .unwrap();
    let out = text(&out);
    assert!(
        out.contains("sign.pem: revoked") && out.contains("Response verify OK"),
        "{out}"
    );

    // A serial this CA never issued: unknown.
    let other = Jpki::demo("rsa2048");
    let stranger = other.issue_card(other.add_resident(Person::ADULT));
    let stranger_cert = other.export_cert(stranger.serial("sign").unwrap(), "stranger.pem");
    let out = openssl_ocsp(&sign_url, &sign_root, &stranger_cert, &["-no_nonce"]);
    assert!(out.contains("stranger.pem: unknown"), "{out}");
    assert!(server.stop().success());
}

#[test]
fn revocation_is_for_registered_relying_parties_by_default() {
    if !have("curl") || !have("openssl") {
        return;
    }
    let j = Jpki::demo("p384");
    let card = j.issue_card(j.add_resident(Person::ADULT));
    let sign_cert = j.export_cert(card.serial("sign").unwrap(), "sign.pem");
    let auth_cert = j.export_cert(card.serial("auth").unwrap(), "auth.pem");
    let sign_root = j.export_root("sign", "sign-root.pem");
    let auth_root = j.export_root("auth", "auth-root.pem");
    // A shop that may check auth certificates only, and a bank that may check both.
    let shop = j.json(&["rp", "add", "--name", "Example Shop", "--allow", "auth-status"]);
    let shop_key = shop["api_key"].as_str().unwrap().to_owned();
    let bank = j.json(&[
        "rp",
        "add",
        "--name",
        "みずほ銀行",
        "--allow",
        "auth-status,sign-status,age",
        "--age-thresholds",
        "18,20",
    ]);
    let bank_key = bank["api_key"].as_str().unwrap().to_owned();
    assert_eq!(bank["age_thresholds"], serde_json::json!([18, 20]));
    let list = j.json(&["rp", "list"]);
    assert_eq!(list["relying_parties"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&shop_key), "keys are never listed");

    let server = Served::start(&j, &["serve"]);
    assert_eq!(server.ready["public_revocation"], false);
    let addr = server.addr();
    let code = |extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .args([
                "-H",
                "Content-Type: application/ocsp-request",
                "--data-binary",
                "0",
            ])
            .args(extra)
            .arg(format!("http://{addr}/ocsp/sign"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(code(&[]), "401");
    assert_eq!(code(&["-H", "Authorization: Bearer not-a-registered-key"]), "401");
    let bearer = |key: &str| format!("Authorization=Bearer {key}");
    let ask = |kind: &str, root: &Path, cert: &Path, key: &str| {
        openssl_ocsp(
            &format!("http://{addr}/ocsp/{kind}"),
            root,
            cert,
            &["-header", &bearer(key)],
        )
    };
    // The bank gets both kinds; the shop only the auth certificate.
    let out = ask("sign", &sign_root, &sign_cert, &bank_key);
    assert!(
        out.contains("sign.pem: good") && out.contains("Response verify OK"),
        "{out}"
    );
    let out = ask("auth", &auth_root, &auth_cert, &shop_key);
    assert!(
        out.contains("auth.pem: good") && out.contains("Response verify OK"),
        "{out}"
    );
    let out = ask("sign", &sign_root, &sign_cert, &shop_key);
    assert!(out.contains("unauthorized"), "a shop without sign-status: {out}");
    // A revoked key is refused at once.
    let revoked = j.json(&["rp", "revoke-key", "--rp", shop["rp_id"].as_str().unwrap()]);
    assert_eq!(revoked["revoked_keys"], 1);
    assert_eq!(code(&["-H", &format!("Authorization: Bearer {shop_key}")]), "401");
    assert_eq!(code(&["-H", &format!("Authorization: Bearer {bank_key}")]), "200");
    // CRLs at every URL the certificates name (and the complete ones), for registered relying parties.
    let public = j.data().join("public");
    j.json(&["crl", "publish", "--out", s(&public)]);
    let fetch = |url: &str, extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-D", "-", "-o", s(&j.path("fetched"))])
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            std::fs::read(j.path("fetched")).unwrap_or_default(),
        )
    };
    let auth_bank = format!("Authorization: Bearer {bank_key}");
    let mut urls = Vec::new();
    for kind in ["sign", "auth"] {
        let shown = j.cert_show(card.serial(kind).unwrap());
        for u in shown["crl_urls"].as_array().unwrap() {
            urls.push(u.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(urls.len(), 2, "one shard CRL named per certificate: {urls:?}");
    // And the complete CRLs beside them.
    urls.extend(["sign", "auth"].map(|k| format!("http://127.0.0.1:7700/crl/{k}.crl")));
    for url in &urls {
        let path = url.strip_prefix("http://127.0.0.1:7700/").unwrap();
        let local = format!("http://{addr}/{path}");
        let (head, body) = fetch(&local, &["-H", &auth_bank]);
        assert!(head.starts_with("HTTP/1.1 200"), "{local}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/pkix-crl"),
            "{head}"
        );
        assert_eq!(body, std::fs::read(public.join(path)).unwrap(), "{local}");
        let etag = head
            .lines()
            .find_map(|l| l.strip_prefix("etag: ").or_else(|| l.strip_prefix("ETag: ")))
            .unwrap()
            .trim()
            .to_owned();
        let (again, _) = fetch(
            &local,
            &["-H", &auth_bank, "-H", &format!("If-None-Match: {etag}")],
        );
        assert!(again.starts_with("HTTP/1.1 304"), "{again}");
        let (anonymous, _) = fetch(&local, &[]);
        assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    }
    // A CRL needs the status capability of its CA, as OCSP does.
    let auth_only = j.json(&["rp", "add", "--name", "Auth Only", "--allow", "auth-status"]);
    let auth_only_id = auth_only["rp_id"].as_str().unwrap().to_owned();
    let auth_only = format!("Authorization: Bearer {}", auth_only["api_key"].as_str().unwrap());
    let (head, _) = fetch(&format!("http://{addr}/crl/sign.crl"), &["-H", &auth_only]);
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let (head, _) = fetch(&format!("http://{addr}/crl/auth.crl"), &["-H", &auth_only]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The download is metered (the follower writes every quarter second), and not charged.
    let jst = OffsetDateTime::now_utc().to_offset(time::macros::offset!(+9));
    let month = format!("{:04}-{:02}", jst.year(), u8::from(jst.month()));
    let started = Instant::now();
    let invoice = loop {
        let invoice = j.json(&["rp", "invoice", "--rp", &auth_only_id, "--month", &month]);
        if !invoice["checks"].as_array().unwrap().is_empty() || started.elapsed() > Duration::from_secs(10) {
            break invoice;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        invoice["checks"],
        serde_json::json!([{ "kind": "auth", "check": "crl", "count": 1 }]),
        "{invoice}"
    );
    assert_eq!(invoice["total_yen"], 0, "{invoice}");
    // CA certificates are public; nothing outside the published tree is served.
    let (head, body) = fetch(&format!("http://{addr}/ca/sign.cer"), &[]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, std::fs::read(public.join("ca/sign.cer")).unwrap());
    let (head, _) = fetch(
        &format!("http://{addr}/crl/%2e%2e/%2e%2e/authority.sqlite"),
        &["-H", &auth_bank],
    );
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // The server keeps serving, and /metrics counted all of it in a format Prometheus' own parser reads.
    let health = Command::new("curl")
        .args(["-s", &format!("http://{addr}/healthz")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&health.stdout), "ok\n");
    check_metrics(&addr);
}

/// `/metrics` parsed by prometheus-client's parser (in the test venv): the OCSP route has 2xx and
/// 4xx answers counted and a latency histogram.
fn check_metrics(addr: &str) {
    let Some(python) = venv_python_with("prometheus_client.parser") else {
        assert!(
            !interop_required(),
            "prometheus-client is required (JPKI_REQUIRE_INTEROP=1) in the venv"
        );
        eprintln!("skipping the /metrics parse: prometheus-client is not in the venv");
        return;
    };
    let script = r#"
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1]).read().decode()
fams = {f.name: f for f in text_string_to_metric_families(text)}
req = fams["jpki_http_requests"]
assert req.type == "counter", req.type
ocsp = {s.labels["status"]: s.value for s in req.samples if s.labels.get("route") == "ocsp" and s.name.endswith("_total")}
assert ocsp["2xx"] >= 3 and ocsp["4xx"] >= 2, ocsp
hist = fams["jpki_http_request_duration_seconds"]
assert hist.type == "histogram", hist.type
count = [s.value for s in hist.samples if s.name.endswith("_count") and s.labels["route"] == "ocsp"]
assert count and count[0] == sum(ocsp.values()), (count, ocsp)
print("metrics ok", ocsp)
"#;
    let out = Command::new(python)
        .args(["-c", script, &format!("http://{addr}/metrics")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn bad_relying_party_registrations_are_one_line_usage_errors() {
    let j = Jpki::demo("p384");
    for (args, needle) in [
        (vec!["rp", "add", "--name", "Shop", "--allow", "owner"], "owner"),
        (
            vec!["rp", "add", "--name", "Shop", "--allow", "age"],
            "--age-thresholds",
        ),
        (vec!["rp", "add", "--name", "", "--allow", "auth-status"], "name"),
        (vec!["rp", "revoke-key", "--rp", "rp-nobody"], "not found"),
    ] {
        let out = j.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains(needle) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    assert_eq!(j.json(&["rp", "list"])["relying_parties"], serde_json::json!([]));
}

/// `curl` POSTing JSON to `url` with `key`; returns (HTTP status, parsed body).
#[test]
fn the_validity_api_answers_by_capability_and_schemathesis_finds_nothing() {
    if !have("curl") {
        return;
    }
    let j = Jpki::demo("rsa2048");
    let card = j.issue_card(j.add_resident(Person::ADULT));
    let sign_serial = card.serial("sign").unwrap().to_owned();
    let sign_pem = std::fs::read_to_string(j.export_cert(&sign_serial, "sign.pem")).unwrap();
    let auth_pem = std::fs::read_to_string(j.export_cert(card.serial("auth").unwrap(), "auth.pem")).unwrap();
    let rp = |name: &str, allow: &str| {
        j.json(&["rp", "add", "--name", name, "--allow", allow])["api_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let bank = rp("Bank", "auth-status,sign-status,personal-data");
    let shop = rp("Shop", "auth-status");
    let checker = rp("Checker", "sign-status");
    let server = Served::start(&j, &["serve", "--public-revocation"]);
    let url = format!("http://{}/v1/certificates/validity", server.addr());
    let body = |pem: &str| serde_json::json!({ "certificate": pem }).to_string();

    let (code, v) = post_json(&url, Some(&bank), &body(&sign_pem));
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["kind"].as_str(), v["status"].as_str(), v["valid"].as_bool()),
        (Some("sign"), Some("good"), Some(true))
    );
    assert_eq!(
        v["facts"]["name"], "山田 太郎",
        "personal-data sees the four facts: {v}"
    );
    // sign-status without personal-data: the status, never a personal datum.
    let (code, v) = post_json(&url, Some(&checker), &body(&sign_pem));
    assert_eq!(code, 200);
    assert!(v.get("facts").is_none(), "{v}");
    assert!(
        !v.to_string().contains("山田") && !v.to_string().contains("東京"),
        "{v}"
    );
    // A shop with auth-status only: its auth certificate yes, the signature certificate 403.
    assert_eq!(post_json(&url, Some(&shop), &body(&auth_pem)).0, 200);
    let (code, v) = post_json(&url, Some(&shop), &body(&sign_pem));
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("sign-status"));
    // Revoked: the answer follows within a second.
    assert!(
        j.run(&[
            "revoke",
            "--serial",
            &sign_serial,
            "--reason",
            "affiliation-changed"
        ])
        .status
        .success()
    );
    std::thread::sleep(Duration::from_millis(700));
    let (_, v) = post_json(&url, Some(&bank), &body(&sign_pem));
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str(), v["valid"].as_bool()),
        (Some("revoked"), Some("affiliation-changed"), Some(false)),
        "{v}"
    );
    // Bad input: one error each, never a 5xx.
    assert_eq!(
        post_json(&url, None, &body(&sign_pem)).0,
        401,
        "the API always needs a key"
    );
    assert_eq!(post_json(&url, Some(&bank), "{").0, 400);
    assert_eq!(
        post_json(&url, Some(&bank), r#"{"certificate": "bm90IGEgY2VydA=="}"#).0,
        400
    );
    assert_eq!(
        post_json(&url, Some(&bank), r#"{"certificate": "x", "extra": 1}"#).0,
        400
    );
    let other = Jpki::demo("rsa2048");
    let stranger = other.issue_card(other.add_resident(Person::ADULT));
    let stranger_pem =
        std::fs::read_to_string(other.export_cert(stranger.serial("sign").unwrap(), "s.pem")).unwrap();
    assert_eq!(post_json(&url, Some(&bank), &body(&stranger_pem)).0, 422);

    // Age: yes or no for a registered threshold, as the law counts it in JST; never the birth date.
    let age_url = format!("http://{}/v1/certificates/age", server.addr());
    let liquor = j.json(&[
        "rp",
        "add",
        "--name",
        "Liquor Shop",
        "--allow",
        "age",
        "--age-thresholds",
        "18,20",
    ])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let today = OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+9))
        .date();
    // Turns 18 tomorrow (JST): not yet 18 today. (On 29 February, 18 years back has no such day;
    // someone born today is not 18 either.)
    let young_birth = today
        .replace_year(today.year() - 18)
        .ok()
        .and_then(time::Date::next_day)
        .unwrap_or(today);
    let young = j.issue_card(j.add_resident(Person {
        birth: &young_birth.to_string(),
        ..Person::ADULT
    }));
    let young_auth =
        std::fs::read_to_string(j.export_cert(young.serial("auth").unwrap(), "young-auth.pem")).unwrap();
    std::thread::sleep(Duration::from_millis(700)); // the server follows the new issuance
    let ask = |pem: &str, n: u8, key: &str| {
        post_json(
            &age_url,
            Some(key),
            &serde_json::json!({ "certificate": pem, "at_least": n }).to_string(),
        )
    };
    let (code, v) = ask(&young_auth, 18, &liquor);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["answer"].as_bool(), v["validity"].as_str(), v["kind"].as_str()),
        (Some(false), Some("valid"), Some("auth")),
        "{v}"
    );
    assert_eq!(v["today"], today.to_string());
    assert!(
        !v.to_string().contains(&young_birth.to_string()),
        "no birth date: {v}"
    );
    let (code, v) = ask(&auth_pem, 20, &liquor);
    assert_eq!((code, v["answer"].as_bool()), (200, Some(true)), "{v}");
    let (code, v) = ask(&sign_pem, 18, &liquor);
    assert_eq!(
        (code, v["answer"].as_bool(), v["validity"].as_str()),
        (200, Some(true), Some("invalid")),
        "revoked above: {v}"
    );
    assert_eq!(ask(&auth_pem, 21, &liquor).0, 403, "a threshold not registered");
    assert_eq!(ask(&auth_pem, 18, &bank).0, 403, "no age capability");

    // schemathesis against /openapi.json: no 5xx, no undocumented status, no response off its schema.
    let schemathesis = venv().join("bin").join("schemathesis");
    if !schemathesis.is_file() {
        assert!(
            !interop_required(),
            "schemathesis is required (JPKI_REQUIRE_INTEROP=1) in the venv"
        );
        eprintln!("skipping schemathesis: not in the venv");
        return;
    }
    let req = j.path("req.der");
    let made = Command::new("openssl")
        .args([
            "ocsp",
            "-issuer",
            s(&j.export_root("sign", "root.pem")),
            "-cert",
            s(&j.path("sign.pem")),
            "-reqout",
            s(&req),
        ])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    // A relying party with every capability, so that every operation gets past its 403.
    let everything = j.json(&[
        "rp",
        "add",
        "--name",
        "Everything",
        "--allow",
        "auth-status,sign-status,personal-data,linkage,age,liveness,signature-verify,augment",
        "--age-thresholds",
        "18,20",
    ])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = Command::new(&schemathesis)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"))
        .env("SCHEMATHESIS_HOOKS", "st_hooks")
        .env("PYTHONPATH", ".")
        .env("JPKI_ST_OCSP", hex_of(&std::fs::read(&req).unwrap()))
        .args(["run", &format!("http://{}/openapi.json", server.addr())])
        .args(["-H", &format!("Authorization: Bearer {everything}")])
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance"])
        .args([
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .output()
        .unwrap();
    let report = text(&out);
    assert!(out.status.success(), "schemathesis found problems:\n{report}");
    assert!(
        report.contains("passed") && !report.contains("failures"),
        "{report}"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn serve_speaks_https_when_given_a_certificate() {
    if !have("openssl") || !have("curl") {
        return;
    }
    let j = Jpki::demo("p384");
    let (cert, key) = (j.path("tls.pem"), j.path("tls.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            s(&key),
            "-out",
            s(&cert),
        ])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let server = Served::start(&j, &["serve", "--tls-cert", s(&cert), "--tls-key", s(&key)]);
    assert_eq!(server.ready["scheme"], "https");
    let out = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            s(&cert),
            &format!("https://{}/healthz", server.addr()),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{}", text(&out));
    // Plain HTTP to the TLS port gets no HTTP answer; the server goes on.
    let plain = Command::new("curl")
        .args([
            "-s",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{}/healthz", server.addr()),
        ])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
    assert!(server.stop().success());
    // A key that is not the certificate's: one line naming the problem, exit 1.
    let other = j.path("other.key");
    assert!(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                s(&other)
            ])
            .output()
            .unwrap()
            .status
            .success()
    );
    let bad = j.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        s(&cert),
        "--tls-key",
        s(&other),
    ]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(err.contains("TLS") && err.trim().lines().count() == 1, "{err}");
    let half = j.run(&["serve", "--tls-cert", s(&cert)]);
    assert_eq!(
        half.status.code(),
        Some(2),
        "--tls-cert without --tls-key is a usage error"
    );
}

#[test]
fn invoices_match_the_checks_to_the_yen() {
    if !have("openssl") || !have("curl") {
        return;
    }
    let j = Jpki::demo("p384");
    // A tariff with a tier early enough to matter: 50 % off from the 3rd check of a month.
    std::fs::write(
        j.data().join("tariff.json"),
        r#"{"sign_yen": 20, "auth_yen": 2, "tiers": [{"from": 3, "percent_off": 50}]}"#,
    )
    .unwrap();
    let card = j.issue_card(j.add_resident(Person::ADULT));
    let sign_pem_path = j.export_cert(card.serial("sign").unwrap(), "sign.pem");
    let auth_pem_path = j.export_cert(card.serial("auth").unwrap(), "auth.pem");
    let (sign_pem, auth_pem) = (
        std::fs::read_to_string(&sign_pem_path).unwrap(),
        std::fs::read_to_string(&auth_pem_path).unwrap(),
    );
    let sign_root = j.export_root("sign", "sign-root.pem");
    let auth_root = j.export_root("auth", "auth-root.pem");
    let add = |name: &str, allow: &[&str]| {
        let mut args = vec!["rp", "add", "--name", name, "--allow"];
        args.extend_from_slice(allow);
        let v = j.json(&args);
        (
            v["rp_id"].as_str().unwrap().to_owned(),
            v["api_key"].as_str().unwrap().to_owned(),
        )
    };
    let (a_id, a_key) = add("A Bank", &["sign-status,auth-status"]);
    let (b_id, b_key) = add("B Shop", &["auth-status"]);
    let (c_id, c_key) = add("C Bar", &["sign-status,age", "--age-thresholds", "20"]);
    let server = Served::start(&j, &["serve"]);
    let addr = server.addr();
    let reqs: Vec<_> = [
        ("sign", &sign_root, &sign_pem_path),
        ("auth", &auth_root, &auth_pem_path),
    ]
    .iter()
    .map(|(kind, root, cert)| {
        let req = j.path(format!("{kind}.req"));
        let out = Command::new("openssl")
            .args([
                "ocsp",
                "-issuer",
                s(root),
                "-cert",
                s(cert),
                "-no_nonce",
                "-reqout",
                s(&req),
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        req
    })
    .collect();
    let ocsp = |kind: &str, key: &str| {
        let req = &reqs[usize::from(kind == "auth")];
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "Content-Type: application/ocsp-request",
            ])
            .args([
                "-H",
                &format!("Authorization: Bearer {key}"),
                "--data-binary",
                &format!("@{}", s(req)),
            ])
            .arg(format!("http://{addr}/ocsp/{kind}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    };
    let api = |op: &str, key: &str, body: serde_json::Value| {
        post_json(
            &format!("http://{addr}/v1/certificates/{op}"),
            Some(key),
            &body.to_string(),
        )
        .0
    };
    // The workload.
    for _ in 0..5 {
        ocsp("sign", &a_key);
    }
    for _ in 0..3 {
        assert_eq!(
            api("validity", &a_key, serde_json::json!({ "certificate": auth_pem })),
            200
        );
    }
    for _ in 0..4 {
        ocsp("auth", &b_key);
    }
    ocsp("sign", &b_key); // answered "unauthorized": not metered
    assert_eq!(
        api("validity", &b_key, serde_json::json!({ "certificate": sign_pem })),
        403
    );
    for _ in 0..2 {
        assert_eq!(
            api("validity", &c_key, serde_json::json!({ "certificate": sign_pem })),
            200
        );
    }
    for _ in 0..3 {
        assert_eq!(
            api(
                "age",
                &c_key,
                serde_json::json!({ "certificate": auth_pem, "at_least": 20 })
            ),
            200
        );
    }
    assert!(server.stop().success(), "SIGTERM flushes the meter");
    let month = {
        let d = OffsetDateTime::now_utc()
            .to_offset(time::macros::offset!(+9))
            .date();
        format!("{:04}-{:02}", d.year(), u8::from(d.month()))
    };
    // Expected, by hand: two checks at the full price, the rest at half.
    // A: sign 5 → 2×20 + 3×10 = 70; auth 3 → 2×2 + 1×1 = 5.  B: auth 4 → 4 + 2 = 6.
    // C: sign 2 → 40; auth 3 (age checks) → 5.
    for (id, sign, auth) in [(&a_id, 70, 5), (&b_id, 0, 6), (&c_id, 40, 5)] {
        let v = j.json(&["rp", "invoice", "--rp", id, "--month", &month]);
        let yen = |kind: &str| {
            v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["kind"] == kind)
                .unwrap()["yen"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(
            (yen("sign"), yen("auth"), v["total_yen"].as_u64().unwrap()),
            (sign, auth, sign + auth),
            "{id}: {v}"
        );
    }
    let csv = j.run(&["rp", "invoice", "--rp", &a_id, "--month", &month, "--csv"]);
    assert_eq!(
        String::from_utf8_lossy(&csv.stdout).trim(),
        "kind,checks,unit_yen,yen\nsign,5,20,70\nauth,3,2,5\ntotal,,,75"
    );
    let bad = j.run(&["rp", "invoice", "--rp", &a_id, "--month", "2026-13"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn pairwise_ids_differ_between_relying_parties_and_survive_renewal() {
    if !have("curl") {
        return;
    }
    let j = Jpki::demo("p384");
    let card = j.issue_card(j.add_resident(Person::ADULT));
    let pem = |serial: &str, name: &str| std::fs::read_to_string(j.export_cert(serial, name)).unwrap();
    let auth_before = pem(card.serial("auth").unwrap(), "auth-1.pem");
    let key = |name: &str, allow: &str| {
        j.json(&["rp", "add", "--name", name, "--allow", allow])["api_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (one, two, sign_only) = (
        key("One", "auth-status"),
        key("Two", "auth-status"),
        key("Three", "sign-status"),
    );
    let server = Served::start(&j, &["serve"]);
    let url = format!("http://{}/v1/certificates/pairwise-id", server.addr());
    let id = |key: &str, pem: &str| {
        let (code, v) = post_json(
            &url,
            Some(key),
            &serde_json::json!({ "certificate": pem }).to_string(),
        );
        assert_eq!(code, 200, "{v}");
        v["pairwise_id"].as_str().unwrap().to_owned()
    };
    let (a1, b1) = (id(&one, &auth_before), id(&two, &auth_before));
    assert_ne!(a1, b1, "unlinkable across relying parties");
    assert_eq!(a1.len(), 32);
    assert_eq!(id(&one, &auth_before), a1, "stable");
    let (code, _) = post_json(
        &url,
        Some(&sign_only),
        &serde_json::json!({ "certificate": auth_before }).to_string(),
    );
    assert_eq!(code, 403, "needs the status capability for the kind");
    // Renewal: new keys, new certificates, the same person, the same identifiers.
    let v = j.renew(&card, "both");
    let new_serial = v["auth_serial"].as_str().unwrap();
    assert_ne!(new_serial, card.serial("auth").unwrap());
    let auth_after = pem(new_serial, "auth-2.pem");
    std::thread::sleep(Duration::from_millis(700)); // the server follows the renewal
    assert_eq!(id(&one, &auth_after), a1, "the same identifier after renewal");
    assert_eq!(id(&two, &auth_after), b1);
    // The old certificate was superseded: no identifier for it any more.
    let (code, _) = post_json(
        &url,
        Some(&one),
        &serde_json::json!({ "certificate": auth_before }).to_string(),
    );
    assert_eq!(code, 422);
}

#[test]
fn the_first_serve_initialises_the_data_directory() {
    if !have("curl") {
        return;
    }
    let j = Jpki::new();
    assert!(!j.data().exists());
    let server = Served::start(&j, &["serve", "--public-revocation"]);
    let init = &server.ready["initialised"];
    let pass_file = init["passphrase_file"].as_str().unwrap();
    assert!(Path::new(pass_file).is_file(), "{init}");
    // Every published file answers at its path, the CA certificates and the CRLs alike.
    let public = j.data().join("public");
    let mut files = Vec::new();
    let mut dirs = vec![public.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    assert!(
        files.iter().any(|f| f.extension().is_some_and(|e| e == "crl")),
        "{files:?}"
    );
    for f in files.iter().take(6) {
        let rel = f.strip_prefix(&public).unwrap().to_str().unwrap();
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://{}/{rel}", server.addr()))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{rel}");
    }
    assert!(server.stop().success());
    // The second run uses what the first made.
    let again = Served::start(&j, &["serve"]);
    assert!(again.ready["initialised"].is_null(), "{}", again.ready);
    let rp = j.json(&["rp", "add", "--name", "Bank", "--allow", "auth-status"]);
    assert!(rp["api_key"].as_str().unwrap().starts_with("jpki_"));
    assert!(again.stop().success());
}

#[test]
fn relying_parties_may_authenticate_with_client_certificates() {
    if !have("openssl") || !have("curl") {
        return;
    }
    let j = Jpki::demo("p384");
    let card = j.issue_card(j.add_resident(Person::ADULT));
    let auth_pem = std::fs::read_to_string(j.export_cert(card.serial("auth").unwrap(), "auth.pem")).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    let p = |name: &str| j.path(name).to_str().unwrap().to_owned();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    // The server's certificate, the relying parties' client CA, and two client certificates.
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                &p("tls.key"),
                "-out",
                &p("tls.pem"),
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-days",
                "2",
                "-subj",
                "/CN=RP client CA",
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.pem"),
            ],
        ]
        .concat(),
    );
    std::fs::write(j.path("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for name in ["bank", "stranger"] {
        openssl(
            &[
                &["req", "-new"],
                &ec[..],
                &[
                    "-subj",
                    &format!("/CN={name}"),
                    "-keyout",
                    &p(&format!("{name}.key")),
                    "-out",
                    &p(&format!("{name}.csr")),
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p(&format!("{name}.csr")),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("client.ext"),
            "-out",
            &p(&format!("{name}.pem")),
        ]);
    }
    let bank = j.json(&["rp", "add", "--name", "Bank", "--allow", "auth-status"]);
    let rp_id = bank["rp_id"].as_str().unwrap().to_owned();
    let added = j.json(&["rp", "add-client-cert", "--rp", &rp_id, "--cert", &p("bank.pem")]);
    assert_eq!(added["client_cert_sha256"].as_str().unwrap().len(), 64);
    let again = j.run(&["rp", "add-client-cert", "--rp", &rp_id, "--cert", &p("bank.pem")]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    let server = Served::start(
        &j,
        &[
            "serve",
            "--tls-cert",
            &p("tls.pem"),
            "--tls-key",
            &p("tls.key"),
            "--tls-client-ca",
            &p("ca.pem"),
        ],
    );
    let url = format!("https://{}/v1/certificates/validity", server.addr());
    let body = serde_json::json!({ "certificate": auth_pem }).to_string();
    let call = |client: Option<&str>, key: Option<&str>| -> String {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            &p("tls.pem"),
        ])
        .args(["-H", "Content-Type: application/json", "--data-binary", &body]);
        if let Some(c) = client {
            cmd.args([
                "--cert",
                &p(&format!("{c}.pem")),
                "--key",
                &p(&format!("{c}.key")),
            ]);
        }
        if let Some(k) = key {
            cmd.args(["-H", &format!("Authorization: Bearer {k}")]);
        }
        String::from_utf8_lossy(&cmd.arg(&url).output().unwrap().stdout).into_owned()
    };
    assert_eq!(
        call(Some("bank"), None),
        "200",
        "the registered client certificate is enough"
    );
    assert_eq!(call(None, None), "401");
    assert_eq!(
        call(Some("stranger"), None),
        "401",
        "issued by the CA but not registered"
    );
    assert_eq!(call(None, bank["api_key"].as_str()), "200", "API keys still work");
    j.json(&["rp", "revoke-key", "--rp", &rp_id]);
    assert_eq!(call(Some("bank"), None), "401", "revoked with the keys, at once");
    assert!(server.stop().success());
}
