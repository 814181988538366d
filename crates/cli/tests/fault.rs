//! Fault injection: the `jpki` process is killed with SIGKILL at random points while it issues,
//! renews, revokes, records life events and publishes CRLs, many times over one data directory.
//!
//! Acceptance: no serial is ever reused, the registry stays consistent (`jpki check` after every
//! step), and every acknowledged revocation survives. An operation is *acknowledged* only when the
//! process exited 0 and printed its complete JSON object; a killed operation may or may not have
//! committed, so the ledger below only makes claims about acknowledged ones and only checks
//! properties that no later (possibly half-finished) operation may legitimately undo:
//!
//! - every acknowledged serial exists, belongs to the card and kind it was acknowledged for, and
//!   no serial or card id is ever acknowledged twice;
//! - an acknowledged `revoked` stays `revoked` with the same reason and revocation time;
//! - an acknowledged `hold` stays `hold` or becomes `revoked` (no operation run here lifts holds);
//! - acknowledged CRL numbers strictly increase per CA, and the final complete and shard CRLs (signature
//!   checked against the CA certificate) list every acknowledged revocation and hold;
//! - a card's signing-password retry counter never goes back up (no operation here gives the right
//!   password: a killed write must not bring back an older card file), and a refused wrong password
//!   has been counted before the card answered.
//!
//! It runs on a SQLite registry and, when `JPKI_TEST_POSTGRES` names a server, on PostgreSQL.
//!
//! Environment: `JPKI_FAULT_ITERATIONS` (default 200), `JPKI_FAULT_SEED` (decimal or 0x-hex, to replay
//! the same sequence of operations and kill delays; the kill points themselves also depend on timing),
//! `JPKI_FAULT_KEEP=1` keeps the data directory. Run with `--nocapture` to see the summary line.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const JPKI: &str = env!("CARGO_BIN_EXE_jpki");
const SIGKILL: i32 = 9;
const DEFAULT_ITERATIONS: u64 = 200;
/// Full ledger verification every this many iterations (and at the end).
const VERIFY_EVERY: u64 = 10;

// ----- a tiny seeded PRNG (xorshift64*) ---------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that small seeds still give a well-mixed, non-zero state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        if v.is_empty() {
            None
        } else {
            v.get(usize::try_from(self.below(v.len() as u64)).unwrap_or(0))
        }
    }
}

fn seed_from_env() -> u64 {
    match std::env::var("JPKI_FAULT_SEED") {
        Ok(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            }
            .unwrap_or_else(|e| panic!("JPKI_FAULT_SEED={s:?}: {e}"))
        }
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            t ^ (u64::from(std::process::id()) << 32)
        }
    }
}

// ----- running jpki ------------------------------------------------------------------------------

struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Outcome {
    fn killed(&self) -> bool {
        self.signal == Some(SIGKILL)
    }
    /// The JSON object of an acknowledged operation: exit 0 and one complete object (no "error").
    fn ack(&self) -> Option<Value> {
        if self.code != Some(0) {
            return None;
        }
        let v: Value = serde_json::from_str(self.stdout.trim()).ok()?;
        (v.is_object() && v.get("error").is_none()).then_some(v)
    }
}

fn command(data: &Path, args: &[String]) -> Command {
    let mut c = Command::new(JPKI);
    c.arg("--data")
        .arg(data)
        .args(args)
        .env_remove("JPKI_DATA")
        .env_remove("JPKI_AUTHORITY_PASSPHRASE")
        .env_remove("JPKI_AUTH_PIN")
        .env_remove("JPKI_SIGN_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `jpki`, SIGKILLing it after `kill_after` when given (a no-op if it already exited).
fn run(data: &Path, args: &[String], kill_after: Option<Duration>) -> Outcome {
    let start = Instant::now();
    let mut child = command(data, args).spawn().expect("spawn jpki");
    if let Some(d) = kill_after {
        // Poll rather than sleep the whole delay: the kill must land while the process runs.
        let deadline = start + d;
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep((deadline - now).min(Duration::from_micros(500)));
        }
    }
    let out = child.wait_with_output().expect("wait for jpki");
    Outcome {
        code: out.status.code(),
        signal: out.status.signal(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn str_of(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

// ----- the ledger of acknowledged facts ----------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Op {
    Issue,
    Renew,
    Revoke,
    Move,
    ReportLost,
    Publish,
    /// A wrong signing password given to the card: its retry counter must go down and stay down.
    WrongPin,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Renew => "renew",
            Self::Revoke => "revoke",
            Self::Move => "move",
            Self::ReportLost => "report-lost",
            Self::Publish => "publish",
            Self::WrongPin => "wrong-pin",
        }
    }
}

#[derive(Debug, Clone)]
struct Issued {
    card_id: String,
    kind: &'static str,
    iteration: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Revoked for good: status, reason and (once seen) revocation time never change again.
    Revoked {
        reason: String,
        revoked_at: Option<String>,
    },
    /// On hold: stays on hold or becomes revoked.
    Hold,
}

#[derive(Debug, Clone)]
struct CardRec {
    card_id: String,
    file: PathBuf,
}

#[derive(Default)]
struct Counters {
    iterations: u64,
    kills: u64,
    /// Killed issuances whose card file the same command then finished.
    resumed: u64,
    acknowledged: u64,
    refused: u64,
    unacked_exit0: u64,
    revocations: u64,
    checks: u64,
    verifications: u64,
    publishes: u64,
    /// PIN-counter readings compared with the one before.
    pin_checks: u64,
    refusals: BTreeMap<String, u64>,
    per_op: BTreeMap<Op, (u64, u64, u64)>, // (runs, kills, acks)
}

struct Fault {
    data: PathBuf,
    seed: u64,
    rng: Rng,
    residents: Vec<i64>,
    cards: Vec<CardRec>,
    latest_card: HashMap<i64, usize>,
    serials: HashMap<String, Issued>,
    serial_order: Vec<String>,
    card_ids: HashSet<String>,
    revocations: HashMap<String, Expect>,
    crl_numbers: HashMap<String, u64>,
    /// Serials a refusal showed to be revoked already (by an operation killed after it committed):
    /// not a ledger claim, only so that `revoke` picks live targets.
    seen_revoked: HashSet<String>,
    typical: HashMap<Op, Duration>,
    next_card_file: u64,
    /// The signing-password tries each card file had when last read: never to go up (no operation
    /// here gives the right password, and a killed write must not bring back an older file).
    pin_tries: HashMap<PathBuf, u64>,
    log: Vec<String>,
    c: Counters,
}

impl Fault {
    fn fail(&self, msg: &str) -> ! {
        let tail: Vec<&String> = self.log.iter().rev().take(20).rev().collect();
        panic!(
            "FAULT INVARIANT BROKEN: {msg}\n  seed={} (replay: JPKI_FAULT_SEED={}), data dir {}\n  last operations:\n    {}",
            self.seed,
            self.seed,
            self.data.display(),
            tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n    ")
        );
    }

    /// Runs to completion and requires success.
    fn must(&mut self, args: &[String]) -> Value {
        let o = run(&self.data, args, None);
        match o.ack() {
            Some(v) => v,
            None => self.fail(&format!(
                "`jpki {}` failed (code {:?}, signal {:?}): {}{}",
                args.join(" "),
                o.code,
                o.signal,
                o.stderr.trim(),
                o.stdout.trim()
            )),
        }
    }

    fn check(&mut self) {
        let o = run(&self.data, &[s("--json"), s("check")], None);
        self.c.checks += 1;
        let ok = o
            .ack()
            .is_some_and(|v| v.get("consistent") == Some(&Value::Bool(true)));
        if !ok {
            self.fail(&format!(
                "`jpki check` after iteration {}: code {:?}: {} {}",
                self.c.iterations,
                o.code,
                o.stderr.trim(),
                o.stdout.trim()
            ));
        }
    }

    // -- recording acknowledgements --

    fn ack_serial(&mut self, serial: Option<String>, card_id: &str, kind: &'static str) {
        let Some(serial) = serial else { return };
        if let Some(prev) = self.serials.get(&serial) {
            self.fail(&format!(
                "serial {serial} REUSED: acknowledged for {kind} on card {card_id} at iteration {}, \
                 already acknowledged for {} on card {} at iteration {}",
                self.c.iterations, prev.kind, prev.card_id, prev.iteration
            ));
        }
        self.serials.insert(
            serial.clone(),
            Issued {
                card_id: card_id.to_owned(),
                kind,
                iteration: self.c.iterations,
            },
        );
        self.serial_order.push(serial);
    }

    fn ack_status(&mut self, serial: &str, status: &str, reason: Option<String>, revoked_at: Option<String>) {
        let new = match status {
            "revoked" => Expect::Revoked {
                reason: reason.unwrap_or_else(|| self.fail(&format!("{serial}: revoked without a reason"))),
                revoked_at,
            },
            "hold" => Expect::Hold,
            other => self.fail(&format!(
                "{serial}: acknowledged status {other:?} is not a revocation"
            )),
        };
        match self.revocations.get(serial) {
            Some(Expect::Revoked { reason, .. }) => self.fail(&format!(
                "{serial}: acknowledged as {status} although already acknowledged revoked ({reason})"
            )),
            Some(Expect::Hold) | None => {
                self.c.revocations += 1;
                self.revocations.insert(serial.to_owned(), new);
            }
        }
    }

    fn ack_changed_list(&mut self, v: &Value) {
        for c in v
            .get("certificates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let serial = str_of(&c, "serial").unwrap_or_else(|| self.fail("changed entry without serial"));
            let status = str_of(&c, "status").unwrap_or_default();
            self.ack_status(&serial, &status, str_of(&c, "reason"), None);
        }
    }

    fn ack_superseded(&mut self, v: &Value) {
        for sv in v
            .get("superseded")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let serial = sv.as_str().map(str::to_owned).unwrap_or_default();
            self.ack_status(&serial, "revoked", Some(s("superseded")), None);
        }
    }

    // -- choosing operations --

    fn choose(&mut self) -> (Op, Vec<String>) {
        let roll = self.rng.below(100);
        let op = match roll {
            0..27 => Op::Issue,
            27..40 => Op::Renew,
            40..58 => Op::Revoke,
            58..67 => Op::Move,
            67..76 => Op::ReportLost,
            76..88 => Op::Publish,
            _ => Op::WrongPin,
        };
        let pick_card = |f: &mut Self| -> Option<CardRec> {
            if f.rng.percent(80) {
                let latest: Vec<usize> = f.latest_card.values().copied().collect();
                f.rng.pick(&latest).and_then(|i| f.cards.get(*i).cloned())
            } else {
                let n = f.cards.len() as u64;
                f.cards.get(usize::try_from(f.rng.below(n)).ok()?).cloned()
            }
        };
        let args: Option<Vec<String>> = match op {
            Op::Issue => None,
            Op::Renew => pick_card(self).map(|c| {
                vec![
                    s("--json"),
                    s("card"),
                    s("renew"),
                    s("--card"),
                    c.file.display().to_string(),
                ]
            }),
            Op::Revoke => {
                let live: Vec<String> = self
                    .serial_order
                    .iter()
                    .filter(|x| {
                        !self.seen_revoked.contains(*x)
                            && !matches!(self.revocations.get(*x), Some(Expect::Revoked { .. }))
                    })
                    .cloned()
                    .collect();
                let reason = if self.rng.percent(20) {
                    "certificate-hold"
                } else {
                    "key-compromise"
                };
                self.rng.pick(&live).cloned().map(|serial| {
                    vec![
                        s("--json"),
                        s("revoke"),
                        s("--serial"),
                        serial,
                        s("--reason"),
                        s(reason),
                    ]
                })
            }
            Op::Move => {
                let r = *self.rng.pick(&self.residents).unwrap_or(&1);
                let n = self.rng.below(1000);
                Some(vec![
                    s("--json"),
                    s("resident"),
                    s("move"),
                    s("--resident"),
                    r.to_string(),
                    s("--address"),
                    format!("東京都千代田区霞が関1-{n}"),
                ])
            }
            Op::ReportLost => pick_card(self).map(|c| {
                let mut a = vec![
                    s("--json"),
                    s("card"),
                    s("report-lost"),
                    s("--card-id"),
                    c.card_id,
                ];
                if self.rng.percent(50) {
                    a.push(s("--confirm"));
                }
                a
            }),
            Op::Publish => Some(vec![
                s("--json"),
                s("crl"),
                s("publish"),
                s("--out"),
                self.data.join("pub").display().to_string(),
            ]),
            Op::WrongPin => pick_card(self).map(|c| {
                vec![
                    s("--json"),
                    s("card"),
                    s("read-cert"),
                    s("--card"),
                    c.file.display().to_string(),
                    s("--kind"),
                    s("sign"),
                    s("--out"),
                    self.data.join("read.pem").display().to_string(),
                    s("--sign-password"),
                    s("WRONGPW9"),
                ]
            }),
        };
        match args {
            Some(a) => (op, a),
            None => (Op::Issue, self.issue_args()),
        }
    }

    fn issue_args(&mut self) -> Vec<String> {
        let r = *self.rng.pick(&self.residents).unwrap_or(&1);
        self.next_card_file += 1;
        let file = self
            .data
            .join("cards")
            .join(format!("{}.card", self.next_card_file));
        vec![
            s("--json"),
            s("card"),
            s("issue"),
            s("--resident"),
            r.to_string(),
            s("--out"),
            file.display().to_string(),
            s("--auth-pin"),
            s("1234"),
            s("--sign-password"),
            s("ABCDEF12"),
        ]
    }

    fn arg_after(args: &[String], flag: &str) -> Option<String> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    }

    /// Records what an acknowledged operation claims.
    fn record(&mut self, op: Op, args: &[String], v: &Value) {
        match op {
            Op::Issue => {
                let card_id = str_of(v, "card_id").unwrap_or_else(|| self.fail("issue: no card_id"));
                if !self.card_ids.insert(card_id.clone()) {
                    self.fail(&format!("card id {card_id} acknowledged twice"));
                }
                let resident: i64 = Self::arg_after(args, "--resident")
                    .and_then(|r| r.parse().ok())
                    .unwrap_or_default();
                let file = PathBuf::from(Self::arg_after(args, "--out").unwrap_or_default());
                if !file.exists() {
                    self.fail(&format!(
                        "acknowledged card {card_id}: card file {} missing",
                        file.display()
                    ));
                }
                self.ack_serial(str_of(v, "auth_serial"), &card_id, "auth");
                self.ack_serial(str_of(v, "sign_serial"), &card_id, "sign");
                self.ack_superseded(v);
                self.cards.push(CardRec { card_id, file });
                self.latest_card.insert(resident, self.cards.len() - 1);
            }
            Op::Renew => {
                let card_id = str_of(v, "card_id").unwrap_or_else(|| self.fail("renew: no card_id"));
                if !self.card_ids.contains(&card_id) {
                    self.fail(&format!("renew acknowledged for unknown card {card_id}"));
                }
                self.ack_serial(str_of(v, "auth_serial"), &card_id, "auth");
                self.ack_serial(str_of(v, "sign_serial"), &card_id, "sign");
                self.ack_superseded(v);
            }
            Op::Revoke => {
                let serial = str_of(v, "serial").unwrap_or_default();
                let status = str_of(v, "status").unwrap_or_default();
                self.ack_status(&serial, &status, str_of(v, "reason"), str_of(v, "revoked_at"));
            }
            Op::Move | Op::ReportLost => self.ack_changed_list(v),
            Op::Publish => {
                self.ack_publish(v);
            }
            Op::WrongPin => self.fail("the card accepted a wrong signing password"),
        }
    }

    /// The signing-password tries the card file says it has left (an unkilled `card info`),
    /// checked against the last reading: a counter never goes back up.
    fn pin_tries(&mut self, card: &Path) -> Option<u64> {
        let o = run(
            &self.data,
            &[
                s("--json"),
                s("card"),
                s("info"),
                s("--card"),
                card.display().to_string(),
            ],
            None,
        );
        let v = o.ack()?;
        let tries = v["pins"]["sign"]["tries_left"].as_u64()?;
        self.c.pin_checks += 1;
        if let Some(&before) = self.pin_tries.get(card)
            && tries > before
        {
            self.fail(&format!(
                "card file {}: signing-password tries went up from {before} to {tries}",
                card.display()
            ));
        }
        self.pin_tries.insert(card.to_owned(), tries);
        Some(tries)
    }

    fn ack_publish(&mut self, v: &Value) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let cas = v
            .get("cas")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if cas.len() != 2 {
            self.fail(&format!("publish acknowledged with {} CAs", cas.len()));
        }
        self.c.publishes += 1;
        for ca in cas {
            let kind = str_of(&ca, "kind").unwrap_or_default();
            let n = ca
                .get("crl_number")
                .and_then(Value::as_u64)
                .unwrap_or_else(|| self.fail("publish: no crl_number"));
            if let Some(prev) = self.crl_numbers.get(&kind)
                && n <= *prev
            {
                self.fail(&format!(
                    "CRL number of the {kind} CA went from {prev} to {n}: not strictly increasing"
                ));
            }
            self.crl_numbers.insert(kind.clone(), n);
            out.push((kind, n));
        }
        out
    }

    // -- verification --

    fn verify(&mut self) {
        self.c.verifications += 1;
        for serial in self.serial_order.clone() {
            let issued = self
                .serials
                .get(&serial)
                .cloned()
                .unwrap_or_else(|| self.fail("ledger"));
            let v = self.must(&[s("--json"), s("cert"), s("show"), s("--serial"), serial.clone()]);
            let got = |k: &str| str_of(&v, k).unwrap_or_default();
            if got("serial") != serial || got("card_id") != issued.card_id || got("kind") != issued.kind {
                self.fail(&format!(
                    "serial {serial} acknowledged as {} on card {} but the registry holds {} {} on card {}",
                    issued.kind,
                    issued.card_id,
                    got("serial"),
                    got("kind"),
                    got("card_id")
                ));
            }
            let status = got("status");
            let expect = self.revocations.get(&serial).cloned();
            match expect {
                None => {}
                Some(Expect::Hold) if status != "hold" && status != "revoked" => {
                    self.fail(&format!("{serial}: acknowledged on hold, now {status:?}"));
                }
                Some(Expect::Hold) => {}
                Some(Expect::Revoked { reason, revoked_at }) => {
                    if status != "revoked" || got("reason") != reason {
                        self.fail(&format!(
                            "ACKNOWLEDGED REVOCATION LOST: {serial} acknowledged revoked ({reason}), now {status:?} ({})",
                            got("reason")
                        ));
                    }
                    match revoked_at {
                        Some(at) if at != got("revoked_at") => self.fail(&format!(
                            "{serial}: revocation time changed from {at} to {}",
                            got("revoked_at")
                        )),
                        Some(_) => {}
                        None => {
                            self.revocations.insert(
                                serial.clone(),
                                Expect::Revoked {
                                    reason,
                                    revoked_at: Some(got("revoked_at")),
                                },
                            );
                        }
                    }
                }
            }
        }
        // Revocations of serials issued by operations that were killed after committing (superseded
        // or changed by an acknowledged operation) are checked through cert show too.
        let extra: Vec<(String, Expect)> = self
            .revocations
            .iter()
            .filter(|(k, _)| !self.serials.contains_key(*k))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        for (serial, e) in extra {
            let v = self.must(&[s("--json"), s("cert"), s("show"), s("--serial"), serial.clone()]);
            let status = str_of(&v, "status").unwrap_or_default();
            let ok = match &e {
                Expect::Hold => status == "hold" || status == "revoked",
                Expect::Revoked { reason, .. } => {
                    status == "revoked" && str_of(&v, "reason").as_deref() == Some(reason.as_str())
                }
            };
            if !ok {
                self.fail(&format!(
                    "ACKNOWLEDGED REVOCATION LOST: {serial} acknowledged {e:?}, now {status:?}"
                ));
            }
        }
    }

    /// The final publication: both CAs' complete and shard CRLs must list every acknowledged
    /// revocation and hold, with valid signatures.
    fn verify_crls(&mut self, v: &Value) -> usize {
        let out = self.data.join("pub");
        let mut listed: HashMap<String, HashSet<String>> = HashMap::new();
        for kind in ["sign", "auth"] {
            let ca = std::fs::read(out.join(format!("ca/{kind}.cer"))).unwrap_or_default();
            let files: Vec<String> = v
                .get("cas")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| c.get("kind").and_then(Value::as_str) == Some(kind))
                .flat_map(|c| {
                    c.get("files")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|f| str_of(&f, "path"))
                .filter(|p| p.ends_with(".crl"))
                .collect();
            for path in files {
                let der = std::fs::read(out.join(&path)).unwrap_or_default();
                match jpki_pki::verify_signed_by(&der, &ca) {
                    Ok(true) => {}
                    other => self.fail(&format!("{path}: signature does not verify ({other:?})")),
                }
                let serials =
                    crl_serials(&der).unwrap_or_else(|| self.fail(&format!("{path}: unparsable CRL")));
                listed.entry(path).or_default().extend(serials);
            }
        }
        let kinds: HashMap<String, &'static str> =
            self.serials.iter().map(|(k, i)| (k.clone(), i.kind)).collect();
        let revoked: Vec<String> = self.revocations.keys().cloned().collect();
        for serial in &revoked {
            let kind = match kinds.get(serial) {
                Some(k) => *k,
                None => {
                    // Issued by a killed operation: ask the registry.
                    let v = self.must(&[s("--json"), s("cert"), s("show"), s("--serial"), serial.clone()]);
                    if str_of(&v, "kind").as_deref() == Some("sign") {
                        "sign"
                    } else {
                        "auth"
                    }
                }
            };
            let shard = serial_shard(serial);
            for path in [format!("crl/{kind}.crl"), format!("crl/{kind}/{shard}.crl")] {
                if !listed.get(&path).is_some_and(|set| set.contains(serial)) {
                    self.fail(&format!("acknowledged revocation {serial} missing from {path}"));
                }
            }
        }
        revoked.len()
    }
}

/// Files under `dir` whose name starts with `prefix`.
fn count_named(dir: &Path, prefix: &str) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_named(&p, prefix)
            } else {
                usize::from(e.file_name().to_string_lossy().starts_with(prefix))
            }
        })
        .sum()
}

/// The shard a 16-byte generated serial carries (bytes 1..3).
fn serial_shard(hex: &str) -> u16 {
    let padded = format!("{hex:0>32}");
    u16::from_str_radix(padded.get(2..6).unwrap_or("0"), 16).unwrap_or(0)
}

/// One DER TLV: (tag, content, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&l0, b) = b.split_first()?;
    let (len, b) = if l0 < 0x80 {
        (usize::from(l0), b)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n].iter().fold(0usize, |a, &x| (a << 8) | usize::from(x));
        (len, &b[n..])
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// Serials (lowercase hex) listed in a DER CertificateList.
fn crl_serials(der: &[u8]) -> Option<Vec<String>> {
    let (_, cert_list, _) = tlv(der)?;
    let (_, mut tbs, _) = tlv(cert_list)?;
    let mut after_time = false;
    while !tbs.is_empty() {
        let (tag, content, rest) = tlv(tbs)?;
        tbs = rest;
        if tag == 0x17 || tag == 0x18 {
            after_time = true;
        } else if tag == 0x30 && after_time {
            let mut out = Vec::new();
            let mut entries = content;
            while !entries.is_empty() {
                let (_, entry, rest) = tlv(entries)?;
                entries = rest;
                let (itag, int, _) = tlv(entry)?;
                if itag != 0x02 {
                    return None;
                }
                out.push(jpki_model::Serial::from_be_bytes(int).ok()?.to_hex());
            }
            return Some(out);
        }
    }
    Some(Vec::new())
}

#[test]
fn sigkill_during_issuance_and_revocation_keeps_the_registry_sound() {
    fault_run("SQLite", None);
}

/// The same on a PostgreSQL registry (when `JPKI_TEST_POSTGRES` names a server).
#[test]
fn sigkill_keeps_a_postgres_registry_sound() {
    let Some(server) = std::env::var("JPKI_TEST_POSTGRES").ok().filter(|s| !s.is_empty()) else {
        assert!(
            std::env::var_os("JPKI_REQUIRE_INTEROP").is_none(),
            "JPKI_REQUIRE_INTEROP is set but JPKI_TEST_POSTGRES names no PostgreSQL server"
        );
        return;
    };
    let url = jpki_db::scratch_postgres(&server, "jpki_fault_test").expect("scratch database");
    fault_run("PostgreSQL", Some(&url));
}

fn fault_run(engine: &str, db: Option<&str>) {
    let started = Instant::now();
    let iterations: u64 = std::env::var("JPKI_FAULT_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    let seed = seed_from_env();
    eprintln!("fault [{engine}]: seed={seed} iterations={iterations} (replay with JPKI_FAULT_SEED={seed})");
    let tmp = tempfile::tempdir().expect("temp dir");
    // With JPKI_FAULT_KEEP the directory survives, also when an invariant fails.
    let (_guard, root) = if std::env::var_os("JPKI_FAULT_KEEP").is_some() {
        let kept = tmp.keep();
        eprintln!("fault: data kept in {}", kept.display());
        (None, kept)
    } else {
        let p = tmp.path().to_owned();
        (Some(tmp), p)
    };
    let data = root.join("data");
    let mut f = Fault {
        data: data.clone(),
        seed,
        rng: Rng::new(seed),
        residents: Vec::new(),
        cards: Vec::new(),
        latest_card: HashMap::new(),
        serials: HashMap::new(),
        serial_order: Vec::new(),
        card_ids: HashSet::new(),
        revocations: HashMap::new(),
        crl_numbers: HashMap::new(),
        seen_revoked: HashSet::new(),
        typical: HashMap::new(),
        next_card_file: 0,
        pin_tries: HashMap::new(),
        log: Vec::new(),
        c: Counters::default(),
    };

    // Setup (never killed).
    let mut init = vec![
        s("--json"),
        s("init"),
        s("--demo"),
        s("--kdf-iterations"),
        s("1000"),
    ];
    if let Some(url) = db {
        init.extend([s("--db"), s(url)]);
    }
    f.must(&init);
    std::fs::create_dir_all(data.join("cards")).expect("cards dir");
    for (name, birth) in [
        ("山田太郎", "1980-01-01"),
        ("佐藤花子", "1975-06-15"),
        ("鈴木一郎", "1990-12-31"),
        ("田中次郎", "2015-04-01"), // under 15: no signature certificate
    ] {
        let v = f.must(&[
            s("--json"),
            s("resident"),
            s("add"),
            s("--name"),
            s(name),
            s("--address"),
            s("東京都千代田区霞が関1-1"),
            s("--birth"),
            s(birth),
            s("--sex"),
            s("1"),
        ]);
        let id = v.get("resident_id").and_then(Value::as_i64).expect("resident_id");
        f.residents.push(id);
    }
    // Calibration: one unkilled run of each operation gives its typical duration (and a first card
    // for every resident).
    for r in f.residents.clone() {
        let mut args = f.issue_args();
        if let Some(pos) = args.iter().position(|a| a == "--resident") {
            args[pos + 1] = r.to_string();
        }
        let t = Instant::now();
        let v = f.must(&args);
        f.typical.insert(Op::Issue, t.elapsed());
        f.record(Op::Issue, &args, &v);
    }
    let calib = |f: &mut Fault, op: Op| {
        let (_, args) = loop {
            let c = f.choose();
            if c.0 == op {
                break c;
            }
        };
        let o = run(&f.data, &args, None);
        f.typical.insert(op, o.elapsed);
        if let Some(v) = o.ack() {
            f.record(op, &args, &v);
        }
    };
    for op in [
        Op::Renew,
        Op::Revoke,
        Op::Move,
        Op::ReportLost,
        Op::Publish,
        Op::WrongPin,
    ] {
        calib(&mut f, op);
    }
    f.check();
    let typical_line: Vec<String> = f
        .typical
        .iter()
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .map(|(k, v)| format!("{}={}ms", k.name(), v.as_millis()))
        .collect();
    eprintln!("fault: typical durations {}", typical_line.join(" "));

    for i in 1..=iterations {
        f.c.iterations = i;
        let (op, args) = f.choose();
        let typical = f.typical.get(&op).copied().unwrap_or(Duration::from_millis(200));
        // 20% run to completion; the rest get a SIGKILL somewhere in 0..1.2×typical.
        let kill_after = (!f.rng.percent(20)).then(|| {
            let max_us = (typical.as_micros() as u64).saturating_mul(12) / 10 + 1;
            Duration::from_micros(f.rng.below(max_us))
        });
        let pin_card = (op == Op::WrongPin)
            .then(|| PathBuf::from(Fault::arg_after(&args, "--card").unwrap_or_default()));
        let pin_before = pin_card.clone().and_then(|c| f.pin_tries(&c));
        let o = run(&data, &args, kill_after);
        if let (Some(card), Some(before)) = (&pin_card, pin_before) {
            let after = f.pin_tries(card).unwrap_or(before);
            // A refused attempt was counted before the card answered: the decrement is durable.
            if !o.killed() && before > 0 && after != before - 1 {
                f.fail(&format!(
                    "card file {}: a refused wrong password left {after} tries (was {before})",
                    card.display()
                ));
            }
        }
        let entry = f.c.per_op.entry(op).or_default();
        entry.0 += 1;
        let what = if o.killed() {
            f.c.kills += 1;
            entry.1 += 1;
            let out = Fault::arg_after(&args, "--out").map(PathBuf::from);
            if op == Op::Issue && out.is_some_and(|p| p.exists()) {
                // The killed issuance left its card file: the same command must finish it (or
                // say the card was already complete), never issue a second card for those keys.
                let again = run(&data, &args, None);
                if let Some(v) = again.ack() {
                    if v["resumed"] == Value::Bool(true) {
                        f.c.resumed += 1;
                    }
                    f.record(op, &args, &v);
                    "KILLED, finished by rerunning".to_owned()
                } else if again.stderr.contains("holds an issued card") {
                    "KILLED after the card was complete".to_owned()
                } else {
                    f.fail(&format!(
                        "rerun of a killed issuance failed: {}",
                        again.stderr.trim()
                    ))
                }
            } else {
                "KILLED".to_owned()
            }
        } else if let Some(v) = o.ack() {
            entry.2 += 1;
            f.c.acknowledged += 1;
            if kill_after.is_none() {
                // Keep the typical duration current (slow CI machines, growing registry).
                let t = f.typical.entry(op).or_insert(o.elapsed);
                *t = (*t * 3 + o.elapsed) / 4;
            }
            f.record(op, &args, &v);
            "ack".to_owned()
        } else if o.code == Some(0) {
            // Exit 0 without a complete JSON object would break the CLI contract.
            f.c.unacked_exit0 += 1;
            f.fail(&format!("exit 0 without a complete JSON object: {:?}", o.stdout));
        } else {
            f.c.refused += 1;
            let msg = o.stderr.trim().to_owned();
            // Refusals are expected (already revoked, card lost …); registry-level errors are not.
            if msg.contains("registry:") || o.signal.is_some() {
                f.fail(&format!(
                    "`jpki {}` failed with {msg:?} (signal {:?})",
                    args.join(" "),
                    o.signal
                ));
            }
            let shape: String = msg
                .split_whitespace()
                .map(|w| {
                    if w.chars().any(|c| c.is_ascii_digit()) {
                        "#"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            *f.c.refusals.entry(shape).or_default() += 1;
            if op == Op::Revoke
                && msg.contains("already revoked")
                && let Some(serial) = Fault::arg_after(&args, "--serial")
            {
                f.seen_revoked.insert(serial);
            }
            format!("refused: {msg}")
        };
        f.log.push(format!(
            "#{i} {} kill_after={:?} elapsed={:?} {what} :: {}",
            op.name(),
            kill_after,
            o.elapsed,
            args.iter().skip(1).take(6).cloned().collect::<Vec<_>>().join(" ")
        ));
        f.check();
        if i % VERIFY_EVERY == 0 {
            f.verify();
            for card in f.pin_tries.keys().cloned().collect::<Vec<_>>() {
                f.pin_tries(&card);
            }
        }
    }

    // The end: verify everything, then a publication that must work, number above every
    // acknowledged one, and list every acknowledged revocation.
    f.verify();
    let before = f.crl_numbers.clone();
    let v = f.must(&[
        s("--json"),
        s("crl"),
        s("publish"),
        s("--out"),
        data.join("pub").display().to_string(),
    ]);
    let numbers = f.ack_publish(&v);
    for (kind, n) in &numbers {
        if before.get(kind).is_some_and(|p| n <= p) {
            f.fail(&format!(
                "final CRL number {n} of {kind} not above {:?}",
                before.get(kind)
            ));
        }
    }
    let crl_listed = f.verify_crls(&v);
    // A second publication numbers strictly higher again.
    let v2 = f.must(&[
        s("--json"),
        s("crl"),
        s("publish"),
        s("--out"),
        data.join("pub").display().to_string(),
    ]);
    f.ack_publish(&v2);
    f.check();

    let per_op: Vec<String> =
        f.c.per_op
            .iter()
            .map(|(op, (runs, kills, acks))| format!("{}={runs}/{kills}/{acks}", op.name()))
            .collect();
    println!(
        "fault [{engine}]: iterations={} kills={} resumed={} acknowledged={} refused={} revocations={} serials={} checks={} verifications={} pin_checks={} crl_listed={} seed={} elapsed={:.1}s [op=runs/kills/acks: {}]",
        f.c.iterations,
        f.c.kills,
        f.c.resumed,
        f.c.acknowledged,
        f.c.refused,
        f.c.revocations,
        f.serials.len(),
        f.c.checks,
        f.c.verifications,
        f.c.pin_checks,
        crl_listed,
        f.seed,
        started.elapsed().as_secs_f64(),
        per_op.join(" ")
    );
    // Evidence that kills land inside operations: CRL numbers consumed by publications killed after
    // their first commit, and temporary files that killed atomic writes left behind.
    let consumed = f
        .crl_numbers
        .get("sign")
        .copied()
        .unwrap_or(0)
        .saturating_sub(f.c.publishes);
    let stale_tmp = count_named(&data, ".jpki-");
    println!(
        "fault: CRL numbers consumed by publications killed after allocating one: {consumed}; \
         stale temporary files left by killed atomic writes: {stale_tmp}"
    );
    for (msg, n) in &f.c.refusals {
        println!("fault: refused {n}x: {msg}");
    }
    assert!(f.c.kills > 0 || iterations < 10, "no operation was ever killed");
}
