//! A snapshot made ready to serve: parsed, verified, indexed and pre-rendered once, then
//! shared read-only by every request through one `Arc`.

mod clients;

use std::collections::HashMap;

use serde_json::{Value, json};
use signet_crds::snapshot::{self, Snapshot, Wire};
use signet_crds::v1alpha1::{Algorithm, KeyPhase};

use crate::jose::{KeyError, Signer, Verifier};
pub use clients::Clients;

/// The major schema version this STS understands.
pub const SCHEMA_MAJOR: &str = "1";

/// Why a snapshot was refused; the last good one keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Written by an operator of a newer major version.
    #[error("unknown schema version {0} (this STS reads {1}.x)")]
    Schema(String, String),
    /// The content does not match its hash.
    #[error("content hash mismatch")]
    Hash,
    /// The bytes are not a snapshot this STS can read.
    #[error("snapshot JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A key does not parse.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No active key for an algorithm the issuer signs with.
    #[error("no active {0:?} key")]
    NoActiveKey(Algorithm),
    /// A public key does not parse.
    #[error("public key {0} does not parse")]
    PublicKey(String),
    /// The Secrets' bytes are not a gzip stream.
    #[error("gzip: {0}")]
    Gzip(std::io::Error),
    /// A redis store without its URL.
    #[error("store type redis without a redis URL")]
    NoRedisUrl,
    /// The store it names cannot be reached, which would lose single-use guarantees.
    #[error(transparent)]
    Store(#[from] crate::store::Unavailable),
}

/// The serving state of one snapshot.
pub struct Loaded {
    /// The snapshot as compiled, its clients moved to [`Loaded::clients`].
    pub snapshot: Snapshot,
    /// Clients by client_id, each held once.
    pub clients: Clients,
    /// API scopes by name.
    pub scopes: HashMap<String, snapshot::Scope>,
    /// The active key per algorithm.
    pub signers: HashMap<Algorithm, Signer>,
    /// Public keys of every published version, by kid, for verifying our own tokens.
    pub verifiers: HashMap<String, Verifier>,
    /// Public keys of private_key_jwt clients, parsed once: by client_id, (kid, key).
    pub client_keys: HashMap<String, Vec<crate::jwks::PublicKey>>,
    /// Per trusted cluster with a CA bundle: the bundle's hash, the TLS anchor its keys are
    /// cached under (hashed once per snapshot, not per request).
    pub cluster_anchors: HashMap<String, String>,
    /// Origins that some client allows for CORS.
    pub cors_origins: std::collections::HashSet<String>,
    /// People of the static identity providers.
    pub users: crate::signin::users::Directory,
    /// The issuer's cookie names and attributes, derived once per snapshot.
    pub cookies: crate::signin::cookies::Names,
    /// `/jwks` body.
    pub jwks: String,
    /// Discovery body (OIDC Discovery and RFC 8414).
    pub discovery: String,
}

impl Loaded {
    /// Verifies the bytes as received (see [`Wire`]: never a re-serialisation, so a newer
    /// minor's fields count in the hash and are then ignored), and prepares what they hold.
    /// The bytes are dropped once parsed: at 100,000 clients they are ~70 MB beside the
    /// parsed form.
    pub fn open(wire: Wire, major: &str) -> Result<Self, Refused> {
        let version = wire.schema_version()?;
        if version.split('.').next() != Some(major) {
            return Err(Refused::Schema(version, major.to_owned()));
        }
        if !wire.verify() {
            return Err(Refused::Hash);
        }
        let snapshot = wire.parse()?;
        drop(wire);
        Self::new(snapshot)
    }

    /// Prepares a snapshot whose bytes were verified (or that this process compiled).
    pub fn new(mut snapshot: Snapshot) -> Result<Self, Refused> {
        let mut signers = HashMap::new();
        let mut verifiers = HashMap::new();
        for key in &snapshot.keys {
            if key.phase == KeyPhase::Active {
                let pem = key
                    .private_pem
                    .as_ref()
                    .map(|p| p.0.as_str())
                    .unwrap_or_default();
                signers.insert(key.alg, Signer::from_pem(&key.kid, key.alg, pem)?);
            }
            let verifier = Verifier::from_jwk(&key.kid, key.alg, &key.public_jwk)
                .map_err(|_| Refused::PublicKey(key.kid.clone()))?;
            verifiers.insert(key.kid.clone(), verifier);
        }
        for alg in [
            snapshot.access_token_signing_alg,
            snapshot.id_token_signing_alg,
        ] {
            if !signers.contains_key(&alg) {
                return Err(Refused::NoActiveKey(alg));
            }
        }
        let client_keys = snapshot
            .clients
            .iter()
            .filter_map(|c| Some((c.client_id.clone(), crate::jwks::parse(c.jwks.as_ref()?))))
            .collect();
        let jwks = json!({"keys": snapshot.keys.iter().map(|k| &k.public_jwk).collect::<Vec<_>>()})
            .to_string();
        let discovery = discovery(&snapshot, &signers).to_string();
        let (users, user_errors) =
            crate::signin::users::Directory::parse(snapshot.identity_providers.iter().filter_map(
                |p| match &p.settings {
                    snapshot::ProviderSettings::Static { users } => {
                        Some((p.name.as_str(), users.0.as_str()))
                    }
                    snapshot::ProviderSettings::Oidc(_) => None,
                },
            ));
        for error in user_errors {
            // One provider's broken list must not stop the others (nor machine clients).
            tracing::warn!(%error, "identity provider skipped");
        }
        let cors_origins = snapshot
            .clients
            .iter()
            .flat_map(|c| c.allowed_cors_origins.iter().cloned())
            .collect();
        Ok(Self {
            clients: Clients::new(std::mem::take(&mut snapshot.clients)),
            scopes: snapshot
                .scopes
                .iter()
                .map(|s| (s.name.clone(), s.clone()))
                .collect(),
            signers,
            verifiers,
            client_keys,
            cluster_anchors: snapshot
                .trusted_clusters
                .iter()
                .filter_map(|c| {
                    Some((
                        c.name.clone(),
                        crate::store::token_key(c.ca_bundle.as_ref()?),
                    ))
                })
                .collect(),
            cors_origins,
            users,
            cookies: crate::signin::cookies::Names::of(&snapshot.issuer),
            jwks,
            discovery,
            snapshot,
        })
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.snapshot.issuer
    }
}

/// What the STS implements now, and nothing more.
fn discovery(snapshot: &Snapshot, signers: &HashMap<Algorithm, Signer>) -> Value {
    let base = snapshot.issuer.trim_end_matches('/');
    let mut algs: Vec<String> = signers.keys().map(|a| format!("{a:?}")).collect();
    algs.sort();
    let mut scopes: Vec<&str> = signet_crds::compile::IDENTITY_SCOPES.to_vec();
    scopes.extend(snapshot.scopes.iter().map(|s| s.name.as_str()));
    scopes.sort();
    scopes.dedup();
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        // Signet's: a pod's ServiceAccount token as the assertion (docs/workload-identity.md).
        "kubernetes_service_account",
    ];
    let mut token_auth_methods = auth_methods.to_vec();
    token_auth_methods.push("none"); // public clients at the token endpoint
    json!({
        "issuer": snapshot.issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "end_session_endpoint": format!("{base}/end_session"),
        "device_authorization_endpoint": format!("{base}/device_authorization"),
        "jwks_uri": format!("{base}/jwks"),
        "introspection_endpoint": format!("{base}/introspect"),
        "revocation_endpoint": format!("{base}/revoke"),
        "grant_types_supported": crate::grants::supported::GRANT_TYPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "scopes_supported": scopes,
        "claims_supported": crate::signin::claims::SUPPORTED,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "token_endpoint_auth_methods_supported": token_auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": token_auth_methods,
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
    })
}
