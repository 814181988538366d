//! CRL generation for a registry holding a million revoked certificates.
//!
//! 1. Creates an authority (`Authority::init`, low PBKDF2 iterations) in a temporary directory.
//! 2. Fills the registry directly with rusqlite, in one transaction: one resident, one card and
//!    N revoked certificates of the signature CA (default N = 1,000,000; ~2 % on hold, the rest with
//!    varied reasons; `revoked_at` in the past, `not_after` in the future; serials from
//!    `Serial::generate` with random shards). The DER column is a short dummy blob: publication
//!    never reads it. No status_history rows: the complete and shard CRLs do not need them, and the
//!    delta of the second run is then empty.
//! 3. Times `Authority::publish_crls` end to end (both CAs: complete CRL, every shard, delta, ARL,
//!    CA certificate; files fsynced), twice: the first run has no delta base, the second has one.
//! 4. Times, separately, the snapshot query alone and the pure `Issuer::crl` over N in-memory entries.
//!
//! Environment: `JPKI_BENCH_CRL_N` (default 1000000), `JPKI_BENCH_CRL_SHARDS` (default 16),
//! `JPKI_BENCH_KEY_TYPE` (`rsa2048` default, or `p384`), `JPKI_BENCH_DIR` (parent of the temporary
//! directory; default the system temp dir).
//!
//! Run: `cargo bench -p jpki-authority --bench crl` (or `scripts/bench.sh`).
use std::time::Instant;

use jpki_authority::{Authority, InitOptions};
use jpki_model::{CertKind, RevocationReason, Serial};
use jpki_pki::{CrlEntry, CrlScope, CrlSpec, Endpoints, KeyType};
use rusqlite::params;
use time::{Duration, OffsetDateTime};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: deterministic, fast filler randomness (the bench needs speed, not secrecy).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes16(&mut self) -> [u8; 16] {
        let a = self.next().to_be_bytes();
        let b = self.next().to_be_bytes();
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&a);
        out[8..].copy_from_slice(&b);
        out
    }
}

const PASSPHRASE: &[u8] = b"bench-passphrase";

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn main() -> Result<(), BoxError> {
    let n: usize = env_or("JPKI_BENCH_CRL_N", 1_000_000);
    let shards: u16 = env_or("JPKI_BENCH_CRL_SHARDS", 16);
    let key_type: KeyType = std::env::var("JPKI_BENCH_KEY_TYPE")
        .unwrap_or_else(|_| "rsa2048".into())
        .parse()?;
    let parent = std::env::var_os("JPKI_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let tmp = tempfile::Builder::new()
        .prefix("jpki-crl-bench-")
        .tempdir_in(parent)?;
    let dir = tmp.path().join("data");
    let out = tmp.path().join("pub");
    println!(
        "CRL bench: {n} revoked signature certificates, {shards} shards, {} CA keys, in {}",
        key_type.as_str(),
        tmp.path().display()
    );

    // 1. The authority.
    let mut opts = InitOptions::new(key_type, Endpoints::new(Endpoints::DEFAULT_BASE)?);
    opts.shards = shards;
    opts.kdf_iterations = 1_000;
    drop(Authority::init(&dir, &opts, PASSPHRASE)?);

    // 2. Fill the registry.
    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let t = Instant::now();
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let mut entries: Vec<CrlEntry> = Vec::with_capacity(n);
    {
        let mut conn = rusqlite::Connection::open(dir.join("registry.sqlite3"))?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let tx = conn.transaction()?;
        let ts = now.unix_timestamp();
        tx.execute(
            "INSERT INTO residents (id, individual_number, resident_code, name, address, birth_date, sex, status, created_at, updated_at)
             VALUES (1, '123456789018', '12345678901', '山田太郎', '東京都千代田区霞が関1-1', '1980-01-01', 1, 'active', ?1, ?1)",
            [ts],
        )?;
        tx.execute(
            "INSERT INTO cards (id, resident_id, status, issued_at, expires_on) VALUES ('000000000000001', 1, 'revoked', ?1, '2035-01-01')",
            [ts],
        )?;
        {
            let mut st = tx.prepare(
                "INSERT INTO certificates (serial, kind, ca_generation, card_id, resident_id, shard, not_before, not_after, status, reason, revoked_at, issued_at, der)
                 VALUES (?1, 'sign', 1, '000000000000001', 1, ?2, ?3, ?4, ?5, ?6, ?7, ?3, X'300300')",
            )?;
            // Reason mix: superseded and affiliationChanged dominate (renewals, moves), then
            // keyCompromise (lost cards), cessationOfOperation (deaths), unspecified, and holds.
            const MIX: [(u8, u32); 6] = [(4, 40), (3, 35), (1, 12), (5, 8), (0, 3), (6, 2)];
            for _ in 0..n {
                let r = rng.bytes16();
                let serial = Serial::generate(r, u16::from_be_bytes([r[1], r[2]]) % shards);
                let roll = (rng.next() % 100) as u32;
                let mut acc = 0;
                let code = MIX
                    .iter()
                    .find(|(_, w)| {
                        acc += w;
                        roll < acc
                    })
                    .map_or(4, |(c, _)| *c);
                let reason = RevocationReason::from_code(code).ok_or("reason code")?;
                let revoked_at = ts - (rng.next() % (3 * 365 * 86_400)) as i64;
                let not_before = revoked_at - (rng.next() % (2 * 365 * 86_400)) as i64;
                let not_after = ts + 86_400 + (rng.next() % (4 * 365 * 86_400)) as i64;
                let status = if reason == RevocationReason::CertificateHold {
                    "hold"
                } else {
                    "revoked"
                };
                st.execute(params![
                    serial.as_be_bytes(),
                    i64::from(serial.shard().unwrap_or(0)),
                    not_before,
                    not_after,
                    status,
                    i64::from(code),
                    revoked_at
                ])?;
                entries.push(CrlEntry {
                    serial,
                    revoked_at: OffsetDateTime::from_unix_timestamp(revoked_at)?,
                    reason,
                });
            }
        }
        tx.commit()?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    let db_bytes = std::fs::metadata(dir.join("registry.sqlite3"))?.len();
    println!(
        "fill: {n} rows in {:.1} s (registry {:.0} MB)",
        t.elapsed().as_secs_f64(),
        db_bytes as f64 / 1e6
    );

    // 3. publish_crls end to end, twice.
    let mut auth = Authority::open(&dir)?;
    let issuers = auth.issuers(PASSPHRASE)?;
    for run in 1..=2 {
        let t = Instant::now();
        let reports = auth.publish_crls(&out, &issuers, |_, _| {})?;
        let secs = t.elapsed().as_secs_f64();
        let files: usize = reports.iter().map(|r| r.files.len()).sum();
        let bytes: usize = reports.iter().flat_map(|r| &r.files).map(|f| f.bytes).sum();
        println!(
            "publish_crls #{run}: {secs:.2} s end to end ({files} files, {:.1} MB){}",
            mb(bytes),
            if secs < 20.0 {
                "  → PASS (< 20 s)"
            } else {
                "  → FAIL (≥ 20 s)"
            }
        );
        for r in &reports {
            let complete = r.files.first();
            let shard_bytes: usize = r
                .files
                .iter()
                .filter(|f| f.path.contains(&format!("crl/{}/", r.kind.as_str())))
                .map(|f| f.bytes)
                .sum();
            let delta = r.files.iter().find(|f| f.path.ends_with("-delta.crl"));
            println!(
                "  {} CA: CRL #{}: complete {} entries {:.1} MB; {} shards {:.1} MB; delta {}",
                r.kind.as_str(),
                r.crl_number,
                complete.map_or(0, |f| f.entries),
                mb(complete.map_or(0, |f| f.bytes)),
                shards,
                mb(shard_bytes),
                delta.map_or("none".to_owned(), |d| format!("{} entries", d.entries))
            );
        }
    }

    // 4a. The snapshot query alone (what publish_one reads inside its transaction).
    {
        let conn = rusqlite::Connection::open(dir.join("registry.sqlite3"))?;
        let t = Instant::now();
        let mut st = conn.prepare(
            "SELECT serial, shard, revoked_at, reason FROM certificates
             WHERE kind = ?1 AND status <> 'good' AND not_after >= ?2 ORDER BY serial",
        )?;
        let mut rows = st.query(params!["sign", now.unix_timestamp()])?;
        let mut count = 0usize;
        while let Some(r) = rows.next()? {
            let s: Vec<u8> = r.get(0)?;
            let _shard: i64 = r.get(1)?;
            let _at: Option<i64> = r.get(2)?;
            let _reason: Option<i64> = r.get(3)?;
            count += usize::from(!s.is_empty());
        }
        println!(
            "snapshot query alone: {count} rows in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }

    // 4b. Pure Issuer::crl over N in-memory entries (encode + sign, no I/O).
    let issuer = issuers.get(CertKind::Signature);
    let endpoints = Endpoints::new(Endpoints::DEFAULT_BASE)?;
    let spec = CrlSpec {
        scope: CrlScope::Complete,
        number: 1_000,
        this_update: now,
        next_update: now + Duration::hours(24),
        endpoints: &endpoints,
    };
    let t = Instant::now();
    let der = issuer.crl(&spec, entries.iter())?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "Issuer::crl over {n} in-memory entries: {secs:.2} s, {:.1} MB ({:.0} entries/s){}",
        mb(der.len()),
        n as f64 / secs,
        if secs < 20.0 {
            "  → PASS (< 20 s)"
        } else {
            "  → FAIL (≥ 20 s)"
        }
    );
    let mut sorted: Vec<&CrlEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.serial.cmp(&b.serial));
    let t = Instant::now();
    let spec_shard = CrlSpec {
        scope: CrlScope::Shard(0),
        ..spec.clone()
    };
    let shard0: Vec<&CrlEntry> = sorted
        .iter()
        .copied()
        .filter(|e| e.serial.shard() == Some(0))
        .collect();
    let der0 = issuer.crl(&spec_shard, shard0.iter().copied())?;
    println!(
        "Issuer::crl of shard 0 ({} entries): {:.3} s, {:.1} MB",
        shard0.len(),
        t.elapsed().as_secs_f64(),
        mb(der0.len())
    );
    Ok(())
}
