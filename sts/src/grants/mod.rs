//! Grants: the request parsed into a tagged enum, then one module per grant with a validate
//! phase (no side effects) and an issue phase. `now` comes in; nothing reads the clock.

pub mod client_credentials;

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
const KNOWN: &[&str] = &["client_credentials"];
