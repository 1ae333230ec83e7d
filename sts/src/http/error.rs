//! OAuth errors as HTTP responses (RFC 6749 §5.2): a JSON body, `no-store`, the status the
//! code calls for, and `WWW-Authenticate` with a 401. The source is logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::OAuthError;

/// The status of an error with `code`: 401 for a failed client authentication, 503 while the
/// service cannot answer, 500 for a fault of ours, 400 for everything the request got wrong.
fn status(code: &str) -> StatusCode {
    match code {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        if let Some(source) = self.source() {
            tracing::warn!(error = self.code(), %source, "request failed");
        }
        let mut body = serde_json::json!({ "error": self.code() });
        if let Some(description) = self.description() {
            body["error_description"] = description.into();
        }
        let status = status(self.code());
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"signet\""),
            );
        }
        response
    }
}
