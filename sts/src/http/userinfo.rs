//! `/userinfo` (OIDC Core §5.3): the person's claims by the access token's scopes. Bearer in
//! the Authorization header, by GET or POST (RFC 6750 §2.1).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::App;
use crate::tokens;

/// 401 with the RFC 6750 challenge.
fn invalid_token(description: &'static str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "invalid_token", "error_description": description})),
    )
        .into_response();
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// GET or POST `/userinfo`.
pub async fn userinfo(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(loaded) = app.loaded.load_full() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let now = super::now();
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    let claims = match tokens::resolve(&loaded, &app.store.load(), token.trim(), now).await {
        Ok(Some(claims)) => claims,
        Ok(None) => return invalid_token("the access token is not valid"),
        Err(error) => return error.into_response(),
    };
    let scopes: Vec<String> = claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .map(str::to_owned)
        .collect();
    // Machine tokens (client_credentials) carry no auth_time: there is no person to describe.
    if claims["auth_time"].is_null() || !scopes.iter().any(|s| s == "openid") {
        return invalid_token("the access token is not for a person's userinfo");
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    let user = match crate::signin::profile::person(&loaded, &app.store.load(), sub, now).await {
        Ok(Some(user)) => user,
        Ok(None) => return invalid_token("the person no longer exists"),
        Err(error) => {
            return crate::error::OAuthError::temporarily_unavailable(error.to_string())
                .into_response();
        }
    };
    let mut body = crate::signin::claims::by_scope(&user, &scopes);
    body.insert("sub".into(), Value::from(sub));
    let mut response = axum::Json(Value::Object(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
