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
//! Then, on our server only:
//! - the p99 latency at half of the no-nonce peak, the rate held by `hey -q` (wrk cannot hold a
//!   rate);
//! - the validity JSON API (`POST /v1/certificates/validity` with a PEM certificate and a bearer key
//!   checked against a relying-party registry, metered and recorded as `jpki serve` does), peak rate
//!   by wrk.
//!
//! Also reported: the memory of the revocation state per revoked certificate (the bar: ≤ 32 bytes)
//! and the in-process answer rate of `OcspService::answer` without HTTP. Needs `openssl`, `wrk` and
//! `hey` (scripts/bench.sh ocsp installs both). Run: `cargo bench -p jpki-cli --bench ocsp`.
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
    wrk_with(url, body_file, "application/ocsp-request", None, secs)
}

/// Runs wrk POSTing `body` of `content_type` (with a bearer `key`) to `url`.
fn wrk_with(
    url: &str,
    body_file: &Path,
    content_type: &str,
    key: Option<&str>,
    secs: u64,
) -> Result<(f64, f64, f64), BoxError> {
    let script = body_file.with_extension("lua");
    let auth = key.map_or_else(String::new, |k| {
        format!("wrk.headers['Authorization'] = 'Bearer {k}'\n")
    });
    // A `.list` file names one body file per line: wrk sends them in turn.
    let bodies = if body_file.extension().is_some_and(|e| e == "list") {
        format!(
            "local bodies = {{}}\nfor name in io.lines({:?}) do local f = io.open(name, 'rb'); \
             bodies[#bodies + 1] = f:read('*a'); f:close() end\nlocal i = 0\n\
             request = function() i = i % #bodies + 1; return wrk.format(nil, nil, nil, bodies[i]) end\n",
            body_file.display().to_string()
        )
    } else {
        format!(
            "local f = io.open({:?}, 'rb')\nwrk.body = f:read('*a')\nf:close()\n",
            body_file.display().to_string()
        )
    };
    std::fs::write(
        &script,
        format!("wrk.method = 'POST'\n{bodies}wrk.headers['Content-Type'] = '{content_type}'\n{auth}"),
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

/// Runs hey POSTing `body` to `url` at `rate` requests/s in total over 32 connections for `secs`;
/// returns (achieved requests/s, p50 ms, p99 ms).
fn hey_at(url: &str, body_file: &Path, rate: f64, secs: u64) -> Result<(f64, f64, f64), BoxError> {
    let per_worker = (rate / 32.0).max(1.0);
    let out = Command::new("hey")
        .args([
            "-z",
            &format!("{secs}s"),
            "-c",
            "32",
            "-q",
            &format!("{per_worker:.0}"),
        ])
        .args(["-m", "POST", "-T", "application/ocsp-request", "-D"])
        .arg(body_file)
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !text.contains("[200]") || text.contains("Error distribution") {
        return Err(format!("hey against {url}: {text}").into());
    }
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("hey said: {text}"))?;
    // "  99%% in 0.0012 secs"
    let pct = |p: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(p))
            .and_then(|v| v.trim_start_matches('%').trim().strip_prefix("in "))
            .and_then(|v| v.trim().strip_suffix("secs"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(f64::NAN, |s| s * 1000.0)
    };
    Ok((rate, pct("50%"), pct("99%")))
}

/// The validity API as `jpki serve` runs it: keys from a relying-party registry, every answered
/// check metered and recorded.
struct ValidityApi {
    api: jpki_platform::Api,
    meter: Arc<jpki_platform::Meter>,
    recorder: Arc<jpki_platform::Recorder>,
}

impl jpki_server::JsonApi for ValidityApi {
    fn blocks(&self, operation: &str) -> bool {
        operation != "certificates/validity"
    }

    fn call(&self, caller: &Caller, operation: &str, body: &[u8]) -> (u16, String) {
        let may = |cap: jpki_platform::Capability| caller.may(cap.as_str());
        let rights = jpki_platform::api::Rights {
            rp_id: &caller.id,
            may: &may,
            age_thresholds: &[],
        };
        let now = OffsetDateTime::now_utc();
        let answer = self.api.call(operation, body, &rights, now);
        for c in &answer.checked {
            self.meter.add(&caller.id, c.kind, "validity", 1, now);
            self.recorder.push(jpki_platform::Seen {
                at: now,
                rp_id: caller.id.clone(),
                kind: c.kind,
                serial: c.serial.clone(),
                check: c.check.clone(),
                purpose: answer.purpose.clone(),
                result: c.result.clone(),
            });
        }
        (answer.status, answer.body.to_string())
    }
}

struct RegistryKeys(std::sync::Mutex<jpki_platform::Registry>);

impl jpki_server::ApiKeys for RegistryKeys {
    fn identify(&self, key: &str) -> Option<Caller> {
        let rp = self.0.lock().ok()?.authenticate(key).ok()??;
        Some(Caller {
            scopes: rp.capabilities.iter().map(|c| c.as_str().to_owned()).collect(),
            id: rp.id,
        })
    }
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
        generation: 1,
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
    // The responder's own serial (2) stands in as a good certificate for the validity API.
    let index = StatusIndex::build(
        serials
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_slice(), status(i)))
            .chain(std::iter::once((&[2u8][..], None))),
    );
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

    // The validity API: a registered relying party, metering and recording drained in the
    // background as the server's flush would.
    let mut registry = jpki_platform::Registry::open(&dir.path().join("platform.sqlite"))?;
    let (_rp, api_key) = registry.add(
        &jpki_platform::NewRelyingParty {
            name: "bench",
            capabilities: [jpki_platform::Capability::SignStatus].into_iter().collect(),
            age_thresholds: Vec::new(),
            purpose: None,
        },
        now,
    )?;
    let (meter, recorder) = (
        Arc::new(jpki_platform::Meter::default()),
        Arc::new(jpki_platform::Recorder::default()),
    );
    let drained = Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let (meter, recorder, drained) = (Arc::clone(&meter), Arc::clone(&recorder), Arc::clone(&drained));
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(250));
                let _ = meter.take();
                let n = recorder.take().len() as u64;
                drained.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    let api = ValidityApi {
        api: jpki_platform::Api::new(Arc::clone(&service), &[(CertKind::Signature, root.clone())])?,
        meter: Arc::clone(&meter),
        recorder: Arc::clone(&recorder),
    };
    // The same API without its verified-certificate cache, for certificates seen for the first
    // time, and that many distinct certificates of the population (good and revoked alike).
    let cold_api = ValidityApi {
        api: jpki_platform::Api::new(Arc::clone(&service), &[(CertKind::Signature, root.clone())])?
            .with_verified_cache(0),
        meter,
        recorder,
    };
    let distinct: usize = env_or("JPKI_BENCH_DISTINCT", 2_000).min(n);
    let mut list = String::new();
    for (i, serial) in serials.iter().take(distinct).enumerate() {
        let cert = issuer.issue_ocsp_responder(
            &Serial::from_be_bytes(serial)?,
            &rspki,
            now - time::Duration::days(1),
            now + time::Duration::days(90),
            &endpoints,
        )?;
        let path = dir.path().join(format!("validity-{i}.json"));
        std::fs::write(
            &path,
            serde_json::json!({ "certificate": pem("CERTIFICATE", &cert) }).to_string(),
        )?;
        let _ = writeln!(list, "{}", path.display());
    }
    let distinct_list = dir.path().join("distinct.list");
    std::fs::write(&distinct_list, list)?;
    let validity_body = dir.path().join("validity.json");
    std::fs::write(
        &validity_body,
        serde_json::json!({ "certificate": pem("CERTIFICATE", &rcert), "purpose": "bench" }).to_string(),
    )?;

    {
        let body = std::fs::read(&validity_body)?;
        let may = |_| true;
        let rights = jpki_platform::api::Rights {
            rp_id: "bench",
            may: &may,
            age_thresholds: &[],
        };
        let t = Instant::now();
        let mut k = 0u64;
        while t.elapsed() < Duration::from_secs(2) {
            std::hint::black_box(api.api.call(
                "certificates/validity",
                &body,
                &rights,
                OffsetDateTime::now_utc(),
            ));
            k += 1;
        }
        println!(
            "Api::call validity, 1 thread, no HTTP: {:.0} /s",
            k as f64 / t.elapsed().as_secs_f64()
        );
        let per = |name: &str, f: &mut dyn FnMut()| {
            let t = Instant::now();
            let mut k = 0u64;
            while t.elapsed() < Duration::from_millis(500) {
                f();
                k += 1;
            }
            println!("  {name}: {:.1} µs", t.elapsed().as_secs_f64() * 1e6 / k as f64);
        };
        let ca = jpki_pki::x509::ParsedCert::from_der(&root)?;
        per("ParsedCert::from_der", &mut || {
            std::hint::black_box(jpki_pki::x509::ParsedCert::from_der(&rcert).ok());
        });
        let parsed = jpki_pki::x509::ParsedCert::from_der(&rcert)?;
        per("is_signed_by", &mut || {
            std::hint::black_box(parsed.is_signed_by(&ca.public_key));
        });
        per("x509_cert::Certificate::from_der", &mut || {
            use der::Decode as _;
            std::hint::black_box(x509_cert::Certificate::from_der(&rcert).ok());
        });
        per("serde_json body", &mut || {
            std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&body).ok());
        });
        per("pem decode", &mut || {
            std::hint::black_box(
                jpki_pki::x509::certificates_from_pem_or_der(pem("CERTIFICATE", &rcert).as_bytes()).ok(),
            );
        });
        let t = Instant::now();
        let mut k = 0u64;
        while t.elapsed() < Duration::from_secs(1) {
            std::hint::black_box(registry.authenticate(api_key.expose())?);
            k += 1;
        }
        println!(
            "Registry::authenticate, 1 thread: {:.0} /s",
            k as f64 / t.elapsed().as_secs_f64()
        );
    }

    // Writing access records: what the server's flush does with the checks (one transaction and
    // one batch signature per flush), 20,000 checks of 5,000 people per flush.
    {
        let mut store = jpki_platform::AccessStore::open(&dir.path().join("access-log.sqlite"))?;
        let log_key = SigningKey::generate(KeyType::P384)?;
        let t = Instant::now();
        let mut written = 0usize;
        for round in 0..5u32 {
            let checks = (0..20_000u32)
                .map(|i| {
                    (
                        format!("{:032x}", (i % 5_000) * 7919 + round),
                        jpki_platform::CheckRecord {
                            at: now,
                            rp_id: "rp-0123456789abcdef".into(),
                            rp_name: "bench".into(),
                            cert_kind: CertKind::Signature,
                            check: "validity".into(),
                            purpose: "bench".into(),
                            result: "valid".into(),
                        },
                    )
                })
                .collect();
            written += store.append(&log_key, checks, now)?;
        }
        println!(
            "AccessStore::append, 1 thread: {:.0} records/s",
            written as f64 / t.elapsed().as_secs_f64()
        );
    }

    if std::env::var_os("JPKI_BENCH_IN_PROCESS_ONLY").is_some() {
        return Ok(());
    }

    // Ours, on a runtime of its own.
    let cold_keys = Arc::new(RegistryKeys(std::sync::Mutex::new(
        jpki_platform::Registry::open(&dir.path().join("platform.sqlite"))?,
    )));
    let state = AppState::new()
        .with_ocsp(Arc::new(Ours(Arc::clone(&service))), RevocationAccess::Public)
        .with_api(
            Arc::new(api),
            Arc::new(RegistryKeys(std::sync::Mutex::new(registry))),
        );
    let cold_state = AppState::new().with_api(Arc::new(cold_api), cold_keys);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || -> Result<(), BoxError> {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        rt.block_on(async move {
            let server = Server::bind("127.0.0.1:0".parse()?, &state).await?;
            let cold = Server::bind("127.0.0.1:0".parse()?, &cold_state).await?;
            addr_tx.send((server.local_addr(), cold.local_addr()))?;
            let (stop_cold_tx, stop_cold_rx) = tokio::sync::oneshot::channel::<()>();
            let cold = tokio::spawn(cold.run_until(async move {
                let _ = stop_cold_rx.await;
            }));
            server
                .run_until(async move {
                    let _ = stop_rx.await;
                })
                .await?;
            let _ = stop_cold_tx.send(());
            let _ = cold.await;
            Ok::<(), BoxError>(())
        })
    });
    let (ours, cold) = addr_rx.recv_timeout(Duration::from_secs(30))?;

    let mut report = String::new();
    let mut peak = 0.0f64;
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
        if peak == 0.0 {
            peak = ours_rate;
        }
        let (their_rate, their_p50, their_p99) = wrk(&format!("http://{theirs}/"), body, secs)?;
        let _ = writeln!(
            report,
            "{phase:<32} ours {ours_rate:>9.0} /s (p50 {ours_p50:.2} ms, p99 {ours_p99:.2} ms)   \
             openssl -multi 2 {their_rate:>8.0} /s (p50 {their_p50:.2} ms, p99 {their_p99:.2} ms; index loaded in {loaded:.1} s)   ratio {:.1}×",
            ours_rate / their_rate
        );
    }
    // Latency at half of the no-nonce peak, the rate held by hey.
    let (held, p50, p99) = hey_at(&format!("http://{ours}/ocsp/sign"), &plain, peak / 2.0, secs)?;
    let _ = writeln!(
        report,
        "no nonce at half of peak ({:.0} /s asked, {held:.0} /s held by hey -q): p50 {p50:.2} ms, p99 {p99:.2} ms",
        peak / 2.0
    );

    // The validity JSON API: one certificate again and again, then distinct ones against the
    // caching server (each seen before) and against the one that verifies every time.
    for (label, server, bodies) in [
        (
            "one certificate again and again (PEM, bearer key, metered and recorded)".to_owned(),
            ours,
            &validity_body,
        ),
        (
            format!("{distinct} distinct certificates, each seen before (cache)"),
            ours,
            &distinct_list,
        ),
        (
            format!("{distinct} distinct certificates, signature verified every time"),
            cold,
            &distinct_list,
        ),
    ] {
        let (rate, p50, p99) = wrk_with(
            &format!("http://{server}/v1/certificates/validity"),
            bodies,
            "application/json",
            Some(api_key.expose()),
            secs,
        )?;
        let _ = writeln!(
            report,
            "validity JSON API, {label} {rate:>9.0} checks/s (p50 {p50:.2} ms, p99 {p99:.2} ms)"
        );
    }
    let _ = writeln!(
        report,
        "{} checks recorded in all",
        drained.load(std::sync::atomic::Ordering::Relaxed)
    );
    print!("{report}");
    std::io::stdout().flush()?;
    let _ = stop_tx.send(());
    let _ = server.join();
    Ok(())
}
