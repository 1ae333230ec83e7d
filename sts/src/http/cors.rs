//! CORS for browser apps (discovery, JWKS, token, userinfo, revocation): an origin that some
//! client lists in `allowedCorsOrigins` gets a grant for exactly itself; any other origin gets
//! none, on preflight (403, no CORS headers) and on actual requests. No credentials (cookies)
//! are ever allowed cross-origin: these endpoints take tokens, not sessions.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Whether `origin` is registered by some client of the snapshot in service.
fn allowed(app: &App, origin: &str) -> bool {
    app.loaded
        .load()
        .as_ref()
        .is_some_and(|loaded| loaded.cors_origins.contains(origin))
}

fn grant(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate"),
    );
}

/// The middleware.
pub async fn cors(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let is_allowed = origin.to_str().is_ok_and(|o| allowed(&app, o));
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        if !is_allowed {
            return StatusCode::FORBIDDEN.into_response();
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, DPoP"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE),
        );
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    // Caches must keep answers for different origins apart.
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if is_allowed {
        grant(headers, &origin);
    }
    response
}
