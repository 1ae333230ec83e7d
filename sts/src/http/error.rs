//! The one OAuth error type (RFC 6749 §5.2): a code the client sees, an optional description
//! for it, and an internal source that is logged and never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An OAuth error response.
#[derive(Debug)]
pub struct OAuthError {
    code: &'static str,
    status: StatusCode,
    description: Option<String>,
    source: Option<String>,
}

impl OAuthError {
    fn new(code: &'static str, status: StatusCode, description: Option<String>) -> Self {
        Self {
            code,
            status,
            description,
            source: None,
        }
    }

    /// `invalid_request`, with what was wrong.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(
            "invalid_request",
            StatusCode::BAD_REQUEST,
            Some(description.into()),
        )
    }

    /// `invalid_client`: 401 with `WWW-Authenticate`. Says nothing about which part failed.
    pub fn invalid_client() -> Self {
        Self::new(
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            Some("client authentication failed".into()),
        )
    }

    /// `unauthorized_client`: this client may not use this grant.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(
            "unauthorized_client",
            StatusCode::BAD_REQUEST,
            Some(description.into()),
        )
    }

    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type() -> Self {
        Self::new("unsupported_grant_type", StatusCode::BAD_REQUEST, None)
    }

    /// `invalid_grant`: a code, refresh token or device code that is not good (RFC 6749
    /// §5.2); the description says which check failed.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(
            "invalid_grant",
            StatusCode::BAD_REQUEST,
            Some(description.into()),
        )
    }

    /// A device-flow polling answer (RFC 8628 §3.5): authorization_pending, slow_down,
    /// access_denied or expired_token, all 400.
    pub fn device(code: &'static str) -> Self {
        Self::new(code, StatusCode::BAD_REQUEST, None)
    }

    /// `invalid_scope`.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(
            "invalid_scope",
            StatusCode::BAD_REQUEST,
            Some(description.into()),
        )
    }

    /// `invalid_target` (RFC 8707).
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(
            "invalid_target",
            StatusCode::BAD_REQUEST,
            Some(description.into()),
        )
    }

    /// `temporarily_unavailable`: no snapshot yet, or the store is down (503).
    pub fn temporarily_unavailable(source: impl Into<String>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(
                "temporarily_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            )
        }
    }

    /// `server_error`: a bug or an unexpected failure; the source is logged only.
    pub fn server_error(source: impl Into<String>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new("server_error", StatusCode::INTERNAL_SERVER_ERROR, None)
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            tracing::warn!(error = self.code, %source, "request failed");
        }
        let mut body = serde_json::json!({ "error": self.code });
        if let Some(description) = &self.description {
            body["error_description"] = description.clone().into();
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"signet\""),
            );
        }
        response
    }
}
