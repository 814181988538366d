//! `jpki sim`: the national-scale simulation, at 100,000 residents for a simulated year (the CI
//! size; 1,000,000 and 10,000,000 are run by hand, docs/PERFORMANCE.md), and a small run of six
//! years on both engines that must play exactly the same events (the seed decides them) and leave
//! registries of the same shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use common::{Jpki, interop_required};
use serde_json::Value;

fn sim(j: &Jpki, args: &[&str]) -> Value {
    let t = Instant::now();
    let v = j.json(&[&["sim"], args].concat());
    eprintln!("jpki sim {}: {:.1} s", args.join(" "), t.elapsed().as_secs_f64());
    v
}

fn count(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} in {v}"))
}

/// The registry is consistent, and the published CRLs list exactly the revoked certificates.
fn consistent(j: &Jpki, v: &Value) {
    let check = j.json(&["check"]);
    assert_eq!(check["problems"], serde_json::json!([]), "{check}");
    let listed: u64 = v["crls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| count(c, &["complete_crl", "entries"]))
        .sum();
    assert_eq!(
        listed,
        count(v, &["registry_stats", "on_crls"]),
        "every revoked certificate not yet expired is on a CRL"
    );
}

#[test]
fn a_hundred_thousand_residents_for_a_year() {
    let j = Jpki::new();
    let v = sim(
        &j,
        &["--residents", "100000", "--years", "1", "--lookups", "2000"],
    );
    assert_eq!(count(&v, &["events", "registered"]), 100_000);
    let cards = count(&v, &["events", "cards_issued"]);
    assert!(
        (78_000..=82_000).contains(&cards),
        "about 80 % hold a card: {cards}"
    );
    let moves = count(&v, &["events", "moves"]);
    assert!(
        (3_600..=4_400).contains(&moves),
        "about 4 % move in a year: {moves}"
    );
    assert!(count(&v, &["events", "deaths"]) > 900);
    assert!(count(&v, &["events", "losses"]) > 100);
    assert!(count(&v, &["registry_stats", "certificates"]) > 140_000);
    assert!(
        v["bytes_per_certificate"].as_f64().unwrap() > 1000.0,
        "a certificate and its rows"
    );
    assert!(
        v["key_pool"]["note"]
            .as_str()
            .unwrap()
            .contains("stand in for on-card key generation")
    );
    assert_eq!(v["crls"].as_array().unwrap().len(), 2);
    consistent(&j, &v);
    // A second run refuses the populated data directory.
    let again = j.run(&["sim", "--residents", "10"]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
}

/// The same seed plays the same six years on SQLite and on PostgreSQL.
#[test]
fn six_years_play_the_same_on_both_engines() {
    let small = [
        "--residents",
        "1500",
        "--years",
        "6",
        "--seed",
        "7",
        "--lookups",
        "200",
    ];
    let lite = Jpki::new();
    let a = sim(&lite, &small);
    assert!(
        count(&a, &["events", "renewals"]) > 0,
        "5th-birthday renewals happen within six years"
    );
    assert!(
        count(&a, &["events", "new_cards_at_expiry"]) > 0,
        "cards of minors end after five years"
    );
    consistent(&lite, &a);
    let Some(server) = std::env::var("JPKI_TEST_POSTGRES").ok().filter(|s| !s.is_empty()) else {
        assert!(
            !interop_required(),
            "JPKI_REQUIRE_INTEROP is set but JPKI_TEST_POSTGRES names no server"
        );
        return;
    };
    let url = jpki_db::scratch_postgres(&server, "jpki_sim_test").unwrap();
    let pg = Jpki::new();
    let b = sim(&pg, &[&small[..], &["--db", &url]].concat());
    assert_eq!(b["engine"], "PostgreSQL");
    assert_eq!(a["events"], b["events"], "the same events on both engines");
    for k in ["residents", "cards", "certificates", "revoked", "on_crls"] {
        assert_eq!(a["registry_stats"][k], b["registry_stats"][k], "{k}");
    }
    consistent(&pg, &b);
}
