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
    /// Parses the form: no grant_type is invalid_request, an unknown one unsupported_grant_type.
    pub fn parse(form: &Form) -> Result<Self, OAuthError> {
        match form.get("grant_type") {
            None => Err(OAuthError::invalid_request("grant_type is required")),
            Some("client_credentials") => {
                Ok(Self::ClientCredentials(client_credentials::Request {
                    scope: form.get("scope").map(str::to_owned),
                    resource: form.get("resource").map(str::to_owned),
                }))
            }
            Some(_) => Err(OAuthError::unsupported_grant_type()),
        }
    }
}
