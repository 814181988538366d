//! The registry engines every authority test runs on: SQLite always and, when `JPKI_TEST_POSTGRES`
//! names a PostgreSQL server (scripts/test.sh starts one), a fresh database on it: one conformance
//! suite for both backends.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use jpki_authority::{Authority, InitOptions};

/// One engine: `None` for SQLite in the data directory, or a server URL to make a database on.
#[derive(Debug, Clone)]
pub struct Engine(Option<String>);

impl Engine {
    pub fn name(&self) -> &'static str {
        if self.0.is_some() { "PostgreSQL" } else { "SQLite" }
    }
}

/// The engines to run on. Under `JPKI_REQUIRE_INTEROP` a missing PostgreSQL is a failure.
pub fn engines() -> Vec<Engine> {
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

/// Runs `test` once per engine, naming the engine if it fails.
pub fn each_engine(test: impl Fn(&Engine)) {
    for engine in engines() {
        eprintln!("--- on {}", engine.name());
        test(&engine);
    }
}

/// `Authority::init` on `engine`: a fresh PostgreSQL database per call.
pub fn init(engine: &Engine, dir: &Path, opts: &InitOptions, pass: &[u8]) -> Authority {
    let url = engine
        .0
        .as_ref()
        .map(|server| jpki_db::scratch_postgres(server, "jpki_authority_test").unwrap());
    Authority::init_at(dir, opts, pass, url.as_deref()).unwrap()
}
