//! The application state every request reads: the snapshot in service, the operational
//! store, and the shared services (outbound calls, fetched key sets, the password pool, the
//! sign-in throttle). The web layer and the snapshot sources share one `App`.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::loaded::Loaded;
use crate::store::{MemoryStore, Store};

/// New interactions one source may start per minute, unless configured.
pub const DEFAULT_INTERACTIONS_PER_MINUTE: u32 = 600;

/// A newer snapshot that was refused: the hash it claimed, when its bytes named one, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Its hash.
    pub hash: Option<String>,
    /// Why, for /readyz and the replica's report.
    pub reason: String,
}

/// What every request reads.
pub struct App {
    /// The snapshot in service; one `Arc` per request, no lock.
    pub loaded: ArcSwapOption<Loaded>,
    /// The last newer snapshot refused, while nothing newer serves.
    pub refused: std::sync::Mutex<Option<Refusal>>,
    /// Signalled when what this replica serves or refuses changes, so its report goes out at
    /// once rather than at the next renewal.
    pub served_changed: tokio::sync::Notify,
    /// The schema major this replica reads (`--testing-schema-major` lowers it, so a test can
    /// make one replica refuse the snapshot); default [`crate::loaded::SCHEMA_MAJOR`].
    pub schema_major: std::sync::OnceLock<String>,
    /// Operational state.
    pub store: arc_swap::ArcSwap<Store>,
    /// The store settings `store` was made for.
    pub store_settings: tokio::sync::Mutex<Option<signet_crds::snapshot::StoreSettings>>,
    /// Metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Outbound https for tenant-chosen URLs.
    pub outbound: crate::outbound::Outbound,
    /// JWK Sets fetched by URL: clients' jwksUri and upstream providers' keys.
    pub jwks: crate::remote_jwks::RemoteJwks,
    /// Password checks, off the request threads and bounded.
    pub passwords: crate::signin::users::VerifierPool,
    /// Budgets of failed sign-ins (counted in `store`).
    pub login_limits: crate::signin::throttle::Limits,
    /// New interactions per source address.
    pub interactions: crate::signin::budget::Budget,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<crate::signin::source_address::Cidr>,
    /// Upstream identity providers' metadata.
    pub upstreams: crate::federation::Upstreams,
    /// The API server of the cluster the STS runs in (in-cluster mode only): it reviews
    /// ServiceAccount tokens.
    pub kube: std::sync::OnceLock<kube::Client>,
    /// ServiceAccount tokens the API server vouched for, briefly.
    pub reviews: crate::workload::Reviews,
    /// Trusted clusters' JWK Set URLs read from their discovery documents.
    pub clusters: crate::workload::Discovered,
}

/// The limits an operator sets at the edges (flags of `signet-sts`).
#[derive(Clone, Debug)]
pub struct Edges {
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<crate::signin::source_address::Cidr>,
    /// New interactions one source may start per minute.
    pub interactions_per_minute: u32,
    /// Budgets of failed sign-ins.
    pub login: crate::signin::throttle::Limits,
}

impl Default for Edges {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            interactions_per_minute: DEFAULT_INTERACTIONS_PER_MINUTE,
            login: Default::default(),
        }
    }
}

impl App {
    /// An app with no snapshot yet and the default limits.
    pub fn new() -> Arc<Self> {
        Self::configured(Edges::default())
    }

    /// An app with no snapshot yet and the limits `edges`.
    pub fn configured(edges: Edges) -> Arc<Self> {
        Arc::new(Self {
            loaded: ArcSwapOption::empty(),
            refused: Default::default(),
            served_changed: Default::default(),
            schema_major: Default::default(),
            store: arc_swap::ArcSwap::from_pointee(Store::Memory(MemoryStore::default())),
            store_settings: Default::default(),
            metrics: crate::metrics::Metrics::new(),
            outbound: crate::outbound::Outbound::new(),
            jwks: Default::default(),
            // One hashing thread per two cores leaves the others to the token endpoint; 64
            // waiting logins is a queue of a few seconds at argon2id's cost.
            passwords: crate::signin::users::VerifierPool::new(
                std::thread::available_parallelism().map_or(1, |n| n.get() / 2),
                64,
            ),
            login_limits: edges.login,
            interactions: crate::signin::budget::Budget::new(edges.interactions_per_minute),
            trusted_proxies: edges.trusted_proxies,
            upstreams: Default::default(),
            kube: Default::default(),
            reviews: Default::default(),
            clusters: Default::default(),
        })
    }
}
