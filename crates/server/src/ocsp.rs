//! The OCSP responder's route set: RFC 6960 Appendix A (OCSP over HTTP), POST and GET, at the
//! per-CA URLs the certificates name (`/ocsp/sign`, `/ocsp/auth`) and at `/ocsp`.
//!
//! Revocation information is protected by law (seed 000): unless the deployment opens it
//! ([`RevocationAccess::Public`], `jpki serve --public-revocation`), a request must carry
//! `Authorization: Bearer KEY` with a key the [`RevocationAccess::Keys`] check accepts; otherwise
//! 401 with `WWW-Authenticate: Bearer`. An OCSP request that does not parse is answered by the
//! responder itself (an OCSPResponse with status malformedRequest), as RFC 6960 asks.
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;

use crate::tsa::{is_media_type, text};

/// Who is asking: a relying party identified by its API key, with what it may ask (its
/// capabilities, as names the responder understands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The relying party's identifier.
    pub id: String,
    /// What it may ask.
    pub scopes: Vec<String>,
}

impl Caller {
    /// Whether `scope` is among the caller's.
    pub fn may(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Answers one DER `OCSPRequest` with one DER `OCSPResponse` (errors included: malformedRequest,
/// unauthorized, … are responses too). May block; called on Tokio's blocking pool when it signs.
pub trait OcspResponder: Send + Sync + 'static {
    /// The DER `OCSPResponse` for the DER `OCSPRequest` `request_der` (anything a client sent),
    /// asked by `caller` (`None`: revocation information is public and nobody identified).
    fn answer(&self, caller: Option<&Caller>, request_der: &[u8]) -> Vec<u8>;
}

/// Identifies relying parties by their API keys.
pub trait ApiKeys: Send + Sync + 'static {
    /// The relying party whose usable key `key` is, if any. Called on every request (a revoked
    /// key is refused at once); may block briefly.
    fn identify(&self, key: &str) -> Option<Caller>;

    /// The relying party whose registered client certificate has SHA-256 `fingerprint` (mutual
    /// TLS), if any; none by default.
    fn identify_client(&self, fingerprint: &[u8; 32]) -> Option<Caller> {
        let _ = fingerprint;
        None
    }

    /// Notes an answer given to an identified relying party that no other service meters: a CRL
    /// download (`what` is the CRL's path, e.g. `sign-3.crl`). Nothing by default.
    fn served(&self, caller: &Caller, what: &str) {
        let _ = (caller, what);
    }

    /// [`ApiKeys::identify`] that also says when the keys cannot be checked now (their registry is
    /// unreachable): the caller is then answered 503 with Retry-After, not 401. By default
    /// `identify`'s answer.
    fn lookup(&self, key: &str) -> Result<Option<Caller>, KeysUnavailable> {
        Ok(self.identify(key))
    }

    /// [`ApiKeys::identify_client`] with the same distinction as [`ApiKeys::lookup`].
    fn lookup_client(&self, fingerprint: &[u8; 32]) -> Result<Option<Caller>, KeysUnavailable> {
        Ok(self.identify_client(fingerprint))
    }
}

/// The relying parties' keys cannot be checked at the moment (see [`ApiKeys::lookup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysUnavailable;

/// What a caller whose key cannot be checked now is told (503, retry in a second).
pub(crate) fn keys_unavailable(json: bool) -> Response {
    const WHY_LINE: &str =
        "relying-party keys cannot be checked at the moment (the registry is unreachable): retry shortly\n";
    let mut r = if json {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            format!("{{\"error\":{}}}", serde_json::Value::from(WHY_LINE.trim_end())),
        )
            .into_response()
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, WHY_LINE)
    };
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Who may ask for revocation information.
#[derive(Clone)]
pub enum RevocationAccess {
    /// Anyone (`--public-revocation`).
    Public,
    /// Only requests with a bearer key that the check accepts.
    Keys(Arc<dyn ApiKeys>),
}

impl std::fmt::Debug for RevocationAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Public => "Public",
            Self::Keys(_) => "Keys",
        })
    }
}

/// Where the responder listens: POST here or at `/ocsp/{ca}` (the per-CA URL the certificates name,
/// e.g. `/ocsp/sign`), GET at `/ocsp/{ca}/{base64 request}`.
pub const OCSP_PATH: &str = "/ocsp";
/// The request media type of RFC 6960 Appendix A.
pub const OCSP_REQUEST: &str = "application/ocsp-request";
/// The response media type of RFC 6960 Appendix A.
pub const OCSP_RESPONSE: &str = "application/ocsp-response";
/// The largest request accepted (a real one is about 100 bytes per certificate).
pub const MAX_OCSP_REQUEST_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct Ocsp {
    responder: Arc<dyn OcspResponder>,
    access: RevocationAccess,
}

/// `POST /ocsp`, `POST /ocsp/{ca}` and `GET /ocsp/{ca}/{base64 request}`. The CA segment only
/// mirrors the URL in the certificates: the CertIDs in the request say which CA is asked about.
pub(crate) fn routes(responder: Arc<dyn OcspResponder>, access: RevocationAccess) -> Router {
    let post_route = || post(post_request).layer(DefaultBodyLimit::max(MAX_OCSP_REQUEST_BYTES));
    Router::new()
        .route(OCSP_PATH, post_route())
        .route(&format!("{OCSP_PATH}/{{ca}}"), post_route())
        .route(&format!("{OCSP_PATH}/{{ca}}/{{*request}}"), get(get_request))
        .with_state(Ocsp { responder, access })
}

/// The SHA-256 of the client certificate a relying party presented over mutual TLS (verified
/// against the server's client CAs during the handshake); the request extension the server sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCertificate(pub [u8; 32]);

impl ClientCertificate {
    /// The fingerprint of the DER certificate `der`.
    pub fn of(der: &[u8]) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref());
        Self(out)
    }
}

/// The relying party a request comes from: its bearer key, else its client certificate.
pub(crate) fn identify(
    keys: &dyn ApiKeys,
    headers: &HeaderMap,
    client: Option<&ClientCertificate>,
) -> Result<Option<Caller>, KeysUnavailable> {
    match (bearer(headers), client) {
        (Some(key), _) => keys.lookup(key),
        (None, Some(c)) => keys.lookup_client(&c.0),
        (None, None) => Ok(None),
    }
}

/// The bearer key of `Authorization: Bearer KEY`, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
        .filter(|k| !k.is_empty())
}

/// Who may be answered: `Ok(None)` anyone (public access), `Ok(Some(caller))` an identified
/// relying party; otherwise the refusal (401, or 503 when keys cannot be checked now).
fn authorize(
    access: &RevocationAccess,
    headers: &HeaderMap,
    client: Option<&ClientCertificate>,
) -> Result<Option<Caller>, Refused> {
    match access {
        RevocationAccess::Public => Ok(None),
        RevocationAccess::Keys(keys) => match identify(keys.as_ref(), headers, client) {
            Ok(Some(caller)) => Ok(Some(caller)),
            Ok(None) => Err(Refused::Unknown),
            Err(KeysUnavailable) => Err(Refused::Unavailable),
        },
    }
}

/// Why [`authorize`] refused a caller.
#[derive(Debug, Clone, Copy)]
enum Refused {
    /// No key, or one no relying party holds (401).
    Unknown,
    /// The key cannot be checked now (503).
    Unavailable,
}

impl Refused {
    fn response(self) -> Response {
        match self {
            Self::Unknown => unauthorized(),
            Self::Unavailable => keys_unavailable(false),
        }
    }
}

pub(crate) fn unauthorized() -> Response {
    let mut r = text(
        StatusCode::UNAUTHORIZED,
        "revocation information is for registered relying parties: send Authorization: Bearer KEY\n",
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

async fn answer(ocsp: Ocsp, caller: Option<Caller>, request: Vec<u8>) -> Response {
    let responder = Arc::clone(&ocsp.responder);
    match tokio::task::spawn_blocking(move || responder.answer(caller.as_ref(), &request)).await {
        Ok(body) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(OCSP_RESPONSE))],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "OCSP responder failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "the OCSP responder failed\n")
        }
    }
}

async fn post_request(State(ocsp): State<Ocsp>, req: Request) -> Response {
    let caller = match authorize(
        &ocsp.access,
        req.headers(),
        req.extensions().get::<ClientCertificate>(),
    ) {
        Ok(caller) => caller,
        Err(refused) => return refused.response(),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_media_type(content_type, OCSP_REQUEST) {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/ocsp-request\n",
        );
    }
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_OCSP_REQUEST_BYTES as u64) {
        return too_large();
    }
    let body = match Bytes::from_request(req, &()).await {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(rejection) => return text(rejection.status(), "cannot read the request body\n"),
    };
    answer(ocsp, caller, body.to_vec()).await
}

async fn get_request(
    State(ocsp): State<Ocsp>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientCertificate>>,
    Path((_ca, encoded)): Path<(String, String)>,
) -> Response {
    let caller = match authorize(&ocsp.access, &headers, client.as_ref().map(|c| &c.0)) {
        Ok(caller) => caller,
        Err(refused) => return refused.response(),
    };
    if encoded.len() > MAX_OCSP_REQUEST_BYTES {
        return too_large();
    }
    // The path is already percent-decoded; RFC 6960 asks for standard base64 (some clients leave
    // the padding off).
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    match engine.decode(encoded.trim_start_matches('/')) {
        Ok(request) => answer(ocsp, caller, request).await,
        Err(_) => text(
            StatusCode::BAD_REQUEST,
            "the GET path is not a base64 OCSP request\n",
        ),
    }
}

fn too_large() -> Response {
    text(StatusCode::PAYLOAD_TOO_LARGE, "OCSP request larger than 64 KiB\n")
}
