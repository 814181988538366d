//! Helpers shared by the CLI integration tests: a runner for the real `jpki` binary with its own
//! temporary data directory, and shortcuts to set up a demo authority, residents and cards.
//!
//! Each test file does `mod common;` and uses what it needs, so unused helpers are expected.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The PIN and password every test card gets.
pub(crate) const AUTH_PIN: &str = "1234";
/// See [`AUTH_PIN`].
pub(crate) const SIGN_PASSWORD: &str = "ABCDEF12";

/// Environment variables of the binary that would leak the caller's settings into a test.
const JPKI_ENV: [&str; 9] = [
    "JPKI_DATA",
    "JPKI_DB",
    "JPKI_AUTH_PIN",
    "JPKI_SIGN_PASSWORD",
    "JPKI_ASSIST_PIN",
    "JPKI_NEW_PIN",
    "JPKI_COLLATION_B",
    "JPKI_AUTHORITY_PASSPHRASE",
    "JPKI_DEVICE_KEY",
];

/// One authority: the `jpki` binary run against a data directory inside a fresh temporary
/// directory (removed on drop). The temporary directory also holds whatever files a test writes.
#[derive(Debug)]
pub(crate) struct Jpki {
    tmp: tempfile::TempDir,
    data: PathBuf,
}

/// What `card issue` reported.
#[derive(Debug, Clone)]
pub(crate) struct IssuedCard {
    pub(crate) card_id: String,
    pub(crate) auth_serial: String,
    /// `None` when no signature certificate was issued (under 15).
    pub(crate) sign_serial: Option<String>,
    pub(crate) card_file: PathBuf,
    /// The whole JSON report.
    pub(crate) json: Value,
}

/// A resident's basic four information as `resident add` takes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Person<'a> {
    pub(crate) name: &'a str,
    pub(crate) address: &'a str,
    /// YYYY-MM-DD.
    pub(crate) birth: &'a str,
    /// "1", "2" or "9".
    pub(crate) sex: &'a str,
}

impl Person<'static> {
    /// An adult in Tokyo.
    pub(crate) const ADULT: Person<'static> = Person {
        name: "山田 太郎",
        address: "東京都千代田区千代田1-1",
        birth: "1980-02-17",
        sex: "1",
    };
}

impl IssuedCard {
    /// The serial of the card's certificate of `kind` ("sign" or "auth").
    pub(crate) fn serial(&self, kind: &str) -> Option<&str> {
        match kind {
            "sign" => self.sign_serial.as_deref(),
            "auth" => Some(&self.auth_serial),
            _ => panic!("unknown certificate kind {kind:?}"),
        }
    }
}

impl Default for Jpki {
    fn default() -> Self {
        Self::new()
    }
}

impl Jpki {
    /// A runner with an empty (not yet initialised) data directory.
    pub(crate) fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("jpki-test-")
            .tempdir()
            .expect("create a temporary directory");
        let data = tmp.path().join("data");
        Self { tmp, data }
    }

    /// A runner with a demo authority (`init --demo`, cheap KDF) of `key_type` ("rsa2048" or "p384").
    pub(crate) fn demo(key_type: &str) -> Self {
        let j = Self::new();
        j.init_demo(key_type);
        j
    }

    /// The data directory (`--data`).
    pub(crate) fn data(&self) -> &Path {
        &self.data
    }

    /// The temporary directory the data directory lives in; tests put their files here.
    pub(crate) fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// A path inside [`Self::dir`].
    pub(crate) fn path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A `jpki --data DIR` command with the caller's JPKI_* variables removed; add arguments and run.
    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jpki"));
        for v in JPKI_ENV {
            c.env_remove(v);
        }
        // Card files are sealed with a device key of the test's own, never the user's.
        c.env("JPKI_DEVICE_KEY", self.tmp.path().join("device.key"));
        c.arg("--data").arg(&self.data);
        c
    }

    /// `card renew --kind KIND` of `card` (with the test PIN and password): the JSON report.
    pub(crate) fn renew(&self, card: &IssuedCard, kind: &str) -> Value {
        let out = self
            .command()
            .args(["--json", "card", "renew", "--card"])
            .arg(&card.card_file)
            .args(["--kind", kind])
            .env("JPKI_AUTH_PIN", AUTH_PIN)
            .env("JPKI_SIGN_PASSWORD", SIGN_PASSWORD)
            .output()
            .expect("run jpki card renew");
        assert!(out.status.success(), "{}", describe(&["card", "renew"], &out));
        serde_json::from_slice(&out.stdout).expect("card renew prints JSON")
    }

    /// The device key file the test's card files are sealed with.
    pub(crate) fn device_key(&self) -> PathBuf {
        self.tmp.path().join("device.key")
    }

    /// Runs `jpki --data DIR ARGS…` and returns what happened, whatever the exit code.
    pub(crate) fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.command().args(args).output().expect("run the jpki binary")
    }

    /// Runs `jpki --data DIR --json ARGS…`, asserts exit 0 and parses stdout as one JSON object.
    pub(crate) fn json<S: AsRef<OsStr>>(&self, args: &[S]) -> Value {
        let out = self
            .command()
            .arg("--json")
            .args(args)
            .output()
            .expect("run the jpki binary");
        let shown = describe(args, &out);
        assert!(out.status.success(), "expected success: {shown}");
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {shown}"));
        assert!(v.is_object(), "stdout is not a JSON object: {shown}");
        v
    }

    /// `init --demo --kdf-iterations 1000 --key-type KEY_TYPE`.
    pub(crate) fn init_demo(&self, key_type: &str) -> Value {
        self.json(&[
            "init",
            "--demo",
            "--kdf-iterations",
            "1000",
            "--key-type",
            key_type,
        ])
    }

    /// `resident add`; returns the resident id.
    pub(crate) fn add_resident(&self, p: Person<'_>) -> i64 {
        let v = self.json(&[
            "resident",
            "add",
            "--name",
            p.name,
            "--address",
            p.address,
            "--birth",
            p.birth,
            "--sex",
            p.sex,
        ]);
        v["resident_id"].as_i64().expect("resident_id")
    }

    /// `card issue --resident ID --out DIR/card-ID-N.card` with PIN 1234 and password ABCDEF12.
    pub(crate) fn issue_card(&self, resident: i64) -> IssuedCard {
        let mut n = 0;
        let card_file = loop {
            let f = self.path(format!("card-{resident}-{n}.card"));
            if !f.exists() {
                break f;
            }
            n += 1;
        };
        let out = card_file.to_str().expect("UTF-8 temp path").to_owned();
        let rid = resident.to_string();
        let v = self.json(&[
            "card",
            "issue",
            "--resident",
            &rid,
            "--out",
            &out,
            "--auth-pin",
            AUTH_PIN,
            "--sign-password",
            SIGN_PASSWORD,
        ]);
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        IssuedCard {
            card_id: s("card_id").expect("card_id"),
            auth_serial: s("auth_serial").expect("auth_serial"),
            sign_serial: s("sign_serial"),
            card_file,
            json: v,
        }
    }

    /// `cert export --serial HEX --out DIR/NAME`; returns the PEM path.
    pub(crate) fn export_cert(&self, serial: &str, name: &str) -> PathBuf {
        let f = self.path(name);
        self.json(&[
            "cert",
            "export",
            "--serial",
            serial,
            "--out",
            f.to_str().expect("UTF-8 path"),
        ]);
        f
    }

    /// `ca export --kind sign|auth --out DIR/NAME`; returns the PEM path.
    pub(crate) fn export_root(&self, kind: &str, name: &str) -> PathBuf {
        let f = self.path(name);
        self.json(&[
            "ca",
            "export",
            "--kind",
            kind,
            "--out",
            f.to_str().expect("UTF-8 path"),
        ]);
        f
    }

    /// `cert show --serial HEX` as JSON.
    pub(crate) fn cert_show(&self, serial: &str) -> Value {
        self.json(&["cert", "show", "--serial", serial])
    }

    /// `crl publish --out DIR/NAME`; returns the directory.
    pub(crate) fn publish(&self, name: &str) -> PathBuf {
        let d = self.path(name);
        self.json(&["crl", "publish", "--out", d.to_str().expect("UTF-8 path")]);
        d
    }

    /// Every file under the data directory with its contents, sorted by path: compare two
    /// snapshots to prove a command wrote nothing.
    pub(crate) fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut todo = vec![self.data.clone()];
        while let Some(d) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries {
                let p = e.expect("read_dir entry").path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    let bytes = std::fs::read(&p).expect("read a data file");
                    out.push((p, bytes));
                }
            }
        }
        out.sort();
        out
    }
}

/// The stdout of a run as text.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The stderr of a run as text.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A one-paragraph description of a run for assertion messages.
pub(crate) fn describe<S: AsRef<OsStr>>(args: &[S], out: &Output) -> String {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    format!(
        "`jpki {}` exited {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        args.join(" "),
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// A `jpki --json ARGS…` server on a free loopback port (`--listen 127.0.0.1:0` is added), its
/// first stdout line (JSON, with "listening") parsed; killed on drop, or stopped with SIGTERM.
pub(crate) struct Served {
    child: std::process::Child,
    /// The first line it printed.
    pub(crate) ready: serde_json::Value,
}

impl Served {
    pub(crate) fn start(j: &Jpki, args: &[&str]) -> Self {
        Self::start_with_env(j, args, &[])
    }

    /// As [`Served::start`], listening on `listen` instead of a free port.
    pub(crate) fn start_at(j: &Jpki, args: &[&str], listen: &str) -> Self {
        Self::spawn(j, args, &[], listen)
    }

    /// As [`Served::start`], with environment variables set.
    pub(crate) fn start_with_env(j: &Jpki, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(j, args, env, "127.0.0.1:0")
    }

    fn spawn(j: &Jpki, args: &[&str], env: &[(&str, &str)], listen: &str) -> Self {
        use std::io::BufRead as _;
        let mut child = j
            .command()
            .envs(env.iter().copied())
            .arg("--json")
            .args(args)
            .args(["--listen", listen])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read the server's first line");
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{args:?} said {line:?}: {e}"));
        Self { child, ready }
    }

    /// The address it listens on (`127.0.0.1:PORT`).
    pub(crate) fn addr(&self) -> String {
        self.ready["listening"].as_str().expect("listening").to_owned()
    }

    /// Stops it with SIGTERM and waits.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill(1)");
        self.child.wait().expect("wait for the server")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl ocsp` asking `url` about `cert` (issued by `root`), verifying the answer against
/// `root`: stdout and stderr together.
pub(crate) fn openssl_ocsp(url: &str, root: &Path, cert: &Path, extra: &[&str]) -> String {
    let out = Command::new("openssl")
        .args([
            "ocsp",
            "-issuer",
            s(root),
            "-cert",
            s(cert),
            "-url",
            url,
            "-CAfile",
            s(root),
            "-resp_text",
        ])
        .args(extra)
        .output()
        .expect("run openssl ocsp");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The test venv (pkilint, pyscard, pyHanko, prometheus-client): `$JPKI_VENV`, else `<repo>/.venv`;
/// scripts/test.sh installs it.
pub(crate) fn venv() -> PathBuf {
    std::env::var_os("JPKI_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
        PathBuf::from,
    )
}

/// The venv's Python, if it can import all of `modules` (comma-separated).
pub(crate) fn venv_python_with(modules: &str) -> Option<PathBuf> {
    let python = venv().join("bin").join("python");
    Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
        .then_some(python)
}

/// Whether the interop tools are required (`JPKI_REQUIRE_INTEROP=1`, as scripts/test.sh sets):
/// then a missing tool fails the test instead of skipping it.
pub(crate) fn interop_required() -> bool {
    std::env::var("JPKI_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// Whether `exe` runs (`exe --version`); when not, says the checks are skipped, or fails when
/// [`interop_required`].
pub(crate) fn have(exe: &str) -> bool {
    let found = Command::new(exe)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            !interop_required(),
            "{exe} is required (JPKI_REQUIRE_INTEROP=1) but not on PATH"
        );
        eprintln!("skipping the {exe} checks: {exe} is not on PATH");
    }
    found
}

/// A path as `&str` (test paths are UTF-8).
pub(crate) fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// POSTs the JSON `body` to `url` with curl (with `Authorization: Bearer KEY` when given): the
/// status and the parsed answer (`Null` if it is not JSON). The body goes through a temporary file,
/// so signatures and PDFs of any size fit.
pub(crate) fn post_json(url: &str, key: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), body).expect("write the request body");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
    ])
    .arg(format!("@{}", s(file.path())));
    if let Some(k) = key {
        cmd.args(["-H", &format!("Authorization: Bearer {k}")]);
    }
    let out = cmd.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (json, code) = text.rsplit_once('\n').unwrap();
    (
        code.parse().unwrap(),
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}

/// A one-page PDF with a classic cross-reference table.
pub(crate) fn minimal_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ];
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(b"xref\n0 4\n0000000000 65535 f \n");
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    out
}
