//! `jpki serve --role authority` and `--role verifier` sharing one registry, on SQLite (the
//! verifier on the authority's data directory) and on PostgreSQL (the verifiers on data
//! directories of their own that hold no key): a revocation made through the authority is
//! answered "revoked" by every verifier within a second, checked with `openssl ocsp`. A relying
//! party registered on the authority's data directory is answered by every verifier's JSON API, and
//! its checks land in the holder's access log, one stream per verifier (on PostgreSQL), which
//! `jpki access-log` on the authority's data directory reads and checks. After `jpki ca rollover`
//! the running verifiers answer for both root generations without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Jpki, Person, Served, have, interop_required, openssl_ocsp, post_json};
use serde_json::json;

/// The engines to run on: SQLite, and PostgreSQL when `JPKI_TEST_POSTGRES` names a server.
fn postgres_server() -> Option<String> {
    match std::env::var("JPKI_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !interop_required(),
                "JPKI_REQUIRE_INTEROP is set but JPKI_TEST_POSTGRES names no PostgreSQL server"
            );
            None
        }
    }
}

/// The revocation bound the issue sets.
const BOUND: Duration = Duration::from_secs(1);

fn status(url: &str, root: &std::path::Path, cert: &std::path::Path) -> &'static str {
    let out = openssl_ocsp(url, root, cert, &["-no_nonce"]);
    if out.contains("Cert Status: revoked") {
        "revoked"
    } else if out.contains("Cert Status: good") {
        "good"
    } else {
        panic!("no status from {url}: {out}")
    }
}

fn revocation_reaches_every_verifier(db: Option<&str>) {
    let auth = Jpki::new();
    let mut init = vec!["init", "--demo", "--kdf-iterations", "1000"];
    if let Some(url) = db {
        init.extend(["--db", url]);
    }
    auth.json(&init);
    let card = auth.issue_card(auth.add_resident(Person::ADULT));
    let serial = card.serial("auth").unwrap().to_owned();
    let cert = auth.export_cert(&serial, "auth.pem");
    let root = auth.export_root("auth", "auth-root.pem");
    let cert_pem = std::fs::read_to_string(&cert).unwrap();
    // A relying party registered where the operator works: the authority's data directory.
    let rp = auth.json(&["rp", "add", "--name", "Verifier Bank", "--allow", "auth-status"]);
    let api_key = rp["api_key"].as_str().unwrap().to_owned();
    let passphrase = std::fs::read_to_string(auth.data().join("authority-passphrase")).unwrap();
    let env = [("JPKI_AUTHORITY_PASSPHRASE", passphrase.trim())];

    // A verifier cannot start before the authority has issued the service certificates.
    let early_dir = Jpki::new();
    let mut early = vec!["serve", "--role", "verifier", "--listen", "127.0.0.1:0"];
    if let Some(url) = db {
        early.extend(["--db", url]);
    }
    let early_out = if db.is_some() { &early_dir } else { &auth }
        .command()
        .envs(env)
        .args(&early)
        .output()
        .unwrap();
    assert_eq!(early_out.status.code(), Some(1), "{early_out:?}");
    assert!(
        String::from_utf8_lossy(&early_out.stderr).contains("--role authority"),
        "the error says what to start: {}",
        String::from_utf8_lossy(&early_out.stderr)
    );

    let authority = Served::start(&auth, &["serve", "--role", "authority", "--public-revocation"]);
    assert_eq!(authority.ready["role"], "authority");
    // The authority answers no OCSP: that is the verifiers' work.
    let none = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .arg(format!("http://{}/ocsp/auth", authority.addr()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&none.stdout), "404");

    // Two verifiers: on PostgreSQL each on a data directory of its own with only the database URL;
    // on SQLite on the authority's data directory.
    let homes: Vec<Jpki> = (0..2).map(|_| Jpki::new()).collect();
    let verifiers: Vec<Served> = homes
        .iter()
        .map(|home| match db {
            Some(url) => Served::start_with_env(
                home,
                &["serve", "--role", "verifier", "--public-revocation", "--db", url],
                &env,
            ),
            None => Served::start_with_env(
                &auth,
                &["serve", "--role", "verifier", "--public-revocation"],
                &env,
            ),
        })
        .collect();
    for (v, home) in verifiers.iter().zip(&homes) {
        assert_eq!(v.ready["role"], "verifier");
        if db.is_some() {
            assert!(!home.data().join("keys").exists(), "a verifier holds no key file");
            assert!(home.data().join("database").exists());
        }
    }
    let urls: Vec<String> = verifiers
        .iter()
        .map(|v| format!("http://{}/ocsp/auth", v.addr()))
        .collect();
    for url in &urls {
        assert_eq!(status(url, &root, &cert), "good");
    }
    // Every verifier answers the relying party's API calls (the registry is shared).
    for (i, v) in verifiers.iter().enumerate() {
        let (code, answer) = post_json(
            &format!("http://{}/v1/certificates/validity", v.addr()),
            Some(&api_key),
            &json!({ "certificate": cert_pem, "purpose": format!("check {i}") }).to_string(),
        );
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["valid"], true, "{answer}");
    }

    auth.json(&["revoke", "--serial", &serial, "--reason", "key-compromise"]);
    let revoked_at = Instant::now();
    for url in &urls {
        let took = loop {
            if status(url, &root, &cert) == "revoked" {
                break revoked_at.elapsed();
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(10),
                "{url} never said revoked"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        eprintln!("{url}: revoked after {took:?}");
        assert!(took <= BOUND, "{url} said revoked after {took:?}, over {BOUND:?}");
    }

    // A CA key rollover while everything runs: the verifiers take up the new generation without
    // a restart (a certificate of a generation they do not serve brings their upkeep forward),
    // and keep answering for the old one through its own responder.
    auth.json(&["ca", "rollover", "--kdf-iterations", "1000"]);
    let new_card = auth.issue_card(auth.add_resident(Person::ADULT));
    let new_cert = auth.export_cert(new_card.serial("auth").unwrap(), "auth-g2.pem");
    let root2 = auth.export_root("auth", "auth-root-g2.pem");
    let rolled = Instant::now();
    for url in &urls {
        loop {
            let out = openssl_ocsp(url, &root2, &new_cert, &["-no_nonce"]);
            if out.contains("Response verify OK") && out.contains("Cert Status: good") {
                break;
            }
            assert!(
                rolled.elapsed() < Duration::from_secs(30),
                "{url} did not take up generation 2 in 30 s: {out}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!("{url}: generation 2 answered after {:?}", rolled.elapsed());
        assert_eq!(
            status(url, &root, &cert),
            "revoked",
            "generation 1 still answered"
        );
    }
    for v in verifiers {
        assert!(v.stop().success());
    }
    assert!(authority.stop().success());

    // The checks are in the holder's access log, read and checked on the authority's data
    // directory: on PostgreSQL one stream per verifier, each up to its own signed head.
    let log = auth.json(&["access-log", "--serial", &serial]);
    assert_eq!(log["integrity"]["intact"], true, "{log}");
    let records = log["records"].as_array().unwrap();
    let mine: Vec<_> = records
        .iter()
        .filter(|r| r["rp_name"] == "Verifier Bank" && r["check"] == "validity")
        .collect();
    assert_eq!(mine.len(), 2, "{log}");
    let mut purposes: Vec<&str> = mine.iter().map(|r| r["purpose"].as_str().unwrap()).collect();
    purposes.sort_unstable();
    assert_eq!(purposes, ["check 0", "check 1"]);
    let streams = log["integrity"]["streams"].as_array().unwrap();
    assert!(streams.iter().all(|s| s["intact"] == true), "{log}");
    if db.is_some() {
        let mut names: Vec<&str> = mine.iter().map(|r| r["stream"].as_str().unwrap()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 2, "a stream per verifier: {log}");
        // Each named after its data directory's instance identifier (0600, made on first use).
        let ids: Vec<String> = homes
            .iter()
            .map(|h| {
                let file = h.data().join("instance-id");
                use std::os::unix::fs::PermissionsExt as _;
                assert_eq!(
                    std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                    0o600
                );
                std::fs::read_to_string(file).unwrap().trim().to_owned()
            })
            .collect();
        for id in &ids {
            assert!(names.contains(&id.as_str()), "{id} not among {names:?}");
        }
        assert_eq!(streams.len(), 2, "{log}");
    }
}

#[test]
fn a_revocation_reaches_verifiers_on_sqlite_within_a_second() {
    if !have("openssl") {
        assert!(!interop_required(), "openssl is required");
        return;
    }
    revocation_reaches_every_verifier(None);
}

#[test]
fn a_revocation_reaches_verifiers_on_postgres_within_a_second() {
    let Some(server) = postgres_server() else {
        return;
    };
    let url = jpki_db::scratch_postgres(&server, "jpki_roles_test").unwrap();
    revocation_reaches_every_verifier(Some(&url));
}

#[test]
fn a_verifier_needs_a_registry() {
    let j = Jpki::new();
    let out = j.run(&["serve", "--role", "verifier", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--db"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = j.run(&[
        "serve",
        "--role",
        "verifier",
        "--db",
        "mysql://x",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        !j.data().join("database").exists(),
        "nothing written for a bad URL"
    );
}
