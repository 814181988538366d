//! The signer's side: sending a `TimeStampReq` to a time-stamp authority over HTTP(S).
use std::sync::Arc;
use std::time::Duration;

use ureq::http::{StatusCode, header};
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use crate::error::{ServerError, describe_io};
use crate::tsa::{TIMESTAMP_QUERY, TIMESTAMP_REPLY, is_media_type};

/// The largest `TimeStampResp` accepted (a real one is a few KiB: a signed token and perhaps the
/// TSA's certificate chain).
pub const MAX_REPLY_BYTES: u64 = 1024 * 1024;

/// Most of a plain-text error body quoted in an error message.
const DETAIL_CHARS: usize = 120;

/// POSTs the DER `TimeStampReq` `query_der` to the time-stamp authority at `url` (`http://` or
/// `https://`, RFC 3161 §3.4) and returns the DER `TimeStampResp` it answers, unparsed. Blocking;
/// `timeout` bounds the whole exchange.
///
/// HTTPS uses rustls with the aws-lc-rs provider and the Mozilla root set (webpki-roots).
/// Redirects are not followed (a POST cannot be safely replayed): a 3xx is reported with where it
/// points. Proxies named by the usual environment variables (`HTTPS_PROXY`, `ALL_PROXY` …) are
/// used.
///
/// # Errors
/// A one-line [`ServerError`] naming the URL and what was wrong: unreachable (connection refused,
/// host not found, timeout, TLS), an HTTP status other than 200, a Content-Type other than
/// `application/timestamp-reply`, or an empty or over-1-MiB body.
pub fn post_timestamp_query(url: &str, query_der: &[u8], timeout: Duration) -> Result<Vec<u8>, ServerError> {
    let shown = redact(url);
    let agent = http_agent(timeout);
    let mut response = agent
        .post(url)
        .header(header::CONTENT_TYPE, TIMESTAMP_QUERY)
        .header(header::ACCEPT, TIMESTAMP_REPLY)
        .send(query_der)
        .map_err(|e| ServerError::TsaUnreachable {
            url: shown.clone(),
            problem: transport_problem(&e, timeout),
        })?;

    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if status != StatusCode::OK {
        let detail = status_detail(&mut response, content_type.as_deref());
        return Err(ServerError::TsaStatus {
            url: shown,
            status: status.as_u16(),
            detail,
        });
    }
    if !is_media_type(content_type.as_deref(), TIMESTAMP_REPLY) {
        return Err(ServerError::TsaContentType {
            url: shown,
            content_type: content_type.map_or_else(|| "no Content-Type".to_owned(), |c| printable(&c)),
        });
    }
    let bad_reply = |problem: String| ServerError::TsaBadReply {
        url: shown.clone(),
        problem,
    };
    let body = response
        .body_mut()
        .with_config()
        // ureq fails a read once the limit is used up, even at the end of the body: one more byte
        // lets an answer of exactly MAX_REPLY_BYTES through.
        .limit(MAX_REPLY_BYTES + 1)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => bad_reply("answer larger than 1 MiB".to_owned()),
            ureq::Error::Timeout(_) => bad_reply(format!("answer not complete within {}", seconds(timeout))),
            other => bad_reply(format!(
                "reading the answer: {}",
                transport_problem(&other, timeout)
            )),
        })?;
    if body.is_empty() {
        return Err(bad_reply("empty answer".to_owned()));
    }
    Ok(body)
}

/// Why a request got no HTTP answer, in a few words.
fn transport_problem(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Io(io) => describe_io(io),
        ureq::Error::Timeout(_) => format!("no answer within {}", seconds(timeout)),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::BadUri(why) => format!("not a usable URL ({})", printable(why)),
        ureq::Error::Http(why) => format!("not a usable URL ({why})"),
        ureq::Error::ConnectionFailed => "cannot connect".to_owned(),
        ureq::Error::Rustls(why) => format!("TLS: {why}"),
        ureq::Error::Tls(why) => format!("TLS: {why}"),
        ureq::Error::Protocol(why) => format!("not an HTTP/1.1 answer ({why})"),
        ureq::Error::InvalidProxyUrl => "the proxy set in the environment is not a usable URL".to_owned(),
        ureq::Error::ConnectProxyFailed(why) => format!("through the proxy: {}", printable(why)),
        other => other.to_string(),
    }
}

/// The detail shown for a non-200 answer: where a redirect points, else the first line of a
/// plain-text body, else the status's name.
fn status_detail(response: &mut ureq::http::Response<ureq::Body>, content_type: Option<&str>) -> String {
    let status = response.status();
    if status.is_redirection()
        && let Some(location) = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    {
        return format!("redirected to {}", printable(location));
    }
    let plain = content_type.is_some_and(|c| is_media_type(Some(c), "text/plain"));
    if plain {
        let first_line = response
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_vec()
            .ok()
            .map(|body| {
                String::from_utf8_lossy(&body)
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(printable)
            })
            .unwrap_or_default();
        if let Some(line) = first_line.filter(|l| !l.is_empty()) {
            return line;
        }
    }
    status.canonical_reason().unwrap_or("unknown status").to_owned()
}

/// `s` without control characters, cut to [`DETAIL_CHARS`] characters.
fn printable(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(DETAIL_CHARS).collect();
    if s.chars().filter(|c| !c.is_control()).nth(DETAIL_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// "10 s", "1.5 s", "250 ms".
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// `url` with any `user:password@` replaced by `…@`, for messages.
fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => printable(&format!("{scheme}…{}", &rest[at..])),
        None => printable(url),
    }
}

/// The HTTP client every outgoing request uses: rustls with the aws-lc-rs provider and the Mozilla
/// roots, no redirects, statuses as values, `timeout` for the whole exchange.
fn http_agent(timeout: Duration) -> ureq::Agent {
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::WebPki)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("openjpki/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// GETs a document of at most `limit` bytes (a relying party's JWKS): its text when the answer is
/// 200; otherwise one line saying what went wrong.
///
/// # Errors
/// Unreachable, a status other than 200, a body over `limit` or not UTF-8.
pub fn get_text(url: &str, limit: u64, timeout: Duration) -> Result<String, String> {
    let shown = redact(url);
    let mut response = http_agent(timeout)
        .get(url)
        .call()
        .map_err(|e| format!("{shown}: {}", transport_problem(&e, timeout)))?;
    if response.status() != StatusCode::OK {
        return Err(format!("{shown}: HTTP {}", response.status().as_u16()));
    }
    response
        .body_mut()
        .with_config()
        .limit(limit + 1)
        .read_to_string()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => format!("{shown}: larger than {limit} bytes"),
            other => format!("{shown}: {}", transport_problem(&other, timeout)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_hidden() {
        assert_eq!(redact("https://u:p@tsa.example/tsa"), "https://…@tsa.example/tsa");
        assert_eq!(redact("http://tsa.example/a@b"), "http://tsa.example/a@b");
        assert_eq!(redact("http://127.0.0.1:3180/tsa"), "http://127.0.0.1:3180/tsa");
    }

    #[test]
    fn details_are_printable_and_short() {
        assert_eq!(printable("bad\r\nthing\u{1b}[31m"), "badthing[31m");
        let long = "x".repeat(500);
        assert_eq!(printable(&long).chars().count(), DETAIL_CHARS + 1);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_millis(250)), "250 ms");
    }
}
