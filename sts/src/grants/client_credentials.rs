//! The client credentials grant (RFC 6749 §4.4): a machine gets an access token for APIs.

use serde::Deserialize;
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::GrantType;

use crate::compile_scope::granted_audiences;
use crate::http::error::OAuthError;
use crate::loaded::Loaded;

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

/// Validate phase: grant allowed, scopes allowed and API scopes, resource known.
pub fn validate(
    loaded: &Loaded,
    client: &Client,
    request: &Request,
) -> Result<Validated, OAuthError> {
    if !client.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use client_credentials",
        ));
    }
    let scopes: Vec<String> = match &request.scope {
        Some(s) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
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
