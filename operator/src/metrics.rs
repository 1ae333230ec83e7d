//! Prometheus metrics and the health endpoints. Labels are fixed sets (kind, result,
//! category), never object names: unbounded label sets are a known trap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-object reconcile counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindResult {
    /// Signet kind.
    pub kind: &'static str,
    /// `ready`, `not_ready` or `error`.
    pub result: &'static str,
}

/// Label of error counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Category {
    /// A fixed error category (see `pass::Error::category`).
    pub category: &'static str,
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    /// Objects reconciled, by kind and result.
    pub reconciles: Family<KindResult, Counter>,
    /// Duration of whole passes (every kind at once).
    pub pass_duration: Histogram,
    /// Errors by category.
    pub errors: Family<Category, Counter>,
    /// Bytes of compressed snapshot, summed over TokenServices.
    pub snapshot_bytes: Gauge,
    /// Clients in snapshots, summed over TokenServices.
    pub clients: Gauge,
    /// Unix time of the last successful compile.
    pub last_compile: Gauge,
    /// Set once every watch has listed.
    pub synced: AtomicBool,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("signet_operator");
        let reconciles = Family::default();
        registry.register(
            "reconciles",
            "Objects reconciled, by kind and result",
            reconciles.clone(),
        );
        let pass_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "pass_duration_seconds",
            "Duration of a reconcile pass",
            pass_duration.clone(),
        );
        let errors = Family::default();
        registry.register("errors", "Errors by category", errors.clone());
        let snapshot_bytes = Gauge::default();
        registry.register(
            "snapshot_bytes",
            "Compressed snapshot bytes, all TokenServices",
            snapshot_bytes.clone(),
        );
        let clients = Gauge::default();
        registry.register(
            "clients",
            "Clients in snapshots, all TokenServices",
            clients.clone(),
        );
        let last_compile = Gauge::default();
        registry.register(
            "last_compile_timestamp_seconds",
            "Unix time of the last successful compile",
            last_compile.clone(),
        );
        Arc::new(Self {
            registry,
            reconciles,
            pass_duration,
            errors,
            snapshot_bytes,
            clients,
            last_compile,
            synced: AtomicBool::new(false),
        })
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// `/metrics`, `/healthz` (the process serves) and `/readyz` (every watch has listed).
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move { m.render() }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(m): State<Arc<Metrics>>| async move {
                if m.synced.load(Ordering::Acquire) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "watches not synced")
                }
            }),
        )
        .with_state(metrics)
}
