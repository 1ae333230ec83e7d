//! The snapshot: the one contract between the operator and the STS.
//!
//! `schemaVersion` is `major.minor`. A minor bump only adds optional fields, which an older STS
//! ignores; a major bump is refused by an older STS, which keeps its last good snapshot. So the
//! operator and the STS can be upgraded in either order within a major version.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::v1alpha1::{AccessTokenFormat, Algorithm, AuthMethod, ClientType, GrantType, StoreType};

/// The schema version this build writes.
pub const SCHEMA_VERSION: &str = "1.0";

/// Compiled configuration of one TokenService.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// `major.minor` of this format.
    pub schema_version: String,
    /// Hex SHA-256 of the content with this field empty; see [`Snapshot::seal`].
    pub hash: String,
    /// The issuer URL.
    pub issuer: String,
    /// `Cache-Control: max-age` of the JWKS, in seconds.
    pub jwks_max_age_secs: u64,
    /// Effective default lifetimes, in seconds.
    pub lifetimes: LifetimeSecs,
    /// SSO session lifetime, in seconds.
    pub session_lifetime_secs: u64,
    /// Remembered consent.
    #[serde(default)]
    pub consent_lifetime_secs: u64,
    /// Whether tenant-chosen outbound calls may reach private and loopback addresses.
    pub allow_private_network_targets: bool,
    /// Default algorithm of ID tokens.
    pub id_token_signing_alg: Algorithm,
    /// Algorithm of access tokens.
    pub access_token_signing_alg: Algorithm,
    /// Operational store.
    pub store: StoreSettings,
    /// Login page title and logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding_title: Option<String>,
    /// Login page logo URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding_logo_url: Option<String>,
    /// Clients, sorted by client id.
    pub clients: Vec<Client>,
    /// API scopes, sorted by name.
    pub scopes: Vec<Scope>,
    /// Identity providers, in the TokenService's order.
    pub identity_providers: Vec<IdentityProvider>,
    /// Signing keys of every SigningKey of the TokenService, sorted by kid.
    pub keys: Vec<Key>,
}

impl Snapshot {
    /// Computes and stores the content hash. The hash covers every field but itself, over the
    /// canonical JSON (lists are sorted by the compiler, maps are ordered), so equal content
    /// gives an equal hash whatever order the inputs came in.
    pub fn seal(mut self) -> Self {
        self.hash = String::new();
        let bytes = serde_json::to_vec(&self).expect("a snapshot serializes");
        self.hash = hex(&Sha256::digest(&bytes));
        self
    }
}

/// Lifetimes in seconds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LifetimeSecs {
    /// Access tokens.
    pub access_token: u64,
    /// ID tokens.
    pub id_token: u64,
    /// Refresh-token family, from first issue.
    pub refresh_token_absolute: u64,
    /// Refresh token, since last use.
    pub refresh_token_sliding: u64,
    /// Authorization codes.
    pub authorization_code: u64,
    /// Device codes.
    pub device_code: u64,
}

/// Operational store settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StoreSettings {
    /// memory or redis.
    #[serde(rename = "type")]
    pub store_type: StoreType,
    /// The redis URL, credentials included, when type is redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<Redacted>,
    /// Prefix of every key.
    pub key_prefix: String,
}

/// A secret string (a URL with credentials, a private key, an upstream client secret) whose
/// `Debug` never shows it, so it cannot reach a log by accident.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A registered client.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    /// The client_id.
    pub client_id: String,
    /// Namespace of the OidcClient.
    pub namespace: String,
    /// Name of the OidcClient.
    pub name: String,
    /// Display name for the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Confidential or public.
    #[serde(rename = "type")]
    pub client_type: ClientType,
    /// Allowed grants.
    pub grant_types: Vec<GrantType>,
    /// Token endpoint authentication.
    pub auth_method: AuthMethod,
    /// Hex SHA-256 of each secret that currently authenticates the client, with the end of
    /// its validity for a secret in its rotation overlap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_hashes: Vec<SecretHash>,
    /// Redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes granted after resolution (identity scopes and permitted ApiScopes).
    pub allowed_scopes: Vec<String>,
    /// CORS origins.
    pub allowed_cors_origins: Vec<String>,
    /// PKCE required.
    pub require_pkce: bool,
    /// Consent page shown.
    pub require_consent: bool,
    /// First-party: never asks for consent.
    #[serde(default)]
    pub trusted: bool,
    /// ID-token algorithm.
    pub id_token_signing_alg: Algorithm,
    /// Client JWKS for private_key_jwt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Client JWKS URL for private_key_jwt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Effective lifetimes for this client.
    pub lifetimes: LifetimeSecs,
    /// JWT or reference access tokens.
    pub access_token_format: AccessTokenFormat,
    /// Back-channel logout endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_channel_logout_uri: Option<String>,
    /// Identity providers the client's users may use; empty: all.
    pub allowed_identity_providers: Vec<String>,
    /// Static claims for access tokens.
    pub claims: std::collections::BTreeMap<String, String>,
}

/// The hash of a client secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct SecretHash {
    /// Hex SHA-256 of the secret's bytes. Generated secrets carry 256 bits of entropy, so a
    /// plain hash is enough and keeps the token endpoint fast.
    pub sha256: String,
    /// Unix seconds after which this secret stops working (a rotated-out secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<i64>,
}

impl SecretHash {
    /// The hash of `secret`, valid until `not_after`.
    pub fn of(secret: &[u8], not_after: Option<i64>) -> Self {
        Self {
            sha256: hex(&Sha256::digest(secret)),
            not_after,
        }
    }
}

/// An API scope.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// The scope value.
    pub name: String,
    /// Audience of tokens that carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Consent-page name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Consent-page text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// User claims added to access tokens.
    pub user_claims: Vec<String>,
    /// Cannot be deselected.
    pub required: bool,
    /// Highlighted.
    pub emphasize: bool,
}

/// An identity provider with its secret material.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProvider {
    /// Name of the IdentityProvider object.
    pub name: String,
    /// Name on the login page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Type-specific settings.
    pub settings: ProviderSettings,
}

/// Settings of one identity provider type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ProviderSettings {
    /// Users from a Secret: the YAML text of the users list.
    Static {
        /// The users YAML (password hashes inside).
        users: Redacted,
    },
    /// An upstream OpenID Connect provider.
    Oidc(Box<OidcUpstream>),
}

/// An upstream OpenID Connect provider with Signet's credentials there.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OidcUpstream {
    /// Upstream issuer.
    pub issuer: String,
    /// Signet's client id there.
    pub client_id: String,
    /// Signet's client secret there.
    pub client_secret: Redacted,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Claim mappings.
    pub claim_mappings: crate::v1alpha1::ClaimMappings,
    /// Allowed email domains.
    pub allowed_email_domains: Vec<String>,
    /// Allowed groups.
    pub allowed_groups: Vec<String>,
}

/// One published signing key version.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Key {
    /// Key ID.
    pub kid: String,
    /// Algorithm.
    pub alg: Algorithm,
    /// Lifecycle phase.
    pub phase: crate::v1alpha1::KeyPhase,
    /// The public JWK, as published.
    pub public_jwk: serde_json::Value,
    /// PKCS#8 PEM of the private key, for the active and pending versions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_pem: Option<Redacted>,
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
