//! HTTP API and server-rendered console of the appliance. This is the only crate that knows
//! axum (and, with the console, askama); the domain crates never depend on it.

mod admin;
mod kits;
mod metrics;
mod ops;
mod request_id;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use stella_core::{Clock, Config};
use stella_feeds::FeedStore;
use stella_store::Stores;
use tokio::net::TcpListener;

pub use admin::admin_router;
pub use metrics::Metrics;
pub use request_id::RequestId;

/// Everything a request handler may need, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    stores: Arc<Stores>,
    feeds: Arc<FeedStore>,
    config: Config,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
}

impl AppState {
    /// State over opened stores.
    pub fn new(
        stores: Arc<Stores>,
        feeds: Arc<FeedStore>,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                stores,
                feeds,
                config,
                clock,
                metrics: Metrics::new(),
            }),
        }
    }

    /// The stores.
    pub fn stores(&self) -> &Arc<Stores> {
        &self.inner.stores
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

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// The whole HTTP surface: ops endpoints and the API, wrapped in request-id and metrics
/// middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(ops::routes())
        .merge(kits::routes(state.config().kits.max_kit_bytes))
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

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<ServeOutcome> {
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = signalled_tx.send(());
    });
    let server = server.into_future();
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
