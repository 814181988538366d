//! Access records end to end: checks made through `jpki serve` (the JSON API with a purpose, and
//! OCSP with a key) land in the holder's hash-chained log, which `jpki access-log` shows and checks;
//! a record modified or deleted in the database afterwards is named, with exit status 1. On SQLite,
//! and on PostgreSQL when `JPKI_TEST_POSTGRES` names a server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{Jpki, Person, Served, have, interop_required, post_json, s};
use jpki_db::params;
use serde_json::json;

#[test]
fn checks_are_recorded_for_the_holder_and_tampering_is_found() {
    if !have("curl") || !have("openssl") {
        return;
    }
    recorded_and_checked(None);
}

#[test]
fn checks_are_recorded_for_the_holder_and_tampering_is_found_on_postgres() {
    let server = match std::env::var("JPKI_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                !interop_required(),
                "JPKI_REQUIRE_INTEROP is set but JPKI_TEST_POSTGRES names no PostgreSQL server"
            );
            return;
        }
    };
    if !have("curl") || !have("openssl") {
        return;
    }
    let url = jpki_db::scratch_postgres(&server, "jpki_access_log_test").unwrap();
    recorded_and_checked(Some(&url));
}

fn recorded_and_checked(db_url: Option<&str>) {
    let j = Jpki::new();
    let mut init = vec!["init", "--demo", "--kdf-iterations", "1000", "--key-type", "p384"];
    if let Some(url) = db_url {
        init.extend(["--db", url]);
    }
    j.json(&init);
    let card = j.issue_card(j.add_resident(Person::ADULT));
    let other = j.issue_card(j.add_resident(Person {
        name: "鈴木花子",
        ..Person::ADULT
    }));
    let auth_serial = card.serial("auth").unwrap().to_owned();
    let sign_serial = card.serial("sign").unwrap().to_owned();
    let auth_pem = std::fs::read_to_string(j.export_cert(&auth_serial, "auth.pem")).unwrap();
    let sign_cert = j.export_cert(&sign_serial, "sign.pem");
    let sign_root = j.export_root("sign", "sign-root.pem");
    let bank = j.json(&[
        "rp",
        "add",
        "--name",
        "みずほ銀行",
        "--allow",
        "auth-status,sign-status,age",
        "--age-thresholds",
        "18",
        "--purpose",
        "口座開設",
    ]);
    let key = bank["api_key"].as_str().unwrap().to_owned();

    // Before any check: an empty, intact log. (The log key is made by the first `serve`.)
    let server = Served::start(&j, &["serve"]);
    let base = format!("http://{}", server.addr());
    let (code, v) = post_json(
        &format!("{base}/v1/certificates/validity"),
        Some(&key),
        &json!({ "certificate": auth_pem, "purpose": "口座開設の本人確認" }).to_string(),
    );
    assert_eq!(code, 200, "{v}");
    let (code, v) = post_json(
        &format!("{base}/v1/certificates/age"),
        Some(&key),
        &json!({ "certificate": auth_pem, "at_least": 18 }).to_string(),
    );
    assert_eq!(code, 200, "{v}");
    // A purpose that is not a string is refused and leaves no record.
    let (code, v) = post_json(
        &format!("{base}/v1/certificates/validity"),
        Some(&key),
        &json!({ "certificate": auth_pem, "purpose": 7 }).to_string(),
    );
    assert_eq!(code, 400, "{v}");
    let ocsp = Command::new("openssl")
        .args(["ocsp", "-issuer", s(&sign_root), "-cert", s(&sign_cert), "-url"])
        .arg(format!("{base}/ocsp/sign"))
        .args([
            "-header",
            &format!("Authorization=Bearer {key}"),
            "-CAfile",
            s(&sign_root),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ocsp.stdout).contains(": good"),
        "{ocsp:?}"
    );
    assert!(server.stop().success());

    let log = j.json(&["access-log", "--serial", &sign_serial]);
    let records = log["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{log}");
    assert_eq!(records[0]["check"], "validity");
    assert_eq!(records[0]["purpose"], "口座開設の本人確認");
    assert_eq!(records[0]["kind"], "auth");
    assert_eq!(records[0]["result"], "valid");
    assert_eq!(records[0]["rp_name"], "みずほ銀行");
    assert_eq!(records[1]["check"], "age ≥ 18");
    assert_eq!(records[1]["result"], "yes, certificate valid");
    // Checks without a purpose of their own carry the one the bank registered.
    assert_eq!(records[1]["purpose"], "口座開設");
    assert_eq!(records[2]["purpose"], "口座開設");
    assert_eq!(records[2]["check"], "ocsp");
    assert_eq!(records[2]["kind"], "sign");
    assert_eq!(records[2]["result"], "good");
    // One machine (`jpki serve`, every role): the unnamed stream.
    assert!(records.iter().all(|r| r["stream"] == ""), "{log}");
    assert_eq!(log["integrity"]["intact"], true, "{log}");
    assert_eq!(log["integrity"]["records"], 3);
    // Nothing of the birth date in the log, only what the bank saw.
    assert!(!log.to_string().contains("1980"), "{log}");
    // The same log from the auth certificate; another person's is empty.
    assert_eq!(
        j.json(&["access-log", "--serial", &auth_serial])["records"],
        log["records"]
    );
    let empty = j.json(&["access-log", "--serial", other.serial("auth").unwrap()]);
    assert_eq!(empty["records"].as_array().unwrap().len(), 0);
    assert_eq!(empty["integrity"]["intact"], true);

    // Tampering in the database: modify a record, then restore it and delete one.
    let location = match db_url {
        None => jpki_db::Location::Sqlite(j.data().join("access-log.sqlite")),
        Some(url) => jpki_db::Location::Postgres {
            url: url.to_owned(),
            schema: "access_log".to_owned(),
        },
    };
    let db = jpki_db::Db::open(&location, jpki_db::SqliteOptions::default()).unwrap();
    let changed = db
        .execute(
            "UPDATE access_records SET result = 'revoked' WHERE seq = 1",
            params![],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let out = j
        .command()
        .args(["--json", "access-log", "--serial", &sign_serial])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["integrity"]["intact"], false);
    assert!(
        v["integrity"]["problem"]
            .as_str()
            .unwrap()
            .contains("record 1 was modified"),
        "{v}"
    );
    db.execute(
        "UPDATE access_records SET result = 'valid' WHERE seq = 1",
        params![],
    )
    .unwrap();
    assert_eq!(
        j.json(&["access-log", "--serial", &sign_serial])["integrity"]["intact"],
        true
    );
    db.execute("DELETE FROM access_records WHERE seq = 2", params![])
        .unwrap();
    let out = j
        .command()
        .args(["access-log", "--serial", &sign_serial])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Integrity: FAILED — record 2 is missing"), "{text}");
    db.execute("DELETE FROM access_records WHERE seq = 3", params![])
        .unwrap();
    let out = j
        .command()
        .args(["--json", "access-log", "--serial", &sign_serial])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["integrity"]["problem"].as_str().unwrap().contains("removed"),
        "{v}"
    );

    // Bad input: one line, exit 2 or 1.
    let out = j
        .command()
        .args(["access-log", "--serial", "zz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = j
        .command()
        .args(["access-log", "--serial", "0123"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1);
}
