//! OCSP throughput over HTTP: `jpki serve`'s responder (platform `OcspService` behind the axum
//! server, in this process) against `openssl ocsp -index … -multi 2` serving the same population with
//! the same responder certificate and key, both driven by `wrk` (2 threads, 32 connections) with the
//! same request, in one run.
//!
//! Population: `JPKI_BENCH_OCSP_N` (default 1,000,000) certificates of an RSA-2048 CA, one in ten
//! revoked; a P-384 delegated responder (as `jpki serve` uses). Phases, each `JPKI_BENCH_SECS`
//! (default 10) seconds:
//! - no nonce, one certificate (what RFC 5019 clients send): ours answers from its cache;
//! - with a nonce: ours signs every answer, as openssl always does.
//!
//! Also reported: the memory of the revocation state per revoked certificate (the bar: ≤ 32 bytes)
//! and the in-process answer rate of `OcspService::answer` without HTTP. Needs `openssl` and `wrk`
//! (scripts/bench.sh ocsp installs wrk). Run: `cargo bench -p jpki-cli --bench ocsp`.
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jpki_model::{CertKind, Serial};
use jpki_pki::ocsp::{CertIdHash, IssuerHashes, OcspRequest, Responder};
use jpki_pki::{Endpoints, Issuer, KeyType, RootSpec, SigningKey, SubjectPublicKey, issue_root};
use jpki_platform::{OcspService, StatusIndex};
use jpki_server::{AppState, Caller, OcspResponder, RevocationAccess, Server};
use time::OffsetDateTime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Ours(Arc<OcspService>);

impl OcspResponder for Ours {
    fn answer(&self, _caller: Option<&Caller>, request_der: &[u8]) -> Vec<u8> {
        self.0
            .answer(request_der, OffsetDateTime::now_utc(), |_| true)
            .body
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

/// Waits until openssl's log says it accepts connections. (Probing the port with a bare connect
/// will not do: a connection closed without a request leaves openssl's -multi workers hanging, and
/// every later request with them.)
fn wait_for_accept(log: &Path) -> Result<(), BoxError> {
    let start = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("ACCEPT")
    {
        if start.elapsed() > Duration::from_secs(300) {
            return Err(format!("openssl ocsp did not start: {}", std::fs::read_to_string(log)?).into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}

/// Runs wrk POSTing `body` to `url`; returns (requests/s, p50 ms, p99 ms).
fn wrk(url: &str, body_file: &Path, secs: u64) -> Result<(f64, f64, f64), BoxError> {
    let script = body_file.with_extension("lua");
    std::fs::write(
        &script,
        format!(
            "local f = io.open({:?}, 'rb')\nwrk.method = 'POST'\nwrk.body = f:read('*a')\nf:close()\n\
             wrk.headers['Content-Type'] = 'application/ocsp-request'\n",
            body_file.display().to_string()
        ),
    )?;
    let out = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{secs}s"), "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("wrk said: {text}"))?;
    if rate == 0.0 || text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!(
            "wrk against {url}:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if text.contains("Non-2xx") {
        return Err(format!("non-2xx answers: {text}").into());
    }
    let pct = |p: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(p))
            .map(str::trim)
            .and_then(|v| {
                if let Some(ms) = v.strip_suffix("ms") {
                    ms.parse().ok()
                } else if let Some(us) = v.strip_suffix("us") {
                    us.parse::<f64>().ok().map(|u| u / 1000.0)
                } else if let Some(s) = v.strip_suffix('s') {
                    s.parse::<f64>().ok().map(|s| s * 1000.0)
                } else {
                    None
                }
            })
            .unwrap_or(f64::NAN)
    };
    Ok((rate, pct("50%"), pct("99%")))
}

struct Openssl(Child);

impl Drop for Openssl {
    fn drop(&mut self) {
        // openssl -multi forks workers into its process group; stop them all.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `openssl ocsp -index … -multi 2` on a free port and waits until it accepts.
fn start_openssl(dir: &Path) -> Result<(Openssl, SocketAddr), BoxError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log_path = dir.join("openssl.log");
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new("openssl")
        .args(["ocsp", "-index"])
        .arg(dir.join("index.txt"))
        .arg("-CA")
        .arg(dir.join("ca.pem"))
        .arg("-rsigner")
        .arg(dir.join("resp.pem"))
        .arg("-rkey")
        .arg(dir.join("resp.key"))
        .args(["-port", &port.to_string(), "-multi", "2", "-nmin", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()?;
    let openssl = Openssl(child);
    wait_for_accept(&log_path)?;
    Ok((openssl, format!("127.0.0.1:{port}").parse()?))
}

/// `openssl ocsp -reqin body -url url` must print a verified "good".
fn check_good(who: &str, url: &str, body: &Path, dir: &Path) -> Result<(), BoxError> {
    let out = Command::new("openssl")
        .args(["ocsp", "-reqin"])
        .arg(body)
        .args(["-url", url, "-CAfile"])
        .arg(dir.join("ca.pem"))
        .args(["-resp_text", "-no_nonce"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !text.contains("Response verify OK") || !text.contains("Cert Status: good") {
        return Err(format!("{who} did not answer good: {text}").into());
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let n: usize = env_or("JPKI_BENCH_OCSP_N", 1_000_000);
    let secs: u64 = env_or("JPKI_BENCH_SECS", 10);
    let dir = tempfile::tempdir()?;
    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let endpoints = Endpoints::new("http://127.0.0.1:7700")?;

    // The CA and its delegated responder.
    let ca_key = SigningKey::generate(KeyType::Rsa2048)?;
    let root = issue_root(&RootSpec {
        kind: CertKind::Signature,
        key: &ca_key,
        serial: &Serial::from_be_bytes(&[1])?,
        not_before: now - time::Duration::days(1),
        not_after: now + time::Duration::days(3650),
        endpoints: &endpoints,
    })?;
    let issuer = Issuer::new(CertKind::Signature, ca_key, root.clone())?;
    let rkey = SigningKey::generate(KeyType::P384)?;
    let rkey_pkcs8 = rkey.to_pkcs8()?;
    let rspki = SubjectPublicKey::from_der(&rkey.spki_der()?)?;
    let rcert = issuer.issue_ocsp_responder(
        &Serial::from_be_bytes(&[2])?,
        &rspki,
        now - time::Duration::days(1),
        now + time::Duration::days(90),
        &endpoints,
    )?;

    // The population: n serials, every tenth revoked.
    let build = Instant::now();
    let mut serials: Vec<[u8; 16]> = Vec::with_capacity(n);
    for i in 0..n {
        let mut r = [0u8; 16];
        aws_lc_rs::rand::fill(&mut r).map_err(|_| "random")?;
        r[0] = 0x40 | (r[0] & 0x3f);
        r[8..16].copy_from_slice(&(i as u64).to_be_bytes());
        serials.push(r);
    }
    let revoked_at = now - time::Duration::hours(1);
    let status = |i: usize| {
        i.is_multiple_of(10)
            .then_some((revoked_at, jpki_model::RevocationReason::KeyCompromise))
    };
    let index = StatusIndex::build(serials.iter().enumerate().map(|(i, s)| (s.as_slice(), status(i))));
    let bytes_each = index.revoked_bytes_each().unwrap_or(0);
    let service = Arc::new(OcspService::new(time::Duration::hours(1)).with_ca(
        CertKind::Signature,
        &root,
        Responder::new(rkey, rcert.clone())?,
        index,
    )?);
    // openssl's index: V/R, expiry, revocation, serial, file, subject.
    let mut idx = String::with_capacity(n * 80);
    for (i, s) in serials.iter().enumerate() {
        let serial = hex::encode_upper(s);
        if i.is_multiple_of(10) {
            let _ = writeln!(
                idx,
                "R\t361231000000Z\t{}Z,keyCompromise\t{serial}\tunknown\t/CN=holder{i}",
                revoked_at.format(time::macros::format_description!(
                    "[year repr:last_two][month][day][hour][minute][second]"
                ))?
            );
        } else {
            let _ = writeln!(idx, "V\t361231000000Z\t\t{serial}\tunknown\t/CN=holder{i}");
        }
    }
    std::fs::write(dir.path().join("index.txt"), idx)?;
    std::fs::write(dir.path().join("ca.pem"), pem("CERTIFICATE", &root))?;
    std::fs::write(dir.path().join("resp.pem"), pem("CERTIFICATE", &rcert))?;
    std::fs::write(dir.path().join("resp.key"), pem("PRIVATE KEY", &rkey_pkcs8))?;
    println!(
        "population: {n} certificates (every tenth revoked), built in {:.1} s; revocation state {bytes_each} bytes per revoked certificate",
        build.elapsed().as_secs_f64()
    );

    // The requests: one good certificate, without and with a nonce (SHA-1 CertID, as openssl sends).
    let hashes = IssuerHashes::from_cert_der(&root)?;
    let good = serials.get(1).ok_or("empty population")?;
    let id = hashes.cert_id(CertIdHash::Sha1, good);
    let plain = dir.path().join("plain.der");
    let nonce = dir.path().join("nonce.der");
    std::fs::write(&plain, OcspRequest::build(std::slice::from_ref(&id), None)?)?;
    std::fs::write(
        &nonce,
        OcspRequest::build(std::slice::from_ref(&id), Some(&[0x5a; 16]))?,
    )?;

    // In-process rate, no HTTP.
    let req = std::fs::read(&plain)?;
    let t = Instant::now();
    let mut k = 0u64;
    while t.elapsed() < Duration::from_secs(2) {
        std::hint::black_box(service.answer(&req, OffsetDateTime::now_utc(), |_| true));
        k += 1;
    }
    println!(
        "OcspService::answer, cached, 1 thread, no HTTP: {:.0} /s",
        k as f64 / t.elapsed().as_secs_f64()
    );

    // Ours, on a runtime of its own.
    let state = AppState::new().with_ocsp(Arc::new(Ours(Arc::clone(&service))), RevocationAccess::Public);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || -> Result<(), BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        rt.block_on(async move {
            let server = Server::bind("127.0.0.1:0".parse()?, &state).await?;
            addr_tx.send(server.local_addr())?;
            server
                .run_until(async move {
                    let _ = stop_rx.await;
                })
                .await?;
            Ok::<(), BoxError>(())
        })
    });
    let ours = addr_rx.recv_timeout(Duration::from_secs(30))?;

    let mut report = String::new();
    for (phase, body) in [
        ("no nonce (cacheable)", &plain),
        ("with nonce (signed per request)", &nonce),
    ] {
        // A fresh openssl for each phase: when wrk stops it leaves connections without a
        // request, which hang openssl's -multi workers for good.
        let load = Instant::now();
        let (_openssl, theirs) = start_openssl(dir.path())?;
        let loaded = load.elapsed().as_secs_f64();
        // Both answer the request the same way (good, verified) before the load.
        for (who, url) in [
            ("ours", format!("http://{ours}/ocsp/sign")),
            ("openssl", format!("http://{theirs}")),
        ] {
            check_good(who, &url, body, dir.path())?;
        }
        let (ours_rate, ours_p50, ours_p99) = wrk(&format!("http://{ours}/ocsp/sign"), body, secs)?;
        let (their_rate, their_p50, their_p99) = wrk(&format!("http://{theirs}/"), body, secs)?;
        let _ = writeln!(
            report,
            "{phase:<32} ours {ours_rate:>9.0} /s (p50 {ours_p50:.2} ms, p99 {ours_p99:.2} ms)   \
             openssl -multi 2 {their_rate:>8.0} /s (p50 {their_p50:.2} ms, p99 {their_p99:.2} ms; index loaded in {loaded:.1} s)   ratio {:.1}×",
            ours_rate / their_rate
        );
    }
    print!("{report}");
    std::io::stdout().flush()?;
    let _ = stop_tx.send(());
    let _ = server.join();
    Ok(())
}
