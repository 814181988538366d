//! The OpenID Connect provider's machine-facing endpoints under [`OIDC_PREFIX`]: discovery, the
//! JWKS, the token endpoint and userinfo. What they answer comes from an [`OidcEndpoints`] the
//! caller hands in (`jpki serve` backs it with `jpki-oidc`); this module does HTTP only: methods,
//! media types, body limits, form decoding (a parameter may appear several times: the provider
//! refuses that), and the headers RFC 6749 §5.1 and RFC 6750 §3 ask for.
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::tsa::is_media_type;

/// Where the provider's endpoints live: the issuer is `{public URL}{OIDC_PREFIX}`.
pub const OIDC_PREFIX: &str = "/oidc";

/// The largest token or userinfo request body.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// An answer: HTTP status and JSON body.
pub type JsonAnswer = (u16, String);

/// The provider behind the endpoints. Its methods may block briefly (a registry read).
pub trait OidcEndpoints: Send + Sync + 'static {
    /// The discovery document (JSON).
    fn discovery(&self) -> String;
    /// The JWKS (JSON).
    fn jwks(&self) -> String;
    /// The token endpoint: the form parameters in order, and the Authorization header.
    fn token(&self, form: &[(String, String)], authorization: Option<&str>) -> JsonAnswer;
    /// Userinfo for the bearer access token, if one was sent.
    fn userinfo(&self, access_token: Option<&str>) -> JsonAnswer;
}

pub(crate) fn routes(endpoints: Arc<dyn OidcEndpoints>) -> Router {
    Router::new()
        .route(
            &format!("{OIDC_PREFIX}/.well-known/openid-configuration"),
            get(|State(e): State<Arc<dyn OidcEndpoints>>| async move { json(200, e.discovery()) }),
        )
        .route(
            &format!("{OIDC_PREFIX}/protocol/openid-connect/certs"),
            get(|State(e): State<Arc<dyn OidcEndpoints>>| async move {
                let mut r = json(200, e.jwks());
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=300"),
                );
                r
            }),
        )
        .route(
            &format!("{OIDC_PREFIX}/protocol/openid-connect/token"),
            axum::routing::post(token).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            &format!("{OIDC_PREFIX}/protocol/openid-connect/userinfo"),
            get(userinfo)
                .post(userinfo)
                .layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .with_state(endpoints)
}

fn json(status: u16, body: String) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response();
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status.as_u16(),
        serde_json::json!({ "error": error, "error_description": description }).to_string(),
    )
}

async fn body_of(req: Request) -> Result<(HeaderMap, Bytes), Response> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => Ok((parts.headers, b)),
        Err(_) => Err(oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "request body larger than 16 KiB",
        )),
    }
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

async fn token(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_media_type(content_type, "application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected Content-Type: application/x-www-form-urlencoded",
        );
    }
    let (headers, body) = match body_of(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let basic = authorization
        .as_deref()
        .is_some_and(|a| a.len() > 6 && a[..6].eq_ignore_ascii_case("basic "));
    let params = form(&body);
    let (status, body) =
        match tokio::task::spawn_blocking(move || e.token(&params, authorization.as_deref())).await {
            Ok(answer) => answer,
            Err(_) => {
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the token endpoint failed",
                );
            }
        };
    let mut r = json(status, body);
    // RFC 6749 §5.2: a client that tried Basic and failed is challenged for it.
    if status == 401 && basic {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"openjpki\""),
        );
    }
    r
}

async fn userinfo(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    let from_header = crate::ocsp::bearer(req.headers()).map(str::to_owned);
    let is_form = is_media_type(
        req.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        "application/x-www-form-urlencoded",
    );
    let (_, body) = match body_of(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // RFC 6750 §2.2: the token may come in a form body instead (never in both places).
    let from_body = if is_form {
        form(&body)
            .into_iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v)
    } else {
        None
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the access token was sent twice",
            );
        }
        (a, b) => a.or(b),
    };
    let sent = token.is_some();
    let (status, body) = match tokio::task::spawn_blocking(move || e.userinfo(token.as_deref())).await {
        Ok(answer) => answer,
        Err(_) => {
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "userinfo failed",
            );
        }
    };
    let mut r = json(status, body);
    if status == 401 {
        // RFC 6750 §3: no token at all gets the bare challenge.
        let challenge = if sent {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        };
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    r
}
