//! A verifier opens the shared registry without ever changing its schema: a registry at another
//! version is refused with a message that says to upgrade the authority first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jpki_authority::{Authority, InitOptions, SCHEMA_VERSION};
use jpki_pki::{Endpoints, KeyType};

#[test]
fn a_verifier_never_migrates_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = InitOptions::new(KeyType::P384, Endpoints::new("http://127.0.0.1:7700").unwrap());
    opts.kdf_iterations = 1000;
    drop(Authority::init(dir.path(), &opts, b"test passphrase").unwrap());
    Authority::open_without_migrating(dir.path()).unwrap();
    // An older registry (as if the authority were not upgraded yet).
    let db = rusqlite::Connection::open(dir.path().join("registry.sqlite3")).unwrap();
    db.pragma_update(None, "user_version", SCHEMA_VERSION - 1)
        .unwrap();
    drop(db);
    let e = Authority::open_without_migrating(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("upgrade and restart the authority first"), "{e}");
    let db = rusqlite::Connection::open(dir.path().join("registry.sqlite3")).unwrap();
    let v: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION - 1, "left as it was");
}
