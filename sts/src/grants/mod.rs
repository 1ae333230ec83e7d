//! Grants: the request parsed into a tagged enum, then one module per grant with a validate
//! phase (no side effects) and an issue phase. `now` comes in; nothing reads the clock.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
pub mod user_tokens;

use serde::Deserialize;

use crate::http::error::OAuthError;
use crate::http::form::Form;

/// A token request, by `grant_type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "grant_type")]
pub enum GrantRequest {
    /// RFC 6749 §4.4.
    #[serde(rename = "client_credentials")]
    ClientCredentials(client_credentials::Request),
    /// RFC 6749 §4.1.3.
    #[serde(rename = "authorization_code")]
    AuthorizationCode(authorization_code::Request),
    /// RFC 6749 §6.
    #[serde(rename = "refresh_token")]
    RefreshToken(refresh_token::Request),
    /// RFC 8628 §3.4.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode(device_code::Request),
}

impl GrantRequest {
    /// The grant type, for metrics.
    pub fn name(&self) -> &'static str {
        match self {
            GrantRequest::ClientCredentials(_) => "client_credentials",
            GrantRequest::AuthorizationCode(_) => "authorization_code",
            GrantRequest::RefreshToken(_) => "refresh_token",
            GrantRequest::DeviceCode(_) => "device_code",
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
        serde_json::from_value(form.to_json()).map_err(|error| {
            if KNOWN.contains(&grant_type) {
                OAuthError::invalid_request(format!("bad {grant_type} request: {error}"))
            } else {
                OAuthError::unsupported_grant_type()
            }
        })
    }
}

/// The grant types this STS implements.
pub const KNOWN: &[&str] = &[
    "authorization_code",
    "client_credentials",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
];
