//! Prometheus metrics: requests by route and status, a latency histogram, store sizes and build
//! information, rendered in the text exposition format at `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use stella_store::StoreSizes;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LayerLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The daemon's metrics registry.
pub struct Metrics {
    registry: Registry,
    layers: Family<LayerLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    store_bytes: Family<StoreLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("stella");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, matched route and status",
            requests.clone(),
        );
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by matched route",
            latency.clone(),
        );
        let store_bytes = Family::<StoreLabels, Gauge>::default();
        registry.register(
            "store_size_bytes",
            "Size on disk of each embedded store",
            store_bytes.clone(),
        );
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", stella_core::VERSION)]),
        );
        let layers = Family::<LayerLabels, Counter>::default();
        registry.register(
            "scan_layers",
            "Image layers scanned, by outcome: analysed or reused from the layer cache",
            layers.clone(),
        );
        Self {
            registry,
            layers,
            requests,
            latency,
            store_bytes,
        }
    }

    /// Counts the layers of one scan: analysed, or reused from the cache.
    pub fn record_scan(&self, analysed: usize, reused: usize) {
        for (outcome, n) in [("analysed", analysed), ("reused", reused)] {
            self.layers
                .get_or_create(&LayerLabels { outcome })
                .inc_by(n as u64);
        }
    }

    /// Renders every metric, after refreshing the store sizes.
    pub fn render(&self, sizes: StoreSizes) -> String {
        for (store, bytes) in [
            ("blobs", sizes.blobs),
            ("catalog", sizes.catalog),
            ("feeds", sizes.feeds),
        ] {
            self.store_bytes
                .get_or_create(&StoreLabels { store })
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Middleware that counts and times every request by its matched route (never the raw path, so
/// a scan of random URLs cannot blow up the label set).
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let metrics = state.metrics();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}
