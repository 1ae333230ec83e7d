//! HTTP: the router and the endpoint handlers.

mod authorize;
mod browser;
mod consent;
mod cors;
mod device;
pub(crate) mod endpoints;
mod error;
mod federate;
mod interaction;
mod login;
mod logout;
pub mod pages;
mod params;
mod userinfo;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use crate::app::App;

/// Largest request body accepted; larger ones get 413 before any parsing.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The wall clock, read once per request at the edge; everything below takes `now`.
fn now() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
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
            get(authorize::authorize).post(authorize::authorize),
        )
        .route("/login", get(login::login_page).post(login::login_submit))
        .route(
            "/consent",
            get(consent::consent_page).post(consent::consent_submit),
        )
        .route(
            "/userinfo",
            get(userinfo::userinfo)
                .post(userinfo::userinfo)
                .layer(cors()),
        )
        .route(
            "/end_session",
            get(logout::end_session).post(logout::end_session),
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
