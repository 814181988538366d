//! `jpki sim`: a national-scale simulation through the authority's own operations.
//!
//! Residents are registered (in batches, as a municipality's bulk transfer), most get a card from
//! the card-production path (`Authority::issue_run`), and simulated months go by with the life
//! events of the seeds at Japan's rates: moves (about 4 % a year: the signature certificate is
//! revoked), renewals on the 5th birthday after issuance (a new card when the card itself ends),
//! deaths, lost cards (revoked, a new card issued) and births. Every event is the same
//! `Authority` call the CLI makes; only the card is left out: a pool of pre-generated key pairs
//! stands in for on-card key generation, and no card file is written.
//!
//! Reported: registry bytes per certificate, the issuance rate, events per second, CRL shard
//! sizes (the CRLs are published at the end) and the latency of certificate lookups.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use jpki_authority::{Authority, CardKeys, Issuers, Renewal, RunOptions};
use jpki_model::validity::jst_date;
use jpki_model::{Address, BasicFour, Name, Serial, Sex};
use jpki_pki::{KeyType, SigningKey, SubjectPublicKey};
use serde_json::json;
use time::{Date, Duration, OffsetDateTime};

use crate::{Failure, Report, secrets};

/// `jpki sim` options.
#[derive(Debug, clap::Args)]
pub(crate) struct SimArgs {
    /// Residents at the start.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=200_000_000))]
    pub residents: u64,
    /// Simulated years of life events after the first issuance.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=50))]
    pub years: u32,
    /// Share of residents holding a card, in percent.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub card_holders: u8,
    /// Seed of the simulation's random choices (the same seed plays the same events).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pre-generated RSA-2048 card key pairs standing in for on-card key generation.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub key_pool: u16,
    /// Cards (and residents) per registry transaction in the bulk phases.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Keep the registry in this PostgreSQL database (a new data directory only).
    #[arg(long, env = "JPKI_DB", value_name = "postgres://…", hide_env_values = true)]
    pub db: Option<String>,
    /// Where the CRLs are published at the end (default: DATA/public).
    #[arg(long, value_name = "DIR")]
    pub crl_out: Option<PathBuf>,
    /// Certificate lookups timed at the end.
    #[arg(long, default_value_t = 10_000)]
    pub lookups: u32,
}

/// Yearly rates (per resident) of the life events, from Japan's statistics: 住民基本台帳人口移動報告
/// (about 5 million moves in 125 million), 人口動態統計 (deaths 1.2 %, births 0.6 %), and lost
/// cards as the call centre sees them.
const MOVES_PER_YEAR: f64 = 0.04;
const DEATHS_PER_YEAR: f64 = 0.012;
const BIRTHS_PER_YEAR: f64 = 0.006;
const LOSSES_PER_YEAR: f64 = 0.003;

/// SplitMix64: fast, seedable, good enough to pick residents (not for anything secret).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }

    /// How many of `n` candidates an event with monthly probability `p` hits (the expected
    /// count, rounded up or down at random by its fraction).
    fn count(&mut self, n: usize, p: f64) -> usize {
        let expected = n as f64 * p;
        let whole = expected.floor();
        let extra = usize::from((self.next() % 1_000_000) as f64 / 1e6 < expected - whole);
        whole as usize + extra
    }
}

const FAMILY: [&str; 12] = [
    "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田",
];
const GIVEN: [&str; 12] = [
    "太郎", "花子", "翔", "陽菜", "蓮", "結衣", "大翔", "葵", "悠真", "凛", "健", "美咲",
];
const PLACES: [&str; 8] = [
    "東京都千代田区霞が関",
    "大阪府大阪市北区梅田",
    "北海道札幌市中央区北",
    "福岡県福岡市博多区博多駅前",
    "愛知県名古屋市中区栄",
    "宮城県仙台市青葉区一番町",
    "広島県広島市中区基町",
    "沖縄県那覇市泉崎",
];

fn facts(rng: &mut Rng, born: Date) -> Result<BasicFour, Failure> {
    let name: Name = format!(
        "{}　{}",
        FAMILY[rng.below(FAMILY.len())],
        GIVEN[rng.below(GIVEN.len())]
    )
    .parse()
    .map_err(|e| Failure::Failed(format!("simulated name: {e}")))?;
    Ok(BasicFour {
        name,
        address: address(rng)?,
        birth_date: born,
        sex: if rng.next().is_multiple_of(2) {
            Sex::Male
        } else {
            Sex::Female
        },
    })
}

fn address(rng: &mut Rng) -> Result<Address, Failure> {
    format!(
        "{}{}丁目{}番{}号",
        PLACES[rng.below(PLACES.len())],
        1 + rng.below(9),
        1 + rng.below(30),
        1 + rng.below(20)
    )
    .parse()
    .map_err(|e| Failure::Failed(format!("simulated address: {e}")))
}

/// A simulated resident.
struct Person {
    id: i64,
    alive: bool,
    card: Option<SimCard>,
}

struct SimCard {
    id: String,
    /// The last day of its certificates (renewal is due before).
    certs_end: Date,
    /// The last day of the card.
    card_end: Date,
}

/// Counters the run reports.
#[derive(Debug, Default, serde::Serialize)]
struct Events {
    registered: u64,
    cards_issued: u64,
    renewals: u64,
    new_cards_at_expiry: u64,
    moves: u64,
    deaths: u64,
    losses: u64,
    births: u64,
    certificates_revoked: u64,
}

struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(show: bool, len: u64, what: &str) -> Self {
        Self(show.then(|| {
            let bar = indicatif::ProgressBar::new(len);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg:>22} [{bar:32}] {pos}/{len} ({per_sec}, eta {eta})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_owned());
            bar
        }))
    }

    fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    fn finish(self) {
        if let Some(b) = self.0 {
            b.finish();
        }
    }
}

fn card_of(issued: &jpki_authority::IssuedCard) -> Result<SimCard, Failure> {
    Ok(SimCard {
        id: issued.card_id.as_str().to_owned(),
        certs_end: jst_date(issued.auth.not_after),
        card_end: jpki_model::parse_birth_date(&issued.expires_on)
            .map_err(|e| Failure::Failed(format!("card expiry {}: {e}", issued.expires_on)))?,
    })
}

/// `jpki sim`.
pub(crate) fn sim(args: &SimArgs, data: &Path, json_out: bool) -> Result<Report, Failure> {
    let show = !json_out && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let started = Instant::now();
    // A fresh authority of its own: the simulation issues with the CA keys and moves the clock
    // years ahead, which no real authority may see.
    if Authority::open(data).is_ok() {
        return Err(Failure::Usage(format!(
            "{} already holds an authority: `jpki sim` makes its own and plays simulated years into the future, so give it a new --data",
            data.display()
        )));
    } else {
        let sandbox = std::env::var_os(secrets::PASSPHRASE_ENV).is_none();
        let pass = secrets::new_authority_passphrase(data, sandbox)?;
        let opts = jpki_authority::InitOptions::new(
            KeyType::Rsa2048,
            jpki_pki::Endpoints::new(jpki_pki::Endpoints::DEFAULT_BASE)
                .map_err(|e| Failure::Usage(e.to_string()))?,
        );
        Authority::init_at(data, &opts, pass.as_bytes(), args.db.as_deref())?;
    }
    let mut auth = Authority::open(data)?;
    let passphrase = secrets::authority_passphrase(data)?;
    let issuers = auth.issuers(passphrase.as_bytes())?;
    let clock = Arc::new(Mutex::new(
        OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::now_utc()),
    ));
    let start = *clock.lock().map_err(|_| Failure::Failed("clock".into()))?;
    {
        let clock = Arc::clone(&clock);
        auth.set_clock(move || clock.lock().map_or(start, |t| *t));
    }
    let mut rng = Rng(args.seed);

    // The key pool.
    let t = Instant::now();
    let bar = Progress::new(show, u64::from(args.key_pool), "generating key pool");
    let pool: Vec<SubjectPublicKey> = (0..args.key_pool)
        .map(|_| {
            let k = SigningKey::generate(KeyType::Rsa2048)?;
            bar.inc(1);
            Ok(SubjectPublicKey::from_der(&k.spki_der()?)?)
        })
        .collect::<Result<_, Failure>>()?;
    bar.finish();
    let key_pool_s = t.elapsed().as_secs_f64();
    let keys: Vec<CardKeys> = (0..pool.len())
        .map(|i| CardKeys {
            auth: pool[i].clone(),
            sign: pool[(i + 1) % pool.len()].clone(),
        })
        .collect();

    // 1. Residents, ages 0 to 99.
    let today = jst_date(start);
    let mut people: Vec<Person> = Vec::with_capacity(usize::try_from(args.residents).unwrap_or(0));
    let mut events = Events::default();
    let t = Instant::now();
    let bar = Progress::new(show, args.residents, "registering residents");
    let batch = usize::try_from(args.batch).unwrap_or(1000);
    let mut left = args.residents;
    while left > 0 {
        let n = left.min(u64::from(args.batch));
        let mut group = Vec::with_capacity(batch);
        for _ in 0..n {
            let days = i64::try_from(rng.next() % (100 * 365)).unwrap_or(0);
            let born = today - Duration::days(days);
            group.push((facts(&mut rng, born)?, None));
        }
        for r in auth.add_residents(&group)? {
            people.push(Person {
                id: r.resident_id,
                alive: true,
                card: None,
            });
        }
        events.registered += n;
        bar.inc(n);
        left -= n;
    }
    bar.finish();
    let register_s = t.elapsed().as_secs_f64();

    // 2. Cards for the card holders, through the card-production path.
    let holders: Vec<usize> = (0..people.len())
        .filter(|_| rng.next() % 100 < u64::from(args.card_holders))
        .collect();
    let requests: Vec<(i64, &CardKeys)> = holders
        .iter()
        .enumerate()
        .map(|(n, &i)| (people[i].id, &keys[n % keys.len()]))
        .collect();
    let by_id: std::collections::HashMap<i64, usize> =
        people.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    let t = Instant::now();
    let bar = Progress::new(show, requests.len() as u64, "issuing cards");
    let mut sample: Vec<Serial> = Vec::new();
    let mut certificates_issued = 0u64;
    // Each batch's cards are kept only as what the simulation needs of them (not their
    // certificates): memory stays at a few dozen bytes per resident.
    let mut cards_of: Vec<(usize, SimCard)> = Vec::new();
    auth.issue_run(
        &requests,
        &issuers,
        RunOptions {
            batch,
            ..RunOptions::default()
        },
        &mut |cards| {
            bar.inc(cards.len() as u64);
            for c in cards {
                certificates_issued += 1 + u64::from(c.sign.is_some());
                if sample.len() < 100_000 {
                    sample.push(c.auth.serial.clone());
                }
                if let (Some(&i), Ok(card)) = (by_id.get(&c.resident_id), card_of(&c)) {
                    cards_of.push((i, card));
                }
                events.cards_issued += 1;
            }
            Ok(())
        },
    )?;
    bar.finish();
    let issue_s = t.elapsed().as_secs_f64();
    for (i, card) in cards_of {
        people[i].card = Some(card);
    }

    // 3. Simulated months.
    let months = args.years * 12;
    let t = Instant::now();
    let bar = Progress::new(show, u64::from(months), "simulating months");
    let mut by_id = by_id;
    for m in 1..=months {
        let now = start + Duration::days(i64::from(m) * 365 / 12);
        if let Ok(mut c) = clock.lock() {
            *c = now;
        }
        let today = jst_date(now);
        let soon = today + Duration::days(31);
        month(
            &mut auth,
            &issuers,
            &keys,
            &mut rng,
            &mut people,
            &mut by_id,
            today,
            soon,
            &mut events,
            &mut sample,
        )?;
        bar.inc(1);
    }
    bar.finish();
    let simulate_s = t.elapsed().as_secs_f64();

    // 4. CRLs.
    let out = args.crl_out.clone().unwrap_or_else(|| data.join("public"));
    let t = Instant::now();
    let reports = auth.publish_crls(&out, &issuers, |_, _| {})?;
    let publish_s = t.elapsed().as_secs_f64();
    let shards = usize::from(auth.settings().shards);
    let crls: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            let mut sizes: Vec<usize> = r.files.iter().skip(1).take(shards).map(|f| f.bytes).collect();
            let mut entries: Vec<usize> = r.files.iter().skip(1).take(shards).map(|f| f.entries).collect();
            sizes.sort_unstable();
            entries.sort_unstable();
            json!({
                "ca": r.kind.as_str(),
                "complete_crl": { "entries": r.files.first().map_or(0, |f| f.entries), "bytes": r.files.first().map_or(0, |f| f.bytes) },
                "shards": shards,
                "shard_bytes": { "min": sizes.first(), "median": sizes.get(sizes.len() / 2), "max": sizes.last() },
                "shard_entries": { "min": entries.first(), "median": entries.get(entries.len() / 2), "max": entries.last() },
            })
        })
        .collect();

    // 5. Lookups.
    let mut micros: Vec<f64> = Vec::new();
    if !sample.is_empty() {
        for _ in 0..args.lookups {
            let s = &sample[rng.below(sample.len())];
            let t = Instant::now();
            auth.certificate(s)?;
            micros.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    micros.sort_by(f64::total_cmp);
    let pct = |p: f64| -> Option<f64> {
        (!micros.is_empty()).then(|| micros[((micros.len() - 1) as f64 * p).round() as usize])
    };

    let stats = auth.stats()?;
    let per_cert = if stats.certificates > 0 {
        stats.bytes as f64 / stats.certificates as f64
    } else {
        0.0
    };
    let backend = match auth.backend() {
        jpki_db::Backend::Sqlite => "SQLite",
        jpki_db::Backend::Postgres => "PostgreSQL",
    };
    let issue_rate = certificates_issued as f64 / issue_s.max(1e-9);
    let event_count = events.moves + events.deaths + events.losses + events.renewals + events.births;
    let json = json!({
        "registry": auth.registry_location(),
        "engine": backend,
        "residents": args.residents,
        "years": args.years,
        "seed": args.seed,
        "key_pool": { "keys": args.key_pool, "key_type": "RSA-2048", "seconds": key_pool_s,
                      "note": "pre-generated key pairs stand in for on-card key generation; no card files are written" },
        "events": events,
        "registry_stats": stats,
        "bytes_per_certificate": per_cert,
        "seconds": { "register": register_s, "issue": issue_s, "simulate": simulate_s, "publish_crls": publish_s,
                     "total": started.elapsed().as_secs_f64() },
        "issuance_certificates_per_second": issue_rate,
        "life_events_per_second": event_count as f64 / simulate_s.max(1e-9),
        "crls": crls,
        "lookup_us": { "count": micros.len(), "p50": pct(0.5), "p99": pct(0.99) },
        "clock_end": (*clock.lock().map_err(|_| Failure::Failed("clock".into()))?).to_string(),
    });
    let text = format!(
        "Simulated {} residents over {} year(s) on {backend} ({}) in {:.1} s.\n\
         Key pool: {} pre-generated RSA-2048 key pairs stand in for on-card key generation; no card files are written.\n\
         Cards issued: {} ({} certificates at {:.0}/s); renewals {}, new cards at expiry {}, moves {}, deaths {}, lost cards {}, births {} ({:.0} events/s).\n\
         Registry: {} certificates ({} revoked or on hold), {:.1} MB, {:.0} bytes per certificate.\n\
         CRLs ({} shards per CA) published to {} in {:.1} s; lookups p50 {:.0} µs, p99 {:.0} µs.",
        args.residents,
        args.years,
        auth.registry_location(),
        started.elapsed().as_secs_f64(),
        args.key_pool,
        events.cards_issued,
        certificates_issued,
        issue_rate,
        events.renewals,
        events.new_cards_at_expiry,
        events.moves,
        events.deaths,
        events.losses,
        events.births,
        event_count as f64 / simulate_s.max(1e-9),
        stats.certificates,
        stats.revoked,
        stats.bytes as f64 / 1e6,
        per_cert,
        shards,
        out.display(),
        publish_s,
        pct(0.5).unwrap_or(0.0),
        pct(0.99).unwrap_or(0.0),
    );
    Ok(Report::new(json, text))
}

/// One simulated month of life events.
#[allow(clippy::too_many_arguments)]
fn month(
    auth: &mut Authority,
    issuers: &Issuers,
    keys: &[CardKeys],
    rng: &mut Rng,
    people: &mut Vec<Person>,
    by_id: &mut std::collections::HashMap<i64, usize>,
    today: Date,
    soon: Date,
    events: &mut Events,
    sample: &mut Vec<Serial>,
) -> Result<(), Failure> {
    let alive = people.iter().filter(|p| p.alive).count();
    let pick_alive = |rng: &mut Rng, people: &[Person]| -> Option<usize> {
        // Rejection sampling: most residents are alive.
        (0..64)
            .map(|_| rng.below(people.len()))
            .find(|&i| people[i].alive)
    };
    let key = |rng: &mut Rng| &keys[rng.below(keys.len())];
    // Renewals due this month (the certificates end within a month) and cards ending.
    let due: Vec<usize> = people
        .iter()
        .enumerate()
        .filter(|(_, p)| p.alive && p.card.as_ref().is_some_and(|c| c.certs_end <= soon))
        .map(|(i, _)| i)
        .collect();
    for i in due {
        let Some(card) = people[i].card.as_ref() else {
            continue;
        };
        let id = people[i].id;
        if card.card_end <= soon {
            let issued = auth.issue_card(id, key(rng), issuers)?;
            events.new_cards_at_expiry += 1;
            events.certificates_revoked += issued.superseded.len() as u64;
            people[i].card = Some(card_of(&issued)?);
        } else {
            let sign = auth.signature_eligible(id)?;
            let renewed = auth.renew(&card.id, key(rng), Renewal { auth: true, sign }, issuers)?;
            events.renewals += 1;
            events.certificates_revoked += renewed.superseded.len() as u64;
            if let (Some(c), Some(a)) = (people[i].card.as_mut(), renewed.auth.as_ref()) {
                c.certs_end = jst_date(a.not_after);
            }
        }
    }
    // Moves: the signature certificate is revoked (affiliationChanged).
    for _ in 0..rng.count(alive, MOVES_PER_YEAR / 12.0) {
        if let Some(i) = pick_alive(rng, people) {
            let r = auth.move_resident(people[i].id, &address(rng)?)?;
            events.moves += 1;
            events.certificates_revoked += r.changed.len() as u64;
        }
    }
    // Deaths: every certificate revoked.
    for _ in 0..rng.count(alive, DEATHS_PER_YEAR / 12.0) {
        if let Some(i) = pick_alive(rng, people) {
            let r = auth.decease(people[i].id)?;
            people[i].alive = false;
            people[i].card = None;
            events.deaths += 1;
            events.certificates_revoked += r.changed.len() as u64;
        }
    }
    // Lost cards: reported and confirmed (revoked), then a new card.
    let holders = people.iter().filter(|p| p.alive && p.card.is_some()).count();
    for _ in 0..rng.count(holders, LOSSES_PER_YEAR / 12.0) {
        let Some(i) = (0..64)
            .map(|_| rng.below(people.len()))
            .find(|&i| people[i].alive && people[i].card.is_some())
        else {
            continue;
        };
        let Some(card) = people[i].card.as_ref() else {
            continue;
        };
        let r = auth.report_lost(&card.id, true)?;
        events.certificates_revoked += r.changed.len() as u64;
        let issued = auth.issue_card(people[i].id, key(rng), issuers)?;
        people[i].card = Some(card_of(&issued)?);
        events.losses += 1;
    }
    // Births: registered today; half get a card (no signature certificate under 15).
    let births = rng.count(alive, BIRTHS_PER_YEAR / 12.0);
    if births > 0 {
        let group = (0..births)
            .map(|_| Ok((facts(rng, today)?, None)))
            .collect::<Result<Vec<_>, Failure>>()?;
        for r in auth.add_residents(&group)? {
            by_id.insert(r.resident_id, people.len());
            let card = if rng.next().is_multiple_of(2) {
                let issued = auth.issue_card(r.resident_id, key(rng), issuers)?;
                if sample.len() < 100_000 {
                    sample.push(issued.auth.serial.clone());
                }
                events.cards_issued += 1;
                Some(card_of(&issued)?)
            } else {
                None
            };
            people.push(Person {
                id: r.resident_id,
                alive: true,
                card,
            });
            events.births += 1;
        }
    }
    Ok(())
}
