//! The JSON API route set (`POST /v1/{operation}`, for registered relying parties only) and the
//! OpenAPI 3 document of everything the server offers (`GET /openapi.json`).
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::ocsp::{ApiKeys, Caller};
use crate::tsa::is_media_type;

/// The OpenAPI 3 document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");
/// The largest JSON request body accepted, unless [`JsonApi::body_limit`] allows an operation more.
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// How long a request body may take to arrive (a slow-loris defence, beside the header timeout).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The most any operation may allow ([`JsonApi::body_limit`]): 8 MiB, for signatures and PDFs.
pub const MAX_LARGE_JSON_BYTES: usize = 8 * 1024 * 1024;

/// The operations whose requests carry a document signature or a signed PDF (base64), and so may
/// be up to [`MAX_LARGE_JSON_BYTES`].
pub const LARGE_OPERATIONS: [&str; 2] = ["signatures/verify", "signatures/augment"];

/// Answers the JSON API: HTTP status and a JSON object (`{"error": …}` for 4xx).
pub trait JsonApi: Send + Sync + 'static {
    /// Handles `POST /v1/{operation}` with the JSON `body` from `caller`. May block.
    fn call(&self, caller: &Caller, operation: &str, body: &[u8]) -> (u16, String);

    /// Whether `operation` may block (a database read, a signature over a large document): then it
    /// runs on the blocking pool; otherwise (a few microseconds of memory lookups, like the validity
    /// check) it runs on the request's own task, sparing the hand-off. Blocking unless the API
    /// says otherwise.
    fn blocks(&self, operation: &str) -> bool {
        let _ = operation;
        true
    }

    /// The largest request body `operation` takes: [`MAX_LARGE_JSON_BYTES`] for the
    /// [`LARGE_OPERATIONS`], else [`MAX_JSON_BYTES`], unless the API says otherwise (never more
    /// than [`MAX_LARGE_JSON_BYTES`]). A larger body is answered 413.
    fn body_limit(&self, operation: &str) -> usize {
        if LARGE_OPERATIONS.contains(&operation) {
            MAX_LARGE_JSON_BYTES
        } else {
            MAX_JSON_BYTES
        }
    }
}

/// "64 KiB", "8 MiB".
fn size_text(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

#[derive(Clone)]
struct Api {
    api: Arc<dyn JsonApi>,
    keys: Arc<dyn ApiKeys>,
    body_timeout: std::time::Duration,
}

pub(crate) fn routes(
    api: Arc<dyn JsonApi>,
    keys: Arc<dyn ApiKeys>,
    body_timeout: std::time::Duration,
) -> Router {
    Router::new()
        .route(
            "/v1/{*operation}",
            post(call).layer(DefaultBodyLimit::max(MAX_LARGE_JSON_BYTES)),
        )
        .with_state(Api {
            api,
            keys,
            body_timeout,
        })
}

pub(crate) fn openapi_routes() -> Router {
    Router::new().route("/openapi.json", get(openapi))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        OPENAPI,
    )
        .into_response()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = format!("{{\"error\":{}}}", serde_json::Value::from(message));
    let mut r = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

async fn call(State(api): State<Api>, Path(operation): Path<String>, req: Request) -> Response {
    let caller = match crate::ocsp::identify(
        api.keys.as_ref(),
        req.headers(),
        req.extensions().get::<crate::ocsp::ClientCertificate>(),
    ) {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "the API is for registered relying parties: send Authorization: Bearer KEY",
            );
        }
        Err(crate::ocsp::KeysUnavailable) => return crate::ocsp::keys_unavailable(true),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_media_type(content_type, "application/json") {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        );
    }
    let limit = api.api.body_limit(&operation).min(MAX_LARGE_JSON_BYTES);
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {}", size_text(limit)),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    // A body trickled in slowly is cut off like slow headers are.
    let body = match tokio::time::timeout(api.body_timeout, Bytes::from_request(req, &())).await {
        Err(_) => {
            return json_error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            );
        }
        Ok(b) => b,
    };
    let body = match body {
        Ok(b) if b.len() > limit => return too_large(),
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(r) => return json_error(r.status(), "cannot read the request body"),
    };
    let handler = Arc::clone(&api.api);
    let answered = if handler.blocks(&operation) {
        tokio::task::spawn_blocking(move || handler.call(&caller, &operation, &body)).await
    } else {
        Ok(handler.call(&caller, &operation, &body))
    };
    match answered {
        Ok((status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "API handler failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "the API failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_is_json_and_names_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap_or_default();
        assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
        for path in [
            "/healthz",
            "/metrics",
            "/openapi.json",
            "/ocsp",
            "/ocsp/{ca}",
            "/ocsp/{ca}/{request}",
            "/crl/{path}",
            "/ca/{path}",
            "/tsa",
            "/v1/certificates/validity",
            "/v1/certificates/age",
            "/v1/certificates/pairwise-id",
            "/v1/certificates/liveness",
            "/v1/certificates/linkage",
            "/v1/consents",
            "/v1/consents/revoke",
            "/v1/signatures/verify",
            "/v1/signatures/augment",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is documented");
        }
    }
}
