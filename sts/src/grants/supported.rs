//! The grant types this STS implements, by name: discovery lists them, and parsing tells an
//! unsupported grant from a malformed request of a supported one.

/// The names, as in `grant_type`.
pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "client_credentials",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:token-exchange",
];
