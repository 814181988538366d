//! Interoperability of a card file served by `jpki card plug` through pcscd's vpcd driver with
//! real PC/SC clients: OpenSC (opensc-tool, pkcs15-tool, pkcs11-tool with opensc-pkcs11.so),
//! openssl, pyscard, pyHanko (through opensc-pkcs11.so) and `jpki --reader` itself.
//!
//! One test, in steps on one card (demo authority rsa2048, one adult, assist PIN 5678):
//!
//! * a. OpenSC's built-in `jpki` driver binds to the card (`opensc-tool -n`).
//! * b. pkcs15-tool lists both PINs (3 and 5 tries) and the four certificates (000a, 0001
//!   private, CA 000b and 0002).
//! * c. pkcs11-tool signs with both keys (slot of the auth PIN with key 01; slot of the signing
//!   password with key 02), and `openssl dgst -verify` accepts the signatures under the public
//!   keys of the certificates `jpki card read-cert --reader` reads.
//! * d. `pyscard_reads.py` replays the read patterns of five public clients against EF 000A and
//!   000B (4-byte header + chunks, 7-byte BER header, 256-byte reads, extended Le, SFI) — all
//!   byte-identical and equal to what `jpki card read-cert --card` and `jpki ca export` give — and
//!   collects the status words real clients rely on (6A82, 6A86, 6982, 6981, 63C3, 6A88).
//! * e. The auth PIN counter survives SIGKILL of `plug` between wrong attempts (63C2, 63C1, 63C0,
//!   then 6984 for the right PIN, and 63C0 for an empty VERIFY), and OpenSC still binds to the
//!   locked card.
//! * f. `jpki card unblock --reader` restores the counter; `card info`, `pin status`, `read-info`,
//!   `read-cert` and `sign-digest` give the same answers over `--reader` as over `--card`.
//! * g. PAdES both ways: pyHanko signs a PDF (`--use-pades`) with key 02 through opensc-pkcs11.so
//!   and `jpki verify` passes it (TOTAL_PASSED, signer kind sign, PAdES-BASELINE-B) under the sign
//!   root and the published CRLs; `jpki sign --reader --pdf` signs one that `pyhanko sign validate`
//!   finds INTACT:TRUSTED and `jpki verify` passes.
//!
//! Needs pcscd with the vpcd driver, OpenSC, openssl, and pyscard and pyHanko (with its PKCS#11
//! extra, and pyhanko-cli) in `$JPKI_VENV` (else `<repo>/.venv`): scripts/test.sh installs them.
//! Without them the test prints a message and passes, unless `JPKI_REQUIRE_INTEROP=1`, which makes
//! a missing tool a failure. It uses a pcscd already running, or starts (and afterwards stops) its
//! own. pcscd and the vpcd port are machine-wide: the test holds the lock file
//! `$TMPDIR/openjpki-pcscd.lock` (flock) while it uses them, so other users of the virtual reader
//! can serialise with it (`flock FILE cmd`).
// Test code: failures panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::{AUTH_PIN, Jpki, Person, SIGN_PASSWORD, stderr, stdout, venv, venv_python_with};
use serde_json::Value;

/// The port the vpcd driver inside pcscd listens on for the virtual card.
const VPCD_PORT: u16 = 35963;

/// The reader vpcd's first port (35963) shows up as.
const READER: &str = "Virtual PCD 00 00";
/// Where Debian's opensc-pkcs11 lives, then other common places.
const PKCS11_MODULES: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
];
const ASSIST_PIN: &str = "5678";
/// Bound of every wait for pcscd or the card.
const WAIT: Duration = Duration::from_secs(10);
/// Bound of every command this test runs (they take well under a second each).
const COMMAND_LIMIT: Duration = Duration::from_secs(30);
/// Bound of the wait for another user of pcscd to release the lock file.
const LOCK_WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(25);
/// OpenSC's PKCS#11 tokens of the card: one per PIN, named after it.
const AUTH_TOKEN: &str = "JPKI (User Authentication PIN)";
/// See [`AUTH_TOKEN`]: the token of the signing password, with key and certificate 02.
const SIGN_TOKEN: &str = "JPKI (Digital Signature PIN)";
/// SHA-256("hello"): the message pkcs11-tool signs, as the digest `sign-digest` signs.
const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/// One pcscd and one vpcd port per machine: tests of this binary take turns.
static PCSC: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------------------------
// Finding the tools

fn interop_required() -> bool {
    std::env::var("JPKI_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

fn on_path(exe: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(exe))
        .chain(["/usr/sbin", "/sbin"].map(|d| Path::new(d).join(exe)))
        .find(|p| p.is_file())
}

#[derive(Debug)]
struct Tools {
    pcscd: PathBuf,
    opensc_tool: PathBuf,
    pkcs15_tool: PathBuf,
    pkcs11_tool: PathBuf,
    openssl: PathBuf,
    module: PathBuf,
    /// A Python that can `import smartcard` (pyscard).
    python: PathBuf,
    /// pyHanko's CLI, in the same venv, whose Python can `import pkcs11` (python-pkcs11).
    pyhanko: PathBuf,
}

/// The venv's Python with pyscard.
fn venv_python() -> Option<PathBuf> {
    venv_python_with("smartcard")
}

/// The venv's `pyhanko` (pyhanko-cli), when pyHanko's PKCS#11 signer imports there.
fn venv_pyhanko() -> Option<PathBuf> {
    let pyhanko = venv().join("bin").join("pyhanko");
    (pyhanko.is_file() && venv_python_with("pkcs11, pyhanko.sign.pkcs11, pyhanko.cli").is_some())
        .then_some(pyhanko)
}

/// Every tool, or `None` (after saying which is missing) to skip; panics instead of skipping
/// when `JPKI_REQUIRE_INTEROP=1`.
fn tools(test: &str) -> Option<Tools> {
    let mut missing = Vec::new();
    let mut need = |what: &str, found: Option<PathBuf>| {
        if found.is_none() {
            missing.push(what.to_owned());
        }
        found.unwrap_or_default()
    };
    let t = Tools {
        pcscd: need("pcscd (Debian: pcscd)", on_path("pcscd")),
        opensc_tool: need("opensc-tool (Debian: opensc)", on_path("opensc-tool")),
        pkcs15_tool: need("pkcs15-tool (Debian: opensc)", on_path("pkcs15-tool")),
        pkcs11_tool: need("pkcs11-tool (Debian: opensc)", on_path("pkcs11-tool")),
        openssl: need("the openssl CLI", on_path("openssl")),
        module: need(
            "opensc-pkcs11.so (Debian: opensc-pkcs11)",
            PKCS11_MODULES.iter().map(PathBuf::from).find(|p| p.is_file()),
        ),
        python: need(
            "pyscard (`import smartcard` in $JPKI_VENV or <repo>/.venv)",
            venv_python(),
        ),
        pyhanko: need(
            "pyHanko with PKCS#11 (`pyhanko` and `import pkcs11` in $JPKI_VENV or <repo>/.venv: pip install 'pyHanko[pkcs11]' pyhanko-cli)",
            venv_pyhanko(),
        ),
    };
    if !Path::new("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists()
        && !Path::new("/etc/reader.conf.d/vpcd").exists()
    {
        missing.push("the vpcd driver for pcscd (Debian: vsmartcard-vpcd)".into());
    }
    if missing.is_empty() {
        return Some(t);
    }
    let what = missing.join(", ");
    if interop_required() {
        panic!("{test}: {what} not found and JPKI_REQUIRE_INTEROP=1 (run scripts/test.sh to install)");
    }
    // Straight to the process's stderr, past the harness's capture, so that the skip shows.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {what} not found (install, or run scripts/test.sh; set JPKI_REQUIRE_INTEROP=1 to make this a failure)"
    );
    None
}

// ---------------------------------------------------------------------------------------------
// Running things

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn show(cmd: &Command, out: &Output) -> String {
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    format!(
        "`{} {}` exited {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        cmd.get_program().to_string_lossy(),
        args.join(" "),
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// Runs `cmd` whatever its exit status, for at most [`COMMAND_LIMIT`] (a hung pcscd must not
/// hang the test); returns the output and a description for messages.
fn run(cmd: &mut Command) -> (Output, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_reader = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err_reader = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            break status;
        }
        if start.elapsed() > COMMAND_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{:?} {:?} ran longer than {COMMAND_LIMIT:?}",
                cmd.get_program(),
                cmd.get_args()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let out = Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    };
    let shown = show(cmd, &out);
    (out, shown)
}

/// `jpki --data DIR --json ARGS…` (bounded like [`run`]): asserts exit 0, parses stdout.
fn jpki_json<S: AsRef<std::ffi::OsStr>>(j: &Jpki, args: &[S]) -> Value {
    let mut c = j.command();
    c.arg("--json").args(args);
    let (out, shown) = run(&mut c);
    assert!(out.status.success(), "expected success: {shown}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {shown}"))
}

/// Takes the machine-wide lock file of the virtual reader (flock(2), as `flock FILE cmd` does),
/// waiting at most [`LOCK_WAIT`] for another holder.
fn lock_pcscd() -> File {
    let path = std::env::temp_dir().join("openjpki-pcscd.lock");
    let file = File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return file,
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("lock {} (another test using pcscd?): {e}", path.display()),
        }
    }
}

/// Runs `cmd`, asserts exit 0 and returns stdout.
fn ok(cmd: &mut Command, what: &str) -> String {
    let (out, shown) = run(cmd);
    assert!(out.status.success(), "{what} failed: {shown}");
    stdout(&out)
}

/// The last lines of a log file, for failure messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Polls `check` every [`POLL`] until it returns `Some`, for at most [`WAIT`].
fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > WAIT {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Sends SIGTERM (through kill(1): the crate has no libc binding).
fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------
// pcscd and the plugged card

/// pcscd: the one already running, or one this test started and stops on drop.
#[derive(Debug)]
struct Pcscd {
    child: Option<Child>,
    log: PathBuf,
}

impl Pcscd {
    fn ensure(t: &Tools, log: PathBuf) -> Self {
        let running = Command::new("pgrep")
            .args(["-x", "pcscd"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let child = if running {
            None
        } else {
            // The vpcd driver listens on a fixed port: a pcscd that was stopping (another test,
            // an earlier run) may still hold it for a moment. Wait for it rather than fail.
            let since = Instant::now();
            while std::net::TcpListener::bind(("0.0.0.0", VPCD_PORT)).is_err() {
                assert!(
                    since.elapsed() < Duration::from_secs(30),
                    "port {VPCD_PORT} (vpcd) is held by another process for 30 s"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            let file = File::create(&log).expect("create the pcscd log");
            let child = Command::new(&t.pcscd)
                .args(["-f", "-a"])
                .stdin(Stdio::null())
                .stdout(file.try_clone().expect("clone a file handle"))
                .stderr(file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start pcscd: {e}"));
            Some(child)
        };
        let me = Self { child, log };
        let listed = wait_for(|| {
            let (out, _) = run(Command::new(&t.opensc_tool).arg("-l"));
            stdout(&out).contains(READER).then_some(())
        });
        assert!(
            listed.is_some(),
            "pcscd ({}) did not list reader {READER:?} within {WAIT:?} (is vsmartcard-vpcd installed?)\n--- pcscd log:\n{}",
            if me.child.is_some() {
                "started by this test"
            } else {
                "already running"
            },
            log_tail(&me.log)
        );
        me
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        let Some(child) = &mut self.child else {
            return;
        };
        terminate(child);
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
        if std::thread::panicking() {
            eprintln!("--- pcscd log ({}):\n{}", self.log.display(), log_tail(&self.log));
        }
    }
}

/// `jpki card plug --card F` running; killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
struct Plug {
    child: Child,
    log: PathBuf,
}

impl Plug {
    fn start(j: &Jpki, card: &Path) -> Self {
        let log = j.path("plug.log");
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the plug log");
        let child = j
            .command()
            .args(["card", "plug", "--card", s(card), "--max-wait", "20"])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone a file handle"))
            .stderr(file)
            .spawn()
            .expect("start jpki card plug");
        Self { child, log }
    }

    /// SIGKILL, as a power cut would stop it.
    fn kill(self) {
        drop(self);
    }
}

impl Drop for Plug {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- jpki card plug log ({}):\n{}",
                self.log.display(),
                log_tail(&self.log)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The clients

struct Env<'a> {
    t: &'a Tools,
    j: &'a Jpki,
    /// OpenSC's index of [`READER`].
    reader: String,
}

impl Env<'_> {
    fn opensc_tool(&self) -> Command {
        let mut c = Command::new(&self.t.opensc_tool);
        c.args(["-r", &self.reader]);
        c
    }

    fn pkcs15_tool(&self) -> Command {
        let mut c = Command::new(&self.t.pkcs15_tool);
        c.args(["-r", &self.reader]);
        c
    }

    fn pkcs11_tool(&self) -> Command {
        let mut c = Command::new(&self.t.pkcs11_tool);
        c.arg("--module").arg(&self.t.module);
        c
    }

    fn openssl(&self) -> Command {
        Command::new(&self.t.openssl)
    }

    /// OpenSC's driver name for the card in the reader, if a card answers.
    fn driver(&self) -> Option<String> {
        let (out, _) = run(self.opensc_tool().arg("-n"));
        out.status.success().then(|| stdout(&out).trim().to_owned())
    }

    /// Waits until OpenSC binds its jpki driver to the card `plug` serves.
    fn wait_for_card(&self, plug: &mut Plug) {
        let found = wait_for(|| {
            if let Ok(Some(status)) = plug.child.try_wait() {
                panic!("jpki card plug exited ({status}):\n{}", log_tail(&plug.log));
            }
            (self.driver().as_deref() == Some("jpki")).then_some(())
        });
        assert!(
            found.is_some(),
            "OpenSC did not see a jpki card in {READER:?} within {WAIT:?}\n--- plug log:\n{}",
            log_tail(&plug.log)
        );
    }

    /// Runs pyscard_reads.py with `args` after the mode and the reader; parses its JSON.
    fn pyscard(&self, mode: &str, args: &[&str]) -> Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyscard_reads.py");
        let mut c = Command::new(&self.t.python);
        c.arg(script).arg(mode).arg(READER).args(args);
        let out = ok(&mut c, "pyscard_reads.py");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("pyscard_reads.py printed no JSON ({e}): {out}"))
    }

    /// pyscard: SELECT JPKI AP, SELECT 0018, VERIFY `pin` (empty: no data); returns VERIFY's SW.
    fn verify_auth_pin(&self, pin: &str) -> String {
        let v = self.pyscard("verify", &[&hex::encode(pin)]);
        assert_eq!(v["select_ap"], "9000", "SELECT JPKI AP: {v}");
        assert_eq!(v["select_ef"], "9000", "SELECT EF 0018: {v}");
        v["verify"].as_str().expect("verify SW").to_owned()
    }

    /// `pkcs15-tool --list-pins` as PIN label → tries left.
    fn pin_tries(&self) -> BTreeMap<String, String> {
        let out = ok(self.pkcs15_tool().arg("--list-pins"), "pkcs15-tool --list-pins");
        blocks(&out)
            .into_iter()
            .filter_map(|(title, f)| Some((title, f.get("Tries left")?.clone())))
            .collect()
    }
}

/// `Title [label]` blocks of OpenSC's listings (separated by blank lines) as label → fields.
fn blocks(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut lines = block.lines().filter(|l| !l.trim().is_empty());
        let Some(title) = lines.next() else { continue };
        let label = title
            .split_once('[')
            .and_then(|(_, r)| r.rsplit_once(']'))
            .map_or(title.trim(), |(l, _)| l)
            .to_owned();
        let fields = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        out.push((label, fields));
    }
    out
}

/// The index of the slot of `pkcs11-tool -L`'s `listing` ("Slot N (0x…): Virtual PCD 00 00"
/// followed by its token label) that holds the token `label` in [`READER`].
fn slot_of(listing: &str, label: &str) -> String {
    listing
        .split("\nSlot ")
        .filter(|b| b.contains(READER) && b.contains(label))
        .find_map(|b| b.trim_start_matches("Slot ").split_whitespace().next())
        .unwrap_or_else(|| panic!("pkcs11-tool -L has no slot {label:?} in {READER:?}:\n{listing}"))
        .to_owned()
}

/// The DER of a PEM certificate file (through openssl).
fn der_of(e: &Env<'_>, pem: &Path) -> Vec<u8> {
    let der = PathBuf::from(format!("{}.der", pem.display()));
    ok(
        e.openssl()
            .args(["x509", "-in", s(pem), "-outform", "DER", "-out", s(&der)]),
        "openssl x509 -outform DER",
    );
    std::fs::read(der).expect("read the DER")
}

/// The public key of a PEM certificate, written next to it.
fn pubkey_of(e: &Env<'_>, pem: &Path) -> PathBuf {
    let key = PathBuf::from(format!("{}.pub", pem.display()));
    ok(
        e.openssl()
            .args(["x509", "-in", s(pem), "-pubkey", "-noout", "-out", s(&key)]),
        "openssl x509 -pubkey",
    );
    key
}

// ---------------------------------------------------------------------------------------------
// The test

#[test]
fn opensc_pkcs11_pyscard_and_jpki_reader_against_a_plugged_card() {
    let test = "card_interop";
    let Some(t) = tools(test) else { return };
    let _serial = PCSC.lock().unwrap_or_else(PoisonError::into_inner);
    let _lock = lock_pcscd();
    let started = Instant::now();

    let j = Jpki::demo("rsa2048");
    let resident = j.add_resident(Person::ADULT);
    let card = j.path("card.card");
    let issued = jpki_json(
        &j,
        &[
            "card",
            "issue",
            "--resident",
            &resident.to_string(),
            "--out",
            s(&card),
            "--pin",
            AUTH_PIN,
            "--sign-password",
            SIGN_PASSWORD,
            "--assist-pin",
            ASSIST_PIN,
        ],
    );
    let card_id = issued["card_id"].as_str().expect("card_id").to_owned();
    let auth_serial = issued["auth_serial"].as_str().expect("auth_serial").to_owned();
    let sign_serial = issued["sign_serial"].as_str().expect("sign_serial").to_owned();

    let _pcscd = Pcscd::ensure(&t, j.path("pcscd.log"));
    let listing = ok(Command::new(&t.opensc_tool).arg("-l"), "opensc-tool -l");
    let line = listing
        .lines()
        .find(|l| l.trim_end().ends_with(READER))
        .unwrap_or_else(|| panic!("opensc-tool -l does not list {READER:?}:\n{listing}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols.get(1),
        Some(&"No"),
        "a card is already in {READER:?} before this test plugs one (a leftover `jpki card plug`?):\n{listing}"
    );
    let e = Env {
        t: &t,
        j: &j,
        reader: cols[0].to_owned(),
    };

    let mut plug = Plug::start(&j, &card);
    e.wait_for_card(&mut plug);
    eprintln!("[{:?}] card plugged", started.elapsed());

    // a. OpenSC's jpki driver binds.
    assert_eq!(
        e.driver().as_deref(),
        Some("jpki"),
        "opensc-tool -n: the jpki driver should bind"
    );

    // b. PKCS#15 emulation: the PINs and the certificates.
    step_b_pkcs15(&e, &auth_serial);

    // c. PKCS#11 signatures, verified by openssl under the certificates read over the reader.
    let pkcs11_auth_sig = step_c_pkcs11(&e);
    eprintln!("[{:?}] OpenSC checks done", started.elapsed());

    // d. pyscard: five client read patterns and the status words.
    let reads = e.pyscard("reads", &[]);
    let (auth_der, auth_ca_der) = step_d_check_reads(&reads, &card_id);
    eprintln!("[{:?}] pyscard reads done", started.elapsed());

    // e. The PIN counter across SIGKILL of `plug`.
    let plug = step_e_counter_across_sigkill(&e, &card, plug);
    eprintln!("[{:?}] PIN counter across SIGKILL done", started.elapsed());

    // f. Unblock, then --reader and --card give the same answers.
    let unblocked = jpki_json(&j, &["card", "unblock", "--reader", READER, "--kind", "auth"]);
    assert_eq!(
        unblocked["tries_left"], 3,
        "unblock should restore 3 tries: {unblocked}"
    );
    let tries = e.pin_tries();
    assert_eq!(
        tries.get("User Authentication PIN").map(String::as_str),
        Some("3"),
        "pkcs15-tool after unblock: {tries:?}"
    );
    let over_reader = holder_commands(&j, &["--reader", READER], "reader");

    // g. PAdES both ways with pyHanko (last on the plugged card: it leaves both counters full).
    step_g_pades_with_pyhanko(&e, &sign_serial);
    eprintln!("[{:?}] pyHanko PAdES both ways done", started.elapsed());
    plug.kill();
    let over_card = holder_commands(&j, &["--card", s(&card)], "card");
    for ((what, r), (_, c)) in over_reader.iter().zip(&over_card) {
        assert_eq!(r, c, "`jpki card {what}` over --reader and over --card differ");
    }
    let info = &over_card[0].1;
    assert_eq!(info["card_id"], card_id.as_str(), "card info: {info}");
    let status = &over_card[1].1;
    assert_eq!(status["auth"]["tries_left"], 3, "pin status: {status}");
    let read_info = &over_card[2].1;
    assert_eq!(read_info["signature"], "valid", "read-info: {read_info}");
    assert_eq!(read_info["name"], Person::ADULT.name, "read-info: {read_info}");
    let sig = &over_card[4].1;
    assert_eq!(
        sig["signature"].as_str(),
        Some(hex::encode(&pkcs11_auth_sig).as_str()),
        "sign-digest of SHA-256(\"hello\") should equal pkcs11-tool's SHA256-RSA-PKCS signature of \"hello\" (PKCS#1 v1.5 is deterministic)"
    );
    let reader_pem = std::fs::read(j.path("auth-reader.pem")).expect("read-cert --reader output");
    let card_pem = std::fs::read(j.path("auth-card.pem")).expect("read-cert --card output");
    assert_eq!(
        reader_pem, card_pem,
        "read-cert over --reader and --card wrote different files"
    );

    // d (end). What pyscard read equals what jpki reads from the card file and the authority's root.
    assert!(
        auth_der == der_of(&e, &j.path("auth-card.pem")),
        "EF 000A as pyscard read it differs from `jpki card read-cert --card --kind auth`"
    );
    let root = j.path("auth-root.pem");
    jpki_json(&j, &["ca", "export", "--kind", "auth", "--out", s(&root)]);
    assert!(
        auth_ca_der == der_of(&e, &root),
        "EF 000B as pyscard read it differs from `jpki ca export --kind auth`"
    );
    eprintln!("[{:?}] card_interop passed", started.elapsed());
}

fn step_b_pkcs15(e: &Env<'_>, auth_serial: &str) {
    let tries = e.pin_tries();
    assert_eq!(
        tries.get("User Authentication PIN").map(String::as_str),
        Some("3"),
        "pkcs15-tool --list-pins: auth PIN tries left: {tries:?}"
    );
    assert_eq!(
        tries.get("Digital Signature PIN").map(String::as_str),
        Some("5"),
        "pkcs15-tool --list-pins: signing password tries left: {tries:?}"
    );
    let out = ok(
        e.pkcs15_tool().arg("--list-certificates"),
        "pkcs15-tool --list-certificates",
    );
    let certs: BTreeMap<String, BTreeMap<String, String>> = blocks(&out)
        .into_iter()
        .filter_map(|(_, f)| Some((f.get("Path")?.to_ascii_lowercase(), f)))
        .collect();
    let paths: Vec<&str> = certs.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        ["0001", "0002", "000a", "000b"],
        "pkcs15-tool --list-certificates:\n{out}"
    );
    let field = |path: &str, k: &str| certs[path].get(k).cloned().unwrap_or_default();
    assert_eq!(
        field("000a", "Authority"),
        "no",
        "000a is the auth certificate:\n{out}"
    );
    assert_eq!(
        field("0001", "Authority"),
        "no",
        "0001 is the sign certificate:\n{out}"
    );
    assert_eq!(
        field("000b", "Authority"),
        "yes",
        "000b is a CA certificate:\n{out}"
    );
    assert_eq!(
        field("0002", "Authority"),
        "yes",
        "0002 is a CA certificate:\n{out}"
    );
    assert!(
        field("0001", "Object Flags").contains("private")
            && !field("000a", "Object Flags").contains("private"),
        "only the sign certificate 0001 is private:\n{out}"
    );
    assert!(
        field("000a", "Encoded serial")
            .replace(' ', "")
            .ends_with(&auth_serial.to_ascii_uppercase()),
        "000a should carry the issued auth serial {auth_serial}:\n{out}"
    );
}

/// Signs "hello" with both keys through pkcs11-tool and checks the signatures with openssl;
/// returns the auth key's signature.
fn step_c_pkcs11(e: &Env<'_>) -> Vec<u8> {
    let j = e.j;
    let listing = ok(e.pkcs11_tool().arg("-L"), "pkcs11-tool -L");
    let msg = j.path("hello.txt");
    std::fs::write(&msg, b"hello").expect("write the message");
    let mut sigs = Vec::new();
    for (kind, label, id, secret) in [
        ("auth", AUTH_TOKEN, "01", AUTH_PIN),
        ("sign", SIGN_TOKEN, "02", SIGN_PASSWORD),
    ] {
        let slot = slot_of(&listing, label);
        let sig = j.path(format!("hello.{kind}.sig"));
        ok(
            e.pkcs11_tool().args([
                "--slot-index",
                &slot,
                "--login",
                "--pin",
                secret,
                "--sign",
                "--mechanism",
                "SHA256-RSA-PKCS",
                "--id",
                id,
                "-i",
                s(&msg),
                "-o",
                s(&sig),
            ]),
            &format!("pkcs11-tool --sign with the {kind} key (slot {slot}, id {id})"),
        );
        let pem = j.path(format!("{kind}-reader-c.pem"));
        let mut args = vec![
            "card",
            "read-cert",
            "--reader",
            READER,
            "--kind",
            kind,
            "--out",
            s(&pem),
        ];
        if kind == "sign" {
            args.extend(["--sign-password", SIGN_PASSWORD]);
        }
        jpki_json(j, &args);
        let key = pubkey_of(e, &pem);
        let verified = ok(
            e.openssl().args([
                "dgst",
                "-sha256",
                "-verify",
                s(&key),
                "-signature",
                s(&sig),
                s(&msg),
            ]),
            &format!("openssl dgst -verify of the {kind} key's pkcs11-tool signature"),
        );
        assert!(
            verified.contains("Verified OK"),
            "openssl should verify the {kind} signature: {verified}"
        );
        sigs.push(std::fs::read(&sig).expect("read the signature"));
    }
    sigs.swap_remove(0)
}

/// Checks pyscard's reads; returns the DER of EF 000A and 000B.
fn step_d_check_reads(v: &Value, card_id: &str) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(
        v["card_id"]["sw"], "9000",
        "GET DATA 00 CA 00 45 (card ID): {}",
        v["card_id"]
    );
    assert_eq!(
        v["card_id"]["value"], card_id,
        "the card in {READER:?} is not the one this test plugged"
    );
    let mut files = Vec::new();
    for fid in ["000A", "000B"] {
        let per = v["files"][fid]
            .as_object()
            .unwrap_or_else(|| panic!("no reads of {fid}: {v}"));
        let mut first: Option<(&str, &str)> = None;
        for (pattern, r) in per {
            let hex = r["hex"]
                .as_str()
                .unwrap_or_else(|| panic!("EF {fid}, {pattern} read failed: {}", r["error"]));
            match first {
                None => first = Some((pattern, hex)),
                Some((p0, h0)) => assert!(
                    hex == h0,
                    "EF {fid}: the {pattern} read ({} bytes) differs from the {p0} read ({} bytes)",
                    hex.len() / 2,
                    h0.len() / 2
                ),
            }
        }
        assert_eq!(per.len(), 5, "EF {fid}: five read patterns: {per:?}");
        let der = hex::decode(first.expect("one read").1).expect("hex");
        assert!(
            der.len() > 1000 && der[0] == 0x30,
            "EF {fid} is not a certificate: {} bytes",
            der.len()
        );
        files.push(der);
    }
    let sw = &v["sw"];
    for (key, want, apdu) in [
        ("select_jpki_ap", "9000", "00 A4 04 0C 0A D392F000260100000001"),
        (
            "select_missing_ef_0099",
            "6A82",
            "00 A4 02 0C 02 0099 (missing EF)",
        ),
        (
            "select_piv_short_p2_00",
            "6A82",
            "00 A4 04 00 05 A000000308 (PIV, P2=00)",
        ),
        (
            "select_piv_short_p2_0c",
            "6A82",
            "00 A4 04 0C 05 A000000308 (PIV, P2=0C)",
        ),
        (
            "select_piv_full_le",
            "6A82",
            "00 A4 04 00 0B A0000003080000100001 00 00 (OpenSC PIV probe)",
        ),
        (
            "read_p1_e0",
            "6A86",
            "00 B0 E0 00 00 (SFI form with bits 7-6 set)",
        ),
        ("select_sign_cert_0001", "9000", "00 A4 02 0C 02 0001"),
        (
            "read_sign_cert_no_password",
            "6982",
            "00 B0 00 00 04 on 0001 without the password",
        ),
        (
            "read_sign_cert_sfi_no_password",
            "6982",
            "00 B0 81 00 00 without the password",
        ),
        (
            "read_auth_key_0017",
            "6981",
            "00 B0 00 00 00 on the private key EF 0017",
        ),
        ("empty_verify_0018", "63C3", "00 20 00 80 on 0018 (empty VERIFY)"),
        ("get_data_absent_df30", "6A88", "00 CA DF 30 05 (absent tag)"),
    ] {
        assert_eq!(sw[key], want, "{apdu}: status word (all: {sw})");
    }
    assert!(
        matches!(sw["read_past_end"].as_str(), Some("6B00" | "6282")),
        "00 B0 7F 00 01 (past the end of 000A): 6B00 or 6282, got {}",
        sw["read_past_end"]
    );
    for key in [
        "sign_cert_no_password_bytes",
        "sign_cert_sfi_no_password_bytes",
        "auth_key_bytes",
    ] {
        assert_eq!(v[key], 0, "{key}: a refused READ BINARY must return no data");
    }
    let auth_ca = files.pop().expect("000B");
    (files.pop().expect("000A"), auth_ca)
}

/// Wrong auth PINs with `plug` SIGKILLed and restarted between them; returns the last plug.
fn step_e_counter_across_sigkill(e: &Env<'_>, card: &Path, mut plug: Plug) -> Plug {
    for want in ["63C2", "63C1", "63C0"] {
        let got = e.verify_auth_pin("9999");
        assert_eq!(
            got, want,
            "VERIFY 00 20 00 80 04 39393939 (wrong PIN) after SIGKILLs of plug"
        );
        plug.kill();
        plug = Plug::start(e.j, card);
        e.wait_for_card(&mut plug);
    }
    assert_eq!(
        e.verify_auth_pin(AUTH_PIN),
        "6984",
        "VERIFY with the right PIN 1234 on a locked PIN must answer 6984"
    );
    assert_eq!(
        e.verify_auth_pin(""),
        "63C0",
        "an empty VERIFY on a locked PIN must answer 63C0 (never 6984: OpenSC would drop the card)"
    );
    assert_eq!(
        e.driver().as_deref(),
        Some("jpki"),
        "OpenSC's jpki driver should still bind to a card whose auth PIN is locked"
    );
    let tries = e.pin_tries();
    assert_eq!(
        tries.get("User Authentication PIN").map(String::as_str),
        Some("0"),
        "pkcs15-tool --list-pins on the locked card: {tries:?}"
    );
    assert_eq!(
        tries.get("Digital Signature PIN").map(String::as_str),
        Some("5"),
        "the signing password is untouched: {tries:?}"
    );
    plug
}

/// pyHanko signs a PDF with key 02 through opensc-pkcs11.so and `jpki verify` passes it;
/// `jpki sign --reader --pdf` signs one that pyHanko and `jpki verify` accept.
fn step_g_pades_with_pyhanko(e: &Env<'_>, sign_serial: &str) {
    let j = e.j;
    let pdf = j.path("in.pdf");
    std::fs::write(&pdf, minimal_pdf()).expect("write the PDF");
    let root = j.path("sign-root.pem");
    jpki_json(j, &["ca", "export", "--kind", "sign", "--out", s(&root)]);
    let crls = j.path("crls");
    jpki_json(j, &["crl", "publish", "--out", s(&crls)]);
    let verify = |signed: &Path, who: &str| {
        let v = jpki_json(
            j,
            &["verify", s(signed), "--trust", s(&root), "--crl-dir", s(&crls)],
        );
        let sigs = v["signatures"].as_array().map_or(&[][..], Vec::as_slice);
        assert_eq!(sigs.len(), 1, "jpki verify of {who}'s PDF: one signature: {v}");
        let sig = &sigs[0];
        assert_eq!(
            sig["indication"], "TOTAL_PASSED",
            "jpki verify of {who}'s PDF: {v}"
        );
        assert_eq!(
            sig["format"], "PAdES-BASELINE-B",
            "jpki verify of {who}'s PDF: {v}"
        );
        assert_eq!(sig["signer"]["kind"], "sign", "jpki verify of {who}'s PDF: {v}");
        assert_eq!(
            sig["signer"]["serial"], sign_serial,
            "jpki verify of {who}'s PDF: signed with the card's signature certificate: {v}"
        );
    };

    // Key 02 is "always authenticate" (OpenSC marks the JPKI signature key user_consent), which
    // is why OpenSC will not cache the signing password for it by default.
    let listing = ok(e.pkcs11_tool().arg("-L"), "pkcs11-tool -L");
    let slot = slot_of(&listing, SIGN_TOKEN);
    let objects = ok(
        e.pkcs11_tool().args([
            "--slot-index",
            &slot,
            "--login",
            "--pin",
            SIGN_PASSWORD,
            "--list-objects",
        ]),
        "pkcs11-tool --list-objects on the signing password's token",
    );
    // Each object is a title line ("Private Key Object; RSA") followed by indented fields.
    let key = objects
        .lines()
        .fold(Vec::<String>::new(), |mut objs, line| {
            match objs.last_mut() {
                Some(last) if line.starts_with([' ', '\t']) => {
                    last.push('\n');
                    last.push_str(line);
                }
                _ => objs.push(line.to_owned()),
            }
            objs
        })
        .into_iter()
        .find(|o| {
            o.starts_with("Private Key Object") && o.lines().any(|l| l.split_whitespace().eq(["ID:", "02"]))
        })
        .unwrap_or_else(|| panic!("no private key 02 in {SIGN_TOKEN:?}:\n{objects}"));
    assert!(
        key.contains("always authenticate"),
        "OpenSC should mark key 02 CKA_ALWAYS_AUTHENTICATE:\n{key}"
    );

    // pyHanko signs through OpenSC's PKCS#11 module. The token is picked by label: OpenSC gives
    // each PIN of the card a token of its own, and the signing password is the user PIN of
    // SIGN_TOKEN, which holds key and certificate 02.
    let config = j.path("pyhanko.yml");
    std::fs::write(
        &config,
        format!(
            "pkcs11-setups:\n  jpki-sign:\n    module-path: {:?}\n    token-criteria:\n      label: {SIGN_TOKEN:?}\n    cert-id: \"02\"\n    key-id: \"02\"\n",
            s(&e.t.module)
        ),
    )
    .expect("write pyhanko.yml");
    // Test-only OpenSC configuration, for the pyHanko process alone (OPENSC_CONF replaces
    // /etc/opensc/opensc.conf, which sets nothing on Debian: all its settings are comments). pyHanko logs in
    // once (C_Login) and never does the CKU_CONTEXT_SPECIFIC login that CKA_ALWAYS_AUTHENTICATE
    // asks for before each signature; this setting lets OpenSC cache the signing password anyway
    // and re-verify it from the cache should the card refuse the signature (6982). A real
    // deployment would keep OpenSC's default and have pyHanko log in per signature. With the
    // card as it is, the VERIFY of C_Login still holds when PSO COMPUTE DIGITAL SIGNATURE comes
    // (checked with OPENSC_DEBUG=9), so pyHanko's signature goes through with or without it.
    let opensc_conf = j.path("opensc.conf");
    std::fs::write(
        &opensc_conf,
        "app default {\n\tframework pkcs15 {\n\t\tpin_cache_ignore_user_consent = true;\n\t}\n}\n",
    )
    .expect("write opensc.conf");
    let theirs = j.path("pyhanko-signed.pdf");
    let out = ok(
        Command::new(&e.t.pyhanko)
            .env("OPENSC_CONF", &opensc_conf)
            .env("PYHANKO_PKCS11_PIN", SIGN_PASSWORD)
            .arg("--config")
            .arg(&config)
            .args(["sign", "addsig", "--field", "Sig1", "--use-pades", "pkcs11"])
            .args(["--p11-setup", "jpki-sign", s(&pdf), s(&theirs)]),
        "pyhanko sign addsig --use-pades pkcs11 (key 02 through opensc-pkcs11.so)",
    );
    assert!(theirs.is_file(), "pyHanko wrote no {}: {out}", theirs.display());
    verify(&theirs, "pyHanko");

    // The other way: jpki signs over the reader, pyHanko validates (the CRL URLs in the
    // certificate point at no server, hence --no-revocation-check; jpki verify checks the CRLs).
    let ours = j.path("jpki-signed.pdf");
    let signed = jpki_json(
        j,
        &[
            "sign",
            "--reader",
            READER,
            "--pdf",
            "--sign-password",
            SIGN_PASSWORD,
            s(&pdf),
            "--out",
            s(&ours),
        ],
    );
    assert_eq!(signed["format"], "PAdES-BASELINE-B", "jpki sign --pdf: {signed}");
    let validated = ok(
        Command::new(&e.t.pyhanko)
            .args(["sign", "validate", "--no-revocation-check", "--trust"])
            .arg(&root)
            .args(["--trust-replace", s(&ours)]),
        "pyhanko sign validate of jpki's PDF",
    );
    assert!(
        validated.contains(":INTACT:TRUSTED"),
        "pyhanko sign validate of jpki's PDF should print INTACT:TRUSTED: {validated}"
    );
    verify(&ours, "jpki");

    let tries = e.pin_tries();
    assert_eq!(
        tries.get("Digital Signature PIN").map(String::as_str),
        Some("5"),
        "the signing password's counter after the PAdES signatures: {tries:?}"
    );
}

/// A one-page PDF 1.7 with a classic cross-reference table.
fn minimal_pdf() -> Vec<u8> {
    let text = "BT /F1 24 Tf 72 720 Td (openjpki card_interop) Tj ET";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        pdf.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// The holder commands over `access` (`--reader NAME` or `--card FILE`), as (name, JSON) in a
/// fixed order: info, pin status, read-info, read-cert auth, sign-digest auth. read-cert writes
/// `auth-<tag>.pem`; its `out` field (the only legitimate difference) is replaced by "<out>".
fn holder_commands(j: &Jpki, access: &[&str], tag: &str) -> Vec<(&'static str, Value)> {
    let with =
        |args: &[&str]| -> Vec<String> { args.iter().chain(access).map(|a| (*a).to_owned()).collect() };
    let pem = j.path(format!("auth-{tag}.pem"));
    let mut read_cert = jpki_json(
        j,
        &with(&["card", "read-cert", "--kind", "auth", "--out", s(&pem)]),
    );
    assert_eq!(
        read_cert["out"],
        s(&pem),
        "read-cert reports its output file: {read_cert}"
    );
    read_cert["out"] = "<out>".into();
    vec![
        ("info", jpki_json(j, &with(&["card", "info"]))),
        ("pin status", jpki_json(j, &with(&["card", "pin", "status"]))),
        (
            "read-info",
            jpki_json(j, &with(&["card", "read-info", "--assist-pin", ASSIST_PIN])),
        ),
        ("read-cert", read_cert),
        (
            "sign-digest",
            jpki_json(
                j,
                &with(&[
                    "card",
                    "sign-digest",
                    "--kind",
                    "auth",
                    "--pin",
                    AUTH_PIN,
                    "--digest",
                    HELLO_SHA256,
                ]),
            ),
        ),
    ]
}
