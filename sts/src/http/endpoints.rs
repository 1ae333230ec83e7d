//! Endpoint handlers: parse, authenticate, validate, issue. Each reads one snapshot `Arc`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::now;
use crate::app::App;
use crate::client_auth;
use crate::error::OAuthError;
use crate::form::Form;
use crate::grants::{self, GrantRequest, refresh_token};
use crate::loaded::Loaded;

use crate::tokens;

fn current(app: &App) -> Result<Arc<Loaded>, OAuthError> {
    app.loaded
        .load_full()
        .ok_or_else(|| OAuthError::temporarily_unavailable("no snapshot loaded yet"))
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn json_response(body: String, cache: &str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(cache) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

/// The raw `Authorization` header, for client authentication.
pub(super) fn authorization(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
}

fn form(body: &Bytes) -> Result<Form, OAuthError> {
    Form::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))
}

/// OIDC Discovery and RFC 8414.
pub async fn discovery(State(app): State<Arc<App>>) -> Result<Response, OAuthError> {
    Ok(json_response(
        current(&app)?.discovery.clone(),
        "public, max-age=60",
    ))
}

/// The JWKS, cacheable for the TokenService's max-age.
pub async fn jwks(State(app): State<Arc<App>>) -> Result<Response, OAuthError> {
    let loaded = current(&app)?;
    Ok(json_response(
        loaded.jwks.clone(),
        &format!("public, max-age={}", loaded.snapshot.jwks_max_age_secs),
    ))
}

/// `/readyz`: ready once a snapshot serves; the detail says when a newer one was refused.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let refused = app
        .refused
        .lock()
        .expect("readyz lock")
        .clone()
        .map(|r| r.reason);
    match (app.loaded.load().as_ref(), refused) {
        (None, reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no snapshot loaded{}",
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ),
        )
            .into_response(),
        (Some(l), None) => {
            (StatusCode::OK, format!("ok: snapshot {}", l.snapshot.hash)).into_response()
        }
        (Some(l), Some(r)) => (
            StatusCode::OK,
            format!(
                "ok: snapshot {}; a newer snapshot was refused: {r}",
                l.snapshot.hash
            ),
        )
            .into_response(),
    }
}

/// The token endpoint.
pub async fn token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let loaded = current(&app)?;
    let now = now();
    let form = form(&body)?;
    let client =
        client_auth::authenticate(&loaded, &app, authorization(&headers), &form, now).await?;
    let request = GrantRequest::parse(&form)?;
    let grant = request.name();
    let store = app.store.load_full();
    let context = grants::Context {
        loaded: &loaded,
        store: &store,
        client,
        now,
        workload: Some(client_auth::workload_checkers(&app)),
    };
    let response = grants::token(&context, request).await?;
    app.metrics
        .tokens
        .get_or_create(&crate::metrics::GrantLabels { grant })
        .inc();
    Ok(no_store(axum::Json(response).into_response()))
}

/// May `caller` learn about a token with these claims? Tokens issued to it, and tokens whose
/// audience is the audience of a scope it may use (a resource server introspecting tokens
/// meant for it).
fn may_introspect(loaded: &Loaded, caller: &signet_crds::snapshot::Client, claims: &Value) -> bool {
    // RFC 7662 §4: only a caller entitled to the token learns about it: the token's own
    // client, or a resource server that an audience's owner declared on its ApiScope. Being
    // allowed to *request* a scope for that audience is not enough.
    if claims["client_id"].as_str() == Some(caller.client_id.as_str()) {
        return true;
    }
    let audiences = tokens::audiences(&claims["aud"]);
    loaded.snapshot.scopes.iter().any(|scope| {
        scope
            .audience
            .as_deref()
            .is_some_and(|aud| audiences.contains(&aud))
            && scope.resource_servers.contains(&caller.client_id)
    })
}

/// The common start of introspection and revocation: the snapshot, the time, the
/// authenticated caller's client_id and the `token` parameter.
async fn token_call(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
    allow_public: bool,
) -> Result<(Arc<Loaded>, i64, String, String), OAuthError> {
    let loaded = current(app)?;
    let now = now();
    let form = form(body)?;
    let caller =
        client_auth::authenticate(&loaded, app, authorization(headers), &form, now).await?;
    // A public client may revoke its own tokens (RFC 7009 §2.1) but not introspect: it has
    // no credentials, so anyone could claim to be it.
    if !allow_public && caller.auth_method == signet_crds::v1alpha1::AuthMethod::None {
        return Err(OAuthError::invalid_client());
    }
    let caller = caller.client_id.clone();
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?
        .to_owned();
    Ok((loaded, now, caller, token))
}

/// RFC 7662 introspection.
pub async fn introspect(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (loaded, now, caller_id, token) = token_call(&app, &headers, &body, false).await?;
    let caller = &loaded.clients[&caller_id];
    let token = token.as_str();
    let inactive = || no_store(axum::Json(json!({"active": false})).into_response());
    let Some(claims) = tokens::resolve(&loaded, &app.store.load(), token, now).await? else {
        return Ok(inactive());
    };
    if !may_introspect(&loaded, caller, &claims) {
        return Ok(inactive());
    }
    let mut body = json!({"active": true, "token_type": "Bearer"});
    for name in [
        "scope",
        "client_id",
        "sub",
        "exp",
        "iat",
        "nbf",
        "iss",
        "aud",
        "jti",
        // RFC 8693 §4.1: who acts for the subject (exchanged tokens).
        "act",
    ] {
        if !claims[name].is_null() {
            body[name] = claims[name].clone();
        }
    }
    Ok(no_store(axum::Json(body).into_response()))
}

/// RFC 7009 revocation: a client revokes only its own tokens; anything else answers 200 too.
pub async fn revoke(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (loaded, now, caller_id, token) = token_call(&app, &headers, &body, true).await?;
    let caller = &loaded.clients[&caller_id];
    let token = token.as_str();
    let unavailable =
        |e: crate::store::Unavailable| OAuthError::temporarily_unavailable(e.to_string());
    let store = app.store.load_full();
    // A refresh token ends its whole family (RFC 7009 §2.1 allows it; a family shares one grant).
    if token.split('.').count() != 3
        && let Some(record) = refresh_token::live(&store, token, now).await?
    {
        if record.grant.client_id == caller.client_id {
            crate::grants::user_tokens::revoke_family(
                &store,
                &record.family,
                record.absolute_expiry,
                now,
            )
            .await?;
        }
        return Ok(no_store(StatusCode::OK.into_response()));
    }
    if let Some(claims) = tokens::resolve(&loaded, &store, token, now).await?
        && claims["client_id"].as_str() == Some(caller.client_id.as_str())
    {
        let exp = claims["exp"].as_i64().unwrap_or(now);
        // Denied by its jti in either form: tokens exchanged from it name only that.
        let jti = claims["jti"].as_str().unwrap_or_default();
        store.deny(jti, exp, now).await.map_err(unavailable)?;
        if token.split('.').count() != 3 {
            store
                .delete_reference(token, now)
                .await
                .map_err(unavailable)?;
        }
    }
    Ok(no_store(StatusCode::OK.into_response()))
}
