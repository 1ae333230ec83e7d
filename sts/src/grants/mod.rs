//! The token endpoint's grants, all under one contract:
//!
//! 1. `GrantRequest::parse` reads the form into the grant's `Request` (serde: a missing or
//!    malformed parameter is `invalid_request`, an unknown grant `unsupported_grant_type`);
//! 2. `token` checks once that the authenticated client may use the grant;
//! 3. the grant's `validate(&Context, Request) -> Validated` checks the request with explicit
//!    inputs only: no store, no clock beyond `ctx.now`, no side effect;
//! 4. its `issue(&Context, Validated)` does the store work its rules need (take a code, use a
//!    refresh token once, answer a poll) and issues the tokens, at `ctx.now`.
//!
//! A new grant is one file with `Request`, `validate` and `issue`, and one variant below. The
//! grants of a flow that also has a browser side live with that flow:
//! `authorization_code::grant` and `device::grant`; the others are here.

pub mod audiences;
pub mod client_credentials;
pub mod context;
pub mod refresh_token;
pub mod supported;
pub mod token_exchange;
pub mod user_tokens;

use serde::Deserialize;
use serde_json::Value;
use signet_crds::v1alpha1::GrantType;

use crate::error::OAuthError;
use crate::form::Form;
use crate::{authorization_code, device};

pub use context::Context;

/// The values of a space-separated `scope` parameter (RFC 6749 §3.3), empty ones skipped.
pub fn split_scopes(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Answers a token request of `ctx.client`: the token response's JSON body.
pub async fn token(ctx: &Context<'_>, request: GrantRequest) -> Result<Value, OAuthError> {
    let (grant_type, refusal) = request.grant_type();
    if !ctx.client.may_use(grant_type) {
        return Err(OAuthError::unauthorized_client(refusal));
    }
    match request {
        GrantRequest::ClientCredentials(request) => {
            let validated = client_credentials::validate(ctx, request)?;
            client_credentials::issue(ctx, validated).await
        }
        GrantRequest::AuthorizationCode(request) => {
            let validated = authorization_code::grant::validate(ctx, request)?;
            authorization_code::grant::issue(ctx, validated).await
        }
        GrantRequest::RefreshToken(request) => {
            let validated = refresh_token::validate(ctx, request)?;
            refresh_token::issue(ctx, validated).await
        }
        GrantRequest::DeviceCode(request) => {
            let validated = device::grant::validate(ctx, request)?;
            device::grant::issue(ctx, validated).await
        }
        GrantRequest::TokenExchange(request) => {
            let validated = token_exchange::validate(ctx, request)?;
            token_exchange::issue(ctx, validated).await
        }
    }
}

/// A token request, by `grant_type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "grant_type")]
pub enum GrantRequest {
    /// RFC 6749 §4.4.
    #[serde(rename = "client_credentials")]
    ClientCredentials(client_credentials::Request),
    /// RFC 6749 §4.1.3.
    #[serde(rename = "authorization_code")]
    AuthorizationCode(crate::authorization_code::grant::Request),
    /// RFC 6749 §6.
    #[serde(rename = "refresh_token")]
    RefreshToken(refresh_token::Request),
    /// RFC 8628 §3.4.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode(crate::device::grant::Request),
    /// RFC 8693 §2.1.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange(token_exchange::Request),
}

impl GrantRequest {
    /// The client's grant type this request needs, and what a client without it is told.
    fn grant_type(&self) -> (GrantType, &'static str) {
        match self {
            GrantRequest::ClientCredentials(_) => (
                GrantType::ClientCredentials,
                "this client may not use client_credentials",
            ),
            GrantRequest::AuthorizationCode(_) => (
                GrantType::AuthorizationCode,
                "this client may not use the authorization code grant",
            ),
            GrantRequest::RefreshToken(_) => (
                GrantType::RefreshToken,
                "this client may not use refresh tokens",
            ),
            GrantRequest::DeviceCode(_) => (
                GrantType::DeviceCode,
                "this client may not use the device flow",
            ),
            GrantRequest::TokenExchange(_) => (
                GrantType::TokenExchange,
                "this client may not use token exchange",
            ),
        }
    }

    /// The grant type, for metrics.
    pub fn name(&self) -> &'static str {
        match self {
            GrantRequest::ClientCredentials(_) => "client_credentials",
            GrantRequest::AuthorizationCode(_) => "authorization_code",
            GrantRequest::RefreshToken(_) => "refresh_token",
            GrantRequest::DeviceCode(_) => "device_code",
            GrantRequest::TokenExchange(_) => "token_exchange",
        }
    }
}

impl GrantRequest {
    /// Parses the form through serde: no grant_type is invalid_request, an unknown one
    /// unsupported_grant_type, a known one with bad parameters invalid_request.
    pub fn parse(form: &Form) -> Result<Self, OAuthError> {
        let Some(grant_type) = form.get("grant_type") else {
            return Err(OAuthError::invalid_request("grant_type is required"));
        };
        // Straight from the form's pairs: no JSON object built on the token endpoint's path.
        let pairs =
            serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(form.pairs());
        Self::deserialize(pairs).map_err(|error| {
            if supported::GRANT_TYPES.contains(&grant_type) {
                OAuthError::invalid_request(format!("bad {grant_type} request: {error}"))
            } else {
                OAuthError::unsupported_grant_type()
            }
        })
    }
}
