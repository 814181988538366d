//! The time-stamp authority's route set: RFC 3161 §3.4, time-stamp protocol over HTTP.
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// Answers one DER `TimeStampReq` with one DER `TimeStampResp` (RFC 3161); rejections are also
/// `TimeStampResp`s (status `rejection` with a failure reason), never errors.
///
/// `respond` signs (RSA, about 0.3 ms): the server calls it on Tokio's blocking thread pool, so an
/// implementation may block and may take its time.
pub trait TimeStamper: Send + Sync + 'static {
    /// The DER `TimeStampResp` for the DER `TimeStampReq` `query_der` (which may be anything a
    /// client sent: parsing it is the implementation's job).
    fn respond(&self, query_der: &[u8]) -> Vec<u8>;
}

/// Where the time-stamp authority listens.
pub const TSA_PATH: &str = "/tsa";
/// The request media type of RFC 3161 §3.4.
pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";
/// The reply media type of RFC 3161 §3.4.
pub const TIMESTAMP_REPLY: &str = "application/timestamp-reply";
/// The largest `TimeStampReq` accepted (a real one is well under 200 bytes: a hash, a nonce, a
/// policy); larger requests get 413.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// `POST /tsa`, answered by `tsa`. Any other method on the path is 405 with `Allow: POST`.
pub(crate) fn routes(tsa: Arc<dyn TimeStamper>) -> Router {
    Router::new()
        .route(
            TSA_PATH,
            post(post_query).layer(DefaultBodyLimit::max(MAX_QUERY_BYTES)),
        )
        .with_state(tsa)
}

async fn post_query(State(tsa): State<Arc<dyn TimeStamper>>, req: Request) -> Response {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_media_type(content_type, TIMESTAMP_QUERY) {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/timestamp-query\n",
        );
    }
    // Refuse an announced oversize body before reading any of it; a chunked one is cut off by the
    // body limit while it is read.
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_QUERY_BYTES as u64) {
        return too_large();
    }
    let query = match Bytes::from_request(req, &()).await {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(rejection) => return text(rejection.status(), "cannot read the request body\n"),
    };
    if query.is_empty() {
        return text(StatusCode::BAD_REQUEST, "empty time-stamp query\n");
    }
    // spawn_blocking, not block_in_place: it works on any runtime flavour (block_in_place panics on
    // a current-thread runtime), a panicking TimeStamper becomes a 500 for this request instead of
    // unwinding through a runtime worker, and signing never holds up the worker that is driving
    // other connections. The hand-off costs microseconds against ~0.3 ms of RSA.
    match tokio::task::spawn_blocking(move || tsa.respond(&query)).await {
        Ok(reply) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(TIMESTAMP_REPLY))],
            reply,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "time stamper failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the time-stamp authority failed\n",
            )
        }
    }
}

fn too_large() -> Response {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        "time-stamp query larger than 64 KiB\n",
    )
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Whether a Content-Type value names `expected` (case-insensitive, parameters ignored).
pub(crate) fn is_media_type(value: Option<&str>, expected: &str) -> bool {
    value.is_some_and(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case(expected)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_match_loosely() {
        assert!(is_media_type(
            Some("application/timestamp-query"),
            TIMESTAMP_QUERY
        ));
        assert!(is_media_type(
            Some("Application/TimeStamp-Query; charset=binary"),
            TIMESTAMP_QUERY
        ));
        assert!(is_media_type(
            Some(" application/timestamp-query "),
            TIMESTAMP_QUERY
        ));
        assert!(!is_media_type(
            Some("application/timestamp-reply"),
            TIMESTAMP_QUERY
        ));
        assert!(!is_media_type(
            Some("application/timestamp-query-x"),
            TIMESTAMP_QUERY
        ));
        assert!(!is_media_type(Some(""), TIMESTAMP_QUERY));
        assert!(!is_media_type(None, TIMESTAMP_QUERY));
    }
}
