//! Prometheus metrics of the STS, served on their own port. Labels are bounded: endpoint
//! (fixed route names), status code, grant type.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::Instrument;

/// Labels of request counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route, e.g. `/token`.
    pub endpoint: String,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of issued tokens.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    /// The grant type.
    pub grant: &'static str,
}

/// Labels of the snapshot-info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SnapshotLabels {
    /// Content hash of the snapshot in service.
    pub hash: String,
}

/// The STS's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by endpoint and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Tokens issued by grant.
    pub tokens: Family<GrantLabels, Counter>,
    /// Snapshots refused (bad, unknown major version, torn).
    pub snapshots_refused: Counter,
    /// Unix time the snapshot in service was loaded.
    pub snapshot_loaded_at: Gauge,
    /// 1 for the hash in service (one series at a time).
    pub snapshot_info: Family<SnapshotLabels, Gauge>,
    /// Back-channel logout tokens delivered.
    pub backchannel_sent: Counter,
    /// Back-channel logout deliveries that failed after every retry.
    pub backchannel_failed: Counter,
    /// Connections the listener holds now.
    pub connections: Gauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("signet_sts");
        let requests = Family::default();
        registry.register(
            "requests",
            "Requests by endpoint and status",
            requests.clone(),
        );
        let tokens = Family::default();
        registry.register("tokens_issued", "Tokens issued by grant", tokens.clone());
        let snapshots_refused = Counter::default();
        registry.register(
            "snapshots_refused",
            "Snapshots refused",
            snapshots_refused.clone(),
        );
        let snapshot_loaded_at = Gauge::default();
        registry.register(
            "snapshot_loaded_timestamp_seconds",
            "When the snapshot in service was loaded",
            snapshot_loaded_at.clone(),
        );
        let snapshot_info = Family::default();
        registry.register(
            "snapshot_info",
            "The snapshot in service",
            snapshot_info.clone(),
        );
        let backchannel_sent = Counter::default();
        registry.register(
            "backchannel_logout_delivered",
            "Back-channel logout tokens delivered",
            backchannel_sent.clone(),
        );
        let backchannel_failed = Counter::default();
        registry.register(
            "backchannel_logout_failed",
            "Back-channel logout deliveries that failed after every retry",
            backchannel_failed.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Connections the listener holds now",
            connections.clone(),
        );
        Arc::new(Self {
            registry,
            connections,
            backchannel_sent,
            backchannel_failed,
            requests,
            tokens,
            snapshots_refused,
            snapshot_loaded_at,
            snapshot_info,
        })
    }

    /// Records that the snapshot `hash` is in service.
    pub fn snapshot_loaded(&self, hash: &str) {
        self.snapshot_info.clear();
        self.snapshot_info
            .get_or_create(&SnapshotLabels {
                hash: hash.to_owned(),
            })
            .set(1);
        self.snapshot_loaded_at
            .set(k8s_openapi::jiff::Timestamp::now().as_second());
    }

    fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// `/metrics` on the metrics port.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move { m.render() }),
        )
        .with_state(metrics)
}

/// Counts each request and runs it in a tracing span.
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    // At debug level: with the usual `info` filter the span costs nothing on the hot path
    // (formatting its fields took ~3 % of the token endpoint's CPU); at debug, every event
    // in a request names its method and endpoint.
    let span = tracing::debug_span!("request", method = %request.method(), endpoint = %endpoint);
    let response = next.run(request).instrument(span).await;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
