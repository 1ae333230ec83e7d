//! HTTP: the router and the endpoint handlers.

mod cors;
mod device;
pub(crate) mod endpoints;
pub mod error;
mod federate;
pub mod form;
mod logout;
pub mod pages;
mod signin;
mod userinfo;

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::loaded::Loaded;
use crate::store::{MemoryStore, Store};

/// Largest request body accepted; larger ones get 413 before any parsing.
pub const BODY_LIMIT: usize = 16 * 1024;

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
            trusted_proxies,
            upstreams: Default::default(),
        })
    }
}

/// The public endpoints.
pub fn router(app: Arc<App>) -> Router {
    let cors = || axum::middleware::from_fn_with_state(app.clone(), cors::cors);
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(endpoints::discovery).layer(cors()),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(endpoints::discovery).layer(cors()),
        )
        .route("/jwks", get(endpoints::jwks).layer(cors()))
        .route(
            "/authorize",
            get(signin::authorize_get).post(signin::authorize_post),
        )
        .route("/login", get(signin::login_page).post(signin::login_submit))
        .route(
            "/consent",
            get(signin::consent_page).post(signin::consent_submit),
        )
        .route(
            "/userinfo",
            get(userinfo::userinfo)
                .post(userinfo::userinfo)
                .layer(cors()),
        )
        .route(
            "/end_session",
            get(logout::end_session_get).post(logout::end_session_post),
        )
        .route("/end_session/confirm", post(logout::confirm))
        .route("/device_authorization", post(device::device_authorization))
        .route(
            "/device",
            get(device::verification_page).post(device::verification_submit),
        )
        .route("/federate", post(federate::begin))
        .route("/federate/callback", get(federate::callback))
        .route("/static/signet.css", get(pages::stylesheet))
        .route("/token", post(endpoints::token).layer(cors()))
        .route("/introspect", post(endpoints::introspect))
        .route("/revoke", post(endpoints::revoke).layer(cors()))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(endpoints::readyz))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .route_layer(axum::middleware::from_fn_with_state(
            app.metrics.clone(),
            crate::metrics::observe,
        ))
        .with_state(app)
}
