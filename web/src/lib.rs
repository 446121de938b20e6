//! HTTP API and server-rendered console of the appliance. This is the only crate that knows
//! axum (and, with the console, askama); the domain crates never depend on it.

// Helpers here return the finished error `Response` as their `Err`; it is made at most once per
// request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod admin;
mod attest;
pub mod auth;
mod console;
mod kits;
mod metrics;
mod ops;
mod reports;
mod request_id;
mod scans;
pub mod signing;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use stella_core::{Clock, Config};
use stella_feeds::FeedStore;
use stella_store::Stores;
use tokio::net::TcpListener;

pub use admin::admin_router;
pub use auth::{Access, Authority, Caller, RouteEntry, RouteTable};
pub use metrics::Metrics;
pub use request_id::RequestId;
pub use scans::StoreCache;

/// Everything a request handler may need, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    stores: Arc<Stores>,
    feeds: Arc<FeedStore>,
    authority: Arc<Authority>,
    config: Config,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    signing: Option<Arc<signing::SigningService>>,
    demo: bool,
}

impl AppState {
    /// State over opened stores, the feed store and the Authority.
    pub fn new(
        stores: Arc<Stores>,
        feeds: Arc<FeedStore>,
        authority: Arc<Authority>,
        config: Config,
        clock: Arc<dyn Clock>,
        signing: Option<Arc<signing::SigningService>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                stores,
                feeds,
                authority,
                config,
                clock,
                metrics: Metrics::new(),
                signing,
                demo: false,
            }),
        }
    }

    /// Marks the daemon as running `--demo`: the console labels every page as demo data.
    /// Call before the state is shared.
    pub fn with_demo(mut self, demo: bool) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.demo = demo,
            None => tracing::error!("with_demo called after the state was shared"),
        }
        self
    }

    /// Whether the daemon runs `--demo`.
    pub fn demo(&self) -> bool {
        self.inner.demo
    }

    /// The signer, when `[hsm]` is configured.
    pub fn signing(&self) -> Option<&Arc<signing::SigningService>> {
        self.inner.signing.as_ref()
    }

    /// The feed store.
    pub fn feeds(&self) -> &Arc<FeedStore> {
        &self.inner.feeds
    }

    /// The configuration the daemon runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The Authority (tokens, DPoP, sessions).
    pub fn authority(&self) -> &Authority {
        &self.inner.authority
    }

    /// The stores.
    pub fn stores(&self) -> &Arc<Stores> {
        &self.inner.stores
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// In-process scans and reports for `stella serve --demo`, which seeds its throwaway stores
/// before serving: the same code as `POST /api/scans` and `POST /api/reports`, so the console
/// shows the demo's scan, findings and verdict exactly as it shows real ones.
pub mod seed {
    use crate::AppState;

    /// Scans the image at `path` as `POST /api/scans` does (recorded, audited `scan.start` by
    /// `actor`) and waits for the scan to end; answers the scan id and the image digest. Call it
    /// from a blocking thread of the daemon's runtime.
    pub fn scan(state: &AppState, path: &str, actor: &str) -> Result<(String, String), String> {
        let ctx = crate::auth::AuditContext {
            request_id: None,
            source: "in-process".to_owned(),
        };
        let source = crate::scans::ScanSource::Image {
            image: path.to_owned(),
            insecure_registries: Vec::new(),
        };
        let id = crate::scans::start_scan(state, &ctx, actor, source, Default::default())?;
        loop {
            let (status, digest, error): (String, Option<String>, Option<String>) = state
                .stores()
                .catalog
                .connection()
                .query_row(
                    "SELECT status, image_digest, error FROM scans WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(|e| e.to_string())?;
            match (status.as_str(), digest) {
                ("done", Some(digest)) => return Ok((id, digest)),
                ("running", _) => std::thread::sleep(std::time::Duration::from_millis(50)),
                _ => return Err(error.unwrap_or_else(|| format!("scan {id} ended {status}"))),
            }
        }
    }

    /// Judges the scanned image against the newest policy (signed when the appliance can);
    /// answers `POST /api/reports`' JSON.
    pub fn report(
        state: &AppState,
        image_digest: &str,
        actor: &str,
    ) -> Result<serde_json::Value, String> {
        let image: stella_core::Digest = image_digest
            .parse()
            .map_err(|_| format!("{image_digest:?} is not an image digest"))?;
        crate::reports::report_now(state, &image, actor)
    }
}

/// Every route of the appliance with its access rule (see `docs/security.md`). Add new routes
/// here, through [`RouteTable::scoped`] (API, token with a scope), [`RouteTable::signer`]
/// (DPoP-bound token with server nonce), [`RouteTable::console`] (session) or
/// [`RouteTable::public`] (with a reason); a route added to the router any other way is denied.
pub fn route_table() -> RouteTable {
    let table = RouteTable::new();
    let table = ops::routes(table);
    let table = kits::routes(table);
    let table = scans::routes(table);
    let table = reports::routes(table);
    let table = signing::routes(table);
    let table = attest::routes(table);
    let table = auth::oauth_routes(table);
    let table = auth::admin_routes(table);
    let table = console::routes(table);
    auth::console_routes(table)
}

/// The whole HTTP surface: the route table with its access rules enforced, wrapped in HSTS,
/// request-id and metrics middleware.
pub fn router(state: AppState) -> Router {
    // Kit uploads are the largest bodies; the access rule runs before any body is read.
    let body_limit = usize::try_from(state.config().kits.max_kit_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    route_table()
        .into_router(state.clone())
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::hsts,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(request_id::assign))
        .with_state(state)
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeOutcome {
    /// Every in-flight request finished after the shutdown signal.
    Drained,
    /// The grace period ran out with requests still in flight; they were dropped.
    GraceExpired,
}

/// The peer address of a connection, plain or TLS; read it as `ConnectInfo<ClientAddr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<ServeOutcome> {
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let service = router.into_make_service_with_connect_info::<ClientAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = signalled_tx.send(());
    });
    finish(server.into_future(), signalled_rx, grace).await
}

/// Like [`serve`], over TLS: `listener` is wrapped in a [`tls::TlsListener`].
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<ServeOutcome> {
    let listener = tls::TlsListener::new(listener, config)?;
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let service = router.into_make_service_with_connect_info::<ClientAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = signalled_tx.send(());
    });
    finish(server.into_future(), signalled_rx, grace).await
}

async fn finish(
    server: impl Future<Output = std::io::Result<()>>,
    signalled_rx: tokio::sync::oneshot::Receiver<()>,
    grace: Duration,
) -> std::io::Result<ServeOutcome> {
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map(|()| ServeOutcome::Drained),
        _ = signalled_rx => {}
    }
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.map(|()| ServeOutcome::Drained),
        Err(_) => Ok(ServeOutcome::GraceExpired),
    }
}

/// Serves the admin router on the admin socket until `shutdown` resolves.
pub async fn serve_admin(
    listener: tokio::net::UnixListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
