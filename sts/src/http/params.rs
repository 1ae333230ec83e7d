//! The parameters of an endpoint that takes them either way: the query of a GET, or the form
//! body of a POST (`/authorize`, OIDC Core §3.1.2.1; `/end_session`, RP-Initiated Logout §2).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};

/// The raw `application/x-www-form-urlencoded` parameters, from the query or from the body.
pub struct QueryOrBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for QueryOrBody {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if request.method() == Method::POST {
            let body = Bytes::from_request(request, state)
                .await
                .map_err(IntoResponse::into_response)?;
            return Ok(Self(body));
        }
        let query = request.uri().query().unwrap_or_default();
        Ok(Self(Bytes::copy_from_slice(query.as_bytes())))
    }
}
