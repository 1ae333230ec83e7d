//! The application state every request reads: the snapshot in service, the operational
//! store, and the shared services (outbound calls, fetched key sets, the password pool, the
//! sign-in throttle). The web layer and the snapshot sources share one `App`.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::loaded::Loaded;
use crate::store::{MemoryStore, Store};

/// New interactions one source may start per minute, unless configured.
pub const DEFAULT_INTERACTIONS_PER_MINUTE: u32 = 600;

/// What every request reads.
pub struct App {
    /// The snapshot in service; one `Arc` per request, no lock.
    pub loaded: ArcSwapOption<Loaded>,
    /// Why the last newer snapshot was refused, for /readyz.
    pub refused: std::sync::Mutex<Option<String>>,
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
    /// Failed sign-in delays.
    pub throttle: crate::signin::throttle::Throttle,
    /// New interactions per source address.
    pub interactions: crate::signin::budget::Budget,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<crate::signin::source_address::Cidr>,
    /// Upstream identity providers' metadata.
    pub upstreams: crate::federation::Upstreams,
}

impl App {
    /// An app with no snapshot yet.
    pub fn new() -> Arc<Self> {
        Self::with_trusted_proxies(Vec::new())
    }

    /// An app with no snapshot yet that believes X-Forwarded-For from `trusted_proxies`.
    pub fn with_trusted_proxies(
        trusted_proxies: Vec<crate::signin::source_address::Cidr>,
    ) -> Arc<Self> {
        Self::configured(trusted_proxies, DEFAULT_INTERACTIONS_PER_MINUTE)
    }

    /// An app with no snapshot yet that believes X-Forwarded-For from `trusted_proxies` and
    /// lets one source start `interactions_per_minute` sign-ins.
    pub fn configured(
        trusted_proxies: Vec<crate::signin::source_address::Cidr>,
        interactions_per_minute: u32,
    ) -> Arc<Self> {
        Arc::new(Self {
            loaded: ArcSwapOption::empty(),
            refused: Default::default(),
            store: arc_swap::ArcSwap::from_pointee(Store::Memory(MemoryStore::default())),
            store_settings: Default::default(),
            metrics: crate::metrics::Metrics::new(),
            outbound: crate::outbound::Outbound::new(),
            jwks: Default::default(),
            // One hashing thread leaves the other cores to the token endpoint; 64 waiting
            // logins is a queue of a few seconds at argon2id's cost.
            passwords: crate::signin::users::VerifierPool::new(
                std::thread::available_parallelism().map_or(1, |n| n.get() / 2),
                64,
            ),
            throttle: Default::default(),
            interactions: crate::signin::budget::Budget::new(interactions_per_minute),
            trusted_proxies,
            upstreams: Default::default(),
        })
    }
}
