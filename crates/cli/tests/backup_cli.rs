//! `jpki backup` and `jpki restore`: a restore into an empty data directory (SQLite, and
//! PostgreSQL when `JPKI_TEST_POSTGRES` names a server) answers every check as before: the same
//! certificate statuses, the same pairwise identifiers (the per-person secrets came back), the
//! same relying-party keys, the same audit trail, and the restored CA keys sign new CRLs and
//! certificates. A wrong passphrase, a cut-off or altered file and a non-empty target are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Jpki, Person, Served, interop_required, post_json};
use serde_json::{Value, json};

/// What relying parties and operators see of an authority: statuses, pairwise ids, audit head.
fn answers(j: &Jpki, env: &[(&str, &str)], serials: &[String], certs: &[String], key: &str) -> Value {
    let statuses: Vec<Value> = serials
        .iter()
        .map(|s| {
            let v = j.json(&["cert", "show", "--serial", s]);
            json!([v["status"], v["reason"]])
        })
        .collect();
    let server = Served::start_with_env(j, &["serve"], env);
    // Pairwise identifiers for the certificates valid now (the first one is revoked).
    let ids: Vec<Value> = certs[1..]
        .iter()
        .map(|pem| {
            let url = format!("http://{}/v1/certificates/pairwise-id", server.addr());
            let (code, v) = post_json(&url, Some(key), &json!({ "certificate": pem }).to_string());
            assert_eq!(code, 200, "{v}");
            v["pairwise_id"].clone()
        })
        .collect();
    let validity: Vec<Value> = certs
        .iter()
        .map(|pem| {
            let url = format!("http://{}/v1/certificates/validity", server.addr());
            let (code, v) = post_json(&url, Some(key), &json!({ "certificate": pem }).to_string());
            assert_eq!(code, 200, "{v}");
            v["status"].clone()
        })
        .collect();
    assert!(server.stop().success());
    json!({ "statuses": statuses, "pairwise": ids, "validity": validity })
}

fn round_trip(db: Option<&str>) {
    let j = Jpki::demo("rsa2048");
    let passphrase = std::fs::read_to_string(j.data().join("authority-passphrase")).unwrap();
    let env = [("JPKI_AUTHORITY_PASSPHRASE", passphrase.trim())];
    let cards: Vec<_> = (0..3)
        .map(|_| j.issue_card(j.add_resident(Person::ADULT)))
        .collect();
    let serials: Vec<String> = cards
        .iter()
        .flat_map(|c| {
            [
                c.serial("auth").unwrap().to_owned(),
                c.serial("sign").unwrap().to_owned(),
            ]
        })
        .collect();
    j.json(&["revoke", "--serial", &serials[0], "--reason", "key-compromise"]);
    j.json(&["revoke", "--serial", &serials[3], "--reason", "certificate-hold"]);
    let certs: Vec<String> = cards
        .iter()
        .enumerate()
        .map(|(i, c)| {
            std::fs::read_to_string(j.export_cert(c.serial("auth").unwrap(), &format!("a{i}.pem"))).unwrap()
        })
        .collect();
    let key = j.json(&["rp", "add", "--name", "Bank", "--allow", "auth-status"])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = answers(&j, &env, &serials, &certs, &key);
    let audit_before = j.json(&["audit", "--limit", "1000"]);

    let file = j.path("authority.jpkibak");
    let b = j.json(&["backup", "--out", file.to_str().unwrap()]);
    let stores: Vec<&str> = b["header"]["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["name"].as_str().unwrap())
        .collect();
    assert_eq!(stores, ["registry", "platform", "access_log"]);
    assert!(
        b["header"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("keys/sign-ca-1"))
    );
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        !bytes.windows(6).any(|w| w == b"BEGIN "),
        "nothing readable in the backup"
    );

    // A restore that fails half-way leaves nothing behind, in the database either: the same
    // database then takes the good backup.
    if let Some(url) = db {
        let mut damaged = bytes.clone();
        let i = damaged.len() - 40;
        damaged[i] ^= 1;
        let f = j.path("damaged.jpkibak");
        std::fs::write(&f, damaged).unwrap();
        let t = Jpki::new();
        let out = t
            .command()
            .envs(env)
            .args(["restore", "--from", f.to_str().unwrap(), "--db", url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(!t.data().exists(), "the data directory is gone again");
    }
    // Restore into a new data directory.
    let r = Jpki::new();
    let mut args = vec!["--json", "restore", "--from", file.to_str().unwrap()];
    if let Some(url) = db {
        args.extend(["--db", url]);
    }
    let out = r.command().envs(env).args(&args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let restored: Value = serde_json::from_slice(&out.stdout).unwrap();
    if db.is_some() {
        assert!(restored["registry"].as_str().unwrap().starts_with("postgres://"));
    }
    // The access records came back, their chains and signed heads intact.
    let log = |j: &Jpki| {
        let out = j
            .command()
            .envs(env)
            .args(["--json", "access-log", "--serial", &serials[2]])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["records"].clone(), v["integrity"].clone())
    };
    let (records_before, _) = log(&j);
    let (records_after, integrity) = log(&r);
    assert!(!records_before.as_array().unwrap().is_empty());
    assert_eq!(records_before, records_after);
    assert_eq!(integrity["intact"], true, "{integrity}");
    let after = answers(&r, &env, &serials, &certs, &key);
    assert_eq!(before, after, "every check answers as before");
    // The audit trail came back intact, with the restore recorded after it.
    let audit_after = r.json(&["audit", "--limit", "1000"]);
    let n = audit_before["entries"].as_array().unwrap().len();
    assert_eq!(
        audit_after["entries"].as_array().unwrap()[..n],
        audit_before["entries"].as_array().unwrap()[..]
    );
    assert_eq!(audit_after["entries"][n]["event"], "restore");
    assert_eq!(audit_after["check"]["broken"], Value::Null);
    // The restored CA keys work: new CRLs, a new card. (The passphrase is never in a backup: this
    // sandbox keeps it in a file, as `init --demo` did.)
    let pass_file = r.data().join("authority-passphrase");
    std::fs::write(&pass_file, &passphrase).unwrap();
    std::fs::set_permissions(&pass_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = r
        .command()
        .envs(env)
        .args(["--json", "crl", "publish", "--out"])
        .arg(r.path("pub"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // CRL numbers jump past any published after the backup was made.
    let published: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        published["cas"][0]["crl_number"].as_u64().unwrap() > 1 << 20,
        "{published}"
    );
    r.issue_card(r.add_resident(Person::ADULT));
    assert_eq!(r.json(&["check"])["consistent"], true);

    // Refusals, each one line, nothing written.
    let again = r
        .command()
        .envs(env)
        .args(["restore", "--from", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    let wrong = Jpki::new();
    let out = wrong
        .command()
        .env("JPKI_AUTHORITY_PASSPHRASE", "not the passphrase")
        .args(["restore", "--from", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"),
        "{out:?}"
    );
    for (name, damaged) in [
        ("cut", bytes[..bytes.len() - 100].to_vec()),
        ("flipped", {
            let mut b = bytes.clone();
            let i = b.len() / 2;
            b[i] ^= 1;
            b
        }),
    ] {
        let f = j.path(format!("{name}.jpkibak"));
        std::fs::write(&f, damaged).unwrap();
        let t = Jpki::new();
        let out = t
            .command()
            .envs(env)
            .args(["restore", "--from", f.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
        assert!(!t.data().join("keys").exists(), "{name}: no key written");
    }
}

#[test]
fn a_restore_into_sqlite_answers_as_before() {
    round_trip(None);
}

#[test]
fn a_restore_into_postgres_answers_as_before() {
    let Some(server) = std::env::var("JPKI_TEST_POSTGRES").ok().filter(|s| !s.is_empty()) else {
        assert!(
            !interop_required(),
            "JPKI_REQUIRE_INTEROP is set but JPKI_TEST_POSTGRES names no server"
        );
        return;
    };
    let url = jpki_db::scratch_postgres(&server, "jpki_restore_test").unwrap();
    round_trip(Some(&url));
}
