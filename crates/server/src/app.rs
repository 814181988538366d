//! The services a server offers and the router that puts them together.
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::{self, JsonApi};
use crate::metrics::Metrics;
use crate::ocsp::{self, ApiKeys, OcspResponder, RevocationAccess};
use crate::published;
use crate::tsa::{self, TimeStamper};

/// The services one server offers. Each is a route set merged into [`AppState::router`]; a server
/// with none still answers `/healthz`.
///
/// ```
/// # use std::sync::Arc;
/// # struct Stamper;
/// # impl jpki_server::TimeStamper for Stamper { fn respond(&self, _: &[u8]) -> Vec<u8> { vec![] } }
/// let app = jpki_server::AppState::new().with_tsa(Arc::new(Stamper)).router();
/// ```
#[derive(Clone, Default)]
pub struct AppState {
    tsa: Option<Arc<dyn TimeStamper>>,
    ocsp: Option<(Arc<dyn OcspResponder>, RevocationAccess)>,
    published: Option<(PathBuf, RevocationAccess)>,
    api: Option<(Arc<dyn JsonApi>, Arc<dyn ApiKeys>)>,
    body_timeout: Option<std::time::Duration>,
    health: Option<Arc<dyn Health>>,
    oidc: Option<Arc<dyn crate::OidcEndpoints>>,
    agent: Option<Arc<dyn crate::CardAgent>>,
    portal: Option<Arc<dyn crate::Portal>>,
}

/// What `/healthz` and `/metrics` report beyond the server's own counters: whether the services
/// can answer (a verifier whose revocation snapshot is too old cannot), and gauges.
pub trait Health: Send + Sync {
    /// `Ok` when the services can answer; otherwise why not (one line).
    fn check(&self) -> Result<(), String>;
    /// Gauges for `/metrics`: (name, help, value).
    fn gauges(&self) -> Vec<(&'static str, &'static str, f64)>;
}

impl AppState {
    /// No services yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve the OpenID Connect provider's discovery, JWKS, token and userinfo endpoints under
    /// [`OIDC_PREFIX`](crate::OIDC_PREFIX), answered by `endpoints`.
    #[must_use]
    pub fn with_oidc(mut self, endpoints: Arc<dyn crate::OidcEndpoints>) -> Self {
        self.oidc = Some(endpoints);
        self
    }

    /// Serve the card agent's pages (`/`, `/login`, `/login/sign`) for the card `card`: what
    /// `jpki card agent` runs on loopback for login pages to hand their challenge to.
    #[must_use]
    pub fn with_card_agent(mut self, card: Arc<dyn crate::CardAgent>) -> Self {
        self.agent = Some(card);
        self
    }

    /// Serve マイナポータル at [`PORTAL_PATH`](crate::PORTAL_PATH), its contents from `portal`.
    #[must_use]
    pub fn with_portal(mut self, portal: Arc<dyn crate::Portal>) -> Self {
        self.portal = Some(portal);
        self
    }

    /// Serve an RFC 3161 time-stamp authority at [`TSA_PATH`](crate::TSA_PATH), answered by `tsa`.
    #[must_use]
    pub fn with_tsa(mut self, tsa: Arc<dyn TimeStamper>) -> Self {
        self.tsa = Some(tsa);
        self
    }

    /// Serve an OCSP responder at [`OCSP_PATH`](crate::OCSP_PATH) (POST, and GET below it),
    /// answered by `responder`, to the requests `access` lets through.
    #[must_use]
    pub fn with_ocsp(mut self, responder: Arc<dyn OcspResponder>, access: RevocationAccess) -> Self {
        self.ocsp = Some((responder, access));
        self
    }

    /// Serve the CRLs and CA certificates under `dir` (what `jpki crl publish --out DIR` writes) at
    /// `/crl/…` and `/ca/…`; CRLs only to the requests `access` lets through.
    #[must_use]
    pub fn with_published(mut self, dir: PathBuf, access: RevocationAccess) -> Self {
        self.published = Some((dir, access));
        self
    }

    /// Serve the JSON API at `/v1/{operation}` to relying parties `keys` identifies.
    #[must_use]
    pub fn with_api(mut self, api: Arc<dyn JsonApi>, keys: Arc<dyn ApiKeys>) -> Self {
        self.api = Some((api, keys));
        self
    }

    /// How long a JSON API request body may take to arrive ([`crate::api::BODY_TIMEOUT`] unless
    /// set): a body trickled in slower is answered 408.
    #[must_use]
    pub fn with_body_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.body_timeout = Some(timeout);
        self
    }

    /// `/healthz` answers 503 with the reason while `health` says the services cannot answer, and
    /// `/metrics` adds its gauges.
    pub fn with_health(mut self, health: Arc<dyn Health>) -> Self {
        self.health = Some(health);
        self
    }

    /// The router: every configured route set, `GET /healthz` (200 "ok"), `GET /metrics`
    /// (Prometheus text: requests by route and status, latency histograms), 404 for anything else,
    /// `Cache-Control: no-store` on every reply, and one `tracing` event per request.
    pub fn router(&self) -> Router {
        let metrics = Arc::new(Metrics::default());
        let m = Arc::clone(&metrics);
        let (h, g) = (self.health.clone(), self.health.clone());
        let mut router = Router::new()
            .route("/healthz", get(move || healthz(h.clone())))
            .route("/metrics", get(move || render_metrics(Arc::clone(&m), g.clone())));
        if let Some(stamper) = &self.tsa {
            router = router.merge(tsa::routes(Arc::clone(stamper)));
        }
        if let Some((responder, access)) = &self.ocsp {
            router = router.merge(ocsp::routes(Arc::clone(responder), access.clone()));
        }
        if let Some((dir, access)) = &self.published {
            router = router.merge(published::routes(dir.clone(), access.clone()));
        }
        if let Some(endpoints) = &self.oidc {
            router = router.merge(crate::oidc::routes(Arc::clone(endpoints)));
        }
        if let Some(portal) = &self.portal {
            router = router.merge(crate::portal::routes(Arc::clone(portal)));
        }
        if let Some(card) = &self.agent {
            router = router.merge(crate::agent::routes(Arc::clone(card)));
        }
        if let Some((handler, keys)) = &self.api {
            router = router.merge(api::routes(
                Arc::clone(handler),
                Arc::clone(keys),
                self.body_timeout.unwrap_or(api::BODY_TIMEOUT),
            ));
        }
        router = router.merge(api::openapi_routes());
        router
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(metrics, observe))
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("tsa", &self.tsa.is_some())
            .field("ocsp", &self.ocsp.as_ref().map(|(_, access)| access))
            .field("published", &self.published)
            .field("api", &self.api.is_some())
            .field("oidc", &self.oidc.is_some())
            .field("card_agent", &self.agent.is_some())
            .field("portal", &self.portal.is_some())
            .finish()
    }
}

async fn healthz(health: Option<Arc<dyn Health>>) -> Response {
    match health.map_or(Ok(()), |h| h.check()) {
        Ok(()) => tsa::text(StatusCode::OK, "ok\n"),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            format!("unavailable: {why}\n"),
        )
            .into_response(),
    }
}

async fn not_found() -> Response {
    tsa::text(StatusCode::NOT_FOUND, "not found\n")
}

/// Marks every reply `Cache-Control: no-store` (time-stamps, and later OCSP answers and API
/// results, are never to be served from a cache) and logs the request: method, path (no query
/// string), status, latency. Never a body.
async fn render_metrics(metrics: Arc<Metrics>, health: Option<Arc<dyn Health>>) -> Response {
    let mut text = metrics.render();
    for (name, help, value) in health.map(|h| h.gauges()).unwrap_or_default() {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = loggable_path(req.uri().path());
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let status = response.status();
    let elapsed = start.elapsed();
    metrics.record(&path, status.as_u16(), elapsed);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let latency_ms = format_args!("{latency_ms:.3}");
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), %latency_ms, "request");
    } else {
        tracing::info!(%method, %path, status = status.as_u16(), %latency_ms, "request");
    }
    response
}

/// The path as logged and counted: a sign transaction's id in the path is a credential (whoever
/// has it may decline it), so it is left out.
fn loggable_path(path: &str) -> String {
    const SIGN_TX: &str = "/oidc/sign/tx/";
    if path.starts_with(SIGN_TX) {
        format!("{SIGN_TX}…")
    } else {
        path.to_owned()
    }
}
