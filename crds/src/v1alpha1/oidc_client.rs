//! `OidcClient`: an application that signs people in or calls APIs.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cel;
use super::common::{CommonStatus, KubeDuration, Lifetimes, SecretKeyRef};
use super::signing_key::Algorithm;

/// Claim names that a static client claim may not take: the STS sets them itself, or an API
/// reads them as the identity of a person or a tenant, so a tenant that set them could forge
/// identity or audience. Token claims (RFC 7519, RFC 9068, RFC 8693, OIDC Core §2), the
/// standard claims of OIDC Core §5.1, and identity claims other issuers made common (Entra ID's
/// `upn`/`oid`/`tid`, Google's `hd`). The CEL rule and `compile()` both read this one list.
pub const REGISTERED_CLAIMS: &[&str] = &[
    // JWT, access token and ID token claims.
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "azp",
    "nonce",
    "auth_time",
    "acr",
    "amr",
    "sid",
    "at_hash",
    "c_hash",
    "s_hash",
    "cnf",
    "act",
    "may_act",
    // Signet's list of the tokens an exchanged token derives from (its revocation follows them).
    "signet_origins",
    "typ",
    "events",
    "groups",
    "roles",
    "entitlements",
    // OIDC Core §5.1 standard claims.
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    // Identity claims of other issuers that APIs commonly trust.
    "upn",
    "oid",
    "tid",
    "hd",
    "idp",
    "unique_name",
];

/// Whether `client_id` looks like the `sub` Signet gives a workload's own identity
/// (`system:serviceaccount:...`, `CLUSTER/system:serviceaccount:...`): a client_credentials
/// token's `sub` is its client id, so such an id would pass for that workload.
pub fn is_service_account_like(client_id: &str) -> bool {
    client_id.starts_with("system:") || client_id.contains("/system:")
}

/// Whether a static claim may not use `name` (compared without case, as some verifiers map
/// claims case-insensitively).
pub fn is_registered_claim(name: &str) -> bool {
    REGISTERED_CLAIMS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
}

/// An OAuth 2.0 / OpenID Connect client. Apply it in the app's namespace; the operator
/// registers it with the TokenService and, for a confidential client, writes its credentials
/// to a Secret beside it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "signet.dev",
    version = "v1alpha1",
    kind = "OidcClient",
    namespaced,
    derive = "PartialEq",
    status = "OidcClientStatus",
    shortname = "oidc",
    category = "signet",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Client ID","type":"string","jsonPath":".status.clientId"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","priority":1,"jsonPath":".status.secretName"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.clientId) == has(oldSelf.clientId) && (!has(self.clientId) || self.clientId == oldSelf.clientId)")
        .message("clientId cannot be set, changed or removed after creation").field_path(".clientId"),
    validation = Rule::new("!has(self.clientId) || !(self.clientId.startsWith('system:') || self.clientId.contains('/system:'))")
        .message("clientId may not look like a ServiceAccount (system:..., CLUSTER/system:...): a machine's sub is its client id").field_path(".clientId"),
    validation = Rule::new("self.type != 'public' || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod == 'none'")
        .message("a public client must use tokenEndpointAuthMethod none").field_path(".tokenEndpointAuthMethod"),
    validation = Rule::new("self.type != 'confidential' || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'none'")
        .message("a confidential client needs a tokenEndpointAuthMethod other than none").field_path(".tokenEndpointAuthMethod"),
    validation = Rule::new("self.type != 'public' || !self.grantTypes.exists(g, g == 'client_credentials')")
        .message("a public client cannot use the client_credentials grant").field_path(".grantTypes"),
    validation = Rule::new("self.type != 'public' || !self.grantTypes.exists(g, g == 'urn:ietf:params:oauth:grant-type:token-exchange')")
        .message("a public client cannot use token exchange: anyone could act as it").field_path(".grantTypes"),
    validation = Rule::new("self.type != 'public' || self.requirePkce")
        .message("a public client must require PKCE").field_path(".requirePkce"),
    validation = Rule::new("self.type != 'public' || !has(self.secret)")
        .message("a public client has no secret").field_path(".secret"),
    validation = Rule::new("self.type == 'public' || !has(self.redirectUris) || self.redirectUris.all(u, u.startsWith('https://') || u.startsWith('http://'))")
        .message("private-use URI schemes (RFC 8252) are allowed only for public clients").field_path(".redirectUris"),
    validation = Rule::new("self.type == 'public' || !has(self.postLogoutRedirectUris) || self.postLogoutRedirectUris.all(u, u.startsWith('https://') || u.startsWith('http://'))")
        .message("private-use URI schemes (RFC 8252) are allowed only for public clients").field_path(".postLogoutRedirectUris"),
    validation = Rule::new("!self.grantTypes.exists(g, g == 'authorization_code') || (has(self.redirectUris) && size(self.redirectUris) > 0)")
        .message("the authorization_code grant needs at least one redirectUris entry").field_path(".redirectUris"),
    validation = Rule::new("!has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'private_key_jwt' || has(self.jwks) || has(self.jwksUri)")
        .message("private_key_jwt needs jwks or jwksUri").field_path(".tokenEndpointAuthMethod"),
    validation = Rule::new("!(has(self.jwks) && has(self.jwksUri))")
        .message("set jwks or jwksUri, not both").field_path(".jwksUri"),
    validation = Rule::new("has(self.workloadIdentity) == (has(self.tokenEndpointAuthMethod) && self.tokenEndpointAuthMethod == 'kubernetes_service_account')")
        .message("tokenEndpointAuthMethod kubernetes_service_account and workloadIdentity go together").field_path(".workloadIdentity"),
    validation = Rule::new("!has(self.workloadIdentity) || !has(self.secret)")
        .message("a client that authenticates with ServiceAccount tokens has no secret").field_path(".secret")
)]
pub struct OidcClientSpec {
    /// The OAuth client_id. Default `<namespace>.<name>`. A custom id must still start with
    /// `<namespace>.` unless the TokenService allows custom ids for this namespace, and may not
    /// look like a ServiceAccount's subject (`system:...`, `CLUSTER/system:...`). Cannot be
    /// set, changed or removed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[\x21-\x7E]+$"))]
    pub client_id: Option<String>,

    /// The TokenService (by name, in its namespace as `namespace/name` or in this namespace as
    /// `name`) that serves this client. Needed only when several TokenServices select it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub token_service_ref: Option<String>,

    /// Name shown to people on the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,

    /// `confidential` (a server that keeps a secret) or `public` (a SPA, mobile or CLI app,
    /// which cannot). Public clients use PKCE and no secret.
    #[serde(default, rename = "type")]
    pub client_type: ClientType,

    /// Grants the client may use.
    #[serde(default = "default_grant_types")]
    #[schemars(length(min = 1, max = 4))]
    pub grant_types: Vec<GrantType>,

    /// Redirect URIs, matched exactly. https, or http on a loopback host (any port matches for
    /// `http://127.0.0.1` and `http://[::1]`, RFC 8252 §7.3); private-use schemes such as
    /// `com.example.app:/callback` only for public clients. No fragments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "cel::redirect_uris")]
    pub redirect_uris: Vec<String>,

    /// Where the client may ask to return after logout, matched exactly; same rules as
    /// redirectUris.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "cel::redirect_uris")]
    pub post_logout_redirect_uris: Vec<String>,

    /// Scopes the client may request: identity scopes (openid, profile, email, address, phone,
    /// offline_access) and ApiScope names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "cel::scope_names")]
    pub allowed_scopes: Vec<String>,

    /// Browser origins (`https://app.example`) allowed to call the token, userinfo,
    /// revocation, discovery and JWKS endpoints (CORS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "cel::origins")]
    pub allowed_cors_origins: Vec<String>,

    /// Require PKCE (S256) on authorization requests. Default true; always true for public
    /// clients.
    #[serde(default = "default_true")]
    pub require_pkce: bool,

    /// Ask the person for consent before issuing tokens. Default false.
    #[serde(default)]
    pub require_consent: bool,

    /// A first-party application of the platform: no consent page, not even for
    /// offline_access (which otherwise always asks). Default false.
    #[serde(default)]
    pub trusted: bool,

    /// Algorithm for this client's ID tokens; default the TokenService's idTokenSigningAlg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signing_alg: Option<Algorithm>,

    /// How the client authenticates at the token endpoint. Default `client_secret_basic` for
    /// confidential clients and `none` for public ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<AuthMethod>,

    /// The ServiceAccounts whose tokens authenticate as this client
    /// (tokenEndpointAuthMethod `kubernetes_service_account`): no secret at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<WorkloadIdentity>,

    /// The client's public keys for private_key_jwt, as a JWK Set (RFC 7517).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Jwks>,

    /// https URL of the client's JWK Set for private_key_jwt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cel::endpoint")]
    pub jwks_uri: Option<String>,

    /// Where the client's credentials come from and go to. Confidential clients only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ClientSecretSpec>,

    /// Lifetime overrides for this client; unset fields inherit the TokenService's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetimes: Option<Lifetimes>,

    /// Format of access tokens: `jwt` (RFC 9068, verifiable offline) or `reference` (opaque,
    /// resolved by introspection, revocable at once).
    #[serde(default)]
    pub access_token_format: AccessTokenFormat,

    /// Back-channel logout endpoint (OpenID Back-Channel Logout 1.0), https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cel::endpoint")]
    pub back_channel_logout_uri: Option<String>,

    /// IdentityProviders (by name) this client's users may sign in with; default all of the
    /// TokenService's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    pub allowed_identity_providers: Vec<String>,

    /// Static claims added to this client's access tokens. Registered and identity claim names
    /// (iss, sub, aud, exp, client_id, scope, groups, email, preferred_username, name, upn,
    /// ...) are refused, in any letter case.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32), inner(length(max = 1024)))]
    #[x_kube(validation = Rule::new(format!("self.all(k, size(k) <= 128 && !(k.lowerAscii() in {}))", registered_claims_cel()))
        .message("static claims may not use registered or identity claim names (iss, sub, aud, exp, client_id, scope, groups, email, preferred_username, name, upn, ...) or names over 128 characters"))]
    pub claims: BTreeMap<String, String>,
}

fn registered_claims_cel() -> String {
    let quoted: Vec<String> = REGISTERED_CLAIMS.iter().map(|c| format!("'{c}'")).collect();
    format!("[{}]", quoted.join(", "))
}

fn default_true() -> bool {
    true
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode]
}

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// A server-side application that keeps a secret.
    #[default]
    Confidential,
    /// A SPA, mobile or CLI application that cannot keep a secret.
    Public,
}

/// OAuth grant types Signet implements.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum GrantType {
    /// Authorization code (RFC 6749 §4.1), with PKCE.
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// Client credentials (RFC 6749 §4.4), for machines.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// Refresh token (RFC 6749 §6), with rotation.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// Device authorization (RFC 8628).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// Token exchange (RFC 8693): an API that received a person's token gets one for the next
    /// API, acting for that person where that API's owner allows it (`ApiScope.spec.delegation`);
    /// a workload exchanges its ServiceAccount token for a token of its own identity.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// Client authentication at the token endpoint (OIDC Core §9, RFC 7523).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with client_id and secret.
    ClientSecretBasic,
    /// client_id and client_secret in the form body.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523).
    PrivateKeyJwt,
    /// The pod's ServiceAccount token as a client assertion, with client_id; the
    /// ServiceAccounts are named in workloadIdentity (Signet's profile, docs/workload-identity.md).
    KubernetesServiceAccount,
    /// No authentication: public clients.
    None,
}

/// The names of a ServiceAccount: lower-case DNS subdomain names, no namespace (`[.]`, not an
/// escaped dot: the pattern goes into a CEL string literal as it is).
pub const SERVICE_ACCOUNT_NAME: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Which pods may authenticate as a client: by ServiceAccount, in the client's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIdentity {
    /// Names of ServiceAccounts in this OidcClient's namespace. Another namespace's cannot be
    /// named: a tenant binds only its own workloads.
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 253)))]
    #[x_kube(validation = Rule::new(format!("self.all(n, n.matches('{SERVICE_ACCOUNT_NAME}'))"))
        .message("serviceAccounts are names of ServiceAccounts in this OidcClient's namespace (no namespace, no 'system:serviceaccount:' prefix): another namespace's ServiceAccount cannot be bound"))]
    pub service_accounts: Vec<String>,
    /// The cluster those ServiceAccounts live in: the name of one of the TokenService's
    /// `trustedClusters`, whose tokens are checked offline. Unset: the cluster Signet runs in,
    /// whose API server reviews each token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub cluster: Option<String>,
}

/// Format of access tokens.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessTokenFormat {
    /// Signed JWT (RFC 9068).
    #[default]
    Jwt,
    /// Opaque token resolved by introspection.
    Reference,
}

/// A JWK Set (RFC 7517 §5).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Jwks {
    /// The public keys, as JWK objects.
    #[schemars(length(min = 1, max = 16))]
    pub keys: Vec<Jwk>,
}

/// One JWK (RFC 7517 §4), kept as given; the operator checks it and reports problems in a
/// condition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct Jwk(pub serde_json::Map<String, serde_json::Value>);

/// Where a confidential client's secret comes from and where it is delivered.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.name) && has(self.existingSecretRef))")
    .message("set name (generated secret) or existingSecretRef (your own secret), not both")
    .field_path(".existingSecretRef"))]
pub struct ClientSecretSpec {
    /// Generated mode (the default): name of the Secret the operator creates in this
    /// namespace, with keys client_id, client_secret and issuer. Default `<name>-oidc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,

    /// Reference mode: a key of your own Secret that holds the client secret (at least 32
    /// characters). The operator reads it and never writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_secret_ref: Option<SecretKeyRef>,

    /// After a rotation (annotation `signet.dev/rotate-secret`), how long the previous secret
    /// keeps working. Default 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("720h"))]
    pub rotation_overlap: Option<KubeDuration>,
}

/// Observed state of an OidcClient.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcClientStatus {
    /// Generation and conditions (Ready, SecretReady, Conflict, ScopesResolved).
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The client_id in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The Secret that holds the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// The issuer URL of the TokenService that serves this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}
