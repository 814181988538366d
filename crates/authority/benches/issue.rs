//! Card issuance through the authority (`Authority::issue_card`): the pki-level rate of
//! `benches/issuance.rs` (jpki-pki) plus the registry transaction (`BEGIN IMMEDIATE`, serial
//! uniqueness check, inserts, status history, event, commit with `synchronous=FULL`).
//!
//! Each card gets two certificates (authentication + signature, adult residents). Subject keys are
//! pre-generated (a pool of RSA-2048 keys, cycled). Residents are inserted up front with direct
//! SQL so that every issuance is a first card (no superseding), until they run out.
//!
//! Phases: 1 thread with one `Authority`; then N threads (default: every core), each with its own
//! `Authority` (its own SQLite connection) on the same registry: they serialise on the registry's
//! write lock, which `issue_card` holds while it signs.
//!
//! Environment: `JPKI_BENCH_SECS` per phase (default 5), `JPKI_BENCH_THREADS`, `JPKI_BENCH_KEYS`
//! (default 32), `JPKI_BENCH_KEY_TYPE` (`rsa2048` default or `p384`), `JPKI_BENCH_DIR`.
//!
//! Run: `cargo bench -p jpki-authority --bench issue`.
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use jpki_authority::{Authority, CardKeys, InitOptions};
use jpki_model::{IndividualNumber, ResidentRecordCode};
use jpki_pki::{Endpoints, KeyType, SigningKey, SubjectPublicKey};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PASSPHRASE: &[u8] = b"bench-passphrase";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn digits(i: u64) -> [u8; 11] {
    let mut out = [0u8; 11];
    let mut v = i;
    for d in out.iter_mut().rev() {
        *d = (v % 10) as u8;
        v /= 10;
    }
    out
}

fn main() -> Result<(), BoxError> {
    let secs: f64 = env_or("JPKI_BENCH_SECS", 5.0);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads: usize = env_or("JPKI_BENCH_THREADS", cores);
    let pool_size: usize = env_or("JPKI_BENCH_KEYS", 32).max(1);
    let key_type: KeyType = std::env::var("JPKI_BENCH_KEY_TYPE")
        .unwrap_or_else(|_| "rsa2048".into())
        .parse()?;
    let parent = std::env::var_os("JPKI_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let tmp = tempfile::Builder::new()
        .prefix("jpki-issue-bench-")
        .tempdir_in(parent)?;
    let dir = tmp.path().join("data");

    let mut opts = InitOptions::new(key_type, Endpoints::new(Endpoints::DEFAULT_BASE)?);
    opts.kdf_iterations = 1_000;
    drop(Authority::init(&dir, &opts, PASSPHRASE)?);

    // Enough residents for every phase at a generous rate.
    let residents: i64 = env_or("JPKI_BENCH_RESIDENTS", (secs * 3.0 * 6_000.0) as i64);
    {
        let mut conn = rusqlite::Connection::open(dir.join("registry.sqlite3"))?;
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare(
                "INSERT INTO residents (id, individual_number, resident_code, name, address, birth_date, sex, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, '山田太郎', '東京都千代田区霞が関二丁目1番2号', '1980-01-01', 1, 'active', 0, 0)",
            )?;
            for i in 1..=residents {
                let d = digits(i as u64);
                let mut c = [0u8; 10];
                c.copy_from_slice(&d[1..]);
                st.execute(rusqlite::params![
                    i,
                    IndividualNumber::from_random_bytes(d).as_str(),
                    ResidentRecordCode::from_random_bytes(c).as_str()
                ])?;
            }
        }
        tx.commit()?;
    }
    eprintln!("generating {pool_size} pairs of RSA-2048 card keys …");
    let pool: Vec<CardKeys> = (0..pool_size)
        .map(|_| -> Result<CardKeys, BoxError> {
            let k = || -> Result<SubjectPublicKey, BoxError> {
                Ok(SubjectPublicKey::from_der(
                    &SigningKey::generate(KeyType::Rsa2048)?.spki_der()?,
                )?)
            };
            Ok(CardKeys {
                auth: k()?,
                sign: k()?,
            })
        })
        .collect::<Result<_, _>>()?;

    println!(
        "authority issuance bench: {secs} s per phase, {} CA keys, {residents} residents, {pool_size} pre-generated card key pairs, registry in {}",
        key_type.as_str(),
        tmp.path().display()
    );
    let next_resident = AtomicI64::new(1);
    let mut counts = vec![1];
    if threads > 1 {
        counts.push(threads);
    }
    for t in counts {
        let stop = AtomicBool::new(false);
        let results: Vec<Result<(u64, Duration), BoxError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..t)
                .map(|_| {
                    let (stop, next, pool, dir) = (&stop, &next_resident, &pool, &dir);
                    s.spawn(move || -> Result<(u64, Duration), BoxError> {
                        let mut auth = Authority::open(dir)?;
                        let issuers = auth.issuers(PASSPHRASE)?;
                        let start = Instant::now();
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let r = next.fetch_add(1, Ordering::Relaxed);
                            let rid = (r - 1) % residents + 1;
                            let keys = &pool[(r as usize) % pool.len()];
                            auth.issue_card(rid, keys, &issuers)?;
                            n += 1;
                        }
                        Ok((n, start.elapsed()))
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_secs_f64(secs));
            stop.store(true, Ordering::Relaxed);
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("bench thread panicked".into())))
                .collect()
        });
        let mut cards = 0.0;
        for r in results {
            let (n, el) = r?;
            cards += n as f64 / el.as_secs_f64();
        }
        println!(
            "{t} thread(s): {cards:.0} cards/s = {:.0} certificates/s through Authority::issue_card",
            2.0 * cards
        );
    }
    if next_resident.load(Ordering::Relaxed) > residents {
        println!("(residents ran out: later issuances superseded earlier cards)");
    }
    Ok(())
}
