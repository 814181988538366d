//! PostgreSQL stopped and restarted under load, on a cluster of the test's own (scripts/pg.sh):
//!
//! - a verifier keeps answering relying parties (their keys seen before included) from its
//!   snapshot, and says how stale it is (OCSP thisUpdate is the last sync); past `--max-staleness`
//!   it answers tryLater and /healthz 503, never a stale "good";
//! - the authority's writes fail with a one-line "unreachable" error while the database is down and
//!   succeed after the restart;
//! - nothing acknowledged is lost: a revocation acknowledged before the stop is still answered
//!   revoked after it, and one made after the restart reaches the verifier.
//!
//! It prints its counters (OCSP queries by answer, failed writes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Jpki, Person, Served, have, interop_required, openssl_ocsp};

fn pg_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg.sh")
}

fn pg_available() -> bool {
    std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|mut d| d.next().is_some()) || have("initdb")
}

/// A throwaway cluster; stopped on drop.
struct Cluster {
    dir: tempfile::TempDir,
    url: String,
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("jpki-pg-restart-")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = Command::new(pg_script())
            .args(["start", dir.path().to_str().unwrap(), &port.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Self { dir, url }
    }

    fn pg(&self, what: &str) {
        let out = Command::new(pg_script())
            .args([what, self.dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg.sh {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(pg_script())
            .args(["stop", self.dir.path().to_str().unwrap()])
            .output();
    }
}

/// One OCSP answer as openssl printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Good,
    Revoked,
    TryLater,
    Other(String),
}

fn ask(url: &str, root: &Path, cert: &Path) -> (Said, Option<String>) {
    // `url` carries the relying party's key after a '#': OCSP here is for registered RPs.
    let (url, key) = url.split_once('#').unwrap_or((url, ""));
    let header = format!("Authorization=Bearer {key}");
    let out = openssl_ocsp(url, root, cert, &["-no_nonce", "-header", &header]);
    let said = if out.contains("trylater") {
        Said::TryLater
    } else if out.contains("Cert Status: revoked") {
        Said::Revoked
    } else if out.contains("Cert Status: good") {
        Said::Good
    } else {
        Said::Other(out.lines().next().unwrap_or_default().to_owned())
    };
    let this_update = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("This Update: "))
        .map(str::to_owned);
    (said, this_update)
}

/// openssl's "Nov 21 14:40:01 2026 GMT" as Unix seconds.
fn parse_openssl_time(s: &str) -> i64 {
    let fmt = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), &fmt)
        .unwrap_or_else(|e| panic!("{s:?}: {e}"))
        .assume_utc()
        .unix_timestamp()
}

fn healthz(addr: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{addr}/healthz"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    t.elapsed()
}

#[test]
fn verifiers_ride_out_a_database_restart() {
    if !pg_available() || !have("openssl") || !have("curl") {
        assert!(!interop_required(), "PostgreSQL, openssl and curl are required");
        return;
    }
    let cluster = Cluster::start();
    let auth = Jpki::new();
    auth.json(&["init", "--demo", "--kdf-iterations", "1000", "--db", &cluster.url]);
    let cards: Vec<_> = (0..2)
        .map(|_| auth.issue_card(auth.add_resident(Person::ADULT)))
        .collect();
    let serial = |i: usize| cards[i].serial("auth").unwrap().to_owned();
    let certs: Vec<PathBuf> = (0..2)
        .map(|i| auth.export_cert(&serial(i), &format!("c{i}.pem")))
        .collect();
    let root = auth.export_root("auth", "root.pem");
    let passphrase = std::fs::read_to_string(auth.data().join("authority-passphrase")).unwrap();
    let env = [("JPKI_AUTHORITY_PASSPHRASE", passphrase.trim())];
    let key = auth.json(&["rp", "add", "--name", "Bank", "--allow", "auth-status"])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    // A second relying party whose key the verifier has not seen when the database goes down.
    let unseen = auth.json(&["rp", "add", "--name", "Shop", "--allow", "auth-status"])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let authority = Served::start(&auth, &["serve", "--role", "authority"]);
    let home = Jpki::new();
    let verifier = Served::start_with_env(
        &home,
        &[
            "serve",
            "--role",
            "verifier",
            "--db",
            &cluster.url,
            "--max-staleness",
            "4",
        ],
        &env,
    );
    // Relying parties' keys are checked in the database; while it is down, keys seen before are
    // still known (no key can be revoked meanwhile).
    let url = format!("http://{}/ocsp/auth#{key}", verifier.addr());

    // Load: a thread asks about both certificates all the time and tallies the answers.
    let stop = Arc::new(AtomicBool::new(false));
    let tally: Arc<Mutex<std::collections::BTreeMap<String, u64>>> = Arc::default();
    let load = {
        let (stop, tally, url, root, certs) = (
            Arc::clone(&stop),
            Arc::clone(&tally),
            url.clone(),
            root.clone(),
            certs.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for c in &certs {
                    let (said, _) = ask(&url, &root, c);
                    *tally.lock().unwrap().entry(format!("{said:?}")).or_default() += 1;
                }
            }
        })
    };

    // An acknowledged revocation before the outage.
    auth.json(&["revoke", "--serial", &serial(0), "--reason", "key-compromise"]);
    wait_for("revoked before the stop", Duration::from_secs(5), || {
        ask(&url, &root, &certs[0]).0 == Said::Revoked
    });
    assert_eq!(ask(&url, &root, &certs[1]).0, Said::Good);

    // The database goes away.
    // The verifier's last sync can be at most one poll before the stop begins.
    let stopped = Instant::now();
    cluster.pg("stop");
    // The authority's writes fail, one line naming the problem.
    let out = auth.run(&["revoke", "--serial", &serial(1), "--reason", "key-compromise"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unreachable"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let failed_writes = 1;
    // The verifier answers from its snapshot, and its thisUpdate falls behind.
    std::thread::sleep(Duration::from_millis(2500).saturating_sub(stopped.elapsed()));
    let (said0, _) = ask(&url, &root, &certs[0]);
    let (said1, this_update) = ask(&url, &root, &certs[1]);
    if stopped.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            (said0, said1),
            (Said::Revoked, Said::Good),
            "answers from the snapshot"
        );
        let lag =
            time::OffsetDateTime::now_utc().unix_timestamp() - parse_openssl_time(&this_update.unwrap());
        assert!(lag >= 1, "thisUpdate names the last sync, {lag} s ago");
    }
    // Past --max-staleness: tryLater, and /healthz says so.
    wait_for("tryLater past the bound", Duration::from_secs(10), || {
        ask(&url, &root, &certs[1]).0 == Said::TryLater
    });
    assert!(
        stopped.elapsed() >= Duration::from_millis(3500),
        "not before the bound (4 s after the last sync, at most one poll before the stop)"
    );
    assert_eq!(healthz(&verifier.addr()), "503");
    // A key the verifier cannot check now is told to come back (503), not that it is unknown.
    let validity = format!("http://{}/v1/certificates/validity", verifier.addr());
    let body = serde_json::json!({ "certificate": std::fs::read_to_string(&certs[1]).unwrap() }).to_string();
    let (code, v) = common::post_json(&validity, Some(&unseen), &body);
    assert_eq!(code, 503, "an unseen key while the database is down: {v}");
    assert!(v["error"].as_str().unwrap().contains("unreachable"), "{v}");

    // The database comes back.
    cluster.pg("restart");
    let back = wait_for("answers after the restart", Duration::from_secs(20), || {
        ask(&url, &root, &certs[1]).0 == Said::Good
    });
    eprintln!("pg_restart: answering again {back:?} after the restart");
    assert_eq!(healthz(&verifier.addr()), "200");
    assert_eq!(
        ask(&url, &root, &certs[0]).0,
        Said::Revoked,
        "the acknowledged revocation survived"
    );
    // The authority writes again, and the verifier follows.
    auth.json(&["revoke", "--serial", &serial(1), "--reason", "key-compromise"]);
    let took = wait_for("the new revocation", Duration::from_secs(5), || {
        ask(&url, &root, &certs[1]).0 == Said::Revoked
    });
    assert!(took <= Duration::from_secs(1), "{took:?}");
    assert_eq!(auth.json(&["check"])["consistent"], true);
    // With the database back the unseen key is checked, and a key never registered is refused.
    // (The key registry's own connection reconnects on its next use; allow it a few tries.)
    wait_for("the unseen key checked", Duration::from_secs(10), || {
        common::post_json(&validity, Some(&unseen), &body).0 == 200
    });
    assert_eq!(
        common::post_json(&validity, Some("jpki_not-a-registered-key"), &body).0,
        401
    );

    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let tally = tally.lock().unwrap().clone();
    println!("pg_restart: OCSP answers under load {tally:?}; failed writes while down {failed_writes}");
    assert!(tally.get("TryLater").copied().unwrap_or(0) > 0);
    assert!(tally.get("Good").copied().unwrap_or(0) > 0);
    assert!(verifier.stop().success());
    assert!(authority.stop().success());
}
