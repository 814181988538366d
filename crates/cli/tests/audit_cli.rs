//! `jpki audit`: the operator audit trail through the binary: who did what, and exit status 1
//! (and `jpki check` failing) once a row was changed behind the database's back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Jpki, Person};

#[test]
fn the_audit_trail_names_operators_and_catches_an_edit() {
    let j = Jpki::demo("p384");
    let out = j
        .command()
        .env("JPKI_OPERATOR", "carol@ward-office")
        .args([
            "--json",
            "resident",
            "add",
            "--name",
            Person::ADULT.name,
            "--address",
            Person::ADULT.address,
        ])
        .args(["--birth", Person::ADULT.birth, "--sex", Person::ADULT.sex])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    j.json(&["crl", "publish", "--out", j.path("pub").to_str().unwrap()]);
    let rp = j.json(&["rp", "add", "--name", "Bank", "--allow", "auth-status"]);
    let v = j.json(&["audit"]);
    let events: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["init", "resident-add", "crl-publish", "crl-publish", "rp-add"]
    );
    let rp_id = rp["rp_id"].as_str().unwrap();
    assert!(v["entries"][4]["detail"].as_str().unwrap().starts_with(rp_id));
    assert_eq!(v["entries"][1]["actor"], "carol@ward-office");
    assert_eq!(v["check"]["broken"], serde_json::Value::Null);
    let paged = j.json(&["audit", "--after", "1", "--limit", "1"]);
    assert_eq!(paged["entries"].as_array().unwrap().len(), 1);
    assert_eq!(paged["entries"][0]["id"], 2);

    // An edit behind the database's back (triggers dropped first).
    let db = rusqlite::Connection::open(j.data().join("registry.sqlite3")).unwrap();
    let refused = db
        .execute("UPDATE events SET actor = 'mallory' WHERE id = 2", [])
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    db.execute_batch(
        "DROP TRIGGER events_append_only_update; UPDATE events SET actor = 'mallory' WHERE id = 2;",
    )
    .unwrap();
    drop(db);
    let out = j.run(&["audit"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("AUDIT TRAIL BROKEN: row 2 (resident-add by mallory"),
        "{text}"
    );
    let check = j.run(&["check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stderr).contains("audit trail: row 2"));
}
