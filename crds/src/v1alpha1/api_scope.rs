//! `ApiScope`: an API and the scope that grants access to it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cel;
use super::common::{CommonStatus, LabelSelector};

/// A scope that clients request to call an API, and the API's audience. Scope names and
/// audiences are global per TokenService: the older object keeps one, a newer one gets a
/// Conflict condition.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "signet.dev",
    version = "v1alpha1",
    kind = "ApiScope",
    namespaced,
    derive = "PartialEq",
    status = "ApiScopeStatus",
    shortname = "apiscope",
    category = "signet",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Scope","type":"string","jsonPath":".spec.name"}"#,
    printcolumn = r#"{"name":"Audience","type":"string","jsonPath":".spec.audience"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApiScopeSpec {
    /// The scope value clients request (RFC 6749 §3.3: printable ASCII, no spaces).
    #[schemars(schema_with = "cel::scope_name")]
    pub name: String,

    /// Name shown on the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,

    /// Longer text shown on the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,

    /// The API's resource identifier: the `aud` of access tokens that carry this scope, and
    /// the value of an RFC 8707 `resource` parameter. May not equal a client id or the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub audience: Option<String>,

    /// User claims added to access tokens that carry this scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 128)))]
    pub user_claims: Vec<String>,

    /// The person cannot deselect this scope on the consent page.
    #[serde(default)]
    pub required: bool,

    /// Highlight this scope on the consent page (for sensitive access).
    #[serde(default)]
    pub emphasize: bool,

    /// Namespaces whose clients may use this scope. Unset: only this scope's own namespace.
    /// One team cannot grant itself another team's API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_client_namespaces: Option<LabelSelector>,

    /// The API's own clients (its resource servers), by OidcClient name and namespace (default:
    /// this scope's namespace). Only these, and a token's own client, learn anything about a
    /// token for this audience at introspection (RFC 7662 §4); everyone else is told
    /// `{"active": false}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub resource_servers: Vec<ClientRef>,

    /// Who may act for a person towards this API (RFC 8693 token exchange). Unset: nobody; a
    /// token for this API is then only ever issued to the client the person signed in to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<Delegation>,

    /// The TokenService (`name` or `namespace/name`) that serves this scope; needed only when
    /// several select it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub token_service_ref: Option<String>,
}

/// Delegation into an API: the clients that may exchange a person's token for a token to it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delegation {
    /// The clients (by OidcClient name and namespace, default this scope's namespace) that may
    /// exchange a token addressed to them for a token to this API, acting for its subject. Each
    /// must also be in a namespace that `allowedClientNamespaces` admits.
    #[schemars(length(max = 32))]
    pub allowed_clients: Vec<ClientRef>,
}

/// An OidcClient by name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientRef {
    /// Name of the OidcClient.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Its namespace. Default: the referring object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// Observed state of an ApiScope.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiScopeStatus {
    /// Generation and conditions (Ready, Conflict, Ambiguous, Restricted).
    #[serde(flatten)]
    pub common: CommonStatus,
}
