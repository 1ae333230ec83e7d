//! The snapshot: the one contract between the operator and the STS.
//!
//! `schemaVersion` is `major.minor`. A minor bump only adds optional fields, which an older STS
//! ignores; a major bump is refused by an older STS, which keeps its last good snapshot. So the
//! operator and the STS can be upgraded in either order within a major version.
//!
//! # The hashed form (schema 1.1 and later)
//! What travels is a [`Wire`]: the snapshot's JSON bytes, exactly as the writer serialised them,
//! and a content hash that lives *outside* those bytes (in the `signet.dev/snapshot-hash`
//! annotation of every snapshot Secret). The hash is the lower-case hex SHA-256 of the JSON
//! bytes as received, after gzip is undone, with nothing removed, added or re-ordered; the JSON
//! holds no `hash` member. A reader verifies the bytes it got, then parses them, ignoring
//! members it does not know. It never re-serialises before hashing: a re-serialisation by an
//! older reader would drop a newer minor's fields and change the hash.
//!
//! Schema 1.0 (before this rule) carried the hash inside the JSON, as its second member, over
//! the same bytes with that member's value empty. [`Wire::verify`] still accepts exactly that
//! form, so an STS of this build can serve the snapshot of a 1.0 operator during an upgrade.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::v1alpha1::{AccessTokenFormat, Algorithm, AuthMethod, ClientType, GrantType, StoreType};

/// The schema version this build writes.
pub const SCHEMA_VERSION: &str = "1.6";

/// Compiled configuration of one TokenService.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// `major.minor` of this format.
    pub schema_version: String,
    /// Hex SHA-256 of [`Snapshot::to_json`]; see [`Wire`]. Never part of the hashed bytes:
    /// set by [`Snapshot::seal`] on the writer's side and from the verified [`Wire`] on the
    /// reader's.
    #[serde(default, skip_serializing)]
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
    /// Other clusters whose ServiceAccount tokens are checked offline, by name (schema 1.4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_clusters: Vec<TrustedCluster>,
}

/// Another cluster whose ServiceAccount tokens authenticate the workload clients that name it
/// (schema 1.4).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrustedCluster {
    /// The name clients use.
    pub name: String,
    /// Its tokens' `iss`.
    pub issuer: String,
    /// Its JWK Set; unset: from the issuer's discovery document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// PEM CA certificates trusted for its hosts instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Longest accepted `exp - iat`, in seconds.
    pub max_token_lifetime_secs: u64,
    /// Whether its issuer and JWK Set may be at private or loopback addresses.
    pub allow_private_network: bool,
}

impl Snapshot {
    /// The hashed form: this snapshot as compact JSON, without its hash. Deterministic: lists
    /// are sorted by the compiler and maps are ordered, so equal content gives equal bytes
    /// whatever order the inputs came in.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a snapshot serializes")
    }

    /// The bytes to send and the hash that names them.
    pub fn to_wire(&self) -> Wire {
        Wire::of(self.to_json())
    }

    /// Computes and stores the content hash.
    pub fn seal(mut self) -> Self {
        self.hash = content_hash(&self.to_json());
        self
    }
}

/// A snapshot as it travels: the exact JSON bytes and the hash claimed for them.
#[derive(Clone, PartialEq, Eq)]
pub struct Wire {
    /// Hex SHA-256 of `json` (schema 1.1 and later).
    pub hash: String,
    /// The JSON bytes, decompressed, exactly as written.
    pub json: Vec<u8>,
}

impl fmt::Debug for Wire {
    // The bytes hold private keys and secret hashes: only their size is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wire")
            .field("hash", &self.hash)
            .field("bytes", &self.json.len())
            .finish()
    }
}

/// What a reader needs to know before it trusts the bytes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionOnly {
    schema_version: String,
}

/// The beginning of a schema 1.0 snapshot, whose hash sat inside the hashed JSON.
const LEGACY_PREFIX: &[u8] = br#"{"schemaVersion":"1.0","hash":""#;

impl Wire {
    /// `json` named by its own content hash, as a writer sends it.
    pub fn of(json: Vec<u8>) -> Self {
        Self {
            hash: content_hash(&json),
            json,
        }
    }

    /// The `schemaVersion` the bytes declare, read without trusting the rest.
    pub fn schema_version(&self) -> Result<String, serde_json::Error> {
        serde_json::from_slice::<VersionOnly>(&self.json).map(|v| v.schema_version)
    }

    /// Whether the bytes are what the hash names: SHA-256 of the bytes as received, or, for a
    /// schema 1.0 snapshot, of the bytes with the embedded hash's value emptied (the rule of
    /// that version, which is a byte-exact inverse of how 1.0 writers sealed).
    pub fn verify(&self) -> bool {
        let expected = self.hash.as_bytes();
        if content_hash(&self.json).as_bytes() == expected {
            return true;
        }
        let legacy = self.json.strip_prefix(LEGACY_PREFIX).and_then(|rest| {
            let (embedded, rest) = rest.split_at_checked(expected.len())?;
            (embedded == expected && rest.starts_with(b"\"")).then_some(rest)
        });
        legacy.is_some_and(|rest| {
            let mut hasher = Sha256::new();
            hasher.update(LEGACY_PREFIX);
            hasher.update(rest);
            hex(&hasher.finalize()).as_bytes() == expected
        })
    }

    /// Parses verified bytes, ignoring members this build does not know, and names the
    /// snapshot by the verified hash.
    pub fn parse(&self) -> Result<Snapshot, serde_json::Error> {
        let mut snapshot: Snapshot = serde_json::from_slice(&self.json)?;
        snapshot.hash = self.hash.clone();
        Ok(snapshot)
    }
}

/// Hex SHA-256 of the hashed form.
pub fn content_hash(json: &[u8]) -> String {
    hex(&Sha256::digest(json))
}

/// `snapshot` as the next minor version of this schema would write it: members this build does
/// not know at the top level, in every client and in every key, sealed under the hashing rule.
/// Tests use it, and the operator writes it when `SIGNET_TESTING_NEWER_MINOR=1`, to prove that a
/// reader ignores what it does not know.
pub fn as_newer_minor(snapshot: &Snapshot) -> Wire {
    let mut value = serde_json::to_value(snapshot).expect("a snapshot serializes");
    let (major, minor) = SCHEMA_VERSION.split_once('.').expect("major.minor");
    let minor: u32 = minor.parse().expect("a numeric minor");
    value["schemaVersion"] = format!("{major}.{}", minor + 1).into();
    value["futureSetting"] = serde_json::json!({"mode": "strict", "limits": [1, 2, 3]});
    for client in value["clients"].as_array_mut().into_iter().flatten() {
        client["futureClientField"] = serde_json::json!({"enabled": true});
    }
    for key in value["keys"].as_array_mut().into_iter().flatten() {
        key["futureKeyField"] = "hsm-backed".into();
    }
    Wire::of(serde_json::to_vec(&value).expect("JSON serializes"))
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

impl LifetimeSecs {
    const NAMES: [&'static str; 6] = [
        "accessToken",
        "idToken",
        "refreshTokenAbsolute",
        "refreshTokenSliding",
        "authorizationCode",
        "deviceCode",
    ];

    fn fields(&self) -> [u64; 6] {
        [
            self.access_token,
            self.id_token,
            self.refresh_token_absolute,
            self.refresh_token_sliding,
            self.authorization_code,
            self.device_code,
        ]
    }

    fn from_fields(f: [u64; 6]) -> Self {
        Self {
            access_token: f[0],
            id_token: f[1],
            refresh_token_absolute: f[2],
            refresh_token_sliding: f[3],
            authorization_code: f[4],
            device_code: f[5],
        }
    }

    fn zip(self, other: Self, pick: fn(u64, u64) -> u64) -> Self {
        let (a, b) = (self.fields(), other.fields());
        Self::from_fields(std::array::from_fn(|i| pick(a[i], b[i])))
    }

    /// Each lifetime no longer than `ceiling`'s.
    pub fn at_most(self, ceiling: Self) -> Self {
        self.zip(ceiling, u64::min)
    }

    /// Each lifetime no shorter than `floor`'s.
    pub fn at_least(self, floor: Self) -> Self {
        self.zip(floor, u64::max)
    }

    /// The API names of the lifetimes longer than `ceiling`'s.
    pub fn longer_than(&self, ceiling: &Self) -> Vec<&'static str> {
        let (a, b) = (self.fields(), ceiling.fields());
        (0..6)
            .filter(|&i| a[i] > b[i])
            .map(|i| Self::NAMES[i])
            .collect()
    }
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
    /// Sentinel or Cluster; none for one server at the URL (schema 1.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<RedisTopology>,
    /// Single-use and deny-list writes wait for this many replicas (schema 1.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_replicas: Option<WaitForReplicas>,
    /// PEM CA certificates trusted for the store's TLS connections instead of the system's
    /// roots (schema 1.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
}

/// Where the redis servers are, beyond the URL (which keeps the data nodes' credentials, TLS
/// scheme and database).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RedisTopology {
    /// A primary and replicas that sentinels monitor under one name.
    #[serde(rename_all = "camelCase")]
    Sentinel {
        /// The name the sentinels monitor the primary under.
        master_name: String,
        /// `host:port` of each sentinel.
        addresses: Vec<String>,
        /// ACL user at the sentinels.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// Password at the sentinels.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Redacted>,
        /// Whether the sentinels speak TLS.
        #[serde(default)]
        tls: bool,
    },
    /// A Redis Cluster, found from its seed nodes.
    #[serde(rename_all = "camelCase")]
    Cluster {
        /// `host:port` of seed nodes.
        nodes: Vec<String>,
    },
}

/// `WAIT replicas timeout` after every single-use and deny-list write; fewer acknowledgements
/// fail the request closed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WaitForReplicas {
    /// Replicas that must acknowledge.
    pub replicas: u32,
    /// How long to wait for them, in milliseconds.
    pub timeout_ms: u64,
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
    /// Allowed grants, but never token exchange: that is [`Client::token_exchange`], so that an
    /// older reader, which does not know the value, reads this client (without the grant)
    /// instead of refusing the whole snapshot.
    pub grant_types: Vec<GrantType>,
    /// May use token exchange (RFC 8693; schema 1.5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub token_exchange: bool,
    /// Token endpoint authentication. A client that authenticates with ServiceAccount tokens
    /// is written as `private_key_jwt` with no keys and its `serviceAccounts` (schema 1.3): an
    /// older reader, which does not know the method, then fails it closed (no key verifies),
    /// instead of refusing the whole snapshot over an unknown value.
    pub auth_method: AuthMethod,
    /// The ServiceAccounts whose tokens authenticate the client, as the API server names them
    /// (`system:serviceaccount:NAMESPACE:NAME`); empty for every other method (schema 1.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_accounts: Vec<String>,
    /// The trusted cluster (by name) those ServiceAccounts live in; unset: the cluster the STS
    /// runs in (schema 1.4). An older reader, which does not know it, asks its own API server,
    /// which does not accept another cluster's token: it fails closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_cluster: Option<String>,
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

impl Client {
    /// Whether the client may use `grant`.
    pub fn may_use(&self, grant: GrantType) -> bool {
        match grant {
            GrantType::TokenExchange => self.token_exchange,
            grant => self.grant_types.contains(&grant),
        }
    }
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
    /// Client ids of the API's declared resource servers: besides a token's own client, only
    /// these learn about a token for this audience at introspection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_servers: Vec<String>,
    /// Client ids that may exchange a token addressed to them for a token to this API, acting
    /// for its subject (schema 1.5): the owner's `delegation.allowedClients` that exist and
    /// that `allowedClientNamespaces` admits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegation_clients: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_names_the_bytes_as_received() {
        let wire = Wire::of(br#"{"schemaVersion":"1.1","issuer":"https://id.example"}"#.to_vec());
        assert!(wire.verify());
        let mut reordered = wire.clone();
        reordered.json = br#"{"issuer":"https://id.example","schemaVersion":"1.1"}"#.to_vec();
        assert!(
            !reordered.verify(),
            "the same members in another order are other bytes"
        );
        let mut spaced = wire.clone();
        spaced.json.insert(1, b' ');
        assert!(!spaced.verify());
    }

    #[test]
    fn the_legacy_rule_needs_the_embedded_hash_to_be_the_claimed_one() {
        let body = br#","issuer":"https://id.example"}"#;
        let hashed = [LEGACY_PREFIX, br#"""#, body].concat();
        let hash = content_hash(&hashed);
        let sent = |embedded: &str| [LEGACY_PREFIX, embedded.as_bytes(), br#"""#, body].concat();
        let good = Wire {
            hash: hash.clone(),
            json: sent(&hash),
        };
        assert!(good.verify());
        let other = "a".repeat(64);
        assert!(
            !Wire {
                hash: other.clone(),
                json: sent(&hash)
            }
            .verify()
        );
        assert!(
            !Wire {
                hash: other.clone(),
                json: sent(&other)
            }
            .verify()
        );
        let mut newer = good.clone();
        newer.json = String::from_utf8(newer.json)
            .unwrap()
            .replacen("1.0", "1.1", 1)
            .into_bytes();
        assert!(!newer.verify(), "only schema 1.0 was sealed this way");
    }
}
