//! Listening, serving and shutting down.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::app::AppState;
use crate::error::ServerError;
use crate::tsa::TimeStamper;

/// How long a shutdown waits for requests in flight before closing their connections.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// How long a client has to send a request's headers (slow-loris defence): a connection that
/// dawdles longer is closed.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener and the router it serves.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    grace: Duration,
    header_timeout: Duration,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("grace", &self.grace)
            .field("header_timeout", &self.header_timeout)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Listens on `addr` (port 0 picks a free port: see [`Server::local_addr`]) for `state`'s
    /// services. Nothing is served until [`Server::run`] or [`Server::run_until`].
    ///
    /// # Errors
    /// [`ServerError::Listen`] when the address cannot be bound (in use, privileged port, not an
    /// address of this machine).
    pub async fn bind(addr: SocketAddr, state: &AppState) -> Result<Self, ServerError> {
        let listen_error = |source| ServerError::Listen { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        Ok(Self {
            listener,
            local_addr,
            router: state.router(),
            grace: DEFAULT_GRACE,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            tls: None,
        })
    }

    /// The address actually bound (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How long a shutdown waits for requests in flight ([`DEFAULT_GRACE`] unless set).
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long a client may take to send a request's headers ([`DEFAULT_HEADER_TIMEOUT`] unless
    /// set).
    #[must_use]
    pub fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Speaks TLS with `config` (see [`tls_config`](crate::tls_config)); the handshake must finish
    /// within the header timeout.
    #[must_use]
    pub fn with_tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(TlsAcceptor::from(config));
        self
    }

    /// Serves until SIGTERM or SIGINT (Ctrl-C), then shuts down gracefully.
    ///
    /// # Errors
    /// [`ServerError::Serve`] if serving fails.
    pub async fn run(self) -> Result<(), ServerError> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully: stops accepting, lets the
    /// requests in flight finish and closes idle keep-alive connections; connections still busy
    /// after the grace period are abandoned (their tasks end with the runtime). Returns `Ok(())`
    /// once shut down.
    ///
    /// # Errors
    /// [`ServerError::Serve`] if serving fails.
    pub async fn run_until<F>(self, shutdown: F) -> Result<(), ServerError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Self {
            listener,
            local_addr,
            router,
            grace,
            header_timeout,
            tls,
        } = self;
        tracing::info!(address = %local_addr, "listening");
        // hyper-util's connection builder rather than axum::serve, for the header-read timeout.
        let mut builder = Builder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let graceful = GracefulShutdown::new();
        let shutdown = shutdown;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(router.clone());
                    let (builder, watcher, tls, router) = (builder.clone(), graceful.watcher(), tls.clone(), router.clone());
                    tokio::spawn(async move {
                        let served = match tls {
                            None => {
                                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                                watcher.watch(conn.into_owned()).await
                            }
                            Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                                Ok(Ok(tls_stream)) => {
                                    // A verified client certificate travels with every request of
                                    // the connection, for relying parties that use mutual TLS.
                                    let client = tls_stream
                                        .get_ref()
                                        .1
                                        .peer_certificates()
                                        .and_then(|c| c.first())
                                        .map(|c| crate::ClientCertificate::of(c.as_ref()));
                                    let service = TowerToHyperService::new(tower::util::MapRequest::new(
                                        router.clone(),
                                        move |mut req: hyper::Request<hyper::body::Incoming>| {
                                            if let Some(c) = client {
                                                req.extensions_mut().insert(c);
                                            }
                                            req
                                        },
                                    ));
                                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
                                    watcher.watch(conn.into_owned()).await
                                }
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!("TLS handshake timed out");
                                    return;
                                }
                            },
                        };
                        if let Err(e) = served {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        tracing::info!("shutting down");
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(grace) => {
                tracing::warn!(grace_ms = grace.as_millis(), "requests still running after the grace period: closing");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when first
/// polled, so a signal that comes in between is not lost. Must be called inside a Tokio runtime.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            let name = match (terminate, interrupt) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                },
                (Ok(mut only), Err(e)) | (Err(e), Ok(mut only)) => {
                    tracing::warn!(error = %e, "cannot watch for one of SIGTERM and SIGINT");
                    only.recv().await;
                    "signal"
                }
                (Err(e), Err(_)) => {
                    tracing::warn!(error = %e, "cannot watch for SIGTERM or SIGINT: stop the server by other means");
                    std::future::pending::<&str>().await
                }
            };
            tracing::info!(signal = name, "received");
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            tracing::warn!("cannot watch for Ctrl-C: stop the server by other means");
            std::future::pending::<()>().await;
        }
    }
}

/// Serves an RFC 3161 time-stamp authority, answered by `tsa`, on `addr` until SIGTERM or SIGINT:
/// [`serve_blocking`] with only the TSA route set.
///
/// # Errors
/// As [`serve_blocking`].
pub fn run_blocking(
    addr: SocketAddr,
    tsa: Arc<dyn TimeStamper>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    serve_blocking(addr, &AppState::new().with_tsa(tsa), ready)
}

/// The blocking entry point for the CLI: builds a multi-thread Tokio runtime, binds `addr`, calls
/// `ready` with the address actually bound (so a caller can print `http://127.0.0.1:PORT/tsa`
/// when port 0 was asked for), serves `state` until SIGTERM or SIGINT and shuts down gracefully
/// (bounded by [`DEFAULT_GRACE`]). Returns `Ok(())` after a signal-initiated shutdown.
///
/// # Errors
/// [`ServerError::Runtime`] if the runtime cannot start, [`ServerError::Listen`] if `addr` cannot
/// be bound, [`ServerError::Serve`] if serving fails.
pub fn serve_blocking(
    addr: SocketAddr,
    state: &AppState,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    serve_blocking_tls(addr, state, None, ready)
}

/// [`serve_blocking`], speaking TLS with `tls` when given (see [`tls_config`](crate::tls_config)).
///
/// # Errors
/// As [`serve_blocking`].
pub fn serve_blocking_tls(
    addr: SocketAddr,
    state: &AppState,
    tls: Option<Arc<rustls::ServerConfig>>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    // Signing is CPU-bound: a few threads per core keep every core busy, and a burst queues for
    // them instead of growing Tokio's blocking pool towards its default 512 threads.
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("jpki-server")
        .max_blocking_threads((cores * 4).max(8))
        .build()
        .map_err(ServerError::Runtime)?;
    let result = runtime.block_on(async {
        let stop = shutdown_signal();
        let mut server = Server::bind(addr, state).await?;
        if let Some(config) = tls {
            server = server.with_tls(config);
        }
        ready(server.local_addr());
        server.run_until(stop).await
    });
    // Connections abandoned after the grace period are cancelled here; do not wait on them.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}
