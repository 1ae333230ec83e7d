//! `TokenService`: one issuer, served by one STS Deployment.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cel;
use super::common::{CommonStatus, KubeDuration, LabelSelector, Lifetimes, SecretKeyRef};
use super::signing_key::Algorithm;

/// An OpenID Connect issuer: its URL, token policy, identity providers, signing keys and
/// operational store. The operator compiles it, with the clients and scopes it selects, into
/// the snapshot that its STS serves.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "signet.dev",
    version = "v1alpha1",
    kind = "TokenService",
    namespaced,
    derive = "PartialEq",
    status = "TokenServiceStatus",
    shortname = "tsvc",
    category = "signet",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Issuer","type":"string","jsonPath":".spec.issuer"}"#,
    printcolumn = r#"{"name":"Clients","type":"integer","jsonPath":".status.clients"}"#,
    printcolumn = r#"{"name":"Serving","type":"string","jsonPath":".status.serving"}"#,
    printcolumn = r#"{"name":"Snapshot","type":"string","priority":1,"jsonPath":".status.snapshotHash"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TokenServiceSpec {
    /// The issuer URL, byte for byte as it appears in tokens and discovery. An https URL
    /// without query or fragment; http is allowed only on a loopback host, for local
    /// development.
    #[schemars(schema_with = "cel::issuer")]
    pub issuer: String,

    /// `Cache-Control: max-age` of the JWKS. A SigningKey's propagationTime should be at least
    /// this plus clock skew. Default 10m, at most 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("24h"))]
    pub jwks_max_age: Option<KubeDuration>,

    /// Default token lifetimes for every client of this issuer.
    #[serde(default)]
    pub lifetimes: Lifetimes,

    /// Lifetime of a signed-in session (SSO cookie). Default 12h, at most 8760h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("8760h"))]
    pub session_lifetime: Option<KubeDuration>,

    /// How long a person's consent to a client's scopes is remembered. Default 720h, at most
    /// 8760h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("8760h"))]
    pub consent_lifetime: Option<KubeDuration>,

    /// Namespaces whose OidcClients and ApiScopes this issuer serves. Unset: only its own
    /// namespace. An empty selector (`{}`) selects every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_namespace_selector: Option<LabelSelector>,

    /// Namespaces whose OidcClients may choose a clientId that does not start with
    /// `<namespace>.`. Unset: none may, so no tenant can take another's ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_client_id_namespaces: Option<LabelSelector>,

    /// Namespaces, besides this TokenService's own, whose OidcClients may be `trusted` (skip
    /// consent, offline_access included). Trust is the platform's to give: elsewhere a
    /// client's `trusted` is ignored and its `Restricted` condition says so. Unset: only this
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_client_namespaces: Option<LabelSelector>,

    /// The longest lifetimes a client may set for itself; a longer client value is clamped to
    /// this, and its `Restricted` condition says so. Unset: a client may only shorten the
    /// defaults in `lifetimes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_client_lifetimes: Option<Lifetimes>,

    /// Which namespace owns which scope names and audiences. An ApiScope whose name starts
    /// with one of an owner's `scopePrefixes`, or whose audience starts with one of its
    /// `audiencePrefixes`, is served only from that owner's namespace, so no one can take the
    /// name while its holder is deleted and re-created. Names no owner declares go to the
    /// oldest ApiScope that claims them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub api_owners: Vec<ApiOwner>,

    /// Allow outbound calls chosen by tenants (a client's jwksUri or backChannelLogoutUri, an
    /// upstream identity provider) to reach private and loopback addresses. Off by default:
    /// those calls are an SSRF surface.
    #[serde(default)]
    pub allow_private_network_targets: bool,

    /// Other clusters whose ServiceAccount tokens may authenticate workload clients
    /// (`workloadIdentity.cluster` on an OidcClient). Their tokens are checked offline with
    /// each cluster's published keys, so a deleted pod or ServiceAccount is not seen: keep the
    /// projected lifetime short (docs/workload-identity.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(c, self.exists_one(d, d.name == c.name))")
        .message("trustedClusters must have unique names"))]
    pub trusted_clusters: Vec<TrustedCluster>,

    /// IdentityProviders (by name, in this namespace) that people can sign in with, in the
    /// order the login page offers them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    pub identity_providers: Vec<String>,

    /// SigningKeys (by name, in this namespace) whose keys this issuer publishes and signs
    /// with: at most one per algorithm.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4), inner(length(min = 1, max = 253)))]
    pub signing_keys: Vec<String>,

    /// Algorithm that signs ID tokens unless a client asks for another. RS256 by default, since
    /// OpenID Connect requires it and many relying parties accept nothing else.
    #[serde(default = "default_id_token_alg")]
    pub id_token_signing_alg: Algorithm,

    /// Algorithm that signs access tokens. ES256 by default: far cheaper to sign than RSA.
    #[serde(default = "default_access_token_alg")]
    pub access_token_signing_alg: Algorithm,

    /// Where the STS keeps operational state (codes, refresh tokens, sessions, revocations).
    #[serde(default)]
    pub store: StoreSpec,

    /// Look of the login, consent and device pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<Branding>,
}

/// Another cluster whose ServiceAccount tokens Signet accepts (see `trustedClusters`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrustedCluster {
    /// How OidcClients name it in `workloadIdentity.cluster`: a DNS label.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The cluster's ServiceAccount issuer (its API server's `--service-account-issuer`),
    /// exactly as its tokens' `iss` says it.
    #[schemars(schema_with = "cel::platform_https")]
    pub issuer: String,
    /// Its JWK Set: the API server's `/openid/v1/jwks`, or the copy a cloud provider
    /// publishes. Unset: the `jwks_uri` of the issuer's discovery document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cel::platform_https")]
    pub jwks_uri: Option<String>,
    /// PEM CA certificates that sign the TLS certificates of the issuer and JWK Set hosts,
    /// trusted instead of the system's roots for this cluster only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cel::ca_bundle")]
    pub ca_bundle: Option<String>,
    /// Namespaces whose OidcClients may accept this cluster's tokens. A client names
    /// ServiceAccounts of its own namespace's name in that cluster. Unset: only this
    /// TokenService's namespace; `{}` selects every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_namespace_selector: Option<LabelSelector>,
    /// Longest lifetime (exp - iat) of a token accepted from this cluster. Offline, a token
    /// works until it expires even after its pod or ServiceAccount is deleted, so this bounds
    /// that window. Default 1h, at most 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("24h"))]
    pub max_token_lifetime: Option<KubeDuration>,
    /// Allow the issuer and JWK Set to be at private or loopback addresses (an API server
    /// inside the platform's network). Separate from `allowPrivateNetworkTargets`, which opens
    /// the URLs tenants choose.
    #[serde(default)]
    pub allow_private_network: bool,
}

/// A namespace that owns scope names and audiences (see `apiOwners`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiOwner {
    /// The owning namespace.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Scope names starting with one of these belong to the namespace (e.g. `payments.`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 128)))]
    pub scope_prefixes: Vec<String>,
    /// Audiences starting with one of these belong to the namespace (e.g.
    /// `https://payments.example.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 2048)))]
    pub audience_prefixes: Vec<String>,
}

fn default_id_token_alg() -> Algorithm {
    Algorithm::RS256
}

fn default_access_token_alg() -> Algorithm {
    Algorithm::ES256
}

/// The operational store of the STS.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.type != 'redis' || has(self.redis)")
    .message("store.redis is required when store.type is redis").field_path(".redis"))]
pub struct StoreSpec {
    /// `memory` keeps state in the STS process: one replica only. `redis` shares it between
    /// replicas.
    #[serde(default, rename = "type")]
    pub store_type: StoreType,
    /// Connection to redis, when type is `redis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisStore>,
}

/// Kind of operational store.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreType {
    /// In-process memory; valid for a single STS replica only.
    #[default]
    Memory,
    /// A redis server shared by all replicas.
    Redis,
}

/// A redis server, Sentinel set or Cluster for the operational store.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!(has(self.sentinel) && has(self.cluster))")
    .message("store.redis.sentinel and store.redis.cluster exclude each other: name one topology"))]
pub struct RedisStore {
    /// Secret key holding the redis URL (`redis://` or `rediss://` for TLS, credentials
    /// included), in the TokenService's namespace. With `sentinel` or `cluster`, its scheme,
    /// credentials and database apply to every data node and its host is not used.
    pub url_secret_ref: SecretKeyRef,
    /// Prefix of every key this issuer writes. Default: `signet:<namespace>/<name>:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub key_prefix: Option<String>,
    /// A primary with replicas that Redis Sentinel monitors: the STS asks the sentinels for
    /// the primary and asks again after a failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<RedisSentinel>,
    /// A Redis Cluster: the STS learns the slots from the seed nodes and follows MOVED/ASK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<RedisCluster>,
    /// Make single-use and deny-list writes wait until this many replicas have them (redis
    /// `WAIT`), failing the request closed (503) when fewer acknowledge in time. Narrows the
    /// window in which a failover loses such a write (see docs/operations.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_replicas: Option<WaitForReplicas>,
    /// PEM CA certificates that sign the TLS certificates of the data nodes (a `rediss://`
    /// URL) and of the sentinels (`sentinel.tls`), trusted instead of the system's roots: a
    /// private CA, such as cert-manager's `ca.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cel::ca_bundle")]
    pub ca_bundle: Option<String>,
}

/// Sentinels to ask for the primary.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisSentinel {
    /// The name the sentinels monitor the primary under (`sentinel monitor NAME ...`).
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[\x21-\x7E]+$"))]
    pub master_name: String,
    /// `host:port` of each sentinel.
    #[schemars(
        length(min = 1, max = 16),
        inner(length(min = 3, max = 261), regex(pattern = r"^[^\s:/@]+:[0-9]{1,5}$"))
    )]
    pub addresses: Vec<String>,
    /// ACL user at the sentinels, if they require one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub username: Option<String>,
    /// Secret key holding the sentinels' password (`requirepass` or the ACL user's), in the
    /// TokenService's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// Whether the sentinels speak TLS (the data nodes' TLS follows the URL's scheme).
    #[serde(default)]
    pub tls: bool,
}

/// Seed nodes of a Redis Cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisCluster {
    /// `host:port` of nodes to learn the cluster from; one answering is enough.
    #[schemars(
        length(min = 1, max = 16),
        inner(length(min = 3, max = 261), regex(pattern = r"^[^\s:/@]+:[0-9]{1,5}$"))
    )]
    pub nodes: Vec<String>,
}

/// How many replicas a single-use write waits for, and how long.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WaitForReplicas {
    /// Replicas that must acknowledge each write (the replica count for every replica).
    // A CEL rule, not schemars' range: that writes the bounds as floats (`16.0`).
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 16")
        .message("must be from 1 to 16"))]
    pub replicas: i32,
    /// How long a write waits for them before the request fails closed. Default 250ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("5s"))]
    pub timeout: Option<KubeDuration>,
}

/// Branding of the pages that people see.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Branding {
    /// Title shown on the login page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub title: Option<String>,
    /// https URL of a logo shown on the login page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cel::endpoint")]
    pub logo_url: Option<String>,
}

/// Observed state of a TokenService.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenServiceStatus {
    /// Generation and conditions.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Content hash of the snapshot last written for the STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_hash: Option<String>,
    /// Number of clients in the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<i32>,
    /// Number of API scopes in the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<i32>,
    /// Number of identity providers in the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_providers: Option<i32>,
    /// Live STS replicas serving the snapshot last written, of all live ones (`3/3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<String>,
    /// The live STS replicas, by name, with the snapshot each serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub replicas: Vec<ReplicaStatus>,
}

/// One live STS replica, as it reports itself.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// The replica (its pod name).
    #[schemars(length(max = 253))]
    pub name: String,
    /// Hash of the snapshot it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub serving: Option<String>,
    /// Why it refused the snapshot last written, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub refused: Option<String>,
}
