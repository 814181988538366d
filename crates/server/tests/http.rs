//! The HTTP server and client over real sockets on 127.0.0.1.
//!
//! * `POST /tsa` (RFC 3161 §3.4): 200 `application/timestamp-reply` with the stamper's bytes,
//!   415 for another Content-Type, 413 over 64 KiB (announced or chunked), 400 for an empty body,
//!   405 with `Allow: POST` for other methods, 500 when the stamper panics; 404 elsewhere;
//!   `/healthz`; `Cache-Control: no-store` on every reply. Checked with a hand-written HTTP/1.1
//!   client, so the server is not only tested by the client that ships with it.
//! * `post_timestamp_query` against it and against a misbehaving server: success, HTTP errors,
//!   wrong Content-Type, oversize and empty bodies, redirects, refused connection, timeout, TLS to
//!   a plain-HTTP port. Each failure is one line naming the URL and the problem.
//! * Graceful shutdown: an idle server, an idle keep-alive connection, a request in flight (it
//!   finishes with 200), a request stuck past the grace period (abandoned in time).
//! * 50 concurrent requests, all answered; a port already in use.
//! * OCSP (RFC 6960 Appendix A): POST `application/ocsp-request` (at `/ocsp` and `/ocsp/{ca}`) and
//!   GET `/ocsp/{ca}/{base64}` reach the
//!   responder with the same bytes (percent-encoded, unpadded); without a bearer key the server
//!   answers 401 with `WWW-Authenticate: Bearer` unless revocation is public, and an unknown key is
//!   401 too; 415, 413 and a bad base64 path are 4xx.
//! * Slow loris: 200 connections that never finish their headers do not keep others from being
//!   answered, and each is closed once the header timeout passes.
//! * The real `curl` (skipped with a message when it is missing, unless `JPKI_REQUIRE_INTEROP=1`).
//! * The card agent's pages: a non-loopback `Host` is 403; the PIN form needs the page's one-time
//!   token; a wrong PIN shows the card's message with a new token; the answer posts to the origin
//!   the agent showed, under a Content-Security-Policy allowing only that.
//!
//! The time-stamper is a stub: `TimeStamper` is this crate's own trait, and what a real one signs
//! is tested where it is implemented.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jpki_server::{
    ApiKeys, AppState, Caller, MAX_QUERY_BYTES, OcspResponder, RevocationAccess, Server, ServerError,
    TimeStamper, post_timestamp_query,
};

const FIXED: &[u8] = b"\x30\x03\x02\x01\x00";
const QUERY: &[u8] = b"\x30\x0a\x02\x01\x01\x30\x05\x04\x03abc";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Answers `FIXED` followed by the query, so a test sees the body arrived whole.
struct Echo {
    calls: AtomicUsize,
}

impl TimeStamper for Echo {
    fn respond(&self, query_der: &[u8]) -> Vec<u8> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        [FIXED, query_der].concat()
    }
}

fn echo() -> Arc<Echo> {
    Arc::new(Echo {
        calls: AtomicUsize::new(0),
    })
}

/// Says when a request has reached it, then takes `delay` to answer `FIXED`.
struct Slow {
    delay: Duration,
    entered: Mutex<mpsc::Sender<()>>,
}

impl TimeStamper for Slow {
    fn respond(&self, _query_der: &[u8]) -> Vec<u8> {
        let _ = self.entered.lock().unwrap().send(());
        std::thread::sleep(self.delay);
        FIXED.to_vec()
    }
}

fn slow(delay: Duration) -> (Arc<Slow>, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel();
    (
        Arc::new(Slow {
            delay,
            entered: Mutex::new(tx),
        }),
        rx,
    )
}

struct Panics;

impl TimeStamper for Panics {
    fn respond(&self, _query_der: &[u8]) -> Vec<u8> {
        panic!("stub stamper panics on purpose");
    }
}

/// A server on its own runtime thread, stopped by `stop` (or on drop).
struct TestServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    fn start(tsa: Arc<dyn TimeStamper>) -> Self {
        Self::start_with_grace(tsa, jpki_server::DEFAULT_GRACE)
    }

    fn start_with_grace(tsa: Arc<dyn TimeStamper>, grace: Duration) -> Self {
        Self::start_state(AppState::new().with_tsa(tsa), grace)
    }

    fn start_state(state: AppState, grace: Duration) -> Self {
        Self::start_full(state, grace, jpki_server::DEFAULT_HEADER_TIMEOUT)
    }

    fn start_full(state: AppState, grace: Duration, header_timeout: Duration) -> Self {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let result = runtime.block_on(async move {
                let server = Server::bind("127.0.0.1:0".parse().unwrap(), &state)
                    .await?
                    .with_grace(grace)
                    .with_header_timeout(header_timeout);
                addr_tx.send(server.local_addr()).unwrap();
                server
                    .run_until(async move {
                        let _ = stop_rx.await;
                    })
                    .await
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
            result
        });
        let addr = addr_rx.recv_timeout(TIMEOUT).expect("server did not start");
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
        Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers the shutdown future; returns what the serve future returned and how long it took.
    fn stop(mut self) -> (Result<(), ServerError>, Duration) {
        let start = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        let thread = self.thread.take().unwrap();
        while !thread.is_finished() {
            assert!(start.elapsed() < Duration::from_secs(20), "server did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
        let elapsed = start.elapsed();
        (thread.join().unwrap(), elapsed)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A parsed HTTP/1.1 reply.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `head` (request line and headers, without the blank line; `Connection: close` added) and
/// `body` by hand, reads the reply to EOF.
fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    // The server may answer (413) and close before reading everything: a failed write is fine,
    // the reply is what counts.
    let _ = stream.write_all(&request);
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    parse_reply(&bytes)
}

fn parse_reply(bytes: &[u8]) -> Reply {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!("no HTTP reply head in {:?}", String::from_utf8_lossy(bytes));
        });
    let head = std::str::from_utf8(&bytes[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}

fn post_tsa(addr: SocketAddr, content_type: Option<&str>, body: &[u8]) -> Reply {
    let ct = content_type
        .map(|c| format!("\r\nContent-Type: {c}"))
        .unwrap_or_default();
    raw(
        addr,
        &format!("POST /tsa HTTP/1.1{ct}\r\nContent-Length: {}", body.len()),
        body,
    )
}

#[test]
fn a_query_gets_a_timestamp_reply() {
    let stamper = echo();
    let server = TestServer::start(stamper.clone());
    let reply = post_tsa(server.addr, Some("application/timestamp-query"), QUERY);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/timestamp-reply"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.body, [FIXED, QUERY].concat());
    assert_eq!(stamper.calls.load(Ordering::SeqCst), 1);

    // Media type parameters and case do not matter.
    let reply = post_tsa(server.addr, Some("Application/TimeStamp-Query; x=y"), QUERY);
    assert_eq!(reply.status, 200, "{reply:?}");

    let (result, _) = server.stop();
    result.unwrap();
}

#[test]
fn another_content_type_is_415() {
    let stamper = echo();
    let server = TestServer::start(stamper.clone());
    for ct in [
        Some("application/octet-stream"),
        Some("application/timestamp-reply"),
        None,
    ] {
        let reply = post_tsa(server.addr, ct, QUERY);
        assert_eq!(reply.status, 415, "{ct:?}: {reply:?}");
        assert!(
            reply.text().contains("application/timestamp-query"),
            "{}",
            reply.text()
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    assert_eq!(stamper.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_query_over_64_kib_is_413() {
    let stamper = echo();
    let server = TestServer::start(stamper.clone());
    let ts = "application/timestamp-query";

    // Exactly at the limit: accepted.
    let at_limit = vec![0x30; MAX_QUERY_BYTES];
    let reply = post_tsa(server.addr, Some(ts), &at_limit);
    assert_eq!(reply.status, 200, "{:?}", reply.text());

    // Announced over the limit: refused before the body is read.
    let over = vec![0x30; MAX_QUERY_BYTES + 1];
    let reply = post_tsa(server.addr, Some(ts), &over);
    assert_eq!(reply.status, 413, "{:?}", reply.text());
    assert!(reply.text().contains("64 KiB"), "{}", reply.text());

    // Announced, waiting for 100 Continue: the body is never sent.
    let head = format!(
        "POST /tsa HTTP/1.1\r\nContent-Type: {ts}\r\nContent-Length: {}\r\nExpect: 100-continue",
        10 * MAX_QUERY_BYTES
    );
    let reply = raw(server.addr, &head, b"");
    assert_eq!(reply.status, 413, "{:?}", reply.text());

    // Chunked, no length given: cut off while reading.
    let mut chunked = Vec::new();
    for _ in 0..5 {
        chunked.extend_from_slice(format!("{:x}\r\n", 16 * 1024).as_bytes());
        chunked.extend_from_slice(&[0x30; 16 * 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!("POST /tsa HTTP/1.1\r\nContent-Type: {ts}\r\nTransfer-Encoding: chunked");
    let reply = raw(server.addr, &head, &chunked);
    assert_eq!(reply.status, 413, "{:?}", reply.text());

    assert_eq!(stamper.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn an_empty_query_is_400() {
    let stamper = echo();
    let server = TestServer::start(stamper.clone());
    let reply = post_tsa(server.addr, Some("application/timestamp-query"), b"");
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(reply.text().contains("empty"), "{}", reply.text());
    assert_eq!(stamper.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn other_methods_are_405_with_allow_post() {
    let server = TestServer::start(echo());
    for method in ["GET", "PUT", "DELETE", "HEAD"] {
        let reply = raw(server.addr, &format!("{method} /tsa HTTP/1.1"), b"");
        assert_eq!(reply.status, 405, "{method}: {reply:?}");
        assert_eq!(reply.header("allow"), Some("POST"), "{method}: {reply:?}");
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
}

#[test]
fn unknown_paths_are_404_and_healthz_is_ok() {
    let server = TestServer::start(echo());
    for head in ["GET / HTTP/1.1", "GET /tsa/x HTTP/1.1", "GET /nope?x=1 HTTP/1.1"] {
        let reply = raw(server.addr, head, b"");
        assert_eq!(reply.status, 404, "{head}: {reply:?}");
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    // POST / is not an alias of /tsa.
    let reply = raw(
        server.addr,
        &format!(
            "POST / HTTP/1.1\r\nContent-Type: application/timestamp-query\r\nContent-Length: {}",
            QUERY.len()
        ),
        QUERY,
    );
    assert_eq!(reply.status, 404, "{reply:?}");

    let reply = raw(server.addr, "GET /healthz HTTP/1.1", b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.text().trim(), "ok");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

#[test]
fn a_server_without_services_answers_only_healthz() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = Server::bind("127.0.0.1:0".parse().unwrap(), &AppState::new())
            .await
            .unwrap();
        let addr = server.local_addr();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run_until(async move {
            let _ = stop_rx.await;
        }));
        let replies = tokio::task::spawn_blocking(move || {
            (
                raw(addr, "GET /healthz HTTP/1.1", b""),
                post_tsa(addr, Some("application/timestamp-query"), QUERY),
            )
        })
        .await
        .unwrap();
        assert_eq!(replies.0.status, 200);
        assert_eq!(replies.1.status, 404);
        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), serving)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    });
}

#[test]
fn a_panicking_stamper_is_500_and_the_server_goes_on() {
    let server = TestServer::start(Arc::new(Panics));
    let reply = post_tsa(server.addr, Some("application/timestamp-query"), QUERY);
    assert_eq!(reply.status, 500, "{reply:?}");
    let reply = raw(server.addr, "GET /healthz HTTP/1.1", b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    let (result, _) = server.stop();
    result.unwrap();
}

#[test]
fn the_client_gets_the_reply() {
    let server = TestServer::start(echo());
    let reply = post_timestamp_query(&server.url("/tsa"), QUERY, TIMEOUT).unwrap();
    assert_eq!(reply, [FIXED, QUERY].concat());
}

#[test]
fn the_client_reports_http_errors_in_one_line() {
    let server = TestServer::start(echo());
    let url = server.url("/nope");
    let err = post_timestamp_query(&url, QUERY, TIMEOUT).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("time-stamp authority {url}: HTTP 404 (not found)")
    );
    assert!(
        matches!(err, ServerError::TsaStatus { status: 404, .. }),
        "{err:?}"
    );

    let url = server.url("/healthz");
    let err = post_timestamp_query(&url, QUERY, TIMEOUT).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("time-stamp authority {url}: HTTP 405 (Method Not Allowed)")
    );
}

/// A server that breaks the protocol in every way a client must notice.
struct Misbehaving {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

fn misbehaving() -> Misbehaving {
    use axum::http::{StatusCode, header};
    use axum::routing::post;
    const REPLY_TYPE: [(header::HeaderName, &str); 1] =
        [(header::CONTENT_TYPE, "application/timestamp-reply")];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let router = axum::Router::new()
        .route(
            "/415",
            post(|| async {
                (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    [(header::CONTENT_TYPE, "text/plain")],
                    "\n  expected Content-Type: application/timestamp-query\r\nsecond line\n",
                )
            }),
        )
        .route(
            "/500",
            post(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html>oops</html>",
                )
            }),
        )
        .route(
            "/html",
            post(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<html>login</html>",
                )
            }),
        )
        .route("/no-type", post(|| async { axum::body::Body::from(FIXED) }))
        // The large answers read the request first, as a real server does: closing a socket with
        // unread request bytes makes the kernel reset the connection, dropping answer bytes not
        // yet sent.
        .route(
            "/big",
            post(|_b: axum::body::Bytes| async { (REPLY_TYPE, vec![0x30u8; 1024 * 1024 + 1]) }),
        )
        .route(
            "/max",
            post(|_b: axum::body::Bytes| async { (REPLY_TYPE, vec![0x30u8; 1024 * 1024]) }),
        )
        .route("/empty", post(|| async { (REPLY_TYPE, Vec::<u8>::new()) }))
        .route(
            "/moved",
            post(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "https://tsa.example/tsa")],
                    "",
                )
            }),
        );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, router).await });
    Misbehaving {
        addr,
        _runtime: runtime,
    }
}

#[test]
fn the_client_checks_what_the_server_answers() {
    let bad = misbehaving();
    let url = |path: &str| format!("http://{}{path}", bad.addr);
    let message = |path: &str| {
        post_timestamp_query(&url(path), QUERY, TIMEOUT)
            .unwrap_err()
            .to_string()
    };

    assert_eq!(
        message("/415"),
        format!(
            "time-stamp authority {}: HTTP 415 (expected Content-Type: application/timestamp-query)",
            url("/415")
        )
    );
    assert_eq!(
        message("/500"),
        format!(
            "time-stamp authority {}: HTTP 500 (Internal Server Error)",
            url("/500")
        )
    );
    assert_eq!(
        message("/html"),
        format!(
            "time-stamp authority {}: answered text/html; charset=utf-8, not application/timestamp-reply",
            url("/html")
        )
    );
    assert_eq!(
        message("/no-type"),
        format!(
            "time-stamp authority {}: answered no Content-Type, not application/timestamp-reply",
            url("/no-type")
        )
    );
    assert_eq!(
        message("/big"),
        format!("time-stamp authority {}: answer larger than 1 MiB", url("/big"))
    );
    assert_eq!(
        message("/empty"),
        format!("time-stamp authority {}: empty answer", url("/empty"))
    );
    assert_eq!(
        message("/moved"),
        format!(
            "time-stamp authority {}: HTTP 302 (redirected to https://tsa.example/tsa)",
            url("/moved")
        )
    );
    assert_eq!(
        post_timestamp_query(&url("/max"), QUERY, TIMEOUT).unwrap().len(),
        1024 * 1024
    );
    for path in ["/415", "/html", "/big", "/moved"] {
        assert!(!message(path).contains('\n'), "{path}");
    }
}

#[test]
fn the_client_reports_unreachable_servers_in_one_line() {
    // A port that was free a moment ago: nothing listens there now.
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/tsa");
    let err = post_timestamp_query(&url, QUERY, TIMEOUT).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("time-stamp authority {url}: connection refused")
    );

    let err = post_timestamp_query("not a url", QUERY, TIMEOUT).unwrap_err();
    assert!(
        err.to_string().starts_with("time-stamp authority not a url: "),
        "{err}"
    );

    let err = post_timestamp_query(
        &format!("http://user:secret@127.0.0.1:{port}/tsa"),
        QUERY,
        TIMEOUT,
    )
    .unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[test]
fn the_client_speaks_tls_with_aws_lc_rs() {
    // A plain-HTTP server on an https:// URL: the TLS handshake must fail (proving a crypto
    // provider is installed, no panic), as one line.
    let server = TestServer::start(echo());
    let url = format!("https://{}/tsa", server.addr);
    let err = post_timestamp_query(&url, QUERY, TIMEOUT).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("time-stamp authority {url}: ")),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    assert!(matches!(err, ServerError::TsaUnreachable { .. }), "{err:?}");
}

#[test]
fn the_client_gives_up_after_its_timeout() {
    let (stamper, _entered) = slow(Duration::from_secs(3));
    let server = TestServer::start(stamper);
    let url = server.url("/tsa");
    let start = Instant::now();
    let err = post_timestamp_query(&url, QUERY, Duration::from_millis(300)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert_eq!(
        err.to_string(),
        format!("time-stamp authority {url}: no answer within 300 ms")
    );
}

#[test]
fn an_idle_server_shuts_down_at_once() {
    let server = TestServer::start(echo());
    assert_eq!(
        post_timestamp_query(&server.url("/tsa"), QUERY, TIMEOUT)
            .unwrap()
            .len(),
        FIXED.len() + QUERY.len()
    );
    let (result, took) = server.stop();
    result.unwrap();
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn an_idle_keep_alive_connection_does_not_hold_up_shutdown() {
    let server = TestServer::start(echo());
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // The connection stays open and idle.
    let (result, took) = server.stop();
    result.unwrap();
    assert!(took < Duration::from_secs(2), "{took:?}");
    // ... and was closed by the server.
    assert_eq!(stream.read(&mut buf).unwrap_or(0), 0);
}

#[test]
fn a_request_in_flight_finishes_during_shutdown() {
    let (stamper, entered) = slow(Duration::from_millis(600));
    let server = TestServer::start(stamper);
    let url = server.url("/tsa");
    let client = std::thread::spawn(move || post_timestamp_query(&url, QUERY, TIMEOUT));
    entered.recv_timeout(TIMEOUT).unwrap();
    let (result, took) = server.stop();
    result.unwrap();
    assert_eq!(client.join().unwrap().unwrap(), FIXED);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[test]
fn a_stuck_request_is_abandoned_after_the_grace_period() {
    let (stamper, entered) = slow(Duration::from_secs(4));
    let server = TestServer::start_with_grace(stamper, Duration::from_millis(300));
    let url = server.url("/tsa");
    let client = std::thread::spawn(move || post_timestamp_query(&url, QUERY, TIMEOUT));
    entered.recv_timeout(TIMEOUT).unwrap();
    let (result, took) = server.stop();
    result.unwrap();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(client.join().unwrap().is_err());
}

#[test]
fn fifty_concurrent_queries_are_all_answered() {
    let stamper = echo();
    let server = TestServer::start(stamper.clone());
    let url = server.url("/tsa");
    let answers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0u8..50)
            .map(|i| {
                let url = &url;
                s.spawn(move || {
                    let query = [QUERY, &[i]].concat();
                    let reply = post_timestamp_query(url, &query, TIMEOUT).unwrap();
                    assert_eq!(reply, [FIXED, &query].concat());
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(stamper.calls.load(Ordering::SeqCst), 50);
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime
        .block_on(Server::bind(addr, &AppState::new()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot listen on {addr}: address already in use")
    );
}

fn on_path(exe: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(exe))
        .find(|p| p.is_file())
}

#[test]
fn curl_gets_a_timestamp_reply() {
    let Some(curl) = on_path("curl") else {
        if std::env::var("JPKI_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!("curl not found and JPKI_REQUIRE_INTEROP=1");
        }
        // Straight to stderr, past the harness's capture, so the skip shows.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED curl_gets_a_timestamp_reply: curl not found (set JPKI_REQUIRE_INTEROP=1 to make this a failure)"
        );
        return;
    };
    let server = TestServer::start(echo());
    let dir = tempfile::tempdir().unwrap();
    let query = dir.path().join("q");
    let out = dir.path().join("out");
    std::fs::write(&query, QUERY).unwrap();
    let output = std::process::Command::new(curl)
        .arg("-sS")
        .arg("--noproxy")
        .arg("*")
        .arg("--data-binary")
        .arg(format!("@{}", query.display()))
        .args(["-H", "Content-Type: application/timestamp-query"])
        .args(["-w", "%{http_code} %{content_type}"])
        .arg("-o")
        .arg(&out)
        .arg(server.url("/tsa"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "200 application/timestamp-reply"
    );
    assert_eq!(std::fs::read(&out).unwrap(), [FIXED, QUERY].concat());
}

/// Answers `FIXED` followed by the request, so a test sees which bytes arrived.
struct OcspEcho;

impl OcspResponder for OcspEcho {
    fn answer(&self, caller: Option<&Caller>, request_der: &[u8]) -> Vec<u8> {
        let who = caller.map_or("public".to_owned(), |c| {
            format!("{}:{}", c.id, c.scopes.join("+"))
        });
        [FIXED, who.as_bytes(), b"|", request_der].concat()
    }
}

struct OneKey;

impl ApiKeys for OneKey {
    fn identify(&self, key: &str) -> Option<Caller> {
        (key == "rp-key-1").then(|| Caller {
            id: "rp-1".into(),
            scopes: vec!["auth-status".into(), "sign-status".into()],
        })
    }
}

fn ocsp_server(access: RevocationAccess) -> TestServer {
    TestServer::start_state(
        AppState::new().with_ocsp(Arc::new(OcspEcho), access),
        jpki_server::DEFAULT_GRACE,
    )
}

#[test]
fn ocsp_post_and_get_reach_the_responder_with_a_registered_key() {
    let s = ocsp_server(RevocationAccess::Keys(Arc::new(OneKey)));
    let req = b"\x30\x05\xfb\xef\xff\xfe\x00";
    let post = |auth: &str| {
        raw(
            s.addr,
            &format!(
                "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\n{auth}Content-Length: {}",
                req.len()
            ),
            req,
        )
    };
    let ok = post("Authorization: Bearer rp-key-1\r\n");
    let per_ca = raw(
        s.addr,
        &format!(
            "POST /ocsp/sign HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nAuthorization: Bearer rp-key-1\r\nContent-Length: {}",
            req.len()
        ),
        req,
    );
    assert_eq!(
        per_ca.body, ok.body,
        "the per-CA URL of the certificates answers too"
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.header("content-type"), Some("application/ocsp-response"));
    assert_eq!(
        ok.body,
        [FIXED, b"rp-1:auth-status+sign-status|", req.as_slice()].concat(),
        "the responder knows who asks"
    );
    for auth in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: Basic cnAta2V5LTE=\r\n",
    ] {
        let r = post(auth);
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    // GET: standard base64 of the DER, percent-encoded in the path, padding optional.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(req);
    assert!(
        b64.contains('+') && b64.contains('/'),
        "{b64}: the test needs both"
    );
    let encoded = b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let get = raw(
        s.addr,
        &format!("GET /ocsp/sign/{encoded} HTTP/1.1\r\nAuthorization: Bearer rp-key-1"),
        b"",
    );
    assert_eq!(get.status, 200, "{}", get.text());
    assert_eq!(get.body, ok.body);
    let unpadded = raw(
        s.addr,
        &format!(
            "GET /ocsp/auth/{} HTTP/1.1\r\nAuthorization: Bearer rp-key-1",
            b64.trim_end_matches('=')
        ),
        b"",
    );
    assert_eq!(unpadded.body, ok.body);
    let anonymous = raw(s.addr, &format!("GET /ocsp/sign/{encoded} HTTP/1.1"), b"");
    assert_eq!(anonymous.status, 401);
}

/// Keys kept in a registry that cannot be reached: "rp-key-1" is remembered, others unknowable.
struct RegistryDown;

impl ApiKeys for RegistryDown {
    fn identify(&self, key: &str) -> Option<Caller> {
        self.lookup(key).ok().flatten()
    }

    fn lookup(&self, key: &str) -> Result<Option<Caller>, jpki_server::KeysUnavailable> {
        if key == "rp-key-1" {
            Ok(OneKey.identify(key))
        } else {
            Err(jpki_server::KeysUnavailable)
        }
    }
}

#[test]
fn a_key_that_cannot_be_checked_now_is_told_to_retry_not_refused() {
    let s = TestServer::start_state(
        AppState::new()
            .with_ocsp(Arc::new(OcspEcho), RevocationAccess::Keys(Arc::new(RegistryDown)))
            .with_api(Arc::new(EchoApi), Arc::new(RegistryDown)),
        jpki_server::DEFAULT_GRACE,
    );
    let req = b"\x30\x05\xfb\xef\xff\xfe\x00";
    let ocsp = |key: &str| {
        raw(
            s.addr,
            &format!(
                "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nAuthorization: Bearer {key}\r\nContent-Length: {}",
                req.len()
            ),
            req,
        )
    };
    assert_eq!(ocsp("rp-key-1").status, 200);
    let down = ocsp("rp-key-2");
    assert_eq!(down.status, 503, "{}", down.text());
    assert_eq!(down.header("retry-after"), Some("1"));
    assert!(down.text().contains("unreachable"), "{}", down.text());
    let api = |key: &str| {
        raw(
            s.addr,
            &format!(
                "POST /v1/certificates/validity HTTP/1.1\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 2"
            ),
            b"{}",
        )
    };
    assert_eq!(api("rp-key-1").status, 200);
    let down = api("rp-key-2");
    assert_eq!(down.status, 503, "{}", down.text());
    assert_eq!(down.header("retry-after"), Some("1"));
    let v: serde_json::Value = serde_json::from_slice(&down.body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("unreachable"), "{v}");
    // No key at all is still 401: nothing to check.
    let none = raw(
        s.addr,
        "POST /v1/certificates/validity HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2",
        b"{}",
    );
    assert_eq!(none.status, 401);
}

#[test]
fn ocsp_public_revocation_and_bad_requests() {
    let s = ocsp_server(RevocationAccess::Public);
    let r = raw(
        s.addr,
        "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: 3",
        b"abc",
    );
    assert_eq!(r.status, 200, "the responder itself answers what does not parse");
    let wrong_type = raw(
        s.addr,
        "POST /ocsp HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 3",
        b"abc",
    );
    assert_eq!(wrong_type.status, 415);
    let big = vec![0u8; jpki_server::MAX_OCSP_REQUEST_BYTES + 1];
    let too_big = raw(
        s.addr,
        &format!(
            "POST /ocsp HTTP/1.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}",
            big.len()
        ),
        &big,
    );
    assert_eq!(too_big.status, 413);
    let bad = raw(s.addr, "GET /ocsp/sign/not*base64! HTTP/1.1", b"");
    assert_eq!(bad.status, 400, "{}", bad.text());
    // The server goes on answering.
    assert_eq!(raw(s.addr, "GET /healthz HTTP/1.1", b"").status, 200);
}

#[test]
fn slow_loris_connections_are_closed_and_others_still_answered() {
    let s = TestServer::start_full(
        AppState::new().with_tsa(echo()),
        jpki_server::DEFAULT_GRACE,
        Duration::from_secs(1),
    );
    let stalled: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            c.write_all(b"POST /tsa HTTP/1.1\r\nHost: x\r\nContent-Type: application/timestamp-query\r\n")
                .unwrap();
            c
        })
        .collect();
    let start = Instant::now();
    assert_eq!(raw(s.addr, "GET /healthz HTTP/1.1", b"").status, 200);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "answered while 200 connections stall"
    );
    // Each stalled connection is closed (EOF, or an error reply and EOF) once the timeout passes.
    for mut c in stalled.into_iter().take(5) {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        let read = c.read_to_end(&mut rest);
        assert!(read.is_ok(), "the server closed the stalled connection: {read:?}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "closed within the header timeout"
    );
}

struct EchoApi;

impl jpki_server::JsonApi for EchoApi {
    fn call(&self, _caller: &Caller, _operation: &str, body: &[u8]) -> (u16, String) {
        (200, format!("{{\"bytes\":{}}}", body.len()))
    }
}

#[test]
fn a_json_body_trickled_in_is_cut_off_and_others_still_answered() {
    let s = TestServer::start_state(
        AppState::new()
            .with_api(Arc::new(EchoApi), Arc::new(OneKey))
            .with_body_timeout(Duration::from_secs(1)),
        jpki_server::DEFAULT_GRACE,
    );
    let head = "POST /v1/certificates/validity HTTP/1.1\r\nAuthorization: Bearer rp-key-1\r\n\
                Content-Type: application/json\r\nContent-Length: 100";
    // A whole body is answered.
    let ok = raw(s.addr, &head.replace("100", "2"), b"{}");
    assert_eq!(ok.status, 200, "{}", ok.text());
    // Ten bytes of a hundred, then nothing: 408 after the body timeout, and meanwhile others are
    // answered.
    let mut stalled = TcpStream::connect(s.addr).unwrap();
    stalled
        .write_all(format!("{head}\r\nHost: x\r\nConnection: close\r\n\r\n{{\"a\":\"1234").as_bytes())
        .unwrap();
    let start = Instant::now();
    assert_eq!(raw(s.addr, "GET /healthz HTTP/1.1", b"").status, 200);
    stalled.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut bytes = Vec::new();
    let _ = stalled.read_to_end(&mut bytes);
    let reply = parse_reply(&bytes);
    assert_eq!(reply.status, 408, "{}", reply.text());
    assert!(reply.text().contains("did not arrive in time"));
    assert!(start.elapsed() < Duration::from_secs(4));
}

/// A provider that echoes what reached it.
struct EchoOidc;

impl jpki_server::OidcEndpoints for EchoOidc {
    fn discovery(&self) -> String {
        r#"{"issuer":"http://127.0.0.1/oidc"}"#.into()
    }

    fn jwks(&self) -> String {
        r#"{"keys":[]}"#.into()
    }

    fn token(&self, form: &[(String, String)], authorization: Option<&str>) -> jpki_server::JsonAnswer {
        if form.iter().any(|(k, _)| k == "fail") {
            return (401, r#"{"error":"invalid_client"}"#.into());
        }
        let pairs: Vec<String> = form.iter().map(|(k, v)| format!("{k}={v}")).collect();
        (
            200,
            serde_json::json!({ "form": pairs, "authorization": authorization }).to_string(),
        )
    }

    fn userinfo(&self, access_token: Option<&str>) -> jpki_server::JsonAnswer {
        match access_token {
            Some("good") => (200, r#"{"sub":"s"}"#.into()),
            _ => (401, r#"{"error":"invalid_token"}"#.into()),
        }
    }
}

#[test]
fn oidc_endpoints_speak_oauth_over_http() {
    let s = TestServer::start_state(
        AppState::new().with_oidc(Arc::new(EchoOidc)),
        jpki_server::DEFAULT_GRACE,
    );
    let d = raw(s.addr, "GET /oidc/.well-known/openid-configuration HTTP/1.1", b"");
    assert_eq!(d.status, 200);
    assert_eq!(d.header("content-type"), Some("application/json"));
    let jwks = raw(s.addr, "GET /oidc/protocol/openid-connect/certs HTTP/1.1", b"");
    assert_eq!(jwks.text(), r#"{"keys":[]}"#);
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
    // The token endpoint takes a form, repeated parameters and all, and never caches.
    let body = b"grant_type=authorization_code&code=a%2Bb&code=again";
    let t = raw(
        s.addr,
        &format!(
            "POST /oidc/protocol/openid-connect/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: Basic eDp5\r\nContent-Length: {}",
            body.len()
        ),
        body,
    );
    assert_eq!(t.status, 200, "{}", t.text());
    let v: serde_json::Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        v["form"],
        serde_json::json!(["grant_type=authorization_code", "code=a+b", "code=again"])
    );
    assert_eq!(v["authorization"], "Basic eDp5");
    assert_eq!(t.header("cache-control"), Some("no-store"));
    assert_eq!(t.header("pragma"), Some("no-cache"));
    let failed = raw(
        s.addr,
        "POST /oidc/protocol/openid-connect/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: Basic eDp5\r\nContent-Length: 4",
        b"fail",
    );
    assert_eq!(failed.status, 401);
    assert_eq!(
        failed.header("www-authenticate"),
        Some("Basic realm=\"openjpki\"")
    );
    let json_body = raw(
        s.addr,
        "POST /oidc/protocol/openid-connect/token HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2",
        b"{}",
    );
    assert_eq!(json_body.status, 400);
    assert!(json_body.text().contains("invalid_request"));
    // Userinfo: the bearer token in the header or a form body, never both; 401 with a challenge.
    let ok = raw(
        s.addr,
        "GET /oidc/protocol/openid-connect/userinfo HTTP/1.1\r\nAuthorization: Bearer good",
        b"",
    );
    assert_eq!((ok.status, ok.text().as_str()), (200, r#"{"sub":"s"}"#));
    let by_form = raw(
        s.addr,
        "POST /oidc/protocol/openid-connect/userinfo HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 17",
        b"access_token=good",
    );
    assert_eq!(by_form.status, 200);
    let bad = raw(
        s.addr,
        "GET /oidc/protocol/openid-connect/userinfo HTTP/1.1\r\nAuthorization: Bearer nope",
        b"",
    );
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    let none = raw(s.addr, "GET /oidc/protocol/openid-connect/userinfo HTTP/1.1", b"");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let twice = raw(
        s.addr,
        "POST /oidc/protocol/openid-connect/userinfo HTTP/1.1\r\nAuthorization: Bearer good\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 17",
        b"access_token=good",
    );
    assert_eq!(twice.status, 400);
}

/// A card behind the agent: PIN 1234 and password ABCDEF12, anything else refused (retry).
struct FakeCard;

impl jpki_server::CardAgent for FakeCard {
    fn describe(&self) -> String {
        "fake card".into()
    }

    fn sign_login(
        &self,
        origin: &str,
        _challenge: &[u8],
        pin: &str,
        _password: Option<&str>,
    ) -> Result<jpki_server::CardAnswer, jpki_server::CardRefusal> {
        if pin != "1234" {
            return Err(jpki_server::CardRefusal {
                message: "wrong PIN: 2 tries left".into(),
                retry: true,
            });
        }
        Ok(jpki_server::CardAnswer {
            auth_cert: origin.as_bytes().to_vec(),
            auth_sig: vec![1, 2, 3],
            sign: None,
        })
    }

    fn sign_digest(
        &self,
        _digest: &[u8; 32],
        _password: &str,
    ) -> Result<(Vec<u8>, Vec<u8>), jpki_server::CardRefusal> {
        Err(jpki_server::CardRefusal {
            message: "no".into(),
            retry: false,
        })
    }
}

/// Sends a form POST with the given Host header, from a page of `origin` (the Origin header).
fn post_form(addr: SocketAddr, path: &str, host: &str, origin: Option<&str>, body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let origin = origin.map_or_else(String::new, |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{origin}Connection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    parse_reply(&bytes)
}

/// The provider the agent tests' challenges come from.
const PROVIDER: Option<&str> = Some("http://127.0.0.1:7700");

/// The value of hidden field `name` in a page.
fn hidden_field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

#[test]
fn the_card_agent_answers_loopback_only_and_needs_its_own_page_token() {
    let server = TestServer::start_state(
        AppState::new().with_card_agent(Arc::new(FakeCard)),
        jpki_server::DEFAULT_GRACE,
    );
    let local = server.addr.to_string();
    let login = "tx=T1&challenge=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&return_to=http%3A%2F%2F127.0.0.1%3A7700%2Foidc%2Flogin%2Fcard&client=Bank&scopes=openid&personal=0";
    // DNS rebinding: another name for this machine is refused.
    assert_eq!(
        post_form(server.addr, "/login", "evil.example:48620", PROVIDER, login).status,
        403
    );
    // A challenge the provider's page did not send (no Origin, another site's) is refused: the
    // agent signs only for the site that asks.
    assert_eq!(post_form(server.addr, "/login", &local, None, login).status, 403);
    assert_eq!(
        post_form(server.addr, "/login", &local, Some("http://evil.example"), login).status,
        403
    );
    // A sign transaction for a provider the agent was not told of is refused.
    let sign = format!("{login}&mode=sign&description=x");
    assert_eq!(
        post_form(server.addr, "/login", &local, PROVIDER, &sign).status,
        403
    );
    let page = post_form(server.addr, "/login", &local, PROVIDER, login);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.text().contains("http://127.0.0.1:7700"),
        "the agent shows the origin it signs for"
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let token = hidden_field(&page.text(), "token");
    // The PIN form without the page's token, or with another one, is refused: another site cannot
    // make the agent try PINs.
    assert_eq!(
        post_form(server.addr, "/login/sign", &local, None, "pin=1234").status,
        400
    );
    assert_eq!(
        post_form(server.addr, "/login/sign", &local, None, "token=guess&pin=1234").status,
        400
    );
    // A wrong PIN: the page again, with the card's message and a new token; the old one is spent.
    let wrong = post_form(
        server.addr,
        "/login/sign",
        &local,
        None,
        &format!("token={token}&pin=9999"),
    );
    assert_eq!(wrong.status, 422);
    assert!(wrong.text().contains("wrong PIN: 2 tries left"));
    assert_eq!(
        post_form(
            server.addr,
            "/login/sign",
            &local,
            None,
            &format!("token={token}&pin=1234")
        )
        .status,
        400
    );
    let again = hidden_field(&wrong.text(), "token");
    let answer = post_form(
        server.addr,
        "/login/sign",
        &local,
        None,
        &format!("token={again}&pin=1234"),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    assert!(
        text.contains("action=\"http://127.0.0.1:7700/oidc/login/card\""),
        "{text}"
    );
    assert_eq!(hidden_field(&text, "tx"), "T1");
    // The card signed for the origin of return_to (the fake card echoes it as its "certificate").
    assert_eq!(hidden_field(&text, "auth_cert"), "aHR0cDovLzEyNy4wLjAuMTo3NzAw");
    let csp = answer.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action http://127.0.0.1:7700") && csp.contains("script-src 'sha256-"),
        "{csp}"
    );
}
