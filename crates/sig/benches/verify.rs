//! CAdES-B-B verification throughput against the raw RSA-2048 verification rate (one core).
//!
//! Setup: an RSA-2048 root, one signer with an RSA-2048 key (as on the card) and a JPKI signature
//! certificate, a complete CRL of `JPKI_BENCH_CRL_ENTRIES` revoked serials (default 100,000) in
//! memory, and `JPKI_BENCH_N` (default 10,000) detached CAdES-B-B signatures over distinct
//! contents of 200–1,024 bytes. Then, on one thread, alternating rounds of:
//!
//! - raw: `ParsedPublicKey::verify_sig` (aws-lc-rs, key parsed once) of each signature's PKCS#1 v1.5
//!   SHA-256 signature over its signed attributes — the floor no verifier can beat;
//! - verify: `Verifier::verify_cades` of each whole signature with its content, producing the full
//!   report (the path is built once and cached; the CRL lookup is a hash map);
//! - stages: parse only, and parse + content digest, to say where the time beyond RSA goes.
//!
//! The bar (issue 4): verify ≥ 70 % of raw. Run: `cargo bench -p jpki-sig --bench verify`
//! (or `scripts/bench.sh verify`).
use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::signature::{self, ParsedPublicKey};
use jpki_model::{BasicFour, CertKind, RevocationReason, Serial};
use jpki_pki::path::TrustAnchors;
use jpki_pki::revocation::{CrlStore, ParsedCrl};
use jpki_pki::{
    CrlEntry, CrlScope, CrlSpec, EndEntitySpec, Endpoints, Issuer, KeyType, RootSpec, SigningKey,
    SubjectPublicKey, issue_root,
};
use jpki_sig::cades;
use jpki_sig::report::Indication;
use jpki_sig::signed_data::{DigestAlg, ParsedSignedData};
use jpki_sig::validate::Verifier;
use time::{Duration, OffsetDateTime};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random16() -> Result<[u8; 16], BoxError> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| "random generator failed")?;
    Ok(b)
}

struct Corpus {
    verifier: Verifier,
    items: Vec<(Vec<u8>, Vec<u8>)>,
    /// (signed attributes, signature) for the raw rate.
    raw: Vec<(Vec<u8>, Vec<u8>)>,
    key: ParsedPublicKey,
    now: OffsetDateTime,
}

fn build(n: usize, crl_entries: usize) -> Result<Corpus, BoxError> {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let endpoints = Endpoints::new("http://127.0.0.1:7700")?;
    let root_key = SigningKey::generate(KeyType::Rsa2048)?;
    let root = issue_root(&RootSpec {
        kind: CertKind::Signature,
        key: &root_key,
        serial: &Serial::from_be_bytes(&[1])?,
        not_before: now - Duration::days(30),
        not_after: now + Duration::days(3650),
        endpoints: &endpoints,
        generation: 1,
    })?;
    let issuer = Issuer::new(CertKind::Signature, root_key, root.clone())?;
    let signer_key = SigningKey::generate(KeyType::Rsa2048)?;
    let spki = SubjectPublicKey::from_der(&signer_key.spki_der()?)?;
    let facts = BasicFour {
        name: "山田　太郎".parse()?,
        address: "東京都千代田区霞が関2-1-2".parse()?,
        birth_date: jpki_model::parse_birth_date("1980-04-01")?,
        sex: "1".parse()?,
    };
    let cert = issuer.issue(
        &EndEntitySpec {
            serial: &Serial::generate(random16()?, 0),
            subject_key: &spki,
            subject_id: "BENCHSIGNER00001",
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
            facts: Some(&facts),
        },
        &endpoints,
    )?;
    let entries: Vec<CrlEntry> = (0..crl_entries)
        .map(|_| -> Result<CrlEntry, BoxError> {
            Ok(CrlEntry {
                serial: Serial::generate(random16()?, 0),
                revoked_at: now - Duration::hours(1),
                reason: RevocationReason::KeyCompromise,
            })
        })
        .collect::<Result<_, _>>()?;
    let crl = issuer.crl(
        &CrlSpec {
            scope: CrlScope::Complete,
            number: 1,
            this_update: now,
            next_update: now + Duration::days(1),
            endpoints: &endpoints,
        },
        &entries,
    )?;
    let mut crls = CrlStore::new();
    crls.add(ParsedCrl::from_der(&crl, "bench.crl")?);
    let mut anchors = TrustAnchors::new();
    anchors.add_der(&root)?;
    let verifier = Verifier::new(anchors, Arc::new(crls));

    let mut items = Vec::with_capacity(n);
    let mut raw = Vec::with_capacity(n);
    let chain = vec![root];
    for i in 0..n {
        let len = 200 + (i * 37) % 825;
        let content: Vec<u8> = (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        let digest = jpki_pki::x509::sha256(&content);
        let prepared = cades::prepare(&digest, &cert, &chain, Some(now - Duration::minutes(5)))?;
        let sig = signer_key.sign(prepared.to_be_signed())?;
        raw.push((prepared.to_be_signed().to_vec(), sig.clone()));
        items.push((prepared.finish(&sig)?, content));
    }
    let key = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, spki.bits().raw_bytes())?;
    Ok(Corpus {
        verifier,
        items,
        raw,
        key,
        now,
    })
}

fn per_sec(n: usize, f: impl FnOnce() -> Result<(), BoxError>) -> Result<f64, BoxError> {
    let start = Instant::now();
    f()?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn main() -> Result<(), BoxError> {
    let n: usize = env_or("JPKI_BENCH_N", 10_000);
    let crl_entries: usize = env_or("JPKI_BENCH_CRL_ENTRIES", 100_000);
    let rounds: usize = env_or("JPKI_BENCH_ROUNDS", 3);
    let build_start = Instant::now();
    let c = build(n, crl_entries)?;
    println!(
        "corpus: {n} CAdES-B-B signatures (RSA-2048, content 200-1024 bytes), CRL of {crl_entries} entries; \
         built in {:.1} s",
        build_start.elapsed().as_secs_f64()
    );
    // Warm the verifier's caches (path, parsed certificate, CRL signature) as a batch job would.
    let first = c
        .verifier
        .verify_cades(&c.items[0].0, Some(&c.items[0].1), c.now)?;
    if first.indication != Indication::TotalPassed {
        return Err(format!("the bench signature does not pass: {:?}", first.reasons).into());
    }
    let (mut best_raw, mut best_verify, mut best_parse, mut best_digest) = (0f64, 0f64, 0f64, 0f64);
    for _ in 0..rounds {
        best_raw = best_raw.max(per_sec(n, || {
            for (msg, sig) in &c.raw {
                c.key
                    .verify_sig(msg, sig)
                    .map_err(|_| "raw verification failed")?;
            }
            Ok(())
        })?);
        best_verify = best_verify.max(per_sec(n, || {
            for (cms, content) in &c.items {
                let r = c.verifier.verify_cades(cms, Some(content), c.now)?;
                if r.indication != Indication::TotalPassed {
                    return Err(format!("verification failed: {:?}", r.reasons).into());
                }
            }
            Ok(())
        })?);
        best_parse = best_parse.max(per_sec(n, || {
            for (cms, _) in &c.items {
                std::hint::black_box(ParsedSignedData::parse(cms)?);
            }
            Ok(())
        })?);
        best_digest = best_digest.max(per_sec(n, || {
            for (_, content) in &c.items {
                std::hint::black_box(DigestAlg::Sha256.digest(content));
            }
            Ok(())
        })?);
    }
    let us = |rate: f64| 1e6 / rate;
    println!(
        "raw RSA-2048 verify (1 thread):     {best_raw:>9.0} /s  ({:.1} µs each)",
        us(best_raw)
    );
    println!(
        "verify_cades + report (1 thread):   {best_verify:>9.0} /s  ({:.1} µs each) = {:.1} % of raw",
        us(best_verify),
        100.0 * best_verify / best_raw
    );
    println!("  of which CMS parsing:             {:>9.1} µs", us(best_parse));
    println!("  of which content SHA-256:         {:>9.1} µs", us(best_digest));
    println!(
        "  rest (attributes, signing-certificate hash, caches, CRL lookup, report): {:.1} µs",
        us(best_verify) - us(best_raw) - us(best_parse) - us(best_digest)
    );
    Ok(())
}
