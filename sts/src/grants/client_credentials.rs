//! The client credentials grant (RFC 6749 §4.4): a machine gets an access token for APIs.

use serde::Deserialize;
use serde_json::{Value, json};

use super::audiences::granted_audiences;
use super::context::Context;
use crate::error::OAuthError;
use crate::tokens;

/// The request parameters.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// Space-separated scopes; default: every API scope the client may use.
    pub scope: Option<String>,
    /// RFC 8707 resource indicator: one audience.
    pub resource: Option<String>,
}

/// What may be issued.
#[derive(Debug, PartialEq)]
pub struct Validated {
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Audiences of the token.
    pub audiences: Vec<String>,
}

/// Scopes allowed for the client and of APIs, the resource (if named) one of their audiences.
pub fn validate(ctx: &Context<'_>, request: Request) -> Result<Validated, OAuthError> {
    let (loaded, client) = (ctx.loaded, ctx.client);
    let scopes: Vec<String> = match &request.scope {
        Some(s) => super::split_scopes(s),
        None => client
            .allowed_scopes
            .iter()
            .filter(|s| loaded.scopes.contains_key(*s))
            .cloned()
            .collect(),
    };
    for scope in &scopes {
        if !client.allowed_scopes.contains(scope) || !loaded.scopes.contains_key(scope) {
            return Err(OAuthError::invalid_scope(format!(
                "scope {scope} is not allowed for this client"
            )));
        }
    }
    let mut audiences = granted_audiences(loaded, &scopes);
    if let Some(resource) = &request.resource {
        if !audiences.contains(resource) {
            return Err(OAuthError::invalid_target(format!(
                "{resource} is not an audience of the granted scopes"
            )));
        }
        audiences = vec![resource.clone()];
    }
    if audiences.is_empty() {
        return Err(OAuthError::invalid_scope(
            "request a scope of an API: a token needs an audience",
        ));
    }
    Ok(Validated { scopes, audiences })
}

/// An access token for the client itself (RFC 6749 §4.4.3: no refresh token).
pub async fn issue(ctx: &Context<'_>, granted: Validated) -> Result<Value, OAuthError> {
    let client = ctx.client;
    let claims = tokens::AccessClaims::new(
        ctx.loaded,
        client,
        &client.client_id,
        &granted.scopes,
        &granted.audiences,
        ctx.now,
        true,
    );
    let token = tokens::issue(ctx.loaded, ctx.store, client, &claims, claims.exp, ctx.now).await?;
    Ok(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": client.lifetimes.access_token,
        "scope": granted.scopes.join(" "),
    }))
}
