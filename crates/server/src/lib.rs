//! openjpki over HTTP: the `server` layer of the architecture.
//!
//! It serves an RFC 3161 time-stamp authority (`POST /tsa`), an OCSP responder (`POST /ocsp`,
//! `GET /ocsp/{ca}/{base64}`), published CRLs, `GET /healthz` and `GET /metrics`, and carries the
//! client side a signer uses to reach any such authority ([`post_timestamp_query`]). The crate knows nothing of certificates or signatures:
//! the time-stamping and the OCSP answers are a [`TimeStamper`] and an [`OcspResponder`] handed in by
//! the caller, so this crate depends on no other openjpki crate.
//!
//! Shape, built to grow into `jpki serve`:
//! * [`AppState`] collects the services to offer; each one is a route set (the TSA is the first),
//!   and [`AppState::router`] assembles them with the common parts: `/healthz`, a 404 fallback,
//!   `Cache-Control: no-store` on every reply and one `tracing` event per request (method, path,
//!   status, latency; never bodies).
//! * [`Server`] binds a listener (port 0 allowed; [`Server::local_addr`] tells the real one) and
//!   serves until a shutdown future resolves ([`Server::run_until`]) or until SIGTERM/SIGINT
//!   ([`Server::run`]), then shuts down gracefully: no new connections, requests in flight finish,
//!   idle connections close, all bounded by a grace period ([`DEFAULT_GRACE`]).
//! * [`run_blocking`] / [`serve_blocking`] are the entry points for the synchronous CLI: they build a
//!   multi-thread Tokio runtime and serve on it.
//!
//! Where to listen is the caller's choice: the `jpki` commands bind to `127.0.0.1` by default and
//! only listen on other interfaces when told to.
//!
//! Logging goes through `tracing`; a program that has no subscriber of its own can call
//! [`init_logging`].

mod agent;
mod api;
mod app;
mod client;
mod error;
mod logging;
mod metrics;
mod ocsp;
mod oidc;
mod pages;
mod portal;
mod published;
mod serve;
mod tls;
mod tsa;

pub use agent::{CardAgent, CardAnswer, CardRefusal};
pub use api::{BODY_TIMEOUT, JsonApi, LARGE_OPERATIONS, MAX_JSON_BYTES, MAX_LARGE_JSON_BYTES, OPENAPI};
pub use app::{AppState, Health};
pub use client::{MAX_REPLY_BYTES, get_text, post_timestamp_query};
pub use error::ServerError;
pub use logging::init_logging;
pub use ocsp::{
    ApiKeys, Caller, ClientCertificate, KeysUnavailable, MAX_OCSP_REQUEST_BYTES, OCSP_PATH, OCSP_REQUEST,
    OCSP_RESPONSE, OcspResponder, RevocationAccess,
};
pub use oidc::{
    CardPrompt, ConsentPrompt, JsonAnswer, LOGIN_CARD_PATH, LOGIN_CONSENT_PATH, LoginStep, OIDC_PREFIX,
    OidcEndpoints, SIGN_PATH, SignPrompt,
};
pub use portal::{Block, Cell, PORTAL_PATH, Portal, PortalPage, Section, Text};
pub use published::{MAX_PUBLISHED_BYTES, PKIX_CERT, PKIX_CRL};
pub use serve::{
    DEFAULT_GRACE, DEFAULT_HEADER_TIMEOUT, Server, run_blocking, serve_blocking, serve_blocking_tls,
};
pub use tls::{tls_config, tls_config_with_clients};

/// A server TLS configuration, as [`tls_config`] makes it.
pub type TlsConfig = std::sync::Arc<rustls::ServerConfig>;
pub use tsa::{MAX_QUERY_BYTES, TIMESTAMP_QUERY, TIMESTAMP_REPLY, TSA_PATH, TimeStamper};
