//! `IdentityProvider`: where people sign in.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cel;
use super::common::{CommonStatus, SecretKeyRef};

/// A source of people who sign in: users listed in a Secret (`static`) or an upstream
/// OpenID Connect provider (`oidc`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "signet.dev",
    version = "v1alpha1",
    kind = "IdentityProvider",
    namespaced,
    derive = "PartialEq",
    status = "IdentityProviderStatus",
    shortname = "idp",
    category = "signet",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Display Name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("(self.type == 'static') == has(self.static)")
        .message("spec.static is required for type static, and only for it").field_path(".static"),
    validation = Rule::new("(self.type == 'oidc') == has(self.oidc)")
        .message("spec.oidc is required for type oidc, and only for it").field_path(".oidc")
)]
pub struct IdentityProviderSpec {
    /// Kind of provider.
    #[serde(rename = "type")]
    pub provider_type: ProviderType,

    /// Name shown on the login page's provider chooser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,

    /// Settings for type `static`.
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_users: Option<StaticProvider>,

    /// Settings for type `oidc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcProvider>,
}

/// Kind of identity provider.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    /// Users listed in a Secret, with password hashes.
    Static,
    /// An upstream OpenID Connect provider.
    Oidc,
}

/// Users kept in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticProvider {
    /// Secret key holding the users as YAML: a list of entries with username, passwordHash
    /// (argon2id or bcrypt PHC string), sub, email, emailVerified, name and groups.
    pub users_secret_ref: SecretKeyRef,
}

/// An upstream OpenID Connect provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcProvider {
    /// The upstream issuer URL; its discovery document is read from
    /// `<issuer>/.well-known/openid-configuration`.
    #[schemars(schema_with = "cel::issuer")]
    pub issuer: String,

    /// Signet's client_id at the upstream.
    #[schemars(length(min = 1, max = 253))]
    pub client_id: String,

    /// Secret key holding Signet's client secret at the upstream.
    pub client_secret_ref: SecretKeyRef,

    /// Scopes requested from the upstream. Default openid, email, profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "cel::scope_names")]
    pub scopes: Vec<String>,

    /// Which upstream claims become Signet's claims.
    #[serde(default)]
    pub claim_mappings: ClaimMappings,

    /// Only people whose verified email is in one of these domains may sign in. Empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub allowed_email_domains: Vec<String>,

    /// Only people in at least one of these upstream groups may sign in. Empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub allowed_groups: Vec<String>,
}

/// Names of upstream ID-token claims to read. Signet's `sub` is always derived from the
/// upstream issuer and the upstream claim named here, so it is stable and cannot collide
/// across providers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimMappings {
    /// Upstream claim that identifies the person. Default `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub sub: Option<String>,
    /// Upstream claim with the email address. Default `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub email: Option<String>,
    /// Upstream claim that says the email is verified. Default `email_verified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub email_verified: Option<String>,
    /// Upstream claim with the display name. Default `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub name: Option<String>,
    /// Upstream claim with the list of groups. Default `groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub groups: Option<String>,
}

/// Observed state of an IdentityProvider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderStatus {
    /// Generation and conditions.
    #[serde(flatten)]
    pub common: CommonStatus,
}
