//! The operator audit trail on both engines: who did what when, append-only in the database, and
//! a hash chain that names the first row changed behind the database's back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::Engine;

use jpki_authority::{Authority, InitOptions};
use jpki_db::{Db, Location, SqliteOptions, params};
use jpki_model::BasicFour;
use jpki_pki::{Endpoints, KeyType};

const PASS: &[u8] = b"test passphrase";

fn facts() -> BasicFour {
    BasicFour {
        name: "山田　太郎".parse().unwrap(),
        address: "東京都千代田区霞が関1-2-3".parse().unwrap(),
        birth_date: time::macros::date!(1980 - 04 - 01),
        sex: jpki_model::Sex::Male,
    }
}

fn authority(engine: &Engine) -> (tempfile::TempDir, Authority) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = InitOptions::new(KeyType::P384, Endpoints::new("http://127.0.0.1:7700").unwrap());
    opts.kdf_iterations = 1000;
    let a = common::init(engine, dir.path(), &opts, PASS);
    (dir, a)
}

/// The registry's own connection, for doing what an intruder with database access would.
fn raw(dir: &std::path::Path) -> Db {
    let loc = jpki_authority::registry_location(dir).unwrap().unwrap();
    let loc = match loc {
        Location::Postgres { url, .. } => Location::Postgres {
            url,
            schema: jpki_authority::REGISTRY_SCHEMA.into(),
        },
        l => l,
    };
    Db::open(&loc, SqliteOptions::default()).unwrap()
}

#[test]
fn the_trail_names_the_operator_and_is_append_only() {
    common::each_engine(the_trail_names_the_operator_and_is_append_only_on);
}

fn the_trail_names_the_operator_and_is_append_only_on(engine: &Engine) {
    let (dir, mut a) = authority(engine);
    a.set_operator("alice@counter-3");
    let r = a.add_resident(&facts(), None).unwrap();
    a.move_resident(r.resident_id, &"大阪府大阪市北区梅田1-1".parse().unwrap())
        .unwrap();
    a.record_action("rp-add", "rp-0123 name Bank").unwrap();
    let trail = a.audit_trail(0, 100).unwrap();
    let events: Vec<&str> = trail.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["init", "resident-add", "resident-move", "rp-add"]);
    assert!(
        trail[1..].iter().all(|e| e.actor == "alice@counter-3"),
        "{trail:?}"
    );
    assert_eq!(trail[1].resident_id, Some(r.resident_id));
    assert_eq!(
        a.audit_trail(2, 1).unwrap()[0].event,
        "resident-move",
        "paged by id"
    );
    let check = a.verify_audit_trail().unwrap();
    assert_eq!((check.entries, check.broken.as_deref()), (4, None));
    assert_eq!(check.head, trail[3].hash);

    // The database refuses to change or remove a row.
    let db = raw(dir.path());
    for sql in [
        "UPDATE events SET actor = 'mallory' WHERE id = 2",
        "DELETE FROM events WHERE id = 2",
    ] {
        let e = db.execute(sql, params![]).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{}: {e}", engine.name());
    }
    // Someone who gets round the database (drops the triggers) is caught by the chain.
    match engine.name() {
        "SQLite" => db
            .batch("DROP TRIGGER events_append_only_update; DROP TRIGGER events_append_only_delete;")
            .unwrap(),
        _ => db.batch("ALTER TABLE events DISABLE TRIGGER USER").unwrap(),
    }
    db.execute("UPDATE events SET actor = 'mallory' WHERE id = 2", params![])
        .unwrap();
    let check = a.verify_audit_trail().unwrap();
    let broken = check.broken.unwrap();
    assert!(broken.starts_with("row 2 (resident-add by mallory"), "{broken}");
    db.execute(
        "UPDATE events SET actor = 'alice@counter-3' WHERE id = 2",
        params![],
    )
    .unwrap();
    assert_eq!(a.verify_audit_trail().unwrap().broken, None, "restored");
    db.execute("DELETE FROM events WHERE id = 3", params![]).unwrap();
    let broken = a.verify_audit_trail().unwrap().broken.unwrap();
    assert!(broken.contains("missing before row 4"), "{broken}");
}
