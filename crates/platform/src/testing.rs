//! The engines the platform's store tests run on: SQLite always and, when `JPKI_TEST_POSTGRES`
//! names a PostgreSQL server (scripts/test.sh starts one), a fresh database on it. Under
//! `JPKI_REQUIRE_INTEROP` a missing PostgreSQL is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use jpki_db::{Backend, Db, Location, SqliteOptions};

/// One engine: `None` for SQLite files in a temporary directory, or a server URL.
#[derive(Debug, Clone)]
pub(crate) struct Engine(Option<String>);

impl Engine {
    /// A fresh store location named `name`: a file in `dir` (SQLite), or schema `name` of a new
    /// database (PostgreSQL).
    pub(crate) fn fresh(&self, dir: &Path, name: &str) -> Location {
        match &self.0 {
            None => Location::Sqlite(dir.join(format!("{name}.sqlite"))),
            Some(server) => Location::Postgres {
                url: jpki_db::scratch_postgres(server, "jpki_platform_test").unwrap(),
                schema: name.to_owned(),
            },
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        if self.0.is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// The engines to run on.
pub(crate) fn engines() -> Vec<Engine> {
    let mut out = vec![Engine(None)];
    match std::env::var("JPKI_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => out.push(Engine(Some(url))),
        _ => assert!(
            std::env::var_os("JPKI_REQUIRE_INTEROP").is_none(),
            "JPKI_REQUIRE_INTEROP is set but JPKI_TEST_POSTGRES names no PostgreSQL server"
        ),
    }
    out
}

/// Runs `test` once per engine with a fresh temporary directory, naming the engine if it fails.
pub(crate) fn each_engine(test: impl Fn(&Engine, &Path)) {
    for engine in engines() {
        eprintln!("--- on {:?}", engine.backend());
        let dir = tempfile::tempdir().unwrap();
        test(&engine, dir.path());
    }
}

/// A second connection to the store at `location`, to change it behind the store's back.
pub(crate) fn raw(location: &Location) -> Db {
    Db::open(location, SqliteOptions::default()).unwrap()
}
